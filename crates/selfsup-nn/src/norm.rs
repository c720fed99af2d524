//! [`BatchNorm`]: Burn's `BatchNorm` layer on selfsup's own fused batch-norm kernels.

use burn::config::Config;
use burn::module::{Flag, Module, Param, RunningState};
use burn::nn as burn_nn;
use burn::tensor::module::BatchNormTrainOutput;
use burn::tensor::{Device, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};

/// Configuration of [`BatchNorm`]: the fields and defaults of Burn's
/// [`burn::nn::BatchNormConfig`].
#[derive(Config, Debug)]
pub struct BatchNormConfig {
    /// Channels (dimension 1 of the input).
    pub num_features: usize,
    /// Added to the variance.
    #[config(default = 1e-5)]
    pub epsilon: f64,
    /// Weight of the newest batch in the running statistics.
    #[config(default = 0.1)]
    pub momentum: f64,
}

impl BatchNormConfig {
    /// Builds the layer (`γ = 1`, `β = 0`, running mean 0 and variance 1).
    ///
    /// # Panics
    ///
    /// On Burn's checks: `num_features` 0, `epsilon` not finite and positive, `momentum`
    /// outside `[0, 1]`.
    pub fn init(&self, device: &Device) -> BatchNorm {
        burn_nn::BatchNormConfig::new(self.num_features)
            .with_epsilon(self.epsilon)
            .with_momentum(self.momentum)
            .init(device)
            .into()
    }
}

/// Batch normalisation over dimension 1: Burn's [`burn::nn::BatchNorm`] with the same fields
/// (so the same record and checkpoint paths; `From` converts either way) and the same
/// behaviour — batch statistics on an autodiff device while `training` is enabled, running
/// statistics otherwise — whose training pass runs selfsup's fused kernels
/// ([`selfsup_ops::batch_norm_train`]) on flex and Burn's op elsewhere.
///
/// Like Burn's, its running statistics are a `RunningState` shared by clones of the layer.
#[derive(Module, Debug)]
pub struct BatchNorm {
    /// Scale, `[C]`.
    pub gamma: Param<Tensor<1>>,
    /// Shift, `[C]`.
    pub beta: Param<Tensor<1>>,
    /// Whether the layer normalises with batch statistics on an autodiff device.
    pub training: Param<Flag>,
    /// Running mean, `[C]`.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running (biased) variance, `[C]`.
    pub running_var: RunningState<Tensor<1>>,
    /// Weight of the newest batch in the running statistics.
    pub momentum: f64,
    /// Added to the variance.
    pub epsilon: f64,
}

impl BatchNorm {
    /// # Shapes
    ///
    /// - input: `[N, C, ...]` → the same shape
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        self.normalise(input, false)
    }

    /// `relu(self.forward(input))`, as one fused op in training mode on flex (see
    /// [`selfsup_ops::batch_norm_relu_train`]): what `BN → ReLU` blocks should call.
    ///
    /// # Shapes
    ///
    /// - input: `[N, C, ...]` → the same shape
    pub fn forward_relu<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        self.normalise(input, true)
    }

    fn normalise<const D: usize>(&self, input: Tensor<D>, relu: bool) -> Tensor<D> {
        let [channels] = self.gamma.shape().dims();
        let dims = input.dims();
        assert!(
            D >= 2 && dims[1] == channels,
            "BatchNorm: the input has shape {dims:?}, expected [N, {channels}, ...]"
        );
        let device = input.device();
        let then_relu = |t: Tensor<D>| {
            if relu {
                burn::tensor::activation::relu(t)
            } else {
                t
            }
        };
        if !(device.is_autodiff() && self.training.is_enabled()) {
            return then_relu(burn::tensor::module::batch_norm(
                input,
                self.gamma.val(),
                self.beta.val(),
                self.running_mean.value().to_device(&device),
                self.running_var.value().to_device(&device),
                self.epsilon,
            ));
        }
        let (gamma, beta) = (self.gamma.val(), self.beta.val());
        let result = if synchronised(&device) {
            let out = self.synchronised_train(input);
            BatchNormTrainOutput {
                output: then_relu(out.output),
                ..out
            }
        } else if relu {
            selfsup_ops::batch_norm_relu_train(input, gamma, beta, self.epsilon)
        } else {
            selfsup_ops::batch_norm_train(input, gamma, beta, self.epsilon)
        };
        let update = |state: &RunningState<Tensor<1>>, batch: Tensor<1>| {
            let running = state.value_sync().to_device(&device);
            state.update(
                running
                    .mul_scalar(1.0 - self.momentum)
                    .add(batch.detach().mul_scalar(self.momentum))
                    .detach(),
            );
        };
        update(&self.running_mean, result.mean);
        update(&self.running_var, result.variance);
        result.output
    }
}

impl BatchNorm {
    /// Whether batch norm can synchronise its statistics across ranks on `device` (flex and
    /// tch: the backends whose backward pass selfsup extends).
    pub fn synchronises_on(device: &Device) -> bool {
        selfsup_ops::has_own_kernel(device)
    }

    /// Training-mode batch norm with the statistics of the global batch of a data-parallel
    /// run (as `torch.nn.SyncBatchNorm`): the per-channel sums are all-reduced in the forward
    /// pass, and, through [`selfsup_ops::all_reduce_sum`]'s backward, their gradients in the
    /// backward pass. Two passes (mean, then centred squares), as the one-process op.
    fn synchronised_train<const D: usize>(&self, input: Tensor<D>) -> BatchNormTrainOutput<D> {
        let dims = input.dims();
        let channels = dims[1];
        let spatial: usize = dims[2..].iter().product();
        let x = input.reshape([dims[0], channels, spatial]);
        let per_channel = |t: Tensor<3>| t.sum_dim(0).sum_dim(2).reshape([channels]);
        let device = x.device();
        let count = Tensor::<1>::from_floats([(dims[0] * spatial) as f32], &device);
        let sums = selfsup_ops::all_reduce_sum(Tensor::cat(vec![per_channel(x.clone()), count], 0));
        let total = sums.clone().narrow(0, channels, 1);
        let mean = sums.narrow(0, 0, channels) / total.clone();
        let centred = x - mean.clone().reshape([1, channels, 1]);
        let variance = selfsup_ops::all_reduce_sum(per_channel(centred.clone().square())) / total;
        let scale = self.gamma.val() / variance.clone().add_scalar(self.epsilon).sqrt();
        let output =
            centred * scale.reshape([1, channels, 1]) + self.beta.val().reshape([1, channels, 1]);
        BatchNormTrainOutput {
            output: output.reshape(dims),
            mean: mean.detach(),
            variance: variance.detach(),
        }
    }
}

/// Whether training-mode batch norm synchronises its statistics across ranks: on more than
/// one rank, when turned on (see [`set_sync_batch_norm`]) and the backend can (flex, tch).
fn synchronised(device: &Device) -> bool {
    SYNC.load(Ordering::Relaxed)
        && selfsup_dist::current().world_size() > 1
        && selfsup_ops::has_own_kernel(device)
}

static SYNC: AtomicBool = AtomicBool::new(true);

/// Turns synchronised batch norm on (the default) or off for the whole process. Off, each
/// rank of a data-parallel run normalises with its own shard's statistics (PyTorch DDP's
/// default); on, every [`BatchNorm`] uses the global batch's, so W ranks compute the
/// one-process step. With one rank it changes nothing.
pub fn set_sync_batch_norm(enabled: bool) {
    SYNC.store(enabled, Ordering::Relaxed);
}

impl From<burn_nn::BatchNorm> for BatchNorm {
    fn from(n: burn_nn::BatchNorm) -> Self {
        BatchNorm {
            gamma: n.gamma,
            beta: n.beta,
            training: n.training,
            running_mean: n.running_mean,
            running_var: n.running_var,
            momentum: n.momentum,
            epsilon: n.epsilon,
        }
    }
}

impl From<BatchNorm> for burn_nn::BatchNorm {
    fn from(n: BatchNorm) -> Self {
        burn_nn::BatchNorm {
            gamma: n.gamma,
            beta: n.beta,
            training: n.training,
            running_mean: n.running_mean,
            running_var: n.running_var,
            momentum: n.momentum,
            epsilon: n.epsilon,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    fn values<const D: usize>(t: Tensor<D>) -> burn::tensor::TensorData {
        t.into_data()
    }

    /// Output, gradients and running statistics equal Burn's layer on the same input, over
    /// two training steps, for 4-d (conv) and 2-d (projection head) inputs; with `relu`,
    /// [`BatchNorm::forward_relu`] against Burn's layer followed by Burn's ReLU.
    fn check<const D: usize>(shape: [usize; D], relu: bool) {
        let device = selfsup_backend::test_device().autodiff();
        let channels = shape[1];
        let burn = burn_nn::BatchNormConfig::new(channels).init(&device);
        let ours = BatchNormConfig::new(channels).init(&device);
        let tol = Tolerance::rel_abs(1e-4, 1e-4);
        for step in 0..2 {
            let x = Tensor::<D>::random(shape, Distribution::Normal(step as f64, 2.0), &device)
                .require_grad();
            let g = Tensor::<D>::random(shape, Distribution::Default, &device);
            let run = |y: Tensor<D>| {
                let grads = (y.clone() * g.clone()).sum().backward();
                (values(y), values(x.grad(&grads).unwrap()))
            };
            let (y_burn, y_ours) = if relu {
                (
                    burn::tensor::activation::relu(burn.forward(x.clone())),
                    ours.forward_relu(x.clone()),
                )
            } else {
                (burn.forward(x.clone()), ours.forward(x.clone()))
            };
            let (y_burn, dx_burn) = run(y_burn);
            let (y_ours, dx_ours) = run(y_ours);
            y_ours.assert_approx_eq::<f32>(&y_burn, tol);
            dx_ours.assert_approx_eq::<f32>(&dx_burn, tol);
        }
        values(ours.running_mean.value())
            .assert_approx_eq::<f32>(&values(burn.running_mean.value()), tol);
        values(ours.running_var.value())
            .assert_approx_eq::<f32>(&values(burn.running_var.value()), tol);
    }

    #[test]
    fn trains_like_burns_batch_norm() {
        check([4, 3, 5, 6], false);
        check([16, 7], false);
    }

    #[test]
    fn fused_relu_trains_like_burns_batch_norm_then_relu() {
        check([4, 3, 5, 6], true);
        check([16, 7], true);
        check([1, 2, 3, 1], true);
    }

    #[test]
    fn gamma_and_beta_gradients_equal_burns() {
        for relu in [false, true] {
            let device = selfsup_backend::test_device().autodiff();
            let burn = burn_nn::BatchNormConfig::new(3).init(&device);
            let ours = BatchNorm::from(burn.clone());
            let x = Tensor::<4>::random([3, 3, 4, 4], Distribution::Default, &device);
            let g = Tensor::<4>::random([3, 3, 4, 4], Distribution::Default, &device);
            let (y_ours, y_burn) = if relu {
                (
                    ours.forward_relu(x.clone()),
                    burn::tensor::activation::relu(burn.forward(x)),
                )
            } else {
                (ours.forward(x.clone()), burn.forward(x))
            };
            let grads_ours = (y_ours * g.clone()).sum().backward();
            let grads_burn = (y_burn * g).sum().backward();
            let tol = Tolerance::rel_abs(1e-4, 1e-4);
            for (a, b) in [(&ours.gamma, &burn.gamma), (&ours.beta, &burn.beta)] {
                values(a.grad(&grads_ours).unwrap())
                    .assert_approx_eq::<f32>(&values(b.grad(&grads_burn).unwrap()), tol);
            }
        }
    }

    #[test]
    #[should_panic(expected = "BatchNorm: the input has shape [2, 4, 3], expected [N, 5, ...]")]
    fn wrong_channels_panic_naming_the_shape() {
        let device = selfsup_backend::test_device();
        let norm = BatchNormConfig::new(5).init(&device);
        let _ = norm.forward(Tensor::<3>::zeros([2, 4, 3], &device));
    }
}
