//! Running a child process with a time limit.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` with stdout and stderr captured together, killing it after `timeout`.
/// Returns whether it succeeded, its output and the seconds it took.
pub fn run_with_timeout(mut cmd: Command, label: &str, timeout: Duration) -> (bool, String, f64) {
    let log = std::env::temp_dir().join(format!(
        "selfsup-xtask-{}-{}.log",
        std::process::id(),
        label.replace([':', '/'], "_")
    ));
    let started = Instant::now();
    let result = fs::File::create(&log).and_then(|file| {
        let err = file.try_clone()?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .spawn()?;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status.success());
            }
            if started.elapsed() > timeout {
                child.kill()?;
                child.wait()?;
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut output = fs::read_to_string(&log).unwrap_or_default();
    let _ = fs::remove_file(&log);
    let success = match result {
        Ok(ok) => ok,
        Err(e) => {
            output.push_str(&format!("\ncould not run {label}: {e}"));
            false
        }
    };
    if seconds > timeout.as_secs_f64() {
        output.push_str(&format!("\n{label} killed after {} s", timeout.as_secs()));
    }
    (success, output, seconds)
}
