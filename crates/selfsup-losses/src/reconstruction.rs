use burn::config::Config;
use burn::module::Module;
use burn::tensor::Tensor;

use crate::ops::assert_same_shape;

/// The per-element error an autoencoder minimises.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum ReconstructionKind {
    /// `(x − t)²`, for real-valued targets.
    Mse,
    /// `|x − t|`, more robust to outlier pixels.
    L1,
    /// Binary cross-entropy on logits, `max(x, 0) − x·t + log(1 + e^{−|x|})`, for targets in
    /// `[0, 1]` (pixel intensities); numerically stable for any logit.
    BceWithLogits,
}

/// Configuration of [`ReconstructionLoss`].
#[derive(Config, Debug)]
pub struct ReconstructionLossConfig {
    /// Which per-element error to average.
    #[config(default = "ReconstructionKind::Mse")]
    pub kind: ReconstructionKind,
}

impl ReconstructionLossConfig {
    /// Builds the loss.
    pub fn init(&self) -> ReconstructionLoss {
        ReconstructionLoss { kind: self.kind }
    }
}

/// Reconstruction loss for plain, denoising and masked autoencoders.
///
/// [`forward`](Self::forward) averages the per-element error over every element, like
/// `torch.nn.functional.mse_loss`, `l1_loss` and `binary_cross_entropy_with_logits` with
/// `reduction="mean"`. [`forward_masked`](Self::forward_masked) averages it only over the
/// positions a mask selects, as masked autoencoders do (\[0\] MAE, 2021, arXiv:2111.06377).
///
/// The target is treated as a constant: no gradient flows into it.
///
/// # Example
///
/// ```
/// use burn::tensor::Tensor;
/// use selfsup_losses::{ReconstructionKind, ReconstructionLossConfig};
///
/// # let device = selfsup_backend::test_device();
/// let loss = ReconstructionLossConfig::new().with_kind(ReconstructionKind::Mse).init();
/// let x = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0]], &device);
/// let target = Tensor::<2>::from_floats([[2.0, 1.0], [3.0, 2.0]], &device);
/// assert_eq!(loss.forward(x, target).into_scalar::<f32>(), 1.5);
/// ```
#[derive(Module, Debug)]
pub struct ReconstructionLoss {
    /// Which per-element error is averaged.
    #[module(skip)]
    pub kind: ReconstructionKind,
}

impl ReconstructionLoss {
    /// Mean per-element error between a reconstruction and its target.
    ///
    /// # Shapes
    ///
    /// - x, target: any shape `[..]`, the same for both
    /// - output: `[1]`
    ///
    /// # Panics
    ///
    /// When the shapes differ.
    pub fn forward<const D: usize>(&self, x: Tensor<D>, target: Tensor<D>) -> Tensor<1> {
        assert_same_shape::<D>("ReconstructionLoss", ("x", &x), ("target", &target));
        self.elementwise(x, target).mean()
    }

    /// Mean per-element error over the positions where `mask` is 1 (masked-out inputs the
    /// model had to reconstruct); positions where it is 0 are ignored. When the mask selects
    /// nothing the loss is 0 and still back-propagates (zero gradients), rather than `0/0`.
    ///
    /// # Shapes
    ///
    /// - x, target, mask: the same shape `[..]`; mask holds 0 or 1 (or weights ≥ 0)
    /// - output: `[1]`
    ///
    /// # Panics
    ///
    /// When the shapes differ.
    pub fn forward_masked<const D: usize>(
        &self,
        x: Tensor<D>,
        target: Tensor<D>,
        mask: Tensor<D>,
    ) -> Tensor<1> {
        assert_same_shape::<D>("ReconstructionLoss", ("x", &x), ("target", &target));
        assert_same_shape::<D>("ReconstructionLoss", ("x", &x), ("mask", &mask));
        let mask = mask.detach();
        let weight = mask.clone().sum().clamp_min(1e-12);
        (self.elementwise(x, target) * mask).sum() / weight
    }

    /// The per-element error, not reduced.
    pub fn elementwise<const D: usize>(&self, x: Tensor<D>, target: Tensor<D>) -> Tensor<D> {
        let target = target.detach();
        match self.kind {
            ReconstructionKind::Mse => (x - target).square(),
            ReconstructionKind::L1 => (x - target).abs(),
            ReconstructionKind::BceWithLogits => {
                // max(x, 0) − x·t + log(1 + e^{−|x|}): never exponentiates a positive number.
                let softplus_tail = x.clone().abs().neg().exp().log1p();
                x.clone().clamp_min(0.0) - x * target + softplus_tail
            }
        }
    }
}
