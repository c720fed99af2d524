//! `cargo xtask quality`: every method trained with its recipe, in selfsup and in the PyTorch +
//! lightly reference (`bench/reference/quality.py`), side by side.

use crate::bench::{append, run_text};
use crate::cargo::{self, apply_env, workspace_root};
use crate::process::run_with_timeout;
use crate::setup;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

/// The methods the reference implements (the CLI's self-supervised ones).
pub const METHODS: [&str; 8] = [
    "simclr",
    "moco",
    "moco-v3",
    "byol",
    "simsiam",
    "barlow-twins",
    "vicreg",
    "dino",
];

/// One training run may take this long before it is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(60 * 60);

pub struct Options {
    pub methods: Vec<String>,
    pub epochs: usize,
    pub dataset: String,
    pub backend: String,
    pub pytorch: bool,
}

/// What one run reported.
#[derive(Default, Clone)]
struct Scores {
    knn: f64,
    linear: f64,
    rankme: f64,
    images_per_s: f64,
    failure: Option<String>,
}

pub fn run(options: &Options) -> Result<ExitCode, String> {
    for method in &options.methods {
        if !METHODS.contains(&method.as_str()) {
            return Err(format!(
                "quality: no reference for method '{method}'; choose from {}",
                METHODS.join(", ")
            ));
        }
    }
    let backends = vec![options.backend.clone()];
    let provisioned = setup::ensure(&backends)?;
    let python = if options.pytorch {
        Some(setup::ensure_bench_venv()?)
    } else {
        None
    };
    if options.dataset != "fashion-mnist-10k" {
        selfsup_data::fetch::fetch(&options.dataset, &mut |line| println!("quality: {line}"))?;
    }
    let cli = cargo::build_release_cli(&backends, &provisioned)?;
    let scratch = std::env::temp_dir().join(format!("selfsup-quality-{}", std::process::id()));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut rows = Vec::new();
    for method in &options.methods {
        let out = scratch.join(method);
        let _ = std::fs::remove_dir_all(&out);
        let mut cmd = Command::new(&cli);
        cmd.args([
            "pretrain",
            "--method",
            method,
            "--dataset",
            &options.dataset,
        ])
        .args(["--epochs", &options.epochs.to_string()])
        .args(["--backend", &options.backend, "--out"])
        .arg(&out);
        apply_env(&mut cmd, &provisioned);
        let label = format!("{method} selfsup");
        let (ok, output, seconds) = run_with_timeout(cmd, &label, RUN_TIMEOUT);
        let ours = if ok {
            read_summary(&out.join("summary.json"))
        } else {
            failed(&output)
        };
        println!("quality: {label}: {} [{seconds:.0} s]", show(&ours));
        let reference = match &python {
            Some(python) => {
                let mut cmd = Command::new(python);
                cmd.arg(workspace_root().join("bench/reference/quality.py"))
                    .arg(method)
                    .args(["--epochs", &options.epochs.to_string()])
                    .args(["--dataset", &options.dataset])
                    .args(["--threads", &threads.to_string()]);
                let label = format!("{method} pytorch+lightly");
                let (ok, output, seconds) = run_with_timeout(cmd, &label, RUN_TIMEOUT);
                let scores = if ok {
                    parse_reference(&output)
                } else {
                    failed(&output)
                };
                println!("quality: {label}: {} [{seconds:.0} s]", show(&scores));
                Some(scores)
            }
            None => None,
        };
        rows.push((method.clone(), ours, reference));
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let table = table(&rows, &options.backend);
    println!("\n{table}");
    let date = run_text(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]));
    let commit = run_text(
        Command::new("git")
            .arg("-C")
            .arg(workspace_root())
            .args(["describe", "--always", "--dirty"]),
    );
    let section = format!(
        "\n## {date} · `cargo xtask quality --epochs {} --dataset {}` · {commit}\n\n\
         Every method with its recipe (`recipes/`), ConvNet-S, batch 128, {} epochs of {}: \
         `selfsup pretrain --method M` on {} beside `bench/reference/quality.py M` (PyTorch + \
         lightly's heads, losses and momentum helpers, the same recipe and views), {threads} \
         threads each. kNN k = 20 (τ 0.1) of the test features against the training features; \
         linear probe 30 epochs of Adam on standardised features; one seed.\n\n{table}",
        options.epochs, options.dataset, options.epochs, options.dataset, options.backend,
    );
    append(&workspace_root().join("bench").join("RESULTS.md"), &section)?;
    let failures = rows
        .iter()
        .filter(|(_, o, r)| o.failure.is_some() || r.as_ref().is_some_and(|r| r.failure.is_some()))
        .count();
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn failed(output: &str) -> Scores {
    let last = output
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output");
    Scores {
        failure: Some(last.trim().to_string()),
        ..Scores::default()
    }
}

fn read_summary(path: &Path) -> Scores {
    let parsed = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    match parsed {
        Some(s) => Scores {
            knn: s["knn_acc"].as_f64().unwrap_or(f64::NAN),
            linear: s["linear_acc"].as_f64().unwrap_or(f64::NAN),
            rankme: s["rankme"].as_f64().unwrap_or(f64::NAN),
            images_per_s: s["images_per_s"].as_f64().unwrap_or(f64::NAN),
            failure: None,
        },
        None => failed(&format!("{} missing or unreadable", path.display())),
    }
}

fn parse_reference(output: &str) -> Scores {
    let line = output
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'));
    match line.and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok()) {
        Some(s) => Scores {
            knn: s["knn_acc"].as_f64().unwrap_or(f64::NAN),
            linear: s["linear_acc"].as_f64().unwrap_or(f64::NAN),
            rankme: s["rankme"].as_f64().unwrap_or(f64::NAN),
            images_per_s: s["images_per_s"].as_f64().unwrap_or(f64::NAN),
            failure: None,
        },
        None => failed(output),
    }
}

fn show(s: &Scores) -> String {
    match &s.failure {
        Some(why) => format!("FAILED: {why}"),
        None => format!(
            "kNN {:.1} %, linear {:.1} %, RankMe {:.1}, {:.0} images/s",
            s.knn * 100.0,
            s.linear * 100.0,
            s.rankme,
            s.images_per_s
        ),
    }
}

fn table(rows: &[(String, Scores, Option<Scores>)], backend: &str) -> String {
    let mut out = format!(
        "| method | kNN selfsup ({backend}) | kNN reference | Δ kNN | linear selfsup | linear \
         reference | RankMe selfsup / reference | images/s selfsup / reference |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    let pct = |s: &Scores, v: f64| match s.failure.as_deref() {
        Some("not run") => "–".to_string(),
        Some(_) => "failed".to_string(),
        None => format!("{:.1} %", v * 100.0),
    };
    for (method, ours, reference) in rows {
        let none = Scores {
            failure: Some("not run".into()),
            ..Scores::default()
        };
        let r = reference.as_ref().unwrap_or(&none);
        let delta = if ours.failure.is_none() && r.failure.is_none() {
            format!("{:+.1}", (ours.knn - r.knn) * 100.0)
        } else {
            "–".into()
        };
        let num = |s: &Scores, v: f64, digits: usize| {
            if s.failure.is_some() {
                "–".to_string()
            } else {
                format!("{v:.digits$}")
            }
        };
        let _ = writeln!(
            out,
            "| {method} | {} | {} | {delta} | {} | {} | {} / {} | {} / {} |",
            pct(ours, ours.knn),
            pct(r, r.knn),
            pct(ours, ours.linear),
            pct(r, r.linear),
            num(ours, ours.rankme, 1),
            num(r, r.rankme, 1),
            num(ours, ours.images_per_s, 0),
            num(r, r.images_per_s, 0)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_references_last_json_line() {
        let out = "warming up\n{\"knn_acc\": 0.786, \"linear_acc\": 0.79, \"rankme\": 23.7, \
                   \"images_per_s\": 431.6, \"train_s\": 46.2}\n";
        let s = parse_reference(out);
        assert!(s.failure.is_none());
        assert_eq!((s.knn, s.linear, s.images_per_s), (0.786, 0.79, 431.6));
        let failed = parse_reference("Traceback ...\nRuntimeError: boom\n");
        assert_eq!(failed.failure.as_deref(), Some("RuntimeError: boom"));
    }

    #[test]
    fn table_shows_the_difference_and_failures() {
        let ours = Scores {
            knn: 0.779,
            linear: 0.803,
            rankme: 25.7,
            images_per_s: 298.0,
            ..Scores::default()
        };
        let reference = Scores {
            knn: 0.786,
            ..ours.clone()
        };
        let rows = vec![
            ("simclr".to_string(), ours.clone(), Some(reference)),
            ("moco".to_string(), failed("killed"), None),
        ];
        let t = table(&rows, "flex");
        assert!(t.contains("| simclr | 77.9 % | 78.6 % | -0.7 |"), "{t}");
        assert!(t.contains("| moco | failed | – | – |"), "{t}");
    }
}
