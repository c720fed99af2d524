//! The workloads. Each mirrors a function of the same name in `bench/reference/bench.py`.

use std::time::Instant;

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use selfsup_augment::{Pipeline, Rng, image_batch, label_batch, views};
use selfsup_data::ImageSet;
use selfsup_eval::{KnnConfig, knn_accuracy};
use selfsup_losses::{
    BarlowTwinsLossConfig, NtXentLossConfig, TripletMarginLossConfig, TripletMining,
    VicRegLossConfig,
};
use selfsup_methods::{Method, MultiViewBatch, SimClr};
use selfsup_nn::{ConvNetS, ConvNetSConfig, Encoder, ResNet18Config};
use serde_json::{Value, json};

/// How many iterations to run.
pub struct Settings {
    /// Untimed iterations before the timed ones.
    pub warmup: usize,
    /// Timed iterations.
    pub iters: usize,
    /// Training images of the end-to-end workload (`None`: all).
    pub limit: Option<usize>,
    /// Timing stops once this many seconds have passed, after at least one timed iteration.
    pub budget_s: f64,
}

/// What a workload measured.
pub struct Outcome {
    /// Seconds per timed iteration.
    pub times: Vec<f64>,
    /// Workload-specific figures (images per second, accuracy, …).
    pub extra: Value,
}

/// A named workload and its default iteration counts.
pub struct Workload {
    /// The name shared with the PyTorch reference.
    pub name: &'static str,
    /// One line for `--list`.
    pub about: &'static str,
    /// Default untimed iterations.
    pub warmup: usize,
    /// Default timed iterations.
    pub iters: usize,
    /// Runs it.
    pub run: fn(&Device, &Settings) -> Result<Outcome, String>,
}

/// Every workload, in report order.
pub const ALL: &[Workload] = &[
    Workload {
        name: "nt-xent-256",
        about: "NT-Xent τ=0.5, N=256 pairs, D=128, forward + backward",
        warmup: 5,
        iters: 30,
        run: |device, s| pair_loss(device, s, 256, 128, |a, b| nt_xent(None).forward(a, b)),
    },
    Workload {
        name: "nt-xent-2048",
        about: "NT-Xent τ=0.5, N=2048 pairs, D=128, forward + backward",
        warmup: 2,
        iters: 10,
        run: |device, s| pair_loss(device, s, 2048, 128, |a, b| nt_xent(None).forward(a, b)),
    },
    Workload {
        name: "triplet-batch-hard-256",
        about: "triplet margin 0.05, batch-hard mining, N=256, D=128, 16 classes",
        warmup: 5,
        iters: 30,
        run: triplet_batch_hard,
    },
    Workload {
        name: "barlow-twins-256",
        about: "Barlow Twins λ=5e-3, N=256, D=2048, forward + backward",
        warmup: 2,
        iters: 10,
        run: |device, s| {
            let loss = BarlowTwinsLossConfig::new().init();
            pair_loss(device, s, 256, 2048, |a, b| loss.forward(a, b))
        },
    },
    Workload {
        name: "vicreg-256",
        about: "VICReg 25/25/1, N=256, D=2048, forward + backward",
        warmup: 2,
        iters: 10,
        run: |device, s| {
            let loss = VicRegLossConfig::new().init();
            pair_loss(device, s, 256, 2048, |a, b| loss.forward(a, b))
        },
    },
    Workload {
        name: "nt-xent-16384",
        about: "NT-Xent 2N=16,384, D=128, unchunked",
        warmup: 1,
        iters: 3,
        run: |device, s| pair_loss(device, s, 8192, 128, |a, b| nt_xent(None).forward(a, b)),
    },
    Workload {
        name: "nt-xent-16384-chunked",
        about: "NT-Xent 2N=16,384, D=128, 1,024 anchor rows at a time",
        warmup: 1,
        iters: 3,
        run: |device, s| {
            pair_loss(device, s, 8192, 128, |a, b| {
                nt_xent(Some(1024)).forward(a, b)
            })
        },
    },
    Workload {
        name: "nt-xent-65536-chunked",
        about: "NT-Xent 2N=65,536, D=128, 1,024 anchor rows at a time",
        warmup: 0,
        iters: 1,
        run: |device, s| {
            pair_loss(device, s, 32768, 128, |a, b| {
                nt_xent(Some(1024)).forward(a, b)
            })
        },
    },
    Workload {
        name: "knn-10k-60k",
        about: "weighted kNN (k=20, cosine, τ=0.1): 10,000 queries against 60,000 bank rows, D=128",
        warmup: 1,
        iters: 5,
        run: knn_10k_60k,
    },
    Workload {
        name: "simclr-step",
        about: "SimCLR training step: ConvNet-S, batch 256, 28×28, 2 augmented views, Adam",
        warmup: 3,
        iters: 15,
        run: simclr_step,
    },
    Workload {
        name: "simclr-resnet18-step",
        about: "SimCLR training step: ResNet-18 (CIFAR stem), batch 128, 32×32×3, 2 views (image, flipped), Adam",
        warmup: 1,
        iters: 3,
        run: simclr_resnet18_step,
    },
    Workload {
        name: "simclr-epoch-knn",
        about: "one SimCLR epoch on Fashion-MNIST (60k) + kNN evaluation (k=20, cosine)",
        warmup: 0,
        iters: 1,
        run: simclr_epoch_knn,
    },
];

fn nt_xent(chunk: Option<usize>) -> selfsup_losses::NtXentLoss {
    NtXentLossConfig::new()
        .with_temperature(0.5)
        .with_chunk_size(chunk)
        .init()
}

/// The kNN evaluation of the end-to-end workload alone, on Gaussian features with labels
/// `i mod 10` (its accuracy is chance; the time is the point).
fn knn_10k_60k(device: &Device, settings: &Settings) -> Result<Outcome, String> {
    let bank = normal(60_000, 128, 1, device);
    let queries = normal(10_000, 128, 2, device);
    let labels = |n: usize| {
        let values: Vec<i64> = (0..n as i64).map(|i| i % 10).collect();
        Tensor::<1, Int>::from_data(TensorData::new(values, [n]), device)
    };
    let (bank_labels, query_labels) = (labels(60_000), labels(10_000));
    let mut acc = 0.0;
    let times = time(settings, |_| {
        acc = knn_accuracy(
            &KnnConfig::new(),
            bank.clone(),
            bank_labels.clone(),
            queries.clone(),
            query_labels.clone(),
            10,
        );
    });
    Ok(Outcome {
        times,
        extra: json!({ "knn_acc": acc }),
    })
}

/// Runs `step` `warmup + iters` times and returns the timed iterations' seconds; stops early
/// once the budget is spent and one iteration is timed.
fn time(settings: &Settings, mut step: impl FnMut(usize)) -> Vec<f64> {
    let began = Instant::now();
    let mut times = Vec::with_capacity(settings.iters);
    for i in 0..settings.warmup + settings.iters {
        let start = Instant::now();
        step(i);
        if i >= settings.warmup {
            times.push(start.elapsed().as_secs_f64());
        }
        if !times.is_empty() && began.elapsed().as_secs_f64() > settings.budget_s {
            break;
        }
    }
    times
}

/// A `[rows, cols]` matrix of standard normal draws (host-generated, so every backend gets the
/// same numbers).
fn normal(rows: usize, cols: usize, seed: u64, device: &Device) -> Tensor<2> {
    let mut rng = Rng::new(seed);
    let values: Vec<f32> = (0..rows * cols).map(|_| rng.normal() as f32).collect();
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

/// Forward + backward of a loss of two `[n, d]` embeddings; each iteration ends by reading a
/// value computed from both input gradients, so lazy backends finish their work inside it.
fn pair_loss(
    device: &Device,
    settings: &Settings,
    n: usize,
    d: usize,
    loss: impl Fn(Tensor<2>, Tensor<2>) -> Tensor<1>,
) -> Result<Outcome, String> {
    let device = device.clone().autodiff();
    let a = normal(n, d, 1, &device);
    let b = normal(n, d, 2, &device);
    let times = time(settings, |_| {
        let (a, b) = (a.clone().require_grad(), b.clone().require_grad());
        let grads = loss(a.clone(), b.clone()).backward();
        let (ga, gb) = (a.grad(&grads), b.grad(&grads));
        let ga = ga.expect("z_a takes part in the loss");
        let gb = gb.expect("z_b takes part in the loss");
        std::hint::black_box((ga.sum() + gb.sum()).into_scalar::<f32>());
    });
    Ok(Outcome {
        times,
        extra: json!({}),
    })
}

fn triplet_batch_hard(device: &Device, settings: &Settings) -> Result<Outcome, String> {
    let device = device.clone().autodiff();
    let (n, classes) = (256, 16);
    let x = normal(n, 128, 3, &device);
    let labels: Vec<i64> = (0..n as i64).map(|i| i % classes).collect();
    let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), &device);
    let loss = TripletMarginLossConfig::new()
        .with_margin(0.05)
        .with_mining(TripletMining::BatchHard)
        .init();
    let times = time(settings, |_| {
        let x = x.clone().require_grad();
        let grads = loss.forward(x.clone(), labels.clone()).backward();
        let g = x
            .grad(&grads)
            .expect("the embeddings take part in the loss");
        std::hint::black_box(g.sum().into_scalar::<f32>());
    });
    Ok(Outcome {
        times,
        extra: json!({}),
    })
}

const BATCH: usize = 256;

/// SimCLR + ConvNet-S (projector 128-128-64, NT-Xent τ 0.5) trained with Adam (lr 1e-3, weight
/// decay 1e-6) on two `simclr_grayscale` views: the CLI's training step without its online probe.
struct Trainer {
    model: SimClr<ConvNetS>,
    optimizer: ModuleOptimizer,
    pipelines: Vec<Pipeline>,
    steps: u64,
}

impl Trainer {
    fn new(device: &Device) -> Self {
        device.seed(0);
        Trainer {
            model: SimClr::simclr(ConvNetSConfig::new().init(device), 128, 64, 0.5, device),
            optimizer: AdamConfig::new()
                .with_epsilon(1e-8)
                .with_weight_decay(Some(WeightDecayConfig::new(1e-6)))
                .init(),
            pipelines: vec![Pipeline::simclr_grayscale(28); 2],
            steps: 0,
        }
    }

    /// One optimisation step on the images `indices` of `set`; returns the loss.
    fn step(self, set: &ImageSet, indices: &[usize], device: &Device) -> (Self, f32) {
        let Trainer {
            model,
            mut optimizer,
            pipelines,
            steps,
        } = self;
        let (images, _) = image_batch(set, indices, device);
        let mut rng = Rng::stream(0xA5A5_5A5A, steps);
        let output = model.train_forward(MultiViewBatch::new(views(&pipelines, images, &mut rng)));
        let loss = output.loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(output.loss.backward(), &model);
        let model = optimizer.step(1e-3, model, grads).after_optimizer_step();
        let trainer = Trainer {
            model,
            optimizer,
            pipelines,
            steps: steps + 1,
        };
        (trainer, loss)
    }
}

fn simclr_step(device: &Device, settings: &Settings) -> Result<Outcome, String> {
    let split = selfsup_data::fashion_mnist_10k();
    let train = &split.train;
    let device = device.clone().autodiff();
    let order = Rng::new(0).permutation(train.len());
    let batches = train.len() / BATCH;
    let mut trainer = Some(Trainer::new(&device));
    let times = time(settings, |i| {
        let indices = &order[(i % batches) * BATCH..][..BATCH];
        let (next, loss) = trainer
            .take()
            .expect("put back each step")
            .step(train, indices, &device);
        std::hint::black_box(loss);
        trainer = Some(next);
    });
    let median = median(&times);
    Ok(Outcome {
        times,
        extra: json!({ "images_per_s": BATCH as f64 / median }),
    })
}

/// SimCLR + ResNet-18 with the CIFAR stem (projector 512-512-128, NT-Xent τ 0.5, Adam) on a
/// fixed batch of 128 uniform-noise 32×32 RGB images and its horizontal flip: the convolution
/// cost of CIFAR-scale pretraining without the data pipeline.
fn simclr_resnet18_step(device: &Device, settings: &Settings) -> Result<Outcome, String> {
    const IMAGES: usize = 128;
    let device = device.clone().autodiff();
    device.seed(0);
    let model = SimClr::simclr(ResNet18Config::new().init(&device), 512, 128, 0.5, &device);
    let optimizer = AdamConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(Some(WeightDecayConfig::new(1e-6)))
        .init();
    let images = Tensor::<4>::random(
        [IMAGES, 3, 32, 32],
        burn::tensor::Distribution::Default,
        &device,
    );
    let mut state = Some((model, optimizer));
    let times = time(settings, |_| {
        let (model, mut optimizer) = state.take().expect("put back each step");
        let views = vec![images.clone(), images.clone().flip([3])];
        let output = model.train_forward(MultiViewBatch::new(views));
        std::hint::black_box(output.loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(output.loss.backward(), &model);
        let model = optimizer.step(1e-3, model, grads).after_optimizer_step();
        state = Some((model, optimizer));
    });
    let median = median(&times);
    Ok(Outcome {
        times,
        extra: json!({ "images_per_s": IMAGES as f64 / median }),
    })
}

fn simclr_epoch_knn(device: &Device, settings: &Settings) -> Result<Outcome, String> {
    let split = selfsup_data::sources::load("fashion-mnist").map_err(|e| {
        format!(
            "{e} (the end-to-end workload needs the full Fashion-MNIST: cargo xtask setup data)"
        )
    })?;
    let mut train = split.train;
    if let Some(limit) = settings.limit {
        train = train.take(limit);
    }
    let test = split.test;
    let autodiff = device.clone().autodiff();
    let mut extra = json!({});
    let times = time(settings, |_| {
        let start = Instant::now();
        let order = Rng::new(0).permutation(train.len());
        let mut trainer = Trainer::new(&autodiff);
        let mut loss = 0.0;
        for indices in order.chunks_exact(BATCH) {
            (trainer, loss) = trainer.step(&train, indices, &autodiff);
        }
        let train_s = start.elapsed().as_secs_f64();
        let encoder = trainer.model.encoder().valid();
        let bank = embed(&encoder, &train, device);
        let queries = embed(&encoder, &test, device);
        let knn_acc = knn_accuracy(
            &KnnConfig::new(),
            bank,
            all_labels(&train, device),
            queries,
            all_labels(&test, device),
            train.classes,
        );
        extra = json!({
            "knn_acc": knn_acc,
            "last_loss": loss,
            "train_s": train_s,
            "eval_s": start.elapsed().as_secs_f64() - train_s,
            "images_per_s": (train.len() / BATCH * BATCH) as f64 / train_s,
            "train_images": train.len(),
        });
    });
    Ok(Outcome { times, extra })
}

/// The features of every image of `set`, 512 at a time, in inference mode.
fn embed(encoder: &ConvNetS, set: &ImageSet, device: &Device) -> Tensor<2> {
    let indices: Vec<usize> = (0..set.len()).collect();
    let parts = indices
        .chunks(512)
        .map(|chunk| encoder.encode(image_batch(set, chunk, device).0))
        .collect();
    Tensor::cat(parts, 0)
}

fn all_labels(set: &ImageSet, device: &Device) -> Tensor<1, Int> {
    let indices: Vec<usize> = (0..set.len()).collect();
    label_batch(set, &indices, device)
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}
