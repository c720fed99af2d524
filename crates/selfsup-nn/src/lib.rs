//! Encoders, decoders and heads for self-supervised learning with Burn.
//!
//! - [`Conv2d`], [`BatchNorm`] (with [`BatchNorm::forward_relu`], the `BN → ReLU` pair as
//!   one op) and [`MaxPool2d`] are Burn's layers (same fields, records and initialisation)
//!   on selfsup's own kernels (`selfsup-ops`); the networks here use them, and so can yours.
//! - Encoders implement [`Encoder`]: images `[N, C, H, W]` in, features `[N, output_dim]` out.
//!   [`MlpEncoder`], [`ConvNetS`] (a small CNN for 28×28 images) and [`ResNet18`] (CIFAR stem).
//! - Decoders turn features back into images for autoencoders: [`MlpDecoder`],
//!   [`ConvNetSDecoder`].
//! - [`ProjectionHead`] is a stack of `(Linear, BatchNorm?, activation?)` blocks with presets
//!   carrying each paper's dimensions (SimCLR, MoCo v2, BYOL, SimSiam, Barlow Twins, VICReg);
//!   [`DinoHead`] is DINO's bottleneck head with a weight-normalised last layer.
#![warn(missing_docs)]

mod conv;
mod convnet;
mod decoder;
mod dino_head;
mod encoder;
mod heads;
mod mlp;
mod norm;
mod pool;
mod resnet;

pub use conv::{Conv2d, Conv2dConfig};
pub use convnet::{ConvNetS, ConvNetSConfig};
pub use decoder::{ConvNetSDecoder, ConvNetSDecoderConfig, Decoder, MlpDecoder, MlpDecoderConfig};
pub use dino_head::{DinoHead, DinoHeadConfig};
pub use encoder::Encoder;
pub use heads::{Activation, BlockConfig, ProjectionHead, ProjectionHeadConfig};
pub use mlp::{MlpEncoder, MlpEncoderConfig};
pub use norm::{BatchNorm, BatchNormConfig, set_sync_batch_norm};
pub use pool::MaxPool2d;
pub use resnet::{ResNet18, ResNet18Config};
