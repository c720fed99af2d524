//! Evaluating self-supervised representations.
//!
//! SSL is hard to evaluate without labels, so besides the usual [`knn_accuracy`] this crate
//! measures representation quality directly: [`rank_me`] (effective rank), [`alignment`] and
//! [`uniformity`] (Wang & Isola) and [`collapse`] (per-dimension spread of the normalised
//! embeddings, with an alarm).
#![warn(missing_docs)]

mod knn;
mod label_free;

pub use knn::{KnnConfig, knn_accuracy, knn_predict};
pub use label_free::{Collapse, alignment, collapse, rank_me, uniformity};
