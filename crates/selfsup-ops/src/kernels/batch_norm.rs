//! Training-mode batch normalisation and its backward pass, fused, on a contiguous
//! `[N, C, S]` `f32` slice (`S` = the product of the spatial dimensions, 1 for `[N, C]`).
//!
//! Per channel `c`, over its `M = N·S` values:
//!
//! ```text
//! forward   μ = Σx / M,  σ² = Σ(x − μ)² / M          (one pass over memory, below)
//!           y = (x − μ)·γ/√(σ² + ε) + β
//! backward  x̂ = (x − μ)/√(σ² + ε),  dβ = Σdy,  dγ = Σdy·x̂
//!           dx = γ/√(σ² + ε) · (dy − dβ/M − x̂·dγ/M)
//! ```
//!
//! Burn's default op reaches the same numbers through about fifteen primitive ops, four of
//! which transpose `[N, C, S]` to `[C, N, S]` in memory; here every pass reads the NCHW
//! layout in place. Statistics are reduced in parallel over channels (each channel's `N`
//! runs of `S` contiguous values, summed in eight f32 lanes per run and in f64 across runs);
//! the element-wise passes run in parallel over samples. No memory beyond the output.

use rayon::prelude::*;

/// The shape `[n, c, s]` of a batch-norm input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Samples.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Values per sample and channel.
    pub s: usize,
}

impl Layout {
    fn count(&self) -> f64 {
        (self.n * self.s) as f64
    }
}

/// `Σ f(x_i)` in eight independent f32 lanes (so it vectorises), returned in f64.
fn lanes(values: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut acc = [0.0f32; 8];
    let chunks = values.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += f(v);
        }
    }
    let tail: f64 = tail.iter().map(|&v| f(v) as f64).sum();
    acc.iter().map(|&a| a as f64).sum::<f64>() + tail
}

/// The two sums `Σ f(x_i, y_i).0` and `Σ f(x_i, y_i).1` over two slices of equal length, in
/// one pass, like [`lanes`].
fn lanes_pair(xs: &[f32], ys: &[f32], f: impl Fn(f32, f32) -> (f32, f32)) -> (f64, f64) {
    let (mut a, mut b) = ([0.0f32; 8], [0.0f32; 8]);
    let xc = xs.chunks_exact(8);
    let yc = ys.chunks_exact(8);
    let (mut ta, mut tb) = (0.0f64, 0.0f64);
    for (&x, &y) in xc.remainder().iter().zip(yc.remainder()) {
        let (u, v) = f(x, y);
        ta += u as f64;
        tb += v as f64;
    }
    for (xs, ys) in xc.zip(yc) {
        for i in 0..8 {
            let (u, v) = f(xs[i], ys[i]);
            a[i] += u;
            b[i] += v;
        }
    }
    let total = |acc: [f32; 8]| acc.iter().map(|&v| v as f64).sum::<f64>();
    (total(a) + ta, total(b) + tb)
}

/// The mean and biased variance of every channel of `x` (`[n, c, s]`), reading `x` once.
///
/// Each (sample, channel) run is summed, and then its deviations from its own mean are
/// summed while it is still in L1; the runs' `(count, mean, M2)` are merged in f64 with
/// Chan et al.'s pairwise update, `M2 = M2_a + M2_b + δ²·n_a·n_b/(n_a + n_b)`. This is one
/// pass over memory instead of the textbook two (the mean first, then `Σ(x − μ)²`), and
/// deviations are taken from each run's own mean, so a mean far from zero costs no digits.
fn statistics(layout: Layout, x: &[f32]) -> Vec<(f64, f64)> {
    let Layout { n, c, s } = layout;
    if n * s == 0 {
        // No values: the statistics are 0/0, as a two-pass mean would give.
        return vec![(f64::NAN, f64::NAN); c];
    }
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mut count, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
            for i in 0..n {
                let run = &x[(i * c + ch) * s..][..s];
                // A first estimate of the run's mean, then the deviations from it, summed
                // and squared: the corrected two-pass form, whose mean `mu + Σd/s` and
                // `M2 = Σd² − (Σd)²/s` do not inherit the first sum's rounding (which the
                // merge below would turn into a first-order error of the variance).
                let mu = (lanes(run, |v| v) / s as f64) as f32;
                let (d, d2) = lanes_pair(run, run, |v, _| (v - mu, (v - mu) * (v - mu)));
                let run_mean = mu as f64 + d / s as f64;
                let run_m2 = d2 - d * d / s as f64;
                let total = count + s as f64;
                let delta = run_mean - mean;
                mean += delta * s as f64 / total;
                m2 += run_m2 + delta * delta * count * s as f64 / total;
                count = total;
            }
            (mean, (m2 / count).max(0.0))
        })
        .collect()
}

/// Applies `f(channel, start of the run in the input, output run)` to every (sample,
/// channel) run of `out`, in parallel over samples.
fn per_run<T: Send>(layout: Layout, out: &mut [T], f: impl Fn(usize, usize, &mut [T]) + Sync) {
    let Layout { c, s, .. } = layout;
    out.par_chunks_mut(c * s)
        .enumerate()
        .for_each(|(i, sample)| {
            for (ch, run) in sample.chunks_mut(s).enumerate() {
                f(ch, (i * c + ch) * s, run);
            }
        });
}

/// What [`forward`] computed: the output, the batch statistics, and the per-channel affine
/// map `y = x·scale + shift` it applied (before the ReLU, when fused).
pub struct Forward {
    /// The output.
    pub y: Vec<f32>,
    /// The batch mean per channel.
    pub mean: Vec<f32>,
    /// The biased batch variance per channel.
    pub variance: Vec<f32>,
    /// `γ/√(σ² + ε)` per channel.
    pub scale: Vec<f32>,
    /// `β − μ·scale` per channel.
    pub shift: Vec<f32>,
}

/// The batch statistics and `y` (followed by a ReLU, `y = max(y, 0)`, when `relu`).
pub fn forward(
    layout: Layout,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    relu: bool,
) -> Forward {
    assert_eq!(
        x.len(),
        layout.n * layout.c * layout.s,
        "batch_norm: input length"
    );
    assert_eq!(gamma.len(), layout.c, "batch_norm: gamma length");
    assert_eq!(beta.len(), layout.c, "batch_norm: beta length");
    let (mean, variance): (Vec<f64>, Vec<f64>) = statistics(layout, x).into_iter().unzip();
    let scale: Vec<f32> = (0..layout.c)
        .map(|ch| (gamma[ch] as f64 / (variance[ch] + epsilon).sqrt()) as f32)
        .collect();
    let shift: Vec<f32> = (0..layout.c)
        .map(|ch| beta[ch] - (mean[ch] as f32) * scale[ch])
        .collect();
    let fill = |y: &mut [std::mem::MaybeUninit<f32>]| {
        per_run(layout, y, |ch, start, out| {
            let (a, b) = (scale[ch], shift[ch]);
            let end = start + out.len();
            let pairs = out.iter_mut().zip(&x[start..end]);
            if relu {
                pairs.for_each(|(o, &v)| _ = o.write((v * a + b).max(0.0)));
            } else {
                pairs.for_each(|(o, &v)| _ = o.write(v * a + b));
            }
        })
    };
    // SAFETY: `per_run` hands every run of `y` to the closure, which writes all of it.
    let y = unsafe { super::written_by(x.len(), fill) };
    let to_f32 = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect();
    Forward {
        y,
        mean: to_f32(mean),
        variance: to_f32(variance),
        scale,
        shift,
    }
}

/// The gradients `(dx, dγ, dβ)` of [`forward`]'s `y` given `dy`, from the saved input and
/// statistics. `relu` is the forward's `(scale, shift)` when it was fused with a ReLU: the
/// gradient then flows only where `x·scale + shift > 0` (where the ReLU passed its input, the
/// rule of Burn's and torch's ReLU backward), computed on the fly from `x`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    layout: Layout,
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    variance: &[f32],
    epsilon: f64,
    dy: &[f32],
    relu: Option<(&[f32], &[f32])>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert_eq!(dy.len(), x.len(), "batch_norm: gradient length");
    let m = layout.count();
    // The gradient reaching the batch norm's output: `dy`, or 0 where the fused ReLU cut.
    let gate = |ch: usize| {
        let (a, b) = relu.map_or((0.0, 0.0), |(scale, shift)| (scale[ch], shift[ch]));
        let on = relu.is_some();
        move |g: f32, v: f32| if on && v * a + b <= 0.0 { 0.0 } else { g }
    };
    let inv_std: Vec<f32> = variance
        .iter()
        .map(|&v| (1.0 / (v as f64 + epsilon).sqrt()) as f32)
        .collect();
    // One pass for both sums: Σdy and Σdy·(x − μ) (then Σdy·x̂ = inv_std · Σdy·(x − μ)).
    let sums: Vec<(f64, f64)> = (0..layout.c)
        .into_par_iter()
        .map(|ch| {
            let mu = mean[ch];
            let gate = gate(ch);
            (0..layout.n)
                .map(|i| {
                    let start = (i * layout.c + ch) * layout.s;
                    let r = start..start + layout.s;
                    lanes_pair(&dy[r.clone()], &x[r], |g, v| {
                        let g = gate(g, v);
                        (g, g * (v - mu))
                    })
                })
                .fold((0.0, 0.0), |(a, b), (c, d)| (a + c, b + d))
        })
        .collect();
    let dbeta: Vec<f64> = sums.iter().map(|s| s.0).collect();
    let dgamma: Vec<f64> = sums
        .iter()
        .zip(&inv_std)
        .map(|(s, &k)| s.1 * k as f64)
        .collect();
    // dx = a·dy + b·x + d per channel, with
    //   a = γ·k,  b = −γ·k²·dγ/M,  d = −γ·k·dβ/M − b·μ   (k = inv_std)
    let coeffs: Vec<(f32, f32, f32)> = (0..layout.c)
        .map(|ch| {
            let k = inv_std[ch] as f64;
            let g = gamma[ch] as f64;
            let a = g * k;
            let b = -g * k * k * dgamma[ch] / m;
            let d = -g * k * dbeta[ch] / m - b * mean[ch] as f64;
            (a as f32, b as f32, d as f32)
        })
        .collect();
    let fill = |dx: &mut [std::mem::MaybeUninit<f32>]| {
        per_run(layout, dx, |ch, start, out| {
            let (a, b, d) = coeffs[ch];
            let end = start + out.len();
            let triples = out.iter_mut().zip(&dy[start..end]).zip(&x[start..end]);
            if relu.is_some() {
                let gate = gate(ch);
                triples.for_each(|((o, &g), &v)| _ = o.write(a * gate(g, v) + b * v + d));
            } else {
                triples.for_each(|((o, &g), &v)| _ = o.write(a * g + b * v + d));
            }
        })
    };
    // SAFETY: `per_run` hands every run of `dx` to the closure, which writes all of it.
    let dx = unsafe { super::written_by(x.len(), fill) };
    let to_f32 = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect();
    (dx, to_f32(dgamma), to_f32(dbeta))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, in f64: per-channel statistics and the gradient formulas above.
    #[test]
    fn matches_the_definition() {
        let layout = Layout { n: 3, c: 2, s: 13 };
        let len = layout.n * layout.c * layout.s;
        let x: Vec<f32> = (0..len)
            .map(|i| ((i * 37 % 101) as f32 / 25.0) - 2.0)
            .collect();
        let dy: Vec<f32> = (0..len)
            .map(|i| ((i * 53 % 89) as f32 / 40.0) - 1.0)
            .collect();
        let (gamma, beta, eps) = ([1.5f32, -0.5], [0.25f32, 2.0], 1e-5);
        let Forward {
            y, mean, variance, ..
        } = forward(layout, &x, &gamma, &beta, eps, false);
        let var = variance;
        let (dx, dgamma, dbeta) = backward(layout, &x, &gamma, &mean, &var, eps, &dy, None);
        let m = (layout.n * layout.s) as f64;
        for ch in 0..layout.c {
            let idx: Vec<usize> = (0..layout.n)
                .flat_map(|i| (0..layout.s).map(move |j| (i * layout.c + ch) * layout.s + j))
                .collect();
            let mu = idx.iter().map(|&i| x[i] as f64).sum::<f64>() / m;
            let v = idx.iter().map(|&i| (x[i] as f64 - mu).powi(2)).sum::<f64>() / m;
            let k = 1.0 / (v + eps).sqrt();
            let xhat = |i: usize| (x[i] as f64 - mu) * k;
            let db = idx.iter().map(|&i| dy[i] as f64).sum::<f64>();
            let dg = idx.iter().map(|&i| dy[i] as f64 * xhat(i)).sum::<f64>();
            assert!((mean[ch] as f64 - mu).abs() < 1e-5);
            assert!((var[ch] as f64 - v).abs() < 1e-5);
            assert!((dbeta[ch] as f64 - db).abs() < 1e-4);
            assert!((dgamma[ch] as f64 - dg).abs() < 1e-4);
            for &i in &idx {
                let want_y = xhat(i) * gamma[ch] as f64 + beta[ch] as f64;
                let want_dx = gamma[ch] as f64 * k * (dy[i] as f64 - db / m - xhat(i) * dg / m);
                assert!((y[i] as f64 - want_y).abs() < 1e-5, "y[{i}]");
                assert!((dx[i] as f64 - want_dx).abs() < 1e-5, "dx[{i}]");
            }
        }
    }

    /// The one-pass statistics keep their accuracy where a mean far from zero would cancel
    /// most digits of `E[x²] − E[x]²`: values of 1000 ± 0.1 (f32 spacing there: 6e-5), runs of
    /// different means, and a constant channel.
    #[test]
    fn statistics_of_values_far_from_zero() {
        let layout = Layout { n: 5, c: 2, s: 300 };
        let len = layout.n * layout.c * layout.s;
        let x: Vec<f32> = (0..len)
            .map(|i| {
                let ch = (i / layout.s) % layout.c;
                let sample = i / (layout.c * layout.s);
                if ch == 1 {
                    -3.25
                } else {
                    1000.0 + sample as f32 * 0.05 + ((i * 37 % 101) as f32 / 500.0 - 0.1)
                }
            })
            .collect();
        let stats = statistics(layout, &x);
        let m = (layout.n * layout.s) as f64;
        let values = |ch: usize| {
            (0..len)
                .filter(move |i| (i / layout.s) % layout.c == ch)
                .map(|i| x[i] as f64)
        };
        let mu = values(0).sum::<f64>() / m;
        let var = values(0).map(|v| (v - mu).powi(2)).sum::<f64>() / m;
        assert!(
            (stats[0].0 - mu).abs() < 1e-6 * mu,
            "{} vs {mu}",
            stats[0].0
        );
        assert!(
            (stats[0].1 - var).abs() < 1e-5 * var,
            "{} vs {var}",
            stats[0].1
        );
        assert_eq!(stats[1], (-3.25, 0.0));
    }

    /// Fused with a ReLU: the output is `max(y, 0)` of the plain kernel, bit for bit, and the
    /// gradients are the plain kernel's given `dy` zeroed where that output is not positive
    /// (ReLU's backward).
    #[test]
    fn fused_relu_is_the_plain_kernel_then_relu() {
        let layout = Layout { n: 4, c: 3, s: 11 };
        let len = layout.n * layout.c * layout.s;
        let x: Vec<f32> = (0..len)
            .map(|i| ((i * 29 % 97) as f32 / 20.0) - 2.4)
            .collect();
        let dy: Vec<f32> = (0..len)
            .map(|i| ((i * 61 % 83) as f32 / 30.0) - 1.3)
            .collect();
        let (gamma, beta, eps) = ([1.2f32, -0.7, 0.4], [0.3f32, 0.1, -0.2], 1e-5);
        let plain = forward(layout, &x, &gamma, &beta, eps, false);
        let fused = forward(layout, &x, &gamma, &beta, eps, true);
        let relu: Vec<f32> = plain.y.iter().map(|&v| v.max(0.0)).collect();
        assert_eq!(fused.y, relu);
        assert!(relu.contains(&0.0) && relu.iter().any(|&v| v > 0.0));
        let gated: Vec<f32> = dy
            .iter()
            .zip(&plain.y)
            .map(|(&g, &y)| if y > 0.0 { g } else { 0.0 })
            .collect();
        let stats = (&fused.mean, &fused.variance);
        let want = backward(layout, &x, &gamma, stats.0, stats.1, eps, &gated, None);
        let got = backward(
            layout,
            &x,
            &gamma,
            stats.0,
            stats.1,
            eps,
            &dy,
            Some((&fused.scale, &fused.shift)),
        );
        assert_eq!(got, want);
    }
}
