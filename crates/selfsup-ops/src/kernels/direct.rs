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
//! forward          y_n[o, q] = Σ_t W[o, t] · xp_n[off(t) + q]        tiles of 8 outputs × 32 positions
//! weight gradient  dW[o, t]  = Σ_n Σ_q G_n[o, q] · xp_n[off(t) + q]  tiles of 4 outputs × 4 taps
//! input gradient   the forward with the flipped, transposed weight   (im2col.rs's rule, stride 1)
//! ```
//!
//! In the weight gradient `G_n` is laid out wide too, with zeros at the dropped positions, so
//! they add nothing. Both tiles keep 16 accumulators of 16 floats in registers: the forward tile
//! reads two vectors of `xp` and broadcasts 8 weights per tap from a copy of `W` packed
//! tap-major; the weight tile reads 4 rows of `G_n` and 4 shifted rows of `xp_n` per 16
//! positions, and samples are grouped so that its inner loop covers at least 512 positions.
//! AVX-512's 32 registers are what makes this work: with AVX2's 16, a tile of 12 accumulators,
//! its operands and a broadcast spill one accumulator, which halved the forward tile's speed
//! (measured); CPUs without AVX-512 keep im2col, and so do maps too small for a tile to pay:
//! the forward on maps of at most one tile (32 wide positions), the weight gradient on maps
//! under [`MIN_WEIGHT_GRADIENT_WIDE`] (measured there). Samples are split across rayon threads in
//! contiguous chunks, as in `im2col.rs`.

use super::im2col::{Geometry, with_scratch};
use rayon::prelude::*;
use std::sync::OnceLock;

/// Output channels per forward tile.
const FMR: usize = 8;
/// Wide positions per forward tile: two vectors.
const NR: usize = 32;
/// Output channels per weight-gradient tile.
const MR: usize = 4;
/// Taps per weight-gradient tile.
const TR: usize = 4;
/// Floats per AVX-512 vector.
const LANES: usize = 16;

/// The fewest wide positions per sample (`ho · wp`) for which the weight-gradient tile beats
/// im2col + GEMM. Measured on 2 AVX-512 cores (batch 256–512, 3×3, padding 1): faster on
/// 28×28 maps (840 wide positions; 52 against 136 ms for 32 → 32 channels) and level on
/// 32×32 (1,088), slower on every map of 16×16 and below (294 against 156 ms for ResNet-18's
/// 128 → 128 at 16×16, 2.4 s against 0.21 s for its 512 → 512 at 4×4): there each tile's
/// 16 accumulators are reduced after too few positions, and the shifted input rows of all
/// taps no longer stay in cache between output tiles.
const MIN_WEIGHT_GRADIENT_WIDE: usize = 512;

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
    /// The plan of the forward (and of the input gradient, a forward) for `g`, or `None`
    /// where im2col is the kernel: a stride other than 1, a CPU without AVX-512F, a batch
    /// smaller than the thread count (im2col then runs its GEMMs in parallel), a map of at
    /// most [`NR`] wide positions (one partial tile: ResNet-18's 4×4 maps), or
    /// `SELFSUP_DIRECT_CONV=0`.
    pub(super) fn new(g: &Geometry) -> Option<Self> {
        let wanted = g.batch >= rayon::current_num_threads() && enabled();
        Self::any_batch(g).filter(|plan| wanted && plan.wide > NR)
    }

    /// The plan of the weight gradient for `g`: as [`new`](Self::new), and only for maps of
    /// at least [`MIN_WEIGHT_GRADIENT_WIDE`] wide positions.
    pub(super) fn for_weight_gradient(g: &Geometry) -> Option<Self> {
        Self::new(g).filter(|plan| plan.wide >= MIN_WEIGHT_GRADIENT_WIDE)
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
        let mut y = vec![0.0f32; g.batch * output_len];
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
                                row.copy_from_slice(&wide[oy * self.wp..][..g.wo]);
                            }
                        }
                    }
                });
            });
        y
    }

    /// `dW = Σ_n G_n · xp_nᵀ` over the taps, `[c_out, c_in·k_h·k_w]`, from the output gradient
    /// `grad` (`[batch, c_out, ho, wo]`).
    pub(super) fn weight_gradient(&self, x: &[f32], grad: &[f32]) -> Vec<f32> {
        let g = &self.g;
        let (input_len, output_len) = (g.c_in * g.h * g.w, g.c_out * g.ho * g.wo);
        let taps = self.taps();
        let wide16 = self.wide.div_ceil(LANES) * LANES;
        let per_chunk = g.batch.div_ceil(rayon::current_num_threads().max(1));
        // Samples per pass of the tiles: enough wide positions that the 12 horizontal sums
        // of each tile are a small part of its work.
        let group = 512usize.div_ceil(wide16).clamp(1, per_chunk);
        let g_len = self.rows(MR) * wide16;
        let chunks = g.batch.div_ceil(per_chunk);
        let partials: Vec<Vec<f32>> = (0..chunks)
            .into_par_iter()
            .map(|chunk| {
                let first = chunk * per_chunk;
                let samples = per_chunk.min(g.batch - first);
                let mut dw = vec![0.0f32; self.rows(MR) * taps];
                with_scratch(group * (self.padded_len + g_len), |scratch| {
                    let (xps, gws) = scratch.split_at_mut(group * self.padded_len);
                    for start in (0..samples).step_by(group) {
                        let len = group.min(samples - start);
                        for s in 0..len {
                            let n = first + start + s;
                            let xp = &mut xps[s * self.padded_len..][..self.padded_len];
                            self.pad(&x[n * input_len..][..input_len], xp);
                            let gw = &mut gws[s * g_len..][..g_len];
                            let g_n = &grad[n * output_len..][..output_len];
                            for (o, g_o) in g_n.chunks_exact(g.ho * g.wo).enumerate() {
                                for (oy, row) in g_o.chunks_exact(g.wo).enumerate() {
                                    gw[o * wide16 + oy * self.wp..][..g.wo].copy_from_slice(row);
                                }
                            }
                        }
                        for block in 0..self.rows(MR) / MR {
                            for t0 in (0..taps).step_by(TR) {
                                // A last tile short of `TR` taps repeats tap `t0` and drops it.
                                let offs = std::array::from_fn(|k| {
                                    self.offsets[if t0 + k < taps { t0 + k } else { t0 }]
                                });
                                let mut sums = [[0.0f32; TR]; MR];
                                for s in 0..len {
                                    let gw = &gws[s * g_len + block * MR * wide16..];
                                    let xp = &xps[s * self.padded_len..][..self.padded_len];
                                    // SAFETY: AVX-512F checked by `any_batch`; the tile
                                    // reads `MR` rows of `wide16` floats of `gw` and
                                    // `xp[off + q]` for `q < wide16`, inside `padded_len`.
                                    unsafe {
                                        weight_tile(
                                            &gw[..MR * wide16],
                                            wide16,
                                            xp,
                                            offs,
                                            &mut sums,
                                        );
                                    }
                                }
                                for (r, row) in sums.iter().enumerate() {
                                    let o = block * MR + r;
                                    for (k, v) in row.iter().enumerate() {
                                        if t0 + k < taps {
                                            dw[o * taps + t0 + k] += v;
                                        }
                                    }
                                }
                            }
                        }
                    }
                });
                dw
            })
            .collect();
        let mut partials = partials.into_iter();
        let mut dw = partials.next().expect("at least one chunk");
        for part in partials {
            dw.iter_mut().zip(&part).for_each(|(s, v)| *s += v);
        }
        dw.truncate(g.c_out * taps);
        dw
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

/// `sums[r][k] += Σ_q gw[r·stride + q] · xp[offs[k] + q]` over `q < stride` (a multiple of
/// 16): 16 accumulators of 16 floats.
///
/// # Safety
///
/// The CPU has AVX-512F; `xp[offs[k] + q]` is in bounds for every `k` and `q < stride`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn weight_tile(
    gw: &[f32],
    stride: usize,
    xp: &[f32],
    offs: [usize; TR],
    sums: &mut [[f32; TR]; MR],
) {
    use std::arch::x86_64::*;
    debug_assert!(stride % LANES == 0 && gw.len() >= MR * stride);
    debug_assert!(offs.iter().all(|&o| o + stride <= xp.len()));
    let mut acc = [[_mm512_setzero_ps(); TR]; MR];
    let (gp, xq) = (gw.as_ptr(), xp.as_ptr());
    for q in (0..stride).step_by(LANES) {
        // SAFETY: the caller's bounds.
        let b: [__m512; TR] =
            std::array::from_fn(|k| unsafe { _mm512_loadu_ps(xq.add(offs[k] + q)) });
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: row `r < MR` of `gw`, `q + 16 <= stride`.
            let a = unsafe { _mm512_loadu_ps(gp.add(r * stride + q)) };
            for (acc, b) in acc.iter_mut().zip(&b) {
                *acc = _mm512_fmadd_ps(a, *b, *acc);
            }
        }
    }
    // Stored, then summed: `_mm512_reduce_add_ps` here made the register allocator keep one
    // accumulator of the loop above on the stack (a store and a load per 16 positions).
    let mut lanes = [[[0.0f32; LANES]; TR]; MR];
    for (lanes, acc) in lanes.iter_mut().zip(&acc) {
        for (lanes, acc) in lanes.iter_mut().zip(acc) {
            // SAFETY: `lanes` holds 16 floats.
            unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), *acc) };
        }
    }
    for (sums, lanes) in sums.iter_mut().zip(&lanes) {
        for (sum, lanes) in sums.iter_mut().zip(lanes) {
            *sum += lanes.iter().sum::<f32>();
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn weight_tile(_: &[f32], _: usize, _: &[f32], _: [usize; TR], _: &mut [[f32; TR]; MR]) {
    unreachable!("the direct convolution runs only on x86-64")
}
