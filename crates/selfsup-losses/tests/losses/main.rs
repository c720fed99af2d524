//! The loss test suite, one binary (linking Burn with every backend is the slow part of a
//! build). Runs on the backend named by `SELFSUP_BACKEND`; `cargo xtask test-all` runs it on
//! each.

mod chunked_nt_xent;
mod common;
mod dino_state;
mod gradcheck;
mod half_precision;
mod parity;
mod properties;
mod robustness;
