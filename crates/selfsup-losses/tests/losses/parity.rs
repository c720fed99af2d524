//! The same inputs give the same loss and gradients on every backend usable here.

use crate::common::*;
use burn::tensor::Tensor;
use selfsup_backend::{Backend, device as device_of, probe};
use selfsup_losses::{NtXentLossConfig, TripletMarginLossConfig, TripletMining, VicRegLossConfig};

/// Loss value and gradients of a few losses on one backend.
fn compute(backend: Backend) -> Vec<(String, Vec<f32>)> {
    let device = device_of(backend).autodiff();
    let mut rng = Rng::new(5);
    let (n, d) = (16, 8);
    let (a, b) = (rng.values(n * d), rng.values(n * d));
    let leaves = || {
        (
            matrix(a.clone(), n, d, &device).require_grad(),
            matrix(b.clone(), n, d, &device).require_grad(),
        )
    };
    let mut out = Vec::new();
    let mut record = |name: &str, loss: Tensor<1>, x: &Tensor<2>, y: Option<&Tensor<2>>| {
        let g = match y {
            Some(y) => grads(&loss, &[x, y]).concat(),
            None => grads(&loss, &[x]).concat(),
        };
        out.push((format!("{name} loss"), vec![scalar(loss)]));
        out.push((format!("{name} grad"), g));
    };

    let (x, y) = leaves();
    let loss = NtXentLossConfig::new()
        .with_temperature(0.1)
        .init()
        .forward(x.clone(), y.clone());
    record("nt_xent", loss, &x, Some(&y));

    let (x, y) = leaves();
    let loss = VicRegLossConfig::new().init().forward(x.clone(), y.clone());
    record("vicreg", loss, &x, Some(&y));

    let (x, _) = leaves();
    let labels = labels(&(0..n as i64).map(|i| i % 4).collect::<Vec<_>>(), &device);
    let loss = TripletMarginLossConfig::new()
        .with_margin(0.3)
        .with_mining(TripletMining::BatchHard)
        .init()
        .forward(x.clone(), labels);
    record("triplet", loss, &x, None);
    out
}

#[test]
fn every_usable_backend_agrees_with_the_first() {
    let usable: Vec<Backend> = Backend::compiled()
        .into_iter()
        .filter(|b| probe(*b).usable())
        .collect();
    let reference_backend = usable[0];
    let reference = compute(reference_backend);
    for backend in &usable[1..] {
        for ((name, got), (_, want)) in compute(*backend).iter().zip(&reference) {
            assert_close(
                &format!("{name} on {backend} vs {reference_backend}"),
                got,
                want,
                1e-3,
                1e-4,
            );
        }
    }
    println!(
        "compared {} backends: {}",
        usable.len(),
        usable
            .iter()
            .map(|b| b.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
}
