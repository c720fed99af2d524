//! The kernels behind selfsup's ops, one file per backend, each implementing
//! [`Conv2dKernels`] and [`BatchNormKernels`] (flex also [`MaxPoolKernels`]) for its
//! backend's tensor primitive.

use burn::backend::Backend;
use burn::backend::tensor::FloatTensor;
use burn::tensor::ops::ConvOptions;

#[cfg(feature = "flex")]
mod batch_norm;
#[cfg(feature = "flex")]
mod direct;
#[cfg(feature = "flex")]
mod flex;
#[cfg(feature = "flex")]
mod im2col;
#[cfg(feature = "flex")]
mod max_pool;
#[cfg(feature = "tch")]
mod tch;

/// A vector of `len` floats that `fill` initialises in full, without the zeroing pass of
/// `vec![0.0; len]` first: the output buffers of kernels that write every element (a memset of
/// each activation was 5 % of a ConvNet-S training step on flex).
///
/// # Safety
///
/// `fill` writes every element of the slice it is given.
#[cfg(feature = "flex")]
unsafe fn written_by(len: usize, fill: impl FnOnce(&mut [std::mem::MaybeUninit<f32>])) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    fill(&mut out.spare_capacity_mut()[..len]);
    // SAFETY: the capacity is `len`, and the caller promised that `fill` wrote all of it.
    unsafe { out.set_len(len) };
    out
}

/// Which inputs of an op a backward pass needs gradients for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    /// The gradient of the input (activations).
    pub input: bool,
    /// The gradient of the weight.
    pub weight: bool,
}

impl Needs {
    /// Inference: no gradient at all.
    pub const NONE: Needs = Needs {
        input: false,
        weight: false,
    };
}

/// A 2-d convolution (no bias, `groups = 1`, f32) with its backward pass, on one backend's
/// tensors. Autodiff calls [`forward`](Self::forward) with the gradients it will need and
/// later [`backward`](Self::backward) with what the forward saved.
pub trait Conv2dKernels: Backend {
    /// What the forward keeps for the backward.
    type Saved: Clone + Send + core::fmt::Debug + 'static;

    /// `x ⋆ weight` under `options`; `Some(saved)` when `needs` asks for any gradient.
    fn conv2d_forward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: &ConvOptions<2>,
        needs: Needs,
    ) -> (FloatTensor<Self>, Option<Self::Saved>);

    /// The gradients `needs` asks for, as `(input, weight)`, from the output gradient.
    fn conv2d_backward(
        saved: Self::Saved,
        grad: FloatTensor<Self>,
        options: &ConvOptions<2>,
        needs: Needs,
    ) -> (Option<FloatTensor<Self>>, Option<FloatTensor<Self>>);
}

/// Training-mode batch normalisation (f32) with its backward pass, on one backend's tensors.
pub trait BatchNormKernels: Backend {
    /// What the forward keeps for the backward.
    type Saved: Clone + Send + core::fmt::Debug + 'static;

    /// `(output, mean, biased variance, saved)`; `saved` is `Some` when `track`. With `relu`
    /// the output is `max(output, 0)` and the backward pass is that of the composition.
    #[allow(clippy::type_complexity)]
    fn batch_norm_forward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
        track: bool,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        Option<Self::Saved>,
    );

    /// `(dx, dγ, dβ)` from the output gradient.
    fn batch_norm_backward(
        saved: Self::Saved,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// 2-d max pooling (f32, symmetric padding) with its backward pass, on one backend's tensors.
pub trait MaxPoolKernels: Backend {
    /// What the forward keeps for the backward.
    type Saved: Clone + Send + core::fmt::Debug + 'static;

    /// The pooled output; `Some(saved)` when `track`.
    #[allow(clippy::too_many_arguments)]
    fn max_pool2d_forward(
        x: FloatTensor<Self>,
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        ceil_mode: bool,
        track: bool,
    ) -> (FloatTensor<Self>, Option<Self::Saved>);

    /// The input gradient from the output gradient.
    fn max_pool2d_backward(saved: Self::Saved, grad: FloatTensor<Self>) -> FloatTensor<Self>;
}
