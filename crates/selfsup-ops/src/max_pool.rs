//! [`max_pool2d`]: Burn's 2-d max pooling with selfsup's own kernel and backward pass on flex
//! (see `kernels/max_pool.rs`), and Burn's op everywhere else.

use burn::tensor::Tensor;
use burn::tensor::ops::MaxPoolOptions;

/// 2-d max pooling with the semantics of [`burn::tensor::module::max_pool2d`] (and of
/// `torch.nn.functional.max_pool2d`): the maximum of each window over the input positions it
/// covers, ties to the first position, NaN propagating; the gradient goes to each window's
/// maximum.
///
/// On flex, for f32 tensors with symmetric padding, the forward pass is one sweep of the
/// input that also records each maximum's position (4 bytes per output), and the backward
/// pass adds each output gradient there — Burn's flex op goes through a generic 3-d kernel
/// with 8-byte indices, ~5× slower on ConvNet-S's pools. Everywhere else (and for asymmetric
/// padding) this is Burn's op.
///
/// # Shapes
/// - `x`: `[N, C, H, W]` → `[N, C, H_out, W_out]`
pub fn max_pool2d(x: Tensor<4>, options: MaxPoolOptions<2>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if !options.is_asymmetric()
        && x.dtype() == burn::tensor::DType::F32
        && crate::own_kernels()
        && crate::is_flex(&x.device())
    {
        return Tensor::from_dispatch(
            <burn::backend::Dispatch as MaxPoolBackend>::selfsup_max_pool2d(
                x.into_dispatch(),
                options.kernel_size,
                options.stride,
                options.padding.map(|(begin, _)| begin),
                options.dilation,
                options.ceil_mode,
            ),
        );
    }
    burn::tensor::module::max_pool2d(x, options)
}

#[cfg(feature = "flex")]
pub use extension::MaxPoolBackend;

#[cfg(feature = "flex")]
mod extension {
    use crate::kernels::MaxPoolKernels;
    use burn::backend::autodiff::Autodiff;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Backend, backend_extension};

    /// The backend extension behind [`max_pool2d`](super::max_pool2d): flex's kernel, and for
    /// `Autodiff` a backward pass of its own.
    #[backend_extension(Flex: cfg(feature = "flex"), Autodiff)]
    pub trait MaxPoolBackend: Backend {
        /// 2-d max pooling (f32, symmetric padding `padding` on each side).
        fn selfsup_max_pool2d(
            x: FloatTensor<Self>,
            kernel_size: [usize; 2],
            stride: [usize; 2],
            padding: [usize; 2],
            dilation: [usize; 2],
            ceil_mode: bool,
        ) -> FloatTensor<Self>;
    }

    impl MaxPoolBackend for burn::backend::Flex {
        fn selfsup_max_pool2d(
            x: FloatTensor<Self>,
            kernel_size: [usize; 2],
            stride: [usize; 2],
            padding: [usize; 2],
            dilation: [usize; 2],
            ceil_mode: bool,
        ) -> FloatTensor<Self> {
            Self::max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode, false).0
        }
    }

    impl<B: MaxPoolKernels, C: CheckpointStrategy> MaxPoolBackend for Autodiff<B, C> {
        fn selfsup_max_pool2d(
            x: FloatTensor<Self>,
            kernel_size: [usize; 2],
            stride: [usize; 2],
            padding: [usize; 2],
            dilation: [usize; 2],
            ceil_mode: bool,
        ) -> FloatTensor<Self> {
            let pool = |x, track| {
                B::max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode, track)
            };
            match MaxPoolBackward
                .prepare::<C>([x.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let (y, saved) = pool(x.into_primitive(), true);
                    prep.finish(saved.expect("a tracked max pooling saves its positions"), y)
                }
                OpsKind::UnTracked(prep) => prep.finish(pool(x.into_primitive(), false).0),
            }
        }
    }

    #[derive(Debug)]
    struct MaxPoolBackward;

    impl<B: MaxPoolKernels> Backward<B, 1> for MaxPoolBackward {
        type State = B::Saved;

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let [node_x] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            if let Some(node) = node_x {
                grads.register::<B>(node.id, B::max_pool2d_backward(ops.state, grad));
            }
        }
    }
}
