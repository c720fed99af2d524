//! Training ConvNet-S on selfsup's own kernels follows the loss curve of Burn's own ops (its
//! own test binary: it switches the kernels process-wide). Runs on the backend named by
//! `SELFSUP_BACKEND`; on backends without kernels of selfsup's own both runs are Burn's.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use selfsup_nn::{ConvNetS, ConvNetSConfig, Encoder};

#[derive(Module, Debug)]
struct Classifier {
    encoder: ConvNetS,
    head: Linear,
}

/// The loss of each of `steps` Adam steps of ConvNet-S + a linear head regressing random
/// targets from random 28×28 images, from one seed.
fn losses(device: &Device, steps: usize) -> Vec<f32> {
    device.seed(42);
    let mut model = Classifier {
        encoder: ConvNetSConfig::new().init(device),
        head: LinearConfig::new(128, 10).init(device),
    };
    let mut optimizer = AdamConfig::new().init();
    let images = Tensor::<4>::random([32, 1, 28, 28], Distribution::Default, device);
    let targets = Tensor::<2>::random([32, 10], Distribution::Normal(0.0, 1.0), device);
    (0..steps)
        .map(|_| {
            let predicted = model.head.forward(model.encoder.forward(images.clone()));
            let loss = (predicted - targets.clone()).powi_scalar(2).mean();
            let value = loss.clone().into_scalar::<f32>();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(1e-2, model.clone(), grads);
            value
        })
        .collect()
}

#[test]
fn the_loss_curve_matches_burns_ops() {
    let device = selfsup_backend::test_device().autodiff();
    selfsup_ops::set_own_kernels(true);
    let ours = losses(&device, 8);
    selfsup_ops::set_own_kernels(false);
    let burn = losses(&device, 8);
    selfsup_ops::set_own_kernels(true);
    assert!(
        burn.first() > burn.last(),
        "the reference run did not learn: {burn:?}"
    );
    let worst = ours
        .iter()
        .zip(&burn)
        .map(|(a, b)| (a - b).abs() / b.abs().max(1e-6))
        .fold(0.0f32, f32::max);
    println!(
        "losses (selfsup kernels) {ours:?}\nlosses (Burn's ops)      {burn:?}\nworst relative difference {worst:.2e}"
    );
    assert!(
        worst < 1e-3,
        "the loss curves part: {ours:?} vs {burn:?} (worst relative difference {worst:.2e})"
    );
}
