//! `cargo xtask`: set-up, the cross-backend test matrix and golden checks for selfsup.
//!
//! ```text
//! cargo xtask setup [flex|ndarray|wgpu|tch|all|data|bench|mpi]   provision backends, data, tools
//! cargo xtask test-all [--backends a,b]           the same tests on every backend
//! cargo xtask golden FILE [--backends a,b] [--allow-missing]
//! cargo xtask bench [--quick] [--backends a,b] [--workloads a,b] [--rounds N] [--no-pytorch]
//! cargo xtask quality [--methods a,b] [--epochs N] [--dataset D] [--backend B] [--no-pytorch]
//! cargo xtask outside-app                         build and run a Burn app using selfsup
//! ```

mod bench;
mod cargo;
mod golden;
mod outside_app;
mod process;
mod quality;
mod setup;
mod test_all;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// The backends `test-all` and `golden` use when none are named.
pub const ALL_BACKENDS: [&str; 4] = ["flex", "ndarray", "wgpu", "tch"];

#[derive(Parser, Debug)]
#[command(name = "cargo xtask", about = "selfsup project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Provision what backends need (CPU libtorch 2.9.0 for tch, a Vulkan driver for wgpu),
    /// the full Fashion-MNIST and MNIST (`data`), the PyTorch reference venv (`bench`), or
    /// Open MPI and libclang for multi-process training (`mpi`).
    Setup {
        /// flex, ndarray, wgpu, tch, all (the four backends), data, bench or mpi.
        #[arg(default_value = "all")]
        what: String,
    },
    /// Build once with every requested backend and run the whole test suite on each.
    TestAll {
        /// Comma-separated subset of flex,ndarray,wgpu,tch.
        #[arg(long, value_name = "LIST")]
        backends: Option<String>,
    },
    /// Check every case of a selfsup-golden-v1 file on each backend.
    Golden {
        /// The golden file.
        file: std::path::PathBuf,
        /// Comma-separated subset of flex,ndarray,wgpu,tch.
        #[arg(long, value_name = "LIST")]
        backends: Option<String>,
        /// Do not count loss kinds selfsup lacks as failures.
        #[arg(long)]
        allow_missing: bool,
    },
    /// Benchmark selfsup against the PyTorch reference and append the table to
    /// bench/RESULTS.md.
    Bench {
        /// The 2-minute subset: small workloads, few iterations, one round.
        #[arg(long)]
        quick: bool,
        /// Comma-separated subset of flex,ndarray,wgpu,tch.
        #[arg(long, value_name = "LIST")]
        backends: Option<String>,
        /// Comma-separated workloads (default: all; see `selfsup-bench --list`).
        #[arg(long, value_name = "LIST")]
        workloads: Option<String>,
        /// Alternating rounds per workload (default 3, or 1 with --quick).
        #[arg(long)]
        rounds: Option<usize>,
        /// Skip the PyTorch reference (and its venv set-up).
        #[arg(long)]
        no_pytorch: bool,
        /// Training images for the end-to-end workload (default: all 60,000).
        #[arg(long)]
        limit: Option<usize>,
        /// A line recorded above the table in bench/RESULTS.md.
        #[arg(long)]
        note: Option<String>,
    },
    /// Train every method with its recipe in selfsup and in the PyTorch + lightly reference,
    /// and append the side-by-side table (kNN, linear probe, RankMe, images/s) to
    /// bench/RESULTS.md.
    Quality {
        /// Comma-separated methods (default: simclr, moco, moco-v3, byol, simsiam,
        /// barlow-twins, vicreg, dino).
        #[arg(long, value_name = "LIST")]
        methods: Option<String>,
        /// Epochs of each run.
        #[arg(long, default_value_t = 2)]
        epochs: usize,
        /// fashion-mnist-10k (embedded) or fashion-mnist (the full set, fetched offline).
        #[arg(long, default_value = "fashion-mnist-10k")]
        dataset: String,
        /// The backend selfsup trains on.
        #[arg(long, default_value = "flex")]
        backend: String,
        /// Skip the PyTorch reference.
        #[arg(long)]
        no_pytorch: bool,
    },
    /// Build and run examples/outside-app, a Burn application depending on selfsup as a
    /// user's does (Burn's default features, burn-train, a fresh lock file).
    OutsideApp,
}

/// Parses `--backends`, defaulting to all four.
pub fn backends(list: Option<&str>) -> Result<Vec<String>, String> {
    let Some(list) = list else {
        return Ok(ALL_BACKENDS.iter().map(|s| s.to_string()).collect());
    };
    let mut out: Vec<String> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !ALL_BACKENDS.contains(&name) {
            return Err(format!(
                "unknown backend '{name}' in --backends; valid: {}",
                ALL_BACKENDS.join(", ")
            ));
        }
        if !out.iter().any(|b| b == name) {
            out.push(name.to_string());
        }
    }
    if out.is_empty() {
        return Err(format!("--backends '{list}' names no backend"));
    }
    Ok(out)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup { what } => setup::run(&what).map(|_| ExitCode::SUCCESS),
        Command::TestAll { backends: list } => {
            backends(list.as_deref()).and_then(|b| test_all::run(&b))
        }
        Command::Golden {
            file,
            backends: list,
            allow_missing,
        } => backends(list.as_deref()).and_then(|b| golden::run(&file, &b, allow_missing)),
        Command::Bench {
            quick,
            backends: list,
            workloads,
            rounds,
            no_pytorch,
            limit,
            note,
        } => backends(list.as_deref()).and_then(|backends| {
            bench::run(&bench::Options {
                quick,
                backends,
                rounds: rounds.unwrap_or(if quick { 1 } else { 3 }),
                workloads: workloads
                    .iter()
                    .flat_map(|w| w.split(','))
                    .map(|w| w.trim().to_string())
                    .filter(|w| !w.is_empty())
                    .collect(),
                pytorch: !no_pytorch,
                limit,
                note,
            })
        }),
        Command::Quality {
            methods,
            epochs,
            dataset,
            backend,
            no_pytorch,
        } => backends(Some(&backend)).and_then(|b| {
            quality::run(&quality::Options {
                methods: match methods {
                    Some(list) => list
                        .split(',')
                        .map(|m| m.trim().to_string())
                        .filter(|m| !m.is_empty())
                        .collect(),
                    None => quality::METHODS.iter().map(|m| m.to_string()).collect(),
                },
                epochs,
                dataset,
                backend: b[0].clone(),
                pytorch: !no_pytorch,
            })
        }),
        Command::OutsideApp => outside_app::run(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
