//! What a run trains on: images, or the rows of a CSV table seen as `1 × 1 × D` images.

use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};
use selfsup_augment::{Rng, image_batch, label_batch, table_batch};
use selfsup_data::ImageSet;
use selfsup_data::table::{Table, read_csv};

use crate::UserError;

/// The samples of one split.
pub enum Samples {
    /// Images (bytes, scaled to `[0, 1]` when batched).
    Images(ImageSet),
    /// Table rows, each feature min–max scaled to `[0, 1]` with the training split's range.
    Table(Table),
}

/// Training and test samples.
pub struct Split {
    /// Training samples.
    pub train: Samples,
    /// Held-out samples.
    pub test: Samples,
}

impl Samples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Samples::Images(set) => set.len(),
            Samples::Table(table) => table.len(),
        }
    }

    /// `[channels, height, width]` of one sample (`[1, 1, D]` for a table).
    pub fn shape(&self) -> [usize; 3] {
        match self {
            Samples::Images(set) => [set.channels, set.height, set.width],
            Samples::Table(table) => [1, 1, table.columns],
        }
    }

    /// Values per sample.
    pub fn sample_size(&self) -> usize {
        self.shape().iter().product()
    }

    /// Whether these are table rows.
    pub fn is_table(&self) -> bool {
        matches!(self, Samples::Table(_))
    }

    /// Labels (empty when unlabelled).
    pub fn labels(&self) -> &[u8] {
        match self {
            Samples::Images(set) => &set.labels,
            Samples::Table(table) => &table.labels,
        }
    }

    /// Keeps `n` samples: the first `n`, or, when the samples are sorted by label (an image
    /// folder is read class by class), `n` spread evenly over them (sample `⌊i·len/n⌋`), so
    /// that each class keeps its share instead of the first classes taking all `n`.
    pub fn take(self, n: usize) -> Samples {
        let len = self.len();
        if n >= len {
            return self;
        }
        let labels = self.labels();
        let by_class = labels.len() == len
            && labels.first() != labels.last()
            && labels.windows(2).all(|w| w[0] <= w[1]);
        let keep: Vec<usize> = if by_class {
            (0..n).map(|i| i * len / n).collect()
        } else {
            (0..n).collect()
        };
        match self {
            Samples::Images(mut set) => {
                set.pixels = keep.iter().flat_map(|&i| set.image(i).to_vec()).collect();
                set.labels = keep
                    .iter()
                    .filter_map(|&i| set.labels.get(i).copied())
                    .collect();
                Samples::Images(set)
            }
            Samples::Table(mut table) => {
                let columns = table.columns;
                table.features = keep
                    .iter()
                    .flat_map(|&i| table.features[i * columns..(i + 1) * columns].to_vec())
                    .collect();
                table.labels = keep
                    .iter()
                    .filter_map(|&i| table.labels.get(i).copied())
                    .collect();
                Samples::Table(table)
            }
        }
    }

    /// The samples at `indices` as `[len, C, H, W]` values in `[0, 1]`, with their labels.
    pub fn batch(&self, indices: &[usize], device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
        match self {
            Samples::Images(set) => image_batch(set, indices, device),
            Samples::Table(table) => {
                let (rows, labels) = table_batch(table, indices, device);
                (
                    rows,
                    labels.expect("pretrain loads CSV tables with their labels"),
                )
            }
        }
    }

    /// The labels at `indices`.
    pub fn label_batch(&self, indices: &[usize], device: &Device) -> Tensor<1, Int> {
        match self {
            Samples::Images(set) => label_batch(set, indices, device),
            Samples::Table(table) => {
                let labels: Vec<i64> = indices.iter().map(|&i| table.labels[i] as i64).collect();
                Tensor::from_data(TensorData::new(labels, [indices.len()]), device)
            }
        }
    }

    /// Every label.
    pub fn all_labels(&self, device: &Device) -> Tensor<1, Int> {
        let indices: Vec<usize> = (0..self.len()).collect();
        self.label_batch(&indices, device)
    }

    /// Every sample flattened: `[N, C·H·W]` raw inputs (the baseline features).
    pub fn raw_features(&self, device: &Device) -> Tensor<2> {
        let indices: Vec<usize> = (0..self.len()).collect();
        self.batch(&indices, device)
            .0
            .reshape([self.len(), self.sample_size()])
    }
}

impl Split {
    /// Number of classes (0 when unlabelled).
    pub fn classes(&self) -> usize {
        let max = |s: &Samples| s.labels().iter().max().map_or(0, |&m| m as usize + 1);
        match (&self.train, &self.test) {
            (Samples::Images(train), Samples::Images(test)) => train.classes.max(test.classes),
            (train, test) => max(train).max(max(test)),
        }
    }

    /// CRC-32 of both splits: every sample, label and shape (a fingerprint of the data).
    pub fn crc32(&self) -> u32 {
        let mut hash = crc32fast::Hasher::new();
        for samples in [&self.train, &self.test] {
            match samples {
                Samples::Images(set) => {
                    for d in [set.channels, set.height, set.width, set.len()] {
                        hash.update(&(d as u64).to_le_bytes());
                    }
                    hash.update(&set.pixels);
                }
                Samples::Table(table) => {
                    for d in [table.columns, table.len()] {
                        hash.update(&(d as u64).to_le_bytes());
                    }
                    for v in &table.features {
                        hash.update(&v.to_le_bytes());
                    }
                }
            }
            hash.update(samples.labels());
        }
        hash.finalize()
    }

    /// The name of every class in label order (the numbers where the data names none);
    /// empty when unlabelled.
    pub fn class_names(&self) -> Vec<String> {
        (0..self.classes())
            .map(|label| match &self.train {
                Samples::Images(set) => set.class_name(label),
                Samples::Table(_) => label.to_string(),
            })
            .collect()
    }
}

/// Whether a `--dataset` value names a CSV file (`.csv` or `.csv.gz`, in any case).
pub fn is_csv(dataset: &str) -> bool {
    let name = dataset.to_ascii_lowercase();
    name.ends_with(".csv") || name.ends_with(".csv.gz")
}

/// Loads a labelled CSV (class in the last column), holds out a fixed, seeded 20 % as the test
/// split, and scales each feature to `[0, 1]` with the training rows' minimum and maximum
/// (test values outside that range are clamped).
pub fn load_csv(path: &Path) -> Result<Split, UserError> {
    let table = read_csv(path, true).map_err(|e| UserError(e.to_string()))?;
    if table.len() < 10 {
        return Err(UserError(format!(
            "{}: {} data rows; a run needs at least 10 (8 to train, 2 to test)",
            path.display(),
            table.len()
        )));
    }
    let order = Rng::new(0x7AB1E).permutation(table.len());
    let test_len = (table.len() / 5).max(2);
    let (test_rows, train_rows) = order.split_at(test_len);
    let (mut train, mut test) = (rows(&table, train_rows), rows(&table, test_rows));
    let d = table.columns;
    for j in 0..d {
        let column = train.features.iter().skip(j).step_by(d);
        let (lo, hi) = column.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
        // In f64: the range of two extreme float32 values overflows float32.
        let (lo, hi) = (f64::from(lo), f64::from(hi));
        let scale = if hi > lo { 1.0 / (hi - lo) } else { 0.0 };
        for t in [&mut train, &mut test] {
            for v in t.features.iter_mut().skip(j).step_by(d) {
                *v = ((f64::from(*v) - lo) * scale).clamp(0.0, 1.0) as f32;
            }
        }
    }
    Ok(Split {
        train: Samples::Table(train),
        test: Samples::Table(test),
    })
}

/// The rows `indices` of `table`, in that order.
fn rows(table: &Table, indices: &[usize]) -> Table {
    Table {
        features: indices
            .iter()
            .flat_map(|&i| table.row(i).iter().copied())
            .collect(),
        labels: indices.iter().map(|&i| table.labels[i]).collect(),
        columns: table.columns,
        names: table.names.clone(),
    }
}

impl From<selfsup_data::Split> for Split {
    fn from(split: selfsup_data::Split) -> Split {
        Split {
            train: Samples::Images(split.train),
            test: Samples::Images(split.test),
        }
    }
}
