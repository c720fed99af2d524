//! The settings of a pretraining run: defaults, then a `--config` TOML file, then flags.
//! The resolved settings are saved as `config.toml` in the run directory, which is what
//! `--resume`, `eval` and `embed` read back.

use std::path::Path;

use selfsup_augment::Pipeline;
use serde::{Deserialize, Serialize};

use crate::UserError;
use crate::samples::Samples;

/// Methods `pretrain --method` accepts.
pub const METHODS: [&str; 7] = [
    "simclr",
    "moco",
    "byol",
    "simsiam",
    "barlow-twins",
    "vicreg",
    "dino",
];

/// Encoders `pretrain --encoder` accepts.
pub const ENCODERS: [&str; 3] = ["convnet-s", "resnet18", "mlp"];

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
    /// Adam learning rate.
    pub lr: f64,
    /// Adam L2 weight decay.
    pub weight_decay: f64,
    /// Temperature of the contrastive losses (SimCLR, MoCo).
    pub temperature: f64,
    /// Width of the projector's hidden layer.
    pub hidden_dim: usize,
    /// Width of the projection the loss sees.
    pub projection_dim: usize,
    /// Seed of initialisation, shuffling and augmentations.
    pub seed: u64,
    /// Also checkpoint every this many steps (0: only at the end of each epoch).
    pub checkpoint_every: usize,
    /// Epochs of the final linear probe.
    pub probe_epochs: usize,
    /// Neighbours of the kNN evaluation.
    pub knn_k: usize,
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
            // The main job's defaults, tuned for the embedded 10k subset within 5 minutes on 2
            // cores: more, smaller steps, a higher learning rate and a sharper temperature than
            // the reference recipe (batch 256, lr 1e-3, τ 0.5), which learns more slowly.
            epochs: 4,
            batch: 128,
            lr: 2e-3,
            weight_decay: 1e-6,
            temperature: 0.2,
            hidden_dim: 128,
            projection_dim: 64,
            seed: 0,
            checkpoint_every: 0,
            probe_epochs: 30,
            knn_k: 20,
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
        let text = std::fs::read_to_string(path)
            .map_err(|e| UserError(format!("cannot read config {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| {
            UserError(format!(
                "config {}: {}",
                path.display(),
                e.to_string().replace('\n', " ").trim()
            ))
        })
    }

    /// Checks every value, so that a run fails before it starts.
    ///
    /// # Errors
    ///
    /// The first bad value, named with its fix.
    pub fn validate(&self) -> Result<(), UserError> {
        let bad = |message: String| Err(UserError(message));
        if !METHODS.contains(&self.method.as_str()) {
            return bad(format!(
                "unknown method '{}'; choose one of {}",
                self.method,
                METHODS.join(", ")
            ));
        }
        if !ENCODERS.contains(&self.encoder.as_str()) {
            return bad(format!(
                "unknown encoder '{}'; choose one of {}",
                self.encoder,
                ENCODERS.join(", ")
            ));
        }
        for (name, value) in [
            ("epochs", self.epochs),
            ("batch", self.batch),
            ("hidden-dim", self.hidden_dim),
            ("projection-dim", self.projection_dim),
            ("probe-epochs", self.probe_epochs),
            ("knn-k", self.knn_k),
        ] {
            if value == 0 {
                return bad(format!("--{name} must be at least 1, got 0"));
            }
        }
        if self.batch < 2 {
            return bad(format!(
                "--batch must be at least 2 (the losses compare samples), got {}",
                self.batch
            ));
        }
        if self.limit == Some(0) {
            return bad("--limit must be at least 1, got 0".into());
        }
        for (name, value) in [("lr", self.lr), ("temperature", self.temperature)] {
            if !(value.is_finite() && value > 0.0) {
                return bad(format!("--{name} must be a positive number, got {value}"));
            }
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "--weight-decay must be >= 0, got {}",
                self.weight_decay
            ));
        }
        for (i, view) in self.views.iter().enumerate() {
            view.validate()
                .map_err(|e| UserError(format!("views[{i}]: {e}")))?;
        }
        Ok(())
    }

    /// The view pipelines: the configured ones, or the method's preset for these samples
    /// (feature noise and masking for table rows).
    pub fn pipelines(&self, samples: &Samples) -> Vec<Pipeline> {
        if !self.views.is_empty() {
            return self.views.clone();
        }
        let [channels, side, _] = samples.shape();
        if samples.is_table() {
            return vec![Pipeline::tabular(); 2];
        }
        match self.method.as_str() {
            "byol" => Pipeline::byol_pair(side).to_vec(),
            "dino" => Pipeline::dino_multi_crop(side, (side * 3 / 7).max(4), 4),
            _ if channels == 3 => vec![Pipeline::simclr_rgb(side); 2],
            _ => vec![Pipeline::simclr_grayscale(side); 2],
        }
    }

    /// The TOML saved in a run directory.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a RunConfig serialises to TOML")
    }
}
