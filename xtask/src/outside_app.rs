//! `cargo xtask outside-app`: builds and runs `examples/outside-app`, a Burn application that
//! depends on selfsup the way a user's does (its own workspace, Burn with default features and
//! burn-train, a fresh lock file), with only the workaround the README gives.

use crate::cargo::workspace_root;
use crate::setup::cache_dir;
use std::process::{Command, ExitCode};

/// The README's workaround: burn-train 0.22.1's default `sys-metrics` does not compile against
/// systemstat 0.2.8 (a `RefCell<Option<File>>` that must be shared between threads).
const PINS: [(&str, &str); 1] = [("systemstat", "0.2.7")];

pub fn run() -> Result<ExitCode, String> {
    let app = workspace_root().join("examples").join("outside-app");
    // Its own target directory: its feature set (Burn's defaults) differs from the workspace's,
    // and sharing one would rebuild Burn for each in turn.
    let target = cache_dir().join("outside-app-target");
    let cargo = |args: &[&str]| {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(&app)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("CARGO_MANIFEST_DIR")
            .args(args);
        println!("xtask outside-app: cargo {}", args.join(" "));
        cmd.status()
            .map_err(|e| format!("cannot run cargo: {e}"))
            .map(|status| status.success())
    };
    // A new user's lock file: the newest compatible versions of everything.
    let _ = std::fs::remove_file(app.join("Cargo.lock"));
    if !cargo(&["generate-lockfile"])? {
        return Err("cargo generate-lockfile failed for examples/outside-app".into());
    }
    for (package, version) in PINS {
        if !cargo(&["update", "-p", package, "--precise", version])? {
            println!("xtask outside-app: {package} is not in the graph any more; no pin needed");
        }
    }
    if !cargo(&["run", "--quiet"])? {
        return Err(
            "examples/outside-app (a Burn app with selfsup, built as a user would) failed; the \
             README's dependency lines need the fix this shows"
                .into(),
        );
    }
    Ok(ExitCode::SUCCESS)
}
