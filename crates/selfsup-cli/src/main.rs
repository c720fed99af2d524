//! `selfsup`: the command line of the selfsup library.

mod golden;
mod info;

use clap::{Parser, Subcommand};
use selfsup_backend::Backend;
use std::process::ExitCode;

/// Self-supervised learning for Burn.
#[derive(Parser, Debug)]
#[command(name = "selfsup", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show the backends compiled into this build and whether each works on this machine.
    Info(info::InfoArgs),
    /// Check selfsup's losses against a golden file (selfsup-golden-v1) on one or more backends.
    Golden(golden::GoldenArgs),
}

/// A mistake in what the user asked for: printed as one line, exit status 2.
#[derive(Debug)]
pub struct UserError(pub String);

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a comma-separated backend list, checking each is compiled in.
pub fn parse_backends(list: &str) -> Result<Vec<Backend>, UserError> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let backend = name
            .parse::<Backend>()
            .and_then(Backend::ensure_compiled)
            .map_err(|e| UserError(e.to_string()))?;
        if !out.contains(&backend) {
            out.push(backend);
        }
    }
    if out.is_empty() {
        return Err(UserError(format!(
            "--backends '{list}' names no backend; use e.g. --backends flex,wgpu"
        )));
    }
    Ok(out)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(args) => info::run(args),
        Command::Golden(args) => golden::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
