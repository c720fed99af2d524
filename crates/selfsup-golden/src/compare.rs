//! Compares computed values with reference values under `|got − want| ≤ rtol·|want| + atol`.

use crate::run::Check;
use selfsup_backend::Backend;

/// Relative and absolute tolerance of a comparison.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Relative part, scaled by `|want|`.
    pub rtol: f64,
    /// Absolute part.
    pub atol: f64,
}

impl Tolerance {
    /// f32 CPU backends (flex, ndarray, tch): `1e-4·|want| + 1e-5`.
    pub const CPU_F32: Tolerance = Tolerance {
        rtol: 1e-4,
        atol: 1e-5,
    };
    /// GPU backends, whose reductions and fused kernels reorder sums: `1e-3·|want| + 1e-4`.
    pub const GPU_F32: Tolerance = Tolerance {
        rtol: 1e-3,
        atol: 1e-4,
    };

    /// The tolerance the format allows a backend: [`Tolerance::GPU_F32`] for GPU backends,
    /// [`Tolerance::CPU_F32`] otherwise.
    pub fn for_backend(backend: Backend) -> Tolerance {
        match backend {
            Backend::Wgpu | Backend::Vulkan | Backend::Cuda => Tolerance::GPU_F32,
            Backend::Flex | Backend::NdArray | Backend::Tch => Tolerance::CPU_F32,
        }
    }

    /// Whether `got` is close enough to `want`. NaN is never close.
    pub fn accepts(&self, got: f64, want: f64) -> bool {
        (got - want).abs() <= self.rtol * want.abs() + self.atol
    }
}

/// The outcome of comparing every check of one case.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// Largest `|got − want|` over every value (NaN if any value was NaN).
    pub worst_abs: f64,
    /// Largest `|got − want| / |want|` over the values with `|want|` above the absolute
    /// tolerance (relative errors of values that are zero up to rounding mean nothing).
    pub worst_rel: f64,
    /// Whether every value was within tolerance.
    pub passed: bool,
    /// For a failure, the first offending value: check name, index, got and want.
    pub first_failure: Option<String>,
}

/// Compares all checks of a case.
pub fn compare(checks: &[Check], tolerance: Tolerance) -> Comparison {
    let mut worst_abs: f64 = 0.0;
    let mut worst_rel: f64 = 0.0;
    let mut first_failure = None;
    for check in checks {
        if check.got.len() != check.want.len() {
            first_failure.get_or_insert_with(|| {
                format!(
                    "{}: computed {} values, reference has {}",
                    check.name,
                    check.got.len(),
                    check.want.len()
                )
            });
            continue;
        }
        for (i, (&got, &want)) in check.got.iter().zip(&check.want).enumerate() {
            let abs = (got - want).abs();
            worst_abs = if abs.is_nan() {
                f64::NAN
            } else {
                worst_abs.max(abs)
            };
            if want.abs() > tolerance.atol {
                worst_rel = worst_rel.max(abs / want.abs());
            }
            if !tolerance.accepts(got, want) {
                first_failure.get_or_insert_with(|| {
                    let at = if check.got.len() == 1 {
                        String::new()
                    } else {
                        format!("[{i}]")
                    };
                    format!("{}{at}: got {got:.9e}, want {want:.9e}", check.name)
                });
            }
        }
    }
    Comparison {
        worst_abs,
        worst_rel,
        passed: first_failure.is_none(),
        first_failure,
    }
}
