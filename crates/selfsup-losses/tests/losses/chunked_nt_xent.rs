//! The memory-bounded NT-Xent computes the same loss and gradients as the dense one.

use crate::common::*;
use selfsup_losses::NtXentLossConfig;

#[test]
fn chunked_equals_dense_for_every_chunk_size() {
    let device = device();
    let (n, d) = (9, 7);
    let mut rng = Rng::new(11);
    let (a, b) = (rng.values(n * d), rng.values(n * d));
    let run = |chunk: Option<usize>, temperature: f64| {
        let za = matrix(a.clone(), n, d, &device).require_grad();
        let zb = matrix(b.clone(), n, d, &device).require_grad();
        let loss = NtXentLossConfig::new()
            .with_temperature(temperature)
            .with_chunk_size(chunk)
            .init()
            .forward(za.clone(), zb.clone());
        let g = grads(&loss, &[&za, &zb]);
        (scalar(loss), g)
    };
    for temperature in [0.5, 0.07] {
        let (dense, dense_grads) = run(None, temperature);
        // 1 row at a time, uneven chunks, one short of the whole, and larger than 2N (dense).
        for chunk in [1, 4, 5, 2 * n - 1, 100] {
            let (chunked, chunked_grads) = run(Some(chunk), temperature);
            assert_close(
                &format!("loss, chunk {chunk}, τ {temperature}"),
                &[chunked],
                &[dense],
                1e-5,
                1e-6,
            );
            for (which, (g, want)) in chunked_grads.iter().zip(&dense_grads).enumerate() {
                assert_close(
                    &format!("grad {which}, chunk {chunk}, τ {temperature}"),
                    g,
                    want,
                    1e-4,
                    1e-6,
                );
            }
        }
    }
}
