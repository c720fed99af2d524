//! Property tests of every reader of user files: arbitrary bytes, and valid files damaged at
//! random, never panic, never allocate beyond the input's size, and end in `Ok` or one
//! `DataError` naming the file.

use std::io::Write;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use selfsup_data::{DataError, idx, images, sources, table};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 192,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The error names `path` and says something on one line.
fn names_the_file(error: &DataError, path: &Path) -> Result<(), TestCaseError> {
    let text = error.to_string();
    prop_assert!(
        text.starts_with(&path.display().to_string()),
        "{text} does not name {}",
        path.display()
    );
    prop_assert!(!text.contains('\n'), "{text}");
    Ok(())
}

/// A valid IDX image file of `n` images of `rows × cols`.
fn idx_images(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, 3];
    for d in [n, rows, cols] {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend((0..n * rows * cols).map(|i| i as u8));
    bytes
}

/// `bytes` with a few positions overwritten, truncated or extended.
fn damaged() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((0usize..64, any::<u8>()), 0..6),
        prop::option::of(0usize..64),
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(edits, cut, tail)| {
            let mut bytes = idx_images(3, 4, 5);
            for (at, value) in edits {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut);
            }
            bytes.extend(tail);
            bytes
        })
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("selfsup-data-fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn idx_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let path = Path::new("fuzz.idx");
        match idx::parse(&bytes, path) {
            Ok(array) => {
                prop_assert_eq!(array.data.len(), array.dims.iter().product::<usize>());
                prop_assert!(array.data.len() <= bytes.len());
            }
            Err(e) => names_the_file(&e, path)?,
        }
    }

    #[test]
    fn damaged_idx_files_never_panic(bytes in damaged()) {
        let path = Path::new("damaged.idx");
        match idx::parse(&bytes, path) {
            Ok(array) => prop_assert!(array.data.len() <= bytes.len()),
            Err(e) => names_the_file(&e, path)?,
        }
    }

    #[test]
    fn csv_text_never_panics(text in "[0-9a-z,;.\\-\\n \t]{0,200}", labelled in any::<bool>()) {
        let path = Path::new("fuzz.csv");
        match table::parse_csv(&text, labelled, path) {
            Ok(table) => {
                prop_assert_eq!(table.features.len(), table.len() * table.columns);
                prop_assert!(table.features.iter().all(|v| v.is_finite()));
            }
            Err(e) => names_the_file(&e, path)?,
        }
    }

    #[test]
    fn csv_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let dir = scratch("csv");
        let path = dir.join("rows.csv");
        std::fs::write(&path, &bytes).unwrap();
        if let Err(e) = table::read_csv(&path, true) {
            names_the_file(&e, &path)?;
        }
        // The same bytes as a "compressed" file: not gzip, or a gzip of garbage.
        let gz = dir.join("rows.csv.gz");
        std::fs::write(&gz, &bytes).unwrap();
        if let Err(e) = table::read_csv(&gz, true) {
            names_the_file(&e, &gz)?;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn idx_folders_of_any_bytes_never_panic(
        files in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 4),
        gzip in any::<bool>(),
    ) {
        let dir = scratch("idx-folder");
        let names = [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ];
        for (name, bytes) in names.iter().zip(&files) {
            if gzip {
                let file = std::fs::File::create(dir.join(format!("{name}.gz"))).unwrap();
                let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
                encoder.write_all(bytes).unwrap();
                encoder.finish().unwrap();
            } else {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
        if let Err(e) = sources::idx_folder(&dir) {
            prop_assert!(e.to_string().contains(&dir.display().to_string()), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn image_folders_of_any_bytes_never_panic(
        files in prop::collection::vec(
            (0usize..3, prop::collection::vec(any::<u8>(), 0..96), any::<bool>()),
            1..6,
        ),
    ) {
        let dir = scratch("images");
        let mut png = Vec::new();
        image::GrayImage::from_raw(4, 4, (0..16).collect())
            .unwrap()
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        for (i, (folder, bytes, valid)) in files.iter().enumerate() {
            let place = match folder {
                0 => dir.clone(),
                k => dir.join(format!("class{k}")),
            };
            std::fs::create_dir_all(&place).unwrap();
            // A real image, or one damaged from its byte `bytes.len()` on.
            let content = if *valid {
                png.clone()
            } else {
                let mut damaged = png.clone();
                damaged.truncate(bytes.len().min(damaged.len()));
                damaged.extend(bytes);
                damaged
            };
            std::fs::write(place.join(format!("{i}.png")), content).unwrap();
        }
        if let Err(e) = images::image_folder(&dir) {
            prop_assert!(e.to_string().contains(&dir.display().to_string()), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
