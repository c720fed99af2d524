//! A masked autoencoder on scikit-learn's handwritten digits, in a hand-written training loop.
//!
//! ```text
//! cargo run -p selfsup-examples --example digits_autoencoder            # masked (default)
//! cargo run -p selfsup-examples --example digits_autoencoder -- denoising
//! cargo run -p selfsup-examples --example digits_autoencoder -- plain
//! ```
//!
//! The encoder sees digits with half of their 2×2 patches hidden (or noisy, or intact) and a
//! decoder reconstructs the pixels; the loss counts only hidden pixels in the masked variant.
//! The example prints the loss and a kNN accuracy of the encoder's features beside raw pixels.

#[path = "common/mod.rs"]
mod common;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use common::{Digits, PIXELS, Rng, SIDE, report};
use selfsup::prelude::*;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let corruption = match std::env::args().nth(1).as_deref() {
        None | Some("masked") => Corruption::Mask {
            ratio: 0.5,
            patch: 2,
        },
        Some("denoising") => Corruption::GaussianNoise(0.3),
        Some("plain") => Corruption::None,
        Some(other) => {
            return Err(format!(
                "unknown variant '{other}'; use masked, denoising or plain"
            ));
        }
    };
    let backend = Backend::from_env().map_err(|e| e.to_string())?;
    let device = selfsup::backend::device(backend).autodiff();
    device.seed(2);
    let (train, test) = Digits::load()?.split(1200);
    println!("autoencoder ({corruption:?}) on digits, backend {backend}");

    let encoder = MlpEncoderConfig::new(PIXELS)
        .with_hidden_dim(256)
        .with_output_dim(32)
        .init(&device);
    let decoder = MlpDecoderConfig::new([1, SIDE, SIDE])
        .with_input_dim(32)
        .with_hidden_dim(256)
        .init(&device);
    let mut method = Autoencoder::new(
        encoder,
        decoder,
        ReconstructionKind::BceWithLogits,
        corruption,
    );
    let mut optimizer = AdamConfig::new().init();
    let mut rng = Rng(3);
    let mut order: Vec<usize> = (0..train.len()).collect();
    for epoch in 0..30 {
        rng.shuffle(&mut order);
        let mut total = 0.0;
        let batches = order.chunks_exact(100);
        let count = batches.len();
        for indices in batches {
            let batch = MultiViewBatch::new(vec![train.tensor(indices, &device)]);
            let output = method.train_forward(batch);
            total += output.loss.clone().into_scalar::<f32>();
            let grads = GradientsParams::from_grads(output.loss.backward(), &method);
            method = optimizer.step(2e-3, method, grads).after_optimizer_step();
        }
        if epoch % 5 == 4 {
            println!(
                "epoch {:>2}  reconstruction loss {:.4}",
                epoch + 1,
                total / count as f32
            );
        }
    }

    let device = device.without_autodiff();
    let encoder = method.encoder.valid();
    report(
        "autoencoder features",
        |x| encoder.encode(x),
        &train,
        &test,
        &device,
    );
    Ok(())
}
