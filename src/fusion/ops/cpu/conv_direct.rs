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
//! what the gemm crate computes for `conv_im2col::forward` when the taps fit one of its K blocks.
//! Past one block gemm sums the taps in blocks and adds them in turn onto the bias;
//! `forward_in_chains` sums in the same blocks (`gemm_sums::forward_chains`), so training takes
//! this kernel and gets `conv_im2col`'s bits (tested) — the rounding the shipped weights were made
//! with. Fusion takes one chain for every 3×3 `same` layer (its results differ from `conv_im2col`'s
//! in the last bits past 512 taps). Machines without AVX-512 take `conv_im2col` everywhere.

use std::ops::Range;

use rayon::prelude::*;

use super::buffers::Disjoint;
use super::conv_shape::ConvShape;
use super::gemm_sums::TileChains;
use super::simd::has_avx512;

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
    forward_in_chains(shape, x, weight, bias, &TileChains::one_chain(shape))
}

/// The convolution `y = x ∗ weight + bias` summed in the chains `tiles` give for their pixels
/// (`gemm_sums::forward_chains`: the gemm crate's blocks of taps, so that training gets
/// `conv_im2col::forward`'s bits); `None` when [`covers`] is false. The tiles cover each image's
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
/// chain from zero over the output channels: what `conv_im2col::input_grad` computes (a GEMM
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
mod avx512;

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
    use crate::fusion::ops::cpu::{conv_im2col, gemm_sums};

    use crate::fusion::ops::cpu::test_kit::test_values as values;
    use crate::fusion::ops::cpu::test_kit::{differing_bits, same_conv_shape as same_shape};

    /// The direct kernel's output, then the im2col kernels'.
    type Outputs = (Vec<f32>, Vec<f32>);

    /// The direct kernel's and the im2col kernels' forward results on random values for
    /// [`same_shape`]`(case)` (`None` when this CPU has no AVX-512).
    fn both_kernels(case: [usize; 5], seed: u64) -> (ConvShape, Option<Outputs>) {
        both_kernels_in_chains(case, seed, TileChains::one_chain)
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
            .map(|ours| (ours, conv_im2col::forward(&shape, &x, &weight, Some(&bias))));
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
            crate::fusion::ops::cpu::test_kit::assert_close(
                &format!("direct, {case:?}"),
                ours,
                reference,
                1e-4,
            );
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
        let tiles = gemm_sums::forward_chains(&deep).expect("blocked products");
        assert!(tiles.iter().any(|tile| tile.main < deep.taps()));
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
            let reference = conv_im2col::input_grad(&shape, &weight, &output_grad);
            let differing = differing_bits(&ours, &reference);
            assert_eq!(differing, 0, "{shape:?}: values differ in their bits");
        }
        // Zero products of either sign with one output channel (gemm's plain products).
        let shape = same_shape([1, 2, 1, 4, 5]);
        let weight: Vec<f32> = (0..18).map(|i| [-0.0, 0.5, 0.0, -0.25][i % 4]).collect();
        let output_grad: Vec<f32> = (0..20).map(|i| [0.0, -1.5, -0.0, 2.0][i % 4]).collect();
        if let Some(ours) = input_grad(&shape, &weight, &output_grad) {
            let reference = conv_im2col::input_grad(&shape, &weight, &output_grad);
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
