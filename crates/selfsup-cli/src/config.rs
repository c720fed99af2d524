//! The settings of a pretraining run: defaults, then a `--config` TOML file, then flags.
//! The resolved settings are saved as `config.toml` in the run directory, which is what
//! `--resume`, `eval` and `embed` read back.

use std::path::Path;

use selfsup_augment::{Augmentation, Pipeline};
use serde::{Deserialize, Serialize};

use crate::UserError;
use crate::samples::Samples;

/// Methods `pretrain --method` accepts, each with its recipe (`recipes/<method>.toml`).
pub const METHODS: [&str; 13] = [
    "simclr",
    "moco",
    "moco-v3",
    "byol",
    "simsiam",
    "barlow-twins",
    "vicreg",
    "dino",
    "supcon",
    "triplet",
    "autoencoder",
    "denoising-autoencoder",
    "masked-autoencoder",
];

/// The recipe of a method: the repository's `recipes/<method>.toml`, compiled in.
pub fn recipe(method: &str) -> Option<&'static str> {
    macro_rules! recipes {
        ($($name:literal),*) => {
            match method {
                $($name => Some(include_str!(concat!("../../../recipes/", $name, ".toml"))),)*
                _ => None,
            }
        };
    }
    recipes!(
        "simclr",
        "moco",
        "moco-v3",
        "byol",
        "simsiam",
        "barlow-twins",
        "vicreg",
        "dino",
        "supcon",
        "triplet",
        "autoencoder",
        "denoising-autoencoder",
        "masked-autoencoder"
    )
}

/// Optimizers `optimizer` accepts.
pub const OPTIMIZERS: [&str; 2] = ["adam", "adamw"];

/// Learning-rate schedules `lr_schedule` accepts.
pub const LR_SCHEDULES: [&str; 2] = ["constant", "cosine"];

/// Triplet mining modes `mining` accepts.
pub const MININGS: [&str; 4] = ["all", "hard", "semi-hard", "batch-hard"];

/// Encoders `pretrain --encoder` accepts.
pub const ENCODERS: [&str; 3] = ["convnet-s", "resnet18", "mlp"];

/// Where a run's settings came from, so that a message names the flag the user typed or the
/// key of the file that set a value, never a flag that was not given.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    /// Flags given on the command line (`weight-decay`, not `weight_decay`).
    pub flags: Vec<&'static str>,
    /// The TOML file the other values came from (`--config`, or a run's config.toml).
    pub file: Option<std::path::PathBuf>,
    /// The keys `file` sets (`None`: every key, as in a run's config.toml).
    pub file_keys: Option<Vec<String>>,
}

impl Origin {
    /// Whether the user gave setting `key` (snake_case): as a flag, or as a key of a
    /// `--config` file — not the recipe's value, nor one from a run's own config.toml.
    pub fn gave(&self, key: &str) -> bool {
        self.flags.contains(&key.replace('_', "-").as_str())
            || self
                .file_keys
                .as_ref()
                .is_some_and(|keys| keys.iter().any(|k| k == key))
    }

    /// How to name setting `key` (snake_case) in a message.
    pub fn name(&self, key: &str) -> String {
        let flag = key.replace('_', "-");
        if self.flags.iter().any(|f| *f == flag) {
            format!("--{flag}")
        } else if let Some(file) = self.file.as_ref().filter(|_| {
            self.file_keys
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|k| k == key))
        }) {
            format!("{key} in {}", file.display())
        } else {
            format!("{key} (the recipe's; set it in a --config file)")
        }
    }

    /// A setting quoted as context in a message about another: `--batch 128` when that
    /// flag was given, else `batch = 128`.
    pub fn setting(&self, key: &str, value: impl std::fmt::Display) -> String {
        let flag = key.replace('_', "-");
        if self.flags.iter().any(|f| *f == flag) {
            format!("--{flag} {value}")
        } else {
            format!("{key} = {value}")
        }
    }

    /// The file the settings came from, for messages about its `[[views]]`.
    pub fn file_name(&self) -> String {
        self.file
            .as_ref()
            .map_or_else(|| "config".to_string(), |f| f.display().to_string())
    }
}

/// Method-specific settings and the methods that read them.
const USED_BY: [(&str, &[&str]); 14] = [
    ("temperature", &["simclr", "moco", "moco-v3", "supcon"]),
    ("queue_size", &["moco"]),
    ("momentum", &["moco", "moco-v3", "byol", "dino"]),
    ("predictor_hidden_dim", &["byol", "simsiam", "moco-v3"]),
    ("barlow_lambda", &["barlow-twins"]),
    ("dino_output_dim", &["dino"]),
    ("local_crops", &["dino"]),
    ("freeze_last_layer", &["dino"]),
    ("margin", &["triplet"]),
    ("mining", &["triplet"]),
    ("use_labels", &["triplet"]),
    ("noise_std", &["denoising-autoencoder"]),
    ("mask_ratio", &["masked-autoencoder"]),
    ("mask_patch", &["masked-autoencoder"]),
];

/// Everything that defines a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// SSL method (see [`METHODS`]).
    pub method: String,
    /// Backbone (see [`ENCODERS`]).
    pub encoder: String,
    /// Dataset name or folder of IDX files.
    pub dataset: String,
    /// Use only the first `limit` training images.
    pub limit: Option<usize>,
    /// Backend name.
    pub backend: String,
    /// Passes over the training images.
    pub epochs: usize,
    /// Images per step (the last partial batch of an epoch is dropped).
    pub batch: usize,
    /// Optimizer: `adam` (L2 weight decay added to the gradient) or `adamw` (decoupled).
    pub optimizer: String,
    /// Peak learning rate.
    pub lr: f64,
    /// Learning rate over the run: `constant`, or `cosine` (to `min_lr` at the last step).
    pub lr_schedule: String,
    /// Epochs of linear warm-up from `lr / warm-up steps` to `lr` (fractions allowed).
    pub warmup_epochs: f64,
    /// Learning rate at the end of a cosine schedule.
    pub min_lr: f64,
    /// Weight decay (L2 for `adam`, decoupled for `adamw`).
    pub weight_decay: f64,
    /// Clip each parameter's gradient to this norm (0: no clipping; DINO uses 3).
    pub clip_grad: f64,
    /// Temperature of the contrastive losses (SimCLR, MoCo, SupCon).
    pub temperature: f64,
    /// Width of the projector's hidden layer.
    pub hidden_dim: usize,
    /// Width of the projection the loss sees.
    pub projection_dim: usize,
    /// Width of the predictor's hidden layer (BYOL, SimSiam, MoCo v3).
    pub predictor_hidden_dim: usize,
    /// Teacher momentum at step 0 (MoCo, MoCo v3, BYOL, DINO); BYOL, MoCo v3 and DINO raise
    /// it to 1 along a cosine over the run.
    pub momentum: f64,
    /// Keys in MoCo's queue.
    pub queue_size: usize,
    /// Barlow Twins' weight of the off-diagonal terms.
    pub barlow_lambda: f64,
    /// DINO's prototypes (output width of its head).
    pub dino_output_dim: usize,
    /// DINO's local crops per image (besides the two global ones).
    pub local_crops: usize,
    /// DINO: epochs (fractions allowed) at the start during which the head's prototypes get
    /// no gradient (the paper's `freeze_last_layer`; 0: never).
    pub freeze_last_layer: f64,
    /// Triplet margin.
    pub margin: f64,
    /// Triplet mining: all, hard, semi-hard or batch-hard.
    pub mining: String,
    /// Triplet with class labels as positives (otherwise each image's views are).
    pub use_labels: bool,
    /// Denoising autoencoder: standard deviation of the input noise.
    pub noise_std: f64,
    /// Masked autoencoder: fraction of patches hidden.
    pub mask_ratio: f64,
    /// Masked autoencoder: side of a square patch, in pixels.
    pub mask_patch: usize,
    /// Seed of initialisation, shuffling and augmentations.
    pub seed: u64,
    /// Also checkpoint every this many steps (0: only at the end of each epoch).
    pub checkpoint_every: usize,
    /// Epochs of the final linear probe.
    pub probe_epochs: usize,
    /// Neighbours of the kNN evaluation.
    pub knn_k: usize,
    /// Under mpirun: batch norm with the global batch's statistics (every rank's), so that W
    /// ranks take the one-process step; off, each rank normalises its own shard.
    pub sync_batch_norm: bool,
    /// One augmentation pipeline per view; empty means the method's preset.
    pub views: Vec<Pipeline>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            method: "simclr".into(),
            encoder: "convnet-s".into(),
            dataset: "fashion-mnist-10k".into(),
            limit: None,
            backend: "flex".into(),
            // The main job's length: the embedded 10k subset within 5 minutes on 2 cores.
            epochs: 4,
            batch: 128,
            // These defaults are what a run directory written before the recipes existed
            // trained with; each recipe sets the ones its method uses.
            optimizer: "adam".into(),
            lr: 2e-3,
            lr_schedule: "constant".into(),
            warmup_epochs: 0.0,
            min_lr: 0.0,
            weight_decay: 1e-6,
            clip_grad: 0.0,
            temperature: 0.2,
            hidden_dim: 128,
            projection_dim: 64,
            predictor_hidden_dim: 128,
            momentum: 0.99,
            queue_size: 4096,
            barlow_lambda: 5e-3,
            dino_output_dim: 1024,
            local_crops: 4,
            freeze_last_layer: 0.0,
            margin: 0.2,
            mining: "semi-hard".into(),
            use_labels: false,
            noise_std: 0.3,
            mask_ratio: 0.5,
            mask_patch: 4,
            seed: 0,
            checkpoint_every: 0,
            probe_epochs: 30,
            knn_k: 20,
            sync_batch_norm: true,
            views: Vec::new(),
        }
    }
}

impl RunConfig {
    /// Reads a TOML file of (some of) the fields over the defaults.
    ///
    /// # Errors
    ///
    /// An unreadable file, bad TOML or an unknown field, naming the file.
    pub fn load(path: &Path) -> Result<RunConfig, UserError> {
        let text = read_config_text(path)?;
        toml::from_str(&text)
            .map_err(|e| UserError(format!("config {}: {}", path.display(), one_line(&e))))
    }

    /// The settings of a new run: the defaults, then the recipe of the method (`method`
    /// when given, else the one the file names, else SimCLR), then the `--config` file.
    /// Flags are applied on top by the caller. The [`Origin`] names the file and its keys.
    ///
    /// # Errors
    ///
    /// An unknown method, or an unreadable or bad file (named).
    pub fn for_new_run(
        method: Option<&str>,
        file: Option<&Path>,
    ) -> Result<(RunConfig, Origin), UserError> {
        let user = match file {
            Some(path) => {
                let text = read_config_text(path)?;
                let table: toml::Table = toml::from_str(&text).map_err(|e| {
                    UserError(format!("config {}: {}", path.display(), one_line(&e)))
                })?;
                Some((path, table))
            }
            None => None,
        };
        let from_file = user
            .as_ref()
            .and_then(|(_, t)| t.get("method"))
            .and_then(|m| m.as_str());
        let where_from = match (method, &user) {
            (None, Some((path, _))) if from_file.is_some() => {
                format!(" (method in {})", path.display())
            }
            _ => String::new(),
        };
        let method = method.or(from_file).unwrap_or("simclr");
        let recipe = recipe(method).ok_or_else(|| {
            UserError(format!(
                "unknown method '{method}'{where_from}; choose one of {}",
                METHODS.join(", ")
            ))
        })?;
        let mut table: toml::Table =
            toml::from_str(recipe).expect("every recipe in recipes/ is valid TOML");
        let named = |what: &str| match &user {
            Some((path, _)) => format!("config {}", path.display()),
            None => what.to_string(),
        };
        if let Some((_, user)) = &user {
            table.extend(user.clone());
        }
        table.insert("method".into(), method.into());
        let origin = Origin {
            flags: Vec::new(),
            file: user.as_ref().map(|(path, _)| path.to_path_buf()),
            file_keys: user.as_ref().map(|(_, t)| t.keys().cloned().collect()),
        };
        let config: RunConfig = toml::Value::Table(table).try_into().map_err(|e| {
            let at = user.as_ref().and_then(|(_, t)| bad_view_step(t));
            let (at, e) = at.unwrap_or_else(|| (String::new(), one_line(&e)));
            UserError(format!("{}: {at}{e}", named("recipe")))
        })?;
        Ok((config, origin))
    }

    /// Checks every value on its own and against the others, so that a run fails before it
    /// starts; `origin` says where values came from, so that messages name what the user set.
    /// What needs the data (view sizes, the kNN bank, memory) is checked by [`crate::plan`].
    ///
    /// # Errors
    ///
    /// The first bad value, named with its fix.
    pub fn validate(&self, origin: &Origin) -> Result<(), UserError> {
        use crate::short;
        let at = |key: &str| origin.name(key);
        let bad = |message: String| Err(UserError(message));
        if self.dataset.trim().is_empty() {
            return bad(format!(
                "{} is empty; name a dataset ({}), a folder or a CSV file",
                at("dataset"),
                selfsup_data::sources::NAMED.join(", ")
            ));
        }
        if !METHODS.contains(&self.method.as_str()) {
            return bad(format!(
                "unknown method '{}' ({}); choose one of {}",
                self.method,
                at("method"),
                METHODS.join(", ")
            ));
        }
        if !ENCODERS.contains(&self.encoder.as_str()) {
            return bad(format!(
                "unknown encoder '{}' ({}); choose one of {}",
                self.encoder,
                at("encoder"),
                ENCODERS.join(", ")
            ));
        }
        // Upper bounds keep a typo from asking for terabytes or centuries; they are far
        // beyond what a run on one machine uses.
        for (key, value, most) in [
            ("epochs", self.epochs, 100_000),
            ("batch", self.batch, 1 << 20),
            ("hidden_dim", self.hidden_dim, 1 << 16),
            ("projection_dim", self.projection_dim, 1 << 16),
            ("predictor_hidden_dim", self.predictor_hidden_dim, 1 << 16),
            ("dino_output_dim", self.dino_output_dim, 1 << 17),
            ("queue_size", self.queue_size, 1 << 20),
            ("probe_epochs", self.probe_epochs, 100_000),
            ("knn_k", self.knn_k, 10_000),
            ("mask_patch", self.mask_patch, 4096),
        ] {
            if value == 0 {
                return bad(format!("{} must be at least 1, got 0", at(key)));
            }
            if value > most {
                return bad(format!("{} must be at most {most}, got {value}", at(key)));
            }
        }
        if self.local_crops > 64 {
            return bad(format!(
                "{} must be at most 64, got {}",
                at("local_crops"),
                self.local_crops
            ));
        }
        if self.batch < 2 {
            return bad(format!(
                "{} must be at least 2 (the losses compare samples), got {}",
                at("batch"),
                self.batch
            ));
        }
        if self.limit == Some(0) {
            return bad(format!("{} must be at least 1, got 0", at("limit")));
        }
        for (key, value) in [("lr", self.lr), ("temperature", self.temperature)] {
            if !(value.is_finite() && value > 0.0) {
                return bad(format!(
                    "{} must be a positive number, got {}",
                    at(key),
                    short(value)
                ));
            }
        }
        if self.lr < 1e-12 {
            return bad(format!(
                "{} must be at least 1e-12 (a smaller step changes no float32 weight: the run \
                 would train nothing), got {}",
                at("lr"),
                short(self.lr)
            ));
        }
        if self.temperature < 1e-4 {
            return bad(format!(
                "{} must be at least 1e-4 (below, the logits 1/temperature and their gradients \
                 overflow float32 at the first step), got {}",
                at("temperature"),
                short(self.temperature)
            ));
        }
        if self.temperature > 100.0 {
            return bad(format!(
                "{} must be at most 100 (the contrastive losses flatten to a constant), got {}",
                at("temperature"),
                short(self.temperature)
            ));
        }
        if !(self.weight_decay.is_finite() && (0.0..=1.0).contains(&self.weight_decay)) {
            return bad(format!(
                "{} must be in [0, 1], got {}",
                at("weight_decay"),
                short(self.weight_decay)
            ));
        }
        let choice = |key: &str, value: &str, allowed: &[&str]| {
            if allowed.contains(&value) {
                Ok(())
            } else {
                bad(format!(
                    "unknown {key} '{value}' ({}); choose one of {}",
                    at(key),
                    allowed.join(", ")
                ))
            }
        };
        choice("optimizer", &self.optimizer, &OPTIMIZERS)?;
        choice("lr_schedule", &self.lr_schedule, &LR_SCHEDULES)?;
        choice("mining", &self.mining, &MININGS)?;
        if self.lr > 1.0 {
            return bad(format!(
                "{} must be at most 1 (Adam and AdamW), got {}",
                at("lr"),
                short(self.lr)
            ));
        }
        if !(self.min_lr.is_finite() && (0.0..=self.lr).contains(&self.min_lr)) {
            return bad(format!(
                "{} must be in [0, {}], got {}",
                at("min_lr"),
                origin.setting("lr", short(self.lr)),
                short(self.min_lr)
            ));
        }
        // Spans of the run in epochs: not negative, and shorter than the run.
        for (key, value, unit, why) in [
            ("warmup_epochs", self.warmup_epochs, "", ""),
            (
                "freeze_last_layer",
                self.freeze_last_layer,
                " epochs",
                ": DINO's prototypes would never train",
            ),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return bad(format!(
                    "{} must be >= 0{unit}, got {}",
                    at(key),
                    short(value)
                ));
            }
            if value >= self.epochs as f64 && value > 0.0 {
                return bad(format!(
                    "{} ({}) must be shorter than the run ({}){why}",
                    at(key),
                    short(value),
                    origin.setting("epochs", self.epochs)
                ));
            }
        }
        for (key, value) in [("clip_grad", self.clip_grad), ("noise_std", self.noise_std)] {
            if !(value.is_finite() && value >= 0.0) {
                return bad(format!("{} must be >= 0, got {}", at(key), short(value)));
            }
        }
        if self.noise_std > 10.0 {
            return bad(format!(
                "{} must be at most 10 (pixels lie in [0, 1]), got {}",
                at("noise_std"),
                short(self.noise_std)
            ));
        }
        if !(self.momentum.is_finite() && (0.0..=1.0).contains(&self.momentum)) {
            return bad(format!(
                "{} must be in [0, 1], got {}",
                at("momentum"),
                short(self.momentum)
            ));
        }
        for (key, value) in [
            ("margin", self.margin),
            ("barlow_lambda", self.barlow_lambda),
        ] {
            if !(value.is_finite() && value > 0.0 && value <= 1e3) {
                return bad(format!(
                    "{} must be a positive number up to 1000, got {}",
                    at(key),
                    short(value)
                ));
            }
        }
        if !(self.mask_ratio > 0.0 && self.mask_ratio < 1.0) {
            return bad(format!(
                "{} must be in (0, 1) (1 would hide every patch), got {}",
                at("mask_ratio"),
                short(self.mask_ratio)
            ));
        }
        if self.method == "moco" && self.queue_size < self.batch {
            return bad(format!(
                "{} ({}) must hold at least one batch ({}) of MoCo's keys",
                at("queue_size"),
                self.queue_size,
                origin.setting("batch", self.batch)
            ));
        }
        for (i, view) in self.views.iter().enumerate() {
            view.validate()
                .map_err(|e| UserError(format!("{}: views[{i}]: {e}", origin.file_name())))?;
        }
        Ok(())
    }

    /// Warnings about settings that are allowed but probably not meant.
    pub fn warnings(&self, origin: &Origin) -> Vec<String> {
        use crate::short;
        let at = |key: &str| origin.name(key);
        let mut out = Vec::new();
        if self.lr > 0.1 {
            out.push(format!(
                "{} = {} is high for Adam/AdamW (recipes use 1e-4 to 5e-3); expect divergence",
                at("lr"),
                short(self.lr)
            ));
        }
        if self.lr < 1e-7 {
            out.push(format!(
                "{} = {} is so low that the networks will barely move",
                at("lr"),
                short(self.lr)
            ));
        }
        let contrastive = ["simclr", "moco", "moco-v3", "supcon"].contains(&self.method.as_str());
        if contrastive && !(0.01..=10.0).contains(&self.temperature) {
            out.push(format!(
                "{} = {} is outside the usual range of contrastive losses (0.05–1 is \
                 typical; this warning is given below 0.01 and above 10)",
                at("temperature"),
                short(self.temperature)
            ));
        }
        // Settings the user gave that this method never reads.
        for (key, methods) in USED_BY {
            if origin.gave(key) && !methods.contains(&self.method.as_str()) {
                let users = match methods {
                    [one] => format!("only {one} does"),
                    many => format!("only {} do", many.join(", ")),
                };
                out.push(format!(
                    "{} is ignored: --method {} does not use it ({users})",
                    at(key),
                    self.method,
                ));
            }
        }
        out
    }

    /// The view pipelines: the configured ones, or the method's preset for these samples
    /// (feature noise and masking for table rows).
    pub fn pipelines(&self, samples: &Samples) -> Vec<Pipeline> {
        if !self.views.is_empty() {
            return self.views.clone();
        }
        let side = samples.shape()[1];
        let presets = match self.method.as_str() {
            // Autoencoders reconstruct the image itself (a mirror image half of the time).
            m if m.ends_with("autoencoder") => {
                vec![Pipeline::new(vec![Augmentation::HorizontalFlip {
                    p: if samples.is_table() { 0.0 } else { 0.5 },
                }])]
            }
            _ if samples.is_table() => vec![Pipeline::tabular(); 2],
            "byol" | "moco-v3" => Pipeline::byol_pair(side).to_vec(),
            "dino" => Pipeline::dino_multi_crop(side, (side * 3 / 7).max(4), self.local_crops),
            _ => return preset_pair(samples),
        };
        with_samples_aspect(presets, samples)
    }

    /// Whether the method trains on class labels (SupCon; triplet with `use_labels`).
    pub fn needs_labels(&self) -> bool {
        self.method == "supcon" || (self.method == "triplet" && self.use_labels)
    }

    /// CRC-32 of every setting but `epochs` and `backend` (the two a resume may change): a
    /// checkpoint keeps it, and a resume whose `config.toml` says otherwise is refused.
    pub fn settings_crc32(&self) -> u32 {
        let mut fixed = self.clone();
        fixed.epochs = 0;
        fixed.backend = String::new();
        crc32fast::hash(fixed.to_toml().as_bytes())
    }

    /// The TOML saved in a run directory.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a RunConfig serialises to TOML")
    }
}

/// SimCLR's two views for these samples (feature noise and masking for table rows).
pub fn preset_pair(samples: &Samples) -> Vec<Pipeline> {
    let [channels, side, _] = samples.shape();
    if samples.is_table() {
        vec![Pipeline::tabular(); 2]
    } else if channels == 3 {
        with_samples_aspect(vec![Pipeline::simclr_rgb(side); 2], samples)
    } else {
        with_samples_aspect(vec![Pipeline::simclr_grayscale(side); 2], samples)
    }
}

/// Square presets (their side is the samples' height) made to the samples' own aspect, so
/// that views of `H × W` images are `H × W` too.
fn with_samples_aspect(presets: Vec<Pipeline>, samples: &Samples) -> Vec<Pipeline> {
    let [_, height, width] = samples.shape();
    if height == width || samples.is_table() {
        return presets;
    }
    let aspect = width as f64 / height as f64;
    presets.into_iter().map(|p| p.with_aspect(aspect)).collect()
}

/// The most a config file may hold (they are a few hundred bytes).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// A config file's text, read up to [`MAX_CONFIG_BYTES`] (a device like `/dev/zero` or a
/// huge file is refused, not read into memory).
fn read_config_text(path: &Path) -> Result<String, UserError> {
    use std::io::Read;
    let cannot = |e: &dyn std::fmt::Display| {
        UserError(format!("cannot read config {}: {e}", path.display()))
    };
    selfsup_data::check_regular_file(path).map_err(|e| UserError(format!("config {e}")))?;
    let file = std::fs::File::open(path).map_err(|e| cannot(&e))?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| cannot(&e))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(UserError(format!(
            "config {} is larger than {} MiB; a config holds settings only",
            path.display(),
            MAX_CONFIG_BYTES >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|_| cannot(&"not UTF-8 text; is it a TOML file?"))
}

/// A TOML error on one line.
/// The first step of the file's `[[views]]` that is no augmentation, as
/// `("views[i].steps[j] (op = \"name\"): ", why)`: serde's message for the whole file names
/// neither the view nor the step.
fn bad_view_step(file: &toml::Table) -> Option<(String, String)> {
    let views = file.get("views")?.as_array()?;
    views.iter().enumerate().find_map(|(i, view)| {
        let steps = view.get("steps")?.as_array()?;
        steps.iter().enumerate().find_map(|(j, step)| {
            let e = step.clone().try_into::<Augmentation>().err()?;
            let op = step
                .get("op")
                .and_then(|op| op.as_str())
                .map(|op| format!(" (op = \"{op}\")"))
                .unwrap_or_default();
            Some((format!("views[{i}].steps[{j}]{op}: "), one_line(&e)))
        })
    })
}

fn one_line(e: &impl std::fmt::Display) -> String {
    // serde names the Rust types it expected; a user knows the TOML shapes.
    e.to_string()
        .replace('\n', " ")
        .replace("struct Pipeline", "a view: a table with steps = [...]")
        .replace(
            "enum Augmentation",
            "an augmentation: a table with op = \"...\"",
        )
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Keys of the config with values of every TOML type, valid or not.
    fn entry() -> impl Strategy<Value = String> {
        let keys = prop::sample::select(vec![
            "method",
            "encoder",
            "batch",
            "epochs",
            "lr",
            "temperature",
            "hidden_dim",
            "queue_size",
            "mask_ratio",
            "mask_patch",
            "warmup_epochs",
            "momentum",
            "knn_k",
            "limit",
            "views",
            "no_such_key",
        ]);
        let values = prop::sample::select(vec![
            "0",
            "-1",
            "1",
            "128",
            "1e300",
            "-0.0",
            "nan",
            "inf",
            "18446744073709551615",
            "99999999999999999999999",
            "\"simclr\"",
            "\"\"",
            "true",
            "[1, 2]",
            "[{ steps = [{ op = \"resized_crop\", size = [0, 9], scale = [2, 1], ratio = [1, 1] }] }]",
            "[{ steps = [{ op = \"gaussian_blur\", sigma = [1e9, 1e9], p = 1 }] }]",
            "{ a = 1 }",
        ]);
        (keys, values).prop_map(|(k, v)| format!("{k} = {v}"))
    }

    #[test]
    fn settings_the_method_does_not_read_are_named_in_a_warning() {
        let byol = RunConfig {
            method: "byol".into(),
            ..RunConfig::default()
        };
        let flags = Origin {
            flags: vec!["temperature", "momentum"],
            ..Origin::default()
        };
        let warnings = byol.warnings(&flags);
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("--temperature is ignored: --method byol")),
            "{warnings:?}"
        );
        assert!(
            !warnings.iter().any(|w| w.contains("--momentum")),
            "{warnings:?}"
        );
        let file = Origin {
            file: Some("my.toml".into()),
            file_keys: Some(vec!["mask_ratio".into()]),
            ..Origin::default()
        };
        let warnings = byol.warnings(&file);
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("mask_ratio in my.toml is ignored")),
            "{warnings:?}"
        );
        // A run's own config.toml (every key) and the recipe's values warn about nothing.
        let saved = Origin {
            file: Some("run/config.toml".into()),
            file_keys: None,
            ..Origin::default()
        };
        assert!(byol.warnings(&saved).is_empty());
        assert!(byol.warnings(&Origin::default()).is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 256,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn any_config_text_is_read_and_checked_without_a_panic(text in "\\PC{0,80}") {
            let dir = std::env::temp_dir().join(format!("selfsup-config-fuzz-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("any.toml");
            std::fs::write(&path, &text).unwrap();
            let read = RunConfig::for_new_run(None, Some(&path));
            std::fs::remove_dir_all(&dir).unwrap();
            match read {
                Ok((config, origin)) => {
                    let _ = config.validate(&origin);
                }
                Err(e) => prop_assert!(e.0.contains("any.toml") && !e.0.contains('\n'), "{}", e.0),
            }
        }

        #[test]
        fn any_config_values_are_read_and_checked_without_a_panic(
            entries in prop::collection::vec(entry(), 0..6),
        ) {
            let dir = std::env::temp_dir().join(format!("selfsup-config-values-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("values.toml");
            std::fs::write(&path, entries.join("\n")).unwrap();
            let read = RunConfig::for_new_run(None, Some(&path));
            std::fs::remove_dir_all(&dir).unwrap();
            match read {
                Ok((config, origin)) => {
                    if let Err(e) = config.validate(&origin) {
                        prop_assert!(!e.0.contains('\n'), "{}", e.0);
                        prop_assert!(e.0.len() < 400, "{}", e.0);
                    }
                }
                Err(e) => prop_assert!(e.0.contains("values.toml"), "{}", e.0),
            }
        }
    }
}
