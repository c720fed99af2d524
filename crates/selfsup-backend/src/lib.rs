//! Backend selection for selfsup.
//!
//! selfsup's model code is written once against Burn's backend-free `Tensor<D>` and `&Device`.
//! This crate is the one place that knows about concrete backends: it turns a name
//! (`flex`, `ndarray`, `wgpu`, `vulkan`, `tch`, `cuda`) into a [`Device`], reads the choice from
//! the environment, and probes which compiled-in backends actually work on this machine.
//!
//! Each backend is a cargo feature of this crate (forwarded by the `selfsup` facade):
//!
//! | feature | device | needs at run time |
//! |---|---|---|
//! | `flex` (default) | `Device::flex()` | nothing |
//! | `ndarray` | `Device::ndarray()` | nothing |
//! | `wgpu` | `Device::wgpu(DeviceKind::DefaultDevice)` | a Vulkan, Metal or DX12 driver |
//! | `vulkan` | `Device::vulkan(DeviceKind::DefaultDevice)` | a Vulkan driver |
//! | `tch` | `Device::libtorch()` | libtorch 2.9.0 (`LIBTORCH`, `LD_LIBRARY_PATH`) |
//! | `cuda` | `Device::cuda(0)` | an NVIDIA GPU and the CUDA toolkit |
//!
//! ```
//! use selfsup_backend::Backend;
//!
//! let backend: Backend = "flex".parse().unwrap();
//! let device = selfsup_backend::device(backend);
//! # let _ = device;
//! assert!("mps".parse::<Backend>().unwrap_err().to_string().contains("flex"));
//! ```

mod probe;

pub use burn::tensor::Device;
pub use probe::{Probe, probe, probe_all};

use std::fmt;
use std::str::FromStr;

/// Environment variable that selects the backend (`flex`, `ndarray`, `wgpu`, ...).
pub const BACKEND_ENV: &str = "SELFSUP_BACKEND";
/// Burn's own device variable, honoured when [`BACKEND_ENV`] is not set.
pub const BURN_DEVICE_ENV: &str = "BURN_DEVICE";

/// A Burn backend selfsup knows how to wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// Burn's pure-Rust CPU backend, the default.
    Flex,
    /// The ndarray CPU backend (deprecated upstream, kept for users who depend on it).
    NdArray,
    /// wgpu: Vulkan, Metal or DX12, chosen by the runtime.
    Wgpu,
    /// wgpu pinned to Vulkan (SPIR-V kernels).
    Vulkan,
    /// LibTorch on the CPU through `tch` (deprecated upstream, kept for users who depend on it).
    Tch,
    /// CUDA through CubeCL.
    Cuda,
}

impl Backend {
    /// Every backend selfsup knows, compiled in or not.
    pub const ALL: [Backend; 6] = [
        Backend::Flex,
        Backend::NdArray,
        Backend::Wgpu,
        Backend::Vulkan,
        Backend::Tch,
        Backend::Cuda,
    ];

    /// The name used on the command line, in `SELFSUP_BACKEND` and as the cargo feature.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::NdArray => "ndarray",
            Backend::Wgpu => "wgpu",
            Backend::Vulkan => "vulkan",
            Backend::Tch => "tch",
            Backend::Cuda => "cuda",
        }
    }

    /// Whether this build has the backend's cargo feature.
    pub fn is_compiled(self) -> bool {
        match self {
            Backend::Flex => cfg!(feature = "flex"),
            Backend::NdArray => cfg!(feature = "ndarray"),
            Backend::Wgpu => cfg!(feature = "wgpu-software"),
            Backend::Vulkan => cfg!(feature = "vulkan"),
            Backend::Tch => cfg!(feature = "tch"),
            Backend::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The backends compiled into this build, in [`Backend::ALL`] order.
    pub fn compiled() -> Vec<Backend> {
        Backend::ALL
            .into_iter()
            .filter(|b| b.is_compiled())
            .collect()
    }

    /// The backend a program uses when the user names none: flex when compiled in, otherwise
    /// the first compiled backend.
    ///
    /// # Panics
    ///
    /// When no backend feature is enabled at all.
    pub fn default_compiled() -> Backend {
        Backend::compiled().into_iter().next().unwrap_or_else(|| {
            panic!(
                "selfsup-backend was built without any backend; enable one of the features {}",
                names(&Backend::ALL)
            )
        })
    }

    /// Reads the backend from `SELFSUP_BACKEND`, then `BURN_DEVICE`; falls back to
    /// [`Backend::default_compiled`] when neither is set.
    ///
    /// # Errors
    ///
    /// When the variable names an unknown backend or one this build does not contain.
    pub fn from_env() -> Result<Backend, BackendError> {
        for var in [BACKEND_ENV, BURN_DEVICE_ENV] {
            if let Ok(value) = std::env::var(var) {
                if value.trim().is_empty() {
                    continue;
                }
                return value
                    .parse::<Backend>()
                    .and_then(Backend::ensure_compiled)
                    .map_err(|e| e.with_variable(var));
            }
        }
        Ok(Backend::default_compiled())
    }

    /// Returns the backend when it is compiled in, otherwise an error naming the feature.
    ///
    /// # Errors
    ///
    /// [`BackendError::NotCompiled`] when this build lacks the backend's feature.
    pub fn ensure_compiled(self) -> Result<Backend, BackendError> {
        if self.is_compiled() {
            Ok(self)
        } else {
            Err(BackendError::NotCompiled {
                backend: self,
                variable: None,
            })
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Backend {
    type Err = BackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        let alias = match wanted.as_str() {
            "libtorch" | "torch" => "tch",
            other => other,
        };
        Backend::ALL
            .into_iter()
            .find(|b| b.name() == alias)
            .ok_or_else(|| BackendError::Unknown {
                name: s.to_string(),
                variable: None,
            })
    }
}

/// Why a backend name could not be turned into a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// The name is not a backend selfsup knows.
    Unknown {
        /// The name as given.
        name: String,
        /// The environment variable it came from, if any.
        variable: Option<&'static str>,
    },
    /// The backend exists but this build lacks its cargo feature.
    NotCompiled {
        /// The backend asked for.
        backend: Backend,
        /// The environment variable it came from, if any.
        variable: Option<&'static str>,
    },
}

impl BackendError {
    fn with_variable(self, var: &'static str) -> Self {
        match self {
            BackendError::Unknown { name, .. } => BackendError::Unknown {
                name,
                variable: Some(var),
            },
            BackendError::NotCompiled { backend, .. } => BackendError::NotCompiled {
                backend,
                variable: Some(var),
            },
        }
    }
}

fn names(backends: &[Backend]) -> String {
    if backends.is_empty() {
        return "(none)".to_string();
    }
    backends
        .iter()
        .map(|b| b.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (variable, problem) = match self {
            BackendError::Unknown { name, variable } => (
                variable,
                format!(
                    "unknown backend '{name}'; valid names are {}",
                    names(&Backend::ALL)
                ),
            ),
            BackendError::NotCompiled { backend, variable } => (
                variable,
                format!(
                    "backend '{backend}' is not compiled into this build; rebuild with \
                     `--features {backend}`"
                ),
            ),
        };
        if let Some(var) = variable {
            write!(f, "{var}: ")?;
        }
        write!(
            f,
            "{problem} (compiled in: {})",
            names(&Backend::compiled())
        )
    }
}

impl std::error::Error for BackendError {}

/// The Burn device for a backend (the first device of its kind).
///
/// # Panics
///
/// When the backend is not compiled in; check with [`Backend::ensure_compiled`] first when the
/// name comes from a user.
#[allow(deprecated)] // ndarray and libtorch are deprecated upstream but supported here.
pub fn device(backend: Backend) -> Device {
    match backend {
        #[cfg(feature = "flex")]
        Backend::Flex => Device::flex(),
        #[cfg(feature = "ndarray")]
        Backend::NdArray => Device::ndarray(),
        #[cfg(feature = "wgpu-software")]
        Backend::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        #[cfg(feature = "vulkan")]
        Backend::Vulkan => Device::vulkan(burn::tensor::DeviceKind::DefaultDevice),
        #[cfg(feature = "tch")]
        Backend::Tch => Device::libtorch(),
        #[cfg(feature = "cuda")]
        Backend::Cuda => Device::cuda(0),
        #[allow(unreachable_patterns)]
        other => panic!(
            "{}",
            BackendError::NotCompiled {
                backend: other,
                variable: None
            }
        ),
    }
}

/// Makes the C allocator keep freed memory for reuse instead of returning it to the kernel,
/// for the whole process: call it before training on flex or ndarray (the selfsup CLI and
/// benchmarks do, through [`tune_allocator`]).
///
/// Burn's CPU backends allocate every tensor fresh. glibc serves a block over 32 MB (a
/// ConvNet-S activation at batch 512 is 51 MB) straight from the kernel and gives it back on
/// free, so the next step's tensor of the same size comes as new pages, each faulted in and
/// zeroed by the kernel: on 2 cores that was ≈ 10 % of a SimCLR step on flex, and several
/// times the cost of a large element-wise op (`bench/RESULTS.md`). With this, freed blocks stay in the
/// heap and are reused; the peak memory does not grow (measured), but memory freed after the
/// peak stays with the process until it exits.
///
/// Returns whether the allocator was changed: `false` when `SELFSUP_KEEP_FREED_MEMORY=0`
/// turns it off, and on targets other than Linux with glibc (other allocators have their own
/// caches), where it does nothing.
pub fn keep_freed_memory() -> bool {
    if std::env::var("SELFSUP_KEEP_FREED_MEMORY").is_ok_and(|v| v.trim() == "0") {
        return false;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters; it is sound to call at any time.
        unsafe {
            // No mmap-backed blocks (freed ones would go back to the kernel)…
            let no_mmap = libc::mallopt(libc::M_MMAP_MAX, 0) == 1;
            // …and keep up to 1 GiB free at the top of the heap rather than trimming it.
            let no_trim = libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1;
            no_mmap && no_trim
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// [`keep_freed_memory`] where it pays on every measure: the CPU backends whose tensors Burn
/// allocates (flex, ndarray) train faster and peak no higher. On LibTorch it makes a
/// ResNet-18 step ≈ 12 % faster but its peak memory ≈ 10–15 % higher than PyTorch's (the heap
/// fragments without mmap), so it is left off there (call [`keep_freed_memory`] to choose
/// speed); GPU backends do not allocate tensors on the host. Returns whether it was applied.
pub fn tune_allocator(backend: Backend) -> bool {
    match backend {
        Backend::Flex | Backend::NdArray => keep_freed_memory(),
        _ => false,
    }
}

/// The device tests run on: the backend named by `SELFSUP_BACKEND` (set by
/// `cargo xtask test-all`), or the default backend.
///
/// # Panics
///
/// When the variable names an unknown or missing backend; the message says which.
pub fn test_device() -> Device {
    match Backend::from_env() {
        Ok(backend) => device(backend),
        Err(e) => panic!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for b in Backend::ALL {
            assert_eq!(b.name().parse::<Backend>().unwrap(), b);
        }
        assert_eq!(" LibTorch ".parse::<Backend>().unwrap(), Backend::Tch);
    }

    #[test]
    fn unknown_name_lists_valid_and_compiled() {
        let msg = "metal".parse::<Backend>().unwrap_err().to_string();
        assert!(msg.contains("unknown backend 'metal'"), "{msg}");
        assert!(
            msg.contains("flex, ndarray, wgpu, vulkan, tch, cuda"),
            "{msg}"
        );
        assert!(msg.contains("compiled in:"), "{msg}");
    }

    #[test]
    fn not_compiled_names_the_feature() {
        let msg = BackendError::NotCompiled {
            backend: Backend::Cuda,
            variable: Some(BACKEND_ENV),
        }
        .to_string();
        assert!(msg.starts_with("SELFSUP_BACKEND: backend 'cuda'"), "{msg}");
        assert!(msg.contains("--features cuda"), "{msg}");
    }
}
