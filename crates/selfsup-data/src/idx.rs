//! The IDX format of MNIST and Fashion-MNIST.
//!
//! A file is a big-endian header — two zero bytes, a type code (`0x08` = unsigned byte), the
//! number of dimensions, then each dimension as a `u32` — followed by the data. Images are
//! `[n, rows, cols]`, labels `[n]`. Files ending in `.gz` are decompressed on the fly.

use crate::{DataError, ImageSet};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions.
    pub dims: Vec<usize>,
    /// Row-major values.
    pub data: Vec<u8>,
}

/// Reads a file, decompressing it when its name ends in `.gz`.
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    crate::check_regular_file(path)?;
    let raw = std::fs::read(path).map_err(|e| DataError::new(path, format!("cannot read: {e}")))?;
    if path.extension().is_some_and(|e| e == "gz") {
        gunzip_idx(&raw, path)
    } else {
        Ok(raw)
    }
}

/// Decompresses a gzipped IDX file no further than its header announces (plus one byte, to
/// tell a longer file): a damaged or hostile file cannot inflate beyond what it claims.
fn gunzip_idx(raw: &[u8], path: &Path) -> Result<Vec<u8>, DataError> {
    let bad_gzip = |e: std::io::Error| {
        DataError::new(
            path,
            format!("not a valid gzip file ({e}); is it truncated?"),
        )
    };
    let mut decoder = GzDecoder::new(raw);
    let mut head = Vec::new();
    (&mut decoder)
        .take(4)
        .read_to_end(&mut head)
        .map_err(bad_gzip)?;
    if head.len() < 4 || head[..3] != [0, 0, 0x08] {
        // Not an IDX header: `parse` names what is wrong, and nothing more is inflated.
        return Ok(head);
    }
    let rank = u64::from(head[3]);
    (&mut decoder)
        .take(4 * rank)
        .read_to_end(&mut head)
        .map_err(bad_gzip)?;
    // `None` when the dimensions overflow; `parse` reports that and a truncated header.
    let claimed = head[4..].chunks_exact(4).try_fold(1u64, |n, d| {
        n.checked_mul(u64::from(u32::from_be_bytes([d[0], d[1], d[2], d[3]])))
    });
    let Some(announced) = claimed else {
        return Ok(head);
    };
    if announced > MAX_DECOMPRESSED {
        return Err(DataError::new(
            path,
            format!(
                "its header announces {announced} values, more than selfsup reads from one \
                 file ({MAX_DECOMPRESSED}); split the data or check the header"
            ),
        ));
    }
    let header = head.len() as u64;
    let mut out = head;
    decoder
        .take(announced + 1)
        .read_to_end(&mut out)
        .map_err(bad_gzip)?;
    if out.len() as u64 > header + announced {
        return Err(DataError::new(
            path,
            format!(
                "decompresses to more than the {announced} values its header announces; \
                 the file is corrupt (recreate it from the original data)"
            ),
        ));
    }
    Ok(out)
}

/// The most a gzip file may decompress to (the full MNIST is 47 MB): a damaged or hostile
/// file cannot take all memory.
pub const MAX_DECOMPRESSED: u64 = 2 << 30;

/// Decompresses gzip bytes; `path` names the source in errors.
pub(crate) fn gunzip(raw: &[u8], path: &Path) -> Result<Vec<u8>, DataError> {
    let mut out = Vec::new();
    GzDecoder::new(raw)
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            DataError::new(
                path,
                format!("not a valid gzip file ({e}); is it truncated?"),
            )
        })?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(DataError::new(
            path,
            format!(
                "decompresses to more than {} GiB; selfsup reads datasets up to that size",
                MAX_DECOMPRESSED >> 30
            ),
        ));
    }
    Ok(out)
}

/// Dimensions as `60000×28×28`.
fn shape(dims: &[usize]) -> String {
    dims.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("×")
}

/// Parses IDX bytes; `path` names the source in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<IdxArray, DataError> {
    if bytes.len() < 4 {
        return Err(DataError::new(
            path,
            format!("{} bytes is too short for an IDX header", bytes.len()),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(DataError::new(
            path,
            format!(
                "not an IDX file (magic {:02x} {:02x}, expected 00 00)",
                bytes[0], bytes[1]
            ),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(DataError::new(
            path,
            format!(
                "IDX type code 0x{:02x} is not supported (only 0x08, unsigned bytes)",
                bytes[2]
            ),
        ));
    }
    let rank = bytes[3] as usize;
    let header = 4 + 4 * rank;
    if rank == 0 || bytes.len() < header {
        return Err(DataError::new(
            path,
            format!("IDX header of rank {rank} is truncated or empty"),
        ));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            let at = 4 + 4 * i;
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
        })
        .collect();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let actual = bytes.len() - header;
    match expected {
        Some(n) if n == actual => Ok(IdxArray {
            dims,
            data: bytes[header..].to_vec(),
        }),
        Some(n) => Err(DataError::new(
            path,
            format!(
                "header says {} = {n} values but the file holds {actual}; truncated or corrupt",
                shape(&dims)
            ),
        )),
        None => Err(DataError::new(
            path,
            format!("dimensions {} overflow", shape(&dims)),
        )),
    }
}

/// Reads one IDX file (raw or `.gz`).
///
/// # Errors
///
/// When the file cannot be read, is not gzip although named `.gz`, or is not a consistent IDX
/// array of bytes.
pub fn read(path: impl AsRef<Path>) -> Result<IdxArray, DataError> {
    let path = path.as_ref();
    parse(&read_bytes(path)?, path)
}

/// Reads an image file (`[n, rows, cols]`) and its label file (`[n]`).
///
/// # Errors
///
/// As [`read`], and when the ranks are wrong or the counts differ.
pub fn read_images(
    images: impl AsRef<Path>,
    labels: impl AsRef<Path>,
) -> Result<ImageSet, DataError> {
    let (images, labels) = (images.as_ref(), labels.as_ref());
    image_set(read(images)?, read(labels)?, images, labels)
}

/// Pairs an image array with its label array; the paths name them in errors.
pub(crate) fn image_set(
    image_array: IdxArray,
    label_array: IdxArray,
    images: &Path,
    labels: &Path,
) -> Result<ImageSet, DataError> {
    let [n, height, width] = image_array.dims[..] else {
        return Err(DataError::new(
            images,
            format!(
                "expected images [n, rows, cols], got dimensions {}",
                shape(&image_array.dims)
            ),
        ));
    };
    let [m] = label_array.dims[..] else {
        return Err(DataError::new(
            labels,
            format!(
                "expected labels [n], got dimensions {}",
                shape(&label_array.dims)
            ),
        ));
    };
    if n != m {
        return Err(DataError::new(
            labels,
            format!("{m} labels for {n} images in {}", images.display()),
        ));
    }
    if n == 0 || height == 0 || width == 0 {
        return Err(DataError::new(
            images,
            format!("holds {n} images of {height}×{width}: there is nothing to train on"),
        ));
    }
    let classes = label_array.data.iter().max().map_or(0, |&c| c as usize + 1);
    Ok(ImageSet {
        pixels: image_array.data,
        labels: label_array.data,
        classes,
        class_names: Vec::new(),
        channels: 1,
        height,
        width,
    })
}
