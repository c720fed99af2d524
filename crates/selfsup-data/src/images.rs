//! Folders of PNG / JPEG images.

use std::fs;
use std::path::{Path, PathBuf};

use image::ImageDecoder;
use image::imageops::FilterType;

use crate::sources::Split;
use crate::{DataError, ImageSet};

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The largest side an image folder's images may have (they are trained on at full size).
pub const MAX_SIDE: u32 = 4096;
/// The most memory a decoded image folder may take.
pub const MAX_BYTES: u64 = 8 << 30;

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| DataError::new(dir, format!("cannot list: {e}")))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        // A selfsup run written inside the dataset (`--out DATASET/run`) is no class: its
        // pictures are the run's report, not data.
        .filter(|p| !p.join(crate::RUN_MARKER).exists())
        .collect();
    entries.sort();
    Ok(entries)
}

/// `(path, class index)` of every image under `dir`: one sub-folder per class (sorted names
/// give the indices), or images directly in `dir` (unlabelled, class 0). A sub-folder without
/// images is no class (a class no sample has would skew every accuracy): it goes to `empty`.
fn list(
    dir: &Path,
    classes: &mut Vec<String>,
    empty: &mut Vec<PathBuf>,
) -> Result<Vec<(PathBuf, u8)>, DataError> {
    let entries = sorted_entries(dir)?;
    let folders: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
    let loose: Vec<&PathBuf> = entries.iter().filter(|p| is_image(p)).collect();
    if !folders.is_empty() && !loose.is_empty() {
        return Err(DataError::new(
            dir,
            format!(
                "holds class folders and also {} image(s) beside them (such as {}), which \
                 belong to no class: move them into a class folder, or remove them",
                loose.len(),
                loose[0].file_name().unwrap_or_default().to_string_lossy()
            ),
        ));
    }
    if folders.is_empty() {
        return Ok(entries
            .into_iter()
            .filter(|p| is_image(p))
            .map(|p| (p, 0))
            .collect());
    }
    let mut out = Vec::new();
    for folder in folders {
        let images: Vec<PathBuf> = sorted_entries(folder)?
            .into_iter()
            .filter(|p| is_image(p))
            .collect();
        if images.is_empty() {
            empty.push(folder.clone());
            continue;
        }
        let name = folder
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let class = match classes.iter().position(|c| *c == name) {
            Some(i) => i,
            None => {
                classes.push(name);
                classes.len() - 1
            }
        };
        if class > 255 {
            return Err(DataError::new(
                dir,
                format!(
                    "has more than 256 class folders with images ({} at least); selfsup's labels \
                     take up to 256 classes: merge classes, or use a folder without class \
                     sub-folders for unlabelled pretraining",
                    classes.len()
                ),
            ));
        }
        for file in images {
            out.push((file, class as u8));
        }
    }
    Ok(out)
}

/// Decodes images into one [`ImageSet`] of `size = [height, width]` (resized bilinearly when
/// needed), grayscale unless `rgb`.
fn decode(
    files: &[(PathBuf, u8)],
    size: [u32; 2],
    rgb: bool,
    classes: &[String],
) -> Result<ImageSet, DataError> {
    let [height, width] = size;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (path, label) in files {
        // By content, as `header` read it: a JPEG named .png is still a JPEG.
        let image = image::ImageReader::open(path)
            .and_then(|reader| reader.with_guessed_format())
            .map_err(|e| DataError::new(path, format!("cannot read: {e}")))?
            .decode()
            .map_err(|e| undecodable(path, &e))?;
        let image = if image.height() != height || image.width() != width {
            image.resize_exact(width, height, FilterType::Triangle)
        } else {
            image
        };
        if rgb {
            let rgb = image.to_rgb8();
            // Channel-first layout, `[3, H, W]`.
            for channel in 0..3 {
                pixels.extend(rgb.pixels().map(|p| p.0[channel]));
            }
        } else {
            pixels.extend(image.to_luma8().into_raw());
        }
        labels.push(*label);
    }
    Ok(ImageSet {
        pixels,
        labels,
        classes: classes.len(),
        class_names: classes.to_vec(),
        channels: if rgb { 3 } else { 1 },
        height: height as usize,
        width: width as usize,
    })
}

/// A decoder's error as one line (some end in a newline, or hold several lines).
fn undecodable(path: &Path, e: &image::ImageError) -> DataError {
    let text = e.to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    DataError::new(
        path,
        format!(
            "cannot decode image: {} (is the file whole?)",
            lines.join("; ").trim_end_matches('.')
        ),
    )
}

/// What the header of an image file says: `[height, width]` and whether it has colour.
fn header(path: &Path) -> Result<([u32; 2], bool), DataError> {
    crate::check_regular_file(path)?;
    let decoder = image::ImageReader::open(path)
        .map_err(|e| DataError::new(path, format!("cannot read: {e}")))?
        .with_guessed_format()
        .map_err(|e| DataError::new(path, format!("cannot read: {e}")))?
        .into_decoder()
        .map_err(|e| undecodable(path, &e))?;
    let (width, height) = decoder.dimensions();
    Ok(([height, width], decoder.color_type().has_color()))
}

/// The size most images have (the first image's among equally common ones).
fn common_size(sizes: &[[u32; 2]]) -> [u32; 2] {
    let mut counts: Vec<([u32; 2], usize)> = Vec::new();
    for &size in sizes {
        match counts.iter_mut().find(|(s, _)| *s == size) {
            Some((_, n)) => *n += 1,
            None => counts.push((size, 1)),
        }
    }
    // `max_by_key` keeps the last of equal maxima: scan in reverse to keep the first.
    counts
        .iter()
        .rev()
        .max_by_key(|(_, n)| *n)
        .map_or([0, 0], |(size, _)| *size)
}

/// A folder of images, in one of three layouts:
///
/// - `DIR/train/<class>/*.png` and `DIR/test/<class>/*.png` — the given split;
/// - `DIR/<class>/*.png` — every fifth image of each class (in name order) is held out for
///   testing;
/// - `DIR/*.png` — unlabelled (every label 0, no classes), every fifth image held out.
///
/// PNG and JPEG are read. Every image takes the size most of the folder's images have
/// (resized bilinearly, aspect ratio not kept), and the set is RGB when any image has
/// colour, grayscale otherwise. [`image_folder_with_warnings`] also says what was resized.
///
/// # Errors
///
/// A folder without images, or an image that cannot be decoded (naming the file).
pub fn image_folder(dir: &Path) -> Result<Split, DataError> {
    image_folder_with_warnings(dir).map(|(split, _)| split)
}

/// [`image_folder`], with a line for each thing done to the images that their owner may not
/// expect (images resized to the common size), for a program to show.
///
/// # Errors
///
/// As [`image_folder`].
pub fn image_folder_with_warnings(dir: &Path) -> Result<(Split, Vec<String>), DataError> {
    let mut classes = Vec::new();
    let mut empty = Vec::new();
    let (has_train, has_test) = (dir.join("train").is_dir(), dir.join("test").is_dir());
    if has_train != has_test {
        let (found, missing) = if has_train {
            ("train", "test")
        } else {
            ("test", "train")
        };
        return Err(DataError::new(
            dir,
            format!(
                "has {found}/ but no {missing}/: give both DIR/train/<class>/ and \
                 DIR/test/<class>/, or put the class folders directly in DIR"
            ),
        ));
    }
    let (train, test) = if has_train && has_test {
        let train = list(&dir.join("train"), &mut classes, &mut empty)?;
        let test = list(&dir.join("test"), &mut classes, &mut empty)?;
        (train, test)
    } else {
        let all = list(dir, &mut classes, &mut empty)?;
        let mut seen = vec![0usize; 256];
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for item in all {
            let k = &mut seen[item.1 as usize];
            if *k % 5 == 4 {
                test.push(item)
            } else {
                train.push(item)
            }
            *k += 1;
        }
        (train, test)
    };
    if train.is_empty() {
        return Err(DataError::new(
            dir,
            format!(
                "no training images ({}) found; expected DIR/<class>/*.png, DIR/train/<class>/*.png \
                 or DIR/*.png, or an IDX dataset: train-images-idx3-ubyte, \
                 train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte \
                 (each may end in .gz)",
                EXTENSIONS.join(", ")
            ),
        ));
    }
    let files: Vec<&PathBuf> = train.iter().chain(&test).map(|(path, _)| path).collect();
    let headers = files
        .iter()
        .map(|path| header(path))
        .collect::<Result<Vec<_>, _>>()?;
    let sizes: Vec<[u32; 2]> = headers.iter().map(|(size, _)| *size).collect();
    let size = common_size(&sizes);
    let rgb = headers.iter().any(|(_, colour)| *colour);
    let example = files[sizes.iter().position(|s| *s == size).unwrap_or(0)];
    let side = size[0].max(size[1]);
    let bytes =
        files.len() as u64 * u64::from(size[0]) * u64::from(size[1]) * if rgb { 3 } else { 1 };
    if side > MAX_SIDE || bytes > MAX_BYTES {
        return Err(DataError::new(
            example,
            format!(
                "is {}×{} (height × width), the size most of the folder's images have, to which \
                 every image is resized: {} images would take {:.1} GiB (selfsup takes up to \
                 {MAX_SIDE} pixels a side and {} GiB); resize the images first (e.g. to 64×64 \
                 or 224×224)",
                size[0],
                size[1],
                files.len(),
                bytes as f64 / (1u64 << 30) as f64,
                MAX_BYTES >> 30
            ),
        ));
    }
    let mut warnings = Vec::new();
    if let Some(first) = empty.first() {
        warnings.push(format!(
            "{}: {} class folder(s) without images, such as {}, are no class (they would \
             count in every accuracy as a class no sample has); put images in them or remove \
             them",
            dir.display(),
            empty.len(),
            first.display()
        ));
    }
    let odd: Vec<usize> = (0..files.len()).filter(|&i| sizes[i] != size).collect();
    if let Some(&first) = odd.first() {
        let [h, w] = sizes[first];
        warnings.push(format!(
            "{}: {} of its {} images {} not {}×{} (height × width) like the others — {} is \
             {h}×{w}, for one — and were resized to {}×{}, aspect ratio not kept; resize the \
             images yourself to choose how",
            dir.display(),
            odd.len(),
            files.len(),
            if odd.len() == 1 { "is" } else { "are" },
            size[0],
            size[1],
            files[first].display(),
            size[0],
            size[1],
        ));
    }
    let split = Split {
        train: decode(&train, size, rgb, &classes)?,
        test: decode(&test, size, rgb, &classes)?,
    };
    Ok((split, warnings))
}
