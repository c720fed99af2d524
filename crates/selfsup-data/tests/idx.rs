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
        e.contains("header says 2×3×2 = 12 values but the file holds 10"),
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

    // Gzipped: a header that is not IDX is refused before anything else is inflated, one that
    // announces more than the reader takes is refused by its count, and data beyond the
    // announced count is called corrupt (not a misleading "holds N").
    let mut not_idx = b"\x89PNG".to_vec();
    not_idx.extend(vec![0xff; 1 << 20]);
    let png_gz = dir.write("photo.gz", &not_idx);
    assert!(error_of(idx::read(&png_gz)).contains("not an IDX file (magic 89 50"));
    let huge = dir.write("huge.gz", &idx_bytes(&[60_000, 60_000, 60_000], &[0; 64]));
    let e = error_of(idx::read(&huge));
    assert!(
        e.contains("announces 216000000000000 values, more than selfsup reads"),
        "{e}"
    );
    let longer = dir.write("longer.gz", &idx_bytes(&[2, 3, 2], &[0; 4096]));
    let e = error_of(idx::read(&longer));
    assert!(
        e.contains("decompresses to more than the 12 values its header announces"),
        "{e}"
    );
    let short_gz = dir.write("truncated.gz", &idx_bytes(&[2, 3, 2], &[0; 10]));
    let e = error_of(idx::read(&short_gz));
    assert!(
        e.contains("header says 2×3×2 = 12 values but the file holds 10"),
        "{e}"
    );

    let missing = dir.0.join("missing.gz");
    let e = error_of(idx::read(&missing));
    assert!(
        e.starts_with(&missing.display().to_string()) && e.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn a_file_both_raw_and_gzipped_is_read_when_equal_and_refused_when_not() {
    let dir = TempDir::new("both");
    let images = idx_bytes(&[2, 2, 2], &[1, 2, 3, 4, 5, 6, 7, 8]);
    let labels = idx_bytes(&[2], &[0, 1]);
    for prefix in ["train", "t10k"] {
        for suffix in ["", ".gz"] {
            dir.write(&format!("{prefix}-images-idx3-ubyte{suffix}"), &images);
            dir.write(&format!("{prefix}-labels-idx1-ubyte{suffix}"), &labels);
        }
    }
    // As `gunzip -k` leaves them: the same bytes twice.
    let split = selfsup_data::sources::idx_folder(&dir.0).unwrap();
    assert_eq!(split.train.image(1), &[5, 6, 7, 8]);
    // Another dataset of the same shape put beside the archive: which one is meant is unknown.
    dir.write(
        "t10k-images-idx3-ubyte",
        &idx_bytes(&[2, 2, 2], &[9, 9, 9, 9, 9, 9, 9, 9]),
    );
    let e = error_of(selfsup_data::sources::idx_folder(&dir.0));
    assert!(
        e.contains("both t10k-images-idx3-ubyte and t10k-images-idx3-ubyte.gz")
            && e.contains("different data"),
        "{e}"
    );
}

mod image_folders {
    use selfsup_data::images::{image_folder, image_folder_with_warnings};
    use std::path::Path;

    fn write_png(path: &Path, size: u32, value: u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::GrayImage::from_pixel(size, size, image::Luma([value]))
            .save(path)
            .unwrap();
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("selfsup-images-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn images_are_read_by_content_and_a_damaged_one_is_named_in_one_line() {
        let dir = scratch("content");
        for i in 0..5 {
            write_png(&dir.join("a").join(format!("{i}.png")), 6, 20);
        }
        // JPEGs named .png, as a renamed download is.
        let mut jpeg = Vec::new();
        image::GrayImage::from_pixel(6, 6, image::Luma([200]))
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        std::fs::create_dir_all(dir.join("b")).unwrap();
        for i in 0..5 {
            std::fs::write(dir.join("b").join(format!("{i}.png")), &jpeg).unwrap();
        }
        let split = image_folder(&dir).unwrap();
        assert_eq!((split.train.len(), split.test.len()), (8, 2));
        let b = split.test.image(1);
        assert!(b.iter().all(|&p| p.abs_diff(200) < 8), "{b:?}");
        // Cut in half: the header reads, the pixels do not.
        std::fs::write(dir.join("b").join("3.png"), &jpeg[..jpeg.len() / 2]).unwrap();
        let e = image_folder(&dir).unwrap_err().to_string();
        assert!(
            e.contains("3.png: cannot decode image") && !e.contains('\n') && !e.contains("\\n"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn class_folders_split_every_fifth_image_and_resize() {
        let dir = scratch("classes");
        for (class, value) in [("cat", 10u8), ("dog", 200)] {
            for i in 0..5 {
                // One odd-sized image: it is resized to the others' 6×6.
                let size = if class == "dog" && i == 2 { 9 } else { 6 };
                write_png(&dir.join(class).join(format!("{i}.png")), size, value);
            }
        }
        let split = image_folder(&dir).unwrap();
        assert_eq!((split.train.len(), split.test.len()), (8, 2));
        assert_eq!(
            (split.train.height, split.train.width, split.train.channels),
            (6, 6, 1)
        );
        assert_eq!(split.train.classes, 2);
        assert_eq!(split.test.labels, vec![0, 1]);
        assert!(split.train.image(6).iter().all(|&p| p == 200), "dog pixels");
        assert!(split.test.image(0).iter().all(|&p| p == 10), "cat pixels");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn images_take_the_common_size_and_colour_and_the_resizing_is_reported() {
        let dir = scratch("sizes");
        // The first image in name order is the odd one: the folder's common size wins.
        write_png(&dir.join("a").join("0.png"), 9, 50);
        for i in 1..5 {
            write_png(&dir.join("a").join(format!("{i}.png")), 4, 50);
        }
        // One colour image among grayscale ones: the set is RGB, and its red survives.
        std::fs::create_dir_all(dir.join("b")).unwrap();
        image::RgbImage::from_pixel(4, 4, image::Rgb([200, 0, 0]))
            .save(dir.join("b").join("0.png"))
            .unwrap();
        let (split, warnings) = image_folder_with_warnings(&dir).unwrap();
        assert_eq!(
            (split.train.height, split.train.width, split.train.channels),
            (4, 4, 3)
        );
        let red = split.train.image(split.train.len() - 1);
        assert!(red[..16].iter().all(|&p| p == 200) && red[16..].iter().all(|&p| p == 0));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let w = &warnings[0];
        assert!(
            w.contains("1 of its 6 images is not 4×4")
                && w.contains("0.png is 9×9")
                && w.contains("resized to 4×4"),
            "{w}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        let same = scratch("same");
        for i in 0..3 {
            write_png(&same.join(format!("{i}.png")), 5, 1);
        }
        assert_eq!(
            image_folder_with_warnings(&same).unwrap().1,
            Vec::<String>::new()
        );
        // A class folder without images is no class (labels stay 0 and 1), and is named.
        for i in 0..3 {
            std::fs::remove_file(same.join(format!("{i}.png"))).unwrap();
        }
        write_png(&same.join("yy").join("0.png"), 5, 1);
        write_png(&same.join("zz").join("0.png"), 5, 2);
        std::fs::create_dir_all(same.join("aa-empty")).unwrap();
        let (split, warnings) = image_folder_with_warnings(&same).unwrap();
        assert_eq!(split.train.classes, 2);
        assert_eq!(split.train.labels, vec![0, 1]);
        assert_eq!(split.train.class_names, vec!["yy", "zz"]);
        assert!(
            warnings.len() == 1 && warnings[0].contains("1 class folder(s) without images"),
            "{warnings:?}"
        );
        let _ = std::fs::remove_dir_all(&same);
    }

    #[test]
    fn a_corrupt_image_is_named_and_an_empty_folder_explained() {
        let dir = scratch("corrupt");
        write_png(&dir.join("a").join("0.png"), 4, 0);
        std::fs::write(dir.join("a").join("1.png"), b"not a png").unwrap();
        let error = image_folder(&dir).unwrap_err();
        assert!(error.path.ends_with("a/1.png"), "{error}");
        assert!(error.to_string().contains("cannot decode image"), "{error}");
        let empty = scratch("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let error = image_folder(&empty).unwrap_err();
        assert!(error.to_string().contains("no training images"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&empty);
    }
}

mod csv_tables {
    use selfsup_data::table::parse_csv;
    use std::path::Path;

    #[test]
    fn a_labelled_csv_with_a_header_reads_features_and_labels() {
        let text = "sepal,petal,class\n5.1,1.4,0\n6.3, 4.9 ,1\n\n7.7,6.7,2\n";
        let table = parse_csv(text, true, Path::new("iris.csv")).unwrap();
        assert_eq!((table.len(), table.columns), (3, 2));
        assert_eq!(table.names, vec!["sepal", "petal"]);
        assert_eq!(table.row(1), &[6.3, 4.9]);
        assert_eq!(table.labels, vec![0, 1, 2]);
        let unlabelled = parse_csv("1,2,3\n4,5,6\n", false, Path::new("x.csv")).unwrap();
        assert_eq!((unlabelled.len(), unlabelled.columns), (2, 3));
        assert_eq!(unlabelled.names, vec!["c0", "c1", "c2"]);
        assert!(unlabelled.labels.is_empty());
    }

    #[test]
    fn comments_utf16_and_a_byte_order_mark_are_named_or_read() {
        let err = |text: &str| {
            parse_csv(text, true, Path::new("t.csv"))
                .unwrap_err()
                .to_string()
        };
        assert!(
            err("# made by hand\n1,2,0\n").contains("line 1 is a comment, and CSV has none"),
            "{}",
            err("# made by hand\n1,2,0\n")
        );
        assert!(
            err("1,2,0\n# more\n3,4,1\n").contains("line 2: 1 fields, expected 3; it is a comment")
        );
        // A byte-order mark does not turn the first data row into a header.
        let dir = std::env::temp_dir().join(format!("selfsup-csv-bom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bom = dir.join("bom.csv");
        std::fs::write(&bom, "\u{feff}1,2,0\n3,4,1\n").unwrap();
        let table = selfsup_data::table::read_csv(&bom, true).unwrap();
        assert_eq!((table.len(), table.labels.clone()), (2, vec![0, 1]));
        let utf16 = dir.join("utf16.csv");
        let text: Vec<u8> = "\u{feff}1,2,0\n3,4,1\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        std::fs::write(&utf16, text).unwrap();
        let e = selfsup_data::table::read_csv(&utf16, true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is UTF-16 text (or binary); save it as UTF-8"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The first lines of scikit-learn's `iris.csv`, as shipped in its wheel.
    #[test]
    fn scikit_learn_tables_announce_their_size_on_the_first_line() {
        let text = "3,4,setosa,versicolor,virginica\n5.1,3.5,1.4,0.2,0\n7.0,3.2,4.7,1.4,1\n6.3,3.3,6.0,2.5,2\n";
        let table = parse_csv(text, true, Path::new("iris.csv")).unwrap();
        assert_eq!((table.len(), table.columns), (3, 4));
        assert_eq!(table.row(2), &[6.3, 3.3, 6.0, 2.5]);
        assert_eq!(table.labels, vec![0, 1, 2]);
        assert_eq!(table.names, vec!["c0", "c1", "c2", "c3"]);
        let short = "4,4,setosa\n5.1,3.5,1.4,0.2,0\n";
        assert_eq!(
            parse_csv(short, true, Path::new("iris.csv"))
                .unwrap_err()
                .to_string(),
            "iris.csv: the first line announces 4 rows of 4 features, the file has 1 rows of 4"
        );
    }

    #[test]
    fn bad_rows_are_errors_naming_the_line_and_column() {
        let error = |text: &str| {
            parse_csv(text, true, Path::new("t.csv"))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(error("1,2,0\n3,0\n"), "t.csv: line 2: 2 fields, expected 3");
        assert_eq!(
            error("1,2,0\n3,x,1\n"),
            "t.csv: line 2, column 2: 'x' is not a finite number"
        );
        assert!(error("1,2,0.5\n").contains("label '0.5' is not an integer class"));
        assert_eq!(error("a,b\n"), "t.csv: no data rows");
    }
}
