use burn::config::Config;
use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::{Bool, Int, Tensor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::distance::Distance;
use crate::ops::{assert_labels, assert_min_rows, diagonal_mask, same_label};

/// Which triplets `(anchor, positive, negative)` a [`TripletMarginLoss`] trains on.
///
/// With `gap = d(a, n) − d(a, p)` for distances (`s(a, p) − s(a, n)` for similarities) — how much
/// closer the positive is than the negative — and margin `m`:
///
/// | mining | selects | gap |
/// |---|---|---|
/// | `all` | every valid triplet | any |
/// | `violating` | triplets that still produce a loss | `gap ≤ m` |
/// | `hard` | the negative is at least as close as the positive | `gap ≤ 0` |
/// | `semi_hard` | the positive is closer, but by less than the margin | `0 < gap ≤ m` |
/// | `batch_hard` | per anchor, its farthest positive and its closest negative | one per anchor |
///
/// "Hard" negatives are *closer* than the positive (the embedding is wrong about them);
/// "semi-hard" ones are farther than the positive but inside the margin. Selection looks at
/// values only: no gradient flows through the choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TripletMining {
    /// Every triplet with `p ≠ a`, `y_p = y_a`, `y_n ≠ y_a`.
    All,
    /// Triplets with `gap ≤ margin`.
    Violating,
    /// Triplets with `gap ≤ 0`.
    Hard,
    /// Triplets with `0 < gap ≤ margin`.
    SemiHard,
    /// For each anchor with a positive and a negative, the hardest of each.
    BatchHard,
}

impl TripletMining {
    /// The name used in configuration and golden files.
    pub fn name(self) -> &'static str {
        match self {
            TripletMining::All => "all",
            TripletMining::Violating => "violating",
            TripletMining::Hard => "hard",
            TripletMining::SemiHard => "semi_hard",
            TripletMining::BatchHard => "batch_hard",
        }
    }
}

impl fmt::Display for TripletMining {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TripletMining {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            TripletMining::All,
            TripletMining::Violating,
            TripletMining::Hard,
            TripletMining::SemiHard,
            TripletMining::BatchHard,
        ]
        .into_iter()
        .find(|m| m.name() == s)
        .ok_or_else(|| {
            format!("unknown mining mode '{s}'; valid: all, violating, hard, semi_hard, batch_hard")
        })
    }
}

/// How the per-triplet losses are averaged.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum TripletReduction {
    /// Mean over the selected triplets whose loss is > 0 (pytorch-metric-learning's default,
    /// `AvgNonZeroReducer`): easy triplets do not dilute the gradient.
    MeanNonzero,
    /// Mean over all selected triplets.
    Mean,
}

impl FromStr for TripletReduction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mean_nonzero" => Ok(TripletReduction::MeanNonzero),
            "mean" => Ok(TripletReduction::Mean),
            other => Err(format!(
                "unknown reduction '{other}'; valid: mean_nonzero, mean"
            )),
        }
    }
}

/// Configuration of [`TripletMarginLoss`].
#[derive(Config, Debug)]
pub struct TripletMarginLossConfig {
    /// Margin `m` by which the positive must be closer than the negative; must be ≥ 0.
    #[config(default = 0.05)]
    pub margin: f64,
    /// How embeddings are compared.
    #[config(default = "Distance::L2")]
    pub distance: Distance,
    /// L2-normalise the embeddings before comparing them (pytorch-metric-learning's default).
    #[config(default = true)]
    pub normalize: bool,
    /// Which triplets to train on.
    #[config(default = "TripletMining::All")]
    pub mining: TripletMining,
    /// How the per-triplet losses are averaged.
    #[config(default = "TripletReduction::MeanNonzero")]
    pub reduction: TripletReduction,
}

impl TripletMarginLossConfig {
    /// Builds the loss.
    ///
    /// # Panics
    ///
    /// When `margin` is negative or not finite.
    pub fn init(&self) -> TripletMarginLoss {
        assert!(
            self.margin.is_finite() && self.margin >= 0.0,
            "TripletMarginLoss: margin must be >= 0, got {}",
            self.margin
        );
        TripletMarginLoss {
            margin: self.margin,
            distance: self.distance,
            normalize: self.normalize,
            mining: self.mining,
            reduction: self.reduction,
        }
    }
}

/// Triplet margin loss over all triplets of a labelled batch, with online mining.
///
/// For each selected triplet `(a, p, n)` (`p ≠ a` with the anchor's label, `n` with another) the
/// loss is `relu(m − gap)`, `gap` as in [`TripletMining`]. Equals pytorch-metric-learning's
/// `TripletMarginLoss` with `LpDistance` / `CosineSimilarity`, combined with the
/// `TripletMarginMiner` / `BatchHardMiner` selection. When no triplet is selected or none is
/// active the loss is 0 and still back-propagates (zero gradients), never NaN.
///
/// Memory: the dense modes hold `N³` values (N = 256 → 64 MiB per tensor); `batch_hard` holds
/// `N²`.
///
/// References: \[0\] FaceNet, 2015, arXiv:1503.03832; \[1\] In Defense of the Triplet Loss,
/// 2017, arXiv:1703.07737 (batch hard).
///
/// # Example
///
/// ```
/// use burn::tensor::{Int, Tensor};
/// use selfsup_losses::{TripletMarginLossConfig, TripletMining};
///
/// # let device = selfsup_backend::test_device();
/// let loss = TripletMarginLossConfig::new()
///     .with_margin(0.2)
///     .with_mining(TripletMining::BatchHard)
///     .init();
/// let x = Tensor::<2>::from_floats([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], &device);
/// let labels = Tensor::<1, Int>::from_ints([0, 0, 1, 1], &device);
/// let (value, stats) = loss.forward_with_stats(x, labels);
/// assert_eq!(stats.selected, 4);
/// assert!(value.into_scalar::<f32>() >= 0.0);
/// ```
#[derive(Module, Debug)]
pub struct TripletMarginLoss {
    /// Margin.
    pub margin: f64,
    /// How embeddings are compared.
    #[module(skip)]
    pub distance: Distance,
    /// Whether rows are L2-normalised first.
    pub normalize: bool,
    /// Which triplets are trained on.
    #[module(skip)]
    pub mining: TripletMining,
    /// How the per-triplet losses are averaged.
    #[module(skip)]
    pub reduction: TripletReduction,
}

/// How many triplets a batch gave.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TripletStats {
    /// Triplets chosen by the mining mode.
    pub selected: usize,
    /// Chosen triplets with a loss > 0.
    pub active: usize,
    /// `active / selected` (0 when nothing was selected).
    pub active_fraction: f64,
}

impl TripletMarginLoss {
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
        let (losses, selected) = self.triplets(embeddings, labels);
        self.reduce(losses, selected)
    }

    /// The loss and the number of selected and active triplets (reads two counts back from
    /// the device).
    pub fn forward_with_stats(
        &self,
        embeddings: Tensor<2>,
        labels: Tensor<1, Int>,
    ) -> (Tensor<1>, TripletStats) {
        let (losses, selected) = self.triplets(embeddings, labels);
        let active = losses
            .clone()
            .detach()
            .greater_elem(0.0)
            .bool_and(selected.clone());
        let selected_count = selected.clone().int().sum().into_scalar::<i64>() as usize;
        let active_count = active.int().sum().into_scalar::<i64>() as usize;
        let stats = TripletStats {
            selected: selected_count,
            active: active_count,
            active_fraction: if selected_count == 0 {
                0.0
            } else {
                active_count as f64 / selected_count as f64
            },
        };
        (self.reduce(losses, selected), stats)
    }

    fn reduce<const D: usize>(&self, losses: Tensor<D>, selected: Tensor<D, Bool>) -> Tensor<1> {
        let counted = match self.reduction {
            TripletReduction::MeanNonzero => losses
                .clone()
                .detach()
                .greater_elem(0.0)
                .bool_and(selected.clone()),
            TripletReduction::Mean => selected.clone(),
        };
        let total = losses.mask_fill(selected.bool_not(), 0.0).sum();
        total / counted.float().sum().clamp_min(1.0)
    }

    /// Per-triplet losses and the mask of selected triplets: `[N, N, N]` indexed `(a, p, n)`
    /// for the dense modes, `[N, 1]` (one triplet per anchor) for batch-hard.
    fn triplets(
        &self,
        embeddings: Tensor<2>,
        labels: Tensor<1, Int>,
    ) -> (Tensor<3>, Tensor<3, Bool>) {
        let [n, _] = embeddings.dims();
        assert_min_rows("TripletMarginLoss", "embeddings", n, 1);
        assert_labels("TripletMarginLoss", n, &labels);

        let values = self.distance.pairwise(embeddings, self.normalize);
        let same = same_label(labels);
        let positive = same.clone().bool_and(diagonal_mask(n, &values).bool_not());
        let negative = same.bool_not();
        let margin = self.margin;
        let similarity = self.distance.is_similarity();

        if self.mining == TripletMining::BatchHard {
            let (closest, farthest) = (f32::NEG_INFINITY, f32::INFINITY);
            let (hardest_positive, hardest_negative) = if similarity {
                (
                    values
                        .clone()
                        .mask_fill(positive.clone().bool_not(), farthest)
                        .min_dim(1),
                    values
                        .mask_fill(negative.clone().bool_not(), closest)
                        .max_dim(1),
                )
            } else {
                (
                    values
                        .clone()
                        .mask_fill(positive.clone().bool_not(), closest)
                        .max_dim(1),
                    values
                        .mask_fill(negative.clone().bool_not(), farthest)
                        .min_dim(1),
                )
            };
            let gap = if similarity {
                hardest_positive - hardest_negative
            } else {
                hardest_negative - hardest_positive
            };
            let usable = positive.any_dim(1).bool_and(negative.any_dim(1));
            // Anchors without a positive or a negative have an infinite gap: replace it before
            // it reaches the loss, so neither the value nor the gradient sees an infinity.
            let gap = gap
                .clone()
                .mask_where(usable.clone().bool_not(), gap.zeros_like());
            let losses = relu(gap.neg().add_scalar(margin));
            return (losses.unsqueeze_dim(2), usable.unsqueeze_dim(2));
        }

        let anchor_positive = values.clone().reshape([n, n, 1]).repeat_dim(2, n);
        let anchor_negative = values.reshape([n, 1, n]).repeat_dim(1, n);
        let gap = if similarity {
            anchor_positive - anchor_negative
        } else {
            anchor_negative - anchor_positive
        };
        let valid = positive
            .reshape([n, n, 1])
            .repeat_dim(2, n)
            .bool_and(negative.reshape([n, 1, n]).repeat_dim(1, n));
        let g = gap.clone().detach();
        let selected = match self.mining {
            TripletMining::All => valid,
            TripletMining::Violating => valid.bool_and(g.lower_equal_elem(margin)),
            TripletMining::Hard => valid.bool_and(g.lower_equal_elem(0.0)),
            TripletMining::SemiHard => valid
                .bool_and(g.clone().greater_elem(0.0))
                .bool_and(g.lower_equal_elem(margin)),
            TripletMining::BatchHard => unreachable!("handled above"),
        };
        (relu(gap.neg().add_scalar(margin)), selected)
    }
}
