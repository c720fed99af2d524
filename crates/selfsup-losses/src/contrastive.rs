use burn::config::Config;
use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::{Bool, Int, Tensor};

use crate::distance::Distance;
use crate::ops::{assert_labels, assert_min_rows, diagonal_mask, same_label};

/// Configuration of [`ContrastiveLoss`].
#[derive(Config, Debug)]
pub struct ContrastiveLossConfig {
    /// Positive pairs are penalised beyond this distance (below this similarity).
    #[config(default = 0.0)]
    pub pos_margin: f64,
    /// Negative pairs are penalised within this distance (above this similarity).
    #[config(default = 1.0)]
    pub neg_margin: f64,
    /// How embeddings are compared.
    #[config(default = "Distance::L2")]
    pub distance: Distance,
    /// L2-normalise the embeddings first (pytorch-metric-learning's default).
    #[config(default = true)]
    pub normalize: bool,
}

impl ContrastiveLossConfig {
    /// Builds the loss.
    ///
    /// # Panics
    ///
    /// When a margin is not finite, or (for a distance) negative.
    pub fn init(&self) -> ContrastiveLoss {
        for (name, value) in [
            ("pos_margin", self.pos_margin),
            ("neg_margin", self.neg_margin),
        ] {
            assert!(
                value.is_finite() && (self.distance.is_similarity() || value >= 0.0),
                "ContrastiveLoss: {name} must be a finite number{}, got {value}",
                if self.distance.is_similarity() {
                    ""
                } else {
                    " >= 0"
                }
            );
        }
        ContrastiveLoss {
            pos_margin: self.pos_margin,
            neg_margin: self.neg_margin,
            distance: self.distance,
            normalize: self.normalize,
        }
    }
}

/// The pairwise contrastive loss (Hadsell et al.) with positive and negative margins.
///
/// Over all ordered pairs `i ≠ j` of a labelled batch: same label → `relu(d − pos_margin)`,
/// different label → `relu(neg_margin − d)` (for a similarity `s`: `relu(pos_margin − s)` and
/// `relu(s − neg_margin)`). Each of the two terms is averaged over its pairs with a loss > 0
/// (0 if there are none) and the loss is their sum. Equals pytorch-metric-learning's
/// `ContrastiveLoss` with its default `AvgNonZeroReducer`.
///
/// Reference: \[0\] Dimensionality Reduction by Learning an Invariant Mapping, CVPR 2006.
///
/// # Example
///
/// ```
/// use burn::tensor::{Int, Tensor};
/// use selfsup_losses::ContrastiveLossConfig;
///
/// # let device = selfsup_backend::test_device();
/// let loss = ContrastiveLossConfig::new().init();
/// let x = Tensor::<2>::from_floats([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], &device);
/// let labels = Tensor::<1, Int>::from_ints([0, 0, 1], &device);
/// // Positives coincide and negatives are √2 > 1 apart: nothing to learn.
/// assert_eq!(loss.forward(x, labels).into_scalar::<f32>(), 0.0);
/// ```
#[derive(Module, Debug)]
pub struct ContrastiveLoss {
    /// Margin for positive pairs.
    pub pos_margin: f64,
    /// Margin for negative pairs.
    pub neg_margin: f64,
    /// How embeddings are compared.
    #[module(skip)]
    pub distance: Distance,
    /// Whether rows are L2-normalised first.
    pub normalize: bool,
}

impl ContrastiveLoss {
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
        assert_min_rows("ContrastiveLoss", "embeddings", n, 1);
        assert_labels("ContrastiveLoss", n, &labels);

        let values = self.distance.pairwise(embeddings, self.normalize);
        let same = same_label(labels);
        let positive = same.clone().bool_and(diagonal_mask(n, &values).bool_not());
        let negative = same.bool_not();
        let (pos_loss, neg_loss) = if self.distance.is_similarity() {
            (
                relu(values.clone().neg().add_scalar(self.pos_margin)),
                relu(values.sub_scalar(self.neg_margin)),
            )
        } else {
            (
                relu(values.clone().sub_scalar(self.pos_margin)),
                relu(values.neg().add_scalar(self.neg_margin)),
            )
        };
        mean_nonzero(pos_loss, positive) + mean_nonzero(neg_loss, negative)
    }
}

/// Mean of the losses > 0 among the masked pairs; 0 (with zero gradients) when there are none.
fn mean_nonzero(losses: Tensor<2>, mask: Tensor<2, Bool>) -> Tensor<1> {
    let losses = losses.mask_fill(mask.bool_not(), 0.0);
    let count = losses.clone().detach().greater_elem(0.0).float().sum();
    losses.sum() / count.clamp_min(1.0)
}
