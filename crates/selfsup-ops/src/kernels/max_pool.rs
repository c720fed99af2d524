//! 2-d max pooling and its backward pass on contiguous NCHW `f32` slices (flex).
//!
//! Each output is the maximum over its window's positions inside the input (padding is never
//! selected); ties go to the first position in row-major window order, and a NaN wins over
//! every number (the last NaN of the window), as Burn's flex kernel and PyTorch define it.
//! The forward pass records, per output, the position of its maximum within the input plane
//! (a `u32`, half of Burn's `i64` indices); the backward pass adds each output gradient at
//! that position. Planes (`n·c`) are split across rayon threads in contiguous chunks, and the
//! common 2×2 / stride-2 window without padding reads its two input rows directly.

use rayon::prelude::*;

/// The shapes of one pooling: input `[batch, channels, h, w]`, output `[batch, channels, ho,
/// wo]`, with symmetric padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeometry {
    planes: usize,
    h: usize,
    w: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
    dilation: [usize; 2],
    ho: usize,
    wo: usize,
}

/// The output size along one axis: Burn's rule (and PyTorch's), including `ceil_mode`'s
/// dropping of a last window that would start in the trailing padding.
fn output_size(
    input: usize,
    kernel: usize,
    pad: usize,
    stride: usize,
    dilation: usize,
    ceil: bool,
) -> usize {
    let span = dilation * (kernel - 1) + 1;
    let padded = input + 2 * pad;
    if padded < span {
        return usize::from(ceil);
    }
    let steps = padded - span;
    if ceil {
        let out = steps.div_ceil(stride) + 1;
        if (out - 1) * stride >= input + pad {
            out - 1
        } else {
            out
        }
    } else {
        steps / stride + 1
    }
}

impl PoolGeometry {
    /// The geometry of a max pooling of `x` (`[batch, channels, h, w]`).
    ///
    /// # Panics
    ///
    /// When a kernel size, stride or dilation is 0.
    pub fn new(
        x: [usize; 4],
        kernel: [usize; 2],
        stride: [usize; 2],
        pad: [usize; 2],
        dilation: [usize; 2],
        ceil_mode: bool,
    ) -> Self {
        for (name, v) in [
            ("kernel size", kernel),
            ("stride", stride),
            ("dilation", dilation),
        ] {
            assert!(
                v[0] > 0 && v[1] > 0,
                "max_pool2d: every {name} must be > 0, got {v:?}"
            );
        }
        let [batch, channels, h, w] = x;
        let size = |axis: usize, input: usize| {
            output_size(
                input,
                kernel[axis],
                pad[axis],
                stride[axis],
                dilation[axis],
                ceil_mode,
            )
        };
        Self {
            planes: batch * channels,
            h,
            w,
            kernel,
            stride,
            pad,
            dilation,
            ho: size(0, h),
            wo: size(1, w),
        }
    }

    /// `(ho, wo)`.
    pub fn output_size(&self) -> (usize, usize) {
        (self.ho, self.wo)
    }

    fn plane_in(&self) -> usize {
        self.h * self.w
    }

    fn plane_out(&self) -> usize {
        self.ho * self.wo
    }

    /// The 2×2, stride-2 window without padding or dilation whose rows fit the input.
    fn is_two_by_two(&self) -> bool {
        self.kernel == [2, 2]
            && self.stride == [2, 2]
            && self.pad == [0, 0]
            && self.dilation == [1, 1]
            && 2 * self.ho <= self.h
            && 2 * self.wo <= self.w
    }

    /// Kernel offsets `k` in `0..kernel` whose input position `o·stride + k·dilation − pad`
    /// lies in `0..size`.
    fn valid(&self, axis: usize, o: usize, size: usize) -> std::ops::Range<usize> {
        let start = (o * self.stride[axis]) as isize - self.pad[axis] as isize;
        let d = self.dilation[axis] as isize;
        let first = if start >= 0 { 0 } else { (-start + d - 1) / d };
        let end = ((size as isize - start + d - 1) / d).clamp(0, self.kernel[axis] as isize);
        (first.min(end) as usize)..(end as usize)
    }

    /// The input row (or column) of kernel offset `k` at output `o` on `axis`, for `k` in
    /// [`valid`](Self::valid).
    fn input(&self, axis: usize, o: usize, k: usize) -> usize {
        o * self.stride[axis] + k * self.dilation[axis] - self.pad[axis]
    }
}

/// Whether `v` replaces the current maximum `best` (NaN wins; ties keep the first).
#[inline]
fn wins(v: f32, best: f32) -> bool {
    v > best || v.is_nan()
}

/// One plane's pooling: `out[ho·wo]` and, when given, each maximum's position in the plane.
fn pool_plane(g: &PoolGeometry, x: &[f32], out: &mut [f32], mut at: Option<&mut [u32]>) {
    if g.is_two_by_two() {
        for oy in 0..g.ho {
            let top = &x[2 * oy * g.w..][..g.w];
            let bottom = &x[(2 * oy + 1) * g.w..][..g.w];
            for ox in 0..g.wo {
                let ix = 2 * ox;
                let mut best = top[ix];
                let mut pos = 2 * oy * g.w + ix;
                for (v, p) in [
                    (top[ix + 1], pos + 1),
                    (bottom[ix], pos + g.w),
                    (bottom[ix + 1], pos + g.w + 1),
                ] {
                    if wins(v, best) {
                        best = v;
                        pos = p;
                    }
                }
                out[oy * g.wo + ox] = best;
                if let Some(at) = at.as_deref_mut() {
                    at[oy * g.wo + ox] = pos as u32;
                }
            }
        }
        return;
    }
    for oy in 0..g.ho {
        let rows = g.valid(0, oy, g.h);
        for ox in 0..g.wo {
            let cols = g.valid(1, ox, g.w);
            let mut best = f32::NEG_INFINITY;
            let mut pos: Option<usize> = None;
            for ky in rows.clone() {
                let iy = g.input(0, oy, ky);
                for kx in cols.clone() {
                    let p = iy * g.w + g.input(1, ox, kx);
                    let v = x[p];
                    if pos.is_none() || wins(v, best) {
                        best = v;
                        pos = Some(p);
                    }
                }
            }
            out[oy * g.wo + ox] = best;
            if let Some(at) = at.as_deref_mut() {
                // A window with no input position (only under ceil_mode) passes no gradient.
                at[oy * g.wo + ox] = pos.map_or(u32::MAX, |p| p as u32);
            }
        }
    }
}

/// Planes per parallel chunk.
fn chunk_planes(g: &PoolGeometry) -> usize {
    let threads = rayon::current_num_threads().max(1);
    g.planes.div_ceil(4 * threads).max(1)
}

/// The pooled output `[planes, ho·wo]` and, when `with_positions`, the position of each
/// maximum within its input plane.
pub fn forward(g: &PoolGeometry, x: &[f32], with_positions: bool) -> (Vec<f32>, Option<Vec<u32>>) {
    assert_eq!(x.len(), g.planes * g.plane_in(), "max_pool2d: input length");
    assert!(
        g.plane_in() <= u32::MAX as usize,
        "max_pool2d: a plane of {}×{} is too large for this kernel",
        g.h,
        g.w
    );
    let (pin, pout) = (g.plane_in(), g.plane_out());
    let mut y = vec![0.0f32; g.planes * pout];
    let per = chunk_planes(g);
    if pout == 0 {
        return (y, with_positions.then(Vec::new));
    }
    if with_positions {
        let mut at = vec![0u32; g.planes * pout];
        y.par_chunks_mut(per * pout)
            .zip(at.par_chunks_mut(per * pout))
            .enumerate()
            .for_each(|(chunk, (y, at))| {
                let planes = y.chunks_mut(pout).zip(at.chunks_mut(pout));
                for (i, (y, at)) in planes.enumerate() {
                    let plane = &x[(chunk * per + i) * pin..][..pin];
                    pool_plane(g, plane, y, Some(at));
                }
            });
        (y, Some(at))
    } else {
        y.par_chunks_mut(per * pout)
            .enumerate()
            .for_each(|(chunk, y)| {
                for (i, y) in y.chunks_mut(pout).enumerate() {
                    let plane = &x[(chunk * per + i) * pin..][..pin];
                    pool_plane(g, plane, y, None);
                }
            });
        (y, None)
    }
}

/// The input gradient: each output gradient added at its maximum's position.
pub fn backward(g: &PoolGeometry, grad: &[f32], positions: &[u32]) -> Vec<f32> {
    let (pin, pout) = (g.plane_in(), g.plane_out());
    assert_eq!(grad.len(), g.planes * pout, "max_pool2d: gradient length");
    assert_eq!(positions.len(), grad.len(), "max_pool2d: positions length");
    if pout == 0 {
        return vec![0.0f32; g.planes * pin];
    }
    let per = chunk_planes(g);
    // Each plane is zeroed just before its gradients are added, while it is in cache (a
    // zeroed allocation first was a separate pass over the whole input gradient).
    let mut dx = Vec::with_capacity(g.planes * pin);
    dx.spare_capacity_mut()[..g.planes * pin]
        .par_chunks_mut(per * pin)
        .enumerate()
        .for_each(|(chunk, dx)| {
            for (i, dx) in dx.chunks_mut(pin).enumerate() {
                dx.fill(std::mem::MaybeUninit::new(0.0));
                // SAFETY: every element was just written.
                let dx = unsafe { &mut *(dx as *mut [std::mem::MaybeUninit<f32>] as *mut [f32]) };
                let plane = (chunk * per + i) * pout;
                let (grad, at) = (&grad[plane..][..pout], &positions[plane..][..pout]);
                for (&g, &p) in grad.iter().zip(at) {
                    if let Some(d) = dx.get_mut(p as usize) {
                        *d += g;
                    }
                }
            }
        });
    // SAFETY: the chunks cover `planes · pin` floats, and every plane was filled with zeros.
    unsafe { dx.set_len(g.planes * pin) };
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: every window position inside the input, first maximum, NaN wins.
    fn naive(g: &PoolGeometry, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let mut y = vec![0.0; g.planes * g.plane_out()];
        let mut at = vec![usize::MAX; y.len()];
        for n in 0..g.planes {
            for oy in 0..g.ho {
                for ox in 0..g.wo {
                    let mut best: Option<(f32, usize)> = None;
                    for ky in 0..g.kernel[0] {
                        for kx in 0..g.kernel[1] {
                            let iy = (oy * g.stride[0] + ky * g.dilation[0]) as isize
                                - g.pad[0] as isize;
                            let ix = (ox * g.stride[1] + kx * g.dilation[1]) as isize
                                - g.pad[1] as isize;
                            if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                continue;
                            }
                            let p = iy as usize * g.w + ix as usize;
                            let v = x[n * g.plane_in() + p];
                            if best.is_none_or(|(b, _)| v > b || v.is_nan()) {
                                best = Some((v, p));
                            }
                        }
                    }
                    let o = n * g.plane_out() + oy * g.wo + ox;
                    y[o] = best.map_or(f32::NEG_INFINITY, |b| b.0);
                    at[o] = best.map_or(usize::MAX, |b| n * g.plane_in() + b.1);
                }
            }
        }
        // The gradient of Σ y·(o + 1): each window adds its weight at its maximum.
        let mut dx = vec![0.0; g.planes * g.plane_in()];
        for (o, &p) in at.iter().enumerate() {
            if p != usize::MAX {
                dx[p] += (o + 1) as f32;
            }
        }
        (y, dx)
    }

    fn check(
        x: [usize; 4],
        k: [usize; 2],
        s: [usize; 2],
        p: [usize; 2],
        d: [usize; 2],
        ceil: bool,
    ) {
        let g = PoolGeometry::new(x, k, s, p, d, ceil);
        let len = x.iter().product();
        // Few distinct values, so windows hold ties; a NaN and an infinity here and there.
        let mut values: Vec<f32> = (0..len).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
        if len > 20 {
            values[5] = f32::NAN;
            values[17] = f32::NEG_INFINITY;
        }
        let (y, at) = forward(&g, &values, true);
        let (want_y, want_dx) = naive(&g, &values);
        let same = |a: f32, b: f32| a == b || (a.is_nan() && b.is_nan());
        assert!(
            y.iter().zip(&want_y).all(|(&a, &b)| same(a, b)),
            "output for {g:?}"
        );
        let grad: Vec<f32> = (0..y.len()).map(|o| (o + 1) as f32).collect();
        assert_eq!(
            backward(&g, &grad, &at.unwrap()),
            want_dx,
            "gradient for {g:?}"
        );
        let (y2, none) = forward(&g, &values, false);
        assert!(none.is_none() && y2.iter().zip(&y).all(|(&a, &b)| same(a, b)));
    }

    #[test]
    fn matches_the_definition_across_options() {
        check([2, 3, 8, 6], [2, 2], [2, 2], [0, 0], [1, 1], false);
        check([2, 3, 7, 9], [2, 2], [2, 2], [0, 0], [1, 1], false);
        check([2, 3, 7, 9], [2, 2], [2, 2], [0, 0], [1, 1], true);
        check([1, 2, 9, 8], [3, 3], [2, 2], [1, 1], [1, 1], false);
        check([1, 2, 9, 8], [3, 2], [1, 2], [1, 0], [2, 1], true);
        check([3, 1, 5, 5], [3, 3], [1, 1], [1, 1], [1, 1], false);
        check([1, 1, 1, 1], [2, 2], [2, 2], [1, 1], [1, 1], true);
    }
}
