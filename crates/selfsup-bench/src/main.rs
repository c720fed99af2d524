//! `selfsup-bench`: runs one benchmark workload on one backend and prints one JSON line.
//!
//! `cargo xtask bench` starts this binary once per workload, backend and round (so that peak
//! memory is the workload's own), alternating with the PyTorch reference in
//! `bench/reference/bench.py`, which takes the same arguments and prints the same line:
//!
//! ```text
//! selfsup-bench WORKLOAD --backend flex [--warmup N] [--iters N] [--limit N] [--budget-s S]
//! {"workload":"nt-xent-256","impl":"flex","times_s":[…],"rss_idle_bytes":…,"rss_peak_bytes":…,"extra":{…}}
//! ```
//!
//! `selfsup-bench --list` prints the workloads with their default warm-up and iteration counts.

mod workloads;

use clap::Parser;
use selfsup_backend::Backend;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "selfsup-bench",
    about = "One selfsup benchmark workload, timed"
)]
struct Args {
    /// The workload (see --list).
    #[arg(required_unless_present = "list")]
    workload: Option<String>,
    /// Backend to run on.
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Untimed iterations first (default: the workload's).
    #[arg(long)]
    warmup: Option<usize>,
    /// Timed iterations (default: the workload's).
    #[arg(long)]
    iters: Option<usize>,
    /// Training images for the end-to-end workload (default: all 60,000).
    #[arg(long)]
    limit: Option<usize>,
    /// Stop timing once this many seconds have passed (after at least one timed iteration).
    #[arg(long, value_name = "SECONDS")]
    budget_s: Option<f64>,
    /// Print the workloads and their default counts.
    #[arg(long)]
    list: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for w in workloads::ALL {
            println!(
                "{:<24} warmup {:>2}  iters {:>2}  {}",
                w.name, w.warmup, w.iters, w.about
            );
        }
        return ExitCode::SUCCESS;
    }
    let name = args.workload.as_deref().expect("clap requires it");
    let Some(workload) = workloads::ALL.iter().find(|w| w.name == name) else {
        let names: Vec<&str> = workloads::ALL.iter().map(|w| w.name).collect();
        eprintln!(
            "error: unknown workload '{name}'; valid: {}",
            names.join(", ")
        );
        return ExitCode::from(2);
    };
    let backend = match args
        .backend
        .parse::<Backend>()
        .and_then(Backend::ensure_compiled)
    {
        Ok(backend) => backend,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    selfsup_backend::tune_allocator(backend);
    let device = selfsup_backend::device(backend);
    let settings = workloads::Settings {
        warmup: args.warmup.unwrap_or(workload.warmup),
        iters: args.iters.unwrap_or(workload.iters).max(1),
        limit: args.limit,
        budget_s: args.budget_s.unwrap_or(f64::INFINITY),
    };
    let rss_idle = rss_bytes("VmRSS");
    let result = match (workload.run)(&device, &settings) {
        Ok(result) => result,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let line = serde_json::json!({
        "workload": workload.name,
        "impl": backend.name(),
        "times_s": result.times,
        "rss_idle_bytes": rss_idle,
        "rss_peak_bytes": rss_bytes("VmHWM"),
        "extra": result.extra,
    });
    println!("{line}");
    ExitCode::SUCCESS
}

/// A `/proc/self/status` memory field in bytes (0 where it cannot be read).
fn rss_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let rest = line.strip_prefix(field)?.strip_prefix(':')?;
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        })
        .map_or(0, |kb| kb * 1024)
}
