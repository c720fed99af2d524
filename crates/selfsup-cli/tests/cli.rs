//! The `selfsup` binary as a user runs it: user errors are one line on stderr and exit
//! status 2, never a backtrace.

mod common;

use common::*;
use std::process::Command;

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

#[test]
fn pretrain_writes_a_complete_run_and_eval_and_embed_read_it() {
    let dir = scratch("run").join("digits");
    let out = tiny_run(&dir, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("raw pixels") && stdout.contains("linear probe"),
        "{stdout}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    for key in [
        "knn_acc",
        "linear_acc",
        "raw_knn_acc",
        "rankme",
        "images_per_s",
        "wall_s",
    ] {
        let value = summary[key].as_f64().unwrap_or(f64::NAN);
        assert!(value.is_finite() && value > 0.0, "{key} = {value}");
    }
    assert_eq!(summary["epochs"], 2);
    assert_eq!(summary["steps"], 2 * (1200 / 64));
    assert_eq!(summary["backend"], backend());
    // Accuracies are fractions; raw-pixel kNN on digits is far above chance.
    assert!(summary["raw_knn_acc"].as_f64().unwrap() > 0.9);
    let metrics = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 3, "{metrics}");
    let steps = std::fs::read_to_string(dir.join("steps.csv")).unwrap();
    assert_eq!(steps.lines().count(), 1 + 2 * 18);
    for png in ["loss.png", "pca.png"] {
        let bytes = std::fs::read(dir.join(png)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{png}");
    }
    let mut leftovers: Vec<_> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    leftovers.sort();
    assert_eq!(
        leftovers,
        [
            "epoch-0001.bpk",
            "epoch-0001.bpk.sum",
            "epoch-0002.bpk",
            "epoch-0002.bpk.sum",
            "latest",
            "step-00000036"
        ],
        "one checkpoint, the pointer and each epoch's model, no temporary file"
    );

    let out = selfsup(&["eval", dir.to_str().unwrap(), "--metrics", "knn,raw"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let knn: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("knn_acc"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The checkpoint is the final model: eval reproduces pretrain's kNN exactly.
    assert!(
        (knn - summary["knn_acc"].as_f64().unwrap()).abs() < 1e-4,
        "{knn} vs {summary}"
    );

    let npy = dir.join("test.npy");
    embed(&dir, &npy);
    let bytes = std::fs::read(&npy).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    let dim = summary["feature_dim"].as_u64().unwrap() as usize;
    assert!(
        header.contains(&format!("'shape': (597, {dim})")),
        "{header}"
    );
    assert_eq!((10 + header_len) % 64, 0);
    assert_eq!(bytes.len(), 10 + header_len + 597 * dim * 4);
    assert!(dir.join("test.labels.npy").is_file());
    // File names near the file system's 255 bytes: NAME.labels.npy of exactly 255 is written
    // (through a shorter temporary name), one byte more is refused before any work, leaving
    // neither file.
    let parent = dir.parent().unwrap();
    let longest = parent.join(format!("{}.npy", "e".repeat(244)));
    embed(&dir, &longest);
    let labels = parent.join(format!("{}.labels.npy", "e".repeat(244)));
    assert!(longest.is_file() && labels.is_file());
    // Two embeds started at once on one new --out: one writes it, the other replaces nothing.
    let raced = parent.join("raced.npy");
    let start = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_selfsup"))
            .args([
                "embed",
                dir.to_str().unwrap(),
                "--out",
                raced.to_str().unwrap(),
            ])
            .env("SELFSUP_BACKEND", backend())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (start(), start());
    let outcomes = [
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    ];
    let won = outcomes.iter().filter(|o| o.status.success()).count();
    let why: Vec<_> = outcomes
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    assert_eq!(won, 1, "{why:?}");
    assert!(why.iter().any(|e| e.contains("exists")), "{why:?}");
    // Not into the folder the run prunes and fills (a later epoch model of that name).
    let inside = dir.join("checkpoints").join("epoch-0009.bpk");
    assert_user_error(
        &selfsup(&[
            "embed",
            dir.to_str().unwrap(),
            "--out",
            inside.to_str().unwrap(),
        ]),
        "is inside the checkpoints folder of the run",
    );
    assert!(!inside.exists());
    let too_long = parent.join(format!("{}.npy", "f".repeat(245)));
    assert_user_error(
        &selfsup(&[
            "embed",
            dir.to_str().unwrap(),
            "--out",
            too_long.to_str().unwrap(),
        ]),
        "a file name of 256 bytes is too long (at most 255",
    );
    assert!(!too_long.exists());
    let leftovers: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

#[test]
fn pretrain_mistakes_are_one_line_errors() {
    let root = scratch("mistakes");
    assert_user_error(
        &selfsup(&["pretrain", "--method", "simclrr"]),
        "unknown method 'simclrr'",
    );
    assert_user_error(
        &selfsup(&["pretrain", "--dataset", "digits", "--batch", "5000"]),
        "--batch 5000 is larger than the 1200 training samples",
    );
    assert_user_error(
        &selfsup(&["pretrain", "--dataset", "/no/such/folder"]),
        "neither a dataset name",
    );
    // A file is a dataset only as a CSV table (the extension in any case); an IDX file is
    // a part of a folder-dataset.
    let text = root.join("notes.txt");
    std::fs::write(&text, "1,2,3\n").unwrap();
    assert_user_error(
        &selfsup(&["pretrain", "--dataset", text.to_str().unwrap()]),
        "is a file but not a CSV table (its name does not end in .csv)",
    );
    let idx = root.join("train-images-idx3-ubyte");
    std::fs::write(&idx, [0u8, 0, 8, 3]).unwrap();
    assert_user_error(
        &selfsup(&["pretrain", "--dataset", idx.to_str().unwrap()]),
        &format!(
            "is one IDX file; give the folder that holds the four IDX files ({})",
            root.display()
        ),
    );
    // A --config file the run refuses, with the message expected.
    let config = root.join("bad.toml");
    let refused = |text: &str, expected: &str| {
        std::fs::write(&config, text).unwrap();
        assert_user_error(
            &selfsup(&["pretrain", "--config", config.to_str().unwrap()]),
            expected,
        );
    };
    // A `[[views]]` step that is no augmentation is named by view, step and op.
    refused(
        "[[views]]\nsteps = [{ op = \"horizontal_flip\", p = 0.5 }]\n\
         [[views]]\nsteps = [{ op = \"horizontal_flip\", p = 0.5 }, \
         { op = \"resized_crop\", size = [28, 28], scale = [0.3, 1.0] }]\n",
        "views[1].steps[1] (op = \"resized_crop\"): missing field `ratio`",
    );
    refused(
        "[[views]]\nsteps = [{ op = \"gaussian_blurr\", sigma = [0.1, 2.0] }]\n",
        "views[0].steps[0] (op = \"gaussian_blurr\"): unknown variant `gaussian_blurr`",
    );
    let upper = root.join("TINY.CSV");
    std::fs::write(&upper, "a,b,class\n1,2,0\n3,4,1\n").unwrap();
    assert_user_error(
        &selfsup(&["pretrain", "--dataset", upper.to_str().unwrap()]),
        "2 data rows; a run needs at least 10",
    );
    assert_user_error(
        &selfsup(&["pretrain", "--resume"]),
        "--resume needs --out DIR",
    );
    assert_user_error(
        &selfsup(&["pretrain", "--lr", "0"]),
        "--lr must be a positive number, got 0",
    );
    refused("epochs = 2\nlearning_rate = 0.1\n", "learning_rate");
    refused(
        "[[views]]\nsteps = [{ op = \"horizontal_flip\", p = 2.0 }]\n",
        "views[0]: horizontal_flip: p must be in [0, 1], got 2",
    );
    assert_user_error(
        &selfsup(&["eval", root.to_str().unwrap()]),
        "not a selfsup run directory",
    );
    assert_user_error(
        &selfsup(&["data", "fetch", "cifar10"]),
        "cannot fetch 'cifar10'",
    );
    // A folder of someone else's files is never written into.
    let run = root.join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("config.toml"), "method = \"simclr\"\n").unwrap();
    assert_user_error(
        &selfsup(&["pretrain", "--out", run.to_str().unwrap()]),
        "holds files that are not a selfsup run (such as 'config.toml')",
    );
    assert_eq!(
        std::fs::read_to_string(run.join("config.toml")).unwrap(),
        "method = \"simclr\"\n"
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// `selfsup embed DIR --out NPY`, which must succeed.
fn embed(dir: &std::path::Path, npy: &std::path::Path) {
    let out = selfsup(&[
        "embed",
        dir.to_str().unwrap(),
        "--out",
        npy.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A labelled CSV of `rows` rows: 8 features around one of 3 well-separated class centres, the
/// class in the last column, with a header line.
fn clustered_csv(path: &std::path::Path, rows: usize) {
    let mut state = 12345u64;
    let mut noise = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f64 / (1u64 << 31) as f64) - 0.5
    };
    let mut text = String::from("f0,f1,f2,f3,f4,f5,f6,f7,class\n");
    for i in 0..rows {
        let class = i % 3;
        let values: Vec<String> = (0..8)
            .map(|j| {
                let centre = if j % 3 == class { 10.0 } else { 0.0 };
                format!("{:.4}", centre + 2.0 * noise())
            })
            .collect();
        text.push_str(&format!("{},{class}\n", values.join(",")));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn pretrain_learns_from_a_csv_table() {
    let root = scratch("csv");
    let csv = root.join("clusters.csv");
    clustered_csv(&csv, 300);
    let dir = root.join("run");
    let settings = root.join("knn.toml");
    std::fs::write(&settings, "knn_k = 7\n").unwrap();
    let out = selfsup(&[
        "pretrain",
        "--dataset",
        csv.to_str().unwrap(),
        "--config",
        settings.to_str().unwrap(),
        "--batch",
        "32",
        "--epochs",
        "3",
        "--probe-epochs",
        "20",
        "--backend",
        &backend(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    let (stdout, summary) = finished_run(&out, &dir);
    assert!(stdout.contains("raw features"), "{stdout}");
    assert!(stdout.contains("kNN (k=7, cosine)"), "{stdout}");
    assert_eq!(summary["knn_k"], 7);
    assert_eq!(summary["encoder"], "mlp");
    assert_eq!(summary["train_images"], 240);
    assert_eq!(summary["test_images"], 60);
    assert_eq!(summary["steps"], 3 * (240 / 32));
    // Separable clusters: both the raw rows and the learned features must find them; a
    // shuffled label/row pairing or a broken split would sit near chance (1/3).
    for key in ["raw_knn_acc", "knn_acc", "linear_acc"] {
        let acc = summary[key].as_f64().unwrap();
        assert!(acc > 0.8, "{key} = {acc}\n{stdout}");
    }

    let npy = root.join("rows.npy");
    embed(&dir, &npy);
    assert!(npy.is_file());

    // The masked autoencoder's recipe masks 4 × 4 squares; on a table it masks features.
    let masked = root.join("masked");
    let out = selfsup(&[
        "pretrain",
        "--method",
        "masked-autoencoder",
        "--dataset",
        csv.to_str().unwrap(),
        "--batch",
        "32",
        "--epochs",
        "1",
        "--backend",
        &backend(),
        "--out",
        masked.to_str().unwrap(),
    ]);
    finished_run(&out, &masked);
    let config = std::fs::read_to_string(masked.join("config.toml")).unwrap();
    assert!(config.contains("mask_patch = 1"), "{config}");

    assert_user_error(
        &selfsup(&[
            "pretrain",
            "--dataset",
            csv.to_str().unwrap(),
            "--encoder",
            "convnet-s",
        ]),
        "--encoder convnet-s needs images; '",
    );
    let broken = root.join("broken.csv");
    std::fs::write(&broken, "a,b,class\n1,2,0\n3,x,1\n").unwrap();
    assert_user_error(
        &selfsup(&["pretrain", "--dataset", broken.to_str().unwrap()]),
        "broken.csv",
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// Writes an 8×8 grayscale PNG.
#[test]
fn pretrain_on_an_unlabelled_image_folder_reports_label_free_metrics() {
    let root = scratch("unlabelled");
    let images = root.join("images");
    std::fs::create_dir_all(&images).unwrap();
    for i in 0..60u32 {
        // A bright square at one of four places on a dark background.
        let (x0, y0) = ((i % 2) * 4, (i / 2 % 2) * 4);
        let pixels: Vec<u8> = (0..64u32)
            .map(|p| {
                let (x, y) = (p % 8, p / 8);
                let inside = (x0..x0 + 4).contains(&x) && (y0..y0 + 4).contains(&y);
                if inside {
                    200 + (i % 50) as u8
                } else {
                    (i * 7 % 30) as u8
                }
            })
            .collect();
        write_png(&images.join(format!("img{i:03}.png")), &pixels);
    }
    let dir = root.join("run");
    let out = selfsup(&[
        "pretrain",
        "--dataset",
        images.to_str().unwrap(),
        "--encoder",
        "mlp",
        "--batch",
        "16",
        "--epochs",
        "2",
        "--backend",
        &backend(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    let (stdout, summary) = finished_run(&out, &dir);
    assert!(stdout.contains("no labels"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("NaN"), "{stderr}");
    // 60 images, every fifth held out.
    assert_eq!(summary["train_images"], 48);
    assert_eq!(summary["test_images"], 12);
    for key in ["knn_acc", "linear_acc", "raw_knn_acc", "online_probe_acc"] {
        assert!(summary[key].is_null(), "{key} = {}", summary[key]);
    }
    let rankme = summary["rankme"].as_f64().unwrap();
    assert!(rankme >= 1.0 && rankme.is_finite(), "rankme = {rankme}");
    assert!(summary["uniformity"].as_f64().unwrap().is_finite());
    assert_eq!(&std::fs::read(dir.join("pca.png")).unwrap()[1..4], b"PNG");
    let out = selfsup(&["eval", dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("knn_acc      - (needs labels") && stdout.contains("rankme"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn every_family_trains_from_the_cli_with_its_recipe() {
    let root = scratch("families");
    for method in [
        "moco-v3",
        "supcon",
        "triplet",
        "autoencoder",
        "denoising-autoencoder",
        "masked-autoencoder",
    ] {
        let dir = root.join(method);
        let out = tiny_run(&dir, &["--method", method]);
        let (_, summary) = finished_run(&out, &dir);
        assert_eq!(summary["method"], method);
        let knn = summary["knn_acc"].as_f64().unwrap();
        assert!(knn > 0.5, "{method}: kNN {knn} on the digits");
        let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
        let recipe = std::fs::read_to_string(format!(
            "{}/../../recipes/{method}.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        // Every setting of the recipe is in the run's config (flags aside).
        let recipe: toml::Table = toml::from_str(&recipe).unwrap();
        let saved: toml::Table = toml::from_str(&config).unwrap();
        for (key, value) in recipe {
            if key != "epochs" {
                assert_eq!(saved[&key], value, "{method}: {key} in config.toml");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn flags_override_the_config_file_which_overrides_the_recipe() {
    let root = scratch("layers");
    let file = root.join("mine.toml");
    std::fs::write(&file, "method = \"byol\"\nlr = 0.01\nmomentum = 0.9\n").unwrap();
    let dir = root.join("run");
    let out = tiny_run(&dir, &["--config", file.to_str().unwrap(), "--lr", "0.005"]);
    finished_run(&out, &dir);
    let saved: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.join("config.toml")).unwrap()).unwrap();
    assert_eq!(saved["method"].as_str(), Some("byol"));
    assert_eq!(saved["lr"].as_float(), Some(0.005), "the flag wins");
    assert_eq!(saved["momentum"].as_float(), Some(0.9), "the file wins");
    assert_eq!(saved["optimizer"].as_str(), Some("adamw"), "the recipe");
    assert_eq!(saved["lr_schedule"].as_str(), Some("cosine"), "the recipe");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn supcon_without_labels_and_bad_recipe_values_are_one_line_errors() {
    let root = scratch("supcon-unlabelled");
    let images = root.join("images");
    std::fs::create_dir_all(&images).unwrap();
    for i in 0..40u8 {
        write_png(&images.join(format!("{i}.png")), &[i; 64]);
    }
    assert_user_error(
        &selfsup(&[
            "pretrain",
            "--method",
            "supcon",
            "--dataset",
            images.to_str().unwrap(),
            "--batch",
            "8",
            "--out",
            root.join("run").to_str().unwrap(),
        ]),
        "--method supcon trains on class labels",
    );
    assert!(!root.join("run").exists(), "a refused run leaves no folder");
    let file = root.join("bad.toml");
    std::fs::write(&file, "optimizer = \"lars\"\n").unwrap();
    assert_user_error(
        &selfsup(&["pretrain", "--config", file.to_str().unwrap()]),
        "unknown optimizer 'lars' (optimizer in ",
    );
    std::fs::write(&file, "method = \"moco\"\nqueue_size = 16\n").unwrap();
    assert_user_error(
        &selfsup(&["pretrain", "--config", file.to_str().unwrap()]),
        "(16) must hold at least one batch (batch = 128) of MoCo's keys",
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn eval_selects_an_epoch_without_labels() {
    let root = scratch("select");
    let dir = root.join("run");
    finished_run(&tiny_run(&dir, &[]), &dir);
    for epoch in 1..=2 {
        let kept = dir.join(format!("checkpoints/epoch-{epoch:04}.bpk"));
        assert!(kept.is_file(), "{} missing", kept.display());
    }
    let out = selfsup(&[
        "eval",
        dir.to_str().unwrap(),
        "--select",
        "label-free",
        "--metrics",
        "knn,label-free",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("label-free selection over 2 epochs"),
        "{stdout}"
    );
    assert!(stdout.contains("Spearman rho with kNN"), "{stdout}");
    let picked = stdout
        .lines()
        .find_map(|l| l.strip_prefix("checkpoint   "))
        .expect("a checkpoint line");
    assert!(picked.contains("epoch-000"), "picked {picked}");
    assert!(stdout.contains("knn_acc"), "{stdout}");
    assert_user_error(
        &selfsup(&["eval", dir.to_str().unwrap(), "--select", "best"]),
        "--select must be latest or label-free, got 'best'",
    );
    // What the choice needs, deleted: each is named, with the way out.
    let select =
        |dir: &std::path::Path| selfsup(&["eval", dir.to_str().unwrap(), "--select", "label-free"]);
    for epoch in 1..=2 {
        std::fs::remove_file(dir.join(format!("checkpoints/epoch-{epoch:04}.bpk.sum"))).unwrap();
    }
    assert_user_error(
        &select(&dir),
        ".bpk.sum is missing, so", // … the pick cannot be checked: never loaded unchecked
    );
    for epoch in 1..=2 {
        std::fs::remove_file(dir.join(format!("checkpoints/epoch-{epoch:04}.bpk"))).unwrap();
    }
    assert_user_error(
        &select(&dir),
        "(the label-free choice) cannot be evaluated: the run keeps each epoch's model there",
    );
    // No epoch to choose: says whether none finished or every one collapsed.
    let metrics = dir.join("metrics.csv");
    let text = std::fs::read_to_string(&metrics).unwrap();
    let collapsed = text.replace(",false,", ",true,");
    assert_ne!(
        collapsed, text,
        "metrics.csv has a collapsed column: {text}"
    );
    std::fs::write(&metrics, collapsed).unwrap();
    assert_user_error(
        &select(&dir),
        "every one of its 2 finished epochs collapsed or has no RankMe",
    );
    std::fs::write(&metrics, format!("{}\n", text.lines().next().unwrap())).unwrap();
    assert_user_error(&select(&dir), "no epoch has finished yet");
    std::fs::write(&metrics, "").unwrap();
    assert_user_error(&select(&dir), "metrics.csv is empty");
    std::fs::remove_file(dir.join("metrics.csv")).unwrap();
    assert_user_error(
        &select(&dir),
        "metrics.csv is missing: --select label-free chooses among the epochs it lists; use \
         --select latest",
    );
    let _ = std::fs::remove_dir_all(&root);
}
