//! Batched, seeded image augmentations on device tensors.
//!
//! A [`Pipeline`] is a list of [`Augmentation`]s applied to a batch `[N, C, H, W]` of images in
//! `[0, 1]`. The random choices (crop boxes, flips, jitter factors…) are drawn per image on the
//! host from an [`Rng`], so a seed gives the same views on every backend; the pixels never leave
//! the device.
//!
//! Resampling steps are linear and separable — a resized crop, a flip and a Gaussian blur each map
//! an image `X` to `R · X · Cᵀ` with per-image matrices — so consecutive ones are composed on the
//! host and applied as two batched matrix products, one for rows and one for columns.

use burn::tensor::ops::GridSampleOptions;
use burn::tensor::{Device, Tensor, TensorData};
use selfsup_data::short;
use serde::{Deserialize, Serialize};

use crate::Rng;

/// One augmentation step. Probabilities `p` are per image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Augmentation {
    /// Crops a box of `scale` × the image area (uniform) and aspect ratio `ratio` (log-uniform),
    /// resized bilinearly to `size = [height, width]`, as torchvision's `RandomResizedCrop`: a
    /// draw whose box does not fit inside the image is redrawn (ten tries), then the largest
    /// centred box with an aspect in `ratio` is taken. Boxes have sub-pixel corners.
    ResizedCrop {
        /// Output `[height, width]`.
        size: [usize; 2],
        /// Range of the box's area as a fraction of the image's.
        scale: [f64; 2],
        /// Range of the box's width / height.
        ratio: [f64; 2],
    },
    /// Mirrors left–right.
    HorizontalFlip {
        /// Probability.
        p: f64,
    },
    /// Rotates by an angle uniform in `[-degrees, degrees]` about the centre (bilinear, zeros
    /// outside).
    Rotation {
        /// Largest angle, in degrees.
        degrees: f64,
        /// Probability.
        p: f64,
    },
    /// torchvision's brightness and contrast jitter: brightness `x·b`,
    /// `b ~ U(max(0, 1 − brightness), 1 + brightness)` (black stays black), clamped to `[0, 1]`,
    /// then contrast `(x − m)·c + m`, `c ~ U(max(0, 1 − contrast), 1 + contrast)` around the
    /// image's mean luma `m` (ITU-R 601 for RGB), clamped to `[0, 1]`. torchvision applies its
    /// factors in a random order; here brightness always comes first.
    ColorJitter {
        /// Largest relative brightness change.
        brightness: f64,
        /// Largest relative contrast change.
        contrast: f64,
        /// Probability.
        p: f64,
    },
    /// Replaces RGB by its luma (ITU-R 601), kept as three channels; no effect on one channel.
    Grayscale {
        /// Probability.
        p: f64,
    },
    /// Gaussian blur with σ uniform in `sigma` (pixels), kernel radius ⌈3σ⌉, reflected borders.
    GaussianBlur {
        /// Range of σ.
        sigma: [f64; 2],
        /// Probability.
        p: f64,
    },
    /// Adds `N(0, std²)` noise per pixel, then clamps to `[0, 1]`.
    GaussianNoise {
        /// Standard deviation.
        std: f64,
        /// Probability.
        p: f64,
    },
    /// Sets a random box of `scale` × the area and aspect ratio `ratio` (log-uniform) to zero.
    RandomErasing {
        /// Range of the box's area as a fraction of the image's.
        scale: [f64; 2],
        /// Range of the box's width / height.
        ratio: [f64; 2],
        /// Probability.
        p: f64,
    },
    /// Splits the image into `patch × patch` squares and zeroes a random `ratio` of them
    /// (masked-image modelling).
    PatchMask {
        /// Side of a patch, in pixels.
        patch: usize,
        /// Fraction of patches masked.
        ratio: f64,
    },
    /// Inverts the pixels at or above `threshold`: `x ↦ 1 − x`.
    Solarize {
        /// Threshold in `[0, 1]`.
        threshold: f64,
        /// Probability.
        p: f64,
    },
}

fn check_probability(name: &str, p: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!("{name}: p must be in [0, 1], got {}", short(p)))
    }
}

fn check_range(name: &str, field: &str, [low, high]: [f64; 2], min: f64) -> Result<(), String> {
    if low.is_finite() && high.is_finite() && min <= low && low <= high {
        Ok(())
    } else {
        let bound = if min > 0.0 {
            "low > 0".to_string()
        } else {
            format!("low >= {min}")
        };
        Err(format!(
            "{name}: {field} must be an increasing range [low, high] with {bound}, got [{}, {}]",
            short(low),
            short(high)
        ))
    }
}

impl Augmentation {
    /// Checks the parameters.
    ///
    /// # Errors
    ///
    /// A message naming the step, the field and the value, e.g.
    /// `"horizontal_flip: p must be in [0, 1], got 1.5"`.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Augmentation::ResizedCrop { size, scale, ratio } => {
                if size[0] == 0 || size[1] == 0 || size[0] > MAX_SIDE || size[1] > MAX_SIDE {
                    return Err(format!(
                        "resized_crop: size must be within 1..={MAX_SIDE} a side, got [{}, {}]",
                        size[0], size[1]
                    ));
                }
                check_range("resized_crop", "scale", scale, f64::MIN_POSITIVE)?;
                if scale[1] > 1.0 {
                    return Err(format!(
                        "resized_crop: scale is a fraction of the image's area, at most 1, got \
                         [{}, {}]",
                        scale[0], scale[1]
                    ));
                }
                check_range("resized_crop", "ratio", ratio, f64::MIN_POSITIVE)
            }
            Augmentation::HorizontalFlip { p } => check_probability("horizontal_flip", p),
            Augmentation::Rotation { degrees, p } => {
                if !(degrees.is_finite() && (0.0..=360.0).contains(&degrees)) {
                    return Err(format!(
                        "rotation: degrees must be in [0, 360], got {}",
                        short(degrees)
                    ));
                }
                check_probability("rotation", p)
            }
            Augmentation::ColorJitter {
                brightness,
                contrast,
                p,
            } => {
                if !(brightness.is_finite() && (0.0..=10.0).contains(&brightness)) {
                    return Err(format!(
                        "color_jitter: brightness must be in [0, 10] (factors up to 1 + brightness), got {}",
                        short(brightness)
                    ));
                }
                if !(0.0..=1.0).contains(&contrast) {
                    return Err(format!(
                        "color_jitter: contrast must be in [0, 1], got {}",
                        short(contrast)
                    ));
                }
                check_probability("color_jitter", p)
            }
            Augmentation::Grayscale { p } => check_probability("grayscale", p),
            Augmentation::GaussianBlur { sigma, p } => {
                check_range("gaussian_blur", "sigma", sigma, f64::MIN_POSITIVE)?;
                if sigma[1] > MAX_BLUR_SIGMA {
                    return Err(format!(
                        "gaussian_blur: sigma must be at most {MAX_BLUR_SIGMA} pixels (a wider \
                         blur flattens any image selfsup trains on, and its kernel of radius 3σ \
                         would take hours), got [{}, {}]",
                        short(sigma[0]),
                        short(sigma[1])
                    ));
                }
                check_probability("gaussian_blur", p)
            }
            Augmentation::GaussianNoise { std, p } => {
                if !(std.is_finite() && (0.0..=10.0).contains(&std)) {
                    return Err(format!(
                        "gaussian_noise: std must be in [0, 10] (pixels lie in [0, 1]), got {}",
                        short(std)
                    ));
                }
                check_probability("gaussian_noise", p)
            }
            Augmentation::RandomErasing { scale, ratio, p } => {
                check_range("random_erasing", "scale", scale, 0.0)?;
                if scale[1] > 1.0 {
                    return Err(format!(
                        "random_erasing: scale must be within [0, 1], got [{}, {}]",
                        short(scale[0]),
                        short(scale[1])
                    ));
                }
                check_range("random_erasing", "ratio", ratio, f64::MIN_POSITIVE)?;
                if scale[0] >= 1.0 && p >= 1.0 {
                    return Err(format!(
                        "random_erasing: scale [{}, {}] with p = 1 erases every whole image; \
                         lower the scale or p",
                        scale[0], scale[1]
                    ));
                }
                check_probability("random_erasing", p)
            }
            Augmentation::PatchMask { patch, ratio } => {
                if patch == 0 {
                    return Err("patch_mask: patch must be > 0, got 0".to_string());
                }
                if !(0.0..1.0).contains(&ratio) {
                    return Err(format!(
                        "patch_mask: ratio must be in [0, 1) (1 hides every patch), got {}",
                        short(ratio)
                    ));
                }
                Ok(())
            }
            Augmentation::Solarize { threshold, p } => {
                if !(0.0..=1.0).contains(&threshold) {
                    return Err(format!(
                        "solarize: threshold must be in [0, 1], got {}",
                        short(threshold)
                    ));
                }
                check_probability("solarize", p)
            }
        }
    }
}

/// The largest output side of a resized crop.
pub const MAX_SIDE: usize = 4096;
/// The largest blur σ, in pixels.
pub const MAX_BLUR_SIGMA: f64 = 100.0;

/// A list of augmentations applied in order to a batch.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// The steps, first applied first.
    pub steps: Vec<Augmentation>,
}

impl Pipeline {
    /// A pipeline of `steps`.
    ///
    /// # Panics
    ///
    /// When a step's parameters are invalid (see [`Augmentation::validate`]).
    pub fn new(steps: Vec<Augmentation>) -> Self {
        let pipeline = Pipeline { steps };
        if let Err(message) = pipeline.validate() {
            panic!("{message}");
        }
        pipeline
    }

    /// The same steps with each resized crop's output width set to its height × `aspect`
    /// (rounded, at least 1 pixel): a square preset made for `H × W` images of another
    /// aspect, e.g. `Pipeline::simclr_grayscale(h).with_aspect(w as f64 / h as f64)`.
    ///
    /// # Panics
    ///
    /// When `aspect` is not a positive finite number.
    pub fn with_aspect(mut self, aspect: f64) -> Self {
        assert!(
            aspect.is_finite() && aspect > 0.0,
            "Pipeline::with_aspect: the aspect (width / height) must be positive and finite, \
             got {aspect}"
        );
        for step in &mut self.steps {
            if let Augmentation::ResizedCrop { size, .. } = step {
                size[1] = ((size[0] as f64 * aspect).round() as usize).max(1);
            }
        }
        self
    }

    /// Checks every step (for pipelines read from user files).
    ///
    /// # Errors
    ///
    /// The first invalid step's message.
    pub fn validate(&self) -> Result<(), String> {
        self.steps.iter().try_for_each(Augmentation::validate)
    }

    /// SimCLR's views for small grayscale images (the selfsup Fashion-MNIST recipe): random
    /// resized crop to `side × side` (area 0.3–1, aspect 3/4–4/3), horizontal flip (p = 0.5),
    /// brightness and contrast ×(0.6–1.4).
    pub fn simclr_grayscale(side: usize) -> Self {
        Pipeline::new(crop_flip_jitter(side, [0.3, 1.0], 1.0))
    }

    /// SimCLR's views for RGB images (paper, appendix A): crop (area 0.08–1), flip, colour jitter
    /// (p = 0.8), grayscale (p = 0.2), blur (p = 0.5).
    pub fn simclr_rgb(side: usize) -> Self {
        let mut steps = crop_flip_jitter(side, [0.08, 1.0], 0.8);
        steps.push(Augmentation::Grayscale { p: 0.2 });
        steps.push(Augmentation::GaussianBlur {
            sigma: [0.1, 2.0],
            p: 0.5,
        });
        Pipeline::new(steps)
    }

    /// BYOL's asymmetric pair (paper, table 6): both views crop, flip and jitter; the first is
    /// always blurred and never solarized, the second blurred with p = 0.1 and solarized with
    /// p = 0.2.
    pub fn byol_pair(side: usize) -> [Pipeline; 2] {
        let view = |blur: f64, solarize: f64| {
            let mut steps = crop_flip_jitter(side, [0.3, 1.0], 0.8);
            steps.push(Augmentation::GaussianBlur {
                sigma: [0.1, 1.0],
                p: blur,
            });
            steps.push(Augmentation::Solarize {
                threshold: 0.5,
                p: solarize,
            });
            Pipeline::new(steps)
        };
        [view(1.0, 0.0), view(0.1, 0.2)]
    }

    /// DINO's multi-crop: two global crops (`global_side`, area 0.4–1) then `locals` local crops
    /// (`local_side`, area 0.05–0.4), each flipped and jittered (p = 0.8).
    pub fn dino_multi_crop(global_side: usize, local_side: usize, locals: usize) -> Vec<Pipeline> {
        let global = Pipeline::new(crop_flip_jitter(global_side, [0.4, 1.0], 0.8));
        let local = Pipeline::new(crop_flip_jitter(local_side, [0.05, 0.4], 0.8));
        let mut views = vec![global.clone(), global];
        views.extend((0..locals).map(|_| local.clone()));
        views
    }

    /// Views of table rows (`[N, 1, 1, D]`, each feature scaled to `[0, 1]`): Gaussian noise of
    /// standard deviation 0.1 on every feature (clamped to `[0, 1]`), then 30 % of the features
    /// set to zero — the feature-corruption views of tabular SSL (VIME, SCARF).
    pub fn tabular() -> Self {
        Pipeline::new(vec![
            Augmentation::GaussianNoise { std: 0.1, p: 1.0 },
            Augmentation::PatchMask {
                patch: 1,
                ratio: 0.3,
            },
        ])
    }

    /// Applies the steps to `images` (`[N, C, H, W]`, values in `[0, 1]`), each image with a
    /// generator of its own drawn from `rng` (see [`apply_each`](Self::apply_each)).
    ///
    /// # Shapes
    ///
    /// - images: `[N, C, H, W]` → `[N, C, H', W']` (`H', W'` set by the last resized crop)
    pub fn apply(&self, images: Tensor<4>, rng: &mut Rng) -> Tensor<4> {
        let mut rngs = image_streams(rng, images.dims()[0]);
        self.apply_each(images, &mut rngs)
    }

    /// Applies the steps to `images`, image `i` drawing every random choice from `rngs[i]`:
    /// an image's view depends on its own generator only, not on the batch it is in, its
    /// place there, or the rank of a data-parallel run that draws it.
    ///
    /// # Shapes
    ///
    /// - images: `[N, C, H, W]` → `[N, C, H', W']` (`H', W'` set by the last resized crop)
    ///
    /// # Panics
    ///
    /// When `rngs` does not hold one generator per image.
    pub fn apply_each(&self, images: Tensor<4>, rngs: &mut [Rng]) -> Tensor<4> {
        let [n, _, h, w] = images.dims();
        assert_eq!(
            rngs.len(),
            n,
            "Pipeline::apply_each: {} generators for {n} images; give one per image",
            rngs.len()
        );
        let mut x = images;
        let mut resample = Resample::identity(n, h, w);
        for step in &self.steps {
            let size = resample.out;
            match *step {
                Augmentation::ResizedCrop {
                    size: out,
                    scale,
                    ratio,
                } => {
                    resample = resample.then(Resample::crop(size, out, scale, ratio, rngs));
                }
                Augmentation::HorizontalFlip { p } => {
                    resample = resample.then(Resample::flip(size, p, rngs));
                }
                Augmentation::GaussianBlur { sigma, p } => {
                    resample = resample.then(Resample::blur(size, sigma, p, rngs));
                }
                _ => {
                    x = resample.apply(x);
                    resample = Resample::identity(n, resample.out[0], resample.out[1]);
                    x = pointwise(step, x, rngs);
                }
            }
        }
        resample.apply(x)
    }
}

/// One generator per image, drawn from `rng`.
fn image_streams(rng: &mut Rng, n: usize) -> Vec<Rng> {
    (0..n).map(|_| Rng::new(rng.next_u64())).collect()
}

/// The steps every preset starts with: a resized crop to `side × side` of area `scale`
/// (aspect 3/4–4/3), a horizontal flip (p = 0.5), then brightness and contrast ×(0.6–1.4)
/// with probability `jitter`.
fn crop_flip_jitter(side: usize, scale: [f64; 2], jitter: f64) -> Vec<Augmentation> {
    vec![
        Augmentation::ResizedCrop {
            size: [side, side],
            scale,
            ratio: [3.0 / 4.0, 4.0 / 3.0],
        },
        Augmentation::HorizontalFlip { p: 0.5 },
        Augmentation::ColorJitter {
            brightness: 0.4,
            contrast: 0.4,
            p: jitter,
        },
    ]
}

/// Makes one view per pipeline of the same images, each image with a generator of its own
/// drawn from `rng` (see [`views_each`]).
pub fn views(pipelines: &[Pipeline], images: Tensor<4>, rng: &mut Rng) -> Vec<Tensor<4>> {
    let mut rngs = image_streams(rng, images.dims()[0]);
    views_each(pipelines, images, &mut rngs)
}

/// Makes one view per pipeline of the same images, image `i` drawing all its views' random
/// choices from `rngs[i]` (see [`Pipeline::apply_each`]): a sample's views are the same
/// whichever batch, position or rank draws them.
///
/// # Panics
///
/// When `rngs` does not hold one generator per image.
pub fn views_each(pipelines: &[Pipeline], images: Tensor<4>, rngs: &mut [Rng]) -> Vec<Tensor<4>> {
    pipelines
        .iter()
        .map(|pipeline| pipeline.apply_each(images.clone(), rngs))
        .collect()
}

/// Per-image separable linear maps `X ↦ R · X · Cᵀ`, composed on the host.
struct Resample {
    n: usize,
    input: [usize; 2],
    out: [usize; 2],
    /// `[n, out_h, in_h]`, or `None` for the identity.
    rows: Option<Vec<f32>>,
    /// `[n, out_w, in_w]`, or `None` for the identity.
    cols: Option<Vec<f32>>,
}

impl Resample {
    fn identity(n: usize, h: usize, w: usize) -> Self {
        Resample {
            n,
            input: [h, w],
            out: [h, w],
            rows: None,
            cols: None,
        }
    }

    fn crop(
        [h, w]: [usize; 2],
        size: [usize; 2],
        scale: [f64; 2],
        ratio: [f64; 2],
        rngs: &mut [Rng],
    ) -> Self {
        let n = rngs.len();
        let mut rows = vec![0.0; n * size[0] * h];
        let mut cols = vec![0.0; n * size[1] * w];
        for (i, rng) in rngs.iter_mut().enumerate() {
            let (top, left, box_h, box_w) = random_box(h, w, scale, ratio, rng);
            bilinear(
                &mut rows[i * size[0] * h..][..size[0] * h],
                h,
                size[0],
                top,
                box_h,
            );
            bilinear(
                &mut cols[i * size[1] * w..][..size[1] * w],
                w,
                size[1],
                left,
                box_w,
            );
        }
        Resample {
            n,
            input: [h, w],
            out: size,
            rows: Some(rows),
            cols: Some(cols),
        }
    }

    fn flip([h, w]: [usize; 2], p: f64, rngs: &mut [Rng]) -> Self {
        let n = rngs.len();
        let mut cols = vec![0.0; n * w * w];
        for (i, rng) in rngs.iter_mut().enumerate() {
            let flip = rng.bernoulli(p);
            for j in 0..w {
                let source = if flip { w - 1 - j } else { j };
                cols[i * w * w + j * w + source] = 1.0;
            }
        }
        Resample {
            n,
            input: [h, w],
            out: [h, w],
            rows: None,
            cols: Some(cols),
        }
    }

    fn blur([h, w]: [usize; 2], sigma: [f64; 2], p: f64, rngs: &mut [Rng]) -> Self {
        let n = rngs.len();
        let mut rows = vec![0.0; n * h * h];
        let mut cols = vec![0.0; n * w * w];
        for (i, rng) in rngs.iter_mut().enumerate() {
            let sigma = rng.range(sigma[0], sigma[1]);
            let blur = rng.bernoulli(p);
            gaussian(&mut rows[i * h * h..][..h * h], h, blur.then_some(sigma));
            gaussian(&mut cols[i * w * w..][..w * w], w, blur.then_some(sigma));
        }
        Resample {
            n,
            input: [h, w],
            out: [h, w],
            rows: Some(rows),
            cols: Some(cols),
        }
    }

    /// `self` followed by `next`.
    fn then(self, next: Resample) -> Resample {
        let [h0, w0] = self.input;
        let [h1, w1] = self.out;
        let [h2, w2] = next.out;
        Resample {
            n: self.n,
            input: self.input,
            out: next.out,
            rows: compose(self.n, next.rows, self.rows, h2, h1, h0),
            cols: compose(self.n, next.cols, self.cols, w2, w1, w0),
        }
    }

    fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let [n, c, _, _] = x.dims();
        let device = x.device();
        let [in_h, in_w] = self.input;
        let [out_h, out_w] = self.out;
        let mut x = x;
        if let Some(rows) = &self.rows {
            let rows = matrices(rows.clone(), [n, out_h, in_h], c, &device);
            x = rows.matmul(x);
        }
        if let Some(cols) = &self.cols {
            let cols = matrices(cols.clone(), [n, out_w, in_w], c, &device);
            x = x.matmul(cols.swap_dims(2, 3));
        }
        x
    }
}

/// Uploads `[n, r, c]` matrices as `[n, channels, r, c]`.
fn matrices(
    values: Vec<f32>,
    [n, r, c]: [usize; 3],
    channels: usize,
    device: &Device,
) -> Tensor<4> {
    let m = Tensor::<4>::from_data(TensorData::new(values, [n, 1, r, c]), device);
    if channels == 1 {
        m
    } else {
        m.repeat_dim(1, channels)
    }
}

/// Per image, `b · a` for `[n, out, mid]` · `[n, mid, inner]`; `None` is the identity.
fn compose(
    n: usize,
    b: Option<Vec<f32>>,
    a: Option<Vec<f32>>,
    out: usize,
    mid: usize,
    inner: usize,
) -> Option<Vec<f32>> {
    match (b, a) {
        (None, a) => a,
        (b, None) => b,
        (Some(b), Some(a)) => {
            let mut product = vec![0.0f32; n * out * inner];
            for i in 0..n {
                let (b, a) = (
                    &b[i * out * mid..][..out * mid],
                    &a[i * mid * inner..][..mid * inner],
                );
                let p = &mut product[i * out * inner..][..out * inner];
                for r in 0..out {
                    for k in 0..mid {
                        let coefficient = b[r * mid + k];
                        if coefficient != 0.0 {
                            for (dst, src) in p[r * inner..][..inner]
                                .iter_mut()
                                .zip(&a[k * inner..][..inner])
                            {
                                *dst += coefficient * src;
                            }
                        }
                    }
                }
            }
            Some(product)
        }
    }
}

/// A box of random area and aspect ratio: `(top, left, height, width)` in pixels. A box larger
/// than the image along an axis is placed so that it covers the image on that axis.
fn random_box(
    h: usize,
    w: usize,
    scale: [f64; 2],
    ratio: [f64; 2],
    rng: &mut Rng,
) -> (f64, f64, f64, f64) {
    // torchvision's RandomResizedCrop: up to ten draws of (area, aspect) for a box inside the
    // image, placed uniformly; else the largest centred box of an aspect within `ratio`.
    let (hf, wf) = (h as f64, w as f64);
    for _ in 0..10 {
        let area = hf * wf * rng.range(scale[0], scale[1]);
        let aspect = rng.range(ratio[0].ln(), ratio[1].ln()).exp();
        let box_w = (area * aspect).sqrt();
        let box_h = (area / aspect).sqrt();
        if box_w <= wf && box_h <= hf {
            let top = rng.range(0.0, hf - box_h);
            let left = rng.range(0.0, wf - box_w);
            return (top, left, box_h, box_w);
        }
    }
    let aspect = wf / hf;
    let (box_h, box_w) = if aspect < ratio[0] {
        (wf / ratio[0], wf)
    } else if aspect > ratio[1] {
        (hf, hf * ratio[1])
    } else {
        (hf, wf)
    };
    ((hf - box_h) / 2.0, (wf - box_w) / 2.0, box_h, box_w)
}

/// Rows of a bilinear resampling matrix `[out, input]` mapping the span
/// `[start, start + extent)` of an axis of `input` pixels onto `out` pixels (pixel centres,
/// `align_corners = false`); samples beyond the outermost pixel centres take the edge pixel.
fn bilinear(matrix: &mut [f32], input: usize, out: usize, start: f64, extent: f64) {
    for j in 0..out {
        // Clamped to the outermost pixel centres, as PyTorch's bilinear interpolation does.
        let source =
            (start + (j as f64 + 0.5) * extent / out as f64 - 0.5).clamp(0.0, (input - 1) as f64);
        let floor = source.floor();
        let t = source - floor;
        for (index, weight) in [(floor, 1.0 - t), (floor + 1.0, t)] {
            if index >= 0.0 && index < input as f64 {
                matrix[j * input + index as usize] += weight as f32;
            }
        }
    }
}

/// A Gaussian blur matrix `[side, side]` with reflected borders, or the identity for `None`.
fn gaussian(matrix: &mut [f32], side: usize, sigma: Option<f64>) {
    let Some(sigma) = sigma else {
        for j in 0..side {
            matrix[j * side + j] = 1.0;
        }
        return;
    };
    let radius = (3.0 * sigma).ceil() as isize;
    let weights: Vec<f64> = (-radius..=radius)
        .map(|k| (-(k * k) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let last = side as isize - 1;
    for j in 0..side as isize {
        for (k, weight) in (-radius..=radius).zip(&weights) {
            let mut source = j + k;
            // Reflect (without repeating the edge) until inside; a kernel wider than the image
            // bounces more than once.
            while source < 0 || source > last {
                source = if source < 0 {
                    -source
                } else {
                    2 * last - source
                };
                if last == 0 {
                    source = 0;
                }
            }
            matrix[j as usize * side + source as usize] += (weight / total) as f32;
        }
    }
}

/// A per-image value as a `[n, 1, 1, 1]` tensor.
fn per_image(values: Vec<f32>, device: &Device) -> Tensor<4> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n, 1, 1, 1]), device)
}

/// ITU-R 601 luma of RGB images: `[N, 3, H, W]` → `[N, 1, H, W]`.
fn luma(x: Tensor<4>) -> Tensor<4> {
    let weights = Tensor::<4>::from_data(
        TensorData::new(vec![0.299f32, 0.587, 0.114], [1, 3, 1, 1]),
        &x.device(),
    );
    (x * weights).sum_dim(1)
}

/// The steps that act on pixel values (everything but the resampling ones).
fn pointwise(step: &Augmentation, x: Tensor<4>, rngs: &mut [Rng]) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let device = x.device();
    match *step {
        Augmentation::ColorJitter {
            brightness,
            contrast,
            p,
        } => {
            let (mut scale, mut factor) = (Vec::with_capacity(n), Vec::with_capacity(n));
            for rng in rngs.iter_mut() {
                let b = rng.range((1.0 - brightness).max(0.0), 1.0 + brightness);
                let f = rng.range((1.0 - contrast).max(0.0), 1.0 + contrast);
                let apply = rng.bernoulli(p);
                scale.push(if apply { b as f32 } else { 1.0 });
                factor.push(if apply { f as f32 } else { 1.0 });
            }
            let x = (x * per_image(scale, &device)).clamp(0.0, 1.0);
            let gray = if c == 3 { luma(x.clone()) } else { x.clone() };
            let mean = gray
                .reshape([n as i32, -1])
                .mean_dim(1)
                .reshape([n, 1, 1, 1]);
            ((x - mean.clone()) * per_image(factor, &device) + mean).clamp(0.0, 1.0)
        }
        Augmentation::Grayscale { p } => {
            let chosen: Vec<f32> = rngs
                .iter_mut()
                .map(|r| r.bernoulli(p) as u8 as f32)
                .collect();
            if c != 3 {
                return x;
            }
            let gray = luma(x.clone()).repeat_dim(1, 3);
            x.clone() + (gray - x) * per_image(chosen, &device)
        }
        Augmentation::Rotation { degrees, p } => {
            let mut grid = Vec::with_capacity(n * h * w * 2);
            for rng in rngs.iter_mut() {
                let angle = rng.range(-degrees, degrees).to_radians();
                let angle = if rng.bernoulli(p) { angle } else { 0.0 };
                let (sin, cos) = angle.sin_cos();
                for i in 0..h {
                    for j in 0..w {
                        // Pixel-centred coordinates, so that non-square images rotate rigidly.
                        let px = j as f64 + 0.5 - w as f64 / 2.0;
                        let py = i as f64 + 0.5 - h as f64 / 2.0;
                        let sx = cos * px + sin * py;
                        let sy = -sin * px + cos * py;
                        grid.push((2.0 * sx / w as f64) as f32);
                        grid.push((2.0 * sy / h as f64) as f32);
                    }
                }
            }
            let grid = Tensor::<4>::from_data(TensorData::new(grid, [n, h, w, 2]), &device);
            x.grid_sample_2d(grid, GridSampleOptions::default())
        }
        Augmentation::GaussianNoise { std, p } => {
            let mut noise = Vec::with_capacity(n * c * h * w);
            for rng in rngs.iter_mut() {
                let scale = if rng.bernoulli(p) { std } else { 0.0 };
                noise.extend((0..c * h * w).map(|_| (scale * rng.normal()) as f32));
            }
            let noise = Tensor::<4>::from_data(TensorData::new(noise, [n, c, h, w]), &device);
            (x + noise).clamp(0.0, 1.0)
        }
        Augmentation::RandomErasing { scale, ratio, p } => {
            let (mut rows, mut cols) = (vec![0.0f32; n * h], vec![0.0f32; n * w]);
            for (i, rng) in rngs.iter_mut().enumerate() {
                let area = (h * w) as f64 * rng.range(scale[0], scale[1]);
                let aspect = rng.range(ratio[0].ln(), ratio[1].ln()).exp();
                let box_h = ((area / aspect).sqrt().round() as usize).min(h);
                let box_w = ((area * aspect).sqrt().round() as usize).min(w);
                let top = rng.below(h - box_h + 1);
                let left = rng.below(w - box_w + 1);
                if rng.bernoulli(p) {
                    rows[i * h + top..][..box_h].fill(1.0);
                    cols[i * w + left..][..box_w].fill(1.0);
                }
            }
            let rows = Tensor::<4>::from_data(TensorData::new(rows, [n, 1, h, 1]), &device);
            let cols = Tensor::<4>::from_data(TensorData::new(cols, [n, 1, 1, w]), &device);
            x * (rows * cols).neg().add_scalar(1.0)
        }
        Augmentation::PatchMask { patch, ratio } => {
            let (grid_h, grid_w) = (h.div_ceil(patch), w.div_ceil(patch));
            let patches = grid_h * grid_w;
            let masked = (ratio * patches as f64).round() as usize;
            let mut mask = vec![1.0f32; n * h * w];
            for (i, rng) in rngs.iter_mut().enumerate() {
                for &k in &rng.permutation(patches)[..masked] {
                    let (pr, pc) = (k / grid_w, k % grid_w);
                    for r in pr * patch..((pr + 1) * patch).min(h) {
                        mask[i * h * w + r * w + pc * patch..]
                            [..((pc + 1) * patch).min(w) - pc * patch]
                            .fill(0.0);
                    }
                }
            }
            x * Tensor::<4>::from_data(TensorData::new(mask, [n, 1, h, w]), &device)
        }
        Augmentation::Solarize { threshold, p } => {
            let chosen: Vec<f32> = rngs
                .iter_mut()
                .map(|r| r.bernoulli(p) as u8 as f32)
                .collect();
            let above =
                x.clone().greater_equal_elem(threshold).float() * per_image(chosen, &device);
            x.clone() + above * (x.mul_scalar(-2.0).add_scalar(1.0))
        }
        Augmentation::ResizedCrop { .. }
        | Augmentation::HorizontalFlip { .. }
        | Augmentation::GaussianBlur { .. } => unreachable!("resampling steps are composed"),
    }
}
