//! The weight gradient of the 3×3 "same" convolution (stride 1, padding 1, dilation 1)
//! computed directly with AVX-512, in the gemm crate's summation order.
//!
//! `conv_im2col::weight_grad` copies each tile of rows into an im2col block (nine copies of the
//! input), and gemm packs that block and the output gradient again before multiplying. Here
//! the input is copied once into a zero-bordered plane and the tile's output gradient once
//! into pixel-major order; each register block — 16 to 48 output channels (lanes) × the nine
//! taps of one to three input channels — then walks the tile's pixels: one load of the
//! gradient per pixel, one broadcast input value per tap and FMA.
//!
//! The sums are gemm's, bit for bit (tested): the same tiles in the same groups; within a
//! tile, each block of `gemm_sums::weight_grad_depth_block` pixels summed as one FMA chain from
//! zero over the pixels in order (a tap outside the image multiplies the zero border, as gemm
//! multiplies im2col's zero), then added onto the group's sum. Training therefore takes this
//! kernel without changing the rounding the shipped weights were trained with. A tile whose
//! product gemm computes by another path keeps `conv_im2col`'s GEMM.

use std::mem::MaybeUninit;
use std::ops::Range;

use rayon::prelude::*;

use super::conv_im2col;
use super::conv_shape::ConvShape;
use super::{conv_direct, gemm_sums};

/// Output channels per AVX-512 vector.
const LANES: usize = 16;

/// The gradient with respect to the weight, `[out_channels, in_channels, 3, 3]`, of the
/// convolution of `x` whose output gradient is `output_grad`, or `None` where
/// `conv_direct::covers` is false or gemm computes the product by another path
/// (`gemm_sums::weight_grad_is_blocked`).
pub fn weight_grad(shape: &ConvShape, x: &[f32], output_grad: &[f32]) -> Option<Vec<f32>> {
    // The gather of 16 channels addresses 15 planes ahead in 32-bit offsets.
    let plane = shape.in_size[0] * shape.in_size[1];
    let fits = conv_direct::covers(shape) && gemm_sums::weight_grad_is_blocked(shape);
    if !fits || (LANES - 1) * plane > i32::MAX as usize {
        return None;
    }
    conv_im2col::check_weight_grad_sizes(shape, x, output_grad);
    let padded = PaddedInput::new(shape, x);
    Some(conv_im2col::weight_grad_by_tiles(shape, |sum, n, rows| {
        let pixels = rows.len() * shape.in_size[1];
        match gemm_sums::weight_grad_depth_block(shape, pixels) {
            // SAFETY: `covers` checked AVX-512 (so x86-64) and the geometry; sizes asserted
            // above.
            #[cfg(target_arch = "x86_64")]
            Some(block) => unsafe { add_tile(shape, &padded, output_grad, sum, n, rows, block) },
            _ => conv_im2col::add_tile_weight_grad(shape, x, output_grad, sum, n, rows),
        }
    }))
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
/// The input with a zero border of one pixel: `[batch, in_channels, h + 2, w + 2]`.
struct PaddedInput {
    values: Vec<f32>,
    /// Floats per padded row and per padded plane.
    row: usize,
    plane: usize,
}

impl PaddedInput {
    fn new(shape: &ConvShape, x: &[f32]) -> Self {
        let [h, w] = shape.in_size;
        let (row, plane) = (w + 2, (h + 2) * (w + 2));
        let len = shape.batch * shape.in_channels * plane;
        let mut values = Vec::<f32>::with_capacity(len);
        values.spare_capacity_mut()[..len]
            .par_chunks_exact_mut(plane)
            .zip(x.par_chunks_exact(h * w))
            .for_each(|(padded, source)| {
                let (border, rest) = padded.split_at_mut(row);
                let (inner, bottom) = rest.split_at_mut(h * row);
                border.fill(MaybeUninit::new(0.0));
                bottom.fill(MaybeUninit::new(0.0));
                for (line, values) in inner.chunks_exact_mut(row).zip(source.chunks_exact(w)) {
                    line[0] = MaybeUninit::new(0.0);
                    line[w + 1] = MaybeUninit::new(0.0);
                    for (to, &from) in line[1..=w].iter_mut().zip(values) {
                        *to = MaybeUninit::new(from);
                    }
                }
            });
        // SAFETY: every plane's every value was written above.
        unsafe { values.set_len(len) };
        Self { values, row, plane }
    }
}

#[cfg(target_arch = "x86_64")]
/// Adds output `rows` of image `n`'s weight gradient onto `sum` (`[out_channels, taps]`), the
/// tile's pixels in blocks of `depth_block`, each block's chain from zero added in turn.
///
/// # Safety
/// The CPU has AVX-512F; the geometry is `conv_direct::covers`'; `output_grad` and `padded`
/// hold the whole batch and `sum` the whole weight gradient.
#[allow(clippy::too_many_arguments)]
unsafe fn add_tile(
    shape: &ConvShape,
    padded: &PaddedInput,
    output_grad: &[f32],
    sum: &mut [f32],
    n: usize,
    rows: &Range<usize>,
    depth_block: usize,
) {
    let [h, w] = shape.in_size;
    let (c_in, c_out) = (shape.in_channels, shape.out_channels);
    let pixels = rows.len() * w;
    let lanes = c_out.next_multiple_of(LANES);
    conv_im2col::with_scratch(|buffer| {
        let gradient = conv_im2col::scratch(buffer, pixels * lanes);
        let first = n * c_out * h * w + rows.start * w;
        // SAFETY: as above; the tile's rows of every output channel lie in `output_grad`.
        unsafe { avx512::pixel_major(&output_grad[first..], h * w, c_out, pixels, gradient) };
        let image = &padded.values[n * c_in * padded.plane..(n + 1) * c_in * padded.plane];
        let tile = Tile {
            gradient,
            lanes,
            image,
            row: padded.row,
            plane: padded.plane,
            width: w,
            first_row: rows.start,
        };
        let mut start = 0;
        while start < pixels {
            let end = (start + depth_block).min(pixels);
            // SAFETY: the caller's contract; `start..end` lies inside the tile.
            unsafe { tile.add_block(start..end, c_in, c_out, sum) };
            start = end;
        }
    });
}

#[cfg(target_arch = "x86_64")]
/// One tile's operands.
struct Tile<'a> {
    /// `[pixels, lanes]`: the tile's output gradient, pixel-major, channels padded with zeros.
    gradient: &'a [f32],
    lanes: usize,
    /// One image of the padded input.
    image: &'a [f32],
    row: usize,
    plane: usize,
    width: usize,
    first_row: usize,
}

#[cfg(target_arch = "x86_64")]
impl Tile<'_> {
    /// Adds the chains over pixels `block` of every (output channel, tap) onto `sum`.
    ///
    /// # Safety
    /// As in [`add_tile`].
    unsafe fn add_block(&self, block: Range<usize>, c_in: usize, c_out: usize, sum: &mut [f32]) {
        let vectors = c_out.div_ceil(LANES);
        let taps = c_in * 9;
        let mut vector = 0;
        while vector < vectors {
            let here = (vectors - vector).min(3);
            let mut ci = 0;
            while ci < c_in {
                // Three input channels a block when one vector of output channels leaves
                // registers for them (27 accumulators), else one (up to 27).
                let channels = if here == 1 && c_in - ci >= 3 { 3 } else { 1 };
                let mut acc = [[0.0f32; LANES]; 27];
                // SAFETY: the caller's contract; channels ci..ci+channels and vectors
                // vector..vector+here lie inside the operands.
                unsafe {
                    match (here, channels) {
                        (1, 3) => avx512::chains::<1, 3>(self, &block, vector, ci, &mut acc),
                        (1, _) => avx512::chains::<1, 1>(self, &block, vector, ci, &mut acc),
                        (2, _) => avx512::chains::<2, 1>(self, &block, vector, ci, &mut acc),
                        _ => avx512::chains::<3, 1>(self, &block, vector, ci, &mut acc),
                    }
                }
                // Tap t of the block is tap ci·9 + t of the weight; lanes past the last output
                // channel are padding.
                for (t, tap) in acc.chunks_exact(here).take(channels * 9).enumerate() {
                    for (v, lanes) in tap.iter().enumerate() {
                        let first = (vector + v) * LANES;
                        for (l, value) in lanes.iter().enumerate().take(c_out - first) {
                            sum[(first + l) * taps + ci * 9 + t] += value;
                        }
                    }
                }
                ci += channels;
            }
            vector += here;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{LANES, Tile};

    /// Writes `pixels` pixels of `c_out` channel planes (`plane` floats apart, from the
    /// tile's first pixel) pixel-major into `to`: per pixel, the channels padded with zeros to
    /// whole vectors.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `from` holds channel `c_out − 1`'s `pixels` pixels; `to` holds
    /// `pixels` × the padded channels.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn pixel_major(
        from: &[f32],
        plane: usize,
        c_out: usize,
        pixels: usize,
        to: &mut [f32],
    ) {
        let lanes = c_out.next_multiple_of(LANES);
        // SAFETY: the caller's contract; gathered lanes are masked to channels < c_out.
        unsafe {
            let offsets = _mm512_mullo_epi32(
                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                _mm512_set1_epi32(plane as i32),
            );
            for co in (0..c_out).step_by(LANES) {
                let here = (c_out - co).min(LANES);
                let mask: __mmask16 = if here == LANES { !0 } else { (1 << here) - 1 };
                let base = from.as_ptr().add(co * plane);
                for p in 0..pixels {
                    let v = _mm512_mask_i32gather_ps::<4>(
                        _mm512_setzero_ps(),
                        mask,
                        offsets,
                        base.add(p).cast(),
                    );
                    _mm512_storeu_ps(to.as_mut_ptr().add(p * lanes + co), v);
                }
            }
        }
    }

    /// The chains over pixels `block`, from zero, of output-channel vectors
    /// `vector..vector + CV`
    /// × the nine taps of input channels `ci..ci + CI`, into `acc[tap · CV + vector]`
    /// (taps in order: channel, kernel row, kernel column).
    ///
    /// # Safety
    /// The CPU has AVX-512F; those channels and pixels lie inside the tile.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn chains<const CV: usize, const CI: usize>(
        tile: &Tile,
        block: &Range<usize>,
        vector: usize,
        ci: usize,
        acc: &mut [[f32; LANES]],
    ) {
        // SAFETY: the caller's contract; the padded image holds rows y..=y+2 and columns
        // x..=x+2 (padded coordinates) of every pixel of the tile.
        unsafe {
            let mut sums = [[[_mm512_setzero_ps(); CV]; 9]; CI];
            let image = tile.image.as_ptr().add(ci * tile.plane);
            let gradient = tile.gradient.as_ptr().add(vector * LANES);
            for p in block.clone() {
                let (y, x) = (tile.first_row + p / tile.width, p % tile.width);
                let mut g = [_mm512_setzero_ps(); CV];
                for (v, gv) in g.iter_mut().enumerate() {
                    *gv = _mm512_loadu_ps(gradient.add(p * tile.lanes + v * LANES));
                }
                // Padded row y + ky, column x + kx is input pixel (y + ky − 1, x + kx − 1).
                let corner = image.add(y * tile.row + x);
                for (c, channel) in sums.iter_mut().enumerate() {
                    let at = corner.add(c * tile.plane);
                    for (t, tap) in channel.iter_mut().enumerate() {
                        let xv = _mm512_set1_ps(*at.add(t / 3 * tile.row + t % 3));
                        for (s, gv) in tap.iter_mut().zip(&g) {
                            *s = _mm512_fmadd_ps(*gv, xv, *s);
                        }
                    }
                }
            }
            for (c, channel) in sums.iter().enumerate() {
                for (t, tap) in channel.iter().enumerate() {
                    for (v, s) in tap.iter().enumerate() {
                        _mm512_storeu_ps(acc[(c * 9 + t) * CV + v].as_mut_ptr(), *s);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::ops::cpu::test_kit::{
        differing_bits, same_conv_shape, test_values as values,
    };

    #[test]
    fn weight_gradient_is_gemms_bit_for_bit() {
        // The training shapes (96² crops, batch 4, and their halvings), odd sizes, tiles of
        // several depth blocks, output channels not a multiple of 16, and the shapes gemm
        // computes by other paths (one input channel; one output channel).
        for case in [
            [4, 16, 16, 96, 96],
            [4, 32, 32, 48, 48],
            [2, 64, 64, 24, 24],
            [2, 48, 8, 40, 40],
            [1, 96, 48, 13, 29],
            [3, 5, 21, 17, 70],
            [1, 7, 40, 9, 200],
            [2, 1, 16, 20, 20],
            [1, 16, 1, 12, 12],
        ] {
            let shape = same_conv_shape(case);
            let [batch, c_in, c_out, h, w] = case;
            let x = values(batch * c_in * h * w, 11);
            let g = values(batch * c_out * h * w, 12);
            let gemm = conv_im2col::weight_grad(&shape, &x, &g);
            let direct = match weight_grad(&shape, &x, &g) {
                Some(direct) => direct,
                // Where gemm takes another path for every tile, `conv_im2col` runs.
                None if conv_direct::covers(&shape) => {
                    assert!(!gemm_sums::weight_grad_is_blocked(&shape), "{case:?}");
                    continue;
                }
                None => {
                    eprintln!("no AVX-512 here: the direct weight gradient is not used");
                    return;
                }
            };
            let differing = differing_bits(&direct, &gemm);
            assert_eq!(differing, 0, "{case:?}: {differing} values differ");
        }
    }
}
