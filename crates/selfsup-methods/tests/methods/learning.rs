//! Every method lowers its loss over a few optimizer steps on a fixed batch.

use crate::common::*;
use selfsup_losses::{ReconstructionKind, TripletMarginLossConfig, TripletMining};
use selfsup_methods::*;
use selfsup_nn::{DinoHeadConfig, MlpDecoderConfig};

fn assert_learns(name: &str, first: f32, last: f32) {
    assert!(
        first.is_finite() && last.is_finite(),
        "{name}: {first} → {last}"
    );
    assert!(
        last < first,
        "{name}: loss did not decrease: {first} → {last}"
    );
}

#[test]
fn simclr_learns() {
    let device = device();
    let (_, a, b) = train(
        SimClr::simclr(encoder(&device), 32, 16, 0.5, &device),
        &batch(2, &device),
        15,
        1e-2,
    );
    assert_learns("SimCLR", a, b);
}

#[test]
fn barlow_twins_learns() {
    let device = device();
    let method = BarlowTwins::barlow_twins(encoder(&device), 32, 32, 5e-3, &device);
    let (_, a, b) = train(method, &batch(2, &device), 15, 1e-2);
    assert_learns("Barlow Twins", a, b);
}

#[test]
fn vicreg_learns() {
    let device = device();
    let (_, a, b) = train(
        VicReg::vicreg(encoder(&device), 32, 32, &device),
        &batch(2, &device),
        15,
        1e-2,
    );
    assert_learns("VICReg", a, b);
}

#[test]
fn byol_learns() {
    let device = device();
    let (_, a, b) = train(
        Byol::new(encoder(&device), 32, 16, 0.9, 100, &device),
        &batch(2, &device),
        15,
        1e-2,
    );
    assert_learns("BYOL", a, b);
}

#[test]
fn simsiam_learns() {
    let device = device();
    let (_, a, b) = train(
        SimSiam::new(encoder(&device), 16, 8, &device),
        &batch(2, &device),
        15,
        1e-2,
    );
    assert_learns("SimSiam", a, b);
}

#[test]
fn moco_v2_learns() {
    let device = device();
    let fixed = noisy_batch(2, 0.5, &device);
    // With a fixed queue (`forward` does not enqueue), MoCo minimises InfoNCE against fixed
    // negatives while its key encoder follows by momentum. The queue's own behaviour is
    // tested in `state`.
    let mut method = MocoV2::new(encoder(&device), 32, 16, 64, 0.2, 0.9, &device);
    let mut optimizer = burn::optim::AdamConfig::new().init();
    let mut losses = Vec::new();
    for _ in 0..15 {
        let output = method.forward(fixed.clone());
        losses.push(output.loss.clone().into_scalar::<f32>());
        let grads = burn::optim::GradientsParams::from_grads(output.loss.backward(), &method);
        method = optimizer.step(1e-2, method, grads).after_optimizer_step();
    }
    assert_learns("MoCo v2", losses[0], *losses.last().unwrap());
}

#[test]
fn moco_v3_learns() {
    let device = device();
    let (_, a, b) = train(
        MocoV3::new(encoder(&device), 32, 16, 32, 0.2, 0.9, 100, &device),
        &batch(2, &device),
        15,
        1e-2,
    );
    assert_learns("MoCo v3", a, b);
}

#[test]
fn dino_learns_with_multi_crop() {
    let device = device();
    // DINO's targets move as the teacher and the center follow the student, so its loss need
    // not fall step by step. With both frozen (momenta 1) the student must fit the teacher.
    let method = Dino::new(
        encoder(&device),
        DinoHeadConfig::new(16)
            .with_hidden_dim(32)
            .with_bottleneck_dim(8)
            .with_output_dim(32),
        selfsup_losses::DinoLossConfig::new(32)
            .with_warmup_teacher_temp_epochs(0)
            .with_center_momentum(1.0),
        1.0,
        100,
        10,
        &device,
    );
    // 2 global + 2 local views.
    let (trained, a, b) = train(method, &batch(4, &device), 15, 1e-2);
    assert_learns("DINO", a, b);
    assert_eq!(trained.steps.get(), 15);
}

#[test]
fn supcon_learns() {
    let device = device();
    let (_, a, b) = train(
        SupCon::new(encoder(&device), 32, 16, 0.1, &device),
        &batch(2, &device),
        15,
        1e-2,
    );
    assert_learns("SupCon", a, b);
}

#[test]
fn triplet_learns_with_labels_and_self_supervised() {
    let device = device();
    let loss = TripletMarginLossConfig::new()
        .with_margin(0.5)
        .with_mining(TripletMining::BatchHard);
    let labelled = batch(2, &device);
    let (_, a, b) = train(
        Triplet::new(encoder(&device), 32, 16, loss.clone(), &device),
        &labelled,
        15,
        1e-2,
    );
    assert_learns("Triplet (labels)", a, b);

    let unlabelled = MultiViewBatch::new(labelled.views.clone());
    let (_, a, b) = train(
        Triplet::new(encoder(&device), 32, 16, loss, &device),
        &unlabelled,
        15,
        1e-2,
    );
    assert_learns("Triplet (self-supervised)", a, b);
}

#[test]
fn autoencoders_learn() {
    let device = device();
    for corruption in [
        Corruption::None,
        Corruption::GaussianNoise(0.2),
        Corruption::Mask {
            ratio: 0.5,
            patch: 2,
        },
    ] {
        let decoder = MlpDecoderConfig::new([1, SIDE, SIDE])
            .with_input_dim(16)
            .with_hidden_dim(32)
            .init(&device);
        let method = Autoencoder::new(
            encoder(&device),
            decoder,
            ReconstructionKind::BceWithLogits,
            corruption,
        );
        let (_, a, b) = train(method, &batch(1, &device), 15, 1e-2);
        assert_learns(&format!("Autoencoder {corruption:?}"), a, b);
    }
}
