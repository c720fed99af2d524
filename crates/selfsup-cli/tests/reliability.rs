//! What a careless or hostile user does to the `selfsup` binary: settings that cannot work
//! with the data, damaged run directories, kills at random moments, two processes at once.
//! Each test is one class of the reliability campaign (issue 16): nothing panics, hangs, loses
//! data or reports a wrong result, and every refusal is one line naming the fix.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Raw (uncompressed) IDX files of `n` images of `rows × cols` and their labels.
fn write_idx(dir: &Path, prefix: &str, n: u32, rows: u32, cols: u32) {
    let mut images = vec![0, 0, 8, 3];
    for d in [n, rows, cols] {
        images.extend(d.to_be_bytes());
    }
    images.extend((0..n * rows * cols).map(|i| (i * 37 % 251) as u8));
    let mut labels = vec![0, 0, 8, 1];
    labels.extend(n.to_be_bytes());
    labels.extend((0..n).map(|i| (i % 2) as u8));
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
}

/// A folder of `per_class` 8×8 images in each of two class folders.
fn image_classes(dir: &Path, per_class: u8) {
    for class in ["a", "b"] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for i in 0..per_class {
            let value = if class == "a" { i * 3 } else { 250 - i * 3 };
            write_png(&dir.join(class).join(format!("{i}.png")), &[value; 64]);
        }
    }
}

/// `pretrain` with `args` must refuse with one line containing `expected`, and leave no
/// run folder behind.
fn refused(root: &Path, args: &[&str], expected: &str) {
    let out_dir = root.join("refused-run");
    let mut all = vec![
        "pretrain",
        "--out",
        out_dir.to_str().unwrap(),
        "--epochs",
        "1",
    ];
    all.extend_from_slice(args);
    let started = Instant::now();
    assert_user_error(&selfsup(&all), expected);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{args:?} took {:?} to be refused",
        started.elapsed()
    );
    assert!(
        !out_dir.exists(),
        "a refused start leaves no folder ({args:?})"
    );
}

fn config_file(root: &Path, name: &str, text: &str) -> String {
    let path = root.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn settings_that_cannot_work_with_the_data_are_refused_before_training() {
    let root = scratch("plan");
    let few = root.join("few");
    image_classes(&few, 5);
    let few = few.to_str().unwrap();
    // kNN's k (20) against a bank of 8 training images.
    refused(
        &root,
        &["--dataset", few, "--batch", "4"],
        "is more than the 8 training samples",
    );
    // Views against the method and the encoder.
    let one_view = config_file(
        &root,
        "one-view.toml",
        "[[views]]\nsteps = [{ op = \"horizontal_flip\", p = 0.5 }]\n",
    );
    refused(
        &root,
        &["--dataset", "digits", "--config", &one_view],
        "trains on 2 views per image",
    );
    let small_crop = config_file(
        &root,
        "small-crop.toml",
        "[[views]]\nsteps = [{ op = \"resized_crop\", size = [4, 4], scale = [0.5, 1.0], ratio = [0.75, 1.33] }]\n\
         [[views]]\nsteps = [{ op = \"resized_crop\", size = [4, 4], scale = [0.5, 1.0], ratio = [0.75, 1.33] }]\n",
    );
    refused(
        &root,
        &[
            "--dataset",
            "digits",
            "--encoder",
            "mlp",
            "--config",
            &small_crop,
        ],
        "the MLP encoder takes exactly the data's 8×8",
    );
    // Images too small for the encoder.
    let tiny = root.join("tiny");
    for class in ["a", "b"] {
        std::fs::create_dir_all(tiny.join(class)).unwrap();
        for i in 0..15u8 {
            write_png_sized(
                &tiny.join(class).join(format!("{i}.png")),
                3,
                3,
                &[i * 15; 9],
            );
        }
    }
    refused(
        &root,
        &["--dataset", tiny.to_str().unwrap(), "--batch", "4"],
        "convnet-s needs at least 4×4",
    );
    // Augmentations that would hang, exhaust memory, or blank every view.
    for (name, step, expected) in [
        (
            "blur",
            "{ op = \"gaussian_blur\", sigma = [1e5, 1e5], p = 1.0 }",
            "sigma must be at most 100",
        ),
        (
            "huge",
            "{ op = \"resized_crop\", size = [100000, 100000], scale = [0.5, 1.0], ratio = [0.75, 1.33] }",
            "size must be within 1..=4096",
        ),
        (
            "big",
            "{ op = \"resized_crop\", size = [4000, 4000], scale = [0.5, 1.0], ratio = [0.75, 1.33] }",
            "a training step would need about",
        ),
        (
            "speck",
            "{ op = \"resized_crop\", size = [8, 8], scale = [1e-9, 1e-9], ratio = [0.75, 1.33] }",
            "keeps less than one pixel",
        ),
        (
            "masked",
            "{ op = \"patch_mask\", patch = 2, ratio = 1.0 }",
            "1 hides every patch",
        ),
        (
            "erased",
            "{ op = \"random_erasing\", scale = [1.0, 1.0], ratio = [1.0, 1.0], p = 1.0 }",
            "erases every whole image",
        ),
    ] {
        let file = config_file(
            &root,
            &format!("{name}.toml"),
            &format!("[[views]]\nsteps = [{step}]\n[[views]]\nsteps = [{step}]\n"),
        );
        refused(&root, &["--dataset", "digits", "--config", &file], expected);
    }
    // Datasets whose samples are empty or of two shapes.
    let empty = root.join("empty-idx");
    std::fs::create_dir_all(&empty).unwrap();
    write_idx(&empty, "train", 10, 0, 0);
    write_idx(&empty, "t10k", 4, 0, 0);
    refused(
        &root,
        &["--dataset", empty.to_str().unwrap()],
        "there is nothing to train on",
    );
    let mixed = root.join("mixed-idx");
    std::fs::create_dir_all(&mixed).unwrap();
    write_idx(&mixed, "train", 200, 8, 8);
    write_idx(&mixed, "t10k", 20, 6, 6);
    refused(
        &root,
        &["--dataset", mixed.to_str().unwrap()],
        "both splits must have one shape",
    );
    // Images beside class folders belong to no class.
    let loose = root.join("loose");
    image_classes(&loose, 10);
    write_png(&loose.join("stray.png"), &[9; 64]);
    refused(
        &root,
        &["--dataset", loose.to_str().unwrap(), "--batch", "4"],
        "1 image(s) beside them (such as stray.png)",
    );
    // Images far larger than any training size are refused, not trained on at full size.
    let giant = root.join("giant");
    for path in ["a/0.png", "a/1.png", "b/0.png"] {
        std::fs::create_dir_all(giant.join(path).parent().unwrap()).unwrap();
        write_png_sized(&giant.join(path), 5000, 5000, &vec![0; 25_000_000]);
    }
    refused(
        &root,
        &["--dataset", giant.to_str().unwrap(), "--batch", "4"],
        "resize the images first",
    );
    // Heads whose widths multiply into gigabytes.
    let wide = config_file(
        &root,
        "wide.toml",
        "hidden_dim = 65536\nprojection_dim = 65536\n",
    );
    refused(
        &root,
        &["--dataset", "digits", "--config", &wide],
        "a training step would need about",
    );
    let bright = config_file(
        &root,
        "bright.toml",
        "[[views]]\nsteps = [{ op = \"color_jitter\", brightness = 1e308, contrast = 0.1, p = 1.0 }]\n",
    );
    refused(
        &root,
        &["--dataset", "digits", "--config", &bright],
        "brightness must be in [0, 10]",
    );
    // A train/ folder without its test/ folder.
    let half = root.join("half");
    image_classes(&half.join("train"), 5);
    refused(
        &root,
        &["--dataset", half.to_str().unwrap()],
        "has train/ but no test/",
    );
    // A config that is a device or a huge file is refused, not read into memory.
    refused(&root, &["--config", "/dev/zero"], "is a device, not a file");
    let huge = root.join("huge.toml");
    std::fs::write(&huge, "# padding\n".repeat(120_000)).unwrap();
    refused(
        &root,
        &["--config", huge.to_str().unwrap()],
        "is larger than 1 MiB",
    );
    // A gzip that inflates far beyond what its IDX header announces.
    let bomb = root.join("bomb");
    std::fs::create_dir_all(&bomb).unwrap();
    write_idx(&bomb, "t10k", 20, 8, 8);
    let mut header = vec![0u8, 0, 8, 3];
    for d in [10u32, 8, 8] {
        header.extend(d.to_be_bytes());
    }
    {
        use std::io::Write;
        let file = std::fs::File::create(bomb.join("train-images-idx3-ubyte.gz")).unwrap();
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        gz.write_all(&header).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            gz.write_all(&zeros).unwrap();
        }
        gz.finish().unwrap();
    }
    std::fs::copy(
        bomb.join("t10k-labels-idx1-ubyte"),
        bomb.join("train-labels-idx1-ubyte"),
    )
    .unwrap();
    refused(
        &root,
        &["--dataset", bomb.to_str().unwrap()],
        "decompresses to more than the 640 values its header announces",
    );
    // A CSV with another separator.
    let semicolons = root.join("semicolons.csv");
    std::fs::write(&semicolons, "a;b;label\n1;2;0\n3;4;1\n").unwrap();
    refused(
        &root,
        &["--dataset", semicolons.to_str().unwrap()],
        "fields are separated by ';'",
    );
    // A decimal comma inside quotes is cut in two by the comma split.
    let quoted = root.join("quoted.csv");
    std::fs::write(&quoted, "a,b,label\n\"1,5\",2,0\n3,4,1\n").unwrap();
    refused(
        &root,
        &["--dataset", quoted.to_str().unwrap()],
        "line 2: 4 fields, expected 3; a quoted field holds a comma",
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// A short run of the MLP encoder on `dataset`, which must succeed; its stderr.
fn trains(root: &Path, dataset: &Path) -> String {
    let run = root.join("run");
    let _ = std::fs::remove_dir_all(&run);
    let out = selfsup(&[
        "pretrain",
        "--dataset",
        dataset.to_str().unwrap(),
        "--encoder",
        "mlp",
        "--batch",
        "16",
        "--epochs",
        "1",
        "--probe-epochs",
        "1",
        "--backend",
        &backend(),
        "--out",
        run.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{dataset:?}: {stderr}");
    stderr
}

/// Data of unusual shapes trains, and whatever was done to it on the way in is said.
#[test]
fn non_square_and_mixed_size_images_train_and_resizing_is_said() {
    let root = scratch("shapes");
    // Non-square IDX images: the preset's views keep their 8×12 shape, which the MLP encoder
    // takes exactly (the preset used to crop them square and the MLP refused its own views).
    let wide = root.join("wide-idx");
    std::fs::create_dir_all(&wide).unwrap();
    write_idx(&wide, "train", 64, 8, 12);
    write_idx(&wide, "t10k", 16, 8, 12);
    let stderr = trains(&root, &wide);
    assert!(!stderr.contains("resized"), "{stderr}");
    // One image of another size among 8×8 ones: resized, and a warning says so.
    let odd = root.join("odd-size");
    image_classes(&odd, 15);
    write_png_sized(&odd.join("b").join("3.png"), 12, 10, &[7; 120]);
    let stderr = trains(&root, &odd);
    assert!(
        stderr.contains("warning: ")
            && stderr.contains("1 of its 30 images is not 8×8")
            && stderr.contains("3.png is 10×12") // height × width, as every message says
            && stderr.contains("resized to 8×8"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// The third campaign's data-loss and wrong-result classes: outputs onto the user's files or
/// another run's, a run inside its own dataset, an edited config.toml under `--resume`, the
/// wall time of a resumed run.
#[test]
fn outputs_never_replace_what_the_user_has_and_edited_runs_are_not_resumed() {
    let root = scratch("third-campaign");
    let run = root.join("run");
    let (_, first) = finished_run(&tiny_run(&run, &[]), &run);
    // embed --out onto a file that is not its own output, or into a run: refused, intact.
    let mine = root.join("notes.txt");
    std::fs::write(&mine, "mine").unwrap();
    let run_arg = run.to_str().unwrap();
    assert_user_error(
        &selfsup(&["embed", run_arg, "--out", mine.to_str().unwrap()]),
        "embed writes only new files",
    );
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "mine");
    let other = root.join("other");
    finished_run(&tiny_run(&other, &[]), &other);
    let config = other.join("config.toml");
    let before = std::fs::read(&config).unwrap();
    assert_user_error(
        &selfsup(&["embed", run_arg, "--out", config.to_str().unwrap()]),
        "is a file of the run",
    );
    assert_eq!(std::fs::read(&config).unwrap(), before);
    // A new run inside the folder it trains on would train later runs on its pictures.
    let images = root.join("images");
    image_classes(&images, 15);
    let inside = images.join("run");
    assert_user_error(
        &selfsup(&[
            "pretrain",
            "--dataset",
            images.to_str().unwrap(),
            "--out",
            inside.to_str().unwrap(),
        ]),
        "is inside the dataset folder",
    );
    assert!(!inside.exists(), "a refused start leaves no folder");
    // config.toml edited behind the checkpoint's back: refused, not resumed on other settings.
    let text = std::fs::read_to_string(other.join("config.toml")).unwrap();
    let edited = text.replace("seed = 0", "seed = 7");
    assert_ne!(text, edited, "the run's config has a seed line");
    std::fs::write(other.join("config.toml"), &edited).unwrap();
    assert_user_error(
        &selfsup(&[
            "pretrain",
            "--resume",
            "--out",
            other.to_str().unwrap(),
            "--epochs",
            "2",
        ]),
        "says other settings than the run was checkpointed with",
    );
    // eval and embed check the same: no report on settings the run was not trained with.
    assert_user_error(
        &selfsup(&["eval", other.to_str().unwrap(), "--metrics", "knn"]),
        "says other settings than the run was checkpointed with",
    );
    // A run's pointer made a link to a device: never read (it would not end).
    let pointer = run.join("checkpoints").join("latest");
    let kept = std::fs::read(&pointer).unwrap();
    std::fs::remove_file(&pointer).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &pointer).unwrap();
    let out = selfsup(&["eval", run_arg, "--metrics", "knn"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&pointer).unwrap();
    std::fs::write(&pointer, kept).unwrap();
    // FIFOs as inputs are refused, not opened (which would wait forever for a writer).
    let fifo = |path: &Path| {
        assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
    };
    let config_fifo = root.join("config.toml");
    fifo(&config_fifo);
    refused(
        &root,
        &["--config", config_fifo.to_str().unwrap()],
        "is a FIFO (named pipe), not a file",
    );
    let golden_fifo = root.join("golden.json");
    fifo(&golden_fifo);
    assert_user_error(
        &selfsup(&["golden", golden_fifo.to_str().unwrap()]),
        "not a regular file",
    );
    let csv_fifo = root.join("table.csv");
    fifo(&csv_fifo);
    refused(
        &root,
        &["--dataset", csv_fifo.to_str().unwrap()],
        "is a FIFO (named pipe), not a file",
    );
    fifo(&images.join("a").join("zz.png"));
    refused(
        &root,
        &["--dataset", images.to_str().unwrap()],
        "is a FIFO (named pipe), not a file",
    );
    // A resumed run's wall time includes the first process's.
    let resumed = selfsup(&["pretrain", "--resume", "--out", run_arg, "--epochs", "3"]);
    let (_, after) = finished_run(&resumed, &run);
    assert!(
        after["wall_s"].as_f64().unwrap() > first["wall_s"].as_f64().unwrap(),
        "{first} / {after}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn messages_name_what_the_user_typed_with_short_numbers() {
    let root = scratch("messages");
    refused(
        &root,
        &["--lr", "-1"],
        "--lr must be a positive number, got -1",
    );
    refused(
        &root,
        &["--lr=1e300"],
        "--lr must be at most 1 (Adam and AdamW), got 1e300",
    );
    refused(
        &root,
        &["--temperature", "0"],
        "--temperature must be a positive number, got 0",
    );
    refused(
        &root,
        &["--temperature", "1e-40"],
        "--temperature must be at least 1e-4",
    );
    // The argument parser's mistakes are one line too.
    refused(&root, &["--batch", "-1"], "invalid value '-1' for '--batch");
    refused(&root, &["--probe-epochs", "1.5"], "not a whole number ≥ 0");
    refused(
        &root,
        &["--seed", "99999999999999999999"],
        "too large a number",
    );
    // `-inf` is a value, not the short options `-i -n -f`.
    refused(
        &root,
        &["--lr", "-inf"],
        "--lr must be a positive number, got -inf",
    );
    assert_user_error(&selfsup(&[]), "which command?");
    assert_user_error(&selfsup(&["data"]), "give `data fetch");
    refused(
        &root,
        &["--no-such-flag"],
        "unexpected argument '--no-such-flag'",
    );
    // A path with a newline is shown escaped: still one line.
    assert_user_error(&selfsup(&["eval", "no\nsuch"]), "no\\nsuch");
    // A value from a --config file is named as its key there, not as a flag.
    let missing = config_file(&root, "missing.toml", "dataset = \"no-such-png16\"\n");
    refused(
        &root,
        &["--config", &missing],
        &format!("dataset in {missing} 'no-such-png16' is neither a dataset name"),
    );
    let file = config_file(&root, "bad.toml", "hidden_dim = 0\n");
    refused(
        &root,
        &["--config", &file],
        &format!("hidden_dim in {file} must be at least 1, got 0"),
    );
    // `-` is not standard output, and never a file of that name.
    assert_user_error(
        &selfsup(&["pretrain", "--out", "-"]),
        "selfsup writes files, not standard output",
    );
    assert_user_error(
        &selfsup(&["embed", "no-such-run", "--out", "-"]),
        "selfsup writes files, not standard output",
    );
    assert!(!Path::new("-").exists());
    // A run's config.toml given for the run.
    let file = config_file(&root, "config.toml", "");
    assert_user_error(
        &selfsup(&["eval", &file]),
        &format!(
            "{file} is a file; give the run's folder ({})",
            root.display()
        ),
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// `selfsup ARGS` with environment variables set (`Some`) or removed (`None`).
fn with_env(args: &[&str], vars: &[(&str, Option<&str>)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_selfsup"));
    cmd.args(args);
    for (name, value) in vars {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    cmd.output().unwrap()
}

#[test]
fn the_environment_selfsup_reads_is_checked_and_named() {
    let root = scratch("environment");
    let no_cache = [("SELFSUP_CACHE", None), ("XDG_CACHE_HOME", None)];
    assert_user_error(
        &with_env(&["info"], &[("SELFSUP_OWN_KERNELS", Some("banana"))]),
        "SELFSUP_OWN_KERNELS=banana is neither on nor off; give 1",
    );
    // Without HOME the cache is not a folder relative to wherever selfsup was started.
    let mut vars = no_cache.to_vec();
    vars.push(("HOME", None));
    assert_user_error(
        &with_env(&["pretrain", "--dataset", "mnist"], &vars),
        "HOME is not set, and selfsup keeps its datasets in HOME/.cache/selfsup; set \
         SELFSUP_CACHE=DIR",
    );
    let nowhere = root.join("no-such-home");
    let mut vars = no_cache.to_vec();
    vars.push(("HOME", nowhere.to_str()));
    assert_user_error(
        &with_env(&["data", "fetch", "mnist"], &vars),
        &format!("HOME ({}) is not a folder", nowhere.display()),
    );
    assert!(!nowhere.exists(), "a fetch created {}", nowhere.display());
    // A file where the cache should be is named as such, by pretrain and by data fetch.
    let file = config_file(&root, "cache-file", "");
    for args in [
        &["pretrain", "--dataset", "mnist"][..],
        &["data", "fetch", "mnist"],
    ] {
        assert_user_error(
            &with_env(args, &[("SELFSUP_CACHE", Some(&file))]),
            &format!("{file} (from SELFSUP_CACHE) is a file, not a folder"),
        );
    }
    // Without XDG_RUNTIME_DIR (for wgpu's Vulkan loader) one private folder per user is made
    // and kept, not one per process left behind on every start.
    let tmp = root.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    for _ in 0..2 {
        let out = with_env(
            &["info"],
            &[("XDG_RUNTIME_DIR", None), ("TMPDIR", tmp.to_str())],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let made: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().collect();
    assert_eq!(made.len(), 1, "{made:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = made[0].metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{:?}: {mode:o}", made[0].path());
    }
    // More rayon threads than cores are cut to the cores (10000 threads took minutes for a
    // run of two steps), with a warning.
    let run = root.join("threads");
    let args = with_value(tiny_args(&run, &["--limit", "64"]), "--epochs", "1");
    let args = with_value(args, "--probe-epochs", "1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = with_env(&args, &[("RAYON_NUM_THREADS", Some("100000"))]);
    finished_run(&out, &run);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: RAYON_NUM_THREADS=100000 is more than this machine's"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_golden_runner_reports_a_panicking_case_on_stdout_only() {
    let root = scratch("golden-panic");
    let file = config_file(
        &root,
        "cases.json",
        r#"{"format": "selfsup-golden-v1", "generated_by": "hand-written for this test",
            "cases": [{"name": "negative-temperature", "loss": "nt_xent", "reference": "-",
              "params": {"temperature": -1.0},
              "inputs": {"z_a": {"shape": [2, 2], "data": [1, 0, 0, 1]},
                         "z_b": {"shape": [2, 2], "data": [1, 0, 0, 1]}},
              "int_inputs": {}, "expected": {"loss": 0.0, "grad": {}}}]}"#,
    );
    let out = selfsup(&["golden", &file, "--backends", "flex"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("negative-temperature"), "{stdout}");
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains("golden: 0 passed, 1 failed"), "{stdout}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// `args` with the value after `flag` replaced.
fn with_value(mut args: Vec<String>, flag: &str, value: &str) -> Vec<String> {
    let at = args
        .iter()
        .position(|a| a == flag)
        .expect("the flag is there")
        + 1;
    args[at] = value.to_string();
    args
}

/// Starts a tiny run in the background.
fn spawn_run(dir: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_selfsup"))
        .args(tiny_args(dir, extra))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn steps_done(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("steps.csv"))
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

/// Waits until the run in `dir` has logged `steps` steps.
fn wait_for_steps(dir: &Path, steps: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while steps_done(dir) < steps {
        assert!(Instant::now() < deadline, "the run made no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn run_directories_are_locked_and_never_block_a_retry() {
    let root = scratch("rundir");
    let dir = root.join("run");
    // While a run trains, no second process gets in.
    let long = with_value(tiny_args(&dir, &[]), "--epochs", "50");
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_selfsup"))
        .args(&long)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_steps(&dir, 1);
    let out = selfsup(&["pretrain", "--resume", "--out", dir.to_str().unwrap()]);
    assert_user_error(&out, "another selfsup process (pid ");
    // A second start there is refused too: by the lock, or (on a backend fast enough to
    // have checkpointed already) because the folder holds a run.
    let second = selfsup(&long);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("another selfsup process (pid ") || stderr.contains("already holds a run"),
        "{stderr}"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    // Killed before its first checkpoint (batches of 4: 300 steps to the first one), the
    // folder does not block a new start there.
    let fresh = root.join("fresh");
    let args = with_value(tiny_args(&fresh, &[]), "--batch", "4");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_selfsup"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_steps(&fresh, 1);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !fresh.join("checkpoints").join("latest").exists(),
        "killed too late to test a retry"
    );
    let out = tiny_run(&fresh, &[]);
    finished_run(&out, &fresh);
    assert_eq!(steps_done(&fresh), 36, "the retry started afresh");
    let dir = fresh;

    // embed writes NAME.labels.npy beside --out: a user's file of that name is not replaced.
    let mine = root.join("user.labels.npy");
    std::fs::write(&mine, "mine").unwrap();
    let out = selfsup(&[
        "embed",
        dir.to_str().unwrap(),
        "--out",
        root.join("user.npy").to_str().unwrap(),
    ]);
    assert_user_error(&out, "exists and embed would replace it");
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "mine");

    // Outputs never replace special files.
    let fifo = root.join("fifo.npy");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let out = selfsup(&[
        "embed",
        dir.to_str().unwrap(),
        "--out",
        fifo.to_str().unwrap(),
    ]);
    assert_user_error(&out, "is a special file");
    assert!(
        std::os::unix::fs::FileTypeExt::is_fifo(
            &std::fs::symlink_metadata(&fifo).unwrap().file_type()
        ),
        "the FIFO is still there"
    );
    // Errors name the file the user asked for, never a temporary one.
    let missing = root.join("no-such-folder").join("z.npy");
    let out = selfsup(&[
        "embed",
        dir.to_str().unwrap(),
        "--out",
        missing.to_str().unwrap(),
    ]);
    assert_user_error(&out, "no-such-folder/z.npy");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(".tmp"));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_run_with_a_relative_dataset_is_evaluated_from_anywhere() {
    let root = scratch("relative");
    image_classes(&root.join("images"), 20);
    let out = Command::new(env!("CARGO_BIN_EXE_selfsup"))
        .current_dir(&root)
        .args([
            "pretrain",
            "--dataset",
            "images",
            "--encoder",
            "mlp",
            "--batch",
            "8",
            "--epochs",
            "1",
            "--probe-epochs",
            "1",
            "--temperature",
            "0.005",
            "--backend",
            &backend(),
            "--out",
            "run",
        ])
        .output()
        .unwrap();
    finished_run(&out, &root.join("run"));
    // A suspicious value is allowed, with a warning.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: --temperature = 0.005 is outside the usual"),
        "{stderr}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_selfsup"))
        .current_dir("/")
        .args([
            "eval",
            root.join("run").to_str().unwrap(),
            "--metrics",
            "knn",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("knn_acc"));

    // A dataset that moved: the message says where the path came from and how to give the
    // new place, which eval and embed then check against what was trained.
    let (images, moved) = (root.join("images"), root.join("moved"));
    std::fs::rename(&images, &moved).unwrap();
    let run = root.join("run");
    let run = run.to_str().unwrap();
    ends_in_error(
        &selfsup(&["eval", run, "--metrics", "knn"]),
        "config.toml names; if it moved, or was fetched into another SELFSUP_CACHE, give its \
         place with --dataset PATH",
    );
    let out = selfsup(&[
        "eval",
        run,
        "--metrics",
        "knn",
        "--dataset",
        moved.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let npy = root.join("moved.npy");
    let out = selfsup(&[
        "embed",
        run,
        "--out",
        npy.to_str().unwrap(),
        "--dataset",
        moved.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Other data at the new place is refused.
    write_png(&moved.join("b").join("0.png"), &[13; 64]);
    ends_in_error(
        &selfsup(&["eval", run, "--dataset", moved.to_str().unwrap()]),
        "changed since the run in",
    );
    std::fs::remove_dir_all(&moved).unwrap();
    image_classes(&images, 20);

    // A dataset that grew (more steps per epoch now) is named as changed data, not as an
    // edited progress.json.
    for i in 20..28 {
        write_png(&images.join("a").join(format!("{i}.png")), &[i * 5; 64]);
    }
    ends_in_error(
        &resume(&root.join("run"), &["--epochs", "2"]),
        "changed since the run in",
    );
    for i in 20..28 {
        std::fs::remove_file(images.join("a").join(format!("{i}.png"))).unwrap();
    }

    // The same folder with one image redrawn (same name, size and count) is other data: a
    // resume refuses it instead of training on.
    write_png(&root.join("images").join("a").join("3.png"), &[77; 64]);
    let out = resume(&root.join("run"), &["--epochs", "2"]);
    // (After the saved config's own temperature warning.)
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: the data in") && last.contains("changed since the run in"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("pretraining"),
        "refused before any work: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_limit_keeps_every_class_one_class_is_warned_and_a_kernel_switch_is_said() {
    let root = scratch("limit");
    let images = root.join("images");
    image_classes(&images, 20);
    let k = config_file(&root, "k.toml", "knn_k = 3\n");
    let run = root.join("run");
    let backend = backend();
    let args = [
        "pretrain",
        "--dataset",
        images.to_str().unwrap(),
        "--limit",
        "8",
        "--encoder",
        "mlp",
        "--batch",
        "4",
        "--epochs",
        "1",
        "--probe-epochs",
        "1",
        "--config",
        &k,
        "--backend",
        &backend,
        "--out",
        run.to_str().unwrap(),
    ];
    let out = with_env(&args, &[("SELFSUP_OWN_KERNELS", Some("1"))]);
    finished_run(&out, &run);
    // The folder is read class by class: the first 8 images would all be class a.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("no training sample"), "{stderr}");
    assert!(stderr.contains("(8 training samples"), "{stderr}");
    // Resumed with the other kernels: said, since the steps are no longer bit-identical.
    let out = with_env(
        &[
            "pretrain",
            "--resume",
            "--out",
            run.to_str().unwrap(),
            "--epochs",
            "2",
        ],
        &[("SELFSUP_OWN_KERNELS", Some("off"))],
    );
    finished_run(&out, &run);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "warning: the run was trained with SELFSUP_OWN_KERNELS=1 (on), and resumes with 0 \
             (off)"
        ),
        "{stderr}"
    );
    // A table whose every row is class 3: accuracies of 100 % say nothing, and a warning
    // says so.
    let csv = root.join("one-class.csv");
    let rows: String = (0..100)
        .map(|i| format!("{},{},3\n", i % 7, (i * 3) % 11))
        .collect();
    std::fs::write(&csv, format!("a,b,label\n{rows}")).unwrap();
    let run = root.join("one-class");
    let out = selfsup(&[
        "pretrain",
        "--dataset",
        csv.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch",
        "16",
        "--probe-epochs",
        "1",
        "--backend",
        &backend,
        "--out",
        run.to_str().unwrap(),
    ]);
    finished_run(&out, &run);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: every training sample has label 3: with one class"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// A refusal (exit 2) whose last line is the error containing `expected`, after any warnings
/// (a run's saved settings may warn on every start).
fn ends_in_error(out: &std::process::Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains(expected),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn copy_dir(from: &Path, to: &Path) {
    assert!(
        Command::new("cp")
            .arg("-r")
            .arg(from)
            .arg(to)
            .status()
            .unwrap()
            .success()
    );
}

fn resume(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["pretrain", "--resume", "--out", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    selfsup(&args)
}

#[test]
fn damaged_checkpoints_are_never_used_and_never_deleted() {
    let root = scratch("damage");
    let run = root.join("run");
    let out = tiny_run(&run, &["--checkpoint-every", "10"]);
    let (_, summary) = finished_run(&out, &run);
    let step = |dir: &Path| dir.join("checkpoints").join("step-00000036");

    // Resuming a finished run reports what it reported, the online probe included.
    let again = root.join("again");
    copy_dir(&run, &again);
    let (_, resumed) = finished_run(&resume(&again, &[]), &again);
    for key in ["online_probe_acc", "knn_acc", "steps"] {
        assert_eq!(resumed[key], summary[key], "{key}");
    }

    // `latest` missing: the newest intact checkpoint is used, nothing restarts at step 0.
    let pointer = root.join("pointer");
    copy_dir(&run, &pointer);
    std::fs::remove_file(pointer.join("checkpoints").join("latest")).unwrap();
    let out = resume(&pointer, &["--epochs", "3"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    finished_run(&out, &pointer);
    assert!(stderr.contains("is missing; using"), "{stderr}");
    assert!(stderr.contains("from step 36"), "{stderr}");
    assert_eq!(steps_done(&pointer), 54);

    // An edited progress.json fails its checksum: refused, and the checkpoint stays.
    let edited = root.join("edited");
    copy_dir(&run, &edited);
    let progress = step(&edited).join("progress.json");
    let text = std::fs::read_to_string(&progress).unwrap();
    std::fs::write(
        &progress,
        text.replace("\"step\": 36", "\"step\": 99999999"),
    )
    .unwrap();
    assert_user_error(&resume(&edited, &["--epochs", "3"]), "no intact checkpoint");
    assert!(progress.is_file(), "the damaged checkpoint is not deleted");

    // The same edit with the manifest's sums redone is no damage: the message says what the
    // progress file claims, and that its checksums match.
    let resummed = root.join("resummed");
    copy_dir(&edited, &resummed);
    let checkpoint = step(&resummed);
    let edited_text = std::fs::read(checkpoint.join("progress.json")).unwrap();
    let manifest_path = checkpoint.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    for file in manifest["files"].as_array_mut().unwrap() {
        if file["name"] == "progress.json" {
            file["bytes"] = edited_text.len().into();
            file["crc32"] = crc32fast::hash(&edited_text).into();
        }
    }
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    assert_user_error(
        &resume(&resummed, &["--epochs", "3"]),
        "says step 99999999, but its folder is step 36; its checksums match",
    );

    // A truncated model file: eval refuses with one line; the file is left for the user.
    let torn = root.join("torn");
    copy_dir(&run, &torn);
    let model = step(&torn).join("model.bpk");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    assert_user_error(
        &selfsup(&["eval", torn.to_str().unwrap()]),
        "none complete with matching checksums",
    );
    assert!(model.is_file());
    // A damaged epoch model chosen by --select: named as damaged.
    let torn_latest = root.join("torn-epoch");
    copy_dir(&run, &torn_latest);
    std::fs::write(
        torn_latest.join("checkpoints").join("epoch-0001.bpk"),
        b"not a record",
    )
    .unwrap();
    std::fs::write(
        torn_latest.join("checkpoints").join("epoch-0002.bpk"),
        b"not a record",
    )
    .unwrap();
    assert_user_error(
        &selfsup(&[
            "eval",
            torn_latest.to_str().unwrap(),
            "--select",
            "label-free",
        ]),
        "the file is damaged or truncated",
    );

    // A marked run's checkpoint without its manifest is not trusted.
    let unsummed = root.join("unsummed");
    copy_dir(&run, &unsummed);
    std::fs::remove_file(step(&unsummed).join("manifest.json")).unwrap();
    assert_user_error(
        &selfsup(&["eval", unsummed.to_str().unwrap()]),
        "none complete with matching checksums",
    );
    // A checkpoint folder renamed to another step is not that step's checkpoint.
    let renamed = root.join("renamed");
    copy_dir(&run, &renamed);
    std::fs::rename(
        step(&renamed),
        renamed.join("checkpoints").join("step-00000099"),
    )
    .unwrap();
    std::fs::write(renamed.join("checkpoints").join("latest"), "step-00000099").unwrap();
    assert_user_error(
        &selfsup(&["eval", renamed.to_str().unwrap()]),
        "says step 36, but its folder is step 99; its checksums match",
    );
    // A kept epoch model edited in place fails its checksum.
    let edited_epoch = root.join("edited-epoch");
    copy_dir(&run, &edited_epoch);
    for epoch in ["epoch-0001.bpk", "epoch-0002.bpk"] {
        let path = edited_epoch.join("checkpoints").join(epoch);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 100;
        bytes[at] ^= 0x40;
        std::fs::write(&path, bytes).unwrap();
    }
    assert_user_error(
        &selfsup(&[
            "eval",
            edited_epoch.to_str().unwrap(),
            "--select",
            "label-free",
        ]),
        "fails its checksum",
    );
    // Outputs never replace the run's own files.
    let out = selfsup(&[
        "embed",
        run.to_str().unwrap(),
        "--out",
        run.join("config.toml").to_str().unwrap(),
    ]);
    assert_user_error(&out, "is a file of the run");
    // A resume cannot shorten a run below the epochs it has finished.
    assert_user_error(
        &resume(&run, &["--epochs", "1"]),
        "--epochs 1 is fewer than the 2 epochs",
    );
    // --resume only continues a selfsup run.
    let foreign = root.join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::copy(run.join("config.toml"), foreign.join("config.toml")).unwrap();
    std::fs::write(foreign.join("metrics.csv"), "mine").unwrap();
    assert_user_error(&resume(&foreign, &[]), "is not a selfsup run");
    assert_eq!(
        std::fs::read_to_string(foreign.join("metrics.csv")).unwrap(),
        "mine"
    );

    // A saved config edited to nonsense is named as that file's key, not as a flag.
    let config = root.join("config");
    copy_dir(&run, &config);
    let path = config.join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("batch = 64", "batch = 0")).unwrap();
    assert_user_error(
        &selfsup(&["eval", config.to_str().unwrap()]),
        &format!("batch in {} must be at least 1, got 0", path.display()),
    );

    // Paths the run must write that became something else are refused before training,
    // naming the path (not found an epoch later).
    let blocked = root.join("blocked");
    copy_dir(&run, &blocked);
    let latest = blocked.join("checkpoints").join("latest");
    std::fs::remove_file(&latest).unwrap();
    std::fs::create_dir(&latest).unwrap();
    assert_user_error(
        &resume(&blocked, &["--epochs", "3"]),
        &format!("{} is not a file", latest.display()),
    );
    let filed = root.join("filed");
    copy_dir(&run, &filed);
    std::fs::remove_dir_all(filed.join("checkpoints")).unwrap();
    std::fs::write(filed.join("checkpoints"), "not a folder").unwrap();
    let out = resume(&filed, &["--epochs", "3"]);
    assert_user_error(&out, "checkpoints is not a folder");
    let linked = root.join("linked");
    copy_dir(&run, &linked);
    std::fs::rename(linked.join("checkpoints"), root.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(root.join("elsewhere"), linked.join("checkpoints")).unwrap();
    let out = resume(&linked, &["--epochs", "3"]);
    assert_user_error(
        &out,
        "checkpoints is a symbolic link (the run renames checkpoints",
    );

    // A run whose config.toml was deleted is still called a run, and the fix is named.
    let unconfigured = root.join("unconfigured");
    copy_dir(&run, &unconfigured);
    std::fs::remove_file(unconfigured.join("config.toml")).unwrap();
    let without = format!(
        "{} is a selfsup run without its config.toml (deleted or moved?); restore it",
        unconfigured.display()
    );
    assert_user_error(&resume(&unconfigured, &["--epochs", "3"]), &without);
    assert_user_error(
        &selfsup(&["eval", unconfigured.to_str().unwrap()]),
        &without,
    );

    // A dataset that is gone is named as gone, not as a changed setting.
    assert_user_error(
        &resume(&run, &["--dataset", root.join("gone").to_str().unwrap()]),
        "does not exist; the run in",
    );

    // A new run inside another run's folder is refused.
    let inner = run.join("checkpoints").join("inner");
    assert_user_error(&tiny_run(&inner, &[]), "is inside the run");
    assert!(!inner.exists());

    // metrics.csv deleted, or edited: the run continues from its checkpoint, says what is
    // missing, and keeps a copy of what was there.
    let lost = root.join("lost");
    copy_dir(&run, &lost);
    std::fs::remove_file(lost.join("metrics.csv")).unwrap();
    let out = resume(&lost, &["--epochs", "3"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    finished_run(&out, &lost);
    assert!(
        stderr.contains("metrics.csv is missing: the 2 rows before the resume point are lost"),
        "{stderr}"
    );
    let garbled = root.join("garbled");
    copy_dir(&run, &garbled);
    std::fs::write(garbled.join("metrics.csv"), "my notes\n1,2,3\n").unwrap();
    let out = resume(&garbled, &["--epochs", "3"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    finished_run(&out, &garbled);
    assert!(
        stderr.contains("does not start with selfsup's header"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(garbled.join("metrics.csv.before-resume")).unwrap(),
        "my notes\n1,2,3\n"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_run_killed_at_random_moments_ends_with_the_weights_of_an_uninterrupted_one() {
    // Bit-identical weights are promised on flex (deterministic CPU kernels).
    if backend() != "flex" {
        return;
    }
    let root = scratch("random-kills");
    let whole = root.join("whole");
    let (_, want) = finished_run(&tiny_run(&whole, &["--checkpoint-every", "3"]), &whole);

    let killed = root.join("killed");
    // Kill moments drawn from the clock (different on every run of the test), each at least
    // a few steps after the last resume, so that every resume has something to redo.
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut random = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut child = spawn_run(&killed, &["--checkpoint-every", "3"]);
    let mut kills = 0;
    while kills < 3 {
        let done = steps_done(&killed);
        wait_for_steps(&killed, (done + 1).min(36));
        std::thread::sleep(Duration::from_millis(50 + random(400)));
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        child = Command::new(env!("CARGO_BIN_EXE_selfsup"))
            .args(["pretrain", "--resume", "--out", killed.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    }
    child.wait().unwrap();
    // Whatever moment the last kill hit, one more resume finishes the run.
    let (_, got) = finished_run(&resume(&killed, &[]), &killed);
    assert!(kills > 0, "the run finished before any kill");
    assert_eq!(
        std::fs::read_to_string(whole.join("steps.csv")).unwrap(),
        std::fs::read_to_string(killed.join("steps.csv")).unwrap(),
        "the per-step losses differ after {kills} kills"
    );
    // Per-epoch means cover every step of the epoch, not only those after a resume; only the
    // throughput (last column) may differ.
    let metrics = |dir: &Path| {
        std::fs::read_to_string(dir.join("metrics.csv"))
            .unwrap()
            .lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(metrics(&whole), metrics(&killed));
    // The model files differ in the parameter ids a fresh process draws; the weights must
    // not: the encoder's features of every training image, bit for bit.
    let features = |dir: &Path| {
        let npy = dir.join("train.npy");
        let out = selfsup(&[
            "embed",
            dir.to_str().unwrap(),
            "--split",
            "train",
            "--out",
            npy.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read(npy).unwrap()
    };
    assert!(
        features(&whole) == features(&killed),
        "the final weights differ after {kills} kills"
    );
    for key in [
        "knn_acc",
        "linear_acc",
        "online_probe_acc",
        "rankme",
        "steps",
    ] {
        assert_eq!(got[key], want[key], "{key}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// The campaign's fifth round: a reader that goes away, `eval` beside a training run, a run
/// folder inside an image dataset, links and FIFOs among a run's outputs.
#[test]
fn pipes_readers_beside_training_and_outputs_that_are_links() {
    let root = scratch("fifth");

    // A closed stdout ends the process quietly, as for any Unix tool: no panic, no bug report.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_selfsup"))
        .arg("info")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("internal error") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert_ne!(out.status.code(), Some(101), "{stderr}");

    // eval while the run saves a checkpoint every step and prunes the older ones.
    let dir = root.join("training");
    let long = with_value(
        tiny_args(&dir, &["--checkpoint-every", "1"]),
        "--epochs",
        "50",
    );
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_selfsup"))
        .args(&long)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !dir.join("checkpoints").join("latest").exists() {
        assert!(Instant::now() < deadline, "no checkpoint written");
        std::thread::sleep(Duration::from_millis(10));
    }
    for _ in 0..3 {
        let out = selfsup(&["eval", dir.to_str().unwrap(), "--metrics", "knn"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // A run written inside an image folder is no class of it.
    let images = root.join("images");
    image_classes(&images, 20);
    let counts = |stdout: &str| {
        stdout
            .lines()
            .find(|l| l.contains(" train / "))
            .and_then(|l| l.split(['(', ')']).nth(1))
            .map(str::to_string)
            .unwrap_or_default()
    };
    let images_run = |name: &str| {
        let out = selfsup(&[
            "pretrain",
            "--dataset",
            images.to_str().unwrap(),
            "--encoder",
            "mlp",
            "--batch",
            "16",
            "--epochs",
            "1",
            "--probe-epochs",
            "1",
            "--backend",
            &backend(),
            "--out",
            root.join(name).to_str().unwrap(),
        ]);
        finished_run(&out, &root.join(name)).0
    };
    let before = counts(&images_run("before"));
    let out = tiny_run(&images.join("run"), &[]);
    finished_run(&out, &images.join("run"));
    let after = counts(&images_run("after"));
    assert!(!before.is_empty(), "no image counts in the output");
    assert_eq!(before, after, "the run folder was read as a class");

    // A run's outputs that are a link or a FIFO are refused on resume, and kept as they were.
    let run = images.join("run");
    let mine = root.join("mine.csv");
    std::fs::write(&mine, "the user's own file").unwrap();
    let metrics = std::fs::read(run.join("metrics.csv")).unwrap();
    std::fs::remove_file(run.join("metrics.csv")).unwrap();
    std::os::unix::fs::symlink(&mine, run.join("metrics.csv")).unwrap();
    assert_user_error(&resume(&run, &["--epochs", "3"]), "is a symbolic link");
    assert!(
        std::fs::symlink_metadata(run.join("metrics.csv"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(&mine).unwrap(),
        "the user's own file"
    );
    std::fs::remove_file(run.join("metrics.csv")).unwrap();
    std::fs::write(run.join("metrics.csv"), metrics).unwrap();
    std::fs::remove_file(run.join("loss.png")).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(run.join("loss.png"))
            .status()
            .unwrap()
            .success()
    );
    assert_user_error(&resume(&run, &["--epochs", "3"]), "loss.png is not a file");
    let _ = std::fs::remove_dir_all(&root);
}
