//! Evaluating self-supervised representations.
//!
//! With labels: weighted [`knn_accuracy`], [`linear_probe`] on frozen features, and an
//! [`OnlineProbe`] that tracks the representation during pretraining.
//! SSL is hard to evaluate without labels, so this crate also
//! measures representation quality directly: [`rank_me`] (effective rank), [`alignment`] and
//! [`uniformity`] (Wang & Isola) and [`collapse`] (per-dimension spread of the normalised
//! embeddings, with an alarm).
#![warn(missing_docs)]

mod knn;
mod label_free;
mod linear;
mod online;
mod selection;

pub use knn::{KnnConfig, knn_accuracy, knn_predict};
pub use label_free::{Collapse, alignment, collapse, rank_me, uniformity};
pub use linear::{LinearProbeConfig, LinearProbeReport, linear_probe};
pub use online::{OnlineProbe, OnlineProbeOutput};
pub use selection::{CheckpointMetrics, select_label_free, spearman};
