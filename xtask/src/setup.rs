//! Provisioning: CPU libtorch 2.9.0 for `tch`, a Vulkan driver for `wgpu`. Every step is
//! idempotent and says what it does.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// torch-sys 0.22 is built against exactly this PyTorch release.
const TORCH_VERSION: &str = "2.9.0";
/// The CUDA runtime wheels whose two libraries `libtorch_cpu.so` links even for CPU work.
const CUDA_WHEELS: [(&str, &str); 2] = [
    ("nvidia-cuda-runtime-cu12==12.8.90", "libcudart.so.12"),
    ("nvidia-cuda-cupti-cu12==12.8.90", "libcupti.so.12"),
];
/// The libraries taken from the torch wheel. `libtorch_cuda.so` is deliberately absent: if it
/// were there, torch-sys would link it and every binary would need the whole CUDA stack.
const TORCH_LIBS: [&str; 4] = [
    "libtorch.so",
    "libtorch_cpu.so",
    "libc10.so",
    "libgomp.so.1",
];
const COMPLETE_MARKER: &str = ".selfsup-complete";

/// What the cargo commands of a provisioned build need to know.
#[derive(Clone, Debug, Default)]
pub struct Provisioned {
    /// The libtorch directory, when `tch` was requested or is already provisioned.
    pub libtorch: Option<PathBuf>,
    /// Whether Open MPI and libclang are here: the CLI is then built with its `mpi` feature
    /// and the distributed tests run under `mpirun`.
    pub mpi: bool,
}

impl Provisioned {
    /// The backends to compile in. Every build uses the same feature set whatever subset is
    /// tested, so switching `--backends` never rebuilds Burn: the pure-Rust backends always,
    /// `tch` whenever libtorch is available (it is needed to link).
    pub fn build_backends(&self) -> Vec<String> {
        let mut out: Vec<String> = ["flex", "ndarray", "wgpu"].map(String::from).to_vec();
        if self.libtorch.is_some() {
            out.push("tch".into());
        }
        out
    }
}

/// `cargo xtask setup WHAT`.
pub fn run(what: &str) -> Result<Provisioned, String> {
    if what == "data" {
        for name in selfsup_data::fetch::FETCHABLE {
            selfsup_data::fetch::fetch(name, &mut |line| println!("setup data: {line}"))?;
        }
        println!("setup: done");
        return Ok(Provisioned::default());
    }
    if what == "bench" {
        ensure_bench_venv()?;
        println!("setup: done");
        return Ok(Provisioned::default());
    }
    if what == "mpi" {
        ensure_mpi()?;
        println!("setup: done");
        return Ok(Provisioned::default());
    }
    let backends: Vec<String> = match what {
        "all" => crate::ALL_BACKENDS.iter().map(|s| s.to_string()).collect(),
        one if crate::ALL_BACKENDS.contains(&one) => vec![one.to_string()],
        other => {
            return Err(format!(
                "setup: unknown target '{other}'; valid: {}, all, data, bench, mpi",
                crate::ALL_BACKENDS.join(", ")
            ));
        }
    };
    let provisioned = ensure(&backends)?;
    println!("setup: done");
    Ok(provisioned)
}

/// Makes sure every backend in the list can be built and run here.
pub fn ensure(backends: &[String]) -> Result<Provisioned, String> {
    let mut out = Provisioned {
        libtorch: libtorch_if_present(),
        mpi: mpi_present(),
    };
    for backend in backends {
        match backend.as_str() {
            "flex" | "ndarray" => println!("setup {backend}: pure Rust, nothing to install"),
            "wgpu" => ensure_vulkan()?,
            "tch" => out.libtorch = Some(ensure_libtorch()?),
            other => return Err(format!("setup: unknown backend '{other}'")),
        }
    }
    Ok(out)
}

/// The cache for downloads and provisioned libraries (shared with `selfsup data fetch`);
/// exits with the reason when there is none (HOME unset, a file in its place).
pub fn cache_dir() -> PathBuf {
    selfsup_data::sources::cache_dir().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    })
}

fn is_libtorch(dir: &Path) -> bool {
    dir.join("lib").join("libtorch_cpu.so").is_file() && dir.join("include").is_dir()
}

fn cached_libtorch() -> PathBuf {
    cache_dir().join(format!("libtorch-{TORCH_VERSION}-cpu"))
}

/// libtorch from `LIBTORCH` or the cache, if it is already there; provisions nothing.
fn libtorch_if_present() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LIBTORCH") {
        let dir = PathBuf::from(dir);
        return is_libtorch(&dir).then_some(dir);
    }
    let dir = cached_libtorch();
    (dir.join(COMPLETE_MARKER).is_file() && is_libtorch(&dir)).then_some(dir)
}

fn ensure_libtorch() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("LIBTORCH") {
        let dir = PathBuf::from(dir);
        if !is_libtorch(&dir) {
            return Err(format!(
                "setup tch: LIBTORCH={} is not a libtorch directory (no lib/libtorch_cpu.so or \
                 include/); unset it to let setup provision libtorch {TORCH_VERSION}",
                dir.display()
            ));
        }
        println!("setup tch: using LIBTORCH={}", dir.display());
        return Ok(dir);
    }
    let cache = cache_dir();
    let dir = cached_libtorch();
    if dir.join(COMPLETE_MARKER).is_file() && is_libtorch(&dir) {
        println!(
            "setup tch: libtorch {TORCH_VERSION} (CPU) ready at {}",
            dir.display()
        );
        return Ok(dir);
    }
    println!(
        "setup tch: assembling a CPU libtorch {TORCH_VERSION} from the PyPI wheels into {}",
        dir.display()
    );
    let wheels = cache.join("wheels");
    fs::create_dir_all(&wheels).map_err(|e| format!("setup tch: {}: {e}", wheels.display()))?;
    download_wheels(&wheels)?;

    let partial = cache.join(format!("libtorch-{TORCH_VERSION}-cpu.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial)
            .map_err(|e| format!("setup tch: cannot clear {}: {e}", partial.display()))?;
    }
    assemble(&wheels, &partial).map_err(|e| format!("setup tch: {e}"))?;
    fs::write(partial.join(COMPLETE_MARKER), TORCH_VERSION)
        .map_err(|e| format!("setup tch: {e}"))?;
    if dir.exists() {
        fs::remove_dir_all(&dir)
            .map_err(|e| format!("setup tch: cannot replace {}: {e}", dir.display()))?;
    }
    fs::rename(&partial, &dir).map_err(|e| format!("setup tch: {e}"))?;
    println!(
        "setup tch: removing the downloaded wheels ({})",
        wheels.display()
    );
    let _ = fs::remove_dir_all(&wheels);
    println!(
        "setup tch: libtorch {TORCH_VERSION} (CPU) ready at {}",
        dir.display()
    );
    Ok(dir)
}

fn find_wheel(dir: &Path, prefix: &str) -> Option<PathBuf> {
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".whl"))
        })
}

fn wheel_prefix(requirement: &str) -> String {
    let name = requirement.split("==").next().unwrap_or(requirement);
    let version = requirement.split("==").nth(1).unwrap_or("");
    format!("{}-{version}", name.replace('-', "_"))
}

fn download_wheels(wheels: &Path) -> Result<(), String> {
    let torch = format!("torch=={TORCH_VERSION}");
    let requirements: Vec<String> = std::iter::once(torch)
        .chain(CUDA_WHEELS.iter().map(|(r, _)| r.to_string()))
        .collect();
    let missing: Vec<&String> = requirements
        .iter()
        .filter(|r| find_wheel(wheels, &wheel_prefix(r)).is_none())
        .collect();
    if missing.is_empty() {
        println!("setup tch: wheels already downloaded");
        return Ok(());
    }
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .ok_or(
            "setup tch: needs python3 with pip to download libtorch from PyPI; install \
                python3-pip, or set LIBTORCH to an existing libtorch 2.9.0 directory",
        )?;
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
    ])
    .args([
        "--platform",
        "manylinux_2_28_x86_64",
        "--platform",
        "manylinux_2_17_x86_64",
    ])
    .args(["--python-version", "3.11", "-d"])
    .arg(wheels)
    .args(missing.iter().map(|s| s.as_str()));
    println!(
        "setup tch: {python} -m pip download {} (about 900 MB, CPU parts only are kept)",
        missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let status = cmd
        .status()
        .map_err(|e| format!("setup tch: cannot run {python}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "setup tch: pip download failed ({status}); check that PyPI is reachable, or set \
             LIBTORCH to an existing libtorch {TORCH_VERSION} directory"
        ));
    }
    Ok(())
}

/// Unpacks headers and the CPU libraries from the wheels into `dest`.
fn assemble(wheels: &Path, dest: &Path) -> Result<(), String> {
    let torch = find_wheel(wheels, &wheel_prefix(&format!("torch=={TORCH_VERSION}")))
        .ok_or("the torch wheel is missing after download")?;
    println!(
        "setup tch: unpacking headers and CPU libraries from {}",
        torch.display()
    );
    let lib = dest.join("lib");
    fs::create_dir_all(&lib).map_err(|e| e.to_string())?;
    extract(&torch, |name| {
        if let Some(rest) = name.strip_prefix("torch/include/") {
            return Some(dest.join("include").join(rest));
        }
        let file = name.strip_prefix("torch/lib/")?;
        TORCH_LIBS.contains(&file).then(|| lib.join(file))
    })?;
    for (requirement, library) in CUDA_WHEELS {
        let wheel = find_wheel(wheels, &wheel_prefix(requirement))
            .ok_or_else(|| format!("the {requirement} wheel is missing after download"))?;
        extract(&wheel, |name| {
            name.ends_with(&format!("/lib/{library}"))
                .then(|| lib.join(library))
        })?;
    }
    for file in TORCH_LIBS.iter().chain(CUDA_WHEELS.iter().map(|(_, l)| l)) {
        if !lib.join(file).is_file() {
            return Err(format!("{file} was not found in the wheels"));
        }
    }
    Ok(())
}

/// Extracts the entries of a zip archive that `target` maps to a destination path.
fn extract(archive: &Path, target: impl Fn(&str) -> Option<PathBuf>) -> Result<(), String> {
    let file = fs::File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("{}: {e}", archive.display()))?;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| format!("{}: {e}", archive.display()))?;
        if entry.is_dir() {
            continue;
        }
        let Some(path) = target(entry.name()) else {
            continue;
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let mut out = fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        io::copy(&mut entry, &mut out).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn vulkan_icd() -> Option<PathBuf> {
    ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"]
        .iter()
        .filter_map(|dir| fs::read_dir(dir).ok())
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
}

fn vulkan_loader_present() -> bool {
    let known = [
        "/usr/lib/x86_64-linux-gnu/libvulkan.so.1",
        "/usr/lib/aarch64-linux-gnu/libvulkan.so.1",
        "/usr/lib64/libvulkan.so.1",
        "/usr/lib/libvulkan.so.1",
    ];
    known.iter().any(|p| Path::new(p).exists())
        || Command::new("ldconfig")
            .arg("-p")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("libvulkan.so.1"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

const VULKAN_PACKAGES: [&str; 2] = ["mesa-vulkan-drivers", "libvulkan1"];

fn ensure_vulkan() -> Result<(), String> {
    if let (Some(icd), true) = (vulkan_icd(), vulkan_loader_present()) {
        println!(
            "setup wgpu: Vulkan loader and driver present ({})",
            icd.display()
        );
        return Ok(());
    }
    apt_install("wgpu", "software Vulkan", &VULKAN_PACKAGES)?;
    match vulkan_icd() {
        Some(icd) if vulkan_loader_present() => {
            println!("setup wgpu: software Vulkan installed ({})", icd.display());
            Ok(())
        }
        _ => Err(format!(
            "wgpu: {} installed but no Vulkan driver is visible",
            VULKAN_PACKAGES.join(" ")
        )),
    }
}

/// Installs Debian packages (as root, with apt-get), for `what`.
fn apt_install(what: &str, purpose: &str, packages: &[&str]) -> Result<(), String> {
    let list = packages.join(" ");
    let has_apt = Command::new("apt-get").arg("--version").output().is_ok();
    if !(is_root() && has_apt) {
        return Err(format!(
            "setup {what}: {purpose} is missing; install it (Debian/Ubuntu: `sudo apt-get \
             install {list}`)"
        ));
    }
    println!("setup {what}: installing {purpose}: apt-get install {list}");
    for args in [
        vec!["update", "-qq"],
        [
            vec!["install", "-y", "-qq", "--no-install-recommends"],
            packages.to_vec(),
        ]
        .concat(),
    ] {
        let status = Command::new("apt-get")
            .args(&args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("setup {what}: cannot run apt-get: {e}"))?;
        if !status.success() {
            return Err(format!(
                "setup {what}: `apt-get {}` failed ({status}); install {list} by hand",
                args.join(" ")
            ));
        }
    }
    Ok(())
}

/// Open MPI (runtime, headers, `mpicc`) and libclang, which the `mpi` crate's build (bindgen)
/// needs.
const MPI_PACKAGES: [&str; 3] = ["libopenmpi-dev", "openmpi-bin", "libclang-dev"];

/// Whether `mpirun`, `mpicc` and libclang are all here.
pub fn mpi_present() -> bool {
    let runs = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let libclang = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            e.file_name().to_string_lossy().starts_with("llvm-")
                && e.path().join("lib").join("libclang.so").exists()
        });
    runs("mpirun", "--version") && runs("mpicc", "--showme:version") && libclang
}

/// `cargo xtask setup mpi`: Open MPI and what rsmpi's build needs, idempotently.
pub fn ensure_mpi() -> Result<(), String> {
    if mpi_present() {
        println!("setup mpi: Open MPI and libclang present");
        return Ok(());
    }
    apt_install("mpi", "Open MPI and libclang", &MPI_PACKAGES)?;
    if mpi_present() {
        println!("setup mpi: Open MPI and libclang installed");
        Ok(())
    } else {
        Err(format!(
            "setup mpi: {} installed, but mpirun, mpicc or libclang is still missing",
            MPI_PACKAGES.join(" ")
        ))
    }
}

/// The PyTorch reference of `cargo xtask bench`, pinned.
pub const BENCH_REQUIREMENTS: [&str; 5] = [
    "torch==2.9.0",
    "torchvision==0.24.0",
    "lightly==1.6.0",
    "pytorch-metric-learning==2.9.0",
    "psutil",
];

/// The Python of the bench venv (`<cache>/bench-venv`), whether or not it exists yet.
pub fn bench_python() -> PathBuf {
    cache_dir().join("bench-venv").join("bin").join("python")
}

/// Creates the bench venv and installs [`BENCH_REQUIREMENTS`] from PyPI (≈ 3.8 GB: the PyPI
/// torch wheel is the CUDA build, whose `import` needs the NVIDIA wheels). A marker holding
/// the requirement list makes the next call a no-op.
pub fn ensure_bench_venv() -> Result<PathBuf, String> {
    let venv = cache_dir().join("bench-venv");
    let python = bench_python();
    let marker = venv.join(COMPLETE_MARKER);
    let wanted = BENCH_REQUIREMENTS.join("\n");
    if fs::read_to_string(&marker).is_ok_and(|found| found == wanted) && python.is_file() {
        println!(
            "setup bench: PyTorch reference venv ready at {}",
            venv.display()
        );
        return Ok(python);
    }
    if !python.is_file() {
        println!("setup bench: creating a venv at {}", venv.display());
        run_step(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        )?;
    }
    println!(
        "setup bench: pip install {} (≈ 3.8 GB download the first time)",
        BENCH_REQUIREMENTS.join(" ")
    );
    run_step(
        Command::new(&python)
            .args(["-m", "pip", "install", "--disable-pip-version-check"])
            .args(BENCH_REQUIREMENTS),
        "pip install",
    )?;
    fs::write(&marker, wanted).map_err(|e| format!("setup bench: {}: {e}", marker.display()))?;
    println!(
        "setup bench: PyTorch reference venv ready at {}",
        venv.display()
    );
    Ok(python)
}

fn run_step(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("setup bench: cannot run {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("setup bench: {what} failed ({status})"))
    }
}
