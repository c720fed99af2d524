use burn::module::Module;
use burn::tensor::{Distribution, Tensor};
use selfsup_dist::gather_rows;
use selfsup_losses::{ReconstructionKind, ReconstructionLoss, ReconstructionLossConfig};
use selfsup_nn::{Decoder, Encoder};

use crate::method::burn_train_steps;
use crate::{Method, MultiViewBatch, SslOutput};

/// How an [`Autoencoder`] corrupts its input before encoding it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Corruption {
    /// None: a plain autoencoder.
    None,
    /// Adds Gaussian noise of this standard deviation (denoising autoencoder); the target is
    /// the clean input.
    GaussianNoise(f64),
    /// Hides a random `ratio` of `patch × patch` squares (masked autoencoder); the loss counts
    /// only the hidden pixels.
    Mask {
        /// Fraction of patches hidden, in `(0, 1)`.
        ratio: f64,
        /// Side of a square patch in pixels; must divide the image size.
        patch: usize,
    },
}

/// An autoencoder: plain, denoising or masked, reconstructing view 0 of the batch.
#[derive(Module, Debug)]
pub struct Autoencoder<E: Encoder, D: Decoder> {
    /// The encoder being pretrained.
    pub encoder: E,
    /// The decoder (discarded after pretraining).
    pub decoder: D,
    /// Reconstruction loss (BCE on logits for pixels in `[0, 1]`, or MSE).
    pub loss: ReconstructionLoss,
    /// How the input is corrupted.
    #[module(skip)]
    pub corruption: Corruption,
}

impl<E: Encoder, D: Decoder> Autoencoder<E, D> {
    /// An autoencoder with the given loss and corruption.
    ///
    /// # Panics
    ///
    /// When a noise level is negative, a mask ratio is outside `(0, 1)` or a patch is 0.
    pub fn new(encoder: E, decoder: D, kind: ReconstructionKind, corruption: Corruption) -> Self {
        match corruption {
            Corruption::None => {}
            Corruption::GaussianNoise(std) => assert!(
                std.is_finite() && std >= 0.0,
                "Autoencoder: noise std must be >= 0, got {std}"
            ),
            Corruption::Mask { ratio, patch } => {
                assert!(
                    ratio > 0.0 && ratio < 1.0,
                    "Autoencoder: mask ratio must be in (0, 1), got {ratio}"
                );
                assert!(patch > 0, "Autoencoder: mask patch must be > 0, got 0");
            }
        }
        Autoencoder {
            encoder,
            decoder,
            loss: ReconstructionLossConfig::new().with_kind(kind).init(),
            corruption,
        }
    }
}

/// A `[N, 1, H, W]` mask of 0/1 patches, 1 = hidden.
fn patch_mask(like: &Tensor<4>, ratio: f64, patch: usize) -> Tensor<4> {
    let [n, _, h, w] = like.dims();
    assert!(
        h % patch == 0 && w % patch == 0,
        "Autoencoder: mask patch {patch} must divide the image size {h}×{w}"
    );
    let (ph, pw) = (h / patch, w / patch);
    Tensor::<4>::random(
        [n, 1, ph, pw],
        Distribution::Bernoulli(ratio),
        &like.device(),
    )
    .reshape([n, 1, ph, 1, pw, 1])
    .repeat_dim(3, patch)
    .repeat_dim(5, patch)
    .reshape([n, 1, h, w])
}

impl<E: Encoder, D: Decoder> Method for Autoencoder<E, D> {
    type Encoder = E;

    fn encoder(&self) -> &E {
        &self.encoder
    }

    fn forward(&self, batch: MultiViewBatch) -> SslOutput {
        batch.expect_views("Autoencoder", 1);
        let clean = batch.views[0].clone();
        let (input, mask) = match self.corruption {
            Corruption::None => (clean.clone(), None),
            Corruption::GaussianNoise(std) => {
                let noise = clean.random_like(Distribution::Normal(0.0, std));
                (clean.clone() + noise, None)
            }
            Corruption::Mask { ratio, patch } => {
                let [_, c, _, _] = clean.dims();
                let mask = patch_mask(&clean, ratio, patch).repeat_dim(1, c);
                (
                    clean.clone() * mask.clone().neg().add_scalar(1.0),
                    Some(mask),
                )
            }
        };
        let features = self.encoder.encode(input);
        let reconstruction = gather_images(self.decoder.decode(features.clone()));
        let clean = gather_images(clean);
        let loss = match mask {
            Some(mask) => self
                .loss
                .forward_masked(reconstruction, clean, gather_images(mask)),
            None => self.loss.forward(reconstruction, clean),
        };
        SslOutput {
            loss,
            embeddings: features,
        }
    }
}
burn_train_steps!(Autoencoder<E: Encoder, D: Decoder>);

/// The global batch of `images` on W ranks (see `selfsup_dist::gather_rows`).
fn gather_images(images: Tensor<4>) -> Tensor<4> {
    let [n, c, h, w] = images.dims();
    let rows = gather_rows(images.reshape([n, c * h * w]));
    let total = rows.dims()[0];
    rows.reshape([total, c, h, w])
}
