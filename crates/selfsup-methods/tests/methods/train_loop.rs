//! A method trained by burn-train's `SupervisedTraining`, unchanged.

use crate::common::*;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::module::Module;
use burn::optim::AdamConfig;
use burn::tensor::{Device, Tensor, TensorData};
use burn::train::logger::InMemoryMetricLogger;
use burn::train::metric::LossMetric;
use burn::train::{Learner, SupervisedTraining};
use selfsup_methods::{Method, MultiViewBatch, SimClr};

/// Two noisy views of each image. The noise is drawn on the host from a generator seeded by the
/// batch's pixels, so a batch gets the same views whichever loader thread builds it and in
/// whatever order: the test's outcome does not depend on thread scheduling.
#[derive(Clone)]
struct TwoViews;

impl Batcher<Vec<f32>, MultiViewBatch> for TwoViews {
    fn batch(&self, items: Vec<Vec<f32>>, device: &Device) -> MultiViewBatch {
        let n = items.len();
        let pixels: Vec<f32> = items.into_iter().flatten().collect();
        let mut state = pixels.iter().fold(0x9e37_79b9_7f4a_7c15_u64, |h, p| {
            (h ^ p.to_bits() as u64).wrapping_mul(0x100_0000_01b3)
        });
        let mut view = || {
            let noisy: Vec<f32> = pixels
                .iter()
                .map(|p| p + 0.05 * normal(&mut state))
                .collect();
            Tensor::<4>::from_data(TensorData::new(noisy, [n, 1, SIDE, SIDE]), device)
        };
        MultiViewBatch::new(vec![view(), view()])
    }
}

/// A standard normal draw (Box–Muller on two SplitMix64 uniforms).
fn normal(state: &mut u64) -> f32 {
    let mut uniform = || {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let (u, v) = (1.0 - uniform(), uniform());
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

#[test]
fn simclr_trains_under_supervised_training() {
    let device = device();
    let images: Vec<Vec<f32>> = (0..64)
        .map(|i| {
            (0..SIDE * SIDE)
                .map(|j| (((i * 7 + j * (3 + i % 5)) % 11) as f32) / 10.0)
                .collect()
        })
        .collect();
    let model = SimClr::simclr(encoder(&device), 32, 16, 0.5, &device);
    // Before and after are measured the same way: inference mode (batch norm on running
    // statistics), on the same views.
    let inference = device.clone().without_autodiff();
    let fixed = TwoViews.batch(images[..16].to_vec(), &inference);
    let before = model
        .valid()
        .forward(fixed.clone())
        .loss
        .into_scalar::<f32>();

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

    let after = result.model.forward(fixed).loss.into_scalar::<f32>();
    eprintln!("loss on fixed views: {before} → {after}");
    assert!(
        after < before,
        "SupervisedTraining did not lower the loss: {before} → {after}"
    );
}
