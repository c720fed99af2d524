//! Shared by the digits examples: the embedded scikit-learn digits, augmentations and a kNN
//! evaluation. Included with `#[path]`, so each example stays one file to read.
#![allow(dead_code)] // Each example uses its own subset.

use burn::tensor::{Device, Int, Tensor, TensorData};

pub const SIDE: usize = 8;
pub const PIXELS: usize = SIDE * SIDE;

/// Images scaled to `[0, 1]` (row-major `[n, 64]`) and labels.
pub struct Digits {
    pub images: Vec<f32>,
    pub labels: Vec<i64>,
}

impl Digits {
    /// scikit-learn's digits, embedded in selfsup-data (all 1,797, in file order).
    pub fn load() -> Result<Digits, String> {
        let split = selfsup::data::digits();
        let (mut images, mut labels) = (Vec::new(), Vec::new());
        for set in [&split.train, &split.test] {
            images.extend(set.pixels.iter().map(|&p| p as f32 / 255.0));
            labels.extend(set.labels.iter().map(|&l| l as i64));
        }
        Ok(Digits { images, labels })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// The first `split` samples for training, the rest for testing.
    pub fn split(self, split: usize) -> (Digits, Digits) {
        let (a, b) = self.images.split_at(split * PIXELS);
        let (la, lb) = self.labels.split_at(split);
        (
            Digits {
                images: a.to_vec(),
                labels: la.to_vec(),
            },
            Digits {
                images: b.to_vec(),
                labels: lb.to_vec(),
            },
        )
    }

    pub fn image(&self, i: usize) -> &[f32] {
        &self.images[i * PIXELS..(i + 1) * PIXELS]
    }

    /// `[n, 1, 8, 8]` images of the given samples.
    pub fn tensor(&self, indices: &[usize], device: &Device) -> Tensor<4> {
        let data: Vec<f32> = indices
            .iter()
            .flat_map(|&i| self.image(i).to_vec())
            .collect();
        Tensor::from_data(
            TensorData::new(data, [indices.len(), 1, SIDE, SIDE]),
            device,
        )
    }

    pub fn label_tensor(&self, indices: &[usize], device: &Device) -> Tensor<1, Int> {
        let data: Vec<i64> = indices.iter().map(|&i| self.labels[i]).collect();
        Tensor::from_data(TensorData::new(data, [indices.len()]), device)
    }
}

/// SplitMix64: reproducible augmentations on every backend.
pub struct Rng(pub u64);

impl Rng {
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n
    }

    pub fn shuffle(&mut self, items: &mut [usize]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// One augmented view: a random shift of up to one pixel (zero padding), random erasing of
/// a 3×3 patch with probability ½, and brightness jitter, clamped to `[0, 1]`.
pub fn augment(image: &[f32], rng: &mut Rng) -> Vec<f32> {
    let (dy, dx) = (rng.below(3) as isize - 1, rng.below(3) as isize - 1);
    let erase = (rng.uniform() < 0.5).then(|| (rng.below(SIDE - 2), rng.below(SIDE - 2)));
    let gain = 0.7 + 0.6 * rng.uniform() as f32;
    let mut out = vec![0.0; PIXELS];
    for y in 0..SIDE {
        for x in 0..SIDE {
            let (sy, sx) = (y as isize - dy, x as isize - dx);
            if sy < 0 || sx < 0 || sy >= SIDE as isize || sx >= SIDE as isize {
                continue;
            }
            if let Some((ey, ex)) = erase
                && (ey..ey + 3).contains(&y)
                && (ex..ex + 3).contains(&x)
            {
                continue;
            }
            out[y * SIDE + x] = (image[sy as usize * SIDE + sx as usize] * gain).clamp(0.0, 1.0);
        }
    }
    out
}

/// A batch of augmented views `[n, 1, 8, 8]` of the given samples.
pub fn views(data: &Digits, indices: &[usize], rng: &mut Rng, device: &Device) -> Tensor<4> {
    let pixels: Vec<f32> = indices
        .iter()
        .flat_map(|&i| augment(data.image(i), rng))
        .collect();
    Tensor::from_data(
        TensorData::new(pixels, [indices.len(), 1, SIDE, SIDE]),
        device,
    )
}

/// The standard SSL kNN protocol (cosine, k = 20, votes weighted by `exp(sim / 0.1)`).
pub fn knn_accuracy(
    train: Tensor<2>,
    train_labels: &[i64],
    test: Tensor<2>,
    test_labels: &[i64],
    classes: usize,
) -> f64 {
    let device = train.device();
    let labels =
        |l: &[i64]| Tensor::<1, Int>::from_data(TensorData::new(l.to_vec(), [l.len()]), &device);
    selfsup::eval::knn_accuracy(
        &selfsup::eval::KnnConfig::new(),
        train,
        labels(train_labels),
        test,
        labels(test_labels),
        classes,
    )
}

/// Prints the kNN accuracy of `encode`'s features beside raw pixels (train = bank, test =
/// queries).
pub fn report(
    what: &str,
    encode: impl Fn(Tensor<4>) -> Tensor<2>,
    train: &Digits,
    test: &Digits,
    device: &Device,
) {
    let all = |d: &Digits| (0..d.len()).collect::<Vec<_>>();
    let features = |d: &Digits| encode(d.tensor(&all(d), device));
    let learned = knn_accuracy(
        features(train),
        &train.labels,
        features(test),
        &test.labels,
        10,
    );
    let pixels = knn_accuracy(
        raw(train, device),
        &train.labels,
        raw(test, device),
        &test.labels,
        10,
    );
    println!(
        "kNN accuracy (cosine, k = 20, weighted), raw pixels: {:.1} %",
        pixels * 100.0
    );
    println!(
        "kNN accuracy (cosine, k = 20, weighted), {what}: {:.1} %",
        learned * 100.0
    );
}

/// Raw pixels of every sample, `[n, 64]`.
pub fn raw(data: &Digits, device: &Device) -> Tensor<2> {
    let n = data.len();
    Tensor::from_data(TensorData::new(data.images.clone(), [n, PIXELS]), device)
}
