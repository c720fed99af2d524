//! Methods on W ranks (threads): each rank's shard of the batch, the gathered losses and
//! synchronised batch norm give every rank the one-process loss, and the gradients summed
//! over the ranks are the one-process gradients.

use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use selfsup_dist::{all_reduce_gradients, on_thread_ranks};
use selfsup_methods::{Method, MultiViewBatch, SimClr, VicReg};

use crate::common::{N, batch, device, encoder};

/// The loss and every all-reduced gradient on `world`
/// ranks (1: the whole batch in one process).
fn step<M: Method + Clone + Send + Sync>(
    method: &M,
    whole: &MultiViewBatch,
    world: usize,
) -> Vec<(f32, Vec<f32>)> {
    let run = |rank: usize| {
        let rows = N / world;
        let shard = MultiViewBatch::new(
            whole
                .views
                .iter()
                .map(|v| v.clone().narrow(0, rank * rows, rows))
                .collect(),
        );
        let method = method.clone();
        let output = method.train_forward(shard);
        let loss = output.loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(output.loss.backward(), &method);
        let grads = all_reduce_gradients(&method, grads);
        let all = all_grads(&method, &grads);
        (loss, all)
    };
    on_thread_ranks(world, run)
}

/// Every gradient of the method, flattened in visiting order.
fn all_grads<M: Method>(method: &M, grads: &GradientsParams) -> Vec<f32> {
    use burn::module::{ModuleVisitor, Param};
    struct Collect<'a> {
        grads: &'a GradientsParams,
        out: Vec<f32>,
    }
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.out.extend(
                    g.into_data()
                        .convert::<f32>()
                        .try_into_vec::<f32>()
                        .unwrap(),
                );
            }
        }
    }
    let mut collect = Collect {
        grads,
        out: Vec::new(),
    };
    method.visit(&mut collect);
    collect.out
}

fn check<M: Method + Clone + Send + Sync>(name: &str, method: M) {
    let device = device();
    if !selfsup_nn::BatchNorm::synchronises_on(&device) {
        return;
    }
    let whole = batch(2, &device);
    let want = step(&method, &whole, 1).remove(0);
    for (rank, (loss, grads)) in step(&method, &whole, 2).into_iter().enumerate() {
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * b.abs() + 1e-5;
        assert!(
            close(loss, want.0),
            "{name} rank {rank}: loss {loss}, one process {}",
            want.0
        );
        assert_eq!(grads.len(), want.1.len(), "{name}: gradients");
        for (i, (g, w)) in grads.iter().zip(&want.1).enumerate() {
            assert!(
                close(*g, *w),
                "{name} rank {rank} gradient {i}: {g}, one process {w}"
            );
        }
    }
}

#[test]
fn simclr_on_two_ranks_takes_the_one_process_step() {
    let device = device();
    check(
        "simclr",
        SimClr::simclr(encoder(&device), 32, 8, 0.5, &device),
    );
}

#[test]
fn vicreg_on_two_ranks_takes_the_one_process_step() {
    let device = device();
    check("vicreg", VicReg::vicreg(encoder(&device), 32, 8, &device));
}
