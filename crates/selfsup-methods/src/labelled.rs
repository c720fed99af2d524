//! Methods that compare many views by label: SupCon and triplet (with labels, or
//! self-supervised with each sample's augmented views as its positives).

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use selfsup_dist::{current, gather_labels, gather_rows};
use selfsup_losses::{SupConLoss, SupConLossConfig, TripletMarginLoss, TripletMarginLossConfig};
use selfsup_nn::{Encoder, ProjectionHead, ProjectionHeadConfig};

use crate::method::burn_train_steps;
use crate::{Method, MultiViewBatch, SslOutput};

/// Projects every view and stacks them; returns view-0 features, the stacked projections
/// `[V·N, D]` and the matching labels (the batch's labels, or each sample's index).
fn stacked(
    encoder: &impl Encoder,
    projector: &ProjectionHead,
    batch: &MultiViewBatch,
    labels: Option<Tensor<1, Int>>,
) -> (Tensor<2>, Tensor<2>, Tensor<1, Int>) {
    let features: Vec<Tensor<2>> = batch
        .views
        .iter()
        .map(|v| encoder.encode(v.clone()))
        .collect();
    let n = features[0].dims()[0];
    let device = features[0].device();
    // Without labels each sample is its own class; on W ranks its index in the global batch.
    let first = (current().rank() * n) as i64;
    let labels = labels.unwrap_or_else(|| Tensor::arange(first..first + n as i64, &device));
    let all_labels = Tensor::cat(vec![gather_labels(labels); batch.views.len()], 0);
    let projections = Tensor::cat(
        features
            .iter()
            .map(|h| gather_rows(projector.forward(h.clone())))
            .collect(),
        0,
    );
    (features[0].clone(), projections, all_labels)
}

/// Supervised contrastive learning: all views of all samples with the same label attract.
/// Needs labels. Reference: \[0\] SupCon, 2020, arXiv:2004.11362.
#[derive(Module, Debug)]
pub struct SupCon<E: Encoder> {
    /// The backbone being trained.
    pub encoder: E,
    /// Projection head.
    pub projector: ProjectionHead,
    /// SupCon loss.
    pub loss: SupConLoss,
}

impl<E: Encoder> SupCon<E> {
    /// SupCon with a SimCLR-shaped head and temperature τ (0.1 in the paper).
    pub fn new(
        encoder: E,
        hidden_dim: usize,
        output_dim: usize,
        temperature: f64,
        device: &Device,
    ) -> Self {
        let projector =
            ProjectionHeadConfig::simclr(encoder.output_dim(), hidden_dim, output_dim).init(device);
        SupCon {
            encoder,
            projector,
            loss: SupConLossConfig::new().with_temperature(temperature).init(),
        }
    }
}

impl<E: Encoder> Method for SupCon<E> {
    type Encoder = E;

    fn encoder(&self) -> &E {
        &self.encoder
    }

    fn forward(&self, batch: MultiViewBatch) -> SslOutput {
        batch.expect_views("SupCon", 1);
        let labels = batch.expect_labels("SupCon");
        let (h0, z, y) = stacked(&self.encoder, &self.projector, &batch, Some(labels));
        SslOutput {
            loss: self.loss.forward(z, y),
            embeddings: h0,
        }
    }
}
burn_train_steps!(SupCon<E: Encoder>);

/// Metric learning with a triplet margin loss and online mining. With labels it trains on
/// classes; without, each sample's augmented views are its positives (self-supervised).
#[derive(Module, Debug)]
pub struct Triplet<E: Encoder> {
    /// The backbone being trained.
    pub encoder: E,
    /// Embedding head.
    pub projector: ProjectionHead,
    /// Triplet loss with its mining mode.
    pub loss: TripletMarginLoss,
}

impl<E: Encoder> Triplet<E> {
    /// A triplet method with a SimCLR-shaped embedding head and the given loss.
    pub fn new(
        encoder: E,
        hidden_dim: usize,
        output_dim: usize,
        loss: TripletMarginLossConfig,
        device: &Device,
    ) -> Self {
        let projector =
            ProjectionHeadConfig::simclr(encoder.output_dim(), hidden_dim, output_dim).init(device);
        Triplet {
            encoder,
            projector,
            loss: loss.init(),
        }
    }
}

impl<E: Encoder> Method for Triplet<E> {
    type Encoder = E;

    fn encoder(&self) -> &E {
        &self.encoder
    }

    fn forward(&self, batch: MultiViewBatch) -> SslOutput {
        let views_needed = if batch.labels.is_some() { 1 } else { 2 };
        batch.expect_views("Triplet", views_needed);
        let (h0, z, y) = stacked(&self.encoder, &self.projector, &batch, batch.labels.clone());
        SslOutput {
            loss: self.loss.forward(z, y),
            embeddings: h0,
        }
    }
}
burn_train_steps!(Triplet<E: Encoder>);
