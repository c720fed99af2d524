use crate::{MultiViewBatch, SslOutput};
use burn::module::Module;
use burn::optim::GradientsParams;

/// A self-supervised method: a module holding its networks, loss and state.
///
/// Every method also implements burn-train's `TrainStep` and `InferenceStep`, so
/// `SupervisedTraining` trains it unchanged; a hand-written loop calls
/// [`train_forward`](Self::train_forward), back-propagates the loss, passes the gradients
/// through [`prepare_gradients`](Self::prepare_gradients), steps the optimizer and then calls
/// [`after_optimizer_step`](Self::after_optimizer_step).
pub trait Method: Module + burn::module::ModuleDisplay {
    /// The backbone being pretrained.
    type Encoder: selfsup_nn::Encoder;

    /// The backbone, whose features are what pretraining is for (heads are discarded).
    fn encoder(&self) -> &Self::Encoder;

    /// Loss and features for a batch, without changing any state (evaluation).
    fn forward(&self, batch: MultiViewBatch) -> SslOutput;

    /// Loss and features for a training batch; also updates the state that follows the data
    /// (MoCo's queue, DINO's center). Defaults to [`forward`](Self::forward).
    fn train_forward(&self, batch: MultiViewBatch) -> SslOutput {
        self.forward(batch)
    }

    /// Called between `backward` and the optimizer step: drops the gradients of parameters the
    /// method keeps frozen for now (DINO's prototypes during its first steps), so the optimizer
    /// leaves them (and their moments) alone, as PyTorch's optimizers skip a `None` gradient.
    /// Defaults to keeping every gradient.
    fn prepare_gradients(&self, grads: GradientsParams) -> GradientsParams {
        grads
    }

    /// Called after each optimizer step: momentum teachers move towards the student here,
    /// step counters advance. Defaults to nothing.
    fn after_optimizer_step(self) -> Self {
        self
    }
}

/// Implements burn-train's `TrainStep` and `InferenceStep` for a method generic over its
/// encoder.
macro_rules! burn_train_steps {
    ($method:ident < $($generic:ident : $bound:path),+ >) => {
        impl<$($generic: $bound),+> burn::train::TrainStep for $method<$($generic),+> {
            type Input = $crate::MultiViewBatch;
            type Output = $crate::SslOutput;

            fn step(&self, batch: Self::Input) -> burn::train::TrainOutput<Self::Output> {
                let output = $crate::Method::train_forward(self, batch);
                let grads = output.loss.backward();
                burn::train::TrainOutput::new(self, grads, output)
            }

            fn optimize(
                self,
                optim: &mut burn::optim::ModuleOptimizer,
                lr: burn::lr_scheduler::module_lr_scheduler::ModuleLearningRate,
                grads: burn::optim::GradientsParams,
            ) -> Self {
                let grads = $crate::Method::prepare_gradients(&self, grads);
                $crate::Method::after_optimizer_step(optim.step(lr, self, grads))
            }
        }

        impl<$($generic: $bound),+> burn::train::InferenceStep for $method<$($generic),+> {
            type Input = $crate::MultiViewBatch;
            type Output = $crate::SslOutput;

            fn step(&self, batch: Self::Input) -> Self::Output {
                $crate::Method::forward(self, batch)
            }
        }
    };
}
pub(crate) use burn_train_steps;
