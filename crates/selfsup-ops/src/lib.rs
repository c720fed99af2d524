//! selfsup's own tensor ops for Burn: kernels per backend, reached through Burn's backend
//! extension, with backward passes of their own.
//!
//! - [`conv2d`]: the 2-d convolution. On flex it is im2col + GEMM in the NCHW layout for the
//!   forward pass and both gradients (one GEMM per sample for the weight gradient); on
//!   LibTorch, libtorch's own convolution backward. Elsewhere (wgpu, vulkan, cuda, ndarray),
//!   and for grouped or non-f32 convolutions, it is Burn's op. [`Conv2d`](crate) layers of
//!   `selfsup-nn` call it.
//!
//! The kernels of a backend are compiled with the cargo feature of the same name (`flex`,
//! `tch`), which `selfsup-backend` turns on with the backend itself.
//! [`set_own_kernels(false)`](set_own_kernels) (or `SELFSUP_OWN_KERNELS=0`) makes every op
//! Burn's own, for comparisons.
#![warn(missing_docs)]

#[cfg(any(feature = "flex", feature = "tch"))]
mod conv2d;
mod kernels;

#[cfg(any(feature = "flex", feature = "tch"))]
pub use conv2d::{
    Conv2dBackend, OWN_KERNELS_ENV, conv2d, has_own_kernel, own_kernels, set_own_kernels,
};
#[cfg(not(any(feature = "flex", feature = "tch")))]
pub use fallback::{OWN_KERNELS_ENV, conv2d, has_own_kernel, own_kernels, set_own_kernels};
pub use kernels::{Conv2dKernels, Needs};

/// Without a backend of its own kernels, every op is Burn's.
#[cfg(not(any(feature = "flex", feature = "tch")))]
mod fallback {
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::{Device, Tensor};

    /// Environment variable that turns selfsup's own kernels off (`0`).
    pub const OWN_KERNELS_ENV: &str = "SELFSUP_OWN_KERNELS";

    /// A 2-d convolution: [`burn::tensor::module::conv2d`] (this build has no kernel of
    /// selfsup's own; enable `flex` or `tch`).
    pub fn conv2d(
        x: Tensor<4>,
        weight: Tensor<4>,
        bias: Option<Tensor<1>>,
        options: ConvOptions<2>,
    ) -> Tensor<4> {
        burn::tensor::module::conv2d(x, weight, bias, options)
    }

    /// No backend has a kernel of selfsup's own in this build.
    pub fn has_own_kernel(_device: &Device) -> bool {
        false
    }

    /// Own kernels are never used in this build.
    pub fn own_kernels() -> bool {
        false
    }

    /// Nothing to turn on in this build.
    pub fn set_own_kernels(_enabled: bool) {}
}
