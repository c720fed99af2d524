//! `cargo xtask golden FILE`: builds the CLI for the backends and runs `selfsup golden`.

use crate::cargo::{self, apply_env};
use crate::setup;
use std::path::Path;
use std::process::{Command, ExitCode};

pub fn run(file: &Path, backends: &[String], allow_missing: bool) -> Result<ExitCode, String> {
    // Resolve the path against the caller's directory before cargo runs anywhere else.
    let file = std::path::absolute(file).map_err(|e| format!("{}: {e}", file.display()))?;
    if !file.is_file() {
        return Err(format!("{}: no such file", file.display()));
    }
    let provisioned = setup::ensure(backends)?;
    let cli = cargo::build_cli(&provisioned.build_backends(), &provisioned)?;
    let mut cmd = Command::new(cli);
    cmd.arg("golden")
        .arg(&file)
        .args(["--backends", &backends.join(",")]);
    if allow_missing {
        cmd.arg("--allow-missing");
    }
    apply_env(&mut cmd, &provisioned);
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run selfsup: {e}"))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(code.clamp(1, 255) as u8),
        None => ExitCode::FAILURE,
    })
}
