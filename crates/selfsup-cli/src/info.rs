//! `selfsup info`: which backends this build has and which work here.

use crate::{UserError, parse_backends};
use clap::Args;
use selfsup_backend::{Backend, probe};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Probe only these backends (comma-separated) and exit with status 1 unless all work
    /// (status 2, an error, when one is not compiled into this build).
    #[arg(long, value_name = "LIST")]
    require: Option<String>,
}

pub fn run(args: InfoArgs) -> Result<ExitCode, UserError> {
    let (backends, strict) = match &args.require {
        Some(list) => (parse_backends("--require", list)?, true),
        None => (Backend::compiled(), false),
    };
    println!(
        "selfsup {}; backends compiled in: {}",
        env!("CARGO_PKG_VERSION"),
        Backend::compiled()
            .iter()
            .map(|b| b.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "mpi: {}",
        if cfg!(feature = "mpi") {
            "compiled in (run under mpirun for data-parallel training)"
        } else {
            "not compiled in (cargo feature `mpi`, after `cargo xtask setup mpi`)"
        }
    );
    let mut all_usable = true;
    for backend in backends {
        let found = probe(backend);
        match &found.result {
            Ok(seconds) => println!("{backend:<8} usable (first computation in {seconds:.2} s)"),
            Err(why) => {
                all_usable = false;
                println!("{backend:<8} unusable: {why}");
            }
        }
    }
    for backend in Backend::ALL.into_iter().filter(|b| !b.is_compiled()) {
        if !strict {
            println!("{backend:<8} not compiled in (cargo feature `{backend}`)");
        }
    }
    Ok(if strict && !all_usable {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
