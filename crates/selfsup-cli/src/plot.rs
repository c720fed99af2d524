//! Two small pictures, drawn without a plotting library: the loss curve and a 2-D PCA scatter
//! of the test embeddings coloured by label. PNG encoding is the `png` crate's.

use std::path::Path;

use crate::UserError;

/// Ten distinguishable colours (one per class).
const PALETTE: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// 3×5 glyphs of the digits, one row per 3 bits.
const DIGITS: [[u8; 5]; 10] = [
    [7, 5, 5, 5, 7],
    [2, 6, 2, 2, 7],
    [7, 1, 7, 4, 7],
    [7, 1, 7, 1, 7],
    [5, 5, 7, 1, 1],
    [7, 4, 7, 1, 7],
    [7, 4, 7, 5, 7],
    [7, 1, 1, 1, 1],
    [7, 5, 7, 5, 7],
    [7, 5, 7, 1, 7],
];

struct Canvas {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Self {
        Canvas {
            width,
            height,
            rgb: vec![255; width * height * 3],
        }
    }

    fn set(&mut self, x: i64, y: i64, colour: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let at = (y as usize * self.width + x as usize) * 3;
            self.rgb[at..at + 3].copy_from_slice(&colour);
        }
    }

    fn rect(&mut self, x: i64, y: i64, w: i64, h: i64, colour: [u8; 3]) {
        for dy in 0..h {
            for dx in 0..w {
                self.set(x + dx, y + dy, colour);
            }
        }
    }

    fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), colour: [u8; 3]) {
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            let (x, y) = (x0 + t * (x1 - x0), y0 + t * (y1 - y0));
            self.rect(x.round() as i64, y.round() as i64, 2, 2, colour);
        }
    }

    fn digit(&mut self, x: i64, y: i64, d: usize, scale: i64, colour: [u8; 3]) {
        for (row, bits) in DIGITS[d % 10].iter().enumerate() {
            for col in 0..3 {
                if bits & (4 >> col) != 0 {
                    self.rect(
                        x + col * scale,
                        y + row as i64 * scale,
                        scale,
                        scale,
                        colour,
                    );
                }
            }
        }
    }

    fn number(&mut self, x: i64, y: i64, n: usize, scale: i64, colour: [u8; 3]) {
        self.text(x, y, &n.to_string(), scale, colour);
    }

    /// Digits, '.' and '-' only.
    fn text(&mut self, x: i64, y: i64, text: &str, scale: i64, colour: [u8; 3]) {
        for (i, c) in text.bytes().enumerate() {
            let x = x + i as i64 * 4 * scale;
            match c {
                b'0'..=b'9' => self.digit(x, y, (c - b'0') as usize, scale, colour),
                b'.' => self.rect(x + scale, y + 4 * scale, scale, scale, colour),
                b'-' => self.rect(x, y + 2 * scale, 3 * scale, scale, colour),
                _ => {}
            }
        }
    }

    fn frame(&mut self, (left, top, right, bottom): (i64, i64, i64, i64)) {
        let grey = [60, 60, 60];
        self.rect(left, top, right - left, 1, grey);
        self.rect(left, bottom, right - left + 1, 1, grey);
        self.rect(left, top, 1, bottom - top, grey);
        self.rect(right, top, 1, bottom - top, grey);
    }

    fn save(&self, path: &Path) -> Result<(), UserError> {
        let mut bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut bytes, self.width as u32, self.height as u32);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder
                .write_header()
                .map_err(|e| UserError(format!("{}: {e}", path.display())))?;
            writer
                .write_image_data(&self.rgb)
                .map_err(|e| UserError(format!("{}: {e}", path.display())))?;
        }
        crate::checkpoint::write_atomic(path, &bytes)
    }
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if low.is_finite() && high > low {
        (low, high)
    } else {
        (low.min(0.0), low.max(0.0) + 1.0)
    }
}

/// The loss of every step (thin) and its running mean over `window` steps (thick); the
/// x axis is the step, ticks mark epochs.
pub fn loss_curve(path: &Path, losses: &[f64], steps_per_epoch: usize) -> Result<(), UserError> {
    let (width, height) = (800, 500);
    let mut canvas = Canvas::new(width, height);
    let plot = (60i64, 30i64, width as i64 - 30, height as i64 - 50);
    canvas.frame(plot);
    let (low, high) = range(losses.iter().copied());
    let n = losses.len().max(2);
    let x = |i: usize| plot.0 as f64 + (plot.2 - plot.0) as f64 * i as f64 / (n - 1) as f64;
    let y = |v: f64| plot.3 as f64 - (plot.3 - plot.1) as f64 * (v - low) / (high - low);
    for epoch in 1..=losses.len() / steps_per_epoch.max(1) {
        let at = x(epoch * steps_per_epoch - 1).round() as i64;
        canvas.rect(at, plot.3 + 1, 1, 8, [60, 60, 60]);
        canvas.number(at - 4, plot.3 + 14, epoch, 3, [60, 60, 60]);
    }
    let grey = [60, 60, 60];
    canvas.text(4, plot.1, &format!("{high:.2}"), 2, grey);
    canvas.text(4, plot.3 - 10, &format!("{low:.2}"), 2, grey);
    for pair in losses.windows(2).enumerate() {
        let (i, w) = pair;
        canvas.line((x(i), y(w[0])), (x(i + 1), y(w[1])), [170, 200, 230]);
    }
    let window = (losses.len() / 50).max(1);
    let smooth: Vec<f64> = (0..losses.len())
        .map(|i| {
            let from = i.saturating_sub(window - 1);
            losses[from..=i].iter().sum::<f64>() / (i + 1 - from) as f64
        })
        .collect();
    for (i, w) in smooth.windows(2).enumerate() {
        canvas.line((x(i), y(w[0])), (x(i + 1), y(w[1])), PALETTE[0]);
    }
    canvas.save(path)
}

/// The first two principal components of `rows` (`n × d`, row-major), by power iteration on
/// the covariance with deflation.
pub fn pca_2d(rows: &[f32], n: usize, d: usize) -> Vec<[f64; 2]> {
    let mut mean = vec![0.0f64; d];
    for row in rows.chunks(d) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64 / n as f64;
        }
    }
    let mut cov = vec![0.0f64; d * d];
    for row in rows.chunks(d) {
        let centred: Vec<f64> = row.iter().zip(&mean).map(|(&v, m)| v as f64 - m).collect();
        for i in 0..d {
            for j in 0..d {
                cov[i * d + j] += centred[i] * centred[j];
            }
        }
    }
    let mut components = Vec::new();
    for k in 0..2 {
        let mut v: Vec<f64> = (0..d).map(|i| 1.0 + ((i * 7 + k * 3) % 5) as f64).collect();
        let mut eigenvalue = 0.0;
        for _ in 0..300 {
            let w: Vec<f64> = (0..d)
                .map(|i| (0..d).map(|j| cov[i * d + j] * v[j]).sum())
                .collect();
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm == 0.0 {
                break;
            }
            eigenvalue = norm;
            v = w.iter().map(|x| x / norm).collect();
        }
        for i in 0..d {
            for j in 0..d {
                cov[i * d + j] -= eigenvalue * v[i] * v[j];
            }
        }
        components.push(v);
    }
    rows.chunks(d)
        .map(|row| {
            let centred: Vec<f64> = row.iter().zip(&mean).map(|(&v, m)| v as f64 - m).collect();
            let project = |c: &Vec<f64>| centred.iter().zip(c).map(|(a, b)| a * b).sum::<f64>();
            [project(&components[0]), project(&components[1])]
        })
        .collect()
}

/// A scatter of 2-D points coloured by label, with a legend of class numbers.
pub fn scatter(path: &Path, points: &[[f64; 2]], labels: &[u8]) -> Result<(), UserError> {
    let (width, height) = (700, 600);
    let mut canvas = Canvas::new(width, height);
    let plot = (20i64, 20i64, width as i64 - 90, height as i64 - 20);
    canvas.frame(plot);
    let (x_low, x_high) = range(points.iter().map(|p| p[0]));
    let (y_low, y_high) = range(points.iter().map(|p| p[1]));
    for (p, &label) in points.iter().zip(labels) {
        let x =
            plot.0 as f64 + 4.0 + (plot.2 - plot.0 - 8) as f64 * (p[0] - x_low) / (x_high - x_low);
        let y =
            plot.3 as f64 - 4.0 - (plot.3 - plot.1 - 8) as f64 * (p[1] - y_low) / (y_high - y_low);
        canvas.rect(
            x as i64 - 1,
            y as i64 - 1,
            3,
            3,
            PALETTE[label as usize % 10],
        );
    }
    let classes = labels
        .iter()
        .map(|&l| l as usize + 1)
        .max()
        .unwrap_or(0)
        .min(10);
    for (class, &colour) in PALETTE.iter().enumerate().take(classes) {
        let y = 30 + class as i64 * 24;
        canvas.rect(plot.2 + 15, y, 14, 14, colour);
        canvas.number(plot.2 + 36, y, class, 3, [40, 40, 40]);
    }
    canvas.save(path)
}
