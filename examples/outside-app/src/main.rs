//! The README's "Using it from a Burn application" code, as an outside app runs it.

use burn::train::TrainStep;
use selfsup::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = selfsup::backend::device(Backend::from_env()?).autodiff(); // SELFSUP_BACKEND=wgpu, …
    let view = |seed| {
        device.seed(seed);
        Tensor::<4>::random([16, 1, 28, 28], Distribution::Uniform(0.0, 1.0), &device)
    };
    let (view_a, view_b) = (view(1), view(2));
    let encoder = ConvNetSConfig::new().init(&device);
    let simclr = SimClr::simclr(encoder, 128, 64, 0.5, &device); // a Module with TrainStep + InferenceStep
    let output = simclr.train_forward(MultiViewBatch::new(vec![view_a.clone(), view_b.clone()]));
    let loss = output.loss.clone().into_scalar::<f32>();
    let _grads = output.loss.backward(); // or hand it to SupervisedTraining
    let through_burn_train = TrainStep::step(&simclr, MultiViewBatch::new(vec![view_a, view_b]));
    assert!(loss.is_finite(), "the loss is {loss}");
    println!(
        "outside app: SimCLR loss {loss:.4} on {:?}; burn-train's TrainStep ran ({} gradients)",
        device,
        through_burn_train.grads.len()
    );
    Ok(())
}
