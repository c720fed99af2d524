//! Methods built from an encoder, one head and a loss between two views' projections:
//! SimCLR, Barlow Twins, VICReg.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use selfsup_dist::gather_rows;
use selfsup_losses::{
    BarlowTwinsLoss, BarlowTwinsLossConfig, NtXentLoss, NtXentLossConfig, VicRegLoss,
    VicRegLossConfig,
};
use selfsup_nn::{Encoder, ProjectionHead, ProjectionHeadConfig};

use crate::method::burn_train_steps;
use crate::{Method, MultiViewBatch, SslOutput};

/// A loss between the projections of two views of the same samples.
pub trait PairLoss: Module + burn::module::ModuleDisplay {
    /// # Shapes
    /// - z_a, z_b: `[N, D]` → `[1]`
    fn pair_loss(&self, z_a: Tensor<2>, z_b: Tensor<2>) -> Tensor<1>;
}

impl PairLoss for NtXentLoss {
    fn pair_loss(&self, z_a: Tensor<2>, z_b: Tensor<2>) -> Tensor<1> {
        self.forward(z_a, z_b)
    }
}

impl PairLoss for BarlowTwinsLoss {
    fn pair_loss(&self, z_a: Tensor<2>, z_b: Tensor<2>) -> Tensor<1> {
        self.forward(z_a, z_b)
    }
}

impl PairLoss for VicRegLoss {
    fn pair_loss(&self, z_a: Tensor<2>, z_b: Tensor<2>) -> Tensor<1> {
        self.forward(z_a, z_b)
    }
}

/// Encoder → projector on two views, then a [`PairLoss`] between the projections.
#[derive(Module, Debug)]
pub struct TwoViewMethod<E: Encoder, L: PairLoss> {
    /// The backbone being pretrained.
    pub encoder: E,
    /// The head the loss sees (discarded after pretraining).
    pub projector: ProjectionHead,
    /// The loss between the two projections.
    pub loss: L,
}

/// SimCLR: NT-Xent between two views' projections.
/// Reference: \[0\] SimCLR, 2020, arXiv:2002.05709.
pub type SimClr<E> = TwoViewMethod<E, NtXentLoss>;
/// Barlow Twins: the views' cross-correlation is pushed to the identity.
/// Reference: \[0\] Barlow Twins, 2021, arXiv:2103.03230.
pub type BarlowTwins<E> = TwoViewMethod<E, BarlowTwinsLoss>;
/// VICReg: invariance between the views, variance and decorrelation within each.
/// Reference: \[0\] VICReg, 2022, arXiv:2105.04906.
pub type VicReg<E> = TwoViewMethod<E, VicRegLoss>;

impl<E: Encoder> TwoViewMethod<E, NtXentLoss> {
    /// SimCLR with the paper's head shape, `Linear → BN → ReLU → Linear`.
    pub fn simclr(
        encoder: E,
        hidden_dim: usize,
        output_dim: usize,
        temperature: f64,
        device: &Device,
    ) -> Self {
        let head = ProjectionHeadConfig::simclr(encoder.output_dim(), hidden_dim, output_dim);
        TwoViewMethod {
            projector: head.init(device),
            encoder,
            loss: NtXentLossConfig::new().with_temperature(temperature).init(),
        }
    }
}

impl<E: Encoder> TwoViewMethod<E, BarlowTwinsLoss> {
    /// Barlow Twins with the paper's three-layer projector (8192 wide there) and weight λ.
    pub fn barlow_twins(
        encoder: E,
        hidden_dim: usize,
        output_dim: usize,
        lambda: f64,
        device: &Device,
    ) -> Self {
        let head = ProjectionHeadConfig::barlow_twins(encoder.output_dim(), hidden_dim, output_dim);
        TwoViewMethod {
            projector: head.init(device),
            encoder,
            loss: BarlowTwinsLossConfig::new().with_lambda(lambda).init(),
        }
    }
}

impl<E: Encoder> TwoViewMethod<E, VicRegLoss> {
    /// VICReg with the paper's three-layer expander and loss weights (25, 25, 1).
    pub fn vicreg(encoder: E, hidden_dim: usize, output_dim: usize, device: &Device) -> Self {
        let head = ProjectionHeadConfig::vicreg(encoder.output_dim(), hidden_dim, output_dim);
        TwoViewMethod {
            projector: head.init(device),
            encoder,
            loss: VicRegLossConfig::new().init(),
        }
    }
}

impl<E: Encoder, L: PairLoss> Method for TwoViewMethod<E, L> {
    type Encoder = E;

    fn encoder(&self) -> &E {
        &self.encoder
    }

    fn forward(&self, batch: MultiViewBatch) -> SslOutput {
        batch.expect_views("TwoViewMethod", 2);
        let h0 = self.encoder.encode(batch.views[0].clone());
        let h1 = self.encoder.encode(batch.views[1].clone());
        // On W ranks the loss sees the global batch (see `selfsup_dist`).
        let loss = self.loss.pair_loss(
            gather_rows(self.projector.forward(h0.clone())),
            gather_rows(self.projector.forward(h1)),
        );
        SslOutput {
            loss,
            embeddings: h0,
        }
    }
}
burn_train_steps!(TwoViewMethod<E: Encoder, L: PairLoss>);
