//! The stride-1 convolution without im2col, on x86-64 CPUs with AVX-512F (flex).
//!
//! Per sample, the input is copied once into zero-padded planes whose rows are
//! `wp = pad_left + w + pad_right` floats wide. Output `(oy, ox)` is computed at the "wide"
//! position `q = oy·wp + ox`, and tap `t = (c, i, j)` reads
//! `xp[c·plane + i·d_h·wp + j·d_w + q]`: a constant offset per tap. So a run of consecutive
//! wide positions reads consecutive floats for every tap, and the GEMM's long operand is the
//! padded input itself, read in place — no `C_in·k_h·k_w × P` matrix written and packed again
//! as in `im2col.rs`. The `wp − wo` positions past each output row are computed and dropped
//! (2 of 30 on a 28×28 map with a 3×3 kernel, 2 of 16 on 14×14).
//!
//! ```text
//! forward          y_n[o, q] = Σ_t W[o, t] · xp_n[off(t) + q]          tiles of 8 outputs × 32 positions
//! weight gradient  dWᵀ[t, o] = Σ_n Σ_p xp_n[off(t) + q(p)] · G_nᵀ[p, o]  tiles of 12 taps × 32 outputs
//!                                                                     (6 × 64 past 32 outputs)
//! input gradient   the forward with the flipped, transposed weight     (im2col.rs's rule, stride 1)
//! ```
//!
//! Both tiles keep 16–24 accumulators of 16 floats in registers. The forward tile reads two
//! vectors of `xp` and broadcasts 8 weights per tap from a copy of `W` packed tap-major. The
//! weight-gradient tile is a GEMM whose inner dimension is every real output position `p`
//! (`q(p) = oy·wp + ox`) of a pass of samples: each sample's gradient transposed to
//! `[positions, c_out]`, so that a tile reads its outputs as whole vectors and broadcasts one
//! padded-input float per tap — no horizontal sums, no dropped positions, and the pass's inputs
//! and gradients sized to stay in L2 while every tile reads them. (The first version kept
//! `G_n` wide and summed 16-lane products horizontally per tile: 2–11× slower than im2col on
//! maps of 16×16 and below; this one is about twice as fast as im2col on 7×7 to 32×32 maps,
//! measured on 2 AVX-512 cores, see `bench/RESULTS.md`.)
//! AVX-512's 32 registers are what makes this work: with AVX2's 16, a tile of 12 accumulators,
//! its operands and a broadcast spill one accumulator, which halved the forward tile's speed
//! (measured); CPUs without AVX-512 keep im2col, and so do maps too small for a tile to pay
//! (at most one forward tile, 32 wide positions: ResNet-18's 4×4 maps, where both kernels
//! measured level or slower than im2col). Samples are split across rayon threads in
//! contiguous chunks, as in `im2col.rs`.

use super::im2col::{Geometry, with_scratch};
use rayon::prelude::*;
use std::sync::OnceLock;

/// Output channels per forward tile.
const FMR: usize = 8;
/// Wide positions per forward tile: two vectors.
const NR: usize = 32;
/// Floats per AVX-512 vector.
const LANES: usize = 16;

/// The environment variable that turns this kernel off (`0`), for comparisons with im2col.
pub const DIRECT_CONV_ENV: &str = "SELFSUP_DIRECT_CONV";

fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        let wanted = std::env::var(DIRECT_CONV_ENV).map_or(true, |v| v.trim() != "0");
        wanted && cpu_supported()
    })
}

#[cfg(target_arch = "x86_64")]
fn cpu_supported() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_supported() -> bool {
    false
}

/// How one stride-1 convolution reads its padded input.
pub(super) struct Plan {
    g: Geometry,
    /// Padded rows and their width.
    hp: usize,
    wp: usize,
    /// Wide output positions per sample: `ho · wp`.
    wide: usize,
    /// `xp`'s offset of every tap, in the weight's `(c, i, j)` order.
    offsets: Vec<usize>,
    /// Floats of one padded sample, with slack for the reads of the last tile.
    padded_len: usize,
}

impl Plan {
    /// The plan of the forward, the weight gradient and the input gradient (a forward) for
    /// `g`, or `None` where im2col is the kernel: a stride other than 1, a CPU without AVX-512F, a batch
    /// smaller than the thread count (im2col then runs its GEMMs in parallel), a map of at
    /// most [`NR`] wide positions (one partial tile: ResNet-18's 4×4 maps), or
    /// `SELFSUP_DIRECT_CONV=0`.
    pub(super) fn new(g: &Geometry) -> Option<Self> {
        let wanted = g.batch >= rayon::current_num_threads() && enabled();
        Self::any_batch(g).filter(|plan| wanted && plan.wide > NR)
    }

    /// [`new`](Self::new) for any batch size and whatever `SELFSUP_DIRECT_CONV` says: `None`
    /// only for a stride other than 1 or a CPU without AVX-512F.
    pub(super) fn any_batch(g: &Geometry) -> Option<Self> {
        if g.stride != [1, 1] || !cpu_supported() {
            return None;
        }
        let hp = g.pad[0] + g.h + g.pad_end[0];
        let wp = g.pad[1] + g.w + g.pad_end[1];
        let plane = hp * wp;
        let mut offsets = Vec::with_capacity(g.c_in * g.kh * g.kw);
        for c in 0..g.c_in {
            for i in 0..g.kh {
                for j in 0..g.kw {
                    offsets.push(c * plane + i * g.dilation[0] * wp + j * g.dilation[1]);
                }
            }
        }
        // The last forward tile reads up to `NR` positions past the wide output, and a wide
        // position reads at most `(k_w − 1)·d_w` past its padded row.
        let slack = NR + LANES + (g.kw - 1) * g.dilation[1];
        Some(Self {
            g: *g,
            hp,
            wp,
            wide: g.ho * wp,
            offsets,
            padded_len: g.c_in * plane + slack,
        })
    }

    fn taps(&self) -> usize {
        self.offsets.len()
    }

    /// Output-channel rows rounded up to whole tiles of `mr`.
    fn rows(&self, mr: usize) -> usize {
        self.g.c_out.div_ceil(mr) * mr
    }

    /// Copies sample `x_n` into the interior of `xp`, whose padding (and slack) is zero.
    fn pad(&self, x_n: &[f32], xp: &mut [f32]) {
        let g = &self.g;
        for (c, channel) in x_n.chunks_exact(g.h * g.w).enumerate() {
            for (y, row) in channel.chunks_exact(g.w).enumerate() {
                let at = c * self.hp * self.wp + (y + g.pad[0]) * self.wp + g.pad[1];
                xp[at..at + g.w].copy_from_slice(row);
            }
        }
    }

    /// `W` packed tap-major per tile of `FMR` output channels:
    /// `packed[b][t][r] = W[b·FMR + r, t]` (zero past `c_out`).
    fn pack(&self, weight: &[f32]) -> Vec<f32> {
        let (taps, c_out) = (self.taps(), self.g.c_out);
        let mut packed = vec![0.0f32; self.rows(FMR) * taps];
        for (o, row) in weight.chunks_exact(taps).enumerate() {
            let (block, r) = (o / FMR, o % FMR);
            for (t, w) in row.iter().enumerate() {
                packed[(block * taps + t) * FMR + r] = *w;
            }
        }
        debug_assert_eq!(weight.len(), c_out * taps);
        packed
    }

    /// `y = x ⋆ weight`, `[batch, c_out, ho, wo]`.
    pub(super) fn forward(&self, x: &[f32], weight: &[f32]) -> Vec<f32> {
        let g = &self.g;
        let (input_len, output_len) = (g.c_in * g.h * g.w, g.c_out * g.ho * g.wo);
        let packed = self.pack(weight);
        let tiles = self.wide.div_ceil(NR);
        let wide_row = tiles * NR;
        let per_chunk = g.batch.div_ceil(rayon::current_num_threads().max(1));
        let fill = |y: &mut [std::mem::MaybeUninit<f32>]| {
            y.par_chunks_mut(per_chunk * output_len)
                .enumerate()
                .for_each(|(chunk, y)| {
                    with_scratch(self.padded_len + self.rows(FMR) * wide_row, |scratch| {
                        let (xp, out) = scratch.split_at_mut(self.padded_len);
                        for (i, y_n) in y.chunks_exact_mut(output_len).enumerate() {
                            let n = chunk * per_chunk + i;
                            self.pad(&x[n * input_len..][..input_len], xp);
                            for block in 0..self.rows(FMR) / FMR {
                                let w = &packed[block * self.taps() * FMR..][..self.taps() * FMR];
                                let out = &mut out[block * FMR * wide_row..][..FMR * wide_row];
                                for tile in 0..tiles {
                                    // SAFETY: `any_batch` checked AVX-512F; the tile reads
                                    // `xp[offset + tile·NR ..][..NR]` for every offset, inside
                                    // `padded_len` by its slack, and writes `FMR` rows of `NR`
                                    // floats at `tile·NR` of rows `wide_row` long.
                                    unsafe {
                                        forward_tile(
                                            w,
                                            &self.offsets,
                                            xp.as_ptr().add(tile * NR),
                                            out.as_mut_ptr().add(tile * NR),
                                            wide_row,
                                        );
                                    }
                                }
                            }
                            for (o, y_o) in y_n.chunks_exact_mut(g.ho * g.wo).enumerate() {
                                let wide = &out[o * wide_row..];
                                for (oy, row) in y_o.chunks_exact_mut(g.wo).enumerate() {
                                    row.write_copy_of_slice(&wide[oy * self.wp..][..g.wo]);
                                }
                            }
                        }
                    });
                });
        };
        // SAFETY: every sample's chunk is written in full: each output channel's rows, `wo`
        // floats each, `ho` rows per channel.
        unsafe { super::written_by(g.batch * output_len, fill) }
    }

    /// `dW = Σ_n G_n · xp_nᵀ` over the taps, `[c_out, c_in·k_h·k_w]`, from the output gradient
    /// `grad` (`[batch, c_out, ho, wo]`).
    ///
    /// A GEMM whose inner dimension is every output position of every sample,
    /// `dWᵀ[t, o] = Σ_(n,p) xp_n[off(t) + q(p)] · G_nᵀ[p, o]`: each sample's gradient is
    /// transposed to `[positions, c_out]` so that a tile's outputs are contiguous, and the
    /// tile broadcasts one padded-input float per tap and position. Only real output
    /// positions are visited (no wide padding), and no horizontal sums are needed: the
    /// accumulators of a tile cover `TT` taps × `16·OV` outputs directly.
    pub(super) fn weight_gradient(&self, x: &[f32], grad: &[f32]) -> Vec<f32> {
        if self.g.c_out > 2 * LANES {
            self.weight_gradient_with::<6, 4>(x, grad)
        } else {
            self.weight_gradient_with::<12, 2>(x, grad)
        }
    }

    /// [`weight_gradient`](Self::weight_gradient) with tiles of `TT` taps × `OV` vectors of
    /// output channels.
    fn weight_gradient_with<const TT: usize, const OV: usize>(
        &self,
        x: &[f32],
        grad: &[f32],
    ) -> Vec<f32> {
        let g = &self.g;
        let (input_len, output_len) = (g.c_in * g.h * g.w, g.c_out * g.ho * g.wo);
        let positions = g.ho * g.wo;
        let taps = self.taps();
        let width = OV * LANES;
        let c_pad = g.c_out.div_ceil(width) * width;
        let taps_pad = taps.div_ceil(TT) * TT;
        let per_chunk = g.batch.div_ceil(rayon::current_num_threads().max(1));
        // Samples per pass of the tiles: their padded inputs and transposed gradients
        // within about half of a 2 MiB L2 cache, so that every tile re-reads them from there.
        let per_sample = self.padded_len + positions * c_pad;
        let group = (WEIGHT_GRADIENT_PASS_FLOATS / per_sample).clamp(1, per_chunk);
        let gt_len = positions * c_pad;
        let chunks = g.batch.div_ceil(per_chunk);
        let partials: Vec<Vec<f32>> = (0..chunks)
            .into_par_iter()
            .map(|chunk| {
                let first = chunk * per_chunk;
                let samples = per_chunk.min(g.batch - first);
                let mut dwt = vec![0.0f32; taps_pad * c_pad];
                with_scratch(group * per_sample, |scratch| {
                    let (xps, gts) = scratch.split_at_mut(group * self.padded_len);
                    for start in (0..samples).step_by(group) {
                        let len = group.min(samples - start);
                        for s in 0..len {
                            let n = first + start + s;
                            let xp = &mut xps[s * self.padded_len..][..self.padded_len];
                            self.pad(&x[n * input_len..][..input_len], xp);
                            let g_n = &grad[n * output_len..][..output_len];
                            let gt = &mut gts[s * gt_len..][..gt_len];
                            // Row `p` of `gt` is position `p`'s gradient of every output;
                            // columns past `c_out` zero.
                            // SAFETY: AVX-512F checked by `any_batch`; `g_n` holds `c_out`
                            // rows of `positions`, `gt` holds `positions` rows of `c_pad`, a
                            // multiple of 16 at least `c_out`.
                            unsafe { transpose_gradient(g_n, g.c_out, positions, gt, c_pad) };
                        }
                        let runs = Runs {
                            samples: len,
                            padded_len: self.padded_len,
                            gt_len,
                            rows: g.ho,
                            wp: self.wp,
                            wo: g.wo,
                            c_pad,
                        };
                        for t0 in (0..taps_pad).step_by(TT) {
                            // A last tile short of `TT` taps repeats the last tap; its rows
                            // of `dwt` past `taps` are dropped.
                            let offs: [usize; TT] =
                                std::array::from_fn(|k| self.offsets[(t0 + k).min(taps - 1)]);
                            for o0 in (0..c_pad).step_by(width) {
                                // SAFETY: AVX-512F checked by `any_batch`; `runs` describes
                                // `xps` and `gts` as filled above (every read of `xp` at
                                // `off + oy·wp + ox` lies inside a sample's `padded_len`,
                                // every read of `gt` inside its `positions · c_pad`), and
                                // `dwt` holds `TT` rows of `c_pad` from `t0·c_pad + o0`.
                                unsafe {
                                    weight_tile::<TT, OV>(
                                        xps,
                                        gts,
                                        &runs,
                                        offs,
                                        o0,
                                        &mut dwt[t0 * c_pad + o0..],
                                    );
                                }
                            }
                        }
                    }
                });
                dwt
            })
            .collect();
        let mut partials = partials.into_iter();
        let mut dwt = partials.next().expect("at least one chunk");
        for part in partials {
            dwt.iter_mut().zip(&part).for_each(|(s, v)| *s += v);
        }
        let mut dw = vec![0.0f32; g.c_out * taps];
        for (o, row) in dw.chunks_exact_mut(taps).enumerate() {
            for (t, v) in row.iter_mut().enumerate() {
                *v = dwt[t * c_pad + o];
            }
        }
        dw
    }
}

/// Floats of padded inputs and transposed gradients per pass of the weight-gradient tiles
/// (1 MiB: half of this CPU family's 2 MiB L2 per core).
const WEIGHT_GRADIENT_PASS_FLOATS: usize = 1 << 18;

/// Where a pass of the weight-gradient tiles reads: `samples` padded inputs `padded_len`
/// apart, their transposed gradients `gt_len` apart (rows of `c_pad` per output position),
/// and each output row `oy < rows` as `wo` positions from `oy·wp` in the padded input.
struct Runs {
    samples: usize,
    padded_len: usize,
    gt_len: usize,
    rows: usize,
    wp: usize,
    wo: usize,
    c_pad: usize,
}

/// `gt[p·c_pad + o] = g_n[o·positions + p]`, and zero for `c_out ≤ o < c_pad`: one gather
/// of 16 outputs' values per position and vector stores (the scalar transpose it replaces
/// was ≈ 5 % of a ConvNet-S step).
///
/// # Safety
///
/// The CPU has AVX-512F; `g_n` holds `c_out · positions` floats, `gt` `positions · c_pad`,
/// `c_pad` is a multiple of 16 and at least `c_out`, and `c_out · positions < 2³¹`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_gradient(
    g_n: &[f32],
    c_out: usize,
    positions: usize,
    gt: &mut [f32],
    c_pad: usize,
) {
    use std::arch::x86_64::*;
    assert!(
        g_n.len() >= c_out * positions
            && gt.len() >= positions * c_pad
            && c_pad.is_multiple_of(LANES)
            && c_pad >= c_out
            && c_out * positions < i32::MAX as usize,
        "transpose_gradient: sizes"
    );
    let step = positions as i32;
    let rows = _mm512_setr_epi32(
        0,
        step,
        2 * step,
        3 * step,
        4 * step,
        5 * step,
        6 * step,
        7 * step,
        8 * step,
        9 * step,
        10 * step,
        11 * step,
        12 * step,
        13 * step,
        14 * step,
        15 * step,
    );
    for o0 in (0..c_pad).step_by(LANES) {
        let live = c_out.saturating_sub(o0).min(LANES);
        let mask: __mmask16 = ((1u32 << live) - 1) as u16;
        for p in 0..positions {
            // SAFETY: lanes under `mask` read `g_n[(o0 + i)·positions + p]` with `o0 + i <
            // c_out`; the store writes `gt[p·c_pad + o0 ..][..16]`, inside `gt` (asserted).
            unsafe {
                let values = if live == 0 {
                    _mm512_setzero_ps()
                } else {
                    _mm512_mask_i32gather_ps::<4>(
                        _mm512_setzero_ps(),
                        mask,
                        rows,
                        g_n.as_ptr().add(o0 * positions + p),
                    )
                };
                _mm512_storeu_ps(gt.as_mut_ptr().add(p * c_pad + o0), values);
            }
        }
    }
}

/// `out[r, 0..NR] = Σ_t w[t·FMR + r] · xp[offsets[t]..][..NR]` for `r < FMR`, rows of `out`
/// `out_stride` apart: 16 accumulators of 16 floats, each weight broadcast from memory.
///
/// # Safety
///
/// The CPU has AVX-512F; `xp.add(offsets[t])` is readable for `NR` floats for every `t`, and
/// `out` writable for `FMR` rows of `NR` floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn forward_tile(
    w: &[f32],
    offsets: &[usize],
    xp: *const f32,
    out: *mut f32,
    out_stride: usize,
) {
    use std::arch::x86_64::*;
    debug_assert_eq!(w.len(), offsets.len() * FMR);
    let mut acc = [[_mm512_setzero_ps(); NR / LANES]; FMR];
    let (w, _) = w.as_chunks::<FMR>();
    for (w, &offset) in w.iter().zip(offsets) {
        // SAFETY: the caller's bounds.
        let b: [__m512; NR / LANES] =
            std::array::from_fn(|v| unsafe { _mm512_loadu_ps(xp.add(offset + v * LANES)) });
        for (acc, w) in acc.iter_mut().zip(w) {
            let a = _mm512_set1_ps(*w);
            for (acc, b) in acc.iter_mut().zip(&b) {
                *acc = _mm512_fmadd_ps(a, *b, *acc);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (v, acc) in acc.iter().enumerate() {
            // SAFETY: the caller's bounds.
            unsafe { _mm512_storeu_ps(out.add(r * out_stride + v * LANES), *acc) };
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn forward_tile(_: &[f32], _: &[usize], _: *const f32, _: *mut f32, _: usize) {
    unreachable!("the direct convolution runs only on x86-64")
}

/// `dwt[k·c_pad + 16·v + l] += Σ_(s, oy, ox) xp_s[offs[k] + oy·wp + ox] · gt_s[(oy·wo + ox)·c_pad
/// + o0 + 16·v + l]` for `k < TT`, `v < OV`: `TT·OV` accumulators of 16 floats, one
/// broadcast per tap and position, `OV` loads of the gradient per position.
///
/// # Safety
///
/// The CPU has AVX-512F; `xps` holds `runs.samples` padded inputs in which every
/// `offs[k] + oy·wp + ox` (`oy < rows`, `ox < wo`) is in bounds, `gts` their transposed
/// gradients with `o0 + 16·OV <= c_pad`, and `dwt` `TT` rows of `c_pad` floats from its start
/// (the first `16·OV` of each are accumulated).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn weight_tile<const TT: usize, const OV: usize>(
    xps: &[f32],
    gts: &[f32],
    runs: &Runs,
    offs: [usize; TT],
    o0: usize,
    dwt: &mut [f32],
) {
    use std::arch::x86_64::*;
    debug_assert!(runs.samples * runs.padded_len <= xps.len());
    debug_assert!(runs.samples * runs.gt_len <= gts.len());
    debug_assert!((TT - 1) * runs.c_pad + OV * LANES <= dwt.len());
    let mut acc = [[_mm512_setzero_ps(); OV]; TT];
    for s in 0..runs.samples {
        for oy in 0..runs.rows {
            // SAFETY: the caller's bounds.
            let (x_row, g_row) = unsafe {
                (
                    xps.as_ptr().add(s * runs.padded_len + oy * runs.wp),
                    gts.as_ptr()
                        .add(s * runs.gt_len + oy * runs.wo * runs.c_pad + o0),
                )
            };
            let taps: [*const f32; TT] = std::array::from_fn(|k| unsafe { x_row.add(offs[k]) });
            for ox in 0..runs.wo {
                // SAFETY: the caller's bounds.
                let b: [__m512; OV] = std::array::from_fn(|v| unsafe {
                    _mm512_loadu_ps(g_row.add(ox * runs.c_pad + v * LANES))
                });
                for (acc, tap) in acc.iter_mut().zip(&taps) {
                    // SAFETY: the caller's bounds.
                    let a = _mm512_set1_ps(unsafe { *tap.add(ox) });
                    for (acc, b) in acc.iter_mut().zip(&b) {
                        *acc = _mm512_fmadd_ps(a, *b, *acc);
                    }
                }
            }
        }
    }
    for (k, acc) in acc.iter().enumerate() {
        for (v, acc) in acc.iter().enumerate() {
            let at = k * runs.c_pad + v * LANES;
            let sum = &mut dwt[at..at + LANES];
            // SAFETY: `sum` holds 16 floats.
            unsafe {
                let old = _mm512_loadu_ps(sum.as_ptr());
                _mm512_storeu_ps(sum.as_mut_ptr(), _mm512_add_ps(old, *acc));
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn weight_tile<const TT: usize, const OV: usize>(
    _: &[f32],
    _: &[f32],
    _: &Runs,
    _: [usize; TT],
    _: usize,
    _: &mut [f32],
) {
    unreachable!("the direct convolution runs only on x86-64")
}
