use burn::config::Config;
use burn::module::Module;
use burn::tensor::Tensor;

use crate::ops::{assert_min_rows, assert_same_shape};

/// The batch-norm epsilon applied to each view before the cross-correlation.
const BATCH_NORM_EPS: f64 = 1e-5;

/// Configuration of [`BarlowTwinsLoss`].
#[derive(Config, Debug)]
pub struct BarlowTwinsLossConfig {
    /// λ, the weight of the redundancy-reduction (off-diagonal) term; must be ≥ 0. The paper
    /// uses 5e-3 with 8192-d projections.
    #[config(default = 5e-3)]
    pub lambda: f64,
}

impl BarlowTwinsLossConfig {
    /// Builds the loss.
    ///
    /// # Panics
    ///
    /// When `lambda` is negative or not finite.
    pub fn init(&self) -> BarlowTwinsLoss {
        assert!(
            self.lambda.is_finite() && self.lambda >= 0.0,
            "BarlowTwinsLoss: lambda must be >= 0, got {}",
            self.lambda
        );
        BarlowTwinsLoss {
            lambda: self.lambda,
        }
    }
}

/// Barlow Twins: make the cross-correlation matrix of the two views' embeddings the identity.
///
/// Each view is standardised per dimension over the batch
/// (`ẑ = (z − mean) / sqrt(var + 1e-5)`, variance divided by `N`, i.e. `BatchNorm1d` without
/// affine parameters in training mode); `C = ẑ_aᵀ ẑ_b / N`; the loss is
/// `Σᵢ (1 − Cᵢᵢ)² + λ Σ_{i≠j} Cᵢⱼ²`. Equals `lightly.loss.BarlowTwinsLoss(lambda_param=λ)`.
///
/// Reference: \[0\] Barlow Twins, 2021, arXiv:2103.03230.
///
/// # Example
///
/// ```
/// use burn::tensor::{Distribution, Tensor};
/// use selfsup_losses::BarlowTwinsLossConfig;
///
/// # let device = selfsup_backend::test_device();
/// let loss = BarlowTwinsLossConfig::new().init();
/// let z = Tensor::<2>::random([32, 4], Distribution::Normal(0.0, 1.0), &device);
/// let value = loss.forward(z.clone(), z).into_scalar::<f32>();
/// assert!(value >= 0.0);
/// ```
#[derive(Module, Debug)]
pub struct BarlowTwinsLoss {
    /// Weight of the off-diagonal term.
    pub lambda: f64,
}

impl BarlowTwinsLoss {
    /// Computes the loss.
    ///
    /// # Shapes
    ///
    /// - z_a, z_b: `[N, D]`, N ≥ 2
    /// - output: `[1]`
    ///
    /// # Panics
    ///
    /// When the shapes differ or the batch has fewer than 2 rows (the per-dimension variance
    /// needs two samples).
    pub fn forward(&self, z_a: Tensor<2>, z_b: Tensor<2>) -> Tensor<1> {
        assert_same_shape::<2>("BarlowTwinsLoss", ("z_a", &z_a), ("z_b", &z_b));
        let [n, _] = z_a.dims();
        assert_min_rows("BarlowTwinsLoss", "z_a", n, 2);

        let (a, b) = (standardize(z_a), standardize(z_b));
        // Cᵢᵢ straight from the two views (O(N·D)) instead of masking the D × D matrix, and
        // Σ_{i≠j} Cᵢⱼ² = Σ C² − Σ Cᵢᵢ²: the only D × D work left is the product and one
        // square-and-sum (the masked form took a dozen passes over D² values, backward included).
        let diagonal = (a.clone() * b.clone()).sum_dim(0).div_scalar(n as f64);
        let c = a.transpose().matmul(b).div_scalar(n as f64);
        let on_diagonal = diagonal.clone().neg().add_scalar(1.0).square().sum();
        let off_diagonal = c.square().sum() - diagonal.square().sum();
        on_diagonal + off_diagonal.mul_scalar(self.lambda)
    }
}

/// `(z − mean) / sqrt(var + 1e-5)` per column, variance divided by N.
fn standardize(z: Tensor<2>) -> Tensor<2> {
    let mean = z.clone().mean_dim(0);
    let centered = z - mean;
    let var = centered.clone().square().mean_dim(0);
    centered / var.add_scalar(BATCH_NORM_EPS).sqrt()
}
