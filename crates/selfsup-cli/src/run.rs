//! Building a run's networks from its config, and the training loop of `selfsup pretrain`.

use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor};
use selfsup_augment::{Pipeline, Rng, views, views_each};
use selfsup_eval::{
    KnnConfig, OnlineProbe, alignment, collapse, knn_accuracy, rank_me, uniformity,
};
use selfsup_losses::{DinoLossConfig, ReconstructionKind, TripletMarginLossConfig, TripletMining};
use selfsup_methods::{
    Autoencoder, BarlowTwins, Byol, Corruption, Dino, Method, MocoV2, MocoV3, MultiViewBatch,
    SimClr, SimSiam, SupCon, Triplet, VicReg,
};
use selfsup_nn::{
    ConvNetSConfig, ConvNetSDecoderConfig, DinoHeadConfig, Encoder, MlpDecoderConfig,
    MlpEncoderConfig, ResNet18Config,
};

use crate::UserError;
use crate::checkpoint::{self, Progress};
use crate::config::RunConfig;
use crate::samples::{self, Samples, Split};
use crate::schedule;

/// Sample `index`'s augmentation stream in `epoch`: its views in that epoch depend on the
/// seed, the epoch and the sample alone.
fn sample_stream(seed: u64, epoch: usize, index: usize) -> Rng {
    let epoch_seed = Rng::stream(seed ^ 0xA5A5_5A5A, epoch as u64).next_u64();
    Rng::stream(epoch_seed, index as u64)
}

/// The dataset of a run, with the training part limited as asked.
pub struct Data {
    /// Train (limited) and test images.
    pub split: Split,
    /// Number of classes.
    pub classes: usize,
    /// What was done to the data on the way in (an image folder resized to one size).
    pub warnings: Vec<String>,
}

impl Data {
    /// Loads `config.dataset` and applies `config.limit`.
    pub fn load(config: &RunConfig) -> Result<Data, UserError> {
        let (mut split, warnings) = if samples::is_csv(&config.dataset) {
            (samples::load_csv(Path::new(&config.dataset))?, Vec::new())
        } else {
            let (split, warnings) = selfsup_data::sources::load_with_warnings(&config.dataset)
                .map_err(|e| UserError(e.to_string()))?;
            (split.into(), warnings)
        };
        if let Some(limit) = config.limit {
            split.train = split.train.take(limit);
        }
        let classes = split.classes();
        let (shape, test_shape) = (split.train.shape(), split.test.shape());
        if shape.contains(&0) {
            return Err(UserError(format!(
                "the samples of '{}' are empty ({}×{}×{}, channels × height × width); check \
                 the files",
                config.dataset, shape[0], shape[1], shape[2]
            )));
        }
        if shape != test_shape {
            return Err(UserError(format!(
                "the test samples of '{}' are {}×{}×{}, the training samples {}×{}×{} \
                 (channels × height × width); both splits must have one shape",
                config.dataset,
                test_shape[0],
                test_shape[1],
                test_shape[2],
                shape[0],
                shape[1],
                shape[2]
            )));
        }
        if split.train.len() < config.batch {
            return Err(UserError(format!(
                "--batch {} is larger than the {} training samples; lower --batch{}",
                config.batch,
                split.train.len(),
                if config.limit.is_some() {
                    " or raise --limit"
                } else {
                    ""
                }
            )));
        }
        if split.train.is_table() && config.encoder != "mlp" {
            return Err(UserError(format!(
                "--encoder {} needs images; '{}' is a table of {} features: use --encoder mlp",
                config.encoder,
                config.dataset,
                split.train.sample_size()
            )));
        }
        if split.test.len() < 2 || classes == 1 {
            return Err(UserError(format!(
                "dataset '{}' needs at least 2 test samples and, when labelled, 2 classes to \
                 evaluate; it has {} and {}",
                config.dataset,
                split.test.len(),
                classes
            )));
        }
        Ok(Data {
            split,
            classes,
            warnings,
        })
    }

    /// Whether the samples have class labels (an image folder without class sub-folders has
    /// none: such a run reports the label-free metrics only).
    pub fn labelled(&self) -> bool {
        self.classes > 0
    }

    /// Steps per epoch (the last partial batch is dropped).
    pub fn steps_per_epoch(&self, config: &RunConfig) -> usize {
        self.split.train.len() / config.batch
    }
}

/// A method and the online probe on its encoder's features, trained together by one optimizer
/// (the probe sees detached features) and saved in one checkpoint.
#[derive(Module, Debug)]
pub struct Pretraining<M: Module> {
    /// The SSL method.
    pub method: M,
    /// Linear classifier on the encoder's features.
    pub probe: OnlineProbe,
}

/// Something to do with a run's freshly built networks.
pub trait Job {
    /// What the job returns.
    type Output;
    /// Runs with the method built from the config.
    fn run<M: Method>(
        self,
        model: Pretraining<M>,
        pipelines: Vec<Pipeline>,
    ) -> Result<Self::Output, UserError>;
}

/// Builds the networks `config` names on `device` (seeded) and hands them to `job`.
pub fn with_networks<J: Job>(
    config: &RunConfig,
    data: &Data,
    device: &Device,
    job: J,
) -> Result<J::Output, UserError> {
    device.seed(config.seed);
    let train = &data.split.train;
    let channels = train.shape()[0];
    match config.encoder.as_str() {
        "convnet-s" => with_method(
            config,
            data,
            ConvNetSConfig::new()
                .with_input_channels(channels)
                .init(device),
            device,
            job,
        ),
        "resnet18" => with_method(
            config,
            data,
            ResNet18Config::new()
                .with_input_channels(channels)
                .init(device),
            device,
            job,
        ),
        "mlp" => with_method(
            config,
            data,
            MlpEncoderConfig::new(train.sample_size()).init(device),
            device,
            job,
        ),
        other => Err(UserError(format!("unknown encoder '{other}'"))),
    }
}

fn with_method<E: Encoder, J: Job>(
    config: &RunConfig,
    data: &Data,
    encoder: E,
    device: &Device,
    job: J,
) -> Result<J::Output, UserError> {
    // Without labels every sample is class 0 of a one-class probe: its loss and gradient are 0.
    let probe = OnlineProbe::new(encoder.output_dim(), data.classes.max(1), device);
    let steps_per_epoch = data.steps_per_epoch(config);
    let total_steps = steps_per_epoch * config.epochs;
    let (hidden, projection) = (config.hidden_dim, config.projection_dim);
    let pipelines = config.pipelines(&data.split.train);
    let method = config.method.as_str();
    let train = &data.split.train;
    macro_rules! go {
        ($method:expr) => {
            job.run(
                Pretraining {
                    method: $method,
                    probe,
                },
                pipelines,
            )
        };
    }
    let momentum = config.momentum;
    match method {
        "simclr" => go!(SimClr::simclr(
            encoder,
            hidden,
            projection,
            config.temperature,
            device
        )),
        "moco" => go!(MocoV2::new(
            encoder,
            hidden,
            projection,
            config.queue_size,
            config.temperature,
            momentum,
            device
        )),
        "moco-v3" => go!(MocoV3::new(
            encoder,
            hidden,
            projection,
            config.predictor_hidden_dim,
            config.temperature,
            momentum,
            total_steps,
            device
        )),
        "byol" => go!(Byol::with_predictor(
            encoder,
            hidden,
            projection,
            config.predictor_hidden_dim,
            momentum,
            total_steps,
            device
        )),
        "simsiam" => go!(SimSiam::new(
            encoder,
            projection,
            config.predictor_hidden_dim,
            device
        )),
        "barlow-twins" => go!(BarlowTwins::barlow_twins(
            encoder,
            hidden,
            projection,
            config.barlow_lambda,
            device
        )),
        "vicreg" => go!(VicReg::vicreg(encoder, hidden, projection, device)),
        "dino" => {
            let output_dim = config.dino_output_dim;
            let head = DinoHeadConfig::new(encoder.output_dim())
                .with_hidden_dim(hidden)
                .with_bottleneck_dim(projection)
                .with_output_dim(output_dim);
            let loss = DinoLossConfig::new(output_dim)
                .with_warmup_teacher_temp_epochs(config.epochs.min(30).div_ceil(3));
            let frozen = (config.freeze_last_layer * steps_per_epoch as f64).round() as usize;
            go!(Dino::new(
                encoder,
                head,
                loss,
                momentum,
                total_steps,
                steps_per_epoch,
                device
            )
            .with_freeze_last_layer_steps(frozen))
        }
        "supcon" => go!(SupCon::new(
            encoder,
            hidden,
            projection,
            config.temperature,
            device
        )),
        "triplet" => {
            let mining = match config.mining.as_str() {
                "all" => TripletMining::All,
                "hard" => TripletMining::Hard,
                "batch-hard" => TripletMining::BatchHard,
                _ => TripletMining::SemiHard,
            };
            let loss = TripletMarginLossConfig::new()
                .with_margin(config.margin)
                .with_mining(mining);
            go!(Triplet::new(encoder, hidden, projection, loss, device))
        }
        "autoencoder" | "denoising-autoencoder" | "masked-autoencoder" => {
            let corruption = match method {
                "denoising-autoencoder" => Corruption::GaussianNoise(config.noise_std),
                "masked-autoencoder" => Corruption::Mask {
                    ratio: config.mask_ratio,
                    patch: config.mask_patch,
                },
                _ => Corruption::None,
            };
            let [c, h, w] = train.shape();
            let kind = ReconstructionKind::BceWithLogits;
            if config.encoder == "convnet-s" && [h, w] == [28, 28] {
                let decoder = ConvNetSDecoderConfig::new()
                    .with_output_channels(c)
                    .with_input_dim(encoder.output_dim())
                    .init(device);
                go!(Autoencoder::new(encoder, decoder, kind, corruption))
            } else {
                let decoder = MlpDecoderConfig::new([c, h, w])
                    .with_input_dim(encoder.output_dim())
                    .init(device);
                go!(Autoencoder::new(encoder, decoder, kind, corruption))
            }
        }
        other => Err(UserError(format!("unknown method '{other}'"))),
    }
}

/// Embeds every image of `set` with `encoder` (in inference mode), 512 at a time.
pub fn embed<E: Encoder>(encoder: &E, set: &Samples, device: &Device) -> Tensor<2> {
    let encoder = encoder.valid();
    let indices: Vec<usize> = (0..set.len()).collect();
    let parts: Vec<Tensor<2>> = indices
        .chunks(512)
        .map(|chunk| encoder.encode(set.batch(chunk, device).0))
        .collect();
    Tensor::cat(parts, 0)
}

/// All labels of `set` as a tensor.
pub fn labels(set: &Samples, device: &Device) -> Tensor<1, Int> {
    set.all_labels(device)
}

/// The label-free and kNN measurements of an encoder, taken after every epoch.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Measurements {
    /// Weighted kNN accuracy of the test features against the training features.
    pub knn_acc: f64,
    /// Effective rank of the test features.
    pub rankme: f64,
    /// Alignment of two augmented views of test images.
    pub alignment: f64,
    /// Uniformity of the test features.
    pub uniformity: f64,
    /// Per-dimension spread of the normalised test features × √D (≈ 1 healthy, 0 collapsed).
    pub relative_std: f64,
    /// The collapse alarm.
    pub collapsed: bool,
}

/// Measures an encoder; `test`/`train` embeddings are returned for reuse.
pub fn measure<E: Encoder>(
    encoder: &E,
    data: &Data,
    pipelines: &[Pipeline],
    knn: &KnnConfig,
    seed: u64,
    device: &Device,
) -> (Measurements, Tensor<2>, Tensor<2>) {
    let (train, test) = (&data.split.train, &data.split.test);
    let z_train = embed(encoder, train, device);
    let z_test = embed(encoder, test, device);
    let knn_acc = if data.labelled() {
        knn_accuracy(
            knn,
            z_train.clone(),
            labels(train, device),
            z_test.clone(),
            labels(test, device),
            data.classes,
        )
    } else {
        f64::NAN
    };
    // Two views of (up to) 1,024 test images, always drawn the same way.
    let sample: Vec<usize> = (0..test.len().min(1024)).collect();
    let images = test.batch(&sample, device).0;
    let mut rng = Rng::stream(seed, u64::MAX);
    // Alignment needs two views: a one-view method (the autoencoders) is measured on the
    // preset pair.
    let preset;
    let pipelines = if pipelines.len() >= 2 {
        &pipelines[..2]
    } else {
        preset = crate::config::preset_pair(test);
        &preset[..]
    };
    let pair = views(pipelines, images, &mut rng);
    let encoder = encoder.valid();
    let z_a = encoder.encode(pair[0].clone());
    let z_b = encoder.encode(pair[pair.len() - 1].clone());
    let spread = collapse(z_test.clone());
    let measurements = Measurements {
        knn_acc,
        rankme: rank_me(z_test.clone()),
        alignment: alignment(z_a, z_b),
        uniformity: uniformity(z_test.clone()),
        relative_std: spread.relative_std,
        collapsed: spread.collapsed,
    };
    (measurements, z_train, z_test)
}

/// Paths and options of a pretraining run.
pub struct PretrainJob<'a> {
    /// The resolved settings.
    pub config: &'a RunConfig,
    /// The dataset.
    pub data: &'a Data,
    /// The run directory.
    pub dir: &'a Path,
    /// Continue from this checkpoint (found by [`checkpoint::latest`] and checked); `None`
    /// starts at step 0.
    pub resume_from: Option<PathBuf>,
    /// Plain device for evaluation; the networks were built on its autodiff twin.
    pub device: &'a Device,
}

/// What a finished training loop hands to the report.
pub struct TrainedAny {
    /// Loss of every step.
    pub step_losses: Vec<f64>,
    /// The last epoch's measurements.
    pub last: Measurements,
    /// Online probe accuracy over the last epoch.
    pub online_probe_acc: f64,
    /// Training throughput.
    pub images_per_s: f64,
    /// Steps the run has taken (from its step counter, whatever steps.csv holds).
    pub steps: usize,
    /// Wall-clock seconds of the run's earlier processes (0 for a run started by this one).
    pub wall_before: f64,
    /// Final train embeddings.
    pub z_train: Tensor<2>,
    /// Final test embeddings.
    pub z_test: Tensor<2>,
}

const STEPS_HEADER: &str = "step,epoch,loss";
const METRICS_HEADER: &str = "epoch,step,loss,online_probe_acc,knn_acc,rankme,alignment,uniformity,relative_std,collapsed,images_per_s";

/// Initialises every lazily initialised parameter of `module` now.
fn materialise<M: Module>(module: &M) {
    struct Touch;
    impl burn::module::ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
}

/// Keeps the first `keep` data rows of a CSV file (header kept), atomically.
fn truncate_csv(path: &Path, header: &str, keep: usize) -> Result<Vec<String>, UserError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(UserError(format!("{}: cannot read: {e}", path.display()))),
    };
    let mut lines = text.as_deref().unwrap_or_default().lines();
    let found_header = lines.next();
    let ours = text.is_none() || found_header == Some(header);
    // Rows under another header are not the run's: they are left out (and kept in the copy).
    let rows: Vec<String> = if ours {
        lines.take(keep).map(str::to_string).collect()
    } else {
        Vec::new()
    };
    // On a resume the file should hold the checkpoint's rows under selfsup's header; when it
    // does not (deleted, edited, damaged), the run still continues from its checkpoint, but
    // says what is missing and keeps a copy of what was there.
    let why = if keep == 0 {
        None
    } else if text.is_none() {
        Some(format!(
            "is missing: the {keep} rows before the resume point are lost"
        ))
    } else if !ours {
        Some("does not start with selfsup's header (edited or damaged)".to_string())
    } else if rows.len() < keep {
        Some(format!(
            "holds {} of the {keep} rows the checkpoint expects (cut short or edited)",
            rows.len()
        ))
    } else {
        None
    };
    if let Some(why) = why {
        let kept = text
            .as_ref()
            .map(|text| keep_copy(path, text))
            .transpose()?
            .map(|copy| format!("; what it held is kept in {}", copy.display()))
            .unwrap_or_default();
        eprintln!(
            "warning: {} {why}; the run continues from its checkpoint and appends the new \
             rows{kept}",
            path.display()
        );
    }
    let mut out = String::from(header);
    out.push('\n');
    for row in &rows {
        out.push_str(row);
        out.push('\n');
    }
    checkpoint::write_atomic(path, out.as_bytes())?;
    Ok(rows)
}

/// Copies `text` (a file's contents) beside `path` as `NAME.before-resume[-N]`, never over an
/// existing file; returns the copy's path.
fn keep_copy(path: &Path, text: &str) -> Result<PathBuf, UserError> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let copy = (0..)
        .map(|n| match n {
            0 => path.with_file_name(format!("{name}.before-resume")),
            n => path.with_file_name(format!("{name}.before-resume-{n}")),
        })
        .find(|candidate| !candidate.exists())
        .expect("an unused name");
    checkpoint::write_atomic(&copy, text.as_bytes())?;
    Ok(copy)
}

/// [`truncate_csv`] on the rank that writes the run directory; the others read the rows.
fn truncate_csv_on(
    lead: bool,
    path: &Path,
    header: &str,
    keep: usize,
) -> Result<Vec<String>, UserError> {
    if lead {
        return truncate_csv(path, header, keep);
    }
    let text = fs::read_to_string(path).unwrap_or_default();
    Ok(text
        .lines()
        .skip(1)
        .take(keep)
        .map(str::to_string)
        .collect())
}

/// A line on stderr from the rank that speaks for the run.
fn lead_says(lead: bool, line: String) {
    if lead {
        eprintln!("{line}");
    }
}

fn append(path: &Path, line: &str) -> Result<(), UserError> {
    let mut file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| UserError(format!("{}: {e}", path.display())))?;
    writeln!(file, "{line}").map_err(|e| UserError(format!("{}: {e}", path.display())))
}

/// Progress on stderr: one updating line on a terminal, a line every tenth of an epoch otherwise.
struct ProgressLine {
    terminal: bool,
    epochs: usize,
    steps: usize,
}

impl ProgressLine {
    fn show_on(
        &self,
        lead: bool,
        epoch: usize,
        step: usize,
        loss: f64,
        images_per_s: f64,
        probe: f64,
    ) {
        if !lead {
            return;
        }
        let (epochs, steps) = (self.epochs, self.steps);
        let width = 24;
        let filled = width * step / steps.max(1);
        let line = format!(
            "epoch {epoch}/{epochs} [{}{}] {step}/{steps}  loss {loss:.4}  probe {}  {images_per_s:.0} img/s",
            "#".repeat(filled),
            ".".repeat(width - filled),
            if probe.is_finite() {
                format!("{:.1}%", probe * 100.0)
            } else {
                "-".to_string()
            }
        );
        if self.terminal {
            eprint!("\r{line}\x1b[K");
            if step == steps {
                eprintln!();
            }
        } else if self.prints_at(step) {
            eprintln!("{line}");
        }
    }

    /// Whether a log (not a terminal) gets a line at this step of the epoch: ten per epoch.
    /// The same on every rank, whatever its stderr is.
    fn prints_at(&self, step: usize) -> bool {
        step == self.steps || step.is_multiple_of((self.steps / 10).max(1))
    }
}

/// Steps between two readings of the losses and probe hits. Reading a value back waits for
/// the device to finish everything queued before it, so the loop leaves them there for a
/// few steps (and always reads before a checkpoint and at the end of an epoch).
const READ_EVERY: usize = 16;

/// The per-step values not read back yet.
#[derive(Default)]
struct Unread {
    losses: Vec<Tensor<1>>,
    hits: Vec<Tensor<1, Int>>,
}

impl Unread {
    fn push(&mut self, loss: Tensor<1>, hits: Tensor<1, Int>) {
        self.losses.push(loss);
        self.hits.push(hits);
    }

    fn len(&self) -> usize {
        self.losses.len()
    }

    /// The losses in step order and the hits summed, in one reading each; empty afterwards.
    fn read(&mut self) -> (Vec<f64>, i64) {
        if self.losses.is_empty() {
            return (Vec::new(), 0);
        }
        let losses = Tensor::cat(std::mem::take(&mut self.losses), 0).into_data();
        let hits = Tensor::cat(std::mem::take(&mut self.hits), 0).sum();
        (losses.iter::<f64>().collect(), hits.into_scalar::<i64>())
    }
}

impl Job for PretrainJob<'_> {
    /// What rank 0 reports; `None` on the other ranks of a distributed run.
    type Output = Option<TrainedAny>;

    fn run<M: Method>(
        self,
        model: Pretraining<M>,
        pipelines: Vec<Pipeline>,
    ) -> Result<Option<TrainedAny>, UserError> {
        let PretrainJob {
            config,
            data,
            dir,
            resume_from,
            device,
        } = self;
        let autodiff = device.clone().autodiff();
        // On W ranks (mpirun) each trains on its shard of every global batch; rank 0 alone
        // writes the run directory and evaluates.
        let comm = selfsup_dist::current();
        let (rank, world) = (comm.rank(), comm.world_size());
        let lead = rank == 0;
        let shard = config.batch / world;
        // Parameters are initialised lazily, on first use, from the device's random stream:
        // draw them now, while that stream is the run's seed, so that the weights do not
        // depend on what touches them first (a broadcast, a checkpoint load, the first step).
        materialise(&model);
        let mut model = model;
        let mut optimizer: ModuleOptimizer = schedule::optimizer(config);
        let mut lr_scheduler = schedule::lr_scheduler(
            config,
            data.steps_per_epoch(config),
            data.steps_per_epoch(config) * config.epochs,
        )?;
        let steps_path = dir.join("steps.csv");
        let metrics_path = dir.join("metrics.csv");
        let steps_per_epoch = data.steps_per_epoch(config);
        let mut progress = Progress::start();
        let mut step_losses = Vec::new();
        let data_crc32 = data.split.crc32();
        match resume_from {
            Some(found) => {
                progress = checkpoint::progress(&found)?;
                // (`pretrain` refused changed data before any work.)
                debug_assert!(progress.data_crc32.is_none_or(|saved| saved == data_crc32));
                // Killed between an epoch's checkpoint and the copy of its model: copy now.
                let at_epoch_end = progress.step == progress.epoch * steps_per_epoch;
                if progress.epoch > 0
                    && at_epoch_end
                    && !checkpoint::epoch_model(dir, progress.epoch).is_file()
                {
                    checkpoint::keep_epoch_model(dir, &found, progress.epoch)?;
                }
                model = checkpoint::load_model(&found, model)?;
                optimizer = checkpoint::load_optimizer(&found, optimizer)?;
                step_losses = truncate_csv_on(lead, &steps_path, STEPS_HEADER, progress.step)?
                    .iter()
                    .map(|row| {
                        row.rsplit(',')
                            .next()
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(f64::NAN)
                    })
                    .collect();
                truncate_csv_on(lead, &metrics_path, METRICS_HEADER, progress.epoch)?;
                for _ in 0..progress.step {
                    lr_scheduler.step();
                }
                lead_says(
                    lead,
                    format!(
                        "resuming {} from step {} (epoch {} of {})",
                        dir.display(),
                        progress.step,
                        (progress.epoch + 1).min(config.epochs),
                        config.epochs
                    ),
                );
            }
            None => {
                truncate_csv_on(lead, &steps_path, STEPS_HEADER, 0)?;
                truncate_csv_on(lead, &metrics_path, METRICS_HEADER, 0)?;
            }
        }
        let own_kernels = selfsup_ops::own_kernels();
        if let Some(was) = progress.own_kernels.filter(|&was| was != own_kernels) {
            let now = |on: bool| if on { "1 (on)" } else { "0 (off)" };
            lead_says(
                lead,
                format!(
                    "warning: the run was trained with {}={}, and resumes with {}: the steps \
                     from here on differ in their last bits from an uninterrupted run's",
                    selfsup_ops::OWN_KERNELS_ENV,
                    now(was),
                    now(own_kernels)
                ),
            );
        }
        progress.own_kernels = Some(own_kernels);
        progress.data_crc32 = Some(data_crc32);
        progress.config_crc32 = Some(config.settings_crc32());
        // The run's wall time so far: its earlier processes' (up to their last checkpoint)
        // and this one's.
        let (session, wall_before) = (Instant::now(), progress.wall_seconds);
        // Every replica starts from rank 0's weights.
        model = selfsup_dist::broadcast_module(model);

        let knn = KnnConfig::new().with_k(config.knn_k);
        let train = &data.split.train;
        let line = ProgressLine {
            terminal: std::io::stderr().is_terminal(),
            epochs: config.epochs,
            steps: steps_per_epoch,
        };
        let mut last = None;
        let mut online_probe_acc = progress.online_probe_acc.unwrap_or(f64::NAN);
        let mut epoch_start = progress.epoch;
        while epoch_start < config.epochs {
            let epoch = epoch_start;
            let order = Rng::stream(config.seed, epoch as u64).permutation(train.len());
            // What the epoch had done before a resume (all zero at its start).
            let first = progress.step - epoch * steps_per_epoch;
            let (mut loss_sum, mut correct, mut seen) = (
                progress.epoch_loss_sum,
                progress.epoch_probe_correct,
                progress.epoch_probe_seen,
            );
            let seen_before = seen;
            // Without labels the one-class probe is always right: report nothing instead.
            let probe_accuracy = |correct: i64, seen: usize| {
                if data.labelled() {
                    correct as f64 / seen.max(1) as f64
                } else {
                    f64::NAN
                }
            };
            let started = Instant::now();
            let communicated_before = selfsup_dist::communication_time();
            let seconds_before = progress.train_seconds;
            let epoch_seconds_before = progress.epoch_seconds;
            let mut unread = Unread::default();
            for step_in_epoch in first..steps_per_epoch {
                // This rank's shard of the global batch (all of it on one process).
                let indices = &order[step_in_epoch * config.batch + rank * shard..][..shard];
                let (images, labels) = train.batch(indices, &autodiff);
                // The device's random stream (noise and masks of the autoencoders) restarts
                // at every step, so a resumed run draws what the uninterrupted one drew; each
                // rank has a stream of its own, or every shard would get the same noise.
                autodiff.seed(
                    config.seed ^ 0x5EED_0000_0000 ^ progress.step as u64 ^ ((rank as u64) << 40),
                );
                // Every sample's views come from its own stream of (seed, epoch, index): the
                // same whichever batch, position or rank draws them, so W ranks view their
                // shards exactly as one process views the whole batch.
                let mut streams: Vec<Rng> = indices
                    .iter()
                    .map(|&index| sample_stream(config.seed, epoch, index))
                    .collect();
                let views = views_each(&pipelines, images, &mut streams);
                let mut batch = MultiViewBatch::new(views);
                if config.needs_labels() {
                    batch = batch.with_labels(labels.clone());
                }
                let output = model.method.train_forward(batch);

                let probe = model.probe.forward(output.embeddings, labels);
                unread.push(output.loss.clone().detach(), probe.correct);
                seen += config.batch;
                // The probe's loss is each rank's mean: a W-th of it makes the summed
                // gradients the global mean's.
                let probe_loss = probe.loss.div_scalar(world as f64);
                let grads = (output.loss + probe_loss).backward();
                let grads = GradientsParams::from_grads(grads, &model);
                let grads = model.method.prepare_gradients(grads);
                let grads = selfsup_dist::all_reduce_gradients(&model, grads);
                model = optimizer.step(lr_scheduler.step(), model, grads);
                model = Pretraining {
                    method: model.method.after_optimizer_step(),
                    probe: model.probe,
                };
                progress.step += 1;
                let at_epoch_end = step_in_epoch + 1 == steps_per_epoch;
                let checkpoint_due = config.checkpoint_every > 0
                    && progress.step.is_multiple_of(config.checkpoint_every)
                    && !at_epoch_end;
                // The same steps on every rank (the hits are summed over ranks).
                if !(at_epoch_end
                    || checkpoint_due
                    || unread.len() == READ_EVERY
                    || line.prints_at(step_in_epoch + 1))
                {
                    continue;
                }
                let (losses, hits) = unread.read();
                correct += selfsup_dist::all_reduce_scalar(hits as f64).round() as i64;
                let first_unread = progress.step + 1 - losses.len();
                for (step, loss) in (first_unread..).zip(losses) {
                    if !loss.is_finite() {
                        return Err(diverged(config, dir, step, loss));
                    }
                    step_losses.push(loss);
                    loss_sum += loss;
                    if lead {
                        append(&steps_path, &format!("{step},{},{loss}", epoch + 1))?;
                    }
                }
                let elapsed = started.elapsed().as_secs_f64();
                line.show_on(
                    lead,
                    epoch + 1,
                    step_in_epoch + 1,
                    loss_sum / (step_in_epoch + 1) as f64,
                    (seen - seen_before) as f64 / elapsed.max(1e-9),
                    probe_accuracy(correct, seen),
                );
                if checkpoint_due {
                    progress.train_seconds = seconds_before + elapsed;
                    progress.epoch_seconds = epoch_seconds_before + elapsed;
                    progress.epoch_loss_sum = loss_sum;
                    progress.epoch_probe_correct = correct;
                    progress.epoch_probe_seen = seen;
                    progress.wall_seconds = wall_before + session.elapsed().as_secs_f64();
                    if lead {
                        checkpoint::save(dir, &model, &optimizer, &progress)?;
                    }
                }
            }
            let elapsed = started.elapsed().as_secs_f64();
            let epoch_seconds = epoch_seconds_before + elapsed;
            progress.train_seconds = seconds_before + elapsed;
            progress.epoch = epoch + 1;
            let images_per_s = seen as f64 / epoch_seconds.max(1e-9);
            online_probe_acc = probe_accuracy(correct, seen);
            progress.online_probe_acc = Some(online_probe_acc).filter(|a| a.is_finite());
            (
                progress.epoch_loss_sum,
                progress.epoch_probe_correct,
                progress.epoch_probe_seen,
                progress.epoch_seconds,
            ) = (0.0, 0, 0, 0.0);
            if !lead {
                epoch_start += 1;
                continue;
            }
            let (measured, z_train, z_test) = measure(
                model.method.encoder(),
                data,
                &pipelines,
                &knn,
                config.seed,
                device,
            );
            append(
                &metrics_path,
                &format!(
                    "{},{},{},{},{},{},{},{},{},{},{}",
                    epoch + 1,
                    progress.step,
                    loss_sum / steps_per_epoch.max(1) as f64,
                    online_probe_acc,
                    measured.knn_acc,
                    measured.rankme,
                    measured.alignment,
                    measured.uniformity,
                    measured.relative_std,
                    measured.collapsed,
                    images_per_s
                ),
            )?;
            eprintln!(
                "epoch {}/{}: kNN {}  RankMe {:.1}  alignment {:.3}  uniformity {:.3}  std×√D {:.2}{}",
                epoch + 1,
                config.epochs,
                if measured.knn_acc.is_finite() {
                    format!("{:.1}%", measured.knn_acc * 100.0)
                } else {
                    "- (no labels)".to_string()
                },
                measured.rankme,
                measured.alignment,
                measured.uniformity,
                measured.relative_std,
                if measured.collapsed {
                    "  COLLAPSED"
                } else {
                    ""
                }
            );
            let world = selfsup_dist::current().world_size();
            if world > 1 {
                let communicated =
                    (selfsup_dist::communication_time() - communicated_before).as_secs_f64();
                eprintln!(
                    "epoch {}/{}: communication {communicated:.1} s of {elapsed:.1} s of \
                     training ({:.0} %, rank 0 of {world}: gathers, all-reduces and the wait \
                     for the slowest rank)",
                    epoch + 1,
                    config.epochs,
                    100.0 * communicated / elapsed.max(1e-9)
                );
            }
            progress.wall_seconds = wall_before + session.elapsed().as_secs_f64();
            let saved = checkpoint::save(dir, &model, &optimizer, &progress)?;
            checkpoint::keep_epoch_model(dir, &saved, epoch + 1)?;
            last = Some((measured, z_train, z_test));
            epoch_start += 1;
        }
        if !lead {
            return Ok(None);
        }
        // A resumed run that had already finished trains no epoch: measure its encoder now.
        let (last, z_train, z_test) = match last {
            Some(found) => found,
            None => measure(
                model.method.encoder(),
                data,
                &pipelines,
                &knn,
                config.seed,
                device,
            ),
        };
        let images = (progress.step * config.batch) as f64;
        Ok(Some(TrainedAny {
            step_losses,
            last,
            online_probe_acc,
            images_per_s: images / progress.train_seconds.max(1e-9),
            steps: progress.step,
            wall_before,
            z_train,
            z_test,
        }))
    }
}

/// The error of a run whose loss stopped being a number: where, the likely causes, and that
/// the last checkpoint is kept.
fn diverged(config: &RunConfig, dir: &Path, step: usize, loss: f64) -> UserError {
    use crate::short;
    let kept = match checkpoint::latest(dir) {
        Ok(Some(found)) => format!(
            "; the last good checkpoint ({}) is kept",
            found.file_name().unwrap_or_default().to_string_lossy()
        ),
        _ => String::new(),
    };
    let temperature = if ["simclr", "moco", "moco-v3", "supcon"].contains(&config.method.as_str()) {
        format!(
            " or raise --temperature (now {})",
            short(config.temperature)
        )
    } else {
        String::new()
    };
    UserError(format!(
        "the loss became {loss} at step {step}, so training stopped{kept}; start a new run with \
         a lower --lr (now {}){temperature}, or check the data for extreme values",
        short(config.lr)
    ))
}

/// Picks the run directory: `out` when given, else the first free (absent, empty, or never
/// checkpointed) `runs/<method>-<dataset>[-k]`.
pub fn run_dir(out: Option<PathBuf>, config: &RunConfig) -> PathBuf {
    if let Some(out) = out {
        return out;
    }
    let dataset = Path::new(&config.dataset)
        .file_name()
        .map_or_else(|| "data".into(), |n| n.to_string_lossy().into_owned());
    let base = PathBuf::from("runs").join(format!("{}-{dataset}", config.method));
    let free = |p: &Path| {
        matches!(
            crate::rundir::inspect(p),
            Ok(crate::rundir::State::Free
                | crate::rundir::State::Run {
                    checkpointed: false
                })
        ) && !crate::rundir::is_locked(p)
    };
    if free(&base) {
        return base;
    }
    (2..)
        .map(|k| PathBuf::from(format!("{}-{k}", base.display())))
        .find(|p| free(p))
        .expect("some suffix is free")
}
