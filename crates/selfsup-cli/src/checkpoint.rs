//! Checkpoints that are never half-written: each is assembled in a temporary folder, synced,
//! renamed into place, and only then named by the `latest` pointer (itself replaced by rename).
//! A run killed at any instant leaves the previous checkpoint intact and findable.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};

use crate::UserError;

/// Where training stood when a checkpoint was taken.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Optimizer steps taken.
    pub step: usize,
    /// Epochs finished.
    pub epoch: usize,
    /// Seconds of training so far (for throughput across resumes).
    pub train_seconds: f64,
}

const MODEL: &str = "model.bpk";
const OPTIMIZER: &str = "optimizer.bpk";
const PROGRESS: &str = "progress.json";
const LATEST: &str = "latest";

fn io_error(path: &Path, e: impl std::fmt::Display) -> UserError {
    UserError(format!("{}: {e}", path.display()))
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), UserError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let mut file = File::create(&tmp).map_err(|e| io_error(&tmp, e))?;
    file.write_all(bytes).map_err(|e| io_error(&tmp, e))?;
    file.sync_all().map_err(|e| io_error(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_error(path, e))
}

fn sync_file(path: &Path) -> Result<(), UserError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error(path, e))
}

/// Saves model, optimizer and progress as `<dir>/checkpoints/step-NNNNNNNN`, points `latest` at
/// it and removes the older checkpoints.
pub fn save<M: Module>(
    dir: &Path,
    model: &M,
    optimizer: &ModuleOptimizer,
    progress: &Progress,
) -> Result<PathBuf, UserError> {
    let root = dir.join("checkpoints");
    fs::create_dir_all(&root).map_err(|e| io_error(&root, e))?;
    let name = format!("step-{:08}", progress.step);
    let tmp = root.join(format!(".{name}.tmp"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| io_error(&tmp, e))?;
    }
    fs::create_dir_all(&tmp).map_err(|e| io_error(&tmp, e))?;
    // A `RunningState` keeps this thread's newest update aside until it is synced, and a
    // record reads the value without syncing: `valid()` syncs every one (its copy is dropped),
    // so the checkpoint holds the running statistics the next forward would use.
    drop(model.valid());
    model
        .clone()
        .save_file(tmp.join(MODEL))
        .map_err(|e| io_error(&tmp.join(MODEL), e))?;
    optimizer
        .save(tmp.join(OPTIMIZER))
        .map_err(|e| io_error(&tmp.join(OPTIMIZER), e))?;
    sync_file(&tmp.join(MODEL))?;
    sync_file(&tmp.join(OPTIMIZER))?;
    let progress_json = serde_json::to_string_pretty(progress).expect("progress serialises");
    write_atomic(&tmp.join(PROGRESS), progress_json.as_bytes())?;
    let done = root.join(&name);
    if done.exists() {
        fs::remove_dir_all(&done).map_err(|e| io_error(&done, e))?;
    }
    fs::rename(&tmp, &done).map_err(|e| io_error(&done, e))?;
    write_atomic(&root.join(LATEST), name.as_bytes())?;
    for entry in fs::read_dir(&root)
        .map_err(|e| io_error(&root, e))?
        .flatten()
    {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if file_name.starts_with("step-") && file_name != name {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    Ok(done)
}

/// The checkpoint `latest` points at, if any.
pub fn latest(dir: &Path) -> Result<Option<PathBuf>, UserError> {
    let pointer = dir.join("checkpoints").join(LATEST);
    if !pointer.is_file() {
        return Ok(None);
    }
    let name = fs::read_to_string(&pointer).map_err(|e| io_error(&pointer, e))?;
    let path = dir.join("checkpoints").join(name.trim());
    if !path.join(PROGRESS).is_file() {
        return Err(UserError(format!(
            "{} points at {}, which is missing or incomplete; the run directory was altered",
            pointer.display(),
            path.display()
        )));
    }
    Ok(Some(path))
}

/// Reads a checkpoint's progress.
pub fn progress(checkpoint: &Path) -> Result<Progress, UserError> {
    let path = checkpoint.join(PROGRESS);
    let text = fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
    serde_json::from_str(&text).map_err(|e| io_error(&path, e))
}

/// Keeps the model of the epoch-end checkpoint `checkpoint` as `<dir>/checkpoints/epoch-NNNN.bpk`
/// (copied through a temporary file and a rename), for choosing among a run's epochs later
/// (`selfsup eval --select`). Older checkpoints are pruned; these are not.
pub fn keep_epoch_model(dir: &Path, checkpoint: &Path, epoch: usize) -> Result<PathBuf, UserError> {
    let path = epoch_model(dir, epoch);
    let tmp = path.with_extension("bpk.tmp");
    fs::copy(checkpoint.join(MODEL), &tmp).map_err(|e| io_error(&path, e))?;
    sync_file(&tmp)?;
    fs::rename(&tmp, &path).map_err(|e| io_error(&path, e))?;
    Ok(path)
}

/// Where [`keep_epoch_model`] keeps epoch `epoch`'s model (1-based).
pub fn epoch_model(dir: &Path, epoch: usize) -> PathBuf {
    dir.join("checkpoints")
        .join(format!("epoch-{epoch:04}.bpk"))
}

/// Loads a checkpoint's weights into `model` (built with the run's config).
pub fn load_model<M: Module>(checkpoint: &Path, model: M) -> Result<M, UserError> {
    load_model_file(&checkpoint.join(MODEL), model)
}

/// Loads weights from a model file (a checkpoint's or a kept epoch's) into `model`.
pub fn load_model_file<M: Module>(path: &Path, model: M) -> Result<M, UserError> {
    model.try_load_file(path).map_err(|e| {
        io_error(
            path,
            format!("{e:?}; was this checkpoint written with another config?"),
        )
    })
}

/// Loads a checkpoint's optimizer state.
pub fn load_optimizer(
    checkpoint: &Path,
    optimizer: ModuleOptimizer,
) -> Result<ModuleOptimizer, UserError> {
    let path = checkpoint.join(OPTIMIZER);
    optimizer
        .load(&path)
        .map_err(|e| io_error(&path, format!("{e:?}")))
}
