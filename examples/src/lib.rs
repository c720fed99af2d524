//! Runnable examples of selfsup; see the `examples/*.rs` files.
