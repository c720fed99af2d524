//! Properties every implementation must have whatever the numbers: symmetry, invariance to
//! row order and (for normalised losses) to input scale, non-negativity.

use crate::common::*;
use burn::tensor::{Device, Int, Tensor};
use selfsup_losses::*;

type PairLoss = Box<dyn Fn(Tensor<2>, Tensor<2>) -> Tensor<1>>;
type LabelLoss = Box<dyn Fn(Tensor<2>, Tensor<1, Int>) -> Tensor<1>>;

const N: usize = 8;
const D: usize = 6;
const LABELS: [i64; N] = [0, 1, 2, 0, 1, 2, 0, 3];
const PERMUTATION: [usize; N] = [5, 2, 7, 0, 3, 6, 1, 4];

fn pair_losses(device: &Device) -> Vec<(&'static str, PairLoss, bool)> {
    let negatives = matrix(Rng::new(99).values(5 * D), 5, D, device);
    let nt_xent = NtXentLossConfig::new().init();
    let chunked = NtXentLossConfig::new().with_chunk_size(Some(3)).init();
    let info_nce = InfoNceLossConfig::new().init();
    let cosine = NegativeCosineSimilarity::new();
    let barlow = BarlowTwinsLossConfig::new().init();
    let vicreg = VicRegLossConfig::new().init();
    let mse = ReconstructionLossConfig::new().init();
    // (name, loss, symmetric in its two arguments)
    vec![
        ("nt_xent", Box::new(move |a, b| nt_xent.forward(a, b)), true),
        (
            "nt_xent_chunked",
            Box::new(move |a, b| chunked.forward(a, b)),
            true,
        ),
        (
            "info_nce",
            Box::new(move |a, b| info_nce.forward(a, b, negatives.clone())),
            false,
        ),
        (
            "negative_cosine",
            Box::new(move |a, b| cosine.forward(a, b)),
            true,
        ),
        (
            "barlow_twins",
            Box::new(move |a, b| barlow.forward(a, b)),
            true,
        ),
        ("vicreg", Box::new(move |a, b| vicreg.forward(a, b)), true),
        ("mse", Box::new(move |a, b| mse.forward(a, b)), true),
    ]
}

fn label_losses() -> Vec<(String, LabelLoss)> {
    let mut out: Vec<(String, LabelLoss)> = Vec::new();
    for distance in [Distance::L2, Distance::SquaredL2, Distance::Cosine] {
        for mining in [
            TripletMining::All,
            TripletMining::Violating,
            TripletMining::BatchHard,
        ] {
            let loss = TripletMarginLossConfig::new()
                .with_margin(0.3)
                .with_distance(distance)
                .with_mining(mining)
                .init();
            out.push((
                format!("triplet/{distance}/{mining}"),
                Box::new(move |x, y| loss.forward(x, y)),
            ));
        }
    }
    let contrastive = ContrastiveLossConfig::new().with_neg_margin(1.2).init();
    out.push((
        "contrastive".into(),
        Box::new(move |x, y| contrastive.forward(x, y)),
    ));
    let supcon = SupConLossConfig::new().init();
    out.push(("supcon".into(), Box::new(move |x, y| supcon.forward(x, y))));
    out
}

fn views(device: &Device) -> (Vec<f32>, Tensor<2>, Tensor<2>) {
    let mut rng = Rng::new(21);
    let a = rng.values(N * D);
    let b: Vec<f32> = a.iter().map(|v| v + 0.5 * rng.normal()).collect();
    (a.clone(), matrix(a, N, D, device), matrix(b, N, D, device))
}

fn permute_rows(values: &[f32], cols: usize) -> Vec<f32> {
    PERMUTATION
        .iter()
        .flat_map(|&r| values[r * cols..(r + 1) * cols].to_vec())
        .collect()
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-4 * b.abs().max(1.0)
}

#[test]
fn pair_losses_are_symmetric_where_they_should_be() {
    let device = device();
    let (_, a, b) = views(&device);
    for (name, loss, symmetric) in pair_losses(&device) {
        if symmetric {
            let (ab, ba) = (
                scalar(loss(a.clone(), b.clone())),
                scalar(loss(b.clone(), a.clone())),
            );
            assert!(close(ab, ba), "{name}: L(a,b) = {ab} but L(b,a) = {ba}");
        }
    }
}

#[test]
fn pair_losses_ignore_row_order() {
    let device = device();
    let (_, a, b) = views(&device);
    let pa = matrix(permute_rows(&values(a.clone()), D), N, D, &device);
    let pb = matrix(permute_rows(&values(b.clone()), D), N, D, &device);
    for (name, loss, _) in pair_losses(&device) {
        let (plain, permuted) = (
            scalar(loss(a.clone(), b.clone())),
            scalar(loss(pa.clone(), pb.clone())),
        );
        assert!(
            close(plain, permuted),
            "{name}: {plain} vs {permuted} after permuting rows"
        );
    }
}

#[test]
fn label_losses_ignore_row_order() {
    let device = device();
    let (raw, x, _) = views(&device);
    let px = matrix(permute_rows(&raw, D), N, D, &device);
    let py: Vec<i64> = PERMUTATION.iter().map(|&r| LABELS[r]).collect();
    for (name, loss) in label_losses() {
        let plain = scalar(loss(x.clone(), labels(&LABELS, &device)));
        let permuted = scalar(loss(px.clone(), labels(&py, &device)));
        assert!(
            close(plain, permuted),
            "{name}: {plain} vs {permuted} after permuting rows"
        );
    }
}

#[test]
fn normalised_losses_ignore_input_scale() {
    let device = device();
    let (_, a, b) = views(&device);
    let scale = |t: &Tensor<2>| t.clone().mul_scalar(3.7);
    for (name, loss, _) in pair_losses(&device) {
        if matches!(name, "vicreg" | "mse") {
            continue; // not normalised
        }
        let (plain, scaled) = (
            scalar(loss(a.clone(), b.clone())),
            scalar(loss(scale(&a), scale(&b))),
        );
        assert!(
            (plain - scaled).abs() <= 1e-3 * plain.abs().max(1.0),
            "{name}: {plain} vs {scaled} after scaling inputs by 3.7"
        );
    }
    for (name, loss) in label_losses() {
        let plain = scalar(loss(a.clone(), labels(&LABELS, &device)));
        let scaled = scalar(loss(scale(&a), labels(&LABELS, &device)));
        assert!(
            close(plain, scaled),
            "{name}: {plain} vs {scaled} after scaling inputs by 3.7"
        );
    }
}

#[test]
fn losses_that_must_be_non_negative_are() {
    let device = device();
    for seed in 0..5 {
        let mut rng = Rng::new(seed);
        let a = matrix(rng.values(N * D), N, D, &device);
        let b = matrix(rng.values(N * D), N, D, &device);
        for (name, loss, _) in pair_losses(&device) {
            if name == "negative_cosine" {
                continue; // lies in [-1, 1] by definition
            }
            let v = scalar(loss(a.clone(), b.clone()));
            assert!(v >= 0.0, "{name}: {v} < 0 (seed {seed})");
        }
        for (name, loss) in label_losses() {
            let v = scalar(loss(a.clone(), labels(&LABELS, &device)));
            assert!(v >= 0.0, "{name}: {v} < 0 (seed {seed})");
        }
        let dino = DinoLossConfig::new(D).init(&device);
        let v = scalar(dino.forward(std::slice::from_ref(&a), &[b.clone(), a.clone()], 0));
        assert!(v >= 0.0, "dino: {v} < 0 (seed {seed})");
    }
}

#[test]
fn negative_cosine_stays_within_minus_one_and_one() {
    let device = device();
    let (_, a, b) = views(&device);
    let loss = NegativeCosineSimilarity::new();
    let v = scalar(loss.forward(a.clone(), b));
    assert!((-1.0..=1.0).contains(&v), "{v}");
    assert!((scalar(loss.forward(a.clone(), a.clone())) + 1.0).abs() < 1e-5);
    assert!((scalar(loss.forward(a.clone(), a.neg())) - 1.0).abs() < 1e-5);
}
