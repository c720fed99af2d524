use std::sync::atomic::{AtomicU64, Ordering};

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::{Device, Tensor, TensorData};
use selfsup_methods::MultiViewBatch;

use crate::Rng;
use crate::augment::{Pipeline, views};
use selfsup_data::ImageSet;

/// One image for a Burn `DataLoader`: pixels `[C, H, W]` as bytes and its label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageItem {
    /// Pixels, `channels · height · width` bytes.
    pub pixels: Vec<u8>,
    /// Shape `[C, H, W]`.
    pub shape: [usize; 3],
    /// Class label.
    pub label: u8,
}

/// Image `i` of `set` as an [`ImageItem`].
///
/// # Panics
///
/// When `i` is out of range.
pub fn item(set: &ImageSet, i: usize) -> ImageItem {
    ImageItem {
        pixels: set.image(i).to_vec(),
        shape: [set.channels, set.height, set.width],
        label: set.labels[i],
    }
}

/// Batches [`ImageItem`]s into a [`MultiViewBatch`]: the images go to the device once, then
/// each pipeline makes one view of all of them (labels attached).
///
/// The `k`-th batch draws its augmentations from stream `k` of the seed, so a single-worker
/// loader yields the same views run after run.
#[derive(Debug)]
pub struct MultiViewBatcher {
    pipelines: Vec<Pipeline>,
    seed: u64,
    batches: AtomicU64,
}

impl MultiViewBatcher {
    /// One view per pipeline, seeded.
    ///
    /// # Panics
    ///
    /// When `pipelines` is empty.
    pub fn new(pipelines: Vec<Pipeline>, seed: u64) -> Self {
        assert!(
            !pipelines.is_empty(),
            "MultiViewBatcher: needs at least one pipeline"
        );
        MultiViewBatcher {
            pipelines,
            seed,
            batches: AtomicU64::new(0),
        }
    }
}

impl Batcher<ImageItem, MultiViewBatch> for MultiViewBatcher {
    fn batch(&self, items: Vec<ImageItem>, device: &Device) -> MultiViewBatch {
        let shape = items.first().map_or([1, 0, 0], |item| item.shape);
        assert!(
            items.iter().all(|item| item.shape == shape),
            "MultiViewBatcher: every image of a batch must have the shape {shape:?}"
        );
        let n = items.len();
        let pixels: Vec<f32> = items
            .iter()
            .flat_map(|item| item.pixels.iter().map(|&p| p as f32 / 255.0))
            .collect();
        let labels: Vec<i64> = items.iter().map(|item| item.label as i64).collect();
        let images = Tensor::<4>::from_data(
            TensorData::new(pixels, [n, shape[0], shape[1], shape[2]]),
            device,
        );
        let mut rng = Rng::stream(self.seed, self.batches.fetch_add(1, Ordering::Relaxed));
        MultiViewBatch::new(views(&self.pipelines, images, &mut rng))
            .with_labels(Tensor::from_data(TensorData::new(labels, [n]), device))
    }
}
