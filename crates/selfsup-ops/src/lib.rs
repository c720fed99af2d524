//! selfsup's own tensor ops for Burn: kernels per backend, reached through Burn's backend
//! extension, with backward passes of their own.
//!
//! - [`conv2d`]: the 2-d convolution. On flex it is im2col + GEMM in the NCHW layout for the
//!   forward pass and both gradients (one GEMM per sample for the weight gradient); on
//!   LibTorch, libtorch's own convolution and its own backward.
//! - [`batch_norm_train`]: training-mode batch normalisation. On flex, one fused kernel for
//!   the statistics and the output, and one for the backward pass, in place in NCHW; on
//!   LibTorch, libtorch's own. [`batch_norm_relu_train`] is the same op followed by a ReLU,
//!   fused on flex (no ReLU sweep forward or backward).
//!
//! - [`max_pool2d`]: 2-d max pooling; on flex one sweep that records each maximum's
//!   position, and a backward pass that adds the gradient there.
//!
//! - [`all_reduce_sum`]: the sum over the ranks of a data-parallel run, differentiable (its
//!   backward is the same sum of the gradients): synchronised batch norm's statistics.
//!
//! Elsewhere (wgpu, vulkan, cuda, ndarray; grouped convolutions; non-f32 tensors) each op is
//! Burn's own, so code calling these runs on every backend. The `Conv2d` and `BatchNorm`
//! layers of `selfsup-nn` call them.
//!
//! The kernels of a backend are compiled with the cargo feature of the same name (`flex`,
//! `tch`), which `selfsup-backend` turns on with the backend itself.
//! [`set_own_kernels(false)`](set_own_kernels) (or `SELFSUP_OWN_KERNELS=0`) makes every op
//! Burn's own, for comparisons.
#![warn(missing_docs)]

mod all_reduce;
mod batch_norm;
mod conv2d;
mod kernels;
mod max_pool;

#[cfg(any(feature = "flex", feature = "tch"))]
pub use all_reduce::AllReduceBackend;
pub use all_reduce::all_reduce_sum;
#[cfg(any(feature = "flex", feature = "tch"))]
pub use batch_norm::{BatchNormBackend, BatchNormStats};
pub use batch_norm::{batch_norm_relu_train, batch_norm_train};
#[cfg(any(feature = "flex", feature = "tch"))]
pub use conv2d::Conv2dBackend;
pub use conv2d::conv2d;
pub use kernels::{BatchNormKernels, Conv2dKernels, MaxPoolKernels, Needs};
#[cfg(feature = "flex")]
pub use max_pool::MaxPoolBackend;
pub use max_pool::max_pool2d;

#[cfg(any(feature = "flex", feature = "tch"))]
use burn::backend::DispatchDevice;
use burn::tensor::Device;
use std::sync::atomic::{AtomicU8, Ordering};

const UNSET: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;
static OWN_KERNELS: AtomicU8 = AtomicU8::new(UNSET);

/// Environment variable that turns selfsup's own kernels off (`0`, `false`, `off` or `no`)
/// for the whole process, to compare with Burn's ops; see [`parse_own_kernels`].
pub const OWN_KERNELS_ENV: &str = "SELFSUP_OWN_KERNELS";

/// What a value of [`OWN_KERNELS_ENV`] asks for: `Some(false)` for `0`, `false`, `off`, `no`;
/// `Some(true)` for `1`, `true`, `on`, `yes` or nothing (any case, spaces ignored); `None` for
/// anything else, which [`own_kernels`] reads as on and a program should refuse.
pub fn parse_own_kernels(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "0" | "false" | "off" | "no" => Some(false),
        "" | "1" | "true" | "on" | "yes" => Some(true),
        _ => None,
    }
}

/// Turns selfsup's own kernels on (the default) or off for the whole process; off, every op
/// here is Burn's. Overrides [`OWN_KERNELS_ENV`].
pub fn set_own_kernels(enabled: bool) {
    OWN_KERNELS.store(if enabled { ON } else { OFF }, Ordering::Relaxed);
}

/// Whether selfsup's own kernels are on (see [`set_own_kernels`]).
pub fn own_kernels() -> bool {
    match OWN_KERNELS.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => {
            let enabled = std::env::var(OWN_KERNELS_ENV)
                .map_or(true, |v| parse_own_kernels(&v).unwrap_or(true));
            set_own_kernels(enabled);
            enabled
        }
    }
}

/// Whether `device` (autodiff or not) is one of the backends with kernels of selfsup's own
/// (flex and LibTorch, when their features are on).
pub fn has_own_kernel(device: &Device) -> bool {
    #[cfg(any(feature = "flex", feature = "tch"))]
    match device.as_dispatch().clone().inner() {
        #[cfg(feature = "flex")]
        DispatchDevice::Flex(_) => return true,
        #[cfg(feature = "tch")]
        DispatchDevice::LibTorch(_) => return true,
        _ => {}
    }
    let _ = device;
    false
}

/// Whether `device` (autodiff or not) is flex with its feature on.
pub(crate) fn is_flex(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    if let DispatchDevice::Flex(_) = device.as_dispatch().clone().inner() {
        return true;
    }
    let _ = device;
    false
}
