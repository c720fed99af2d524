//! Synchronised batch norm: W ranks, each normalising its shard with the global batch's
//! statistics, compute what one process computes on the whole batch — output, running
//! statistics, and (summed over the ranks for γ and β) every gradient. Ranks are threads.

use burn::tensor::{Distribution, Tensor, TensorData, Tolerance};
use selfsup_dist::on_thread_ranks;
use selfsup_nn::{BatchNorm, BatchNormConfig};

fn data<const D: usize>(t: Tensor<D>) -> TensorData {
    t.into_data()
}

/// Output, input gradient, γ and β gradients, running mean and variance.
type Results = (
    TensorData,
    TensorData,
    TensorData,
    TensorData,
    TensorData,
    TensorData,
);

fn step(norm: &BatchNorm, x: Tensor<4>, g: Tensor<4>) -> Results {
    let x = x.require_grad();
    let y = norm.forward(x.clone());
    let grads = (y.clone() * g).sum().backward();
    (
        data(y),
        data(x.grad(&grads).unwrap()),
        data(norm.gamma.grad(&grads).unwrap()),
        data(norm.beta.grad(&grads).unwrap()),
        data(norm.running_mean.value()),
        data(norm.running_var.value()),
    )
}

#[test]
fn sharded_synchronised_batch_norm_is_batch_norm_of_the_whole_batch() {
    let device = selfsup_backend::test_device().autodiff();
    // Synchronisation needs a backward pass of selfsup's own (flex, tch); elsewhere each
    // rank normalises its own shard.
    if !selfsup_ops::has_own_kernel(&device) {
        return;
    }
    let (n, c) = (8, 3);
    device.seed(11);
    let x = Tensor::<4>::random([n, c, 3, 2], Distribution::Normal(1.5, 2.0), &device);
    let g = Tensor::<4>::random([n, c, 3, 2], Distribution::Default, &device);
    let norm = BatchNormConfig::new(c).init(&device);
    let whole = step(&norm.clone(), x.clone(), g.clone());
    let world = 2;
    let shard = n / world;
    let ranks: Vec<Results> = on_thread_ranks(world, |rank| {
        // A replica of its own (fresh running statistics), as a rank has.
        let norm = BatchNormConfig::new(c).init(&device);
        step(
            &norm,
            x.clone().narrow(0, rank * shard, shard),
            g.clone().narrow(0, rank * shard, shard),
        )
    });
    let tol = Tolerance::rel_abs(1e-4, 1e-5);
    let rows = |d: &TensorData, rank: usize| {
        let values = d.clone().convert::<f32>().try_into_vec::<f32>().unwrap();
        let per = values.len() / world;
        values[rank * per..(rank + 1) * per].to_vec()
    };
    for (rank, r) in ranks.iter().enumerate() {
        let shape = [shard, c, 3, 2];
        r.0.assert_approx_eq::<f32>(&TensorData::new(rows(&whole.0, rank), shape), tol);
        r.1.assert_approx_eq::<f32>(&TensorData::new(rows(&whole.1, rank), shape), tol);
        r.4.assert_approx_eq::<f32>(&whole.4, tol);
        r.5.assert_approx_eq::<f32>(&whole.5, tol);
    }
    let sum = |i: usize| {
        let pick = |r: &Results| match i {
            2 => r.2.clone(),
            _ => r.3.clone(),
        };
        let a = pick(&ranks[0])
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap();
        let b = pick(&ranks[1])
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap();
        TensorData::new(a.iter().zip(&b).map(|(x, y)| x + y).collect(), [c])
    };
    sum(2).assert_approx_eq::<f32>(&whole.2, tol);
    sum(3).assert_approx_eq::<f32>(&whole.3, tol);
}
