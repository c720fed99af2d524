use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Int, Tensor};

use crate::ops::{
    assert_labels, assert_min_rows, diagonal_mask, l2_normalize, log_sum_exp, same_label,
};

/// Configuration of [`SupConLoss`].
#[derive(Config, Debug)]
pub struct SupConLossConfig {
    /// Softmax temperature τ; must be > 0. The paper uses 0.1 (0.07 in some recipes).
    #[config(default = 0.1)]
    pub temperature: f64,
}

impl SupConLossConfig {
    /// Builds the loss.
    ///
    /// # Panics
    ///
    /// When `temperature` is not a finite number > 0.
    pub fn init(&self) -> SupConLoss {
        assert!(
            self.temperature.is_finite() && self.temperature > 0.0,
            "SupConLoss: temperature must be > 0, got {}",
            self.temperature
        );
        SupConLoss {
            temperature: self.temperature,
        }
    }
}

/// Supervised contrastive loss (the "L_out" form of Khosla et al.).
///
/// Rows are L2-normalised and `sᵢⱼ = zᵢ·zⱼ / τ`. Every row `i` whose label occurs elsewhere in
/// the batch is an anchor with positives `P(i) = {j ≠ i : yⱼ = yᵢ}`:
/// `ℓᵢ = −(1/|P(i)|) Σ_{p ∈ P(i)} (s_ip − log Σ_{a ≠ i} exp s_ia)`. The loss is the mean of `ℓᵢ`
/// over those anchors. Anchors without a positive are excluded (not NaN, as a naive division by
/// `|P(i)| = 0` would give), and a batch with no anchor at all gives 0 with zero gradients.
/// Several views of a sample are simply rows with the same label.
///
/// Reference: \[0\] Supervised Contrastive Learning, 2020, arXiv:2004.11362.
///
/// # Example
///
/// ```
/// use burn::tensor::{Int, Tensor};
/// use selfsup_losses::SupConLossConfig;
///
/// # let device = selfsup_backend::test_device();
/// let loss = SupConLossConfig::new().with_temperature(0.1).init();
/// let x = Tensor::<2>::from_floats([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], &device);
/// let labels = Tensor::<1, Int>::from_ints([3, 3, 7], &device); // row 2 has no positive
/// assert!(loss.forward(x, labels).into_scalar::<f32>().is_finite());
/// ```
#[derive(Module, Debug)]
pub struct SupConLoss {
    /// Softmax temperature τ.
    pub temperature: f64,
}

impl SupConLoss {
    /// Computes the loss.
    ///
    /// # Shapes
    ///
    /// - embeddings: `[N, D]`
    /// - labels: `[N]`
    /// - output: `[1]`
    ///
    /// # Panics
    ///
    /// When `labels` does not have one entry per row, or the batch is empty.
    pub fn forward(&self, embeddings: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
        let [n, _] = embeddings.dims();
        assert_min_rows("SupConLoss", "embeddings", n, 1);
        assert_labels("SupConLoss", n, &labels);

        let z = l2_normalize(embeddings);
        let logits = z.clone().matmul(z.transpose()).div_scalar(self.temperature);
        let itself = diagonal_mask(n, &logits);
        let positives = same_label(labels)
            .bool_and(itself.clone().bool_not())
            .float();

        let log_denominator = log_sum_exp(logits.clone().mask_fill(itself, f32::NEG_INFINITY));
        let count = positives.clone().sum_dim(1);
        let mean_positive = (logits * positives).sum_dim(1) / count.clone().clamp_min(1.0);
        let per_anchor = log_denominator - mean_positive;

        let is_anchor = count.greater_elem(0.0).float();
        (per_anchor * is_anchor.clone()).sum() / is_anchor.sum().clamp_min(1.0)
    }
}
