//! IDX reading, including every way a user's file can be wrong.

use flate2::Compression;
use flate2::write::GzEncoder;
use selfsup_data::idx;
use std::io::Write;
use std::path::PathBuf;

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(data);
    out
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("selfsup-data-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        if name.ends_with(".gz") {
            let mut gz = GzEncoder::new(Vec::new(), Compression::default());
            gz.write_all(bytes).unwrap();
            std::fs::write(&path, gz.finish().unwrap()).unwrap();
        } else {
            std::fs::write(&path, bytes).unwrap();
        }
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn reads_raw_and_gzipped_images_with_labels() {
    let dir = TempDir::new("ok");
    let pixels: Vec<u8> = (0..2 * 3 * 2).collect();
    for suffix in ["", ".gz"] {
        let images = dir.write(&format!("images{suffix}"), &idx_bytes(&[2, 3, 2], &pixels));
        let labels = dir.write(&format!("labels{suffix}"), &idx_bytes(&[2], &[7, 9]));
        let set = idx::read_images(&images, &labels).unwrap();
        assert_eq!((set.len(), set.height, set.width), (2, 3, 2));
        assert_eq!(set.image(1), &[6, 7, 8, 9, 10, 11]);
        assert_eq!(set.labels, vec![7, 9]);
        assert_eq!(set.take(1).pixels, (0..6).collect::<Vec<u8>>());
    }
}

fn error_of(result: Result<impl std::fmt::Debug, selfsup_data::DataError>) -> String {
    result.unwrap_err().to_string()
}

#[test]
fn bad_files_are_errors_naming_the_path_and_the_problem() {
    let dir = TempDir::new("bad");
    let labels = dir.write("labels", &idx_bytes(&[2], &[1, 2]));

    let truncated = dir.write("truncated", &idx_bytes(&[2, 3, 2], &[0; 10]));
    let e = error_of(idx::read_images(&truncated, &labels));
    assert!(e.starts_with(&truncated.display().to_string()), "{e}");
    assert!(
        e.contains("header says [2, 3, 2] = 12 values but the file holds 10"),
        "{e}"
    );

    let not_idx = dir.write("photo.png", b"\x89PNG\r\n\x1a\n....");
    assert!(error_of(idx::read(&not_idx)).contains("not an IDX file (magic 89 50"));

    let floats = dir.write("floats", &[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]);
    assert!(error_of(idx::read(&floats)).contains("type code 0x0d is not supported"));

    let short = dir.write("short", &[0, 0]);
    assert!(error_of(idx::read(&short)).contains("2 bytes is too short"));

    let three = dir.write("three-labels", &idx_bytes(&[3], &[1, 2, 3]));
    let images = dir.write("images", &idx_bytes(&[2, 1, 1], &[5, 6]));
    assert!(error_of(idx::read_images(&images, &three)).contains("3 labels for 2 images"));
    assert!(
        error_of(idx::read_images(&labels, &labels)).contains("expected images [n, rows, cols]")
    );

    let fake_gz = dir.write("fake", b"plain text");
    let renamed = fake_gz.with_extension("gz");
    std::fs::rename(&fake_gz, &renamed).unwrap();
    assert!(error_of(idx::read(&renamed)).contains("not a valid gzip file"));

    let missing = dir.0.join("missing.gz");
    let e = error_of(idx::read(&missing));
    assert!(
        e.starts_with(&missing.display().to_string()) && e.contains("cannot read"),
        "{e}"
    );
}
