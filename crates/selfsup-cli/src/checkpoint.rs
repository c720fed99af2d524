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

/// Where training stood when a checkpoint was taken: enough to continue exactly, mid-epoch
/// included.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Optimizer steps taken.
    pub step: usize,
    /// Epochs finished.
    pub epoch: usize,
    /// Seconds of training so far (for throughput across resumes).
    pub train_seconds: f64,
    /// Sum of the losses of the current epoch's steps so far.
    #[serde(default)]
    pub epoch_loss_sum: f64,
    /// Online-probe hits over the current epoch's steps so far.
    #[serde(default)]
    pub epoch_probe_correct: i64,
    /// Samples the online probe saw in the current epoch so far.
    #[serde(default)]
    pub epoch_probe_seen: usize,
    /// Seconds spent in the current epoch so far.
    #[serde(default)]
    pub epoch_seconds: f64,
    /// The online probe's accuracy over the last finished epoch (none before the first, or
    /// without labels).
    #[serde(default)]
    pub online_probe_acc: Option<f64>,
    /// CRC-32 of the samples, labels and shapes the run trains and is evaluated on, so that a
    /// resume on changed data is refused (none in runs from before it was kept).
    #[serde(default)]
    pub data_crc32: Option<u32>,
    /// CRC-32 of the run's settings but the two a resume may change (`epochs`, `backend`;
    /// [`RunConfig::settings_crc32`](crate::config::RunConfig::settings_crc32)), so that a
    /// resume after an edit of `config.toml` is refused (none in older runs).
    #[serde(default)]
    pub config_crc32: Option<u32>,
    /// Wall-clock seconds of the run's processes up to this checkpoint (the time a resumed
    /// run's report adds to its own).
    #[serde(default)]
    pub wall_seconds: f64,
    /// Whether selfsup's own kernels were on (`SELFSUP_OWN_KERNELS`), which changes the last
    /// bits of a step: a resume with the other setting is not bit-identical (none in older
    /// runs).
    #[serde(default)]
    pub own_kernels: Option<bool>,
}

impl Progress {
    /// A run at step 0.
    pub fn start() -> Progress {
        Progress {
            step: 0,
            epoch: 0,
            train_seconds: 0.0,
            epoch_loss_sum: 0.0,
            epoch_probe_correct: 0,
            epoch_probe_seen: 0,
            epoch_seconds: 0.0,
            online_probe_acc: None,
            data_crc32: None,
            config_crc32: None,
            wall_seconds: 0.0,
            own_kernels: None,
        }
    }

    /// Checks that this progress can belong to a run of `steps_per_epoch` steps per epoch.
    ///
    /// # Errors
    ///
    /// A step count outside the epoch it claims (an edited file, or a dataset that changed
    /// size since the run started), naming `checkpoint`.
    pub fn check(&self, steps_per_epoch: usize, checkpoint: &Path) -> Result<(), UserError> {
        let first = self.epoch.checked_mul(steps_per_epoch);
        let consistent = first.is_some_and(|first| {
            (first..first.saturating_add(steps_per_epoch)).contains(&self.step)
        }) && self.train_seconds.is_finite()
            && self.train_seconds >= 0.0
            && self.epoch_seconds.is_finite()
            && self.epoch_loss_sum.is_finite()
            && (0..=self.epoch_probe_seen as i64).contains(&self.epoch_probe_correct);
        if consistent {
            Ok(())
        } else {
            Err(UserError(format!(
                "{}: its values (step {}, {} epochs finished; {steps_per_epoch} steps per \
                 epoch now) cannot belong to this run; the file was edited, or the dataset \
                 changed size since the run started",
                checkpoint.join(PROGRESS).display(),
                self.step,
                self.epoch
            )))
        }
    }
}

const MODEL: &str = "model.bpk";
const OPTIMIZER: &str = "optimizer.bpk";
const PROGRESS: &str = "progress.json";
const MANIFEST: &str = "manifest.json";
const LATEST: &str = "latest";

fn io_error(path: &Path, e: impl std::fmt::Display) -> UserError {
    UserError(format!("{}: {e}", path.display()))
}

/// The longest file name (in bytes) of the usual Unix file systems.
pub const NAME_MAX: usize = 255;

/// A temporary file beside `path` named `{prefix}{name}{suffix}`, or `.selfsup-{pid}.tmp`
/// where that would be longer than a file name may be.
fn temp_beside(path: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let mut name = std::ffi::OsString::from(prefix);
    name.push(path.file_name().unwrap_or_default());
    name.push(suffix);
    if name.len() > NAME_MAX {
        name = format!(".selfsup-{}.tmp", std::process::id()).into();
    }
    path.with_file_name(name)
}

/// Writes `bytes` to the file `tmp` and syncs it.
fn write_synced(tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = File::create(tmp)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Writes `bytes` to `path` through a synced temporary file and a rename; errors name `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), UserError> {
    let tmp = temp_beside(path, "", ".tmp");
    let written = write_synced(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    written.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_error(path, format!("cannot write: {e}"))
    })
}

/// [`write_atomic`] for a file that must be new: the finished temporary file is hard-linked
/// to `path`, which fails when `path` exists by then (another process wrote it since the
/// caller checked), so nothing is ever replaced.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), UserError> {
    // Named per process: two writers of one path never share a temporary file.
    let tmp = temp_beside(path, ".", &format!(".{}.tmp", std::process::id()));
    let written = write_synced(&tmp, bytes).and_then(|()| fs::hard_link(&tmp, path));
    let _ = fs::remove_file(&tmp);
    written.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            io_error(
                path,
                "exists now (another process wrote it meanwhile); nothing was replaced: \
                 choose another --out",
            )
        } else {
            io_error(path, format!("cannot write: {e}"))
        }
    })
}

fn sync_file(path: &Path) -> Result<(), UserError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error(path, e))
}

/// Size and CRC-32 of each file of a checkpoint, written last: a checkpoint whose files do
/// not match it (torn, truncated or edited) is not used.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Manifest {
    files: Vec<FileSum>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct FileSum {
    name: String,
    bytes: u64,
    crc32: u32,
}

fn file_sum(dir: &Path, name: &str) -> Option<FileSum> {
    let path = dir.join(name);
    // A FIFO would block the read and a device never end it: only regular files have sums.
    if !fs::metadata(&path).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let bytes = fs::read(&path).ok()?;
    Some(FileSum {
        name: name.to_string(),
        bytes: bytes.len() as u64,
        crc32: crc32fast::hash(&bytes),
    })
}

/// A run's small text file (pointer, manifest, progress, sum): read only when it is a regular
/// file of at most 1 MiB, so a FIFO or a link to a device put in its place cannot block or
/// exhaust the reader.
fn read_small(path: &Path) -> std::io::Result<String> {
    let meta = fs::metadata(path)?;
    if !meta.is_file() || meta.len() > 1 << 20 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file of at most 1 MiB",
        ));
    }
    fs::read_to_string(path)
}

/// Whether `checkpoint` is complete and unaltered. In a run from before manifests existed
/// (no `.selfsup-run` marker) a checkpoint without one counts as intact when its three files
/// are there and its progress parses; in a marked run a missing manifest is damage.
fn intact(checkpoint: &Path) -> bool {
    // A folder selfsup did not write (a link to elsewhere), or whose name is not its step.
    let is_link = fs::symlink_metadata(checkpoint).is_ok_and(|m| m.file_type().is_symlink());
    let named_step = checkpoint
        .file_name()
        .and_then(|n| step_of(&n.to_string_lossy()));
    // (Also what makes a checkpoint's progress parse at all.)
    let names_its_step = || progress(checkpoint).is_ok_and(|p| Some(p.step) == named_step);
    if is_link || !names_its_step() {
        return false;
    }
    let legacy = checkpoint
        .parent()
        .and_then(Path::parent)
        .is_some_and(|run| !crate::rundir::is_marked(run));
    match read_small(&checkpoint.join(MANIFEST)) {
        Ok(_) => sums_match(checkpoint),
        Err(_) => {
            legacy
                && [MODEL, OPTIMIZER]
                    .iter()
                    .all(|f| checkpoint.join(f).is_file())
        }
    }
}

/// Whether the checkpoint's manifest lists its three files with their present sizes and sums.
fn sums_match(checkpoint: &Path) -> bool {
    read_small(&checkpoint.join(MANIFEST))
        .ok()
        .and_then(|text| serde_json::from_str::<Manifest>(&text).ok())
        .is_some_and(|manifest| {
            manifest.files.len() == 3
                && manifest
                    .files
                    .iter()
                    .all(|want| file_sum(checkpoint, &want.name).as_ref() == Some(want))
        })
}

/// A message without the names of temporary files (`x.bpk.123-4.tmp` → `x.bpk`).
fn strip_tmp(message: &str) -> String {
    message
        .split('\'')
        .map(|part| match part.find(".bpk.") {
            Some(at) if part.ends_with(".tmp") => format!("{}.bpk", &part[..at]),
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join("'")
}

/// The step of a checkpoint folder named `step-NNNNNNNN`.
fn step_of(name: &str) -> Option<usize> {
    name.strip_prefix("step-")?.parse().ok()
}

/// Saves model, optimizer and progress as `<dir>/checkpoints/step-NNNNNNNN`, points `latest` at
/// it and removes the checkpoints of earlier steps.
pub fn save<M: Module>(
    dir: &Path,
    model: &M,
    optimizer: &ModuleOptimizer,
    progress: &Progress,
) -> Result<PathBuf, UserError> {
    let root = dir.join("checkpoints");
    fs::create_dir_all(&root).map_err(|e| io_error(&root, e))?;
    let name = format!("step-{:08}", progress.step);
    let done = root.join(&name);
    let tmp = root.join(format!(".{name}.tmp"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| io_error(&done, e))?;
    }
    fs::create_dir_all(&tmp).map_err(|e| io_error(&done, e))?;
    // A `RunningState` keeps this thread's newest update aside until it is synced, and a
    // record reads the value without syncing: `valid()` syncs every one (its copy is dropped),
    // so the checkpoint holds the running statistics the next forward would use.
    drop(model.valid());
    // A failed write (a full disk) leaves no half-written folder, and its message names the
    // checkpoint, not the temporary folder.
    let failed = |file: &str, e: &dyn std::fmt::Display| {
        let _ = fs::remove_dir_all(&tmp);
        let message = e
            .to_string()
            .replace(&tmp.display().to_string(), &done.display().to_string());
        io_error(
            &done.join(file),
            format!("cannot write: {}", strip_tmp(&message)),
        )
    };
    model
        .clone()
        .save_file(tmp.join(MODEL))
        .map_err(|e| failed(MODEL, &e))?;
    optimizer
        .save(tmp.join(OPTIMIZER))
        .map_err(|e| failed(OPTIMIZER, &e))?;
    sync_file(&tmp.join(MODEL))?;
    sync_file(&tmp.join(OPTIMIZER))?;
    let progress_json = serde_json::to_string_pretty(progress).expect("progress serialises");
    write_atomic(&tmp.join(PROGRESS), progress_json.as_bytes())?;
    let files = [MODEL, OPTIMIZER, PROGRESS]
        .iter()
        .map(|f| file_sum(&tmp, f).ok_or_else(|| io_error(&done.join(f), "cannot read back")))
        .collect::<Result<Vec<_>, _>>()?;
    let manifest = serde_json::to_string_pretty(&Manifest { files }).expect("serialises");
    write_atomic(&tmp.join(MANIFEST), manifest.as_bytes())?;
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
        // Older intact checkpoints go; a damaged one stays for the user to look at.
        let older = step_of(&file_name).is_some_and(|step| step < progress.step);
        let stale = file_name.starts_with(".step-") && file_name.ends_with(".tmp");
        if (older && intact(&entry.path())) || stale {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    Ok(done)
}

/// The checkpoint to continue from: the one `latest` names when it is intact, else the newest
/// intact one (saying so on stderr); `None` when the run never wrote one.
///
/// # Errors
///
/// Checkpoints exist but none is intact: nothing is chosen, and nothing is deleted.
pub fn latest(dir: &Path) -> Result<Option<PathBuf>, UserError> {
    let root = dir.join("checkpoints");
    let pointer = root.join(LATEST);
    let named = match read_small(&pointer) {
        Ok(name) => Some(name.trim().to_string()).filter(|name| step_of(name).is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(not_readable(&pointer));
        }
        Err(_) => None,
    };
    // A checkpoint this user may not read is not damaged, and must not be passed over for an
    // older one either.
    let usable = |checkpoint: &Path| -> Result<bool, UserError> {
        if intact(checkpoint) {
            return Ok(true);
        }
        if let Some(file) = unreadable(checkpoint) {
            return Err(not_readable(&file));
        }
        // Every file as written, yet not usable: its progress is not one selfsup reads (an
        // edit with the sums redone, or another version's format) — say that, not "damaged".
        if sums_match(checkpoint) {
            let named = checkpoint
                .file_name()
                .and_then(|n| step_of(&n.to_string_lossy()));
            let problem = match progress(checkpoint) {
                Err(e) => e.0,
                Ok(p) if Some(p.step) != named => format!(
                    "{}: says step {}, but its folder is step {}",
                    checkpoint.join(PROGRESS).display(),
                    p.step,
                    named.map_or("?".to_string(), |n| n.to_string())
                ),
                Ok(_) => return Ok(false),
            };
            return Err(UserError(format!(
                "{problem}; its checksums match, so the file was written this way (edited, or by \
                 another selfsup version): restore it, or start a new run with another --out"
            )));
        }
        Ok(false)
    };
    if let Some(name) = &named
        && usable(&root.join(name))?
    {
        return Ok(Some(root.join(name)));
    }
    let mut steps: Vec<(usize, PathBuf)> = fs::read_dir(&root)
        .map(|list| {
            list.flatten()
                .filter_map(|e| {
                    let step = step_of(&e.file_name().to_string_lossy())?;
                    Some((step, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    steps.sort_by_key(|(step, _)| std::cmp::Reverse(*step));
    let why = match &named {
        Some(name) => format!("names {name}, which is damaged or incomplete"),
        None if pointer.exists() => "is damaged".to_string(),
        None => "is missing".to_string(),
    };
    let mut newest_intact = None;
    for (_, path) in &steps {
        if usable(path)? {
            newest_intact = Some(path);
            break;
        }
    }
    if let Some(path) = newest_intact {
        eprintln!(
            "warning: {} {why}; using {}, the newest intact checkpoint",
            pointer.display(),
            path.display()
        );
        return Ok(Some(path.clone()));
    }
    if steps.is_empty() && !pointer.exists() {
        return Ok(None);
    }
    Err(UserError(format!(
        "{}: no intact checkpoint (latest {why}; {} checkpoint folders, none complete with \
         matching checksums); neither --resume nor eval/embed can use the run: start a new \
         run with another --out (its per-epoch models, checkpoints/epoch-NNNN.bpk, are kept)",
        root.display(),
        steps.len()
    )))
}

/// The first file of `checkpoint` (or the folder itself) that this user may not read.
fn unreadable(checkpoint: &Path) -> Option<PathBuf> {
    let denied = |result: std::io::Result<()>| {
        result.is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
    };
    let entries = match fs::read_dir(checkpoint) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Some(checkpoint.to_path_buf());
        }
        Err(_) => return None,
    };
    entries
        .flatten()
        .map(|entry| entry.path())
        .find(|path| path.is_file() && denied(File::open(path).map(drop)))
}

fn not_readable(path: &Path) -> UserError {
    UserError(format!(
        "{}: permission denied (the file is there, but this user may not read it); give the \
         user running selfsup read access (e.g. `chmod -R u+rwX` on the run folder, as its owner)",
        path.display()
    ))
}

/// Reads a checkpoint's progress.
pub fn progress(checkpoint: &Path) -> Result<Progress, UserError> {
    let path = checkpoint.join(PROGRESS);
    let text = read_small(&path).map_err(|e| io_error(&path, e))?;
    serde_json::from_str(&text).map_err(|e| io_error(&path, format!("not a progress file: {e}")))
}

/// Keeps the model of the epoch-end checkpoint `checkpoint` as `<dir>/checkpoints/epoch-NNNN.bpk`
/// (copied through a temporary file and a rename), for choosing among a run's epochs later
/// (`selfsup eval --select`). Older checkpoints are pruned; these are not.
pub fn keep_epoch_model(dir: &Path, checkpoint: &Path, epoch: usize) -> Result<PathBuf, UserError> {
    let path = epoch_model(dir, epoch);
    let bytes =
        fs::read(checkpoint.join(MODEL)).map_err(|e| io_error(&checkpoint.join(MODEL), e))?;
    let sum = FileSum {
        name: path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        bytes: bytes.len() as u64,
        crc32: crc32fast::hash(&bytes),
    };
    write_atomic(&path, &bytes)?;
    write_atomic(
        &sum_path(&path),
        serde_json::to_string(&sum).expect("serialises").as_bytes(),
    )?;
    Ok(path)
}

/// Refuses, before any training, a run directory where the run could not write what it
/// writes: `checkpoints` that is not a folder, and anything but a plain file (a folder, a
/// link, a FIFO) where `latest`, an epoch model or its sum, `config.toml`, `steps.csv`,
/// `metrics.csv`, `summary.json` or the two pictures go. (Found otherwise only when the first
/// epoch ends, or replaced.)
pub fn check_paths(dir: &Path, epochs: usize) -> Result<(), UserError> {
    let refuse = |path: &Path, what: &str| {
        UserError(format!(
            "{} is {what}; move it away, or start a new run with another --out",
            path.display()
        ))
    };
    let root = dir.join("checkpoints");
    let mut files: Vec<PathBuf> = [
        "config.toml",
        "steps.csv",
        "metrics.csv",
        "summary.json",
        "loss.png",
        "pca.png",
    ]
    .iter()
    .map(|name| dir.join(name))
    .collect();
    if let Ok(meta) = fs::symlink_metadata(&root) {
        if meta.file_type().is_symlink() {
            return Err(refuse(
                &root,
                "a symbolic link (the run renames checkpoints into place and prunes them in a \
                 folder of its own): put the folder itself there",
            ));
        }
        if !meta.is_dir() {
            return Err(refuse(
                &root,
                "not a folder (the run keeps its checkpoints there)",
            ));
        }
        files.push(root.join(LATEST));
        for epoch in 1..=epochs {
            let model = epoch_model(dir, epoch);
            files.push(sum_path(&model));
            files.push(model);
        }
    }
    // Outputs are replaced by renaming a new file over them: that would replace a link (or
    // a FIFO, a device) rather than write through it.
    for path in files {
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(refuse(
                    &path,
                    "a symbolic link (the run replaces this file with a new one, which would \
                     replace the link): put the file itself there",
                ));
            }
            Ok(meta) if !meta.is_file() => {
                return Err(refuse(&path, "not a file (the run writes a file there)"));
            }
            _ => {}
        }
    }
    Ok(())
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

/// Where the size and CRC-32 of a kept epoch model are.
pub fn sum_path(model: &Path) -> PathBuf {
    model.with_extension("bpk.sum")
}

/// Loads weights from a model file (a checkpoint's or a kept epoch's) into `model`; an epoch
/// model with a sum file must match it.
pub fn load_model_file<M: Module>(path: &Path, model: M) -> Result<M, UserError> {
    read_model_file(path)?.load(model)
}

/// A model file read whole into memory and checked against its sum, if it has one: loading
/// it later cannot race with a training run that prunes its older checkpoints meanwhile
/// (Burn's file reader reads the tensors lazily, from the path).
pub struct ModelFile {
    /// Where it was read from, for messages.
    pub path: PathBuf,
    bytes: Vec<u8>,
}

/// Reads the model file `path` (see [`ModelFile`]).
pub fn read_model_file(path: &Path) -> Result<ModelFile, UserError> {
    let bytes = fs::read(path).map_err(|e| io_error(path, e))?;
    if let Ok(text) = read_small(&sum_path(path)) {
        let want: Option<FileSum> = serde_json::from_str(&text).ok();
        let matches = want
            .is_some_and(|w| w.bytes == bytes.len() as u64 && w.crc32 == crc32fast::hash(&bytes));
        if !matches {
            return Err(io_error(
                path,
                "fails its checksum (.sum file): the file is damaged or truncated",
            ));
        }
    }
    Ok(ModelFile {
        path: path.to_path_buf(),
        bytes,
    })
}

impl ModelFile {
    /// Loads these weights into `model`.
    pub fn load<M: Module>(self, model: M) -> Result<M, UserError> {
        let ModelFile { path, bytes } = self;
        let failed = |e: burn::store::RecordError| io_error(&path, load_failure(&e.to_string()));
        let bytes = burn::tensor::Bytes::from_bytes_vec(bytes);
        let record = burn::store::ModuleRecord::from_bytes(bytes).map_err(failed)?;
        model.try_load_record(record).map_err(failed)
    }
}

/// Loads a checkpoint's optimizer state.
pub fn load_optimizer(
    checkpoint: &Path,
    optimizer: ModuleOptimizer,
) -> Result<ModuleOptimizer, UserError> {
    let path = checkpoint.join(OPTIMIZER);
    optimizer
        .load(&path)
        .map_err(|e| io_error(&path, load_failure(&e.to_string())))
}

/// Why a record did not load, with the likely cause: a file that does not decode is damaged;
/// one that decodes but does not fit was written for other networks.
fn load_failure(detail: &str) -> String {
    let detail = detail
        .replace('\n', " ")
        .replace("Shape { dims: ", "")
        .replace("] }", "]")
        .replace('"', "");
    let detail: String = detail.chars().take(200).collect();
    let lower = detail.to_lowercase();
    if ["missing", "shape", "mismatch", "not found"]
        .iter()
        .any(|w| lower.contains(w))
    {
        format!(
            "does not fit the networks of this run's config.toml ({detail}); was it written by \
             another run, or did the dataset's image size change since training?"
        )
    } else {
        format!("cannot be read ({detail}); the file is damaged or truncated")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use selfsup_eval::OnlineProbe;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "selfsup-checkpoint-fuzz-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 96,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn any_run_directory_gives_a_checkpoint_or_one_error(
            pointer in prop::option::of("\\PC{0,20}"),
            folders in prop::collection::vec(
                (0usize..60, prop::collection::vec(any::<u8>(), 0..40), "\\PC{0,60}", any::<bool>()),
                0..4,
            ),
        ) {
            let dir = scratch("latest");
            let root = dir.join("checkpoints");
            fs::create_dir_all(&root).unwrap();
            if let Some(pointer) = &pointer {
                fs::write(root.join(LATEST), pointer).unwrap();
            }
            for (step, model, progress_text, manifest) in &folders {
                let folder = root.join(format!("step-{step:08}"));
                fs::create_dir_all(&folder).unwrap();
                fs::write(folder.join(MODEL), model).unwrap();
                fs::write(folder.join(OPTIMIZER), model).unwrap();
                fs::write(folder.join(PROGRESS), progress_text).unwrap();
                if *manifest {
                    fs::write(folder.join(MANIFEST), progress_text).unwrap();
                }
            }
            match latest(&dir) {
                Ok(Some(found)) => {
                    let progress = progress(&found);
                    prop_assert!(progress.is_ok());
                    let _ = progress.unwrap().check(18, &found);
                }
                Ok(None) => prop_assert!(folders.is_empty() && pointer.is_none()),
                Err(e) => prop_assert!(!e.0.contains('\n'), "{}", e.0),
            }
            let _ = fs::remove_dir_all(&dir);
        }

        #[test]
        fn any_model_file_loads_or_fails_with_one_line(
            bytes in prop::collection::vec(any::<u8>(), 0..300),
            keep_header in any::<bool>(),
        ) {
            let dir = scratch("model");
            let device = selfsup_backend::test_device();
            let probe = OnlineProbe::new(4, 3, &device);
            let valid = dir.join("valid.bpk");
            probe.clone().save_file(&valid).unwrap();
            // Random bytes, or a real file with its tail replaced.
            let content = if keep_header {
                let mut real = fs::read(&valid).unwrap();
                real.truncate(real.len().min(bytes.len()));
                real.extend(&bytes);
                real
            } else {
                bytes
            };
            let path = dir.join("model.bpk");
            fs::write(&path, content).unwrap();
            let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                load_model_file(&path, probe)
            }));
            prop_assert!(loaded.is_ok(), "loading a damaged file panicked");
            if let Err(e) = loaded.unwrap() {
                prop_assert!(e.0.contains("model.bpk") && !e.0.contains('\n'), "{}", e.0);
            }
            let _ = fs::remove_dir_all(&dir);
        }
    }
}
