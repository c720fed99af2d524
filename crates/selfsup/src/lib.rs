//! **selfsup**: self-supervised learning for [Burn](https://burn.dev).
//!
//! One dependency gives a Burn application the SSL toolbox PyTorch users get from lightly,
//! solo-learn and pytorch-metric-learning: losses, heads, methods, augmentations and
//! evaluation, written once against Burn's backend-free `Tensor<D>` and `&Device`, and checked
//! against the reference implementations' numbers on every backend.
//!
//! Backends are cargo features of this crate: `flex` (default), `ndarray`, `wgpu`, `vulkan`,
//! `tch`, `cuda`. The model code does not change with the backend; only the [`Device`] does.
//!
//! ```
//! use selfsup::prelude::*;
//!
//! let device = selfsup::backend::device(Backend::default_compiled());
//! let loss = NtXentLossConfig::new().with_temperature(0.5).init();
//! let z_a = Tensor::<2>::random([8, 16], Distribution::Normal(0.0, 1.0), &device);
//! let z_b = z_a.clone() + Tensor::random([8, 16], Distribution::Normal(0.0, 0.1), &device);
//! assert!(loss.forward(z_a, z_b).into_scalar::<f32>().is_finite());
//! ```
#![warn(missing_docs)]

pub use burn::tensor::Device;
/// Augmentations on device tensors, view presets and the multi-view batcher.
pub use selfsup_augment as augment;
/// Backend selection: names, devices, the environment and a probe of what works here.
pub use selfsup_backend as backend;
/// Data sets: embedded defaults, offline fetching, IDX files.
pub use selfsup_data as data;
/// Evaluation: kNN and label-free metrics (RankMe, alignment, uniformity, collapse).
pub use selfsup_eval as eval;
/// The SSL losses.
pub use selfsup_losses as losses;
/// Self-supervised methods (SimCLR, MoCo v2, BYOL, ...) that plug into burn-train.
pub use selfsup_methods as methods;
/// Encoders, decoders, projection and prediction heads, and the `Conv2d` / `BatchNorm` layers
/// on selfsup's own kernels.
pub use selfsup_nn as nn;
/// selfsup's own ops (convolution, batch norm) with per-backend kernels and backward passes.
pub use selfsup_ops as ops;

/// The types most programs need.
pub mod prelude {
    pub use crate::augment::{Augmentation, MultiViewBatcher, Pipeline, Rng};
    pub use crate::backend::Backend;
    pub use crate::losses::*;
    pub use crate::methods::*;
    pub use crate::nn::*;
    pub use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
}
