//! `cargo xtask bench`: every workload of `selfsup-bench` on each backend and in the PyTorch
//! reference (`bench/reference/bench.py`), alternating, one process per run; a markdown table
//! of medians, ranges, throughput ratios to PyTorch and peak RSS, appended to
//! `bench/RESULTS.md`.

use crate::cargo::{self, apply_env, workspace_root};
use crate::process::run_with_timeout;
use crate::setup::{self, Provisioned};
use serde_json::Value;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

/// What `cargo xtask bench` was asked.
pub struct Options {
    /// The 2-minute subset: small workloads, few iterations, one round.
    pub quick: bool,
    /// selfsup backends to measure.
    pub backends: Vec<String>,
    /// Alternating rounds per workload (workloads of a single iteration get one).
    pub rounds: usize,
    /// Only these workloads (all when empty).
    pub workloads: Vec<String>,
    /// Measure the PyTorch reference too.
    pub pytorch: bool,
    /// Training images of the end-to-end workload (all when `None`).
    pub limit: Option<usize>,
    /// A line recorded with the results (what changed since the last run, say).
    pub note: Option<String>,
}

/// The quick subset: (workload, warm-up, timed iterations).
const QUICK: [(&str, usize, usize); 6] = [
    ("nt-xent-256", 2, 10),
    ("nt-xent-2048", 1, 2),
    ("triplet-batch-hard-256", 2, 10),
    ("barlow-twins-256", 1, 4),
    ("vicreg-256", 1, 4),
    ("simclr-step", 1, 4),
];

/// The end-to-end workload is skipped on a backend whose measured training throughput says
/// one epoch would take longer than this.
const EPOCH_BUDGET_S: f64 = 20.0 * 60.0;
/// Seconds of timed work after which a process stops iterating (once one iteration is timed),
/// and the wall-clock limit after which it is killed: (full, quick).
const BUDGET_S: (f64, f64) = (90.0, 10.0);
const PROCESS_TIMEOUT: (Duration, Duration) =
    (Duration::from_secs(45 * 60), Duration::from_secs(30));

/// One workload with its iteration counts.
struct Planned {
    name: String,
    warmup: usize,
    iters: usize,
}

/// Every run of one implementation on one workload, merged.
#[derive(Default)]
struct Measured {
    times: Vec<f64>,
    rss_peak: u64,
    extra: Value,
    /// Why there is no measurement (skipped or failed).
    missing: Option<String>,
}

/// `cargo xtask bench`.
pub fn run(options: &Options) -> Result<ExitCode, String> {
    let provisioned = setup::ensure(&options.backends)?;
    let python = if options.pytorch {
        Some(setup::ensure_bench_venv()?)
    } else {
        None
    };
    // Only the backends asked for: a release build of all four takes ~27 minutes on 2 cores.
    let bench = cargo::build_bench(&options.backends, &provisioned)?;
    let plan = plan(&bench, options, &provisioned)?;
    if plan.iter().any(|w| w.name == "simclr-epoch-knn") {
        selfsup_data::fetch::fetch("fashion-mnist", &mut |line| println!("bench: {line}"))?;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut impls: Vec<String> = options.backends.clone();
    if python.is_some() {
        impls.push("pytorch".into());
    }

    let mut results: Vec<(String, Vec<(String, Measured)>)> = Vec::new();
    for workload in &plan {
        let rounds = if workload.iters <= 1 {
            1
        } else {
            options.rounds.max(1)
        };
        let mut row: Vec<(String, Measured)> = impls
            .iter()
            .map(|i| (i.clone(), Measured::default()))
            .collect();
        for round in 0..rounds {
            // Alternate: each round starts with the next implementation.
            for k in 0..impls.len() {
                let slot = (k + round) % impls.len();
                let imp = impls[slot].clone();
                let skip = too_slow(workload, &imp, options, &results);
                let measured = &mut row[slot].1;
                if measured.missing.is_some() {
                    continue;
                }
                if let Some(reason) = skip {
                    measured.missing = Some(reason);
                    continue;
                }
                let cmd = command(
                    &imp,
                    workload,
                    options,
                    threads,
                    &bench,
                    python.as_deref(),
                    &provisioned,
                );
                let label = format!("{} {imp}", workload.name);
                let timeout = if options.quick {
                    PROCESS_TIMEOUT.1
                } else {
                    PROCESS_TIMEOUT.0
                };
                let (ok, output, seconds) = run_with_timeout(cmd, &label, timeout);
                merge(measured, ok, &output);
                if seconds > timeout.as_secs_f64() {
                    measured.missing = Some(format!(
                        "killed after {} s{}",
                        timeout.as_secs(),
                        if options.quick {
                            " (--quick limit)"
                        } else {
                            ""
                        }
                    ));
                }
                println!(
                    "bench: {label} (round {}/{rounds}): {} [{seconds:.0} s]",
                    round + 1,
                    summary(measured)
                );
            }
        }
        results.push((workload.name.clone(), row));
    }

    let table = table(&results);
    println!("\n{table}");
    let section = section(options, threads, &results, &table);
    let path = workspace_root().join("bench").join("RESULTS.md");
    append(&path, &section)?;
    println!("bench: appended to {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// The workloads to run, with counts from `selfsup-bench --list` (or the quick table).
fn plan(
    bench: &Path,
    options: &Options,
    provisioned: &Provisioned,
) -> Result<Vec<Planned>, String> {
    let mut cmd = Command::new(bench);
    cmd.arg("--list");
    apply_env(&mut cmd, provisioned);
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bench.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} --list failed: {}",
            bench.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let listed = String::from_utf8_lossy(&output.stdout);
    let mut plan = Vec::new();
    for line in listed.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [name, "warmup", warmup, "iters", iters, ..] = words.as_slice() else {
            continue;
        };
        let parse = |v: &str| {
            v.parse::<usize>()
                .map_err(|e| format!("--list: {line}: {e}"))
        };
        let (mut warmup, mut iters) = (parse(warmup)?, parse(iters)?);
        if options.quick {
            let Some(&(_, w, i)) = QUICK.iter().find(|q| q.0 == *name) else {
                continue;
            };
            (warmup, iters) = (w, i);
        }
        if options.workloads.is_empty() || options.workloads.iter().any(|w| w == name) {
            plan.push(Planned {
                name: name.to_string(),
                warmup,
                iters,
            });
        }
    }
    if plan.is_empty() {
        return Err(format!(
            "no workload to run; `selfsup-bench --list` printed:\n{listed}"
        ));
    }
    if let Some(unknown) = options
        .workloads
        .iter()
        .find(|w| !plan.iter().any(|p| &p.name == *w))
    {
        return Err(format!(
            "unknown workload '{unknown}' (or not in the --quick subset); valid:\n{listed}"
        ));
    }
    Ok(plan)
}

fn command(
    imp: &str,
    workload: &Planned,
    options: &Options,
    threads: usize,
    bench: &Path,
    python: Option<&Path>,
    provisioned: &Provisioned,
) -> Command {
    let mut cmd = match (imp, python) {
        ("pytorch", Some(python)) => {
            let mut cmd = Command::new(python);
            cmd.arg(workspace_root().join("bench/reference/bench.py"))
                .args(["--threads", &threads.to_string()]);
            cmd
        }
        _ => {
            let mut cmd = Command::new(bench);
            cmd.args(["--backend", imp]);
            cmd
        }
    };
    cmd.arg(&workload.name)
        .args(["--warmup", &workload.warmup.to_string()])
        .args(["--iters", &workload.iters.to_string()])
        .args([
            "--budget-s",
            &(if options.quick {
                BUDGET_S.1
            } else {
                BUDGET_S.0
            })
            .to_string(),
        ])
        .env("RAYON_NUM_THREADS", threads.to_string())
        .env("OMP_NUM_THREADS", threads.to_string());
    if let Some(limit) = options.limit {
        cmd.args(["--limit", &limit.to_string()]);
    }
    apply_env(&mut cmd, provisioned);
    cmd
}

/// The end-to-end epoch is skipped where this run's `simclr-step` throughput predicts it would
/// take longer than [`EPOCH_BUDGET_S`].
fn too_slow(
    workload: &Planned,
    imp: &str,
    options: &Options,
    results: &[(String, Vec<(String, Measured)>)],
) -> Option<String> {
    if workload.name != "simclr-epoch-knn" {
        return None;
    }
    let (_, row) = results.iter().find(|(w, _)| w == "simclr-step")?;
    let (_, step) = row.iter().find(|(i, _)| i == imp)?;
    let per_s = step.extra["images_per_s"].as_f64()?;
    let images = options.limit.map_or(60_000, |limit| limit.min(60_000));
    let epoch_s = images as f64 / per_s;
    (epoch_s > EPOCH_BUDGET_S).then(|| {
        format!(
            "skipped: simclr-step ran at {per_s:.0} images/s, so one epoch would take ≈ {:.0} min",
            epoch_s / 60.0
        )
    })
}

/// Folds one run's output into `measured`.
fn merge(measured: &mut Measured, ok: bool, output: &str) {
    let line = output
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .find(|v| v.get("workload").is_some());
    match line {
        Some(v) if ok => {
            if let Some(reason) = v["skipped"].as_str() {
                measured.missing = Some(format!("skipped: {reason}"));
                return;
            }
            let times = v["times_s"].as_array().cloned().unwrap_or_default();
            measured
                .times
                .extend(times.iter().filter_map(Value::as_f64));
            measured.rss_peak = measured
                .rss_peak
                .max(v["rss_peak_bytes"].as_u64().unwrap_or(0));
            measured.extra = v["extra"].clone();
        }
        _ => {
            let last = output
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no output");
            measured.missing = Some(format!("failed: {}", last.trim()));
        }
    }
}

/// Median and range of a sorted copy.
fn stats(times: &[f64]) -> Option<(f64, f64, f64)> {
    if times.is_empty() {
        return None;
    }
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    let median = if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    };
    Some((median, sorted[0], sorted[sorted.len() - 1]))
}

fn summary(measured: &Measured) -> String {
    match (&measured.missing, stats(&measured.times)) {
        (Some(why), _) => why.clone(),
        (None, Some((median, lo, hi))) => format!(
            "median {} ({} – {}), {} runs",
            duration(median),
            duration(lo),
            duration(hi),
            measured.times.len()
        ),
        (None, None) => "no timings".into(),
    }
}

/// Seconds as ms below 10 s.
fn duration(s: f64) -> String {
    if s < 10.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.1} s")
    }
}

fn table(results: &[(String, Vec<(String, Measured)>)]) -> String {
    let mut out = String::from(
        "| workload | implementation | median | min – max | throughput vs PyTorch | peak RSS | notes |\n\
         |---|---|---:|---:|---:|---:|---|\n",
    );
    for (workload, row) in results {
        let reference = row
            .iter()
            .find(|(i, _)| i == "pytorch")
            .and_then(|(_, m)| stats(&m.times))
            .map(|s| s.0);
        for (k, (imp, m)) in row.iter().enumerate() {
            let name = if k == 0 { workload.as_str() } else { "" };
            let notes = notes(m);
            match stats(&m.times) {
                Some((median, lo, hi)) if m.missing.is_none() => {
                    let ratio = match (imp.as_str(), reference) {
                        ("pytorch", Some(_)) => "1.00×".to_string(),
                        (_, Some(r)) => format!("{:.2}×", r / median),
                        _ => "–".to_string(),
                    };
                    let _ = writeln!(
                        out,
                        "| {name} | {imp} | {} | {} – {} | {ratio} | {:.2} GB | {notes} |",
                        duration(median),
                        duration(lo),
                        duration(hi),
                        m.rss_peak as f64 / 1e9,
                    );
                }
                _ => {
                    let why = m.missing.as_deref().unwrap_or("no timings");
                    let _ = writeln!(out, "| {name} | {imp} | – | – | – | – | {why} |");
                }
            }
        }
    }
    out
}

fn notes(m: &Measured) -> String {
    let e = &m.extra;
    let mut parts = Vec::new();
    if let Some(acc) = e["knn_acc"].as_f64() {
        parts.push(format!("kNN {:.1} %", acc * 100.0));
    }
    if let Some(per_s) = e["images_per_s"].as_f64() {
        parts.push(format!("{per_s:.0} images/s"));
    }
    if let (Some(train), Some(eval)) = (e["train_s"].as_f64(), e["eval_s"].as_f64()) {
        parts.push(format!("train {train:.0} s + eval {eval:.0} s"));
    }
    if let Some(n) = e["train_images"].as_u64() {
        parts.push(format!("{n} training images"));
    }
    parts.join(", ")
}

fn section(
    options: &Options,
    threads: usize,
    results: &[(String, Vec<(String, Measured)>)],
    table: &str,
) -> String {
    let date = run_text(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]));
    let commit = run_text(
        Command::new("git")
            .args(["-C"])
            .arg(workspace_root())
            .args(["describe", "--always", "--dirty"]),
    );
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
        })
        .map_or("?".to_string(), |kb| format!("{:.0} GiB", kb / 1048576.0));
    let torch = results
        .iter()
        .flat_map(|(_, row)| row.iter())
        .find(|(i, _)| i == "pytorch")
        .map(|_| setup::BENCH_REQUIREMENTS[..4].join(", "))
        .unwrap_or_else(|| "PyTorch not measured".into());
    let mode = if options.quick { "quick" } else { "full" };
    let budget = if options.quick {
        BUDGET_S.1
    } else {
        BUDGET_S.0
    };
    let mut out = format!(
        "\n## {date} · `cargo xtask bench{}` · {commit}\n\n\
         {cpu}, {threads} cores, {memory}; every implementation on {threads} threads \
         (RAYON_NUM_THREADS, OMP_NUM_THREADS, torch.set_num_threads). Burn 0.22.1 (release \
         build); reference: {torch} (CPU). Medians over every timed iteration of every round \
         ({mode} mode, {} alternating rounds, warm-up excluded, a process stops iterating after \
         {budget:.0} s once one iteration is timed); throughput vs PyTorch = \
         PyTorch's median / this median (> 1: faster); peak RSS = the process's VmHWM.\n",
        if options.quick { " --quick" } else { "" },
        options.rounds,
    );
    if let Some(note) = &options.note {
        let _ = writeln!(out, "\n{note}");
    }
    out.push('\n');
    out.push_str(table);
    out
}

pub fn run_text(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".into())
}

/// Appends `section` to the results file, creating it with its heading if needed; the old
/// content is never rewritten.
pub fn append(path: &PathBuf, section: &str) -> Result<(), String> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let fresh = !path.exists();
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if fresh {
        file.write_all(b"# Benchmark results\n\nAppended by `cargo xtask bench`; newest last.\n")
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    file.write_all(section.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range() {
        assert_eq!(stats(&[3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(stats(&[4.0, 1.0, 2.0, 3.0]), Some((2.5, 1.0, 4.0)));
        assert_eq!(stats(&[]), None);
    }

    #[test]
    fn merges_rounds_skips_and_failures() {
        let mut m = Measured::default();
        let line = r#"{"workload":"w","impl":"flex","times_s":[0.5,0.25],"rss_peak_bytes":100,"extra":{}}"#;
        merge(&mut m, true, &format!("a warning\n{line}\n"));
        let line =
            r#"{"workload":"w","impl":"flex","times_s":[1.0],"rss_peak_bytes":50,"extra":{}}"#;
        merge(&mut m, true, line);
        assert_eq!(m.times, [0.5, 0.25, 1.0]);
        assert_eq!(m.rss_peak, 100);
        assert!(m.missing.is_none());

        let mut skipped = Measured::default();
        merge(
            &mut skipped,
            true,
            r#"{"workload":"w","impl":"pytorch","skipped":"too big"}"#,
        );
        assert_eq!(skipped.missing.as_deref(), Some("skipped: too big"));

        let mut failed = Measured::default();
        merge(
            &mut failed,
            false,
            "thread 'main' panicked\nout of memory\n",
        );
        assert_eq!(failed.missing.as_deref(), Some("failed: out of memory"));
    }

    #[test]
    fn ratio_is_pytorch_median_over_ours() {
        let measured = |times: Vec<f64>| Measured {
            times,
            rss_peak: 2_000_000_000,
            extra: Value::Null,
            missing: None,
        };
        let results = vec![(
            "w".to_string(),
            vec![
                ("flex".to_string(), measured(vec![0.2, 0.2])),
                ("pytorch".to_string(), measured(vec![0.1])),
            ],
        )];
        let table = table(&results);
        assert!(
            table.contains("| w | flex | 200.0 ms | 200.0 ms – 200.0 ms | 0.50× | 2.00 GB |"),
            "{table}"
        );
        assert!(
            table.contains("|  | pytorch | 100.0 ms | 100.0 ms – 100.0 ms | 1.00× |"),
            "{table}"
        );
    }
}
