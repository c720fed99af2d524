//! The `selfsup` binary as a user runs it: user errors are one line on stderr and exit
//! status 2, never a backtrace.

use std::process::{Command, Output};

fn selfsup(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_selfsup"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("the selfsup binary runs")
}

fn assert_user_error(out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("XDG_RUNTIME_DIR"))
        .collect();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(lines.len(), 1, "one line expected, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(expected), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("stack backtrace"),
        "{stderr}"
    );
}

#[test]
fn info_lists_compiled_backends() {
    let out = selfsup(&["info"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("backends compiled in: flex"), "{stdout}");
    assert!(stdout.contains("flex     usable"), "{stdout}");
}

#[test]
fn unknown_backend_is_a_user_error() {
    assert_user_error(
        &selfsup(&["info", "--require", "metal"]),
        "unknown backend 'metal'",
    );
}

#[test]
fn missing_golden_file_is_a_user_error() {
    assert_user_error(
        &selfsup(&["golden", "/nonexistent/cases.json"]),
        "/nonexistent/cases.json: cannot read",
    );
}

#[test]
fn malformed_golden_file_is_a_user_error() {
    let path = std::env::temp_dir().join(format!("selfsup-cli-bad-{}.json", std::process::id()));
    std::fs::write(&path, "{\"format\": \"selfsup-golden-v1\", \"cases\": [").unwrap();
    let out = selfsup(&["golden", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert_user_error(&out, "not a selfsup-golden-v1 file");
}

#[test]
fn golden_checks_the_shipped_file_on_the_default_backend() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../selfsup-golden/tests/fixtures/losses.json"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_selfsup"))
        .args(["golden", file, "--backends", "flex"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout
            .trim_end()
            .ends_with("golden: 23 passed, 0 failed, 0 not implemented"),
        "{stdout}"
    );
}
