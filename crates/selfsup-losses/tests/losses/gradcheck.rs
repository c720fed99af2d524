//! Finite-difference checks of every loss's gradient: for a random direction `v`, the
//! directional derivative must match `⟨∇L(x), v⟩`. It is estimated by central differences
//! `D(h) = (L(x + hv) − L(x − hv)) / 2h` with Richardson extrapolation,
//! `(4·D(h/2) − D(h)) / 3`, whose error is O(h⁴): accurate in f32 without a tiny step.

use crate::common::*;
use burn::tensor::Tensor;
use selfsup_losses::*;

const N: usize = 6;
const D: usize = 4;
const H: f32 = 1e-2;
const LABELS: [i64; N] = [0, 1, 0, 1, 2, 2];

/// Checks the gradient of `loss` with respect to every input at a random point.
fn check(name: &str, inputs: usize, loss: impl Fn(&[Tensor<2>]) -> Tensor<1>) {
    let device = device();
    let mut rng = Rng::new(name.len() as u64 * 7919);
    let point: Vec<Vec<f32>> = (0..inputs).map(|_| rng.values(N * D)).collect();
    let direction: Vec<Vec<f32>> = (0..inputs).map(|_| rng.values(N * D)).collect();

    let leaves: Vec<Tensor<2>> = point
        .iter()
        .map(|p| matrix(p.clone(), N, D, &device).require_grad())
        .collect();
    let value = loss(&leaves);
    let refs: Vec<&Tensor<2>> = leaves.iter().collect();
    let analytic: f32 = grads(&value, &refs)
        .iter()
        .zip(&direction)
        .map(|(g, v)| g.iter().zip(v).map(|(a, b)| a * b).sum::<f32>())
        .sum();

    let plain = device.clone().without_autodiff();
    let at = |step: f32| -> f32 {
        let shifted: Vec<Tensor<2>> = point
            .iter()
            .zip(&direction)
            .map(|(p, v)| {
                let moved = p.iter().zip(v).map(|(a, b)| a + step * b).collect();
                matrix(moved, N, D, &plain)
            })
            .collect();
        scalar(loss(&shifted))
    };
    let central = |h: f32| (at(h) - at(-h)) / (2.0 * h);
    let numeric = (4.0 * central(H / 2.0) - central(H)) / 3.0;
    assert!(
        (numeric - analytic).abs() <= 2e-2 * analytic.abs().max(numeric.abs()) + 2e-3,
        "{name}: finite difference {numeric} vs gradient {analytic}"
    );
}

fn labels_on(t: &Tensor<2>) -> burn::tensor::Tensor<1, burn::tensor::Int> {
    labels(&LABELS, &t.device())
}

#[test]
fn nt_xent_gradient() {
    let loss = NtXentLossConfig::new().with_temperature(0.5).init();
    check("nt_xent", 2, |x| loss.forward(x[0].clone(), x[1].clone()));
}

#[test]
fn chunked_nt_xent_gradient() {
    let loss = NtXentLossConfig::new()
        .with_temperature(0.5)
        .with_chunk_size(Some(5))
        .init();
    check("nt_xent_chunked", 2, |x| {
        loss.forward(x[0].clone(), x[1].clone())
    });
}

#[test]
fn info_nce_gradient() {
    let loss = InfoNceLossConfig::new().init();
    check("info_nce", 3, |x| {
        loss.forward(x[0].clone(), x[1].clone(), x[2].clone())
    });
}

#[test]
fn negative_cosine_gradient() {
    check("negative_cosine", 2, |x| {
        NegativeCosineSimilarity::new().forward(x[0].clone(), x[1].clone())
    });
}

#[test]
fn barlow_twins_gradient() {
    let loss = BarlowTwinsLossConfig::new().with_lambda(0.1).init();
    check("barlow_twins", 2, |x| {
        loss.forward(x[0].clone(), x[1].clone())
    });
}

#[test]
fn vicreg_gradient() {
    let loss = VicRegLossConfig::new().init();
    check("vicreg", 2, |x| loss.forward(x[0].clone(), x[1].clone()));
}

#[test]
fn triplet_gradients() {
    for distance in [Distance::L2, Distance::SquaredL2, Distance::Cosine] {
        for mining in [TripletMining::All, TripletMining::BatchHard] {
            let loss = TripletMarginLossConfig::new()
                .with_margin(0.5)
                .with_distance(distance)
                .with_mining(mining)
                .init();
            check(&format!("triplet/{distance}/{mining}"), 1, |x| {
                loss.forward(x[0].clone(), labels_on(&x[0]))
            });
        }
    }
}

#[test]
fn contrastive_gradient() {
    let loss = ContrastiveLossConfig::new()
        .with_pos_margin(0.1)
        .with_neg_margin(1.5)
        .init();
    check("contrastive", 1, |x| {
        loss.forward(x[0].clone(), labels_on(&x[0]))
    });
}

#[test]
fn supcon_gradient() {
    let loss = SupConLossConfig::new().with_temperature(0.5).init();
    check("supcon", 1, |x| {
        loss.forward(x[0].clone(), labels_on(&x[0]))
    });
}

#[test]
fn dino_gradient() {
    // The teacher is a constant of the loss (detached), so only the students are perturbed.
    let teacher = Rng::new(77).values(N * D);
    check("dino", 2, |x| {
        let device = x[0].device();
        let dino = DinoLossConfig::new(D)
            .with_teacher_temp(0.5)
            .with_warmup_teacher_temp(0.5)
            .with_student_temp(0.5)
            .init(&device);
        let teacher = matrix(teacher.clone(), N, D, &device);
        dino.loss(&[teacher], &[x[0].clone(), x[1].clone()], 0.5)
    });
}

#[test]
fn reconstruction_gradients() {
    for kind in [
        ReconstructionKind::Mse,
        ReconstructionKind::L1,
        ReconstructionKind::BceWithLogits,
    ] {
        let loss = ReconstructionLossConfig::new().with_kind(kind).init();
        check(&format!("reconstruction/{kind:?}"), 1, |x| {
            let target = Tensor::<2>::ones([N, D], &x[0].device()).mul_scalar(0.3);
            loss.forward(x[0].clone(), target)
        });
    }
}
