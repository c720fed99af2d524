//! Self-supervised methods for Burn that plug into burn-train.
//!
//! Each method is a [`Module`](burn::module::Module) holding its encoder, heads, loss and
//! state (momentum teachers, MoCo's queue, DINO's center, step counters — all saved and loaded
//! with the module). Each implements [`Method`] for hand-written loops and burn-train's
//! `TrainStep` + `InferenceStep`, so `SupervisedTraining` trains it unchanged. Momentum
//! teachers are updated after the optimizer step (`TrainStep::optimize`), outside autodiff;
//! they never receive gradients.
//!
//! | method | kind | loss |
//! |---|---|---|
//! | [`SimClr`] | contrastive | NT-Xent |
//! | [`MocoV2`] | contrastive, momentum encoder + queue | InfoNCE |
//! | [`MocoV3`] | contrastive, momentum encoder + predictor, in-batch keys | MoCo v3 (2τ-scaled InfoNCE) |
//! | [`Byol`] | momentum teacher, predictor | negative cosine |
//! | [`SimSiam`] | stop-gradient twin, predictor | negative cosine |
//! | [`BarlowTwins`] | redundancy reduction | Barlow Twins |
//! | [`VicReg`] | variance-invariance-covariance | VICReg |
//! | [`Dino`] | self-distillation, multi-crop | DINO |
//! | [`SupCon`] | supervised contrastive | SupCon |
//! | [`Triplet`] | metric learning, mining | triplet margin |
//! | [`Autoencoder`] | reconstruction (plain, denoising, masked) | MSE / BCE |
#![warn(missing_docs)]

mod autoencoder;
mod batch;
mod contrastive;
mod dino;
mod ema;
mod labelled;
mod method;
mod output;
mod queue;
mod renderer;
mod teacher;

pub use autoencoder::{Autoencoder, Corruption};
pub use batch::MultiViewBatch;
pub use contrastive::{BarlowTwins, PairLoss, SimClr, TwoViewMethod, VicReg};
pub use dino::Dino;
pub use ema::{cosine_momentum, ema_update, teacher_of};
pub use labelled::{SupCon, Triplet};
pub use method::Method;
pub use output::SslOutput;
pub use queue::KeyQueue;
pub use renderer::EpochRenderer;
pub use teacher::{Byol, MocoV2, MocoV3, SimSiam, StepCounter};
