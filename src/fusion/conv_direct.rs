//! The 3×3 "same" convolution (stride 1, padding 1, dilation 1) of inference and training,
//! computed directly with AVX-512: no im2col block, no GEMM packing, no padded copy.
//!
//! Most of W-DUALMINE's convolutions are 3×3 with few output channels (8–64). Through im2col
//! every input value is copied nine times and the GEMM packs the copies again; here each output
//! block (8 output channels × 32 consecutive pixels, 16 accumulator registers) sums its 9·C_in
//! taps straight from the input: one load per 16 pixels and tap, reused by eight broadcast FMAs.
//! Pixels are numbered row after row, and a block may reach across the end of a row into the
//! next, so the narrow rows of the coarse scales (24 and 12 pixels) fill their vectors. The
//! zero border is never written: every load is masked to the lanes whose neighbour lies inside
//! the image (a masked-off lane reads as zero).
//!
//! Each output value is one FMA chain from zero over the taps in im2col order (input channel,
//! kernel row, kernel column; a tap outside the image multiplies a zero), then the bias added:
//! what the gemm crate computes for `conv_cpu::forward` when the taps fit one of its K blocks.
//! Past one block gemm sums the taps in blocks and adds them in turn onto the bias;
//! `forward_in_chains` sums in the same blocks (`gemm_sums::forward_chains`), so training takes
//! this kernel and gets `conv_cpu`'s bits (tested) — the rounding the shipped weights were made
//! with. Fusion takes one chain for every 3×3 `same` layer (its results differ from `conv_cpu`'s
//! in the last bits past 512 taps). Machines without AVX-512 take `conv_cpu` everywhere.

use std::ops::Range;

use rayon::prelude::*;

use super::conv_cpu::{ConvShape, Disjoint};
use super::gemm_sums::TileChains;
use super::has_avx512;

/// Output channels per register block.
const BLOCK_CHANNELS: usize = 8;
/// 16-pixel vectors per register block (32 pixels).
const BLOCK_VECTORS: usize = 2;
/// Lanes of one AVX-512 f32 vector.
const LANES: usize = 16;
/// Output pixels per parallel task: small, so that the 32² and 64² layers of one image still
/// spread over the cores; a whole number of blocks.
const TASK_PIXELS: usize = 256;

// A block's lane masks are the halves of one 32-bit word.
const _: () = assert!(BLOCK_VECTORS * LANES == 32 && TASK_PIXELS.is_multiple_of(32));

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
    let [h, w] = shape.in_size;
    forward_in_chains(shape, x, weight, bias, &[TileChains::one_chain(h * w)])
}

/// The convolution `y = x ∗ weight + bias` summed in the chains `tiles` give for their pixels
/// (`gemm_sums::forward_chains`: the gemm crate's blocks of taps, so that training gets
/// `conv_cpu::forward`'s bits); `None` when [`covers`] is false. The tiles cover each image's
/// pixels in order.
pub fn forward_in_chains(
    shape: &ConvShape,
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    tiles: &[TileChains],
) -> Option<Vec<f32>> {
    if !covers(shape) {
        return None;
    }
    let (c_in, c_out) = (shape.in_channels, shape.out_channels);
    let [h, w] = shape.in_size;
    assert_eq!(x.len(), shape.batch * c_in * h * w, "input size");
    assert_eq!(weight.len(), c_out * c_in * 9, "weight size");
    assert_eq!(bias.len(), c_out, "bias size");
    let ranges: Vec<Range<usize>> = tiles.iter().map(|tile| tile.pixels.clone()).collect();
    let values = by_runs(shape, c_out, &ranges, |n, tile, pixels, out| {
        let image = &x[n * c_in * h * w..(n + 1) * c_in * h * w];
        // SAFETY: `covers` checked AVX-512; `by_runs` gives this call `pixels` of image `n`.
        unsafe { avx512::output_run(shape, image, pixels, weight, bias, &tiles[tile], out) }
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
    let pixels = 0..h * w;
    let whole_image = std::slice::from_ref(&pixels);
    let values = by_runs(shape, c_in, whole_image, |n, _, pixels, grad| {
        let image_grad = &output_grad[n * plane..(n + 1) * plane];
        // SAFETY: `covers` checked AVX-512; `by_runs` gives this call `pixels` of image `n`.
        unsafe { avx512::input_grad_run(shape, image_grad, pixels, weight, grad) }
    });
    Some(values)
}

/// A `[batch, channels, h, w]` result written in runs of pixels on rayon's pool, pixels
/// numbered row after row (`y·w + x`): `run(n, tile, pixels, image)` must write `pixels` of
/// every channel of image `n`, `image` pointing at its first value. Each of `tiles` (ranges
/// covering an image's pixels in order) is cut into runs of at most [`TASK_PIXELS`]; `tile` is
/// the run's. The callers have checked [`covers`]; no two calls share a pixel.
fn by_runs(
    shape: &ConvShape,
    channels: usize,
    tiles: &[Range<usize>],
    run: impl Fn(usize, usize, Range<usize>, *mut f32) + Sync,
) -> Vec<f32> {
    let [h, w] = shape.in_size;
    let plane = h * w;
    let in_order = tiles.windows(2).all(|pair| pair[0].end == pair[1].start);
    let ends = (tiles.first().map(|t| t.start), tiles.last().map(|t| t.end));
    assert!(
        in_order && ends == (Some(0), Some(plane)),
        "tiles cover the image"
    );
    let len = shape.batch * channels * plane;
    let mut values = Vec::<f32>::with_capacity(len);
    let dst = Disjoint(values.as_mut_ptr());
    let tasks: Vec<(usize, usize, Range<usize>)> = (0..shape.batch)
        .flat_map(|n| {
            tiles.iter().enumerate().flat_map(move |(t, tile)| {
                (tile.start..tile.end)
                    .step_by(TASK_PIXELS)
                    .map(move |first| (n, t, first..(first + TASK_PIXELS).min(tile.end)))
            })
        })
        .collect();
    tasks.par_iter().for_each(|(n, tile, pixels)| {
        // SAFETY: image `n` starts inside `values`' capacity.
        run(*n, *tile, pixels.clone(), unsafe {
            dst.at(n * channels * plane)
        });
    });
    // SAFETY: the tiles cover every image (asserted), so the tasks wrote every pixel of every
    // channel of every image.
    unsafe { values.set_len(len) };
    values
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
/// The register blocks of a run of pixels: (first pixel, vectors, pixels) — 32 pixels at a
/// time, the last block shorter (one vector when it holds at most 16). A block may reach
/// over the end of a row into the next: narrow rows (24, 12 pixels) fill the vectors.
fn blocks(pixels: Range<usize>) -> impl Iterator<Item = (usize, usize, usize)> {
    let block = BLOCK_VECTORS * LANES;
    let end = pixels.end;
    pixels.step_by(block).map(move |first| {
        let count = (end - first).min(block);
        (first, count.div_ceil(LANES), count)
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

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
/// Lane masks of one block of `count` pixels from pixel `first` of an `[h, w]` image, as
/// 32-bit words (bit i: pixel `first + i`): per row and column offset (dy, dx), the lanes whose
/// pixel (y, x) has a neighbour (y + dy − 1, x + dx − 1) inside the image; and the block's
/// lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LaneMasks {
    load: [[u32; 3]; 3],
    store: u32,
}

impl LaneMasks {
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn new(first: usize, count: usize, [h, w]: [usize; 2]) -> Self {
        let below = |n: usize| if n >= 32 { u32::MAX } else { (1u32 << n) - 1 };
        let lanes = below(count);
        // The first row has no row above, the last none below.
        let rows = [
            lanes & !below(w.saturating_sub(first)),
            lanes,
            lanes & below(((h - 1) * w).saturating_sub(first)),
        ];
        // The lanes of column x: every w-th from the first one there.
        let column = |x: usize| {
            let (mut bits, mut lane) = (0u32, (x + w - first % w) % w);
            while lane < 32 {
                bits |= 1 << lane;
                lane += w;
            }
            bits
        };
        let columns = [lanes & !column(0), lanes, lanes & !column(w - 1)];
        Self {
            load: std::array::from_fn(|dy| std::array::from_fn(|dx| rows[dy] & columns[dx])),
            store: lanes,
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{
        BLOCK_CHANNELS, BLOCK_VECTORS, ConvShape, LANES, LaneMasks, TileChains, blocks,
        channel_blocks,
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
}

#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    use std::ops::Range;

    use super::{ConvShape, TileChains};

    /// Never called: [`super::covers`] is false off x86-64.
    pub(super) unsafe fn input_grad_run(
        _: &ConvShape,
        _: &[f32],
        _: Range<usize>,
        _: &[f32],
        _: *mut f32,
    ) {
        unreachable!("the direct convolution needs AVX-512")
    }

    /// Never called: [`super::covers`] is false off x86-64.
    pub(super) unsafe fn output_run(
        _: &ConvShape,
        _: &[f32],
        _: Range<usize>,
        _: &[f32],
        _: &[f32],
        _: &TileChains,
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
        let tiles = vec![TileChains::one_chain(case[3] * case[4])];
        both_kernels_in_chains(case, seed, |_| tiles.clone())
    }

    /// As [`both_kernels`], the direct kernel summing in the chains `chains(shape)`.
    fn both_kernels_in_chains(
        case: [usize; 5],
        seed: u64,
        chains: impl Fn(&ConvShape) -> Vec<TileChains>,
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
