//! Golden tests for selfsup: reads files in the `selfsup-golden-v1` format (reference losses and
//! gradients computed in float64 by torch, lightly and pytorch-metric-learning) and checks
//! selfsup's losses against them on any device.
//!
//! The same runner backs the project's tests, `cargo xtask golden FILE` and `selfsup golden FILE`.
//! It implements the format's semantics, not the numbers of one file: point it at any file in
//! the format.
//!
//! ```no_run
//! use selfsup_golden::{GoldenFile, Tolerance, compare, evaluate};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let file = GoldenFile::load("losses.json")?;
//! let device = selfsup_backend::test_device();
//! for case in &file.cases {
//!     if let Ok(checks) = evaluate(case, &device) {
//!         assert!(compare(&checks, Tolerance::CPU_F32).passed, "{}", case.name);
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod compare;
mod format;
mod run;

pub use compare::{Comparison, Tolerance, compare};
pub use format::{Case, Expected, FORMAT, FloatTensor, GoldenError, GoldenFile, IntTensor};
pub use run::{CaseError, Check, IMPLEMENTED, evaluate};

/// The golden file shipped with selfsup (a copy of the project's reference values), embedded so
/// tests and the CLI can use it without a path.
pub const SHIPPED: &str = include_str!("../tests/fixtures/losses.json");
