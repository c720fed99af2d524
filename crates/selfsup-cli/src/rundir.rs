//! Run directories: what makes a folder a selfsup run, starting one without touching anyone
//! else's files, and the lock that keeps two processes out of one run.

use std::fs::{self, File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::UserError;

/// The file that marks a folder as a selfsup run (written when the run starts).
const MARKER: &str = selfsup_data::RUN_MARKER;
/// The lock file; held (advisory lock) by the process training in the run.
const LOCK: &str = ".lock";

/// What a folder given as `--out` holds.
#[derive(Debug, PartialEq)]
pub enum State {
    /// Nothing there yet, or an empty folder.
    Free,
    /// A selfsup run; `checkpointed` once it has saved a checkpoint.
    Run {
        /// Whether any checkpoint was written.
        checkpointed: bool,
    },
    /// A folder of someone else's files (`example` is one of them).
    Foreign {
        /// One entry of the folder, for the message.
        example: String,
    },
}

/// Looks at `dir` without changing it.
///
/// # Errors
///
/// `dir` exists but is not a folder, or cannot be listed.
pub fn inspect(dir: &Path) -> Result<State, UserError> {
    if fs::symlink_metadata(dir).is_err() {
        return Ok(State::Free);
    }
    if !dir.is_dir() {
        return Err(UserError(format!(
            "--out {} exists and is not a folder; choose a new or empty folder",
            dir.display()
        )));
    }
    let entries: Vec<String> = fs::read_dir(dir)
        .map_err(|e| UserError(format!("cannot list {}: {e}", dir.display())))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != LOCK)
        .collect();
    if entries.is_empty() {
        return Ok(State::Free);
    }
    // Runs written before the marker existed have a config.toml beside steps.csv or
    // checkpoints/.
    let has = |name: &str| entries.iter().any(|e| e == name);
    let is_run = has(MARKER) || (has("config.toml") && (has("steps.csv") || has("checkpoints")));
    if !is_run {
        let mut entries = entries;
        entries.sort();
        return Ok(State::Foreign {
            example: entries.swap_remove(0),
        });
    }
    let checkpointed = fs::read_dir(dir.join("checkpoints"))
        .map(|list| {
            list.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("step-"))
        })
        .unwrap_or(false);
    Ok(State::Run { checkpointed })
}

/// Marks `dir` (created if needed) as a selfsup run.
pub fn mark(dir: &Path) -> Result<(), UserError> {
    fs::create_dir_all(dir)
        .map_err(|e| UserError(format!("cannot create {}: {e}", dir.display())))?;
    crate::checkpoint::write_atomic(
        &dir.join(MARKER),
        format!("selfsup {}\n", env!("CARGO_PKG_VERSION")).as_bytes(),
    )
}

/// The exclusive lock of one run, released when dropped or when the process ends (however
/// it ends: the operating system drops the lock of a killed process).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Takes `dir`'s lock (creating `dir` if needed).
///
/// # Errors
///
/// Another process holds it (its pid is named), or the lock file cannot be written.
pub fn lock(dir: &Path) -> Result<RunLock, UserError> {
    fs::create_dir_all(dir)
        .map_err(|e| UserError(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join(LOCK);
    let io = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            UserError(format!(
                "{} is not writable by this user (permission denied); choose an --out you may \
                 write to",
                dir.display()
            ))
        } else {
            UserError(format!("cannot lock {}: {e}", dir.display()))
        }
    };
    if let Ok(meta) = fs::symlink_metadata(&path)
        && !meta.is_file()
    {
        return Err(UserError(format!(
            "{} is not a plain file (a folder, link or FIFO), and selfsup keeps the run's lock \
             file there; remove it, or choose another --out",
            path.display()
        )));
    }
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(UserError(format!(
                "another selfsup process{} is using the run in {}; wait for it to finish, or \
                 choose another --out",
                if holder.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {holder})")
                },
                dir.display()
            )));
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    Ok(RunLock { _file: file })
}

/// Checks that writing `path` replaces none of the run `run`'s own files (its config,
/// logs, checkpoints, report): new files inside the run folder are fine.
///
/// # Errors
///
/// `path` exists inside `run`.
pub fn check_not_run_file(path: &Path, run: &Path) -> Result<(), UserError> {
    // A new file's place: its folder, resolved, and its name.
    let placed = path.parent().and_then(|parent| {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        Some(fs::canonicalize(parent).ok()?.join(path.file_name()?))
    });
    if let Some(placed) = placed
        && let Some(owner) = placed.ancestors().skip(1).find(|dir| is_marked(dir))
        && placed.starts_with(owner.join("checkpoints"))
    {
        return Err(UserError(format!(
            "{} is inside the checkpoints folder of the run {}, which the run writes and \
             prunes (a later --resume could replace it); write the output elsewhere",
            path.display(),
            owner.display()
        )));
    }
    let (Ok(file), Ok(run)) = (fs::canonicalize(path), fs::canonicalize(run)) else {
        return Ok(());
    };
    if file.starts_with(&run) {
        return Err(UserError(format!(
            "{} is a file of the run {} and would be replaced; write the output elsewhere",
            path.display(),
            run.display()
        )));
    }
    Ok(())
}

/// Checks that `path` is free for a new output file: `embed` never replaces a file — the
/// user's own (even a NumPy file), a dataset, another run's config or checkpoint — since
/// nothing tells those from an earlier output.
///
/// # Errors
///
/// `path` exists (inside a run folder: naming the run).
pub fn check_new_output(path: &Path) -> Result<(), UserError> {
    let Ok(absolute) = fs::canonicalize(path) else {
        return Ok(());
    };
    if let Some(run) = absolute.ancestors().skip(1).find(|dir| is_marked(dir)) {
        return Err(UserError(format!(
            "{} is a file of the run {} and would be replaced; write the output elsewhere",
            path.display(),
            run.display()
        )));
    }
    Err(UserError(format!(
        "{} exists, and embed writes only new files (it cannot tell an earlier output from a \
         file of yours): remove it, or choose another --out",
        path.display()
    )))
}

/// Whether another process holds `dir`'s lock now.
pub fn is_locked(dir: &Path) -> bool {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join(LOCK))
        .is_ok_and(|file| matches!(file.try_lock(), Err(TryLockError::WouldBlock)))
}

/// Whether `dir` is marked as a run of this version of selfsup (which checksums every
/// checkpoint); older runs have no marker.
pub fn is_marked(dir: &Path) -> bool {
    dir.join(MARKER).is_file()
}

/// Checks that `path` may be (over)written as an output file: absent, or a regular file.
/// Special files (FIFOs, devices, sockets), folders and symbolic links are refused, since a
/// write replaces what is there.
///
/// # Errors
///
/// `path` names something other than a regular file.
pub fn check_output_file(path: &Path) -> Result<(), UserError> {
    match fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(meta) if meta.file_type().is_file() => Ok(()),
        Ok(meta) => {
            let what = if meta.is_dir() {
                "a folder"
            } else if meta.file_type().is_symlink() {
                "a symbolic link"
            } else {
                "a special file (FIFO, device or socket)"
            };
            Err(UserError(format!(
                "{} is {what}; selfsup writes only new or regular files: give another path",
                path.display()
            )))
        }
    }
}
