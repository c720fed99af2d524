//! The 2-d convolution and both of its gradients on contiguous NCHW `f32` slices, as im2col +
//! GEMM, for backends whose tensors expose their memory (flex).
//!
//! Per sample `n`, with `K = C_in·k_h·k_w` and `P = H_out·W_out`:
//!
//! ```text
//! cols_n[K, P]   = im2col(x_n)            row (c, i, j), column (oy, ox) holds
//!                                         x_n[c, oy·s_h + i·d_h − p_h, ox·s_w + j·d_w − p_w]
//!                                         (0 in the padding)
//! forward          y_n[C_out, P] = W[C_out, K] · cols_n
//! input gradient   dx_n          = col2im(Wᵀ[K, C_out] · G_n[C_out, P])
//!                  (stride 1: dx = G ⋆ Wᵗ, the forward with the flipped, transposed weight)
//! weight gradient  dW[C_out, K]  = Σ_n G_n · cols_nᵀ
//! ```
//!
//! Everything stays in the NCHW layout the tensors already have: no NHWC copies, and the
//! weight gradient is one GEMM per sample with the long `P` axis as its inner dimension (Burn's
//! default computes it as a second convolution over swapped batch/channel axes). A 1×1,
//! stride-1, unpadded convolution skips im2col: `cols_n` is `x_n` itself.
//!
//! Parallelism: the batch is split into one contiguous chunk of samples per rayon thread; each
//! chunk reuses one `K × P` buffer and, for the weight gradient, one `C_out × K` partial sum,
//! added up at the end. Extra memory: `threads · (K·P + C_out·K)` floats (2 × 1.0 MB for
//! ConvNet-S's 32→32 layer on 28×28). When the batch is smaller than the thread count, the
//! GEMMs run in parallel instead.

use super::direct;
use burn::tensor::ops::ConvOptions;
use gemm::Parallelism;
use rayon::prelude::*;

/// Shapes of one convolution: input `[batch, c_in, h, w]`, weight `[c_out, c_in, kh, kw]`,
/// output `[batch, c_out, ho, wo]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub(super) batch: usize,
    pub(super) c_in: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) c_out: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) stride: [usize; 2],
    /// Padding before the first row / column.
    pub(super) pad: [usize; 2],
    /// Padding after the last row / column.
    pub(super) pad_end: [usize; 2],
    pub(super) dilation: [usize; 2],
    pub(super) ho: usize,
    pub(super) wo: usize,
}

impl Geometry {
    /// The geometry of `x ⋆ weight` under `options` (groups must be 1).
    ///
    /// # Panics
    ///
    /// When the channels disagree, `groups` is not 1, or the padded input is smaller than the
    /// dilated kernel.
    pub fn new(x: [usize; 4], weight: [usize; 4], options: &ConvOptions<2>) -> Self {
        let [batch, c_in, h, w] = x;
        let [c_out, c_in_w, kh, kw] = weight;
        assert_eq!(
            options.groups, 1,
            "conv2d: this kernel takes groups = 1, got {}",
            options.groups
        );
        assert_eq!(
            c_in, c_in_w,
            "conv2d: the input has {c_in} channels but the weight {weight:?} expects {c_in_w}"
        );
        let out = |size: usize, axis: usize, kernel: usize| {
            let (before, after) = options.padding[axis];
            let span = options.dilation[axis] * (kernel - 1) + 1;
            let padded = size + before + after;
            assert!(
                padded >= span,
                "conv2d: input size {size} (padded {padded}) on axis {axis} is smaller than the \
                 dilated kernel ({span}); pad the input or use a smaller kernel"
            );
            (padded - span) / options.stride[axis] + 1
        };
        Self {
            batch,
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            stride: options.stride,
            pad: options.padding_begin(),
            pad_end: options.padding_end(),
            dilation: options.dilation,
            ho: out(h, 0, kh),
            wo: out(w, 1, kw),
        }
    }

    /// The output shape `[batch, c_out, ho, wo]`.
    pub fn output_shape(&self) -> [usize; 4] {
        [self.batch, self.c_out, self.ho, self.wo]
    }

    /// Rows of `cols_n`: `c_in · kh · kw`.
    fn k(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    /// Output positions per sample: `ho · wo`.
    fn p(&self) -> usize {
        self.ho * self.wo
    }

    fn input_len(&self) -> usize {
        self.c_in * self.h * self.w
    }

    fn output_len(&self) -> usize {
        self.c_out * self.p()
    }

    /// For a stride-1 convolution, the input gradient as another convolution: `dx = G ⋆ Wᵗ`
    /// with `Wᵗ[c, o, i, j] = W[o, c, k_h−1−i, k_w−1−j]` and padding `d·(k−1) − p` on each
    /// side. Its GEMMs have the long `C_out·k_h·k_w` inner dimension, where `col2im(Wᵀ·G)`
    /// has only `C_out`. `None` when the stride is not 1 or a padding exceeds `d·(k−1)`.
    fn input_gradient_as_conv(&self, weight: &[f32]) -> Option<(Geometry, Vec<f32>)> {
        if self.stride != [1, 1] {
            return None;
        }
        let span = [
            self.dilation[0] * (self.kh - 1),
            self.dilation[1] * (self.kw - 1),
        ];
        let pad = |axis: usize, p: usize| span[axis].checked_sub(p);
        let padding = [
            (pad(0, self.pad[0])?, pad(0, self.pad_end[0])?),
            (pad(1, self.pad[1])?, pad(1, self.pad_end[1])?),
        ];
        let options = ConvOptions::new_with_padding([1, 1], padding, self.dilation, 1);
        let (kh, kw) = (self.kh, self.kw);
        let mut flipped = vec![0.0f32; weight.len()];
        for o in 0..self.c_out {
            for c in 0..self.c_in {
                for i in 0..kh {
                    for j in 0..kw {
                        flipped[((c * self.c_out + o) * kh + kh - 1 - i) * kw + kw - 1 - j] =
                            weight[((o * self.c_in + c) * kh + i) * kw + j];
                    }
                }
            }
        }
        let geometry = Geometry::new(
            [self.batch, self.c_out, self.ho, self.wo],
            [self.c_in, self.c_out, kh, kw],
            &options,
        );
        debug_assert_eq!((geometry.ho, geometry.wo), (self.h, self.w));
        Some((geometry, flipped))
    }

    /// `cols_n` would be `x_n` itself.
    fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.stride == [1, 1]
            && self.pad == [0, 0]
            && (self.ho, self.wo) == (self.h, self.w)
    }

    /// Samples whose weight-gradient GEMMs are made one, with their `P` columns side by side:
    /// a small `P` (7×7 maps: 49) would give each sample's GEMM a short inner dimension,
    /// which runs at half the speed of one of a few hundred. Pointwise convolutions read
    /// their samples in place, one at a time.
    fn weight_group(&self, samples: usize) -> usize {
        if self.is_pointwise() {
            1
        } else {
            384usize.div_ceil(self.p()).clamp(1, samples.max(1))
        }
    }

    /// Samples per forward GEMM (see [`forward_grouped`]): enough for a few hundred rows on
    /// small maps, one where a sample alone has that many (or is read in place, pointwise).
    fn forward_group(&self, samples: usize) -> usize {
        if self.is_pointwise() || self.p() >= 192 {
            1
        } else {
            256usize.div_ceil(self.p()).clamp(1, samples.max(1))
        }
    }

    /// Samples per parallel chunk, and whether the GEMMs themselves should run in parallel.
    fn split(&self) -> (usize, Parallelism) {
        let threads = rayon::current_num_threads().max(1);
        let per_chunk = self.batch.div_ceil(threads).max(1);
        let work = self.c_out * self.k() * self.p();
        let parallelism = if self.batch < threads && work >= 64 * 64 * 64 {
            Parallelism::Rayon(0)
        } else {
            Parallelism::None
        };
        (per_chunk, parallelism)
    }

    /// Output positions `o` in `0..out` whose input index `o·stride + offset` lies in
    /// `0..size`.
    fn valid(out: usize, size: usize, stride: usize, offset: isize) -> (usize, usize) {
        let size = size as isize;
        let stride = stride as isize;
        let first = if offset >= 0 {
            0
        } else {
            (-offset + stride - 1) / stride
        };
        let end = if size - offset <= 0 {
            0
        } else {
            ((size - offset + stride - 1) / stride).min(out as isize)
        };
        let first = first.min(end);
        (first as usize, end as usize)
    }

    /// Visits every `(row of cols_n, output row, input row, [ox0, ox1), ix0)` with a valid
    /// input row, where `ix0` is the input column of `ox0`; output columns outside `ox0..ox1`
    /// and output rows not visited read the padding.
    fn for_each_run(&self, mut visit: impl FnMut(Run)) {
        let (ho, wo) = (self.ho, self.wo);
        for c in 0..self.c_in {
            for i in 0..self.kh {
                let y_offset = (i * self.dilation[0]) as isize - self.pad[0] as isize;
                let (oy0, oy1) = Self::valid(ho, self.h, self.stride[0], y_offset);
                for j in 0..self.kw {
                    let x_offset = (j * self.dilation[1]) as isize - self.pad[1] as isize;
                    let (ox0, ox1) = Self::valid(wo, self.w, self.stride[1], x_offset);
                    if ox0 == ox1 {
                        continue;
                    }
                    let row = (c * self.kh + i) * self.kw + j;
                    for oy in oy0..oy1 {
                        let iy = (oy * self.stride[0]) as isize + y_offset;
                        let ix0 = (ox0 * self.stride[1]) as isize + x_offset;
                        visit(Run {
                            row,
                            oy,
                            input_row: c * self.h + iy as usize,
                            ox: ox0..ox1,
                            ix0: ix0 as usize,
                        });
                    }
                }
            }
        }
    }
}

/// One contiguous stretch of an im2col row that reads the input (see
/// [`Geometry::for_each_run`]).
struct Run {
    row: usize,
    oy: usize,
    input_row: usize,
    ox: std::ops::Range<usize>,
    ix0: usize,
}

/// `cols[K, P] = im2col(x_n)`. Writes only the entries that read the input: `cols` must hold
/// zeros where the padding falls, as a buffer zeroed once and then used only by `im2col` for
/// one geometry does (the same entries are padding for every sample).
fn im2col(g: &Geometry, x: &[f32], cols: &mut [f32]) {
    im2col_at(g, x, cols, g.p(), 0);
}

/// [`im2col`] into columns `offset..offset + P` of a matrix whose rows are `row_stride`
/// apart: several samples' columns side by side.
fn im2col_at(g: &Geometry, x: &[f32], cols: &mut [f32], row_stride: usize, offset: usize) {
    let (wo, sw) = (g.wo, g.stride[1]);
    g.for_each_run(|run| {
        let src = &x[run.input_row * g.w..][..g.w];
        let dst = &mut cols[run.row * row_stride + offset + run.oy * wo..][..wo];
        if sw == 1 {
            let len = run.ox.len();
            dst[run.ox].copy_from_slice(&src[run.ix0..run.ix0 + len]);
        } else {
            for (k, ox) in run.ox.enumerate() {
                dst[ox] = src[run.ix0 + k * sw];
            }
        }
    });
}

/// `dx_n += col2im(cols)`, the adjoint of [`im2col`].
fn col2im(g: &Geometry, cols: &[f32], dx: &mut [f32]) {
    let (p, wo, sw) = (g.p(), g.wo, g.stride[1]);
    g.for_each_run(|run| {
        let src = &cols[run.row * p + run.oy * wo..][..wo];
        let dst = &mut dx[run.input_row * g.w..][..g.w];
        if sw == 1 {
            let len = run.ox.len();
            for (d, s) in dst[run.ix0..run.ix0 + len].iter_mut().zip(&src[run.ox]) {
                *d += s;
            }
        } else {
            for (k, ox) in run.ox.enumerate() {
                dst[run.ix0 + k * sw] += src[ox];
            }
        }
    });
}

thread_local! {
    /// Each thread's im2col buffer, kept between calls: a fresh multi-megabyte allocation per
    /// call costs more in page faults than its im2col.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on `len` zeroed floats of this thread's scratch buffer. Re-entrant (a rayon
/// thread may run another task while it waits): a nested call gets a buffer of its own.
pub(super) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buffer = SCRATCH.with(|cell| cell.take());
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    let scratch = &mut buffer[..len];
    scratch.fill(0.0);
    let out = f(scratch);
    SCRATCH.with(|cell| {
        if cell.borrow().len() < buffer.len() {
            cell.replace(buffer);
        }
    });
    out
}

/// A matrix view of a slice: element `(r, c)` at `data[r·row_stride + c·col_stride]`.
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Mat<'a> {
    fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols)
    }

    /// `rows × cols` with rows `row_stride` apart (the leading columns of a wider matrix).
    fn strided(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        assert!(
            cols <= row_stride && (rows == 0 || data.len() >= (rows - 1) * row_stride + cols),
            "matrix view past its slice"
        );
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride: 1,
        }
    }

    fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// `dst[m, n] = lhs · rhs`, or `dst += lhs · rhs` when `accumulate`; `dst` is row-major.
fn matmul(dst: &mut [f32], lhs: Mat, rhs: Mat, accumulate: bool, parallelism: Parallelism) {
    matmul_strided(dst, false, lhs, rhs, accumulate, parallelism);
}

/// [`matmul`] into a row-major `dst`, or, when `dst_transposed`, into a column-major one
/// (`dst[i, j]` at `j·m + i`).
fn matmul_strided(
    dst: &mut [f32],
    dst_transposed: bool,
    lhs: Mat,
    rhs: Mat,
    accumulate: bool,
    parallelism: Parallelism,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "matmul: inner dimensions differ");
    assert!(dst.len() >= m * n, "matmul: destination too small");
    let (dst_cs, dst_rs) = if dst_transposed {
        (m as isize, 1)
    } else {
        (1, n as isize)
    };
    // SAFETY: the three views lie inside their slices (checked by `Mat::strided`, and `t`
    // only swaps strides), `dst` is exclusively borrowed and holds `m · n` elements.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs,
            dst_rs,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// The convolution `y = x ⋆ weight` (no bias), `[batch, c_out, ho, wo]` row-major.
pub fn forward(g: &Geometry, x: &[f32], weight: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), g.batch * g.input_len(), "conv2d: input length");
    assert_eq!(weight.len(), g.c_out * g.k(), "conv2d: weight length");
    if let Some(plan) = direct::Plan::new(g) {
        return plan.forward(x, weight);
    }
    let (k, p) = (g.k(), g.p());
    let (per_chunk, parallelism) = g.split();
    let w = Mat::row_major(weight, g.c_out, k);
    let mut y = vec![0.0f32; g.batch * g.output_len()];
    y.par_chunks_mut(per_chunk * g.output_len())
        .enumerate()
        .for_each(|(chunk, y)| {
            let samples = y.len() / g.output_len();
            let first = chunk * per_chunk;
            let group = g.forward_group(samples);
            if group > 1 {
                forward_grouped(g, x, w, y, first, group, parallelism);
                return;
            }
            let buffer = if g.is_pointwise() { 0 } else { k * p };
            with_scratch(buffer, |cols| {
                for (i, y_n) in y.chunks_mut(g.output_len()).enumerate() {
                    let n = first + i;
                    let x_n = &x[n * g.input_len()..][..g.input_len()];
                    let cols: &[f32] = if g.is_pointwise() {
                        x_n
                    } else {
                        im2col(g, x_n, cols);
                        cols
                    };
                    // As `y_nᵀ[P, C_out] = cols_nᵀ · Wᵀ` written column-major (= `y_n`
                    // row-major): the microkernel then reads `cols_n` in place (its rows
                    // are GEMM's contiguous columns) and packs only the small weight.
                    let cols_t = Mat::row_major(cols, k, p).t();
                    matmul_strided(y_n, true, cols_t, w.t(), false, parallelism);
                }
            });
        });
    y
}

/// [`forward`] for the samples of `y` (the first is sample `first`), `group` per GEMM: their
/// im2col columns side by side, so that a small map (4×4: 16 positions) is not a GEMM of 16
/// rows, which runs at a fraction of the speed of one of a few hundred. The GEMM writes
/// `[C_out, group·P]`; each sample's rows are then copied into place.
fn forward_grouped(
    g: &Geometry,
    x: &[f32],
    w: Mat,
    y: &mut [f32],
    first: usize,
    group: usize,
    parallelism: Parallelism,
) {
    let (k, p) = (g.k(), g.p());
    let samples = y.len() / g.output_len();
    let wide = group * p;
    with_scratch(k * wide + g.c_out * wide, |scratch| {
        let (cols, out) = scratch.split_at_mut(k * wide);
        for start in (0..samples).step_by(group) {
            let len = group.min(samples - start);
            let width = len * p;
            for s in 0..len {
                let n = first + start + s;
                im2col_at(
                    g,
                    &x[n * g.input_len()..][..g.input_len()],
                    cols,
                    wide,
                    s * p,
                );
            }
            let cols_t = Mat::strided(cols, k, width, wide).t();
            // Column-major `[width, C_out]`: row-major `[C_out, width]`.
            matmul_strided(out, true, cols_t, w.t(), false, parallelism);
            for s in 0..len {
                let y_n = &mut y[(start + s) * g.output_len()..][..g.output_len()];
                for (o, row) in y_n.chunks_exact_mut(p).enumerate() {
                    row.copy_from_slice(&out[o * width + s * p..][..p]);
                }
            }
        }
    });
}

/// The gradients of [`forward`] with respect to its input and its weight, given the output
/// gradient `grad`; each is computed only when asked for.
pub fn backward(
    g: &Geometry,
    x: &[f32],
    weight: &[f32],
    grad: &[f32],
    input_grad: bool,
    weight_grad: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    assert_eq!(x.len(), g.batch * g.input_len(), "conv2d: input length");
    assert_eq!(weight.len(), g.c_out * g.k(), "conv2d: weight length");
    assert_eq!(
        grad.len(),
        g.batch * g.output_len(),
        "conv2d: gradient length"
    );
    let (k, p) = (g.k(), g.p());
    let (per_chunk, parallelism) = g.split();
    let w = Mat::row_major(weight, g.c_out, k);
    let chunks = g.batch.div_ceil(per_chunk);
    let as_conv = if input_grad && !g.is_pointwise() {
        g.input_gradient_as_conv(weight)
    } else {
        None
    };
    let conv_dx = as_conv.map(|(g_t, w_t)| forward(&g_t, grad, &w_t));
    // A stride-1 weight gradient without im2col where the CPU allows (`direct.rs`).
    let direct_dw = if weight_grad {
        direct::Plan::new(g).map(|plan| plan.weight_gradient(x, grad))
    } else {
        None
    };
    let weight_grad = weight_grad && direct_dw.is_none();
    // The input gradient still to compute per sample, by col2im (or directly for 1×1).
    let col2im_dx = input_grad && conv_dx.is_none();
    let mut dx = vec![
        0.0f32;
        if col2im_dx {
            g.batch * g.input_len()
        } else {
            0
        }
    ];
    let dx_chunks: Vec<Option<&mut [f32]>> = if col2im_dx {
        dx.chunks_mut(per_chunk * g.input_len()).map(Some).collect()
    } else {
        (0..chunks).map(|_| None).collect()
    };
    let partials: Vec<Vec<f32>> = dx_chunks
        .into_par_iter()
        .enumerate()
        .map(|(chunk, mut dx)| {
            let first = chunk * per_chunk;
            let samples = per_chunk.min(g.batch - first);
            let buffer = if g.is_pointwise() { 0 } else { k * p };
            // The weight gradient takes `group` samples per GEMM: their im2col columns
            // side by side (rows `group · P` apart) and their output gradients copied
            // likewise.
            let group = if weight_grad {
                g.weight_group(samples)
            } else {
                1
            };
            let wide = group * p;
            let cols_len = if weight_grad { buffer * group } else { 0 };
            let grads_len = if weight_grad && group > 1 {
                g.c_out * wide
            } else {
                0
            };
            let dcols_len = if dx.is_some() { buffer } else { 0 };
            let mut dw = vec![0.0f32; if weight_grad { g.c_out * k } else { 0 }];
            with_scratch(cols_len + grads_len + dcols_len, |scratch| {
                let (cols, rest) = scratch.split_at_mut(cols_len);
                let (grads, dcols) = rest.split_at_mut(grads_len);
                let g_of = |n: usize| &grad[n * g.output_len()..][..g.output_len()];
                if weight_grad {
                    for (index, start) in (0..samples).step_by(group).enumerate() {
                        let len = group.min(samples - start);
                        let width = len * p;
                        for s in 0..len {
                            let n = first + start + s;
                            if !g.is_pointwise() {
                                let x_n = &x[n * g.input_len()..][..g.input_len()];
                                im2col_at(g, x_n, cols, wide, s * p);
                            }
                            if group > 1 {
                                for (o, row) in g_of(n).chunks_exact(p).enumerate() {
                                    grads[o * wide + s * p..][..p].copy_from_slice(row);
                                }
                            }
                        }
                        // One sample alone is its own `[C_out, P]` gradient (and, pointwise,
                        // its own input as the columns); a group reads the copies.
                        let lhs = if group > 1 {
                            &*grads
                        } else {
                            g_of(first + start)
                        };
                        let rhs = if g.is_pointwise() {
                            &x[(first + start) * g.input_len()..][..g.input_len()]
                        } else {
                            &*cols
                        };
                        let lhs = Mat::strided(lhs, g.c_out, width, wide);
                        let rhs = Mat::strided(rhs, k, width, wide);
                        matmul(&mut dw, lhs, rhs.t(), index > 0, parallelism);
                    }
                }
                if let Some(dx) = dx.as_deref_mut() {
                    for i in 0..samples {
                        let g_n = Mat::row_major(g_of(first + i), g.c_out, p);
                        let dx_n = &mut dx[i * g.input_len()..][..g.input_len()];
                        if g.is_pointwise() {
                            matmul(dx_n, w.t(), g_n, false, parallelism);
                        } else {
                            matmul(dcols, w.t(), g_n, false, parallelism);
                            col2im(g, dcols, dx_n);
                        }
                    }
                }
            });
            dw
        })
        .collect();
    let dw = weight_grad.then(|| {
        let mut partials = partials.into_iter();
        let mut sum = partials.next().unwrap_or_else(|| vec![0.0; g.c_out * k]);
        for part in partials {
            sum.iter_mut().zip(&part).for_each(|(s, v)| *s += v);
        }
        sum
    });
    (conv_dx.or(col2im_dx.then_some(dx)), direct_dw.or(dw))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution straight from its definition, in f64.
    fn naive(g: &Geometry, x: &[f32], weight: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0f32; g.batch * g.output_len()];
        for n in 0..g.batch {
            for o in 0..g.c_out {
                for oy in 0..g.ho {
                    for ox in 0..g.wo {
                        let mut acc = 0.0f64;
                        for c in 0..g.c_in {
                            for i in 0..g.kh {
                                for j in 0..g.kw {
                                    let iy = (oy * g.stride[0] + i * g.dilation[0]) as isize
                                        - g.pad[0] as isize;
                                    let ix = (ox * g.stride[1] + j * g.dilation[1]) as isize
                                        - g.pad[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xv = x[((n * g.c_in + c) * g.h + iy as usize) * g.w
                                        + ix as usize];
                                    let wv = weight[((o * g.c_in + c) * g.kh + i) * g.kw + j];
                                    acc += xv as f64 * wv as f64;
                                }
                            }
                        }
                        y[((n * g.c_out + o) * g.ho + oy) * g.wo + ox] = acc as f32;
                    }
                }
            }
        }
        y
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let v = (i as u32)
                    .wrapping_mul(2654435761)
                    .wrapping_add(seed * 40503);
                (v % 1000) as f32 / 500.0 - 1.0
            })
            .collect()
    }

    /// `⟨forward(x), G⟩` is linear in x and in W, so its exact gradients are
    /// `backward(...)`; checked against the naive forward by the adjoint identities
    /// `⟨y(x), G⟩ = ⟨x, dx⟩` and `⟨y(W), G⟩ = ⟨W, dW⟩`.
    fn check(x_shape: [usize; 4], w_shape: [usize; 4], options: ConvOptions<2>) {
        let g = Geometry::new(x_shape, w_shape, &options);
        let x = values(x_shape.iter().product(), 1);
        let w = values(w_shape.iter().product(), 2);
        let y = forward(&g, &x, &w);
        let want = naive(&g, &x, &w);
        for (a, b) in y.iter().zip(&want) {
            assert!((a - b).abs() < 1e-4, "forward {a} vs {b} for {g:?}");
        }
        let grad = values(y.len(), 3);
        let (dx, dw) = backward(&g, &x, &w, &grad, true, true);
        let dot = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum::<f64>()
        };
        let lhs = dot(&want, &grad);
        let tol = 1e-4 * lhs.abs().max(1.0);
        assert!(
            (dot(&x, &dx.unwrap()) - lhs).abs() < tol,
            "input gradient for {g:?}"
        );
        assert!(
            (dot(&w, &dw.unwrap()) - lhs).abs() < tol,
            "weight gradient for {g:?}"
        );
    }

    /// The direct kernel on its own (whatever the batch and thread count), against the
    /// definition: forward, and its weight gradient by the adjoint identity.
    fn check_direct(x_shape: [usize; 4], w_shape: [usize; 4], options: ConvOptions<2>) {
        let g = Geometry::new(x_shape, w_shape, &options);
        let Some(plan) = direct::Plan::any_batch(&g) else {
            return;
        };
        let x = values(x_shape.iter().product(), 4);
        let w = values(w_shape.iter().product(), 5);
        let want = naive(&g, &x, &w);
        for (a, b) in plan.forward(&x, &w).iter().zip(&want) {
            assert!((a - b).abs() < 1e-4, "direct forward {a} vs {b} for {g:?}");
        }
        let grad = values(want.len(), 6);
        let dw = plan.weight_gradient(&x, &grad);
        let dot = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum::<f64>()
        };
        let lhs = dot(&want, &grad);
        assert!(
            (dot(&w, &dw) - lhs).abs() < 1e-4 * lhs.abs().max(1.0),
            "direct weight gradient for {g:?}"
        );
    }

    #[test]
    fn the_direct_kernel_matches_the_definition() {
        let opts = |p: [(usize, usize); 2], d| ConvOptions::new_with_padding([1, 1], p, d, 1);
        // ConvNet-S's layers (28×28 → 7×7, one input channel), output channels that are
        // not a multiple of the tile's 4, batch 1, non-square inputs, asymmetric padding,
        // dilation, no padding, 1×1 and 5×5 kernels, tap counts not a multiple of 3.
        check_direct(
            [3, 1, 28, 28],
            [32, 1, 3, 3],
            opts([(1, 1), (1, 1)], [1, 1]),
        );
        check_direct(
            [2, 32, 14, 14],
            [64, 32, 3, 3],
            opts([(1, 1), (1, 1)], [1, 1]),
        );
        check_direct([5, 64, 7, 7], [6, 64, 3, 3], opts([(1, 1), (1, 1)], [1, 1]));
        check_direct([1, 3, 9, 13], [5, 3, 3, 3], opts([(1, 1), (1, 1)], [1, 1]));
        check_direct([2, 2, 8, 11], [3, 2, 3, 2], opts([(0, 2), (2, 1)], [2, 1]));
        check_direct([2, 4, 6, 5], [7, 4, 3, 3], opts([(0, 0), (0, 0)], [1, 1]));
        check_direct([3, 5, 6, 6], [2, 5, 1, 1], opts([(0, 0), (0, 0)], [1, 1]));
        check_direct([2, 3, 10, 9], [4, 3, 5, 5], opts([(2, 2), (2, 2)], [1, 2]));
        check_direct([1, 1, 3, 1], [1, 1, 3, 1], opts([(0, 0), (0, 0)], [1, 1]));
    }

    #[test]
    fn matches_the_definition_across_options() {
        let opts = |s, p: [(usize, usize); 2], d| ConvOptions::new_with_padding(s, p, d, 1);
        check(
            [2, 3, 7, 6],
            [4, 3, 3, 3],
            opts([1, 1], [(1, 1), (1, 1)], [1, 1]),
        );
        check(
            [3, 2, 9, 8],
            [5, 2, 3, 3],
            opts([2, 2], [(1, 1), (1, 1)], [1, 1]),
        );
        check(
            [1, 1, 8, 11],
            [2, 1, 3, 2],
            opts([1, 2], [(0, 0), (2, 1)], [2, 1]),
        );
        check(
            [2, 4, 5, 5],
            [3, 4, 1, 1],
            opts([1, 1], [(0, 0), (0, 0)], [1, 1]),
        );
        check(
            [2, 4, 6, 6],
            [3, 4, 1, 1],
            opts([2, 2], [(0, 0), (0, 0)], [1, 1]),
        );
        check(
            [5, 2, 4, 4],
            [2, 2, 4, 4],
            opts([2, 2], [(1, 2), (0, 3)], [1, 1]),
        );
        // Small maps, several samples per forward GEMM and a last group that is not full
        // (ResNet-18's last stages: 8×8 and 4×4).
        check(
            [7, 3, 8, 8],
            [4, 3, 3, 3],
            opts([2, 2], [(1, 1), (1, 1)], [1, 1]),
        );
        check(
            [37, 6, 4, 4],
            [5, 6, 3, 3],
            opts([1, 1], [(1, 1), (1, 1)], [1, 1]),
        );
    }
}
