//! Methods with a momentum teacher (BYOL, MoCo v2, MoCo v3) or a stop-gradient twin (SimSiam).

use burn::module::{Module, Param, ParamId};
use burn::tensor::{Device, Tensor};
use selfsup_dist::gather_rows;
use selfsup_losses::{
    InfoNceLoss, InfoNceLossConfig, MocoV3Loss, MocoV3LossConfig, NegativeCosineSimilarity,
};
use selfsup_nn::{Encoder, ProjectionHead, ProjectionHeadConfig};

use crate::ema::{cosine_momentum, ema_update, teacher_of};
use crate::method::burn_train_steps;
use crate::{KeyQueue, Method, MultiViewBatch, SslOutput};

/// A step counter saved with the module (a float: exact up to 2²⁴ steps).
///
/// The count is kept on the host as well, so that reading it every step (for a momentum
/// schedule) does not make the step wait for the device. Every increment gives the parameter a
/// new id, and the host copy names the id it belongs to; a loaded record restores its own id,
/// so a loaded counter is read from the device until its next increment.
#[derive(Module, Debug)]
pub struct StepCounter {
    count: Param<Tensor<1>>,
    #[module(skip)]
    host: Option<(ParamId, usize)>,
}

impl StepCounter {
    /// A counter at 0.
    pub fn new(device: &Device) -> Self {
        let count = Param::from_tensor(Tensor::zeros([1], device)).set_require_grad(false);
        StepCounter {
            host: Some((count.id, 0)),
            count,
        }
    }

    /// Steps taken so far.
    pub fn get(&self) -> usize {
        match self.host {
            Some((id, steps)) if id == self.count.id => steps,
            _ => self.count.val().into_scalar::<f32>() as usize,
        }
    }

    /// The counter one step later.
    pub fn increment(self) -> Self {
        let steps = self.get() + 1;
        let (_, count, mapper) = self.count.consume();
        let id = ParamId::new();
        StepCounter {
            count: Param::from_mapped_value(id, count.add_scalar(1.0), mapper),
            host: Some((id, steps)),
        }
    }
}

/// BYOL: an online network (encoder, projector, predictor) predicts the projection a momentum
/// teacher gives of the other view; no negatives. The teacher follows the online network with
/// a momentum rising from `base_momentum` to 1 along a cosine over `total_steps`.
/// Reference: \[0\] BYOL, 2020, arXiv:2006.07733.
#[derive(Module, Debug)]
pub struct Byol<E: Encoder> {
    /// Online backbone (the one kept after pretraining).
    pub encoder: E,
    /// Online projector.
    pub projector: ProjectionHead,
    /// Online predictor.
    pub predictor: ProjectionHead,
    /// Momentum copy of the encoder (no gradients).
    pub target_encoder: E,
    /// Momentum copy of the projector (no gradients).
    pub target_projector: ProjectionHead,
    /// Optimizer steps taken, for the momentum schedule.
    pub steps: StepCounter,
    /// Momentum at step 0 (0.996 in the paper).
    pub base_momentum: f64,
    /// Steps over which the momentum reaches 1.
    pub total_steps: usize,
}

impl<E: Encoder> Byol<E> {
    /// BYOL with the paper's head shapes (4096 hidden, 256 out there), the predictor as wide
    /// as the projector.
    pub fn new(
        encoder: E,
        hidden_dim: usize,
        output_dim: usize,
        base_momentum: f64,
        total_steps: usize,
        device: &Device,
    ) -> Self {
        Self::with_predictor(
            encoder,
            hidden_dim,
            output_dim,
            hidden_dim,
            base_momentum,
            total_steps,
            device,
        )
    }

    /// BYOL with a predictor of its own hidden width, `output → predictor_hidden → output`.
    pub fn with_predictor(
        encoder: E,
        hidden_dim: usize,
        output_dim: usize,
        predictor_hidden_dim: usize,
        base_momentum: f64,
        total_steps: usize,
        device: &Device,
    ) -> Self {
        let projector =
            ProjectionHeadConfig::byol(encoder.output_dim(), hidden_dim, output_dim).init(device);
        let predictor =
            ProjectionHeadConfig::byol(output_dim, predictor_hidden_dim, output_dim).init(device);
        Byol {
            target_encoder: teacher_of(&encoder),
            target_projector: teacher_of(&projector),
            encoder,
            projector,
            predictor,
            steps: StepCounter::new(device),
            base_momentum,
            total_steps,
        }
    }

    /// The teacher momentum at the current step.
    pub fn momentum(&self) -> f64 {
        cosine_momentum(self.base_momentum, self.steps.get(), self.total_steps)
    }
}

impl<E: Encoder> Method for Byol<E> {
    type Encoder = E;

    fn encoder(&self) -> &E {
        &self.encoder
    }

    fn forward(&self, batch: MultiViewBatch) -> SslOutput {
        batch.expect_views("Byol", 2);
        let h0 = self.encoder.encode(batch.views[0].clone());
        let h1 = self.encoder.encode(batch.views[1].clone());
        let p0 = self.predictor.forward(self.projector.forward(h0.clone()));
        let p1 = self.predictor.forward(self.projector.forward(h1));
        let target = |v: &Tensor<4>| {
            self.target_projector
                .forward(self.target_encoder.encode(v.clone()))
                .detach()
        };
        let (z0, z1) = (target(&batch.views[0]), target(&batch.views[1]));
        let [p0, p1, z0, z1] = [p0, p1, z0, z1].map(gather_rows);
        let loss = NegativeCosineSimilarity::new().forward_symmetric(p0, p1, z0, z1);
        SslOutput {
            loss,
            embeddings: h0,
        }
    }

    fn after_optimizer_step(self) -> Self {
        let m = self.momentum();
        Byol {
            target_encoder: ema_update(self.target_encoder, &self.encoder, m),
            target_projector: ema_update(self.target_projector, &self.projector, m),
            steps: self.steps.increment(),
            ..self
        }
    }
}
burn_train_steps!(Byol<E: Encoder>);

/// SimSiam: BYOL without the momentum teacher; the target branch is the same network behind a
/// stop-gradient. Reference: \[0\] SimSiam, 2020, arXiv:2011.10566.
#[derive(Module, Debug)]
pub struct SimSiam<E: Encoder> {
    /// The backbone being pretrained.
    pub encoder: E,
    /// Projector (three batch-normalised layers).
    pub projector: ProjectionHead,
    /// Bottleneck predictor.
    pub predictor: ProjectionHead,
}

impl<E: Encoder> SimSiam<E> {
    /// SimSiam with the paper's shapes (projector 2048-2048-2048, predictor 2048-512-2048 there).
    pub fn new(
        encoder: E,
        projection_dim: usize,
        predictor_hidden_dim: usize,
        device: &Device,
    ) -> Self {
        let projector = ProjectionHeadConfig::simsiam_projector(
            encoder.output_dim(),
            projection_dim,
            projection_dim,
        )
        .init(device);
        let predictor = ProjectionHeadConfig::simsiam_predictor(
            projection_dim,
            predictor_hidden_dim,
            projection_dim,
        )
        .init(device);
        SimSiam {
            encoder,
            projector,
            predictor,
        }
    }
}

impl<E: Encoder> Method for SimSiam<E> {
    type Encoder = E;

    fn encoder(&self) -> &E {
        &self.encoder
    }

    fn forward(&self, batch: MultiViewBatch) -> SslOutput {
        batch.expect_views("SimSiam", 2);
        let h0 = self.encoder.encode(batch.views[0].clone());
        let h1 = self.encoder.encode(batch.views[1].clone());
        let z0 = self.projector.forward(h0.clone());
        let z1 = self.projector.forward(h1);
        let p0 = self.predictor.forward(z0.clone());
        let p1 = self.predictor.forward(z1.clone());
        let [p0, p1, z0, z1] = [p0, p1, z0, z1].map(gather_rows);
        let loss = NegativeCosineSimilarity::new().forward_symmetric(p0, p1, z0, z1);
        SslOutput {
            loss,
            embeddings: h0,
        }
    }
}
burn_train_steps!(SimSiam<E: Encoder>);

/// MoCo v2: a query encoder is trained to pick its key (the other view through a momentum key
/// encoder) among a queue of earlier keys, with InfoNCE. Keys and queue carry no gradient.
/// Reference: \[0\] MoCo, 2020, arXiv:1911.05722; \[1\] MoCo v2, 2020, arXiv:2003.04297.
#[derive(Module, Debug)]
pub struct MocoV2<E: Encoder> {
    /// Query backbone (the one kept after pretraining).
    pub encoder: E,
    /// Query projector (`Linear → ReLU → Linear`).
    pub projector: ProjectionHead,
    /// Momentum key encoder (no gradients).
    pub key_encoder: E,
    /// Momentum key projector (no gradients).
    pub key_projector: ProjectionHead,
    /// The last `K` keys, the negatives.
    pub queue: KeyQueue,
    /// InfoNCE.
    pub loss: InfoNceLoss,
    /// Key-encoder momentum (0.999 in the paper).
    pub momentum: f64,
}

impl<E: Encoder> MocoV2<E> {
    /// MoCo v2 with the paper's head shape (2048-2048-128 there), a queue of `queue_size` keys,
    /// temperature and momentum.
    pub fn new(
        encoder: E,
        hidden_dim: usize,
        output_dim: usize,
        queue_size: usize,
        temperature: f64,
        momentum: f64,
        device: &Device,
    ) -> Self {
        let projector = ProjectionHeadConfig::moco_v2(encoder.output_dim(), hidden_dim, output_dim)
            .init(device);
        MocoV2 {
            key_encoder: teacher_of(&encoder),
            key_projector: teacher_of(&projector),
            encoder,
            projector,
            queue: KeyQueue::new(queue_size, output_dim, device),
            loss: InfoNceLossConfig::new()
                .with_temperature(temperature)
                .init(),
            momentum,
        }
    }

    fn queries_and_keys(&self, batch: &MultiViewBatch) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
        batch.expect_views("MocoV2", 2);
        let h0 = self.encoder.encode(batch.views[0].clone());
        let q = self.projector.forward(h0.clone());
        let k = self
            .key_projector
            .forward(self.key_encoder.encode(batch.views[1].clone()))
            .detach();
        // On W ranks: every rank's queries and keys, so the queue is the same everywhere.
        (h0, gather_rows(q), gather_rows(k))
    }
}

impl<E: Encoder> Method for MocoV2<E> {
    type Encoder = E;

    fn encoder(&self) -> &E {
        &self.encoder
    }

    fn forward(&self, batch: MultiViewBatch) -> SslOutput {
        let (h0, q, k) = self.queries_and_keys(&batch);
        let loss = self.loss.forward(q, k, self.queue.keys());
        SslOutput {
            loss,
            embeddings: h0,
        }
    }

    fn train_forward(&self, batch: MultiViewBatch) -> SslOutput {
        let (h0, q, k) = self.queries_and_keys(&batch);
        let loss = self.loss.forward(q, k.clone(), self.queue.keys());
        let k = k.clone() / k.square().sum_dim(1).sqrt().clamp_min(1e-12);
        self.queue.enqueue(k);
        SslOutput {
            loss,
            embeddings: h0,
        }
    }

    fn after_optimizer_step(self) -> Self {
        let m = self.momentum;
        MocoV2 {
            key_encoder: ema_update(self.key_encoder, &self.encoder, m),
            key_projector: ema_update(self.key_projector, &self.projector, m),
            ..self
        }
    }
}
burn_train_steps!(MocoV2<E: Encoder>);

/// MoCo v3: a query encoder with projector and predictor; a momentum key encoder with the
/// projector; each view's queries pick their own sample among the other view's keys of the
/// same batch (no queue), symmetric and scaled by `2τ` ([`MocoV3Loss`]). The key momentum
/// rises from `base_momentum` to 1 along a cosine over `total_steps`.
/// Reference: \[0\] MoCo v3, Chen, Xie & He 2021, arXiv:2104.02057.
#[derive(Module, Debug)]
pub struct MocoV3<E: Encoder> {
    /// Query backbone (the one kept after pretraining).
    pub encoder: E,
    /// Query projector (three layers, the last BatchNorm non-affine).
    pub projector: ProjectionHead,
    /// Query predictor (two layers, the last BatchNorm non-affine).
    pub predictor: ProjectionHead,
    /// Momentum key encoder (no gradients).
    pub key_encoder: E,
    /// Momentum key projector (no gradients).
    pub key_projector: ProjectionHead,
    /// The symmetric contrastive loss.
    pub loss: MocoV3Loss,
    /// Optimizer steps taken, for the momentum schedule.
    pub steps: StepCounter,
    /// Momentum at step 0 (0.99 for ResNets in the paper, 0.996 with ViTs).
    pub base_momentum: f64,
    /// Steps over which the momentum reaches 1.
    pub total_steps: usize,
}

impl<E: Encoder> MocoV3<E> {
    /// MoCo v3 with the paper's head layouts: projector `encoder → hidden → hidden → output`,
    /// predictor `output → predictor_hidden → output` (4096 hidden and 256 out on ResNet-50).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        encoder: E,
        hidden_dim: usize,
        output_dim: usize,
        predictor_hidden_dim: usize,
        temperature: f64,
        base_momentum: f64,
        total_steps: usize,
        device: &Device,
    ) -> Self {
        let projector =
            ProjectionHeadConfig::moco_v3_projector(encoder.output_dim(), hidden_dim, output_dim)
                .init(device);
        let predictor =
            ProjectionHeadConfig::moco_v3_predictor(output_dim, predictor_hidden_dim, output_dim)
                .init(device);
        MocoV3 {
            key_encoder: teacher_of(&encoder),
            key_projector: teacher_of(&projector),
            encoder,
            projector,
            predictor,
            loss: MocoV3LossConfig::new().with_temperature(temperature).init(),
            steps: StepCounter::new(device),
            base_momentum,
            total_steps,
        }
    }

    /// The key-encoder momentum at the current step.
    pub fn momentum(&self) -> f64 {
        cosine_momentum(self.base_momentum, self.steps.get(), self.total_steps)
    }
}

impl<E: Encoder> Method for MocoV3<E> {
    type Encoder = E;

    fn encoder(&self) -> &E {
        &self.encoder
    }

    fn forward(&self, batch: MultiViewBatch) -> SslOutput {
        batch.expect_views("MocoV3", 2);
        let h0 = self.encoder.encode(batch.views[0].clone());
        let h1 = self.encoder.encode(batch.views[1].clone());
        let q0 = self.predictor.forward(self.projector.forward(h0.clone()));
        let q1 = self.predictor.forward(self.projector.forward(h1));
        let key = |v: &Tensor<4>| {
            self.key_projector
                .forward(self.key_encoder.encode(v.clone()))
                .detach()
        };
        let (k0, k1) = (key(&batch.views[0]), key(&batch.views[1]));
        let [q0, q1, k0, k1] = [q0, q1, k0, k1].map(gather_rows);
        SslOutput {
            loss: self.loss.forward(q0, q1, k0, k1),
            embeddings: h0,
        }
    }

    fn after_optimizer_step(self) -> Self {
        let m = self.momentum();
        MocoV3 {
            key_encoder: ema_update(self.key_encoder, &self.encoder, m),
            key_projector: ema_update(self.key_projector, &self.projector, m),
            steps: self.steps.increment(),
            ..self
        }
    }
}
burn_train_steps!(MocoV3<E: Encoder>);
