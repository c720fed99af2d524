use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use selfsup_dist::gather_rows;
use selfsup_losses::{DinoLoss, DinoLossConfig};
use selfsup_nn::{DinoHead, DinoHeadConfig, Encoder};

use crate::ema::{cosine_momentum, ema_update, teacher_of};
use crate::method::burn_train_steps;
use crate::teacher::StepCounter;
use crate::{Method, MultiViewBatch, SslOutput};

/// DINO: self-distillation with no labels. A student sees every crop (2 global + local ones)
/// and predicts the centred, sharpened output a momentum teacher gives of the global crops.
/// The DINO loss's center and the step counter are module state.
/// Reference: \[0\] DINO, 2021, arXiv:2104.14294.
#[derive(Module, Debug)]
pub struct Dino<E: Encoder> {
    /// Student backbone (the one kept after pretraining).
    pub encoder: E,
    /// Student head.
    pub head: DinoHead,
    /// Momentum teacher backbone (no gradients).
    pub teacher_encoder: E,
    /// Momentum teacher head (no gradients).
    pub teacher_head: DinoHead,
    /// The DINO loss, holding the center.
    pub loss: DinoLoss,
    /// Optimizer steps taken (momentum and teacher-temperature schedules).
    pub steps: StepCounter,
    /// Teacher momentum at step 0 (0.996 in the paper), rising to 1 over `total_steps`.
    pub base_momentum: f64,
    /// Steps over which the momentum reaches 1.
    pub total_steps: usize,
    /// Steps per epoch, to turn the step count into the epoch of the temperature warm-up.
    pub steps_per_epoch: usize,
    /// Optimizer steps during which the student's prototypes (the head's last layer) get no
    /// gradient: the paper's `freeze_last_layer` (its first epoch), counted in steps. 0 = never.
    pub freeze_last_layer_steps: usize,
}

impl<E: Encoder> Dino<E> {
    /// DINO with a head of `output_dim` prototypes (65536 in the paper) and the given schedules.
    pub fn new(
        encoder: E,
        head: DinoHeadConfig,
        loss: DinoLossConfig,
        base_momentum: f64,
        total_steps: usize,
        steps_per_epoch: usize,
        device: &Device,
    ) -> Self {
        assert!(
            head.output_dim == loss.output_dim,
            "Dino: head output_dim {} differs from loss output_dim {}",
            head.output_dim,
            loss.output_dim
        );
        assert!(
            steps_per_epoch > 0,
            "Dino: steps_per_epoch must be > 0, got 0"
        );
        let head = head.init(device);
        Dino {
            teacher_encoder: teacher_of(&encoder),
            teacher_head: teacher_of(&head),
            encoder,
            head,
            loss: loss.init(device),
            steps: StepCounter::new(device),
            base_momentum,
            total_steps,
            steps_per_epoch,
            freeze_last_layer_steps: 0,
        }
    }

    /// Keeps the student's prototypes frozen for the first `steps` optimizer steps (DINO's
    /// `freeze_last_layer`, lightly's `cancel_last_layer_gradients`).
    pub fn with_freeze_last_layer_steps(self, steps: usize) -> Self {
        Dino {
            freeze_last_layer_steps: steps,
            ..self
        }
    }

    fn outputs(&self, batch: &MultiViewBatch) -> (Tensor<2>, Vec<Tensor<2>>, Vec<Tensor<2>>) {
        batch.expect_views("Dino", 2);
        let features: Vec<Tensor<2>> = batch
            .views
            .iter()
            .map(|v| self.encoder.encode(v.clone()))
            .collect();
        // On W ranks: every rank's outputs, so the loss and the center see the global batch.
        let student = features
            .iter()
            .map(|h| gather_rows(self.head.forward(h.clone())))
            .collect();
        let teacher = batch.views[..2]
            .iter()
            .map(|v| {
                gather_rows(
                    self.teacher_head
                        .forward(self.teacher_encoder.encode(v.clone()))
                        .detach(),
                )
            })
            .collect();
        (features[0].clone(), student, teacher)
    }

    fn epoch(&self) -> usize {
        self.steps.get() / self.steps_per_epoch
    }
}

impl<E: Encoder> Method for Dino<E> {
    type Encoder = E;

    fn encoder(&self) -> &E {
        &self.encoder
    }

    fn forward(&self, batch: MultiViewBatch) -> SslOutput {
        let (h0, student, teacher) = self.outputs(&batch);
        let temperature = self.loss.teacher_temperature(self.epoch());
        let loss = self.loss.loss(&teacher, &student, temperature);
        SslOutput {
            loss,
            embeddings: h0,
        }
    }

    fn train_forward(&self, batch: MultiViewBatch) -> SslOutput {
        let (h0, student, teacher) = self.outputs(&batch);
        let loss = self.loss.forward(&teacher, &student, self.epoch());
        SslOutput {
            loss,
            embeddings: h0,
        }
    }

    fn prepare_gradients(&self, mut grads: GradientsParams) -> GradientsParams {
        if self.steps.get() < self.freeze_last_layer_steps {
            grads.remove::<2>(self.head.prototypes_id());
        }
        grads
    }

    fn after_optimizer_step(self) -> Self {
        let m = cosine_momentum(self.base_momentum, self.steps.get(), self.total_steps);
        Dino {
            teacher_encoder: ema_update(self.teacher_encoder, &self.encoder, m),
            teacher_head: ema_update(self.teacher_head, &self.head, m),
            steps: self.steps.increment(),
            ..self
        }
    }
}
burn_train_steps!(Dino<E: Encoder>);
