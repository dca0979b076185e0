//! The AVX-512 kernels of `conv_direct`: the forward and input-gradient register blocks over
//! runs of pixels, their lane masks, and the forward's chains of taps.

use std::arch::x86_64::*;
use std::ops::Range;

use super::{
    BLOCK_CHANNELS, BLOCK_VECTORS, ConvShape, LANES, LaneMasks, TileChains, blocks, channel_blocks,
};

/// A block's lane masks per vector.
#[derive(Clone, Copy)]
struct Masks {
    /// By row offset, column offset and vector (see [`LaneMasks`]).
    load: [[[__mmask16; BLOCK_VECTORS]; 3]; 3],
    store: [__mmask16; BLOCK_VECTORS],
    /// Whether the block holds pixels of the first or the last row (else the three row
    /// offsets share their masks, and the kernels read those of offset 1 only: fewer mask
    /// registers).
    border: bool,
}

impl Masks {
    fn new(lanes: LaneMasks) -> Self {
        let halves = |bits: u32| [bits as __mmask16, (bits >> LANES) as __mmask16];
        Self {
            load: lanes.load.map(|row| row.map(halves)),
            store: halves(lanes.store),
            border: lanes.load[0] != lanes.load[1] || lanes.load[2] != lanes.load[1],
        }
    }
}

/// Writes output `pixels` of one image, every channel, into `out` (the image's first
/// output value), summed in the chains of `chains` (the tile holding `pixels`).
///
/// # Safety
/// The CPU has AVX-512F; `out` holds `[out_channels, h, w]` floats and nobody else writes
/// `pixels` of them meanwhile; `image` is one input image, `weight` and `bias` the layer's.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn output_run(
    shape: &ConvShape,
    image: &[f32],
    pixels: Range<usize>,
    weight: &[f32],
    bias: &[f32],
    chains: &TileChains,
    out: *mut f32,
) {
    let [h, w] = shape.in_size;
    let geometry = Geometry {
        plane: h * w,
        width: w,
        taps: shape.in_channels * 9,
    };
    for (first, vectors, count) in blocks(pixels) {
        let lanes = LaneMasks::new(first, count, [h, w]);
        // The block's pixels before `split` in chains of `main` taps; those from `split`
        // on again, in chains of `ragged` taps, stored over the first pass's.
        let mut passes = [(chains.main, lanes.store), (chains.ragged, 0)];
        if chains.split < first + count && chains.ragged != chains.main {
            passes[1].1 = lanes.store & !((1u32 << (chains.split.max(first) - first)) - 1);
        }
        for (chain, store) in passes {
            if store == 0 {
                continue;
            }
            let masks = Masks::new(LaneMasks { store, ..lanes });
            for (co, channels) in channel_blocks(shape.out_channels, BLOCK_CHANNELS) {
                // SAFETY: the block reads the input around `count` pixels from `first`
                // (one row and column either side), loads masked to the image; its weights
                // and biases are channels co..co+channels; its output is those pixels of
                // those channels (the caller's contract).
                unsafe {
                    let src = image.as_ptr().wrapping_add(first);
                    let wt = weight.as_ptr().add(co * geometry.taps);
                    let b = bias.as_ptr().add(co);
                    let dst = out.add(co * geometry.plane + first);
                    let g = &geometry;
                    match (channels, vectors) {
                        (BLOCK_CHANNELS, BLOCK_VECTORS) => block::<BLOCK_CHANNELS, BLOCK_VECTORS>(
                            g, &masks, chain, src, wt, b, dst,
                        ),
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

/// Writes the input gradient's `pixels` of one image, every input channel, into `out` (the
/// image's first input-gradient value).
///
/// # Safety
/// The CPU has AVX-512F; `out` holds `[in_channels, h, w]` floats and nobody else writes
/// `pixels` of them meanwhile; `output_grad` is one image's `[out_channels, h, w]` output
/// gradient, `weight` the layer's.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn input_grad_run(
    shape: &ConvShape,
    output_grad: &[f32],
    pixels: Range<usize>,
    weight: &[f32],
    out: *mut f32,
) {
    let [h, w] = shape.in_size;
    let c_in = shape.in_channels;
    for (first, vectors, count) in blocks(pixels) {
        let masks = Masks::new(LaneMasks::new(first, count, [h, w]));
        for (ci, channels) in channel_blocks(c_in, GRADIENT_CHANNELS) {
            let block = GradientBlock {
                output_grad: output_grad.as_ptr().wrapping_add(first),
                out_channels: shape.out_channels,
                plane: h * w,
                width: w,
                masks: &masks,
            };
            // SAFETY: the block reads the output gradient around `count` pixels from
            // `first` (one row and column either side), loads masked to the image; its
            // weights are input channels ci..ci+channels of every output channel; its
            // output is those pixels of those input channels (the caller's contract).
            unsafe {
                let wt = weight.as_ptr().add(ci * 9);
                let dst = out.add(ci * h * w + first);
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
    /// The output gradient at the block's first pixel (not dereferenced outside the
    /// masked lanes).
    output_grad: *const f32,
    out_channels: usize,
    plane: usize,
    width: usize,
    masks: &'a Masks,
}

/// The distance in floats from a pixel to its neighbour (y + dy − 1, x + dx − 1).
fn offset(width: usize, dy: usize, dx: usize) -> isize {
    (dy as isize - 1) * width as isize + dx as isize - 1
}

/// `CI` input channels × `PX` vectors of the input gradient: for each tap in order
/// (kernel row, kernel column), the chain over the output channels from zero, added to the
/// running total. A tap whose output pixel lies outside the image adds a chain of zeros
/// (+0) — as `col2im` adds im2col's zeros.
///
/// # Safety
/// As in `input_grad_run`: `weight` is input channel ci's first weight of output channel
/// 0 (`co_stride` floats per output channel), `out` the block's first value.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn gradient_block<const CI: usize, const PX: usize>(
    b: &GradientBlock,
    weight: *const f32,
    co_stride: usize,
    out: *mut f32,
) {
    // SAFETY: the caller's contract.
    unsafe {
        if b.masks.border {
            gradient_taps::<CI, PX, true>(b, weight, co_stride, out);
        } else {
            gradient_taps::<CI, PX, false>(b, weight, co_stride, out);
        }
    }
}

/// [`gradient_block`], reading the masks of every row offset where `BORDER`, else those
/// of offset 1 (the same for a block inside the rows).
///
/// # Safety
/// As in [`gradient_block`].
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn gradient_taps<const CI: usize, const PX: usize, const BORDER: bool>(
    b: &GradientBlock,
    weight: *const f32,
    co_stride: usize,
    out: *mut f32,
) {
    // SAFETY: the caller's contract; every load is masked to lanes inside the image (the
    // addresses of masked-off lanes are never read), every store to the block's pixels.
    unsafe {
        for ky in 0..3 {
            for kx in 0..3 {
                // Tap (ky, kx) of pixel (y, x) comes from output pixel (y + 1 − ky,
                // x + 1 − kx): the neighbour (2 − ky, 2 − kx).
                let masks = &b.masks.load[if BORDER { 2 - ky } else { 1 }][2 - kx];
                let at = b
                    .output_grad
                    .wrapping_offset(offset(b.width, 2 - ky, 2 - kx));
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
                // The running total over the taps, from zero, lives in the output.
                for (c, lanes) in tap.iter().enumerate() {
                    let row = out.add(c * b.plane);
                    for (p, t) in lanes.iter().enumerate() {
                        let at = row.add(p * LANES);
                        let store = b.masks.store[p];
                        let total = if ky == 0 && kx == 0 {
                            _mm512_setzero_ps()
                        } else {
                            _mm512_maskz_loadu_ps(store, at)
                        };
                        _mm512_mask_storeu_ps(at, store, _mm512_add_ps(total, *t));
                    }
                }
            }
        }
    }
}

/// Strides of one output block's reads, in floats.
struct Geometry {
    plane: usize,
    width: usize,
    /// Weights per output channel (`in_channels·9`).
    taps: usize,
}

/// `CO` output channels × `PX` vectors of output: the taps in order (input channel, kernel
/// row, kernel column) in chains of `chain` taps, each from zero, added in turn onto the
/// bias (the running total lives in the output). A tap outside the image multiplies a
/// zero, as gemm multiplies im2col's zeros.
///
/// # Safety
/// As in `output_run`: `src` is the input image at the block's first pixel; `weight` and
/// `bias` the block's first output channel's, `out` its first output value.
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
        let args = (g, masks, src, weight, bias, out);
        match (chain >= g.taps, masks.border) {
            (true, false) => chains::<CO, PX, false, false>(args, g.taps),
            (true, true) => chains::<CO, PX, false, true>(args, g.taps),
            (false, false) => chains::<CO, PX, true, false>(args, chain),
            (false, true) => chains::<CO, PX, true, true>(args, chain),
        }
    }
}

/// [`block`]'s arguments but the chain.
type BlockArgs<'a> = (
    &'a Geometry,
    &'a Masks,
    *const f32,
    *const f32,
    *const f32,
    *mut f32,
);

/// [`block`], in one chain unless `CHAINED` (a separate instance: the one chain of
/// fusion and of most training layers keeps the loop without the block bookkeeping),
/// reading the masks of every row offset where `BORDER`, else those of offset 1.
///
/// # Safety
/// As in [`block`].
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn chains<const CO: usize, const PX: usize, const CHAINED: bool, const BORDER: bool>(
    (g, masks, src, weight, bias, out): BlockArgs,
    chain: usize,
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
                    channel_taps::<CO, PX, false, BORDER>(args, 0..9, &mut acc);
                } else {
                    channel_taps::<CO, PX, true, BORDER>(args, positions, &mut acc);
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
/// unless `PARTIAL`) onto `acc`, in order; `(g, masks, src, weight, ci)` as in [`block`],
/// `BORDER` as in [`chains`].
///
/// # Safety
/// As in [`block`].
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn channel_taps<
    const CO: usize,
    const PX: usize,
    const PARTIAL: bool,
    const BORDER: bool,
>(
    (g, masks, src, weight, ci): (&Geometry, &Masks, *const f32, *const f32, usize),
    positions: std::ops::Range<usize>,
    acc: &mut [[__m512; PX]; CO],
) {
    // SAFETY: the caller's contract (as in `block`).
    unsafe {
        let w = weight.add(ci * 9);
        let channel = src.wrapping_add(ci * g.plane);
        for ky in 0..3 {
            for kx in 0..3 {
                if PARTIAL && !positions.contains(&(ky * 3 + kx)) {
                    continue;
                }
                let at = channel.wrapping_offset(offset(g.width, ky, kx));
                let mut x = [_mm512_setzero_ps(); PX];
                for (p, v) in x.iter_mut().enumerate() {
                    *v = _mm512_maskz_loadu_ps(
                        masks.load[if BORDER { ky } else { 1 }][kx][p],
                        at.wrapping_add(p * LANES),
                    );
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
