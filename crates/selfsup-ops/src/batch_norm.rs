//! [`batch_norm_train`]: Burn's training-mode batch normalisation with selfsup's own fused
//! kernels on flex (see `kernels/batch_norm.rs`), libtorch's own on LibTorch, and Burn's op
//! everywhere else.

use burn::tensor::Tensor;
use burn::tensor::module::BatchNormTrainOutput;

/// Training-mode batch normalisation over dimension 1 of `x`, with the semantics of
/// [`burn::tensor::module::batch_norm_train`] (and of `torch.nn.functional.batch_norm(...,
/// training=True)` for the output): the output, and the batch mean and biased variance per
/// channel (detached), from which a layer updates its running statistics.
///
/// On flex, for f32 tensors, the statistics, the output and the backward pass are fused
/// kernels of selfsup's own that read the NCHW layout in place; on LibTorch they are
/// libtorch's `native_batch_norm` and its backward; everywhere else this is Burn's op.
///
/// # Shapes
/// - `x`: `[N, C, ...]`; `gamma`, `beta`: `[C]`
///
/// # Panics
///
/// When `D < 2` or `gamma` / `beta` do not have `C` elements (the same message on every
/// backend).
pub fn batch_norm_train<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> BatchNormTrainOutput<D> {
    train(x, gamma, beta, epsilon, false)
}

/// [`batch_norm_train`] followed by a ReLU on its output, as one op: the output is
/// `relu(batch_norm_train(x, …).output)` and its gradients are those of the composition
/// (the gradient flows where the normalised value is positive, as Burn's and torch's ReLU
/// define it).
///
/// On flex the ReLU is applied in the batch norm's output pass and its mask is recomputed
/// from the input in the backward pass, so the pair costs what batch norm alone costs (no
/// separate ReLU output, mask or backward sweep); on LibTorch it is torch's own ReLU on
/// torch's own batch norm; everywhere else, Burn's two ops.
///
/// # Shapes
/// - `x`: `[N, C, ...]`; `gamma`, `beta`: `[C]`
///
/// # Panics
///
/// As [`batch_norm_train`].
pub fn batch_norm_relu_train<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> BatchNormTrainOutput<D> {
    train(x, gamma, beta, epsilon, true)
}

fn train<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    relu: bool,
) -> BatchNormTrainOutput<D> {
    check_shapes(&x, &gamma, &beta);
    #[cfg(any(feature = "flex", feature = "tch"))]
    if extension::takes_own_kernel(&x, &gamma, &beta) {
        return extension::batch_norm_train(x, gamma, beta, epsilon, relu);
    }
    let out = burn::tensor::module::batch_norm_train(x, gamma, beta, epsilon);
    if relu {
        BatchNormTrainOutput {
            output: burn::tensor::activation::relu(out.output),
            ..out
        }
    } else {
        out
    }
}

/// The same messages on every backend, whichever op runs.
fn check_shapes<const D: usize>(x: &Tensor<D>, gamma: &Tensor<1>, beta: &Tensor<1>) {
    assert!(
        D >= 2,
        "batch_norm: the input has shape {:?}; it needs [N, C, ...] (rank 2 or more)",
        x.dims()
    );
    let channels = x.dims()[1];
    for (name, param) in [("gamma", gamma), ("beta", beta)] {
        assert_eq!(
            param.dims(),
            [channels],
            "batch_norm: {name} has shape {:?}, the input {:?} has {channels} channels",
            param.dims(),
            x.dims()
        );
    }
}

#[cfg(any(feature = "flex", feature = "tch"))]
pub use extension::{BatchNormBackend, BatchNormStats};

#[cfg(any(feature = "flex", feature = "tch"))]
#[allow(deprecated)] // the generated routing names burn-tch's `LibTorch`.
mod extension {
    use crate::kernels::BatchNormKernels;
    use burn::backend::autodiff::Autodiff;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Backend, Dispatch, ExtensionType, backend_extension};
    use burn::tensor::module::BatchNormTrainOutput;
    use burn::tensor::{DType, Tensor};

    pub(super) fn takes_own_kernel<const D: usize>(
        x: &Tensor<D>,
        gamma: &Tensor<1>,
        beta: &Tensor<1>,
    ) -> bool {
        [x.dtype(), gamma.dtype(), beta.dtype()] == [DType::F32; 3]
            && crate::own_kernels()
            && crate::has_own_kernel(&x.device())
    }

    pub(super) fn batch_norm_train<const D: usize>(
        x: Tensor<D>,
        gamma: Tensor<1>,
        beta: Tensor<1>,
        epsilon: f64,
        relu: bool,
    ) -> BatchNormTrainOutput<D> {
        let stats = <Dispatch as BatchNormBackend>::selfsup_batch_norm_train(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            epsilon,
            relu,
        );
        BatchNormTrainOutput {
            output: Tensor::from_dispatch(stats.output),
            mean: Tensor::from_dispatch(stats.mean),
            variance: Tensor::from_dispatch(stats.variance),
        }
    }

    /// The output of [`BatchNormBackend::selfsup_batch_norm_train`].
    #[derive(ExtensionType)]
    pub struct BatchNormStats<B: Backend> {
        /// The normalised input.
        pub output: FloatTensor<B>,
        /// The batch mean per channel (not tracked).
        pub mean: FloatTensor<B>,
        /// The biased batch variance per channel (not tracked).
        pub variance: FloatTensor<B>,
    }

    /// The backend extension behind [`batch_norm_train`](super::batch_norm_train): a fused
    /// kernel for flex, libtorch's own for LibTorch, and for `Autodiff` a backward pass of its
    /// own.
    #[backend_extension(Flex: cfg(feature = "flex"), LibTorch: cfg(feature = "tch"), Autodiff)]
    pub trait BatchNormBackend: Backend {
        /// Training-mode batch normalisation over dimension 1 (f32), followed by a ReLU when
        /// `relu`.
        fn selfsup_batch_norm_train(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            epsilon: f64,
            relu: bool,
        ) -> BatchNormStats<Self>;
    }

    /// The concrete (non-autodiff) op: the kernel's forward pass.
    fn forward<B: BatchNormKernels>(
        x: FloatTensor<B>,
        gamma: FloatTensor<B>,
        beta: FloatTensor<B>,
        epsilon: f64,
        relu: bool,
    ) -> BatchNormStats<B> {
        let (output, mean, variance, _) =
            B::batch_norm_forward(x, gamma, beta, epsilon, relu, false);
        BatchNormStats {
            output,
            mean,
            variance,
        }
    }

    #[cfg(feature = "flex")]
    impl BatchNormBackend for burn::backend::Flex {
        fn selfsup_batch_norm_train(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            epsilon: f64,
            relu: bool,
        ) -> BatchNormStats<Self> {
            forward::<Self>(x, gamma, beta, epsilon, relu)
        }
    }

    #[cfg(feature = "tch")]
    impl BatchNormBackend for burn::backend::LibTorch {
        fn selfsup_batch_norm_train(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            epsilon: f64,
            relu: bool,
        ) -> BatchNormStats<Self> {
            forward::<Self>(x, gamma, beta, epsilon, relu)
        }
    }

    impl<B: BatchNormKernels, C: CheckpointStrategy> BatchNormBackend for Autodiff<B, C> {
        fn selfsup_batch_norm_train(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            epsilon: f64,
            relu: bool,
        ) -> BatchNormStats<Self> {
            let prep = BatchNormBackward
                .prepare::<C>([x.node(), gamma.node(), beta.node()])
                .compute_bound()
                .stateful();
            let (x, gamma, beta) = (
                x.into_primitive(),
                gamma.into_primitive(),
                beta.into_primitive(),
            );
            let (output, mean, variance) = match prep {
                OpsKind::Tracked(prep) => {
                    let (y, mean, variance, saved) =
                        B::batch_norm_forward(x, gamma, beta, epsilon, relu, true);
                    let saved = saved.expect("a tracked batch norm saves its inputs");
                    (prep.finish(saved, y), mean, variance)
                }
                OpsKind::UnTracked(prep) => {
                    let (y, mean, variance, _) =
                        B::batch_norm_forward(x, gamma, beta, epsilon, relu, false);
                    (prep.finish(y), mean, variance)
                }
            };
            BatchNormStats {
                output,
                // Statistics are constants to autodiff, as in Burn's op.
                mean: FloatTensor::<Self>::new(mean),
                variance: FloatTensor::<Self>::new(variance),
            }
        }
    }

    #[derive(Debug)]
    struct BatchNormBackward;

    impl<B: BatchNormKernels> Backward<B, 3> for BatchNormBackward {
        type State = B::Saved;

        fn backward(
            self,
            ops: Ops<Self::State, 3>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let [node_x, node_gamma, node_beta] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            let (dx, dgamma, dbeta) = B::batch_norm_backward(ops.state, grad);
            if let Some(node) = node_x {
                grads.register::<B>(node.id, dx);
            }
            if let Some(node) = node_gamma {
                grads.register::<B>(node.id, dgamma);
            }
            if let Some(node) = node_beta {
                grads.register::<B>(node.id, dbeta);
            }
        }
    }
}
