//! SimCLR on scikit-learn's handwritten digits, trained by burn-train's `SupervisedTraining`:
//! how selfsup plugs into a Burn training app.
//!
//! ```text
//! cargo run -p selfsup-examples --example digits_simclr
//! ```
//!
//! The method is an ordinary Burn module implementing `TrainStep` and `InferenceStep`; the
//! batcher turns images into two augmented views. After training, a kNN classifier on the
//! frozen encoder's features is compared with one on raw pixels (first 1,200 digits as the
//! bank, the other 597 as queries).

#[path = "common/mod.rs"]
mod common;

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::optim::AdamConfig;
use burn::tensor::{Device, Tensor, TensorData};
use burn::train::logger::InMemoryMetricLogger;
use burn::train::metric::LossMetric;
use burn::train::{Learner, SupervisedTraining};
use common::{Digits, PIXELS, Rng, SIDE, augment, report};
use selfsup::prelude::*;
use std::sync::Mutex;

/// Two augmented views of each image.
struct TwoViews {
    rng: Mutex<Rng>,
}

impl Batcher<Vec<f32>, MultiViewBatch> for TwoViews {
    fn batch(&self, images: Vec<Vec<f32>>, device: &Device) -> MultiViewBatch {
        let n = images.len();
        let mut rng = self.rng.lock().expect("augmentation RNG");
        let mut view = || {
            let pixels: Vec<f32> = images
                .iter()
                .flat_map(|image| augment(image, &mut rng))
                .collect();
            Tensor::<4>::from_data(TensorData::new(pixels, [n, 1, SIDE, SIDE]), device)
        };
        MultiViewBatch::new(vec![view(), view()])
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let backend = Backend::from_env().map_err(|e| e.to_string())?;
    let device = selfsup::backend::device(backend).autodiff();
    device.seed(1);
    let (train, test) = Digits::load()?.split(1200);
    println!("SimCLR on digits with SupervisedTraining, backend {backend}");

    let images: Vec<Vec<f32>> = (0..train.len()).map(|i| train.image(i).to_vec()).collect();
    let batcher = |seed| TwoViews {
        rng: Mutex::new(Rng(seed)),
    };
    let train_loader = DataLoaderBuilder::new(batcher(1))
        .batch_size(128)
        .shuffle(1)
        .build(InMemDataset::new(images.clone()));
    let valid_loader = DataLoaderBuilder::new(batcher(2))
        .batch_size(128)
        .build(InMemDataset::new(images[..256].to_vec()));

    let encoder = MlpEncoderConfig::new(PIXELS)
        .with_hidden_dim(256)
        .with_output_dim(64)
        .init(&device);
    let method = SimClr::simclr(encoder, 64, 32, 0.2, &device);
    let artifacts = std::env::temp_dir().join("selfsup-digits-simclr");
    let result = SupervisedTraining::new(&artifacts, train_loader, valid_loader)
        .num_epochs(15)
        .metrics((LossMetric::new(),))
        .with_metric_logger(InMemoryMetricLogger::new())
        .with_application_logger(None)
        .renderer(Box::new(EpochRenderer::new()))
        .launch(Learner::new(method, AdamConfig::new().init(), 2e-3));
    if let Some(error) = result.error {
        return Err(format!("training failed: {error:?}"));
    }

    let device = device.without_autodiff();
    let encoder = result.model.encoder;
    report(
        "SimCLR features",
        |x| encoder.encode(x),
        &train,
        &test,
        &device,
    );
    Ok(())
}
