//! Augmentations and multi-view batches for selfsup, on device tensors.
//!
//! - [`Pipeline`]: a list of [`Augmentation`]s applied to a batch, with per-method presets
//!   (SimCLR, BYOL's asymmetric pair, DINO's multi-crop). Random choices come from a seeded
//!   [`Rng`] on the host, so a seed gives the same views on every backend.
//! - [`MultiViewBatcher`]: a Burn `Batcher` turning images into a `MultiViewBatch`.
//! - [`image_batch`]: images of an [`ImageSet`] as a `[N, C, H, W]` tensor in `[0, 1]`;
//!   [`table_batch`]: rows of a CSV table as `[N, 1, 1, D]`.
#![warn(missing_docs)]

pub mod augment;
mod batcher;

pub use augment::{Augmentation, Pipeline, views, views_each};
pub use batcher::{ImageItem, MultiViewBatcher, item};
pub use selfsup_data::Rng;

use burn::tensor::{Device, Int, Tensor, TensorData};
use selfsup_data::ImageSet;

/// The rows of `table` at `indices` as `[len, 1, 1, columns]` (so that MLP encoders and the
/// pixel-wise augmentations — noise, patch masking with `patch = 1` — apply unchanged), and
/// their labels when the table has them.
///
/// # Panics
///
/// When an index is out of range.
pub fn table_batch(
    table: &selfsup_data::table::Table,
    indices: &[usize],
    device: &Device,
) -> (Tensor<4>, Option<Tensor<1, Int>>) {
    let mut values = Vec::with_capacity(indices.len() * table.columns);
    for &i in indices {
        values.extend_from_slice(table.row(i));
    }
    let rows = Tensor::from_data(
        TensorData::new(values, [indices.len(), 1, 1, table.columns]),
        device,
    );
    let labels = (!table.labels.is_empty()).then(|| {
        let labels: Vec<i64> = indices.iter().map(|&i| table.labels[i] as i64).collect();
        Tensor::from_data(TensorData::new(labels, [indices.len()]), device)
    });
    (rows, labels)
}

/// The images of `set` at `indices`, scaled to `[0, 1]` (`[len, C, H, W]`), and their labels.
///
/// # Panics
///
/// When an index is out of range.
pub fn image_batch(
    set: &ImageSet,
    indices: &[usize],
    device: &Device,
) -> (Tensor<4>, Tensor<1, Int>) {
    let size = set.image_size();
    let mut pixels = Vec::with_capacity(indices.len() * size);
    for &i in indices {
        pixels.extend(set.image(i).iter().map(|&p| p as f32 / 255.0));
    }
    (
        Tensor::from_data(
            TensorData::new(pixels, [indices.len(), set.channels, set.height, set.width]),
            device,
        ),
        label_batch(set, indices, device),
    )
}

/// The labels of the images of `set` at `indices`, without touching the pixels.
///
/// # Panics
///
/// When an index is out of range.
pub fn label_batch(set: &ImageSet, indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let labels: Vec<i64> = indices.iter().map(|&i| set.labels[i] as i64).collect();
    Tensor::from_data(TensorData::new(labels, [indices.len()]), device)
}
