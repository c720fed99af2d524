//! SimCLR in miniature: learn an embedding that ignores what the augmentations change.
//!
//! ```text
//! cargo run -p selfsup-examples --example simclr_toy            # default backend (flex)
//! SELFSUP_BACKEND=wgpu cargo run -p selfsup-examples --features wgpu --example simclr_toy
//! ```
//!
//! Each sample has 16 "content" features (its class prototype plus a little noise) and 16
//! "nuisance" features of much larger variance. The two views of a sample keep the content and
//! redraw the nuisance, as colour jitter or cropping redraw nuisance factors of an image. An
//! MLP encoder trained with [`NtXentLoss`] on those pairs, without labels, learns to look at
//! the content only: a kNN classifier on its features beats one on the raw inputs, which are
//! dominated by the nuisance. The example prints the loss and both kNN accuracies (cosine,
//! k = 20, weighted votes).

#[path = "common/mod.rs"]
mod common;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{AdamConfig, GradientsParams};
use selfsup::prelude::*;

const CLASSES: usize = 8;
const CONTENT: usize = 16;
const NUISANCE: usize = 16;
const DIM: usize = CONTENT + NUISANCE;
const TRAIN: usize = 2048;
const TEST: usize = 512;
const BATCH: usize = 256;
const STEPS: usize = 150;

#[derive(Module, Debug)]
struct Encoder {
    hidden: Linear,
    out: Linear,
    projector: Linear,
    relu: Relu,
}

impl Encoder {
    fn new(device: &Device) -> Self {
        Encoder {
            hidden: LinearConfig::new(DIM, 128).init(device),
            out: LinearConfig::new(128, 32).init(device),
            projector: LinearConfig::new(32, 32).init(device),
            relu: Relu::new(),
        }
    }

    /// The representation used downstream.
    fn features(&self, x: Tensor<2>) -> Tensor<2> {
        self.out.forward(self.relu.forward(self.hidden.forward(x)))
    }

    /// The projection the contrastive loss sees (SimCLR applies the loss after a head).
    fn project(&self, x: Tensor<2>) -> Tensor<2> {
        self.projector.forward(self.relu.forward(self.features(x)))
    }
}

/// SplitMix64 with Box–Muller: reproducible data on every backend.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self, std: f64) -> f32 {
        let (u, v) = (self.uniform().max(1e-12), self.uniform());
        (std * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

struct Dataset {
    content: Vec<f32>,
    labels: Vec<i64>,
}

impl Dataset {
    fn generate(n: usize, prototypes: &[f32], rng: &mut Rng) -> Self {
        let mut content = Vec::with_capacity(n * CONTENT);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let class = i % CLASSES;
            labels.push(class as i64);
            for d in 0..CONTENT {
                content.push(prototypes[class * CONTENT + d] + rng.normal(0.6));
            }
        }
        Dataset { content, labels }
    }

    /// One view of the given samples: the content, slightly perturbed, and fresh nuisance.
    fn view(&self, indices: &[usize], rng: &mut Rng, device: &Device) -> Tensor<2> {
        let mut data = Vec::with_capacity(indices.len() * DIM);
        for &i in indices {
            for d in 0..CONTENT {
                data.push(self.content[i * CONTENT + d] + rng.normal(0.05));
            }
            for _ in 0..NUISANCE {
                data.push(rng.normal(4.0));
            }
        }
        Tensor::from_data(TensorData::new(data, [indices.len(), DIM]), device)
    }
}

/// The standard SSL kNN protocol (cosine, k = 20, votes weighted by `exp(sim / 0.1)`).
fn main() {
    let backend = Backend::from_env().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2);
    });
    let device = selfsup::backend::device(backend).autodiff();
    device.seed(7);
    println!("SimCLR toy on {backend}: {TRAIN} samples, {CLASSES} hidden classes, {STEPS} steps");

    let mut rng = Rng(42);
    let prototypes: Vec<f32> = (0..CLASSES * CONTENT).map(|_| rng.normal(1.0)).collect();
    let train = Dataset::generate(TRAIN, &prototypes, &mut rng);
    let test = Dataset::generate(TEST, &prototypes, &mut rng);

    let mut model = Encoder::new(&device);
    let mut optimizer = AdamConfig::new().init();
    let loss_fn = NtXentLossConfig::new().with_temperature(0.2).init();
    let mut order: Vec<usize> = (0..TRAIN).collect();
    for step in 0..STEPS {
        let start = (step * BATCH) % TRAIN;
        if start == 0 {
            for i in (1..TRAIN).rev() {
                order.swap(i, (rng.uniform() * (i + 1) as f64) as usize);
            }
        }
        let batch = &order[start..start + BATCH];
        let z_a = model.project(train.view(batch, &mut rng, &device));
        let z_b = model.project(train.view(batch, &mut rng, &device));
        let loss = loss_fn.forward(z_a, z_b);
        if step % 25 == 0 || step + 1 == STEPS {
            println!(
                "step {step:>4}  nt-xent {:.4}",
                loss.clone().into_scalar::<f32>()
            );
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(1e-3, model, grads);
    }

    let all: Vec<usize> = (0..TRAIN).collect();
    let every: Vec<usize> = (0..TEST).collect();
    let device = device.without_autodiff();
    let model = model.valid();
    let train_x = train.view(&all, &mut rng, &device);
    let test_x = test.view(&every, &mut rng, &device);
    let raw = common::knn_accuracy(
        train_x.clone(),
        &train.labels,
        test_x.clone(),
        &test.labels,
        CLASSES,
    );
    let learned = common::knn_accuracy(
        model.features(train_x),
        &train.labels,
        model.features(test_x),
        &test.labels,
        CLASSES,
    );
    println!("kNN accuracy on raw inputs:      {:.1} %", raw * 100.0);
    println!("kNN accuracy on SimCLR features: {:.1} %", learned * 100.0);
}
