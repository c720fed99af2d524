//! [`all_reduce_sum`]: a differentiable sum over the ranks of a data-parallel run, the one
//! collective inside a network (synchronised batch norm's statistics).
//!
//! Forward: every rank's `x`, summed element-wise, on every rank. Backward: rank r's output
//! is `Σ_s x_s`, so the loss reaches `x_r` through every rank's output, and `∂L/∂x_r` is the
//! sum over the ranks of `∂L/∂y_s` — the gradient is all-reduced the same way. The sum runs on
//! the host through [`selfsup_dist::current`]; the tensors involved are per-channel vectors.

use burn::tensor::Tensor;

/// The element-wise sum of `x` over the ranks, differentiable (its gradient is the sum over
/// the ranks of the output's gradient). With one rank it is `x`.
///
/// # Panics
///
/// On more than one rank, when `x` is not on flex or LibTorch (the backends whose backward
/// pass selfsup can extend), or not f32.
pub fn all_reduce_sum<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if selfsup_dist::current().world_size() == 1 {
        return x;
    }
    #[cfg(any(feature = "flex", feature = "tch"))]
    if crate::has_own_kernel(&x.device()) && x.dtype() == burn::tensor::DType::F32 {
        return Tensor::from_dispatch(
            <burn::backend::Dispatch as extension::AllReduceBackend>::selfsup_all_reduce_sum(
                x.into_dispatch(),
            ),
        );
    }
    panic!(
        "all_reduce_sum: a differentiable all-reduce runs on flex and tch (f32); this tensor \
         is on {:?}: train on one of those, or without synchronised batch norm",
        x.device()
    )
}

#[cfg(any(feature = "flex", feature = "tch"))]
pub use extension::AllReduceBackend;

#[cfg(any(feature = "flex", feature = "tch"))]
#[allow(deprecated)] // the generated routing names burn-tch's `LibTorch`.
mod extension {
    use burn::backend::autodiff::Autodiff;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Backend, TensorMetadata, backend_extension};
    use burn::tensor::TensorData;

    /// The backend extension behind [`all_reduce_sum`](super::all_reduce_sum).
    #[backend_extension(Flex: cfg(feature = "flex"), LibTorch: cfg(feature = "tch"), Autodiff)]
    pub trait AllReduceBackend: Backend {
        /// The element-wise sum over the ranks.
        fn selfsup_all_reduce_sum(x: FloatTensor<Self>) -> FloatTensor<Self>;
    }

    /// Waits for a future that is ready at once (reading a CPU tensor).
    fn ready<T>(future: impl std::future::Future<Output = T>) -> T {
        let mut future = std::pin::pin!(future);
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut context) {
                return out;
            }
            std::thread::yield_now();
        }
    }

    /// Through the host: read, sum over the ranks, write back on the same device.
    fn on_host<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
        let device = x.device();
        let data = ready(B::float_into_data(x)).expect("a CPU tensor reads back");
        let shape = data.shape().clone();
        let mut values = data
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32 values");
        selfsup_dist::current().all_reduce_sum(&mut values);
        B::float_from_data(TensorData::new(values, shape), &device)
    }

    #[cfg(feature = "flex")]
    impl AllReduceBackend for burn::backend::Flex {
        fn selfsup_all_reduce_sum(x: FloatTensor<Self>) -> FloatTensor<Self> {
            on_host::<Self>(x)
        }
    }

    #[cfg(feature = "tch")]
    impl AllReduceBackend for burn::backend::LibTorch {
        fn selfsup_all_reduce_sum(x: FloatTensor<Self>) -> FloatTensor<Self> {
            on_host::<Self>(x)
        }
    }

    impl<B: AllReduceBackend, C: CheckpointStrategy> AllReduceBackend for Autodiff<B, C> {
        fn selfsup_all_reduce_sum(x: FloatTensor<Self>) -> FloatTensor<Self> {
            match AllReduceBackward
                .prepare::<C>([x.node()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    prep.finish((), B::selfsup_all_reduce_sum(x.into_primitive()))
                }
                OpsKind::UnTracked(prep) => {
                    prep.finish(B::selfsup_all_reduce_sum(x.into_primitive()))
                }
            }
        }
    }

    #[derive(Debug)]
    struct AllReduceBackward;

    impl<B: AllReduceBackend> Backward<B, 1> for AllReduceBackward {
        type State = ();

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let [node] = ops.parents;
            let grad = grads.consume::<B>(&ops.node);
            if let Some(node) = node {
                grads.register::<B>(node.id, B::selfsup_all_reduce_sum(grad));
            }
        }
    }
}
