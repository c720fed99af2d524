//! A method trained by burn-train's `SupervisedTraining`, unchanged.

use crate::common::*;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::optim::AdamConfig;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use burn::train::logger::InMemoryMetricLogger;
use burn::train::metric::LossMetric;
use burn::train::{Learner, SupervisedTraining};
use selfsup_methods::{Method, MultiViewBatch, SimClr};

/// Two noisy views of each image.
#[derive(Clone)]
struct TwoViews;

impl Batcher<Vec<f32>, MultiViewBatch> for TwoViews {
    fn batch(&self, items: Vec<Vec<f32>>, device: &Device) -> MultiViewBatch {
        let n = items.len();
        let data: Vec<f32> = items.into_iter().flatten().collect();
        let images = Tensor::<4>::from_data(TensorData::new(data, [n, 1, SIDE, SIDE]), device);
        let view = || images.clone() + images.random_like(Distribution::Normal(0.0, 0.05));
        MultiViewBatch::new(vec![view(), view()])
    }
}

#[test]
fn simclr_trains_under_supervised_training() {
    let device = device();
    let images: Vec<Vec<f32>> = (0..64)
        .map(|i| {
            (0..SIDE * SIDE)
                .map(|j| (((i * 7 + j * 3) % 11) as f32) / 10.0)
                .collect()
        })
        .collect();
    let fixed = TwoViews.batch(images[..16].to_vec(), &device);
    let model = SimClr::simclr(encoder(&device), 32, 16, 0.5, &device);
    let before = model.forward(fixed.clone()).loss.into_scalar::<f32>();

    let train = DataLoaderBuilder::new(TwoViews)
        .batch_size(16)
        .shuffle(7)
        .build(InMemDataset::new(images.clone()));
    let valid = DataLoaderBuilder::new(TwoViews)
        .batch_size(16)
        .build(InMemDataset::new(images[..32].to_vec()));
    let dir = std::env::temp_dir().join(format!("selfsup-train-{}", std::process::id()));
    let result = SupervisedTraining::new(&dir, train, valid)
        .num_epochs(4)
        .metrics((LossMetric::new(),))
        .with_metric_logger(InMemoryMetricLogger::new())
        .with_application_logger(None)
        .launch(Learner::new(model, AdamConfig::new().init(), 1e-2));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        result.error.is_none(),
        "training failed: {:?}",
        result.error
    );

    let fixed = TwoViews.batch(images[..16].to_vec(), &device.clone().without_autodiff());
    let after = result.model.forward(fixed).loss.into_scalar::<f32>();
    assert!(
        after < before,
        "SupervisedTraining did not lower the loss: {before} → {after}"
    );
}
