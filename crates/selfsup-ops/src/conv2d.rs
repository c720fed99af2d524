//! [`conv2d`]: Burn's 2-d convolution with selfsup's own kernels where they are faster, and
//! Burn's own op everywhere else.
//!
//! The backend split lives here, in one place: [`Conv2dBackend`] is a Burn backend extension
//! with a kernel for flex (im2col + GEMM in NCHW, see `kernels/im2col.rs`) and for LibTorch
//! (libtorch's own backward), and, for `Autodiff`, a backward pass of its own that calls the
//! backend's kernels ([`Conv2dKernels`]) instead of Burn's default weight gradient (a second
//! convolution over swapped batch/channel axes). CubeCL backends (wgpu, vulkan, cuda) and
//! ndarray keep Burn's own convolution, as do grouped convolutions and non-f32 tensors.

use burn::tensor::Tensor;
use burn::tensor::ops::ConvOptions;
#[cfg(any(feature = "flex", feature = "tch"))]
use burn::{backend::Dispatch, tensor::DType};

/// A 2-d convolution, `torch.nn.functional.conv2d(x, weight, bias, stride, padding, dilation,
/// groups)`, with the semantics of [`burn::tensor::module::conv2d`].
///
/// On flex and LibTorch devices, for `groups = 1` and f32 tensors, the forward pass and both
/// gradients run selfsup's own kernels (see the [module docs](self)); the results equal
/// Burn's within f32 summation order. Everywhere else this is Burn's op.
///
/// # Shapes
/// - `x`: `[N, C_in, H, W]`
/// - `weight`: `[C_out, C_in / groups, k_h, k_w]`
/// - `bias`: `[C_out]`
/// - returns `[N, C_out, H_out, W_out]`
///
/// # Panics
///
/// When the shapes disagree (the message names both), or the padded input is smaller than
/// the dilated kernel.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    check_shapes(&x, &weight, bias.as_ref(), &options);
    #[cfg(any(feature = "flex", feature = "tch"))]
    if takes_own_kernel(&x, &weight, &options) {
        return own_conv2d(x, weight, bias, options);
    }
    burn::tensor::module::conv2d(x, weight, bias, options)
}

#[cfg(any(feature = "flex", feature = "tch"))]
fn own_conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    let c_out = weight.dims()[0];
    let y = Tensor::from_dispatch(<Dispatch as Conv2dBackend>::selfsup_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        options,
    ));
    match bias {
        Some(bias) => y + bias.reshape([1, c_out, 1, 1]),
        None => y,
    }
}

/// The same messages on every backend, whichever op runs.
fn check_shapes(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    bias: Option<&Tensor<1>>,
    options: &ConvOptions<2>,
) {
    let [_, c_in, _, _] = x.dims();
    let [c_out, c_in_group, _, _] = weight.dims();
    let groups = options.groups;
    let expected = c_in_group * groups;
    assert!(
        c_in == expected,
        "conv2d: the input has {c_in} channels but the weight {:?} expects {expected}{}",
        weight.dims(),
        if groups > 1 {
            format!(" ({groups} groups)")
        } else {
            String::new()
        }
    );
    if let Some(bias) = bias {
        assert_eq!(
            bias.dims(),
            [c_out],
            "conv2d: the bias has shape {:?}, the weight has {c_out} output channels",
            bias.dims()
        );
    }
}

#[cfg(any(feature = "flex", feature = "tch"))]
fn takes_own_kernel(x: &Tensor<4>, weight: &Tensor<4>, options: &ConvOptions<2>) -> bool {
    options.groups == 1
        && x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && crate::own_kernels()
        && crate::has_own_kernel(&x.device())
}

#[cfg(any(feature = "flex", feature = "tch"))]
pub use extension::Conv2dBackend;

#[cfg(any(feature = "flex", feature = "tch"))]
#[allow(deprecated)] // the generated routing names burn-tch's `LibTorch`.
mod extension {
    use crate::kernels::{Conv2dKernels, Needs};
    use burn::backend::autodiff::Autodiff;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Backend, backend_extension};
    use burn::tensor::ops::ConvOptions;

    /// The backend extension behind [`conv2d`](super::conv2d): a kernel per backend, and for `Autodiff` a
    /// backward pass of its own.
    #[backend_extension(Flex: cfg(feature = "flex"), LibTorch: cfg(feature = "tch"), Autodiff)]
    pub trait Conv2dBackend: Backend {
        /// `x ⋆ weight` (no bias, `groups = 1`, f32).
        fn selfsup_conv2d(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            options: ConvOptions<2>,
        ) -> FloatTensor<Self>;
    }

    #[cfg(feature = "flex")]
    impl Conv2dBackend for burn::backend::Flex {
        fn selfsup_conv2d(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            options: ConvOptions<2>,
        ) -> FloatTensor<Self> {
            Self::conv2d_forward(x, weight, &options, Needs::NONE).0
        }
    }

    #[cfg(feature = "tch")]
    #[allow(deprecated)] // burn-tch is deprecated upstream; selfsup keeps it for its users.
    impl Conv2dBackend for burn::backend::LibTorch {
        fn selfsup_conv2d(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            options: ConvOptions<2>,
        ) -> FloatTensor<Self> {
            Self::conv2d_forward(x, weight, &options, Needs::NONE).0
        }
    }

    impl<B: Conv2dKernels, C: CheckpointStrategy> Conv2dBackend for Autodiff<B, C> {
        fn selfsup_conv2d(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            options: ConvOptions<2>,
        ) -> FloatTensor<Self> {
            let needs = Needs {
                input: x.is_tracked(),
                weight: weight.is_tracked(),
            };
            match Conv2dBackward
                .prepare::<C>([x.node(), weight.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let (y, saved) = B::conv2d_forward(
                        x.into_primitive(),
                        weight.into_primitive(),
                        &options,
                        needs,
                    );
                    let saved = saved.expect("a tracked convolution saves its inputs");
                    prep.finish((saved, options, needs), y)
                }
                OpsKind::UnTracked(prep) => prep.finish(
                    B::conv2d_forward(
                        x.into_primitive(),
                        weight.into_primitive(),
                        &options,
                        Needs::NONE,
                    )
                    .0,
                ),
            }
        }
    }

    #[derive(Debug)]
    struct Conv2dBackward;

    impl<B: Conv2dKernels> Backward<B, 2> for Conv2dBackward {
        type State = (B::Saved, ConvOptions<2>, Needs);

        fn backward(
            self,
            ops: Ops<Self::State, 2>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let [node_x, node_weight] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            let (saved, options, needs) = ops.state;
            let (dx, dw) = B::conv2d_backward(saved, grad, &options, needs);
            if let (Some(node), Some(dx)) = (node_x, dx) {
                grads.register::<B>(node.id, dx);
            }
            if let (Some(node), Some(dw)) = (node_weight, dw) {
                grads.register::<B>(node.id, dw);
            }
        }
    }
}
