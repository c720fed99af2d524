//! `selfsup pretrain`, `selfsup eval` and `selfsup embed`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use burn::tensor::Device;
use clap::Args;
use selfsup_augment::Pipeline;
use selfsup_backend::Backend;
use selfsup_eval::{CheckpointMetrics, KnnConfig, spearman};
use selfsup_methods::Method;

use crate::UserError;
use crate::checkpoint;
use crate::config::{Origin, RunConfig};
use crate::plan;
use crate::report::{self, Summary};
use crate::run::{self, Data, Job, PretrainJob, Pretraining};
use crate::rundir;

/// Flags of `selfsup pretrain`; each overrides the `--config` file, which overrides the defaults.
#[derive(Args, Debug, Default)]
pub struct PretrainArgs {
    /// simclr, moco, moco-v3, byol, simsiam, barlow-twins, vicreg, dino, supcon (needs
    /// labels), triplet, autoencoder, denoising-autoencoder or masked-autoencoder; each trains
    /// with its recipe (recipes/<method>.toml), which --config and flags override
    /// [default: simclr]
    #[arg(long)]
    method: Option<String>,
    /// convnet-s, resnet18 or mlp [default: convnet-s; mlp for a CSV table]
    #[arg(long)]
    encoder: Option<String>,
    /// fashion-mnist-10k (embedded), fashion-mnist, mnist, digits, a folder of IDX files or of
    /// images (one sub-folder per class), or a CSV file (.csv or .csv.gz; class in the last
    /// column; 20 % held out for testing)
    #[arg(long)]
    dataset: Option<String>,
    /// Use only N training samples: the first N, or, from class folders (sorted by class),
    /// N spread over the classes
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = whole::<usize>)]
    limit: Option<usize>,
    /// flex, ndarray, wgpu, vulkan, tch or cuda [default: $SELFSUP_BACKEND, else flex]
    #[arg(long)]
    backend: Option<String>,
    /// Passes over the training images [default: 4]
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>)]
    epochs: Option<usize>,
    /// Images per step [default: 128]
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>)]
    batch: Option<usize>,
    /// Peak learning rate [default: the recipe's]
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// Weight decay [default: the recipe's]
    #[arg(long, allow_negative_numbers = true)]
    weight_decay: Option<f64>,
    /// Contrastive temperature [default: the recipe's]
    #[arg(long, allow_negative_numbers = true)]
    temperature: Option<f64>,
    /// Seed of initialisation, shuffling and augmentations [default: 0]
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<u64>)]
    seed: Option<u64>,
    /// Also checkpoint every N steps (0: at the end of each epoch only) [default: 0]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = whole::<usize>)]
    checkpoint_every: Option<usize>,
    /// Epochs of the final linear probe [default: 30]
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>)]
    probe_epochs: Option<usize>,
    /// TOML file with any of the settings above (snake_case keys), `views` and the recipe's
    /// other keys (optimizer, lr_schedule, warmup_epochs, hidden_dim, momentum, …)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run directory [default: runs/<method>-<dataset>, numbered if taken]
    #[arg(long, value_name = "DIR", value_parser = named_path)]
    out: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint
    #[arg(long)]
    resume: bool,
    /// Under mpirun: normalise each rank's shard with its own batch statistics (PyTorch DDP's
    /// default) instead of the global batch's
    #[arg(long)]
    no_sync_bn: bool,
}

impl PretrainArgs {
    /// The flags that were given, as (name, applies-to-config) pairs.
    fn apply(&self, config: &mut RunConfig) -> Vec<&'static str> {
        let mut given = Vec::new();
        macro_rules! set {
            ($field:ident, $name:literal) => {
                if let Some(value) = &self.$field {
                    config.$field = value.clone();
                    given.push($name);
                }
            };
        }
        set!(method, "method");
        set!(encoder, "encoder");
        set!(dataset, "dataset");
        set!(backend, "backend");
        set!(epochs, "epochs");
        set!(batch, "batch");
        set!(lr, "lr");
        set!(weight_decay, "weight-decay");
        set!(temperature, "temperature");
        set!(seed, "seed");
        set!(checkpoint_every, "checkpoint-every");
        set!(probe_epochs, "probe-epochs");
        if let Some(limit) = self.limit {
            config.limit = Some(limit);
            given.push("limit");
        }
        if self.no_sync_bn {
            config.sync_batch_norm = false;
            given.push("no-sync-bn");
        }
        given
    }
}

fn backend_device(name: &str) -> Result<(Backend, Device), UserError> {
    let backend = name
        .parse::<Backend>()
        .and_then(Backend::ensure_compiled)
        .map_err(|e| UserError(e.to_string()))?;
    selfsup_backend::tune_allocator(backend);
    Ok((backend, selfsup_backend::device(backend)))
}

/// Reads a run directory's config and checks it as a saved run: every value named as a key
/// of that file.
fn run_config(dir: &Path) -> Result<(RunConfig, Origin), UserError> {
    let path = dir.join("config.toml");
    let is_run = matches!(rundir::inspect(dir), Ok(rundir::State::Run { .. }));
    if is_run && !path.exists() {
        return Err(UserError(format!(
            "{} is a selfsup run without its config.toml (deleted or moved?); restore it \
             (from a copy, or rewrite it with the settings the run was started with): its \
             checkpoints cannot be read without it",
            dir.display()
        )));
    }
    if dir.is_file() {
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
        return Err(UserError(format!(
            "{} is a file; give the run's folder{}",
            dir.display(),
            parent.map_or(String::new(), |p| format!(" ({})", p.display()))
        )));
    }
    if !path.is_file() || !is_run {
        return Err(UserError(format!(
            "{} is not a selfsup run directory (no {}); give a folder that `selfsup pretrain \
             --out` wrote",
            dir.display(),
            if path.is_file() {
                ".selfsup-run marker or checkpoints"
            } else {
                "config.toml"
            }
        )));
    }
    let config = RunConfig::load(&path)?;
    let origin = Origin {
        flags: Vec::new(),
        file: Some(path),
        file_keys: None,
    };
    config.validate(&origin)?;
    Ok((config, origin))
}

/// A dataset given as a path is stored as an absolute one, so that `eval` and `--resume`
/// find it from any working directory; names (fashion-mnist-10k, …) stay names.
fn resolve_dataset(config: &mut RunConfig) {
    let named = selfsup_data::sources::NAMED.contains(&config.dataset.as_str());
    if !named && let Ok(path) = std::fs::canonicalize(&config.dataset) {
        config.dataset = path.to_string_lossy().into_owned();
    }
}

/// An output path, refusing `-` and the empty name: selfsup writes files and folders, never
/// to standard output, and a run or file literally named `-` surprises every shell user.
fn named_path(text: &str) -> Result<PathBuf, String> {
    match text.trim() {
        "-" => Err(
            "selfsup writes files, not standard output; give a name such as \
                    runs/first or emb.npy"
                .to_string(),
        ),
        "" => Err("an empty name; give one such as runs/first or emb.npy".to_string()),
        _ => Ok(PathBuf::from(text)),
    }
}

/// A flag's whole number, with a message saying what one is (clap's would be "invalid digit
/// found in string" for `-1` and `1.5`).
fn whole<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    let digits = text.trim();
    digits.parse().map_err(|_| {
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            "too large a number; give a count such as 1, 8 or 128".to_string()
        } else {
            "not a whole number ≥ 0; give one such as 1, 8 or 128".to_string()
        }
    })
}

/// Refuses a run whose data or settings changed since `progress` was checkpointed: a resume
/// would go on, and an evaluation would report, on something else than what was trained.
fn check_unchanged(
    progress: &checkpoint::Progress,
    config: &RunConfig,
    data: &Data,
    dir: &Path,
) -> Result<(), UserError> {
    // Same name, same size, other samples.
    let now = data.split.crc32();
    if let Some(saved) = progress.data_crc32.filter(|&saved| saved != now) {
        return Err(UserError(format!(
            "the data in {} changed since the run in {} was checkpointed (CRC-32 \
             {saved:08x}, now {now:08x}): the run must see the samples it trained on; \
             restore them, or start a new run with another --out",
            config.dataset,
            dir.display()
        )));
    }
    if progress
        .config_crc32
        .is_some_and(|saved| saved != config.settings_crc32())
    {
        return Err(UserError(format!(
            "{} says other settings than the run was checkpointed with (was it edited?); a \
             run keeps its settings (only --epochs and --backend may change): put the file \
             back, or start a new run with another --out",
            dir.join("config.toml").display()
        )));
    }
    Ok(())
}

/// Everything a run needs before its networks are built, checked.
struct Prepared {
    config: RunConfig,
    dir: PathBuf,
    /// Held by the rank that writes the run directory (rank 0; the only one without MPI).
    lock: Option<rundir::RunLock>,
    backend: Backend,
    device: Device,
    data: Data,
    resume_from: Option<PathBuf>,
}

/// On W ranks, every rank's verdict on [`prepare`]: a rank that failed reports its own
/// error, and the others stop too instead of waiting for it in the first collective.
fn agree<T>(result: Result<T, UserError>) -> Result<T, UserError> {
    let world = selfsup_dist::current().world_size();
    if world == 1 {
        return result;
    }
    let ready = selfsup_dist::all_reduce_scalar(if result.is_ok() { 1.0 } else { 0.0 });
    match result {
        Ok(_) if ready < world as f64 - 0.5 => Err(UserError(
            "another rank could not start the run (its error is above); stopping".into(),
        )),
        other => other,
    }
}

/// Settles the run's settings, data and directory; under MPI only rank 0 (`lead`) writes.
fn prepare(args: &PretrainArgs, lead: bool, world: usize) -> Result<Prepared, UserError> {
    let (config, origin, dir, lock, found) = if args.resume {
        let dir = args.out.clone().ok_or_else(|| {
            UserError("--resume needs --out DIR naming the run to continue".into())
        })?;
        if args.config.is_some() {
            return Err(UserError(
                "--config cannot be combined with --resume; the run keeps its config.toml".into(),
            ));
        }
        if !matches!(rundir::inspect(&dir)?, rundir::State::Run { .. }) {
            return Err(UserError(format!(
                "{} is not a selfsup run (no .selfsup-run marker or checkpoints); --resume \
                 continues a run that `selfsup pretrain --out` started",
                dir.display()
            )));
        }
        let (mut config, mut origin) = run_config(&dir)?;
        // Before the checkpoint is looked for (checked again below for added epochs).
        checkpoint::check_paths(&dir, config.epochs)?;
        let lock = if lead {
            Some(rundir::lock(&dir)?)
        } else {
            None
        };
        let saved = config.clone();
        origin.flags = args.apply(&mut config);
        resolve_dataset(&mut config);
        // Looked for once (under the lock): a fallback warning is printed once, too.
        let found = checkpoint::latest(&dir)?;
        if let Some(done) = found
            .as_ref()
            .map(|found| checkpoint::progress(found))
            .transpose()?
            .map(|p| p.epoch)
            .filter(|&done| config.epochs < done)
        {
            return Err(UserError(format!(
                "--epochs {} is fewer than the {done} epochs the run in {} has finished; give \
                 at least {done} (or leave --epochs out)",
                config.epochs,
                dir.display()
            )));
        }
        let named = selfsup_data::sources::NAMED.contains(&config.dataset.as_str());
        if origin.flags.contains(&"dataset")
            && config.dataset != saved.dataset
            && !named
            && !Path::new(&config.dataset).exists()
        {
            return Err(UserError(format!(
                "--dataset {} does not exist; the run in {} trained on {}, and a resumed run \
                 keeps its dataset (leave --dataset out, or restore that dataset)",
                config.dataset,
                dir.display(),
                saved.dataset
            )));
        }
        let kept = |name: &&&str| !["epochs", "backend"].contains(*name);
        if let Some(changed) = origin
            .flags
            .iter()
            .filter(kept)
            .find(|name| config_field_differs(&saved, &config, name))
        {
            return Err(UserError(format!(
                "--{changed} differs from the run in {}; a resumed run keeps its settings \
                 (only --epochs and --backend may change); start a new run with another --out",
                dir.display()
            )));
        }
        (config, origin, dir, lock, Some(found))
    } else {
        let (mut config, mut origin) =
            RunConfig::for_new_run(args.method.as_deref(), args.config.as_deref())?;
        if args.backend.is_none() && args.config.is_none() {
            config.backend = Backend::from_env()
                .map_err(|e| UserError(e.to_string()))?
                .to_string();
        }
        origin.flags = args.apply(&mut config);
        if args.encoder.is_none()
            && config.encoder == RunConfig::default().encoder
            && crate::samples::is_csv(&config.dataset)
        {
            // Table rows are 1 × 1 × D: the MLP is the only encoder for them.
            config.encoder = "mlp".into();
        }
        if !origin.gave("mask_patch") && crate::samples::is_csv(&config.dataset) {
            // The recipe's 4 × 4 squares do not fit a 1 × D row: mask single features.
            config.mask_patch = 1;
        }
        resolve_dataset(&mut config);
        let named = selfsup_data::sources::NAMED.contains(&config.dataset.as_str());
        if !named && !Path::new(&config.dataset).exists() {
            let from = std::env::current_dir()
                .map(|d| format!(" (a relative path is taken from {})", d.display()))
                .unwrap_or_default();
            return Err(UserError(format!(
                "{} '{}' is neither a dataset name ({}) nor an existing folder or CSV file{from}",
                origin.name("dataset"),
                config.dataset,
                selfsup_data::sources::NAMED.join(", ")
            )));
        }
        let dir = run::run_dir(args.out.clone(), &config);
        // Every rank trains into rank 0's choice.
        let mut name = dir.to_string_lossy().into_owned().into_bytes();
        selfsup_dist::current().broadcast(&mut name, 0);
        let dir = PathBuf::from(String::from_utf8_lossy(&name).into_owned());
        // Checked before the lock (which creates the folder), and again under it.
        let refuse = |state: rundir::State| match state {
            rundir::State::Free
            | rundir::State::Run {
                checkpointed: false,
            } => Ok(()),
            // A run another process trains now: its lock's message names that process.
            rundir::State::Run { checkpointed: true } if rundir::is_locked(&dir) => {
                rundir::lock(&dir).map(|_| ())
            }
            rundir::State::Run { checkpointed: true } => Err(UserError(format!(
                "{} already holds a run; continue it with --resume, or choose another --out",
                dir.display()
            ))),
            rundir::State::Foreign { example } => Err(UserError(format!(
                "--out {} holds files that are not a selfsup run (such as '{example}'); \
                 choose a new or empty folder",
                dir.display()
            ))),
        };
        refuse(rundir::inspect(&dir)?)?;
        let absolute = std::path::absolute(&dir).unwrap_or_else(|_| dir.clone());
        if let Some(outer) = absolute.ancestors().skip(1).find(|a| rundir::is_marked(a)) {
            return Err(UserError(format!(
                "--out {} is inside the run {}; a run's folder is its own: choose a folder \
                 outside it",
                dir.display(),
                outer.display()
            )));
        }
        // The report's pictures would become images of the data set, and a later run would
        // train on them.
        let dataset = Path::new(&config.dataset);
        if dataset.is_dir() {
            let data_dir = std::fs::canonicalize(dataset)
                .or_else(|_| std::path::absolute(dataset))
                .unwrap_or_else(|_| dataset.to_path_buf());
            if absolute.starts_with(&data_dir) || absolute.starts_with(dataset) {
                return Err(UserError(format!(
                    "--out {} is inside the dataset folder {}: the run's files would become \
                     part of the data; choose an --out outside it",
                    dir.display(),
                    config.dataset
                )));
            }
        }
        (config, origin, dir, None, None)
    };
    config.validate(&origin)?;
    checkpoint::check_paths(&dir, config.epochs)?;
    if !config.batch.is_multiple_of(world) {
        return Err(UserError(format!(
            "{} is the global batch and must divide among the {world} ranks; use a multiple \
             of {world}",
            origin.setting("batch", config.batch)
        )));
    }
    let (backend, device) = backend_device(&config.backend)?;
    let data = Data::load(&config)?;
    if config.needs_labels() && !data.labelled() {
        return Err(UserError(format!(
            "--method {} trains on class labels, and '{}' has none (put the images in one \
             sub-folder per class){}",
            config.method,
            config.dataset,
            if config.method == "triplet" {
                ", or set use_labels = false for views as positives"
            } else {
                ""
            }
        )));
    }
    for warning in plan::check(&config, &data, &origin)? {
        if lead {
            eprintln!("warning: {warning}");
        }
    }
    let lock = match lock {
        Some(lock) => Some(lock),
        None if !lead => None,
        None => {
            // Taken only now, so that a refused start leaves no folder; the folder is looked
            // at again under the lock, in case another process started a run there meanwhile.
            let lock = rundir::lock(&dir)?;
            match rundir::inspect(&dir)? {
                rundir::State::Free
                | rundir::State::Run {
                    checkpointed: false,
                } => Some(lock),
                _ => {
                    return Err(UserError(format!(
                        "another process started a run in {} meanwhile; choose another --out",
                        dir.display()
                    )));
                }
            }
        }
    };
    if args.resume && lead {
        // --epochs and --backend may change on a resume: the run's config says what it is now.
        checkpoint::write_atomic(&dir.join("config.toml"), config.to_toml().as_bytes())?;
    }
    if !args.resume && lead {
        // A run that never reached a checkpoint is started afresh: its own files are
        // replaced, nobody else's.
        let checkpoints = dir.join("checkpoints");
        if checkpoints.is_dir() {
            std::fs::remove_dir_all(&checkpoints)
                .map_err(|e| UserError(format!("cannot clear {}: {e}", checkpoints.display())))?;
        }
        rundir::mark(&dir)?;
        checkpoint::write_atomic(&dir.join("config.toml"), config.to_toml().as_bytes())?;
    }
    // Where a resumed run continues from, checked before any work.
    let resume_from = if args.resume {
        let found = found.flatten();
        match &found {
            Some(found) => {
                let progress = checkpoint::progress(found)?;
                // Changed data is named as such before the step count it also breaks.
                check_unchanged(&progress, &config, &data, &dir)?;
                progress.check(data.steps_per_epoch(&config), found)?;
            }
            None if lead => eprintln!(
                "{} has no checkpoint yet: starting it from step 0",
                dir.display()
            ),
            None => {}
        }
        found
    } else {
        None
    };
    if lead {
        eprintln!(
            "pretraining {} + {} on {} ({} training samples, {} steps per epoch{}) with \
             {backend}{}; run directory {}",
            config.method,
            config.encoder,
            config.dataset,
            data.split.train.len(),
            data.steps_per_epoch(&config),
            match data.split.train.len() % config.batch {
                0 => String::new(),
                left => format!(
                    " of {}; each epoch's shuffle leaves {left} samples out",
                    config.batch
                ),
            },
            if world > 1 {
                format!(
                    " on {world} ranks ({} samples each per step)",
                    config.batch / world
                )
            } else {
                String::new()
            },
            dir.display()
        );
    }
    Ok(Prepared {
        config,
        dir,
        lock,
        backend,
        device,
        data,
        resume_from,
    })
}

/// `selfsup pretrain`.
pub fn pretrain(args: PretrainArgs) -> Result<ExitCode, UserError> {
    let started = Instant::now();
    let comm = selfsup_dist::current();
    let Prepared {
        config,
        dir,
        lock,
        backend,
        device,
        data,
        resume_from,
    } = agree(prepare(&args, comm.rank() == 0, comm.world_size()))?;
    selfsup_nn::set_sync_batch_norm(config.sync_batch_norm);
    if comm.world_size() > 1
        && comm.rank() == 0
        && config.sync_batch_norm
        && !selfsup_nn::BatchNorm::synchronises_on(&device)
    {
        eprintln!(
            "warning: synchronised batch norm runs on flex and tch; on {backend} each rank \
             normalises its own shard"
        );
    }
    let autodiff = device.clone().autodiff();
    let job = PretrainJob {
        config: &config,
        data: &data,
        dir: &dir,
        resume_from,
        device: &device,
    };
    let Some(trained) = run::with_networks(&config, &data, &autodiff, job)? else {
        // Another rank than 0 of a distributed run: rank 0 evaluates and reports.
        return Ok(ExitCode::SUCCESS);
    };
    eprintln!(
        "evaluating: linear probe ({} epoch{}) and the raw-input kNN baseline",
        config.probe_epochs,
        crate::plural(config.probe_epochs)
    );
    let knn = KnnConfig::new().with_k(config.knn_k);
    let feature_dim = trained.z_test.dims()[1];
    let linear_acc = report::linear(
        &config,
        &data,
        trained.z_train.clone(),
        trained.z_test.clone(),
        &device,
    );
    let raw_knn_acc = report::raw_knn(&data.split, &knn, data.classes, &device);
    let summary = Summary {
        knn_acc: trained.last.knn_acc,
        knn_k: config.knn_k,
        linear_acc,
        raw_knn_acc,
        rankme: trained.last.rankme,
        alignment: trained.last.alignment,
        uniformity: trained.last.uniformity,
        relative_std: trained.last.relative_std,
        collapsed: trained.last.collapsed,
        online_probe_acc: trained.online_probe_acc,
        images_per_s: trained.images_per_s,
        backend: backend.to_string(),
        method: config.method.clone(),
        encoder: config.encoder.clone(),
        dataset: config.dataset.clone(),
        train_images: data.split.train.len(),
        test_images: data.split.test.len(),
        epochs: config.epochs,
        steps: trained.steps,
        feature_dim,
        wall_s: trained.wall_before + started.elapsed().as_secs_f64(),
    };
    let pictures = report::write(
        &dir,
        &summary,
        &trained.step_losses,
        data.steps_per_epoch(&config),
        trained.z_test,
        data.split.test.labels(),
        &data.split.class_names(),
    )?;
    println!("{}", report::table(&summary, &trained.last));
    println!("  run directory: {}", dir.display());
    println!(
        "    summary.json, metrics.csv (per epoch), steps.csv (per step), config.toml, checkpoints/"
    );
    for picture in pictures {
        println!("    {}", picture.display());
    }
    drop(lock);
    Ok(ExitCode::SUCCESS)
}

fn config_field_differs(saved: &RunConfig, now: &RunConfig, flag: &str) -> bool {
    match flag {
        "no-sync-bn" => saved.sync_batch_norm != now.sync_batch_norm,
        "method" => saved.method != now.method,
        "encoder" => saved.encoder != now.encoder,
        "dataset" => saved.dataset != now.dataset,
        "limit" => saved.limit != now.limit,
        "batch" => saved.batch != now.batch,
        "lr" => saved.lr != now.lr,
        "weight-decay" => saved.weight_decay != now.weight_decay,
        "temperature" => saved.temperature != now.temperature,
        "seed" => saved.seed != now.seed,
        "checkpoint-every" => saved.checkpoint_every != now.checkpoint_every,
        "probe-epochs" => saved.probe_epochs != now.probe_epochs,
        _ => false,
    }
}

/// Flags of `selfsup eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Run directory written by `selfsup pretrain`
    run: PathBuf,
    /// Backend to evaluate on [default: the run's]
    #[arg(long)]
    backend: Option<String>,
    /// What to measure: any of knn, linear, label-free, raw (comma-separated)
    #[arg(long, default_value = "knn,linear,label-free,raw")]
    metrics: String,
    /// Which checkpoint: latest, or label-free (the epoch with the highest RankMe that did
    /// not collapse, chosen without labels; reports how it ranks against kNN)
    #[arg(long, default_value = "latest")]
    select: String,
    /// Where the run's dataset is now, when it moved (or was fetched into another
    /// SELFSUP_CACHE); it must hold the samples the run trained on [default: the run's]
    #[arg(long, value_name = "PATH")]
    dataset: Option<String>,
}

struct Loaded<'a> {
    model: checkpoint::ModelFile,
    data: &'a Data,
    config: &'a RunConfig,
    device: &'a Device,
    what: Vec<String>,
}

impl Job for Loaded<'_> {
    type Output = ();

    fn run<M: Method>(
        self,
        model: Pretraining<M>,
        pipelines: Vec<Pipeline>,
    ) -> Result<(), UserError> {
        let model = self.model.load(model)?;
        let encoder = model.method.encoder();
        let knn = KnnConfig::new().with_k(self.config.knn_k);
        let wants = |m: &str| self.what.iter().any(|w| w == m);
        let (measured, z_train, z_test) = run::measure(
            encoder,
            self.data,
            &pipelines,
            &knn,
            self.config.seed,
            self.device,
        );
        if wants("knn") {
            println!("knn_acc      {}", accuracy(measured.knn_acc));
        }
        if wants("linear") {
            let acc = report::linear(self.config, self.data, z_train, z_test, self.device);
            println!("linear_acc   {}", accuracy(acc));
        }
        if wants("raw") {
            let raw = report::raw_knn(&self.data.split, &knn, self.data.classes, self.device);
            println!("raw_knn_acc  {}", accuracy(raw));
        }
        if wants("label-free") {
            println!("rankme       {:.2}", measured.rankme);
            println!("alignment    {:.4}", measured.alignment);
            println!("uniformity   {:.4}", measured.uniformity);
            println!("relative_std {:.4}", measured.relative_std);
            println!("collapsed    {}", measured.collapsed);
        }
        Ok(())
    }
}

/// A finished or training run opened for `eval` / `embed`: its config, its latest checkpoint's
/// model (read into memory), the data and the device.
struct OpenRun {
    config: RunConfig,
    model: checkpoint::ModelFile,
    data: Data,
    device: Device,
}

fn open_run(run: &Path, backend: Option<&str>, moved: Option<&str>) -> Result<OpenRun, UserError> {
    let (mut config, origin) = run_config(run)?;
    if let Some(backend) = backend {
        config.backend = backend.to_string();
    }
    // A run still training saves a newer checkpoint and prunes the one found here at any
    // moment: what was found is read at once, and found again if it went away meanwhile.
    let mut attempts = 0;
    let (progress, model) = loop {
        let found = checkpoint::latest(run)?.ok_or_else(|| {
            UserError(format!(
                "{} has no checkpoint yet; it is written at the end of each epoch",
                run.display()
            ))
        })?;
        let read = checkpoint::progress(&found).and_then(|progress| {
            Ok((
                progress,
                checkpoint::read_model_file(&found.join("model.bpk"))?,
            ))
        });
        attempts += 1;
        match read {
            Err(_) if !found.exists() && attempts < 10 => continue,
            read => break read?,
        }
    };
    let (_, device) = backend_device(&config.backend)?;
    let data = run_data(&config, moved, run)?;
    // The data or config.toml may have changed since the run was trained.
    check_unchanged(&progress, &config, &data, run)?;
    plan::check(&config, &data, &origin)?;
    Ok(OpenRun {
        config,
        model,
        data,
        device,
    })
}

/// A run's data for `eval` / `embed`: from where its config.toml says, or from `moved`
/// (`--dataset`), whose samples [`check_unchanged`] then compares with the trained ones.
fn run_data(config: &RunConfig, moved: Option<&str>, run: &Path) -> Result<Data, UserError> {
    let Some(moved) = moved else {
        let gone = !selfsup_data::sources::is_present(&config.dataset);
        return Data::load(config).map_err(|e| {
            if gone {
                UserError(format!(
                    "{e} (the dataset {}'s config.toml names; if it moved, or was fetched into \
                     another SELFSUP_CACHE, give its place with --dataset PATH)",
                    run.display()
                ))
            } else {
                e
            }
        });
    };
    let mut from = config.clone();
    from.dataset = moved.to_string();
    Data::load(&from)
}

/// `selfsup eval`.
pub fn eval(args: EvalArgs) -> Result<ExitCode, UserError> {
    const KNOWN: [&str; 4] = ["knn", "linear", "label-free", "raw"];
    let what: Vec<String> = args
        .metrics
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    if let Some(bad) = what.iter().find(|w| !KNOWN.contains(&w.as_str())) {
        return Err(UserError(format!(
            "unknown metric '{bad}' in --metrics; choose from {}",
            KNOWN.join(", ")
        )));
    }
    let model_file = match args.select.as_str() {
        "latest" => None,
        "label-free" => Some(select_label_free(&args.run)?),
        other => {
            return Err(UserError(format!(
                "--select must be latest or label-free, got '{other}'"
            )));
        }
    };
    let OpenRun {
        config,
        model,
        data,
        device,
    } = open_run(&args.run, args.backend.as_deref(), args.dataset.as_deref())?;
    let model = match model_file {
        Some(path) => checkpoint::read_model_file(&path)?,
        None => model,
    };
    println!("checkpoint   {}", model.path.display());
    let job = Loaded {
        model,
        data: &data,
        config: &config,
        device: &device,
        what,
    };
    run::with_networks(&config, &data, &device, job)?;
    Ok(ExitCode::SUCCESS)
}

/// One row of a run's `metrics.csv`.
struct EpochRow {
    epoch: usize,
    knn: f64,
    metrics: CheckpointMetrics,
}

fn read_metrics(run: &Path) -> Result<Vec<EpochRow>, UserError> {
    let path = run.join("metrics.csv");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        UserError(if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "{} is missing: --select label-free chooses among the epochs it lists; \
                 use --select latest (or restore the file)",
                path.display()
            )
        } else {
            format!("cannot read {}: {e}", path.display())
        })
    })?;
    if text.trim().is_empty() {
        return Err(UserError(format!(
            "{} is empty (training writes a header and one line per epoch): restore it, or \
             use --select latest",
            path.display()
        )));
    }
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| UserError(format!("{} has no '{name}' column", path.display())))
    };
    let columns = [
        "epoch",
        "knn_acc",
        "rankme",
        "alignment",
        "uniformity",
        "relative_std",
        "collapsed",
    ]
    .map(column);
    let mut index = [0; 7];
    for (slot, found) in index.iter_mut().zip(columns) {
        *slot = found?;
    }
    let mut rows = Vec::new();
    for (number, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        let bad = || {
            UserError(format!(
                "{} line {}: expected {} comma-separated values, got '{line}'",
                path.display(),
                number + 2,
                header.len()
            ))
        };
        let get = |i: usize| fields.get(index[i]).copied().ok_or_else(bad);
        let num = |i: usize| get(i)?.parse::<f64>().map_err(|_| bad());
        rows.push(EpochRow {
            epoch: get(0)?.parse().map_err(|_| bad())?,
            knn: num(1)?,
            metrics: CheckpointMetrics {
                rankme: num(2)?,
                alignment: num(3)?,
                uniformity: num(4)?,
                relative_std: num(5)?,
                collapsed: get(6)? == "true",
            },
        });
    }
    Ok(rows)
}

/// `eval --select label-free`: picks an epoch's model without labels and says how that
/// choice, and each label-free metric, compares with kNN accuracy over the run's epochs.
fn select_label_free(run: &Path) -> Result<PathBuf, UserError> {
    let rows = read_metrics(run)?;
    let metrics: Vec<CheckpointMetrics> = rows.iter().map(|r| r.metrics.clone()).collect();
    let picked = selfsup_eval::select_label_free(&metrics).ok_or_else(|| {
        UserError(if rows.is_empty() {
            format!(
                "{}: no epoch has finished yet, so there is none to choose from; wait for the \
                 first epoch's end, or use --select latest",
                run.display()
            )
        } else {
            format!(
                "{}: every one of its {} finished epochs collapsed or has no RankMe \
                 (metrics.csv), so there is none to choose without labels; the run did not \
                 learn: try another --lr or recipe, or use --select latest",
                run.display(),
                rows.len()
            )
        })
    })?;
    let row = &rows[picked];
    let file = checkpoint::epoch_model(run, row.epoch);
    if !file.is_file() {
        return Err(UserError(format!(
            "{} is missing, so epoch {} (the label-free choice) cannot be evaluated: the \
             run keeps each epoch's model there, and this one was deleted or never written; \
             use --select latest",
            file.display(),
            row.epoch
        )));
    }
    let sum = checkpoint::sum_path(&file);
    if !sum.is_file() {
        return Err(UserError(format!(
            "{} is missing, so {} cannot be checked against the size and checksum the run \
             wrote (it may be damaged); restore the .sum file, or use --select latest",
            sum.display(),
            file.display()
        )));
    }
    println!(
        "label-free selection over {} epoch{} (highest RankMe, collapsed epochs excluded): \
         epoch {}, RankMe {:.2}",
        rows.len(),
        crate::plural(rows.len()),
        row.epoch,
        row.metrics.rankme
    );
    let knn: Vec<f64> = rows.iter().map(|r| r.knn).collect();
    if knn.iter().all(|k| k.is_finite()) {
        let best = (0..rows.len())
            .max_by(|&a, &b| knn[a].total_cmp(&knn[b]))
            .expect("at least one epoch");
        println!(
            "  kNN of the pick {:.1} %, of the kNN-best epoch ({}) {:.1} %: {:.1} points apart",
            knn[picked] * 100.0,
            rows[best].epoch,
            knn[best] * 100.0,
            (knn[best] - knn[picked]) * 100.0
        );
        let rho = |values: Vec<f64>| {
            let r = spearman(&knn, &values);
            if r.is_finite() {
                format!("{r:.2}")
            } else {
                "-".into()
            }
        };
        println!(
            "  Spearman rho with kNN over the epochs: RankMe {}, -alignment {}, -uniformity {}, \
             std*sqrt(D) {}",
            rho(metrics.iter().map(|m| m.rankme).collect()),
            rho(metrics.iter().map(|m| -m.alignment).collect()),
            rho(metrics.iter().map(|m| -m.uniformity).collect()),
            rho(metrics.iter().map(|m| m.relative_std).collect()),
        );
    }
    Ok(file)
}

/// Flags of `selfsup embed`.
#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// Run directory written by `selfsup pretrain`
    run: PathBuf,
    /// Which images: train or test
    #[arg(long, default_value = "test")]
    split: String,
    /// Output file; labels go next to it as <name>.labels.npy
    #[arg(long, value_name = "FILE.npy", value_parser = named_path)]
    out: PathBuf,
    /// Backend [default: the run's]
    #[arg(long)]
    backend: Option<String>,
    /// Where the run's dataset is now, when it moved (or was fetched into another
    /// SELFSUP_CACHE); it must hold the samples the run trained on [default: the run's]
    #[arg(long, value_name = "PATH")]
    dataset: Option<String>,
}

struct Embed<'a> {
    model: checkpoint::ModelFile,
    data: &'a Data,
    device: &'a Device,
    train: bool,
    out: &'a Path,
}

impl Job for Embed<'_> {
    type Output = ();

    fn run<M: Method>(self, model: Pretraining<M>, _: Vec<Pipeline>) -> Result<(), UserError> {
        let model = self.model.load(model)?;
        let set = if self.train {
            &self.data.split.train
        } else {
            &self.data.split.test
        };
        let z = run::embed(model.method.encoder(), set, self.device);
        let [n, d] = z.dims();
        let values = z
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("features convert to f32");
        crate::npy::write_f32(self.out, &values, n, d)?;
        println!("{n} embeddings of dimension {d} → {}", self.out.display());
        if !self.data.labelled() {
            println!("no labels: the dataset has no classes");
            return Ok(());
        }
        let labels: Vec<i64> = set.labels().iter().map(|&l| l as i64).collect();
        let stem = self.out.with_extension("");
        let labels_path = PathBuf::from(format!("{}.labels.npy", stem.display()));
        if let Err(e) = crate::npy::write_i64(&labels_path, &labels) {
            // Both files or neither: embeddings without their labels would be read as whole.
            let _ = std::fs::remove_file(self.out);
            return Err(e);
        }
        println!("labels → {}", labels_path.display());
        Ok(())
    }
}

/// `selfsup embed`.
pub fn embed(args: EmbedArgs) -> Result<ExitCode, UserError> {
    let train = match args.split.as_str() {
        "train" => true,
        "test" => false,
        other => {
            return Err(UserError(format!(
                "--split must be train or test, got '{other}'"
            )));
        }
    };
    let stem = args.out.with_extension("");
    let labels = PathBuf::from(format!("{}.labels.npy", stem.display()));
    for path in [&args.out, &labels] {
        let name = path.file_name().map_or(0, |n| n.len());
        if name > crate::checkpoint::NAME_MAX {
            return Err(UserError(format!(
                "{}: a file name of {name} bytes is too long (at most {}; the labels go to \
                 NAME.labels.npy beside --out): choose a shorter --out",
                path.display(),
                crate::checkpoint::NAME_MAX
            )));
        }
        rundir::check_output_file(path)?;
        rundir::check_not_run_file(path, &args.run)?;
    }
    // The labels' file is named after --out: replacing one the user did not ask for (a new
    // --out beside an existing NAME.labels.npy) would lose it.
    if labels.exists() && !args.out.exists() {
        return Err(UserError(format!(
            "{} exists and embed would replace it (it writes the labels next to --out); move it \
             or choose another --out",
            labels.display()
        )));
    }
    for path in [&args.out, &labels] {
        rundir::check_new_output(path)?;
    }
    let OpenRun {
        config,
        model,
        data,
        device,
    } = open_run(&args.run, args.backend.as_deref(), args.dataset.as_deref())?;
    let job = Embed {
        model,
        data: &data,
        device: &device,
        train,
        out: &args.out,
    };
    run::with_networks(&config, &data, &device, job)?;
    Ok(ExitCode::SUCCESS)
}

/// An accuracy for `eval`'s output; NaN (an unlabelled run) says what is missing.
fn accuracy(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.4}")
    } else {
        "- (needs labels: class sub-folders)".to_string()
    }
}
