//! Self-supervised learning losses for Burn, exact against the PyTorch references
//! (lightly, pytorch-metric-learning, torch).
//!
//! Every loss is a `XConfig` that builds an `X` module whose `forward` returns a scalar
//! `Tensor<1>`. Losses are written once against Burn's backend-free tensors and run on every
//! backend; the project's golden tests check each one, loss and gradients, against values the
//! reference implementations computed in float64.
//!
//! | loss | used by | reference |
//! |---|---|---|
//! | [`NtXentLoss`] (optionally memory-bounded) | SimCLR | `lightly.loss.NTXentLoss` |
//! | [`InfoNceLoss`] | MoCo v2 | lightly `NTXentLoss` with a memory bank |
//! | [`MocoV3Loss`] | MoCo v3 | Chen, Xie & He 2021, Algorithm 1 |
//! | [`NegativeCosineSimilarity`] | BYOL, SimSiam | `lightly.loss.NegativeCosineSimilarity` |
//! | [`BarlowTwinsLoss`] | Barlow Twins | `lightly.loss.BarlowTwinsLoss` |
//! | [`VicRegLoss`] | VICReg | `lightly.loss.VICRegLoss` |
//! | [`DinoLoss`] | DINO | `lightly.loss.DINOLoss` |
//! | [`SupConLoss`] | SupCon | Khosla et al. 2020 |
//! | [`TripletMarginLoss`] + [`TripletMining`] | metric learning | `pytorch_metric_learning` |
//! | [`ContrastiveLoss`] | metric learning | `pytorch_metric_learning` |
//! | [`ReconstructionLoss`] | autoencoders (plain, denoising, masked) | `torch.nn.functional` |
//!
//! Normalised losses divide rows by `max(‖x‖, 1e-12)` like `torch.nn.functional.normalize`,
//! so an all-zero row gives a finite loss and finite (zero) gradients; softmax-based losses
//! shift by the row maximum, so small temperatures do not overflow.
#![warn(missing_docs)]

mod barlow_twins;
mod contrastive;
mod dino;
mod distance;
mod info_nce;
mod moco_v3;
mod negative_cosine;
mod nt_xent;
mod ops;
mod reconstruction;
mod supcon;
mod triplet;
mod vicreg;

pub use barlow_twins::{BarlowTwinsLoss, BarlowTwinsLossConfig};
pub use contrastive::{ContrastiveLoss, ContrastiveLossConfig};
pub use dino::{DinoLoss, DinoLossConfig};
pub use distance::Distance;
pub use info_nce::{InfoNceLoss, InfoNceLossConfig};
pub use moco_v3::{MocoV3Loss, MocoV3LossConfig};
pub use negative_cosine::{NegativeCosineSimilarity, cosine_similarity};
pub use nt_xent::{NtXentLoss, NtXentLossConfig};
pub use reconstruction::{ReconstructionKind, ReconstructionLoss, ReconstructionLossConfig};
pub use supcon::{SupConLoss, SupConLossConfig};
pub use triplet::{
    TripletMarginLoss, TripletMarginLossConfig, TripletMining, TripletReduction, TripletStats,
};
pub use vicreg::{
    VicRegLoss, VicRegLossConfig, VicRegStats, covariance_loss, invariance_loss, variance_loss,
};
