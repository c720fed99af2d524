//! The check of a run's settings against its data, method and encoder, made before any
//! network is built: every view a size the encoder takes, enough samples for the batch and the
//! kNN bank, augmentations that leave something to learn from, and a step that fits in memory.
//! [`RunConfig::validate`] has already checked each value on its own.

use selfsup_augment::{Augmentation, Pipeline};

use crate::UserError;
use crate::config::{Origin, RunConfig};
use crate::run::Data;

/// The smallest side a view may have for `encoder`, and why.
fn min_side(encoder: &str) -> Option<(usize, &'static str)> {
    match encoder {
        // Two 2×2 max-pools: a 3×3 view pools to nothing.
        "convnet-s" => Some((4, "its two 2×2 max-pools leave nothing of a smaller view")),
        // Three stride-2 stages bring 4×4 to 1×1; below, every view looks alike.
        "resnet18" => Some((
            4,
            "its three stride-2 stages reduce a smaller view to one pixel",
        )),
        _ => None,
    }
}

/// How many views a method trains on, and whether it uses more when given.
fn views_used(config: &RunConfig) -> (usize, bool) {
    match config.method.as_str() {
        "supcon" => (1, true),
        "triplet" if config.use_labels => (1, true),
        "triplet" | "dino" => (2, true),
        m if m.ends_with("autoencoder") => (1, false),
        _ => (2, false),
    }
}

/// `[channels, height, width]` of a view of samples of `shape`.
fn view_shape(view: &Pipeline, shape: [usize; 3]) -> [usize; 3] {
    view.steps.iter().fold(shape, |[c, h, w], step| match step {
        Augmentation::ResizedCrop { size, .. } => [c, size[0], size[1]],
        _ => [c, h, w],
    })
}

/// Floats a training step keeps per view pixel (activations saved for the backward pass),
/// measured roughly from the encoders' layer widths.
fn floats_per_pixel(encoder: &str) -> usize {
    match encoder {
        "convnet-s" => 400,
        "resnet18" => 2_500,
        _ => 8,
    }
}

/// Bytes of memory available to this process (Linux), if known.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Checks `config` against `data` for a training run.
///
/// # Returns
///
/// Warnings about settings that work but are probably not meant.
///
/// # Errors
///
/// The first setting that cannot work with this data, named with its fix.
pub fn check(config: &RunConfig, data: &Data, origin: &Origin) -> Result<Vec<String>, UserError> {
    let at = |key: &str| origin.name(key);
    let bad = |message: String| Err(UserError(message));
    let mut warnings = config.warnings(origin);
    warnings.extend(data.warnings.iter().cloned());
    let train = &data.split.train;
    let shape = train.shape();
    let [channels, height, width] = shape;
    let steps_per_epoch = data.steps_per_epoch(config);
    if config.knn_k > train.len() {
        return bad(format!(
            "{} ({}) is more than the {} training samples the kNN evaluation searches; lower it",
            at("knn_k"),
            config.knn_k,
            train.len()
        ));
    }
    if data.labelled() {
        let trained: std::collections::BTreeSet<u8> = train.labels().iter().copied().collect();
        let unseen = data
            .split
            .test
            .labels()
            .iter()
            .filter(|l| !trained.contains(l))
            .count();
        if unseen > 0 {
            warnings.push(format!(
                "{unseen} test samples belong to classes with no training sample; the kNN and \
                 linear probes cannot get them right (are the class folders of train/ and \
                 test/ named alike?{})",
                if config.limit.is_some() {
                    " does --limit leave a class out?"
                } else {
                    ""
                }
            ));
        }
        if let [only] = trained.iter().collect::<Vec<_>>()[..] {
            warnings.push(format!(
                "every training sample has label {only}: with one class the kNN and linear \
                 probes score by construction, and their accuracies say nothing about the \
                 features; give data of at least two classes to measure them"
            ));
        }
    }
    if let Some(limit) = config.limit
        && limit > train.len()
    {
        warnings.push(format!(
            "{} {limit} is more than the {} training samples: all of them are used",
            at("limit"),
            train.len()
        ));
    }
    let total_steps = steps_per_epoch.saturating_mul(config.epochs);
    if config.checkpoint_every > total_steps {
        warnings.push(format!(
            "{} {} is more than the run's {total_steps} steps: checkpoints are written at \
             epoch ends only",
            at("checkpoint_every"),
            config.checkpoint_every
        ));
    }
    if let Some((side, why)) = min_side(&config.encoder)
        && (height < side || width < side)
        && !train.is_table()
    {
        return bad(format!(
            "the samples of '{}' are {height}×{width}; {} needs at least {side}×{side} ({why}): \
             use --encoder mlp, or larger images",
            config.dataset, config.encoder
        ));
    }
    let pipelines = config.pipelines(train);
    let (needed, uses_more) = views_used(config);
    let source = if config.views.is_empty() {
        "the preset".to_string()
    } else {
        format!("the [[views]] of {}", origin.file_name())
    };
    if pipelines.len() < needed {
        return bad(format!(
            "--method {} trains on {needed} views per image, and {source} gives {}: add [[views]]",
            config.method,
            pipelines.len()
        ));
    }
    if pipelines.len() > needed && !uses_more {
        warnings.push(format!(
            "--method {} trains on {needed} view(s); {source} gives {}, and the others are unused",
            config.method,
            pipelines.len()
        ));
    }
    let mut step_floats = 0usize;
    for (i, view) in pipelines.iter().enumerate() {
        let [c, h, w] = view_shape(view, shape);
        let name = format!("view {i} ({source})");
        if config.encoder == "mlp" && [c, h, w] != shape {
            return bad(format!(
                "{name} gives {h}×{w} (height × width) samples, and the MLP encoder takes \
                 exactly the data's {height}×{width}: crop to [{height}, {width}], or use a \
                 convolutional --encoder"
            ));
        }
        if let Some((side, why)) = min_side(&config.encoder)
            && (h < side || w < side)
        {
            return bad(format!(
                "{name} gives {h}×{w} (height × width) samples; {} needs at least \
                 {side}×{side} ({why}): crop to a larger size",
                config.encoder
            ));
        }
        for step in &view.steps {
            if let Augmentation::ResizedCrop { scale, .. } = step
                && scale[1] * ((height * width) as f64) < 1.0
            {
                return bad(format!(
                    "{name}: resized_crop scale {:?} keeps less than one pixel of a \
                     {height}×{width} image, so every view is flat: raise the scale",
                    scale
                ));
            }
            if let Augmentation::PatchMask { patch, .. } = step
                && (*patch > h || *patch > w)
            {
                return bad(format!(
                    "{name}: patch_mask patch {patch} is larger than the {h}×{w} view: use a \
                     patch of at most {}",
                    h.min(w)
                ));
            }
        }
        step_floats = step_floats.saturating_add(c.saturating_mul(h).saturating_mul(w));
    }
    if config.method == "masked-autoencoder" {
        let patch = config.mask_patch;
        if height % patch != 0 || width % patch != 0 {
            return bad(format!(
                "{} ({patch}) must divide the {height}×{width} (height × width) samples; \
                 choose a divisor of both (1 always works)",
                at("mask_patch")
            ));
        }
    }
    // Memory of one step: the views' activations, MoCo's queue, DINO's prototypes.
    let per_pixel = floats_per_pixel(&config.encoder) / channels.max(1);
    let mut floats = config
        .batch
        .saturating_mul(step_floats)
        .saturating_mul(per_pixel.max(1));
    if config.method == "moco" {
        floats = floats.saturating_add(config.queue_size.saturating_mul(config.projection_dim));
    }
    if config.method == "dino" {
        floats = floats.saturating_add(
            config
                .batch
                .saturating_mul(pipelines.len())
                .saturating_mul(config.dino_output_dim)
                .saturating_mul(4),
        );
    }
    // The heads' weights, each with a gradient and two Adam moments (momentum teachers keep
    // another copy): hidden and projection widths multiply.
    let (h, p, q) = (
        config.hidden_dim,
        config.projection_dim,
        config.predictor_hidden_dim,
    );
    let head = 512usize
        .saturating_mul(h)
        .saturating_add(h.saturating_mul(h))
        .saturating_add(h.saturating_mul(p))
        .saturating_add(2usize.saturating_mul(p).saturating_mul(q));
    let head = if config.method == "dino" {
        head.saturating_add(p.saturating_mul(config.dino_output_dim))
    } else {
        head
    };
    floats = floats.saturating_add(head.saturating_mul(5));
    let bytes = (floats as u64).saturating_mul(4);
    if let Some(available) = available_memory()
        && bytes > available
    {
        return bad(format!(
            "a training step would need about {} of memory ({}, {} views, heads of \
             hidden_dim = {h} and projection_dim = {p}), and {} is available: lower the batch, \
             the views' sizes or the heads' widths",
            gib(bytes),
            origin.setting("batch", config.batch),
            pipelines.len(),
            gib(available)
        ));
    }
    Ok(warnings)
}
