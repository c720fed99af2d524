//! Where images come from: the embedded defaults, the cache that `selfsup data fetch` fills, and
//! user folders.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{DataError, ImageSet, idx};

/// A training set and the test set evaluated against it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// Images to (pre)train on and the kNN bank.
    pub train: ImageSet,
    /// Held-out images.
    pub test: ImageSet,
}

impl Split {
    /// Number of classes in either split.
    pub fn classes(&self) -> usize {
        self.train.classes.max(self.test.classes)
    }

    /// Gives both splits these class names (in label order).
    pub fn name_classes(&mut self, names: &[&str]) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        self.train.classes = self.train.classes.max(names.len());
        self.test.classes = self.test.classes.max(names.len());
        self.train.class_names = names.clone();
        self.test.class_names = names;
    }
}

const FASHION_MNIST_10K: [&[u8]; 4] = [
    include_bytes!("../data/fashion-mnist-10k/train-images-idx3-ubyte.gz"),
    include_bytes!("../data/fashion-mnist-10k/train-labels-idx1-ubyte.gz"),
    include_bytes!("../data/fashion-mnist-10k/t10k-images-idx3-ubyte.gz"),
    include_bytes!("../data/fashion-mnist-10k/t10k-labels-idx1-ubyte.gz"),
];

const DIGITS: &[u8] = include_bytes!("../data/digits.csv.gz");

/// Fashion-MNIST's ten classes, in label order (Xiao, Rasul & Vollgraf 2017).
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// The digits' classes (MNIST, scikit-learn's digits).
const DIGIT_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// The embedded default: the first 10,000 training and first 2,000 test images of
/// Fashion-MNIST (MIT licence, Zalando SE; see `data/fashion-mnist-10k/README.md`).
pub fn fashion_mnist_10k() -> Split {
    let set = |images: &[u8], labels: &[u8], name: &str| {
        let path = Path::new("<embedded fashion-mnist-10k>").join(name);
        let images = idx::parse(&idx::gunzip(images, &path).expect("embedded"), &path);
        let labels = idx::parse(&idx::gunzip(labels, &path).expect("embedded"), &path);
        idx::image_set(
            images.expect("embedded"),
            labels.expect("embedded"),
            &path,
            &path,
        )
        .expect("the embedded Fashion-MNIST subset is well formed")
    };
    let [train_x, train_y, test_x, test_y] = FASHION_MNIST_10K;
    let mut split = Split {
        train: set(train_x, train_y, "train"),
        test: set(test_x, test_y, "t10k"),
    };
    split.name_classes(&FASHION_MNIST_CLASSES);
    split
}

/// scikit-learn's digits (8×8, 1,797 images, BSD-3; see `data/digits.md`): the first 1,200
/// for training, the other 597 for testing. Pixel values 0..=16 are scaled to 0..=255.
pub fn digits() -> Split {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS)
        .read_to_string(&mut text)
        .expect("the embedded digits file is gzip text");
    let set = parse_digits(&text, Path::new("<embedded digits.csv>"))
        .expect("the embedded digits file is well formed");
    let test = ImageSet {
        pixels: set.pixels[1200 * 64..].to_vec(),
        labels: set.labels[1200..].to_vec(),
        ..set.clone()
    };
    let mut split = Split {
        train: set.take(1200),
        test,
    };
    split.name_classes(&DIGIT_CLASSES);
    split
}

/// Parses the digits CSV layout: 64 values in 0..=16 then a label per line.
fn parse_digits(text: &str, path: &Path) -> Result<ImageSet, DataError> {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for (number, line) in text.lines().enumerate() {
        let values: Vec<u8> = line
            .split(',')
            .map(|v| v.trim().parse::<f32>().map(|v| v as u8))
            .collect::<Result<_, _>>()
            .map_err(|e| DataError::new(path, format!("line {}: {e}", number + 1)))?;
        if values.len() != 65 || values[..64].iter().any(|&v| v > 16) || values[64] > 9 {
            return Err(DataError::new(
                path,
                format!(
                    "line {}: expected 64 pixel values in 0..=16 and a label in 0..=9",
                    number + 1
                ),
            ));
        }
        pixels.extend(
            values[..64]
                .iter()
                .map(|&v| ((v as u32 * 255 + 8) / 16) as u8),
        );
        labels.push(values[64]);
    }
    Ok(ImageSet {
        pixels,
        labels,
        classes: 10,
        class_names: Vec::new(),
        channels: 1,
        height: 8,
        width: 8,
    })
}

/// The cache that `selfsup data fetch` and `cargo xtask setup` fill: `$SELFSUP_CACHE`, else
/// `$XDG_CACHE_HOME/selfsup`, else `$HOME/.cache/selfsup`.
///
/// # Errors
///
/// None of the three is set, the folder that holds the cache (`$HOME`, say) does not exist,
/// or the path is a file: the message names the variable and how to choose another place.
pub fn cache_dir() -> Result<PathBuf, String> {
    let var = |name: &str| std::env::var_os(name).filter(|d| !d.is_empty());
    let (dir, from) = if let Some(dir) = var("SELFSUP_CACHE") {
        (PathBuf::from(dir), "SELFSUP_CACHE")
    } else if let Some(dir) = var("XDG_CACHE_HOME") {
        (PathBuf::from(dir).join("selfsup"), "XDG_CACHE_HOME")
    } else if let Some(home) = var("HOME") {
        let home = PathBuf::from(home);
        if !home.is_dir() {
            return Err(format!(
                "HOME ({}) is not a folder, and selfsup keeps its datasets in HOME/.cache/selfsup; \
                 set HOME, or SELFSUP_CACHE=DIR to choose the place",
                home.display()
            ));
        }
        (home.join(".cache").join("selfsup"), "HOME")
    } else {
        return Err(
            "HOME is not set, and selfsup keeps its datasets in HOME/.cache/selfsup; \
                    set SELFSUP_CACHE=DIR to choose the place"
                .to_string(),
        );
    };
    if dir.exists() && !dir.is_dir() {
        return Err(format!(
            "{} (from {from}) is a file, not a folder, and selfsup keeps its datasets there; \
             point {} at a folder",
            dir.display(),
            if from == "HOME" {
                "SELFSUP_CACHE"
            } else {
                from
            }
        ));
    }
    Ok(dir)
}

/// A folder holding `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte` (each raw or `.gz`), as MNIST and
/// Fashion-MNIST are distributed. A file present both raw and gzipped (as `gunzip -k`
/// leaves it) is read once the two are found to hold the same bytes.
///
/// # Errors
///
/// When a file is missing (naming the folder and the file), unreadable, or present both raw
/// and gzipped with different contents.
pub fn idx_folder(dir: &Path) -> Result<Split, DataError> {
    let find = |stem: &str| -> Result<PathBuf, DataError> {
        let (raw, gz) = (dir.join(stem), dir.join(format!("{stem}.gz")));
        crate::check_regular_file(&raw)?;
        crate::check_regular_file(&gz)?;
        match (raw.is_file(), gz.is_file()) {
            (true, true) => {
                if idx::read_bytes(&raw)? != idx::read_bytes(&gz)? {
                    return Err(DataError::new(
                        dir,
                        format!(
                            "holds both {stem} and {stem}.gz, and they are different data: \
                             remove the one that is not this dataset"
                        ),
                    ));
                }
                Ok(raw)
            }
            (true, false) => Ok(raw),
            (false, true) => Ok(gz),
            (false, false) => Err(DataError::new(
                dir,
                format!("no {stem} or {stem}.gz in this folder"),
            )),
        }
    };
    let mut split = Split {
        train: idx::read_images(
            find("train-images-idx3-ubyte")?,
            find("train-labels-idx1-ubyte")?,
        )?,
        test: idx::read_images(
            find("t10k-images-idx3-ubyte")?,
            find("t10k-labels-idx1-ubyte")?,
        )?,
    };
    let classes = split.classes();
    split.train.classes = classes;
    split.test.classes = classes;
    Ok(split)
}

/// Why `path` is no dataset (it is neither a name of [`NAMED`] nor a folder), and what to give.
fn not_a_dataset(path: &Path) -> String {
    let kinds = format!(
        "a dataset name ({}), a folder of IDX files or of images, or a CSV table (FILE.csv)",
        NAMED.join(", ")
    );
    let file_name = path.file_name().map(|n| n.to_string_lossy().to_lowercase());
    if !path.exists() {
        format!("does not exist; give {kinds}")
    } else if file_name.as_deref().is_some_and(|n| n.contains("-ubyte")) {
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
        format!(
            "is one IDX file; give the folder that holds the four IDX files ({})",
            folder.map_or(".".into(), |p| p.display().to_string())
        )
    } else {
        format!("is a file but not a CSV table (its name does not end in .csv); give {kinds}")
    }
}

/// Whether `name` (as [`load`] takes it) is here to load: embedded, fetched into the cache,
/// or an existing path (its files may still be bad).
pub fn is_present(name: &str) -> bool {
    match name {
        "fashion-mnist-10k" | "digits" => true,
        "fashion-mnist" | "mnist" => cache_dir().is_ok_and(|cache| is_fetched(&cache, name)),
        path => Path::new(path).exists(),
    }
}

/// Whether `<cache>/data/<name>` holds a finished fetch.
fn is_fetched(cache: &Path, name: &str) -> bool {
    cache
        .join("data")
        .join(name)
        .join(crate::fetch::COMPLETE_MARKER)
        .is_file()
}

/// The datasets `selfsup pretrain --dataset` knows by name.
pub const NAMED: [&str; 4] = ["fashion-mnist-10k", "fashion-mnist", "mnist", "digits"];

/// Loads a dataset by name (see [`NAMED`]), from a folder of IDX files, or from a folder of
/// images (see [`image_folder`](crate::images::image_folder)).
///
/// `fashion-mnist` and `mnist` are the full sets in the cache (`selfsup data fetch NAME`).
///
/// # Errors
///
/// An unknown name that is not a folder, a full set that was not fetched, or a bad file.
pub fn load(name: &str) -> Result<Split, DataError> {
    load_with_warnings(name).map(|(split, _)| split)
}

/// [`load`], with the lines a program should show about what was done to the data (an image
/// folder's images resized to one size; see
/// [`image_folder_with_warnings`](crate::images::image_folder_with_warnings)).
///
/// # Errors
///
/// As [`load`].
pub fn load_with_warnings(name: &str) -> Result<(Split, Vec<String>), DataError> {
    match name {
        "fashion-mnist-10k" => Ok((fashion_mnist_10k(), Vec::new())),
        "digits" => Ok((digits(), Vec::new())),
        "fashion-mnist" | "mnist" => {
            let cache = cache_dir().map_err(|e| DataError::new(Path::new(name), e))?;
            let dir = cache.join("data").join(name);
            if !is_fetched(&cache, name) {
                return Err(DataError::new(
                    &dir,
                    format!(
                        "the full {name} is not here yet; run `selfsup data fetch {name}` (or \
                         `cargo xtask setup data`), or use the embedded fashion-mnist-10k"
                    ),
                ));
            }
            let mut split = idx_folder(&dir)?;
            split.name_classes(if name == "mnist" {
                &DIGIT_CLASSES
            } else {
                &FASHION_MNIST_CLASSES
            });
            Ok((split, Vec::new()))
        }
        path => {
            let dir = Path::new(path);
            if dir.is_dir() {
                let has_idx = ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"]
                    .iter()
                    .any(|name| dir.join(name).exists());
                if has_idx {
                    Ok((idx_folder(dir)?, Vec::new()))
                } else {
                    crate::images::image_folder_with_warnings(dir)
                }
            } else {
                Err(DataError::new(dir, not_a_dataset(dir)))
            }
        }
    }
}
