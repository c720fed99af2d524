//! What the CLI test suites share: running the binary, checking its errors, tiny runs.
#![allow(dead_code)]

use std::process::{Command, Output};

pub fn selfsup(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_selfsup"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("the selfsup binary runs")
}

pub fn assert_user_error(out: &Output, expected: &str) {
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

/// A fresh, empty temporary folder for one test.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("selfsup-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The backend the xtask asked for (flex when run by hand).
pub fn backend() -> String {
    std::env::var("SELFSUP_BACKEND").unwrap_or_else(|_| "flex".into())
}

/// A small pretraining run on the embedded digits (8×8): seconds, not minutes. ConvNet-S on
/// flex; the MLP elsewhere, since ndarray's convolutions take minutes for the same run.
pub fn tiny_args(dir: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let backend = backend();
    let encoder = if backend == "flex" {
        "convnet-s"
    } else {
        "mlp"
    };
    let mut args: Vec<String> = [
        "pretrain",
        "--encoder",
        encoder,
        "--dataset",
        "digits",
        "--batch",
        "64",
        "--epochs",
        "2",
        "--probe-epochs",
        "2",
        "--backend",
        &backend,
        "--out",
        dir.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

pub fn tiny_run(dir: &std::path::Path, extra: &[&str]) -> Output {
    let args = tiny_args(dir, extra);
    selfsup(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

pub fn write_png(path: &std::path::Path, pixels: &[u8]) {
    write_png_sized(path, 8, 8, pixels);
}

/// A grayscale PNG of `width × height` pixels.
pub fn write_png_sized(path: &std::path::Path, width: u32, height: u32, pixels: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .unwrap()
        .write_image_data(pixels)
        .unwrap();
}

/// The stdout of a run that must have succeeded, and its summary.json.
pub fn finished_run(out: &Output, dir: &std::path::Path) -> (String, serde_json::Value) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    (stdout, serde_json::from_str(&summary).unwrap())
}
