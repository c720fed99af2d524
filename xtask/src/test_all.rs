//! `cargo xtask test-all`: the same tests, compiled once, run on every backend.

use crate::cargo::{self, Artifact, apply_env};
use crate::process::run_with_timeout;
use crate::setup::{self, Provisioned};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// A test binary that runs longer than this is killed and counted as failed.
const BINARY_TIMEOUT: Duration = Duration::from_secs(20 * 60);

#[derive(Default, Clone, Copy)]
struct Counts {
    passed: usize,
    failed: usize,
    ignored: usize,
    seconds: f64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
        self.seconds += other.seconds;
    }
}

pub fn run(backends: &[String]) -> Result<ExitCode, String> {
    let started = Instant::now();
    // MPI for the distributed tests; without it they say so and the rest runs.
    if let Err(e) = setup::ensure_mpi() {
        println!("xtask: {e}; the distributed (mpirun) tests will not run");
    }
    let provisioned = setup::ensure(backends)?;
    let (tests, cli) = cargo::build_tests(&provisioned.build_backends(), &provisioned)?;
    println!(
        "xtask: {} test binaries built in {:.0} s",
        tests.len(),
        started.elapsed().as_secs_f64()
    );

    let mut rows: Vec<(String, Counts)> = Vec::new();
    let mut unusable = Vec::new();
    for backend in backends {
        if let Err(why) = probe(&cli, backend, &provisioned) {
            println!("xtask: {backend} is unusable on this machine: {why}");
            unusable.push(backend.clone());
            continue;
        }
        println!("xtask: running the tests on {backend}");
        let mut row = Counts::default();
        for test in &tests {
            row.add(run_binary(test, backend, &provisioned));
        }
        // Doc examples are tests too; rustdoc compiles them as one merged binary per crate.
        row.add(run_doc_tests(
            &provisioned.build_backends(),
            &provisioned,
            backend,
        ));
        rows.push((backend.clone(), row));
    }

    print_table(&rows);
    println!(
        "xtask: test-all took {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
    let mut total = Counts::default();
    for (_, c) in &rows {
        total.add(*c);
    }
    for backend in &unusable {
        println!("{backend}: UNUSABLE (see above)");
    }
    let skipped = if total.ignored > 0 {
        format!(", {} skipped", total.ignored)
    } else {
        String::new()
    };
    println!("{} passed, {} failed{skipped}", total.passed, total.failed);
    Ok(if total.failed == 0 && unusable.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn probe(cli: &Path, backend: &str, provisioned: &Provisioned) -> Result<(), String> {
    let mut cmd = Command::new(cli);
    cmd.args(["info", "--require", backend]);
    apply_env(&mut cmd, provisioned);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cli.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let reason = text
        .lines()
        .find(|l| l.contains("unusable"))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}{}", text, String::from_utf8_lossy(&out.stderr)));
    Err(reason.trim().to_string())
}

/// Runs one test binary on one backend.
fn run_binary(test: &Artifact, backend: &str, provisioned: &Provisioned) -> Counts {
    let mut cmd = Command::new(&test.executable);
    cmd.env("SELFSUP_BACKEND", backend)
        .env("RUST_BACKTRACE", "0");
    apply_env(&mut cmd, provisioned);
    run_and_count(cmd, &format!("{}::{}", test.package, test.target), backend)
}

/// Runs a libtest command and counts its results; prints its output when something failed.
fn run_and_count(cmd: Command, label: &str, backend: &str) -> Counts {
    let (success, output, seconds) = run_with_timeout(cmd, label, BINARY_TIMEOUT);
    let mut counts = parse_libtest(&output);
    counts.seconds = seconds;
    if !success && counts.failed == 0 {
        // Crashed, timed out or aborted before libtest could summarise.
        counts.failed = 1;
    }
    if counts.failed > 0 {
        println!("---- {label} on {backend} ----\n{output}");
    }
    counts
}

/// Sums libtest's `test result:` lines.
fn parse_libtest(output: &str) -> Counts {
    let mut counts = Counts::default();
    for line in output.lines().filter(|l| l.starts_with("test result:")) {
        for part in line.split([';', '.']) {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(n)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<usize>() else { continue };
            match what {
                "passed" => counts.passed += n,
                "failed" => counts.failed += n,
                "ignored" => counts.ignored += n,
                _ => {}
            }
        }
    }
    counts
}

fn run_doc_tests(backends: &[String], provisioned: &Provisioned, backend: &str) -> Counts {
    run_and_count(
        cargo::doc_tests(backends, provisioned, backend),
        "doc-tests",
        backend,
    )
}

fn print_table(rows: &[(String, Counts)]) {
    println!();
    println!("| backend      | passed | failed | ignored | seconds |");
    println!("|--------------|-------:|-------:|--------:|--------:|");
    for (name, c) in rows {
        println!(
            "| {name:<12} | {:>6} | {:>6} | {:>7} | {:>7.1} |",
            c.passed, c.failed, c.ignored, c.seconds
        );
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::parse_libtest;

    #[test]
    fn sums_libtest_summaries() {
        let out = "running 3 tests\n\
                   test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s\n\
                   test result: FAILED. 2 passed; 4 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.50s\n";
        let c = parse_libtest(out);
        assert_eq!((c.passed, c.failed, c.ignored), (5, 4, 1));
    }
}
