use burn::config::Config;
use burn::module::Module;
use burn::tensor::Tensor;

use crate::ops::{
    assert_min_rows, assert_same_shape, diagonal_mask, l2_normalize, log_sum_exp,
    offset_diagonal_mask,
};

/// Configuration of [`NtXentLoss`].
#[derive(Config, Debug)]
pub struct NtXentLossConfig {
    /// Softmax temperature τ; must be > 0. SimCLR uses 0.5 on CIFAR-10 and 0.1 on ImageNet.
    #[config(default = 0.5)]
    pub temperature: f64,
    /// Compute the loss `chunk_size` anchor rows at a time, holding `O(N·chunk_size)`
    /// similarities instead of `O((2N)²)`: same loss, same gradients, for batches whose
    /// similarity matrix does not fit in memory. `None` computes it in one piece.
    #[config(default = "None")]
    pub chunk_size: Option<usize>,
}

impl NtXentLossConfig {
    /// Builds the loss.
    ///
    /// # Panics
    ///
    /// When `temperature` is not a finite number > 0.
    pub fn init(&self) -> NtXentLoss {
        self.assertions();
        NtXentLoss {
            temperature: self.temperature,
            chunk_size: self.chunk_size,
        }
    }

    fn assertions(&self) {
        assert!(
            self.temperature.is_finite() && self.temperature > 0.0,
            "NtXentLoss: temperature must be > 0, got {}",
            self.temperature
        );
        assert!(
            self.chunk_size != Some(0),
            "NtXentLoss: chunk_size must be > 0 (or None), got 0"
        );
    }
}

/// Normalised temperature-scaled cross-entropy, the SimCLR loss, in its symmetric `2N` form.
///
/// The two views' embeddings are L2-normalised and stacked into `2N` rows. Each row is an
/// anchor whose positive is the other view of the same sample; the remaining `2N − 2` rows are
/// its negatives. The loss is the cross-entropy of picking the positive among the `2N − 1`
/// candidates with logits `cos(zᵢ, zⱼ) / τ`, averaged over the `2N` anchors. It equals
/// `lightly.loss.NTXentLoss(temperature=τ)` with no memory bank.
///
/// Stable at small temperatures (the log-sum-exp is shifted by its maximum) and for all-zero
/// rows (normalised like `torch.nn.functional.normalize`, eps `1e-12`).
///
/// Reference: \[0\] SimCLR, 2020, arXiv:2002.05709.
///
/// # Example
///
/// ```
/// use burn::tensor::Tensor;
/// use selfsup_losses::NtXentLossConfig;
///
/// # let device = selfsup_backend::test_device();
/// let loss = NtXentLossConfig::new().with_temperature(0.5).init();
/// let z_a = Tensor::<2>::from_floats([[1.0, 0.0], [0.0, 1.0]], &device);
/// let z_b = Tensor::<2>::from_floats([[0.9, 0.1], [0.1, 0.9]], &device);
/// let value = loss.forward(z_a, z_b).into_scalar::<f32>();
/// assert!(value > 0.0);
/// ```
#[derive(Module, Debug)]
pub struct NtXentLoss {
    /// Softmax temperature τ.
    pub temperature: f64,
    /// Rows per chunk of the memory-bounded computation, or `None`.
    pub chunk_size: Option<usize>,
}

impl NtXentLoss {
    /// Computes the loss for a batch of `N` positive pairs.
    ///
    /// # Arguments
    ///
    /// - `z_a`: embeddings of the first view.
    /// - `z_b`: embeddings of the second view; row `i` is the positive of `z_a`'s row `i`.
    ///
    /// # Shapes
    ///
    /// - z_a, z_b: `[N, D]`
    /// - output: `[1]`
    ///
    /// # Panics
    ///
    /// When the shapes differ or `N` is 0.
    pub fn forward(&self, z_a: Tensor<2>, z_b: Tensor<2>) -> Tensor<1> {
        assert_same_shape::<2>("NtXentLoss", ("z_a", &z_a), ("z_b", &z_b));
        let [n, _] = z_a.dims();
        assert_min_rows("NtXentLoss", "z_a", n, 1);
        match self.chunk_size {
            Some(chunk) if chunk < 2 * n => self.forward_chunked(z_a, z_b, chunk),
            _ => self.forward_dense(z_a, z_b),
        }
    }

    fn forward_dense(&self, z_a: Tensor<2>, z_b: Tensor<2>) -> Tensor<1> {
        let [n, _] = z_a.dims();
        let z = l2_normalize(Tensor::cat(vec![z_a, z_b], 0));
        let inv_t = 1.0 / self.temperature;

        // The positive logit of anchor i (view a) and of anchor N+i (view b) is the same
        // cosine, so it is computed once from the two halves.
        let z_a = z.clone().narrow(0, 0, n);
        let z_b = z.clone().narrow(0, n, n);
        let positives = (z_a * z_b).sum_dim(1).mul_scalar(inv_t);

        let logits = z.clone().matmul(z.transpose()).mul_scalar(inv_t);
        let logits = logits.mask_fill(diagonal_mask(2 * n, &positives), f32::NEG_INFINITY);
        let denominators = log_sum_exp(logits);

        denominators.mean() - positives.mean()
    }

    /// The same loss and gradients, computed `chunk` anchor rows at a time.
    ///
    /// The similarities are never all alive at once: each chunk's softmax `P` is computed on
    /// detached embeddings and folded into the value and into the analytic gradient with
    /// respect to the normalised embeddings, `G = ((P + Pᵀ)·z − 2·z_swap) / (2N·τ)`, where
    /// `z_swap` pairs every row with its positive. The result is `value + Σ z⊙G − Σ stop(z)⊙G`:
    /// numerically `value`, with gradient `G` flowing back through the normalisation.
    fn forward_chunked(&self, z_a: Tensor<2>, z_b: Tensor<2>, chunk: usize) -> Tensor<1> {
        let [n, d] = z_a.dims();
        let inv_t = 1.0 / self.temperature;
        let z = l2_normalize(Tensor::cat(vec![z_a, z_b], 0));
        let fixed = z.clone().detach();
        let all_t = fixed.clone().transpose();

        let mut log_denominators = Tensor::<1>::zeros([1], &fixed.device());
        let mut row_terms = Vec::with_capacity((2 * n).div_ceil(chunk));
        let mut column_term = Tensor::<2>::zeros([2 * n, d], &fixed.device());
        for start in (0..2 * n).step_by(chunk) {
            let len = chunk.min(2 * n - start);
            let rows = fixed.clone().narrow(0, start, len);
            let itself = offset_diagonal_mask([len, 2 * n], start as i64, &fixed);
            let logits = rows
                .clone()
                .matmul(all_t.clone())
                .mul_scalar(inv_t)
                .mask_fill(itself, f32::NEG_INFINITY);
            let lse = log_sum_exp(logits.clone());
            let softmax = (logits - lse.clone()).exp();
            log_denominators = log_denominators + lse.sum();
            row_terms.push(softmax.clone().matmul(fixed.clone()));
            column_term = column_term + softmax.transpose().matmul(rows);
        }

        let swapped = Tensor::cat(
            vec![fixed.clone().narrow(0, n, n), fixed.clone().narrow(0, 0, n)],
            0,
        );
        let positives = (fixed.clone().narrow(0, 0, n) * fixed.clone().narrow(0, n, n)).sum();
        let value =
            (log_denominators - positives.mul_scalar(2.0 * inv_t)).div_scalar((2 * n) as f64);
        let grad = (Tensor::cat(row_terms, 0) + column_term - swapped.mul_scalar(2.0))
            .mul_scalar(inv_t / (2 * n) as f64);
        value + (z * grad.clone()).sum() - (fixed * grad).sum()
    }
}
