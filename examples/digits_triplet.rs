//! Metric learning on scikit-learn's handwritten digits: a triplet loss with semi-hard mining,
//! trained with labels in a hand-written loop.
//!
//! ```text
//! cargo run -p selfsup-examples --example digits_triplet
//! ```
//!
//! Each batch holds augmented digits and their labels; the loss trains on the semi-hard
//! triplets (negative farther than the positive, but within the margin). The example prints the loss,
//! the fraction of active triplets, and kNN accuracy of the embedding beside raw pixels.

#[path = "common/mod.rs"]
mod common;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use common::{Digits, PIXELS, Rng, report, views};
use selfsup::prelude::*;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let backend = Backend::from_env().map_err(|e| e.to_string())?;
    let device = selfsup::backend::device(backend).autodiff();
    device.seed(3);
    let (train, test) = Digits::load()?.split(1200);
    println!("triplet (semi-hard) on digits, backend {backend}");

    let encoder = MlpEncoderConfig::new(PIXELS)
        .with_hidden_dim(256)
        .with_output_dim(64)
        .init(&device);
    let loss = TripletMarginLossConfig::new()
        .with_margin(0.2)
        .with_mining(TripletMining::SemiHard);
    let mut method = Triplet::new(encoder, 64, 32, loss, &device);
    let mut optimizer = AdamConfig::new().init();
    let mut rng = Rng(4);
    let mut order: Vec<usize> = (0..train.len()).collect();
    for epoch in 0..20 {
        rng.shuffle(&mut order);
        let (mut total, mut active, mut count) = (0.0, 0.0, 0);
        for indices in order.chunks_exact(120) {
            let batch = MultiViewBatch::new(vec![views(&train, indices, &mut rng, &device)])
                .with_labels(train.label_tensor(indices, &device));
            let features = method.encoder.encode(batch.views[0].clone());
            let (loss, stats) = method.loss.forward_with_stats(
                method.projector.forward(features),
                batch.labels.clone().unwrap(),
            );
            total += loss.clone().into_scalar::<f32>();
            active += stats.active_fraction;
            count += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &method);
            method = optimizer.step(1e-3, method, grads).after_optimizer_step();
        }
        if epoch % 4 == 3 {
            println!(
                "epoch {:>2}  triplet loss {:.4}  active triplets {:.0} %",
                epoch + 1,
                total / count as f32,
                100.0 * active / count as f64
            );
        }
    }

    let device = device.without_autodiff();
    let encoder = method.encoder.valid();
    report(
        "triplet embeddings",
        |x| encoder.encode(x),
        &train,
        &test,
        &device,
    );
    Ok(())
}
