//! The methods test suite (one binary), on the backend named by `SELFSUP_BACKEND`.

mod common;
mod distributed;
mod learning;
mod nets;
mod state;
mod train_loop;
