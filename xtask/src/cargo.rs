//! Running cargo for a set of backends: one feature set, one shared target directory.

use crate::setup::Provisioned;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    // `cargo run` sets CARGO_MANIFEST_DIR for the running xtask; the compile-time value can
    // name another clone when several share one target directory (and one xtask binary).
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Environment for building and running with the provisioned backends.
pub fn apply_env(cmd: &mut Command, provisioned: &Provisioned) {
    // wgpu's Vulkan loader complains on every run when this is unset (CI, containers).
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        let dir = std::env::temp_dir().join("selfsup-xdg-runtime");
        if std::fs::create_dir_all(&dir).is_ok() {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
            }
            cmd.env("XDG_RUNTIME_DIR", dir);
        }
    }
    if let Some(libtorch) = &provisioned.libtorch {
        cmd.env("LIBTORCH", libtorch);
        let lib = libtorch.join("lib");
        let path = match std::env::var_os("LD_LIBRARY_PATH") {
            Some(old) if !old.is_empty() => {
                let mut joined = lib.into_os_string();
                joined.push(":");
                joined.push(old);
                joined
            }
            _ => lib.into_os_string(),
        };
        cmd.env("LD_LIBRARY_PATH", path);
    }
}

/// `--features` value enabling the given backends on `selfsup-backend`, and MPI in the CLI
/// when it is provisioned (one feature set for every build of a provisioned machine).
///
/// wgpu is built as `wgpu-software` (without Burn's autotune and fusion): this machine's wgpu
/// is lavapipe, a CPU emulating a GPU, where compiling the kernels autotune tries and fusion
/// generates took 13 minutes for the golden file alone. A GPU build (`bench/gpu_prepare.sh`)
/// takes the full `wgpu` and `cuda` features.
pub fn features(backends: &[String], provisioned: &Provisioned) -> String {
    let mut list: Vec<String> = backends
        .iter()
        .map(|b| match b.as_str() {
            "wgpu" => "selfsup-backend/wgpu-software".to_string(),
            b => format!("selfsup-backend/{b}"),
        })
        .collect();
    if provisioned.mpi {
        list.push("selfsup-cli/mpi".into());
    }
    list.join(",")
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

/// A compiled artifact cargo reported.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// Whether it is a test harness (as opposed to a binary built for the tests to run).
    pub is_test: bool,
    /// Package name.
    pub package: String,
    /// Target name (test file, bin).
    pub target: String,
    /// The executable.
    pub executable: PathBuf,
}

/// Runs a cargo build with `--message-format=json-render-diagnostics` and returns the
/// executables it produced; compiler diagnostics go to the terminal as usual.
fn build(
    args: &[&str],
    backends: &[String],
    provisioned: &Provisioned,
) -> Result<Vec<Artifact>, String> {
    build_in(
        args,
        &["--workspace", "--exclude", "xtask"],
        backends,
        provisioned,
    )
}

/// [`build`] for the packages `scope` selects (`--workspace …` or `-p NAME`).
fn build_in(
    args: &[&str],
    scope: &[&str],
    backends: &[String],
    provisioned: &Provisioned,
) -> Result<Vec<Artifact>, String> {
    let mut cmd = cargo();
    cmd.args(args)
        .args(scope)
        .args(["--features", &features(backends, provisioned)])
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped());
    apply_env(&mut cmd, provisioned);
    println!(
        "xtask: cargo {} {} --features {}",
        args.join(" "),
        scope.join(" "),
        features(backends, provisioned)
    );
    let mut child = cmd.spawn().map_err(|e| format!("cannot run cargo: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut artifacts = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        if let Some(exe) = msg["executable"].as_str() {
            let package = msg["package_id"]
                .as_str()
                .and_then(|id| id.rsplit('/').next())
                .map(|s| s.split(['#', '@']).next().unwrap_or(s).to_string())
                .unwrap_or_default();
            artifacts.push(Artifact {
                is_test: msg["profile"]["test"].as_bool().unwrap_or(false),
                package,
                target: msg["target"]["name"].as_str().unwrap_or("").to_string(),
                executable: PathBuf::from(exe),
            });
        }
    }
    let status = child.wait().map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo {} failed ({status})", args.join(" ")));
    }
    Ok(artifacts)
}

/// Builds every test harness of the workspace for the backends, and the `selfsup` CLI that
/// the CLI's integration tests run (the matrix uses it to probe backends).
pub fn build_tests(
    backends: &[String],
    provisioned: &Provisioned,
) -> Result<(Vec<Artifact>, PathBuf), String> {
    let artifacts = build(&["test", "--no-run"], backends, provisioned)?;
    let cli = find_cli(&artifacts)?;
    Ok((artifacts.into_iter().filter(|a| a.is_test).collect(), cli))
}

/// Builds the `selfsup` CLI for the backends and returns its path.
pub fn build_cli(backends: &[String], provisioned: &Provisioned) -> Result<PathBuf, String> {
    find_cli(&build(&["build", "--bins"], backends, provisioned)?)
}

/// Builds the `selfsup` CLI with optimisations for the backends and returns its path.
pub fn build_release_cli(
    backends: &[String],
    provisioned: &Provisioned,
) -> Result<PathBuf, String> {
    find_cli(&build_in(
        &["build", "--release"],
        &["-p", "selfsup-cli"],
        backends,
        provisioned,
    )?)
}

/// Builds the `selfsup-bench` binary with optimisations for the backends and returns its path.
pub fn build_bench(backends: &[String], provisioned: &Provisioned) -> Result<PathBuf, String> {
    // The bench has no MPI feature (it is one process); asking for `selfsup-cli/mpi` here
    // would make cargo refuse the build.
    let provisioned = Provisioned {
        mpi: false,
        ..provisioned.clone()
    };
    build_in(
        &["build", "--release"],
        &["-p", "selfsup-bench"],
        backends,
        &provisioned,
    )?
    .into_iter()
    .find(|a| a.target == "selfsup-bench" && !a.is_test)
    .map(|a| a.executable)
    .ok_or_else(|| "cargo built no `selfsup-bench` binary".to_string())
}

fn find_cli(artifacts: &[Artifact]) -> Result<PathBuf, String> {
    artifacts
        .iter()
        .find(|a| a.target == "selfsup" && !a.is_test)
        .map(|a| a.executable.clone())
        .ok_or_else(|| "cargo built no `selfsup` binary".to_string())
}

/// Runs the workspace's doc tests on one backend.
pub fn doc_tests(backends: &[String], provisioned: &Provisioned, backend: &str) -> Command {
    let mut cmd = cargo();
    cmd.args([
        "test",
        "--doc",
        "--workspace",
        "--exclude",
        "xtask",
        "--features",
        &features(backends, provisioned),
    ])
    .env("SELFSUP_BACKEND", backend);
    apply_env(&mut cmd, provisioned);
    cmd
}
