use burn::module::Module;
use burn::tensor::Tensor;

use crate::ops::{assert_min_rows, assert_same_shape};

/// `torch.nn.functional.cosine_similarity`'s epsilon.
const COSINE_EPS: f64 = 1e-8;

/// Negative cosine similarity, the BYOL and SimSiam loss: `−mean_i cos(x0ᵢ, x1ᵢ)`.
///
/// The loss lies in `[−1, 1]` and reaches −1 when every prediction points the same way as its
/// target. BYOL and SimSiam apply it symmetrically, with the target branch detached:
/// [`forward_symmetric`](Self::forward_symmetric) does exactly that. Equals
/// `lightly.loss.NegativeCosineSimilarity()` (norms clamped at `1e-8`, as in
/// `torch.nn.functional.cosine_similarity`).
///
/// References: \[0\] BYOL, 2020, arXiv:2006.07733; \[1\] SimSiam, 2020, arXiv:2011.10566.
///
/// # Example
///
/// ```
/// use burn::tensor::Tensor;
/// use selfsup_losses::NegativeCosineSimilarity;
///
/// # let device = selfsup_backend::test_device();
/// let x0 = Tensor::<2>::from_floats([[1.0, 0.0], [0.0, 2.0]], &device);
/// let x1 = Tensor::<2>::from_floats([[3.0, 0.0], [0.0, 1.0]], &device);
/// let loss = NegativeCosineSimilarity::new().forward(x0, x1);
/// assert!((loss.into_scalar::<f32>() + 1.0).abs() < 1e-6);
/// ```
#[derive(Module, Debug, Default)]
pub struct NegativeCosineSimilarity;

impl NegativeCosineSimilarity {
    /// Creates the loss (it has no parameters).
    pub fn new() -> Self {
        NegativeCosineSimilarity
    }

    /// `−mean_i cos(x0ᵢ, x1ᵢ)`.
    ///
    /// # Shapes
    ///
    /// - x0, x1: `[N, D]`
    /// - output: `[1]`
    ///
    /// # Panics
    ///
    /// When the shapes differ or `N` is 0.
    pub fn forward(&self, x0: Tensor<2>, x1: Tensor<2>) -> Tensor<1> {
        assert_same_shape::<2>("NegativeCosineSimilarity", ("x0", &x0), ("x1", &x1));
        assert_min_rows("NegativeCosineSimilarity", "x0", x0.dims()[0], 1);
        cosine_similarity(x0, x1).mean().neg()
    }

    /// The symmetric BYOL/SimSiam objective for two views:
    /// `½·(D(p_a, stopgrad(z_b)) + D(p_b, stopgrad(z_a)))`, where `p` are the predictor's
    /// outputs and `z` the target projections.
    ///
    /// # Shapes
    ///
    /// - p_a, p_b, z_a, z_b: `[N, D]`
    /// - output: `[1]`
    pub fn forward_symmetric(
        &self,
        p_a: Tensor<2>,
        p_b: Tensor<2>,
        z_a: Tensor<2>,
        z_b: Tensor<2>,
    ) -> Tensor<1> {
        (self.forward(p_a, z_b.detach()) + self.forward(p_b, z_a.detach())).mul_scalar(0.5)
    }
}

/// Row-wise cosine similarity, each norm clamped at `1e-8` like
/// `torch.nn.functional.cosine_similarity`.
///
/// # Shapes
///
/// - x0, x1: `[N, D]` → `[N, 1]`
pub fn cosine_similarity(x0: Tensor<2>, x1: Tensor<2>) -> Tensor<2> {
    let norm = |x: Tensor<2>| {
        x.square()
            .sum_dim(1)
            .clamp_min(COSINE_EPS * COSINE_EPS)
            .sqrt()
    };
    let (n0, n1) = (norm(x0.clone()), norm(x1.clone()));
    (x0 / n0 * (x1 / n1)).sum_dim(1)
}
