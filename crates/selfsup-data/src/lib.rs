//! Datasets for selfsup, as bytes (tensors and augmentations are `selfsup-augment`'s).
//!
//! - [`sources`]: the embedded defaults ([`fashion_mnist_10k`], [`digits`]), the full sets
//!   that [`fetch`] provisions offline, folders of IDX files, folders of PNG / JPEG
//!   [`images`].
//! - [`idx`]: the IDX format of MNIST and Fashion-MNIST (raw or `.gz`).
//! - [`table`]: CSV tables of numeric features for tabular SSL.
//! - [`Rng`]: the portable seeded generator behind shuffling and augmentations.
//!
//! Every problem with a user's file — missing, truncated, corrupt, mismatched — is a
//! [`DataError`] naming the path and what was wrong, never a panic.
#![warn(missing_docs)]

/// The file that marks a folder as a selfsup run (the CLI writes it when a run starts);
/// dataset readers skip such folders.
pub const RUN_MARKER: &str = ".selfsup-run";

pub mod fetch;
pub mod idx;
pub mod images;
mod rng;
pub mod sources;
pub mod table;

pub use rng::Rng;
pub use sources::{Split, digits, fashion_mnist_10k};

use std::fmt;
use std::path::{Path, PathBuf};

/// A number for a message: as typed for everyday magnitudes, in scientific notation otherwise
/// (`Display` writes `1e300` with 301 digits).
pub fn short(value: f64) -> String {
    let magnitude = value.abs();
    if value.is_finite() && magnitude != 0.0 && !(1e-4..1e6).contains(&magnitude) {
        format!("{value:e}")
    } else {
        value.to_string()
    }
}

/// Checks that `path` is a regular file before it is read: a FIFO would block the reader
/// forever, and a device or socket is no data set.
///
/// # Errors
///
/// `path` exists and is a folder, FIFO, device or socket (a missing file is left to the
/// reader, whose error says so).
pub fn check_regular_file(path: &Path) -> Result<(), DataError> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    let kind = meta.file_type();
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a device"
    };
    Err(DataError::new(
        path,
        format!("is {what}, not a file; give a regular file"),
    ))
}

/// Images with labels, stored as bytes (0 = black, 255 = full intensity).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    /// Pixels of every image, `[len, channels, height, width]` row-major.
    pub pixels: Vec<u8>,
    /// One label per image (0 for an unlabelled set).
    pub labels: Vec<u8>,
    /// Number of classes the labels index into (0 when unlabelled).
    pub classes: usize,
    /// The classes' names in label order (Fashion-MNIST's, an image folder's class folders);
    /// empty when the data names none. Reports fall back to the label numbers.
    pub class_names: Vec<String>,
    /// 1 (grayscale) or 3 (RGB).
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `i`.
    ///
    /// # Panics
    ///
    /// When `i` is out of range.
    pub fn image(&self, i: usize) -> &[u8] {
        let size = self.image_size();
        assert!(
            i < self.len(),
            "ImageSet: image {i} out of range (len {})",
            self.len()
        );
        &self.pixels[i * size..(i + 1) * size]
    }

    /// Bytes per image, `channels · height · width`.
    pub fn image_size(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The name of class `label`: its entry of [`class_names`](Self::class_names), else the
    /// number.
    pub fn class_name(&self, label: usize) -> String {
        self.class_names
            .get(label)
            .cloned()
            .unwrap_or_else(|| label.to_string())
    }

    /// The first `n` images (all of them when `n` is larger).
    pub fn take(mut self, n: usize) -> ImageSet {
        let n = n.min(self.len());
        self.pixels.truncate(n * self.image_size());
        self.labels.truncate(n);
        self
    }
}

/// Why a data file could not be used.
#[derive(Debug)]
pub struct DataError {
    /// The file.
    pub path: PathBuf,
    /// What was wrong with it.
    pub problem: String,
}

impl DataError {
    pub(crate) fn new(path: &Path, problem: impl Into<String>) -> Self {
        DataError {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for DataError {}
