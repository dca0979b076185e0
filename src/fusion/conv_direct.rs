//! The 3×3 "same" convolution (stride 1, padding 1, dilation 1) of inference, computed
//! directly with AVX-512: no im2col block, no GEMM packing, no padded copy.
//!
//! Most of W-DUALMINE's convolutions are 3×3 with few output channels (8–64). Through im2col
//! every input value is copied nine times and the GEMM packs the copies again; here each output
//! block (8 output channels × 32 pixels of one row, 16 accumulator registers) sums its 9·C_in
//! taps straight from the input: one load per 16 pixels and tap, reused by eight broadcast FMAs.
//! The zero border is never written: taps above the first or below the last row are skipped,
//! and the loads of the first and last vectors of a row are masked to the row's columns.
//!
//! Each output value is one FMA chain from zero over the taps in im2col order (input channel,
//! kernel row, kernel column; taps outside the image add nothing), then the bias added: what
//! the gemm crate computes for `conv_cpu::forward` when the taps fit one of its K blocks. Where
//! `gemm_sums::forward_is_one_chain` holds, the results are the same bits (tested), so training
//! takes this kernel too without changing the rounding the shipped weights were made with;
//! elsewhere training keeps `conv_cpu`, and fusion takes this kernel for every 3×3 `same`
//! layer (its results then differ in the last bits). Machines without AVX-512 take `conv_cpu`
//! everywhere.

use rayon::prelude::*;

use super::conv_cpu::{ConvShape, Disjoint};
use super::gemm_sums::RowChains;
use super::has_avx512;

/// Output channels per register block.
const BLOCK_CHANNELS: usize = 8;
/// 16-pixel vectors per register block (64 pixels).
const BLOCK_VECTORS: usize = 2;
/// Lanes of one AVX-512 f32 vector.
const LANES: usize = 16;
/// Output pixels per parallel task (whole rows): small, so that the 32² and 64² layers of one
/// image still spread over the cores.
const TASK_PIXELS: usize = 256;

/// Whether [`forward`] computes this convolution on this machine.
pub fn covers(shape: &ConvShape) -> bool {
    shape.kernel == [3, 3]
        && shape.stride == [1, 1]
        && shape.dilation == [1, 1]
        && shape.padding == [1, 1]
        && shape.out_size == shape.in_size
        && has_avx512()
}

/// The convolution `y = x ∗ weight + bias`, `[batch, out_channels, h, w]`, each output one
/// FMA chain over all its taps; `None` when [`covers`] is false.
pub fn forward(shape: &ConvShape, x: &[f32], weight: &[f32], bias: &[f32]) -> Option<Vec<f32>> {
    let rows = vec![RowChains::one_chain(shape.in_size[1]); shape.in_size[0]];
    forward_in_chains(shape, x, weight, bias, &rows)
}

/// The convolution `y = x ∗ weight + bias` summed in the chains `rows[y]` gives for output row
/// `y` (`gemm_sums::forward_chains`: the gemm crate's blocks of taps, so that training gets
/// `conv_cpu::forward`'s bits); `None` when [`covers`] is false.
pub fn forward_in_chains(
    shape: &ConvShape,
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    rows: &[RowChains],
) -> Option<Vec<f32>> {
    if !covers(shape) {
        return None;
    }
    let (c_in, c_out) = (shape.in_channels, shape.out_channels);
    let [h, w] = shape.in_size;
    assert_eq!(x.len(), shape.batch * c_in * h * w, "input size");
    assert_eq!(weight.len(), c_out * c_in * 9, "weight size");
    assert_eq!(bias.len(), c_out, "bias size");
    assert_eq!(rows.len(), h, "chains per row");
    let values = by_rows(shape, c_out, |n, y, out| {
        let image = &x[n * c_in * h * w..(n + 1) * c_in * h * w];
        // SAFETY: `covers` checked AVX-512; `by_rows` gives this call row `y` of image `n`.
        unsafe { avx512::output_row(shape, image, y, weight, bias, rows[y], out) }
    });
    Some(values)
}

/// The gradient with respect to the input, `[batch, in_channels, h, w]`, of the convolution by
/// `weight` whose output gradient is `output_grad`, or `None` when [`covers`] is false. Each
/// value sums the taps in order (kernel row, kernel column), each tap's value being one FMA
/// chain from zero over the output channels: what `conv_cpu::input_grad` computes (a GEMM
/// per tap block, then `col2im` adding the taps in order) where
/// `gemm_sums::input_grad_is_one_chain` holds.
pub fn input_grad(shape: &ConvShape, weight: &[f32], output_grad: &[f32]) -> Option<Vec<f32>> {
    if !covers(shape) {
        return None;
    }
    let (c_in, c_out) = (shape.in_channels, shape.out_channels);
    let [h, w] = shape.in_size;
    assert_eq!(weight.len(), c_out * c_in * 9, "weight size");
    let plane = c_out * h * w;
    assert_eq!(output_grad.len(), shape.batch * plane, "gradient size");
    let values = by_rows(shape, c_in, |n, y, grad| {
        let image_grad = &output_grad[n * plane..(n + 1) * plane];
        // SAFETY: `covers` checked AVX-512; `by_rows` gives this call row `y` of image `n`.
        unsafe { avx512::input_grad_row(shape, image_grad, y, weight, grad) }
    });
    Some(values)
}

/// A `[batch, channels, h, w]` result written row by row on rayon's pool: `row(n, y, image)`
/// must write row `y` of every channel of image `n`, `image` pointing at its first value; the
/// callers have checked [`covers`], and no two calls share a row.
fn by_rows(
    shape: &ConvShape,
    channels: usize,
    row: impl Fn(usize, usize, *mut f32) + Sync,
) -> Vec<f32> {
    let [h, w] = shape.in_size;
    let len = shape.batch * channels * h * w;
    let mut values = Vec::<f32>::with_capacity(len);
    let dst = Disjoint(values.as_mut_ptr());
    let rows_per_task = (TASK_PIXELS / w).max(1);
    let tasks: Vec<(usize, usize)> = (0..shape.batch)
        .flat_map(|n| (0..h).step_by(rows_per_task).map(move |y| (n, y)))
        .collect();
    tasks.par_iter().for_each(|&(n, first_row)| {
        for y in first_row..(first_row + rows_per_task).min(h) {
            // SAFETY: image `n` starts inside `values`' capacity.
            row(n, y, unsafe { dst.at(n * channels * h * w) });
        }
    });
    // SAFETY: the tasks above wrote every row of every channel of every image.
    unsafe { values.set_len(len) };
    values
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
/// Where a row's blocks start and what they hold: (first pixel, vectors, pixels) — blocks of
/// `BLOCK_VECTORS` whole vectors, then single vectors, the last one partial.
fn row_blocks(width: usize) -> impl Iterator<Item = (usize, usize, usize)> {
    let block_pixels = BLOCK_VECTORS * LANES;
    let mut x0 = 0;
    std::iter::from_fn(move || {
        (x0 < width).then(|| {
            let (vectors, pixels) = if width - x0 >= block_pixels {
                (BLOCK_VECTORS, block_pixels)
            } else {
                (1, (width - x0).min(LANES))
            };
            x0 += pixels;
            (x0 - pixels, vectors, pixels)
        })
    })
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
/// Channel blocks over `count` channels: (first channel, channels) — `block` at a time, then
/// one at a time.
fn channel_blocks(count: usize, block: usize) -> impl Iterator<Item = (usize, usize)> {
    let mut first = 0;
    std::iter::from_fn(move || {
        (first < count).then(|| {
            let channels = if count - first >= block { block } else { 1 };
            first += channels;
            (first - channels, channels)
        })
    })
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{
        BLOCK_CHANNELS, BLOCK_VECTORS, ConvShape, LANES, RowChains, channel_blocks, row_blocks,
    };

    /// Writes output row `y` of one image, every channel, into `out` (the image's first
    /// output value), summed in the chains of `chains`.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `out` holds `[out_channels, h, w]` floats and nobody else writes
    /// row `y` of them meanwhile; `image` is one input image, `weight` and `bias` the layer's.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn output_row(
        shape: &ConvShape,
        image: &[f32],
        y: usize,
        weight: &[f32],
        bias: &[f32],
        chains: RowChains,
        out: *mut f32,
    ) {
        let [h, w] = shape.in_size;
        let c_out = shape.out_channels;
        let geometry = Geometry {
            plane: h * w,
            width: w,
            taps: shape.in_channels * 9,
            // Kernel rows whose input row y + ky − 1 lies inside the image.
            kernel_rows: usize::from(y == 0)..(3 - usize::from(y + 1 == h)).min(h + 1 - y),
            first_row: y as isize - 1,
        };
        for (x0, vectors, pixels) in row_blocks(w) {
            let masks = Masks::new(x0, pixels, w);
            // The block's pixels before `split` in chains of `main` taps; those from `split`
            // on again, in chains of `ragged` taps, stored over the first pass's.
            let mut passes = [
                (chains.main, masks.store),
                (chains.ragged, [0; BLOCK_VECTORS]),
            ];
            if chains.split < x0 + pixels && chains.ragged != chains.main {
                passes[1].1 = std::array::from_fn(|p| {
                    // Vector p's lanes before the split.
                    let before = chains.split.saturating_sub(x0 + p * LANES).min(LANES) as u32;
                    masks.store[p] & !(((1u32 << before) - 1) as __mmask16)
                });
            }
            for (chain, store) in passes {
                if store == [0; BLOCK_VECTORS] {
                    continue;
                }
                let masks = Masks { store, ..masks };
                for (co, channels) in channel_blocks(c_out, BLOCK_CHANNELS) {
                    // SAFETY: the block reads input columns x0 − 1 .. x0 + pixels + 1 of rows
                    // y − 1 ..= y + 1, loads masked to the image's rows and columns; its
                    // weights and biases are channels co..co+channels; its output is row y,
                    // columns x0..x0+pixels of those channels (the caller's contract).
                    unsafe {
                        let src = image.as_ptr().add(x0);
                        let wt = weight.as_ptr().add(co * geometry.taps);
                        let b = bias.as_ptr().add(co);
                        let dst = out.add((co * h + y) * w + x0);
                        let g = &geometry;
                        match (channels, vectors) {
                            (BLOCK_CHANNELS, BLOCK_VECTORS) => {
                                block::<BLOCK_CHANNELS, BLOCK_VECTORS>(
                                    g, &masks, chain, src, wt, b, dst,
                                )
                            }
                            (BLOCK_CHANNELS, _) => {
                                block::<BLOCK_CHANNELS, 1>(g, &masks, chain, src, wt, b, dst)
                            }
                            (_, BLOCK_VECTORS) => {
                                block::<1, BLOCK_VECTORS>(g, &masks, chain, src, wt, b, dst)
                            }
                            _ => block::<1, 1>(g, &masks, chain, src, wt, b, dst),
                        }
                    }
                }
            }
        }
    }

    /// Input channels per register block of the input gradient (its tap sums take
    /// 8 × `BLOCK_VECTORS` registers; the running total over the taps stays in the output).
    const GRADIENT_CHANNELS: usize = 8;

    /// Writes the input gradient's row `y` of one image, every input channel, into `out` (the
    /// image's first input-gradient value).
    ///
    /// # Safety
    /// The CPU has AVX-512F; `out` holds `[in_channels, h, w]` floats and nobody else writes
    /// row `y` of them meanwhile; `output_grad` is one image's `[out_channels, h, w]` output
    /// gradient, `weight` the layer's.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn input_grad_row(
        shape: &ConvShape,
        output_grad: &[f32],
        y: usize,
        weight: &[f32],
        out: *mut f32,
    ) {
        let [h, w] = shape.in_size;
        let c_in = shape.in_channels;
        // Tap (ky, kx) of input pixel (y, x) comes from output pixel (y + 1 − ky, x + 1 − kx);
        // kernel rows whose output row lies inside the image.
        let kernel_rows = (y + 2).saturating_sub(h)..(y + 2).min(3);
        for (x0, vectors, pixels) in row_blocks(w) {
            let masks = Masks::new(x0, pixels, w);
            for (ci, channels) in channel_blocks(c_in, GRADIENT_CHANNELS) {
                let block = GradientBlock {
                    output_grad: output_grad.as_ptr().wrapping_add(x0),
                    out_channels: shape.out_channels,
                    plane: h * w,
                    width: w,
                    kernel_rows: kernel_rows.clone(),
                    y,
                    masks: &masks,
                };
                // SAFETY: the block reads output-gradient columns x0 − 1 .. x0 + pixels + 1 of
                // rows y − 1 ..= y + 1, loads masked to the image; its weights are input
                // channels ci..ci+channels of every output channel; its output is row y,
                // columns x0..x0+pixels of those input channels (the caller's contract).
                unsafe {
                    let wt = weight.as_ptr().add(ci * 9);
                    let dst = out.add((ci * h + y) * w + x0);
                    match (channels, vectors) {
                        (GRADIENT_CHANNELS, BLOCK_VECTORS) => gradient_block::<
                            GRADIENT_CHANNELS,
                            BLOCK_VECTORS,
                        >(
                            &block, wt, c_in * 9, dst
                        ),
                        (GRADIENT_CHANNELS, _) => {
                            gradient_block::<GRADIENT_CHANNELS, 1>(&block, wt, c_in * 9, dst)
                        }
                        (_, BLOCK_VECTORS) => {
                            gradient_block::<1, BLOCK_VECTORS>(&block, wt, c_in * 9, dst)
                        }
                        _ => gradient_block::<1, 1>(&block, wt, c_in * 9, dst),
                    }
                }
            }
        }
    }

    /// What one input-gradient block reads.
    struct GradientBlock<'a> {
        /// The output gradient at row 0, the block's first column (not dereferenced outside
        /// the masked lanes).
        output_grad: *const f32,
        out_channels: usize,
        plane: usize,
        width: usize,
        kernel_rows: std::ops::Range<usize>,
        y: usize,
        masks: &'a Masks,
    }

    /// `CI` input channels × `PX` vectors of one input-gradient row: for each tap in order
    /// (kernel row, kernel column), the chain over the output channels from zero, added to the
    /// running total.
    ///
    /// # Safety
    /// As in `input_grad_row`: `weight` is input channel ci's first weight of output channel
    /// 0 (`co_stride` floats per output channel), `out` the block's first value.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn gradient_block<const CI: usize, const PX: usize>(
        b: &GradientBlock,
        weight: *const f32,
        co_stride: usize,
        out: *mut f32,
    ) {
        // SAFETY: the caller's contract; every load is masked to lanes inside the image (the
        // addresses of masked-off lanes are never read), every store to the block's pixels.
        unsafe {
            let mut first_tap = true;
            for ky in b.kernel_rows.clone() {
                let row = b.y + 1 - ky;
                for kx in 0..3 {
                    // Output column x + 1 − kx: the forward's masks of kernel column 2 − kx.
                    let masks = &b.masks.load[2 - kx];
                    let at = b
                        .output_grad
                        .wrapping_add(row * b.width + 1)
                        .wrapping_sub(kx);
                    let mut tap = [[_mm512_setzero_ps(); PX]; CI];
                    for co in 0..b.out_channels {
                        let line = at.wrapping_add(co * b.plane);
                        let mut g = [_mm512_setzero_ps(); PX];
                        for (p, v) in g.iter_mut().enumerate() {
                            *v = _mm512_maskz_loadu_ps(masks[p], line.wrapping_add(p * LANES));
                        }
                        let w = weight.add(co * co_stride + ky * 3 + kx);
                        for (c, lanes) in tap.iter_mut().enumerate() {
                            let wv = _mm512_set1_ps(*w.add(c * 9));
                            for (v, gv) in lanes.iter_mut().zip(&g) {
                                *v = _mm512_fmadd_ps(*gv, wv, *v);
                            }
                        }
                    }
                    // The running total over the taps, from zero, lives in the output row.
                    for (c, lanes) in tap.iter().enumerate() {
                        let row = out.add(c * b.plane);
                        for (p, t) in lanes.iter().enumerate() {
                            let at = row.add(p * LANES);
                            let store = b.masks.store[p];
                            let total = if first_tap {
                                _mm512_setzero_ps()
                            } else {
                                _mm512_maskz_loadu_ps(store, at)
                            };
                            _mm512_mask_storeu_ps(at, store, _mm512_add_ps(total, *t));
                        }
                    }
                    first_tap = false;
                }
            }
        }
    }

    /// Strides and extents of one output row's blocks, in floats.
    struct Geometry {
        plane: usize,
        width: usize,
        /// Weights per output channel (`in_channels·9`).
        taps: usize,
        kernel_rows: std::ops::Range<usize>,
        /// The input row of kernel row 0 (−1 on the first output row).
        first_row: isize,
    }

    /// Lane masks of one block: per kernel column and vector, the lanes whose input column
    /// lies inside the row; per vector, the lanes stored.
    struct Masks {
        load: [[__mmask16; BLOCK_VECTORS]; 3],
        store: [__mmask16; BLOCK_VECTORS],
    }

    impl Masks {
        fn new(x0: usize, pixels: usize, width: usize) -> Self {
            // The lanes l with 0 ≤ first + l < end: one run of set bits.
            let lanes = |first: isize, end: isize| -> __mmask16 {
                let low = (-first).clamp(0, LANES as isize) as u32;
                let high = (end - first).clamp(0, LANES as isize) as u32;
                let below = |n: u32| ((1u32 << n) - 1) as __mmask16;
                if high > low {
                    below(high) & !below(low)
                } else {
                    0
                }
            };
            let mut load = [[0; BLOCK_VECTORS]; 3];
            let mut store = [0; BLOCK_VECTORS];
            for p in 0..BLOCK_VECTORS {
                let first = (x0 + p * LANES) as isize;
                store[p] = lanes(first, (x0 + pixels) as isize);
                for (kx, masks) in load.iter_mut().enumerate() {
                    masks[p] = lanes(first + kx as isize - 1, width as isize);
                }
            }
            Self { load, store }
        }
    }

    /// `CO` output channels × `PX` vectors of one output row: the taps in order (input
    /// channel, kernel row, kernel column) in chains of `chain` taps, each from zero, added in
    /// turn onto the bias (the running total lives in the output row).
    ///
    /// # Safety
    /// As in `output_row`: `src` is the input image at row 0, column x0; `weight` and `bias`
    /// the block's first output channel's, `out` its first output value.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn block<const CO: usize, const PX: usize>(
        g: &Geometry,
        masks: &Masks,
        chain: usize,
        src: *const f32,
        weight: *const f32,
        bias: *const f32,
        out: *mut f32,
    ) {
        // SAFETY: the caller's contract.
        unsafe {
            if chain >= g.taps {
                chains::<CO, PX, false>(g, masks, g.taps, src, weight, bias, out);
            } else {
                chains::<CO, PX, true>(g, masks, chain, src, weight, bias, out);
            }
        }
    }

    /// [`block`], in one chain unless `CHAINED` (a separate instance: the one chain of
    /// fusion and of most training layers keeps the loop without the block bookkeeping).
    ///
    /// # Safety
    /// As in [`block`].
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn chains<const CO: usize, const PX: usize, const CHAINED: bool>(
        g: &Geometry,
        masks: &Masks,
        chain: usize,
        src: *const f32,
        weight: *const f32,
        bias: *const f32,
        out: *mut f32,
    ) {
        // SAFETY: the caller's contract; every load is masked to lanes inside the image (the
        // addresses of masked-off lanes are never read), every store to the block's pixels.
        unsafe {
            let mut start = 0;
            while start < g.taps {
                let end = if CHAINED {
                    start.saturating_add(chain).min(g.taps)
                } else {
                    g.taps
                };
                let mut acc = [[_mm512_setzero_ps(); PX]; CO];
                for ci in start / 9..end.div_ceil(9) {
                    let args = (g, masks, src, weight, ci);
                    // The chain's kernel positions (ky·3 + kx) of channel ci: all nine but
                    // where a chain starts or ends inside the channel.
                    let positions = start.saturating_sub(ci * 9)..(end - ci * 9).min(9);
                    if !CHAINED || positions == (0..9) {
                        channel_taps::<CO, PX, false>(args, 0..9, &mut acc);
                    } else {
                        channel_taps::<CO, PX, true>(args, positions, &mut acc);
                    }
                }
                for (c, lanes) in acc.iter().enumerate() {
                    let row = out.add(c * g.plane);
                    let bias = _mm512_set1_ps(*bias.add(c));
                    for (p, v) in lanes.iter().enumerate() {
                        let at = row.add(p * LANES);
                        let total = if !CHAINED || start == 0 {
                            bias
                        } else {
                            _mm512_maskz_loadu_ps(masks.store[p], at)
                        };
                        _mm512_mask_storeu_ps(at, masks.store[p], _mm512_add_ps(total, *v));
                    }
                }
                start = end;
            }
        }
    }

    /// Adds input channel `ci`'s taps at kernel positions `positions` (ky·3 + kx; all nine
    /// unless `PARTIAL`) onto `acc`, in order; `(g, masks, src, weight, ci)` as in [`block`].
    ///
    /// # Safety
    /// As in [`block`].
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn channel_taps<const CO: usize, const PX: usize, const PARTIAL: bool>(
        (g, masks, src, weight, ci): (&Geometry, &Masks, *const f32, *const f32, usize),
        positions: std::ops::Range<usize>,
        acc: &mut [[__m512; PX]; CO],
    ) {
        // SAFETY: the caller's contract (as in `block`).
        unsafe {
            let w = weight.add(ci * 9);
            for ky in g.kernel_rows.clone() {
                let row = (g.first_row + ky as isize) as usize;
                let line = src.add(ci * g.plane + row * g.width);
                for kx in 0..3 {
                    if PARTIAL && !positions.contains(&(ky * 3 + kx)) {
                        continue;
                    }
                    let at = line.wrapping_add(kx).wrapping_sub(1);
                    let mut x = [_mm512_setzero_ps(); PX];
                    for (p, v) in x.iter_mut().enumerate() {
                        *v = _mm512_maskz_loadu_ps(masks.load[kx][p], at.wrapping_add(p * LANES));
                    }
                    for (c, lanes) in acc.iter_mut().enumerate() {
                        let tap = _mm512_set1_ps(*w.add(c * g.taps + ky * 3 + kx));
                        for (v, xv) in lanes.iter_mut().zip(&x) {
                            *v = _mm512_fmadd_ps(*xv, tap, *v);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    use super::ConvShape;

    /// Never called: [`super::covers`] is false off x86-64.
    pub(super) unsafe fn input_grad_row(
        _: &ConvShape,
        _: &[f32],
        _: usize,
        _: &[f32],
        _: *mut f32,
    ) {
        unreachable!("the direct convolution needs AVX-512")
    }

    /// Never called: [`super::covers`] is false off x86-64.
    pub(super) unsafe fn output_row(
        _: &ConvShape,
        _: &[f32],
        _: usize,
        _: &[f32],
        _: &[f32],
        _: *mut f32,
    ) {
        unreachable!("the direct convolution needs AVX-512")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::conv_cpu;
    use crate::fusion::gemm_sums;

    use crate::fusion::test_values as values;
    use crate::fusion::{differing_bits, same_conv_shape as same_shape};

    /// The direct kernel's output, then the im2col kernels'.
    type Outputs = (Vec<f32>, Vec<f32>);

    /// The direct kernel's and the im2col kernels' forward results on random values for
    /// [`same_shape`]`(case)` (`None` when this CPU has no AVX-512).
    fn both_kernels(case: [usize; 5], seed: u64) -> (ConvShape, Option<Outputs>) {
        let rows = vec![RowChains::one_chain(case[4]); case[3]];
        both_kernels_in_chains(case, seed, |_| rows.clone())
    }

    /// As [`both_kernels`], the direct kernel summing in the chains `chains(shape)`.
    fn both_kernels_in_chains(
        case: [usize; 5],
        seed: u64,
        chains: impl Fn(&ConvShape) -> Vec<RowChains>,
    ) -> (ConvShape, Option<Outputs>) {
        let shape = same_shape(case);
        let [batch, c_in, c_out, h, w] = case;
        let x = values(batch * c_in * h * w, seed + w as u64);
        let weight = values(c_out * c_in * 9, seed + 1 + c_in as u64);
        let bias = values(c_out, seed + 2);
        let results = forward_in_chains(&shape, &x, &weight, &bias, &chains(&shape))
            .map(|ours| (ours, conv_cpu::forward(&shape, &x, &weight, Some(&bias))));
        if results.is_none() {
            eprintln!("skipped: this CPU has no AVX-512, the direct convolution is off");
            assert!(!has_avx512());
        }
        (shape, results)
    }

    /// Equal to the im2col kernels within 1e-4 of the largest magnitude, on widths below,
    /// at and across the 16- and 32-pixel blocks and channel counts off the 8-channel block.
    #[test]
    fn equals_the_im2col_convolution() {
        for case in [
            [1, 1, 16, 7, 5],
            [2, 3, 5, 16, 16],
            [1, 16, 16, 9, 64],
            [2, 8, 6, 4, 79],
            [1, 5, 3, 3, 130],
            [3, 2, 9, 1, 1],
            [1, 48, 8, 12, 158],
            [1, 64, 16, 10, 40],
        ] {
            let (_, Some((ours, reference))) = both_kernels(case, 1) else {
                return;
            };
            crate::fusion::assert_close(&format!("direct, {case:?}"), ours, reference, 1e-4);
        }
    }

    /// Summed in `gemm_sums::forward_chains`, the same bits as the im2col kernels (training
    /// takes this kernel there): the network's training shapes (96² and 128² crops, 256²
    /// images; 1 to 192 input channels, so one to four blocks of taps, 24- and 12-pixel rows
    /// whose tiles end in a ragged product with blocks of its own) and odd sizes (blocks that
    /// end inside an input channel, more than 64 output channels).
    #[test]
    fn reproduces_the_im2col_bits_where_training_takes_it() {
        for case in [
            [4, 16, 16, 96, 96],
            [4, 32, 32, 48, 48],
            [4, 48, 16, 64, 64],
            [2, 1, 16, 256, 256],
            [4, 48, 8, 128, 128],
            [2, 56, 12, 9, 37],
            [3, 5, 2, 13, 22],
            [1, 3, 7, 40, 3],
            [4, 64, 64, 24, 24],
            [4, 96, 32, 48, 48],
            [4, 96, 32, 24, 24],
            [4, 192, 64, 12, 12],
            [4, 192, 32, 24, 24],
            [2, 67, 9, 10, 30],
            [1, 60, 80, 7, 26],
            [1, 130, 3, 5, 5],
        ] {
            let chains = |shape: &ConvShape| {
                gemm_sums::forward_chains(shape).unwrap_or_else(|| panic!("{shape:?}"))
            };
            let (_, Some((ours, reference))) = both_kernels_in_chains(case, 7, chains) else {
                return;
            };
            let differing = differing_bits(&ours, &reference);
            assert_eq!(differing, 0, "{case:?}: values differ in their bits");
        }
        // Past one block of taps the gemm crate sums in parts: not one chain.
        let deep = same_shape([1, 64, 8, 8, 8]);
        assert!(!gemm_sums::forward_is_one_chain(&deep));
        assert!(gemm_sums::forward_chains(&deep).is_some());
    }

    /// Where `gemm_sums::input_grad_is_one_chain` holds, the input gradient has the same bits
    /// as the im2col kernels' (training takes this kernel there).
    #[test]
    fn input_gradient_reproduces_the_im2col_bits() {
        for case in [
            [4, 16, 16, 96, 96],
            [4, 32, 32, 48, 48],
            [4, 16, 48, 64, 64],
            [2, 16, 1 + 2, 256, 256],
            [4, 8, 48, 128, 128],
            [2, 12, 56, 9, 37],
            [3, 5, 3, 13, 22],
            [1, 7, 3, 40, 3],
            [1, 2, 64, 1, 18],
            // One output channel (gemm's plain products; the reconstruction head's shape).
            [4, 16, 1, 96, 96],
            [2, 3, 1, 7, 21],
            [1, 5, 1, 1, 1],
        ] {
            let shape = same_shape(case);
            let [batch, c_in, c_out, h, w] = case;
            assert!(gemm_sums::input_grad_is_one_chain(&shape), "{shape:?}");
            let weight = values(c_out * c_in * 9, 11 + c_in as u64);
            let output_grad = values(batch * c_out * h * w, 12 + w as u64);
            let Some(ours) = input_grad(&shape, &weight, &output_grad) else {
                eprintln!("skipped: this CPU has no AVX-512, the direct convolution is off");
                return;
            };
            let reference = conv_cpu::input_grad(&shape, &weight, &output_grad);
            let differing = differing_bits(&ours, &reference);
            assert_eq!(differing, 0, "{shape:?}: values differ in their bits");
        }
        // Zero products of either sign with one output channel (gemm's plain products).
        let shape = same_shape([1, 2, 1, 4, 5]);
        let weight: Vec<f32> = (0..18).map(|i| [-0.0, 0.5, 0.0, -0.25][i % 4]).collect();
        let output_grad: Vec<f32> = (0..20).map(|i| [0.0, -1.5, -0.0, 2.0][i % 4]).collect();
        if let Some(ours) = input_grad(&shape, &weight, &output_grad) {
            let reference = conv_cpu::input_grad(&shape, &weight, &output_grad);
            assert_eq!(differing_bits(&ours, &reference), 0, "signed zeros");
        }
    }

    #[test]
    fn covers_only_same_three_by_three_stride_one() {
        let shape = |kernel: [usize; 4], stride, padding| {
            ConvShape::new([1, 2, 8, 8], kernel, stride, padding, [1, 1], 1).expect("ok")
        };
        let avx = has_avx512();
        assert_eq!(covers(&shape([4, 2, 3, 3], [1, 1], [(1, 1); 2])), avx);
        assert!(!covers(&shape([4, 2, 3, 3], [2, 2], [(1, 1); 2])));
        assert!(!covers(&shape([4, 2, 3, 3], [1, 1], [(0, 0); 2])));
        assert!(!covers(&shape([4, 2, 1, 1], [1, 1], [(0, 0); 2])));
    }
}
