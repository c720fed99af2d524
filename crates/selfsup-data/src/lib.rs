//! Datasets for selfsup.
//!
//! [`idx`] reads the IDX format of MNIST and Fashion-MNIST (raw or `.gz`) into an
//! [`ImageSet`]. Every problem with a user's file — missing, truncated, corrupt, mismatched — is
//! a [`DataError`] naming the path and what was wrong, never a panic.
#![warn(missing_docs)]

pub mod idx;

use std::fmt;
use std::path::{Path, PathBuf};

/// Grayscale images with labels, stored as bytes (0 = black, 255 = white).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    /// Row-major pixels of every image, `len() · height · width` bytes.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
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
        let size = self.height * self.width;
        assert!(
            i < self.len(),
            "ImageSet: image {i} out of range (len {})",
            self.len()
        );
        &self.pixels[i * size..(i + 1) * size]
    }

    /// The first `n` images (all of them when `n` is larger).
    pub fn take(mut self, n: usize) -> ImageSet {
        let n = n.min(self.len());
        self.pixels.truncate(n * self.height * self.width);
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
