//! W ranks, each holding a shard of the global batch and gathering the others' embeddings,
//! compute the one-process loss and, summed, its gradient — for every loss of the whole batch.
//! Ranks are threads here (`on_thread_ranks`); under `mpirun` they are processes.

use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use selfsup_dist::{
    all_reduce_gradients, broadcast_module, gather_labels, gather_rows, on_thread_ranks,
};
use selfsup_losses::{
    BarlowTwinsLossConfig, DinoLossConfig, NtXentLossConfig, SupConLossConfig,
    TripletMarginLossConfig, TripletMining, VicRegLossConfig,
};

fn device() -> Device {
    selfsup_backend::test_device().autodiff()
}

/// Reproducible standard-normal-ish values (SplitMix64, Box–Muller).
fn values(seed: u64, n: usize) -> Vec<f32> {
    let mut state = seed;
    let mut uniform = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (uniform().max(1e-12), uniform());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        })
        .collect()
}

/// The global batch: `inputs` `[n, d]` matrices and `labels`.
struct Batch {
    n: usize,
    d: usize,
    inputs: Vec<Vec<f32>>,
    labels: Vec<i64>,
}

type Loss<'a> = dyn Fn(Vec<Tensor<2>>, Tensor<1, Int>) -> Tensor<1> + Sync + 'a;

/// Every rank's loss value and the gradients of its shards, concatenated in rank order.
fn on_ranks(world: usize, batch: &Batch, loss: &Loss<'_>) -> (Vec<f32>, Vec<Vec<f32>>) {
    let rows = batch.n / world;
    let run = |rank: usize| {
        let device = device();
        let range = rank * rows * batch.d..(rank + 1) * rows * batch.d;
        let leaves: Vec<Tensor<2>> = batch
            .inputs
            .iter()
            .map(|x| {
                Tensor::from_data(
                    TensorData::new(x[range.clone()].to_vec(), [rows, batch.d]),
                    &device,
                )
                .require_grad()
            })
            .collect();
        let labels = Tensor::<1, Int>::from_data(
            TensorData::new(
                batch.labels[rank * rows..(rank + 1) * rows].to_vec(),
                [rows],
            ),
            &device,
        );
        let gathered = leaves.iter().map(|l| gather_rows(l.clone())).collect();
        let value = loss(gathered, gather_labels(labels));
        let grads = value.backward();
        let leaf_grads: Vec<Vec<f32>> = leaves
            .iter()
            .map(|l| {
                l.grad(&grads)
                    .map(|g| {
                        g.into_data()
                            .convert::<f32>()
                            .try_into_vec::<f32>()
                            .unwrap()
                    })
                    .unwrap_or_else(|| vec![0.0; rows * batch.d])
            })
            .collect();
        (value.into_scalar::<f32>(), leaf_grads)
    };
    let per_rank: Vec<(f32, Vec<Vec<f32>>)> = on_thread_ranks(world, run);
    let losses = per_rank.iter().map(|(l, _)| *l).collect();
    let grads = (0..batch.inputs.len())
        .map(|i| per_rank.iter().flat_map(|(_, g)| g[i].clone()).collect())
        .collect();
    (losses, grads)
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * w.abs() + 1e-6,
            "{what}[{i}]: sharded {g}, whole batch {w}"
        );
    }
}

/// The loss on W = 2 and 4 ranks equals the one-process loss on every rank, and the ranks'
/// shard gradients are the one-process gradient.
fn check(name: &str, inputs: usize, d: usize, loss: &Loss<'_>) {
    let n = 8;
    let batch = Batch {
        n,
        d,
        inputs: (0..inputs).map(|i| values(17 + i as u64, n * d)).collect(),
        labels: (0..n as i64).map(|i| i % 3).collect(),
    };
    let (want_loss, want_grads) = on_ranks(1, &batch, loss);
    for world in [2, 4] {
        let (losses, grads) = on_ranks(world, &batch, loss);
        for (rank, l) in losses.iter().enumerate() {
            assert_close(
                &format!("{name} W={world} loss of rank {rank}"),
                &[*l],
                &want_loss,
            );
        }
        for (i, (got, want)) in grads.iter().zip(&want_grads).enumerate() {
            assert_close(&format!("{name} W={world} grad of input {i}"), got, want);
        }
    }
}

#[test]
fn nt_xent_on_shards_is_the_whole_batch_loss() {
    let loss = NtXentLossConfig::new().with_temperature(0.5).init();
    check("nt_xent", 2, 6, &|z, _| {
        loss.forward(z[0].clone(), z[1].clone())
    });
}

#[test]
fn barlow_twins_on_shards_is_the_whole_batch_loss() {
    let loss = BarlowTwinsLossConfig::new().init();
    check("barlow_twins", 2, 5, &|z, _| {
        loss.forward(z[0].clone(), z[1].clone())
    });
}

#[test]
fn vicreg_on_shards_is_the_whole_batch_loss() {
    let loss = VicRegLossConfig::new().init();
    check("vicreg", 2, 5, &|z, _| {
        loss.forward(z[0].clone(), z[1].clone())
    });
}

#[test]
fn supcon_on_shards_is_the_whole_batch_loss() {
    let loss = SupConLossConfig::new().init();
    check("supcon", 1, 6, &|z, y| loss.forward(z[0].clone(), y));
}

#[test]
fn batch_hard_triplets_on_shards_are_the_whole_batch_loss() {
    let loss = TripletMarginLossConfig::new()
        .with_mining(TripletMining::BatchHard)
        .init();
    check("triplet", 1, 6, &|z, y| loss.forward(z[0].clone(), y));
}

#[test]
fn dino_on_shards_is_the_whole_batch_loss() {
    let loss = DinoLossConfig::new(7).init(&device());
    check("dino", 4, 7, &|z, _| loss.loss(&z[..2], &z[2..], 0.04));
}

/// A linear model on each rank's shard: the all-reduced parameter gradients are the
/// one-process gradients of the whole batch, and a broadcast gives every rank rank 0's
/// weights.
#[test]
fn gradients_summed_over_ranks_are_the_whole_batch_gradients() {
    let (n, d) = (8, 5);
    let x = values(3, n * d);
    let y = values(4, n * d);
    let loss = NtXentLossConfig::new().with_temperature(0.3).init();
    let step = |model: &Linear, rows: std::ops::Range<usize>| {
        let device = device();
        let shard = |v: &[f32]| {
            Tensor::<2>::from_data(
                TensorData::new(v[rows.start * d..rows.end * d].to_vec(), [rows.len(), d]),
                &device,
            )
        };
        let za = gather_rows(model.forward(shard(&x)));
        let zb = gather_rows(model.forward(shard(&y)));
        let grads = GradientsParams::from_grads(loss.forward(za, zb).backward(), model);
        let grads = all_reduce_gradients(model, grads);
        let weight = grads.get::<2>(model.weight.id).expect("weight gradient");
        weight
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap()
    };
    device().seed(7);
    let model = LinearConfig::new(d, 4).init(&device());
    let want = step(&model, 0..n);
    let weights = |model: &Linear| {
        model
            .weight
            .val()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap()
    };
    let got: Vec<(Vec<f32>, Vec<f32>)> = on_thread_ranks(2, |rank| {
        // Rank 1 starts from other weights; the broadcast replaces them.
        let own = if rank == 0 {
            model.clone()
        } else {
            LinearConfig::new(d, 4).init(&device())
        };
        let own = broadcast_module(own);
        (weights(&own), step(&own, rank * n / 2..(rank + 1) * n / 2))
    });
    let rank0 = weights(&model);
    for (rank, (weights, grad)) in got.iter().enumerate() {
        assert_eq!(weights, &rank0, "rank {rank} starts from rank 0's weights");
        assert_close(&format!("weight gradient of rank {rank}"), grad, &want);
    }
    assert_eq!(
        got[0].1, got[1].1,
        "every rank ends with the same gradient bits"
    );
}
