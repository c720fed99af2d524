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

/// Frame, ticks and text.
const INK: [u8; 3] = [40, 40, 40];
/// The per-step loss line.
const LIGHT: [u8; 3] = [170, 200, 230];

/// Width of one glyph of [`font8x8`] at scale 1 (its glyphs carry their own spacing).
const GLYPH: i64 = 8;

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

    /// `text` with its top-left corner at (x, y), glyphs `8 · scale` pixels square; characters
    /// outside ASCII are drawn as '?'.
    fn text(&mut self, x: i64, y: i64, text: &str, scale: i64, colour: [u8; 3]) {
        for (i, c) in text.chars().enumerate() {
            let left = x + i as i64 * GLYPH * scale;
            for (row, col) in glyph_pixels(c) {
                self.rect(left + col * scale, y + row * scale, scale, scale, colour);
            }
        }
    }

    /// `text` turned a quarter left (read bottom to top), its first glyph's bottom-left corner
    /// at (x, y): for a vertical axis name.
    fn text_up(&mut self, x: i64, y: i64, text: &str, colour: [u8; 3]) {
        for (i, c) in text.chars().enumerate() {
            let bottom = y - i as i64 * GLYPH;
            for (row, col) in glyph_pixels(c) {
                self.set(x + row, bottom - col, colour);
            }
        }
    }

    /// `text` centred on x.
    fn text_centred(&mut self, x: i64, y: i64, text: &str, scale: i64, colour: [u8; 3]) {
        self.text(x - text_width(text, scale) / 2, y, text, scale, colour);
    }

    fn frame(&mut self, (left, top, right, bottom): (i64, i64, i64, i64)) {
        self.rect(left, top, right - left, 1, INK);
        self.rect(left, bottom, right - left + 1, 1, INK);
        self.rect(left, top, 1, bottom - top, INK);
        self.rect(right, top, 1, bottom - top, INK);
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

/// The (row, column) of every pixel of `c`'s glyph, row 0 at the top.
fn glyph_pixels(c: char) -> impl Iterator<Item = (i64, i64)> {
    let glyph = font8x8::legacy::BASIC_LEGACY[if c.is_ascii() {
        c as usize
    } else {
        b'?' as usize
    }];
    (0..8).flat_map(move |row| {
        (0..8)
            .filter(move |&col| glyph[row] & (1 << col) != 0)
            .map(move |col| (row as i64, col as i64))
    })
}

fn text_width(text: &str, scale: i64) -> i64 {
    text.chars().count() as i64 * GLYPH * scale
}

/// A number for an axis: three significant digits.
fn tick(v: f64) -> String {
    let magnitude = v.abs();
    if magnitude != 0.0 && !(1e-2..1e4).contains(&magnitude) {
        format!("{v:.2e}")
    } else if magnitude >= 100.0 {
        format!("{v:.0}")
    } else if magnitude >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
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

/// The loss of every step (thin) and its running mean (thick) against the epoch, under
/// `title`; the axes are named, the legend says which line is which.
pub fn loss_curve(
    path: &Path,
    losses: &[f64],
    steps_per_epoch: usize,
    title: &str,
) -> Result<(), UserError> {
    draw_loss_curve(losses, steps_per_epoch, title).save(path)
}

fn draw_loss_curve(losses: &[f64], steps_per_epoch: usize, title: &str) -> Canvas {
    let (width, height) = (820, 540);
    let mut canvas = Canvas::new(width, height);
    canvas.text_centred(width as i64 / 2, 10, title, 2, INK);
    let plot = (84i64, 48i64, width as i64 - 24, height as i64 - 64);
    canvas.frame(plot);
    let (low, high) = range(losses.iter().copied());
    let n = losses.len().max(2);
    let x = |i: usize| plot.0 as f64 + (plot.2 - plot.0) as f64 * i as f64 / (n - 1) as f64;
    let y = |v: f64| plot.3 as f64 - (plot.3 - plot.1) as f64 * (v - low) / (high - low);
    // The vertical axis: five values, its name turned up the left edge.
    for k in 0..=4 {
        let v = low + (high - low) * k as f64 / 4.0;
        let at = y(v).round() as i64;
        canvas.rect(plot.0 - 6, at, 6, 1, INK);
        let label = tick(v);
        canvas.text(plot.0 - 10 - text_width(&label, 1), at - 4, &label, 1, INK);
    }
    canvas.text_up(
        10,
        (plot.1 + plot.3) / 2 + text_width("loss", 1) / 2,
        "loss",
        INK,
    );
    // The horizontal axis: the end of each epoch, labelled sparsely enough to read.
    let epochs = losses.len() / steps_per_epoch.max(1);
    let room = ((plot.2 - plot.0) / (text_width(&epochs.to_string(), 1) + 16)).max(1) as usize;
    let every = epochs.div_ceil(room).max(1);
    for epoch in 1..=epochs {
        let at = x(epoch * steps_per_epoch - 1).round() as i64;
        canvas.rect(at, plot.3 + 1, 1, 6, INK);
        if epoch % every == 0 || epoch == 1 {
            canvas.text_centred(at, plot.3 + 12, &epoch.to_string(), 1, INK);
        }
    }
    canvas.text_centred(
        (plot.0 + plot.2) / 2,
        plot.3 + 34,
        &format!("epoch ({steps_per_epoch} steps each)"),
        1,
        INK,
    );
    for (i, w) in losses.windows(2).enumerate() {
        canvas.line((x(i), y(w[0])), (x(i + 1), y(w[1])), LIGHT);
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
    // The legend, top right inside the frame.
    // (Short runs draw no running mean: a window of one step is the loss itself.)
    let entries = if window > 1 {
        vec![
            (LIGHT, "loss of each step".to_string()),
            (PALETTE[0], format!("mean of the last {window} steps")),
        ]
    } else {
        vec![(PALETTE[0], "loss of each step".to_string())]
    };
    let legend_width = entries
        .iter()
        .map(|(_, t)| text_width(t, 1))
        .max()
        .unwrap_or(0)
        + 40;
    let (left, top) = (plot.2 - legend_width - 8, plot.1 + 10);
    let height = 16 * entries.len() as i64 + 10;
    canvas.rect(left - 6, top - 6, legend_width + 8, height, [255, 255, 255]);
    for (k, (colour, text)) in entries.iter().enumerate() {
        let row = top + k as i64 * 16;
        canvas.rect(left, row + 3, 24, 2, *colour);
        canvas.text(left + 32, row, text, 1, INK);
    }
    canvas
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

/// A scatter of 2-D points (the first two principal components) coloured by label under
/// `title`, with a legend of `class_names` (none when empty: unlabelled data).
pub fn scatter(
    path: &Path,
    points: &[[f64; 2]],
    labels: &[u8],
    class_names: &[String],
    title: &str,
) -> Result<(), UserError> {
    draw_scatter(points, labels, class_names, title).save(path)
}

fn draw_scatter(points: &[[f64; 2]], labels: &[u8], class_names: &[String], title: &str) -> Canvas {
    let (width, height) = (860, 640);
    let mut canvas = Canvas::new(width, height);
    canvas.text_centred(width as i64 / 2, 10, title, 2, INK);
    let plot = (40i64, 48i64, width as i64 - 210, height as i64 - 40);
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
    canvas.text_centred(
        (plot.0 + plot.2) / 2,
        plot.3 + 14,
        "principal component 1",
        1,
        INK,
    );
    let name = "principal component 2";
    canvas.text_up(
        16,
        (plot.1 + plot.3) / 2 + text_width(name, 1) / 2,
        name,
        INK,
    );
    if !class_names.is_empty() {
        let left = plot.2 + 16;
        canvas.text(left, plot.1, "class", 1, INK);
        for (class, name) in class_names.iter().take(PALETTE.len()).enumerate() {
            let y = plot.1 + 20 + class as i64 * 20;
            canvas.rect(left, y, 12, 12, PALETTE[class]);
            let name: String = name.chars().take(20).collect();
            canvas.text(left + 20, y + 2, &name, 1, INK);
        }
        if class_names.len() > PALETTE.len() {
            let y = plot.1 + 20 + PALETTE.len() as i64 * 20;
            let more = format!("+{} more;", class_names.len() - PALETTE.len());
            canvas.text(left, y + 2, &more, 1, INK);
            canvas.text(left, y + 14, "colours repeat", 1, INK);
        }
    }
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the legend's first class name starts (x, y) in [`scatter`]'s picture.
    const LEGEND_FIRST_NAME: (i64, i64) = (860 - 210 + 16 + 20, 48 + 20 + 2);

    fn inked(canvas: &Canvas, x: i64, y: i64) -> bool {
        let at = (y as usize * canvas.width + x as usize) * 3;
        canvas.rgb[at..at + 3] != [255, 255, 255]
    }

    #[test]
    fn text_draws_the_fonts_glyphs_scaled_and_turned() {
        let mut canvas = Canvas::new(64, 64);
        canvas.text(2, 3, "Ag", 2, INK);
        canvas.text_up(40, 60, "k", INK);
        for (i, c) in ['A', 'g'].into_iter().enumerate() {
            let glyph = font8x8::legacy::BASIC_LEGACY[c as usize];
            assert!(glyph.iter().any(|&row| row != 0), "{c} has pixels");
            for row in 0..16 {
                for col in 0..16 {
                    let want = glyph[row / 2] & (1 << (col / 2)) != 0;
                    let (x, y) = (2 + i as i64 * 16 + col as i64, 3 + row as i64);
                    assert_eq!(inked(&canvas, x, y), want, "{c} at row {row}, col {col}");
                }
            }
        }
        let glyph = font8x8::legacy::BASIC_LEGACY[b'k' as usize];
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                let want = bits & (1 << col) != 0;
                assert_eq!(inked(&canvas, 40 + row as i64, 60 - col as i64), want);
            }
        }
    }

    /// Whether `text` is drawn at scale 1 with its top-left corner at (x, y).
    fn shows(canvas: &Canvas, (x, y): (i64, i64), text: &str) -> bool {
        text.chars().enumerate().all(|(i, c)| {
            let glyph = font8x8::legacy::BASIC_LEGACY[c as usize];
            (0..8).all(|row| {
                (0..8).all(|col| {
                    let want = glyph[row] & (1 << col) != 0;
                    inked(canvas, x + i as i64 * 8 + col as i64, y + row as i64) == want
                })
            })
        })
    }

    #[test]
    fn the_scatter_names_its_classes_and_axes() {
        let names: Vec<String> = ["T-shirt/top", "Trouser"].map(String::from).to_vec();
        let points = [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]];
        let canvas = draw_scatter(&points, &[0, 1, 1], &names, "SimCLR on digits");
        let (x, y) = LEGEND_FIRST_NAME;
        assert!(shows(&canvas, (x, y), "T-shirt/top"));
        assert!(shows(&canvas, (x, y + 20), "Trouser"));
        assert!(
            !shows(&canvas, (x, y + 20), "Trousers"),
            "a check that can fail"
        );
        let unlabelled = draw_scatter(&points, &[0, 0, 0], &[], "SimCLR on digits");
        assert!(!shows(&unlabelled, (x, y), "T-shirt/top"));
        let axis = "principal component 1";
        let centre = (40 + 860 - 210) / 2 - text_width(axis, 1) / 2;
        assert!(shows(&canvas, (centre, 640 - 40 + 14), axis));
    }

    #[test]
    fn the_loss_curve_names_its_axes_and_epochs() {
        let losses: Vec<f64> = (0..40).map(|i| 5.0 / (1.0 + i as f64)).collect();
        let canvas = draw_loss_curve(&losses, 10, "SimCLR on digits");
        let label = "epoch (10 steps each)";
        let (left, right, bottom) = (84, 820 - 24, 540 - 64);
        let centre = (left + right) / 2 - text_width(label, 1) / 2;
        assert!(shows(&canvas, (centre, bottom + 34), label));
        // The top value of the vertical axis is the largest loss.
        let top = tick(5.0);
        assert_eq!(top, "5.000");
        assert!(shows(
            &canvas,
            (left - 10 - text_width(&top, 1), 48 - 4),
            &top
        ));
    }
}
