//! CPU kernels of the 2-D convolution that W-DUALMINE trains and fuses with: forward, input
//! gradient and weight gradient (NCHW, f32, one group, any stride, padding and dilation).
//!
//! Each works on tiles of whole output rows: the tile's im2col block (channels-first, one row per
//! kernel tap, one column per output pixel) is filled with row copies, then one GEMM per tile
//! (the `gemm` crate; AVX-512 where the CPU has it, chosen at run time) computes the tile.
//! Tiles run on rayon's pool and write disjoint parts of the output; the weight gradient sums
//! per-group partials in a fixed order, so every result is the same from run to run.
//!
//! Plain slices in and out: `ops::conv` connects these kernels to burn.

use std::ops::Range;

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

use super::buffers::{Disjoint, filled};
use super::conv_shape::ConvShape;

/// Output pixels per tile of the forward pass and the input gradient (rounded to whole rows):
/// the tile's im2col block, taps × pixels floats, stays within a core's L2 cache. Measured on
/// the `tiny` 256² pair (criterion): 512 → 171 ms, 256 → 174 ms, 1024 → 205 ms, 2048 → 236 ms.
pub(super) const TILE_PIXELS: usize = 512;

/// Output pixels per tile of the weight gradient, whose GEMM sums over the tile's pixels: longer
/// sums pay for the packing. Measured on the training step: 1024 → 459–486 ms, 512 → 487 ms,
/// 2048 → 513 ms.
const GRADIENT_TILE_PIXELS: usize = 1024;

/// The im2col side of the geometry.
impl ConvShape {
    /// The GEMM operand for output `rows` of `image`: the image itself for a pointwise
    /// convolution, else its im2col block written into `col`. Returns the first element and
    /// the distance between taps (the operand is taps × tile pixels, pixels contiguous).
    fn taps_by_pixels(
        &self,
        image: &[f32],
        rows: &Range<usize>,
        col: &mut Vec<f32>,
    ) -> (*const f32, usize) {
        if self.is_pointwise() {
            (
                image[rows.start * self.out_size[1]..].as_ptr(),
                self.in_pixels(),
            )
        } else {
            let len = rows.len() * self.out_size[1];
            self.im2col(image, rows, scratch(col, self.taps() * len));
            (col.as_ptr(), len)
        }
    }

    /// Fills `col` (taps × tile pixels) with the im2col block of output `rows` of one image.
    fn im2col(&self, image: &[f32], rows: &Range<usize>, col: &mut [f32]) {
        let [h, w] = self.in_size;
        let [kh, kw] = self.kernel;
        let out_w = self.out_size[1];
        let len = rows.len() * out_w;
        for (tap, block) in col.chunks_exact_mut(len).enumerate() {
            let (channel, ky, kx) = (tap / (kh * kw), tap / kw % kh, tap % kw);
            let plane = &image[channel * h * w..(channel + 1) * h * w];
            let x_offset = kx * self.dilation[1];
            let columns = self.valid_outputs(1, x_offset);
            let y_range = self.valid_outputs(0, ky * self.dilation[0]);
            for (oy, out_row) in rows.clone().zip(block.chunks_exact_mut(out_w)) {
                if !y_range.contains(&oy) || columns.is_empty() {
                    out_row.fill(0.0);
                    continue;
                }
                let iy = oy * self.stride[0] + ky * self.dilation[0] - self.padding[0];
                let src = &plane[iy * w..(iy + 1) * w];
                out_row[..columns.start].fill(0.0);
                out_row[columns.end..].fill(0.0);
                let first = columns.start * self.stride[1] + x_offset - self.padding[1];
                if self.stride[1] == 1 {
                    out_row[columns.clone()].copy_from_slice(&src[first..first + columns.len()]);
                } else {
                    for (o, ox) in columns.clone().enumerate() {
                        out_row[ox] = src[first + o * self.stride[1]];
                    }
                }
            }
        }
    }

    /// Adds the im2col block `col` (taps × all output pixels of one image) back onto input
    /// channel `channel`'s plane: the adjoint of `im2col`.
    fn col2im_channel(&self, col: &[f32], channel: usize, plane: &mut [f32]) {
        let w = self.in_size[1];
        let [kh, kw] = self.kernel;
        let out_w = self.out_size[1];
        let pixels = self.out_pixels();
        for ky in 0..kh {
            let y_range = self.valid_outputs(0, ky * self.dilation[0]);
            for kx in 0..kw {
                let tap = (channel * kh + ky) * kw + kx;
                let block = &col[tap * pixels..(tap + 1) * pixels];
                let x_offset = kx * self.dilation[1];
                let columns = self.valid_outputs(1, x_offset);
                if columns.is_empty() {
                    continue;
                }
                for oy in y_range.clone() {
                    let iy = oy * self.stride[0] + ky * self.dilation[0] - self.padding[0];
                    let dst = &mut plane[iy * w..(iy + 1) * w];
                    let src = &block[oy * out_w..(oy + 1) * out_w];
                    let first = columns.start * self.stride[1] + x_offset - self.padding[1];
                    if self.stride[1] == 1 {
                        let dst = &mut dst[first..first + columns.len()];
                        for (d, s) in dst.iter_mut().zip(&src[columns.clone()]) {
                            *d += s;
                        }
                    } else {
                        for (o, ox) in columns.clone().enumerate() {
                            dst[first + o * self.stride[1]] += src[ox];
                        }
                    }
                }
            }
        }
    }
}

thread_local! {
    /// Each worker thread's scratch block (an im2col block; a weight-gradient tile, pixel-major),
    /// kept between tiles and calls.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer.
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Vec<f32>) -> R) -> R {
    SCRATCH.with(|cell| f(&mut cell.borrow_mut()))
}

/// The first `len` floats of `buffer`, grown when needed (contents left as they were: the
/// callers overwrite every value).
pub(super) fn scratch(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    &mut buffer[..len]
}

/// `dst (m×n) = dst + lhs (m×k) · rhs (k×n)` (or `=` without `accumulate`), strides in elements
/// as (row stride, column stride); single-threaded (the callers parallelise over tiles).
///
/// # Safety
/// Every pointer with its strides must address valid memory for the given sizes, and `dst`
/// must not be written by anyone else meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul(
    [m, n, k]: [usize; 3],
    dst: (*mut f32, usize, usize),
    lhs: (*const f32, usize, usize),
    rhs: (*const f32, usize, usize),
    accumulate: bool,
) {
    // SAFETY: the caller's contract.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.0,
            dst.2 as isize,
            dst.1 as isize,
            accumulate,
            lhs.0,
            lhs.2 as isize,
            lhs.1 as isize,
            rhs.0,
            rhs.2 as isize,
            rhs.1 as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// Pixels per SIMD register (AVX-512 f32; a multiple of AVX2's 8).
pub(super) const SIMD_PIXELS: usize = 16;

/// [`matmul`] whose columns (`n`) are output pixels, contiguous in `dst` and `rhs`, split so
/// that the first part's column count is a multiple of [`SIMD_PIXELS`]. The gemm crate turns
/// this product around to run along the pixels and, when their count is ragged, first copies
/// the whole pixel-major operand into packed form (gemm-common 0.19's `do_prepack_lhs`): on a
/// 158-pixel-wide study that repacked every im2col block. The remainder (under 16 columns) is
/// a second, small product.
///
/// # Safety
/// As [`matmul`].
unsafe fn matmul_over_pixels(
    [m, n, k]: [usize; 3],
    dst: (*mut f32, usize, usize),
    lhs: (*const f32, usize, usize),
    rhs: (*const f32, usize, usize),
    accumulate: bool,
) {
    let aligned = if n > SIMD_PIXELS {
        n - n % SIMD_PIXELS
    } else {
        n
    };
    // SAFETY: the caller's contract; the second product addresses columns `aligned..n` of
    // the same matrices.
    unsafe {
        matmul([m, aligned, k], dst, lhs, rhs, accumulate);
        if aligned < n {
            matmul(
                [m, n - aligned, k],
                (dst.0.add(aligned * dst.2), dst.1, dst.2),
                lhs,
                (rhs.0.add(aligned * rhs.2), rhs.1, rhs.2),
                accumulate,
            );
        }
    }
}

/// The convolution `y = x ∗ weight + bias`: `[batch, out_channels, out_h, out_w]`.
pub fn forward(shape: &ConvShape, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (taps, in_len, out_len) = (shape.taps(), shape.in_pixels(), shape.out_pixels());
    let (c_in, c_out) = (shape.in_channels, shape.out_channels);
    assert_eq!(x.len(), shape.batch * c_in * in_len, "input size");
    assert_eq!(weight.len(), c_out * taps, "weight size");
    // The GEMM adds onto the output, which starts as the bias (one parallel pass, no zeroing
    // first).
    let mut out = filled(
        shape.batch * c_out * out_len,
        shape.batch * c_out,
        |plane| bias.map_or(0.0, |bias| bias[plane % c_out]),
    );
    let out_w = shape.out_size[1];
    let dst = Disjoint(out.as_mut_ptr());
    shape.tiles(TILE_PIXELS).par_iter().for_each(|(n, rows)| {
        let image = &x[n * c_in * in_len..(n + 1) * c_in * in_len];
        let len = rows.len() * out_w;
        let first = rows.start * out_w;
        with_scratch(|col| {
            let (block, tap_stride) = shape.taps_by_pixels(image, rows, col);
            let rhs = (block, tap_stride, 1);
            // SAFETY: this tile alone writes rows `rows` of image `n` (all channels); the
            // sizes match the buffers asserted above.
            unsafe {
                matmul_over_pixels(
                    [c_out, len, taps],
                    (dst.at(n * c_out * out_len + first), out_len, 1),
                    (weight.as_ptr(), taps, 1),
                    rhs,
                    true,
                );
            }
        })
    });
    out
}

/// The gradient with respect to the weight, `[out_channels, in_channels, kh, kw]`, of a
/// convolution of `x` whose output gradient is `output_grad`.
pub fn weight_grad(shape: &ConvShape, x: &[f32], output_grad: &[f32]) -> Vec<f32> {
    check_weight_grad_sizes(shape, x, output_grad);
    weight_grad_by_tiles(shape, |sum, n, rows| {
        add_tile_weight_grad(shape, x, output_grad, sum, n, rows)
    })
}

/// Asserts the sizes of a weight gradient's operands.
pub(super) fn check_weight_grad_sizes(shape: &ConvShape, x: &[f32], output_grad: &[f32]) {
    let (c_in, c_out) = (shape.in_channels, shape.out_channels);
    assert_eq!(
        x.len(),
        shape.batch * c_in * shape.in_pixels(),
        "input size"
    );
    assert_eq!(
        output_grad.len(),
        shape.batch * c_out * shape.out_pixels(),
        "gradient size"
    );
}

/// The weight gradient summed tile by tile: the tiles of [`GRADIENT_TILE_PIXELS`] in a fixed
/// number of groups, each group's tiles added in order onto the group's zeroed sum by
/// `add_tile(sum, image, rows)`, then the groups added in order — the same result on every
/// run, whichever thread takes which group.
pub(super) fn weight_grad_by_tiles(
    shape: &ConvShape,
    add_tile: impl Fn(&mut [f32], usize, &Range<usize>) + Sync,
) -> Vec<f32> {
    let len = shape.out_channels * shape.taps();
    let tiles = shape.tiles(GRADIENT_TILE_PIXELS);
    let groups = (2 * rayon::current_num_threads()).clamp(1, tiles.len());
    let per_group = tiles.len().div_ceil(groups);
    let partials: Vec<Vec<f32>> = tiles
        .par_chunks(per_group)
        .map(|group| {
            let mut sum = vec![0.0f32; len];
            for (n, rows) in group {
                add_tile(&mut sum, *n, rows);
            }
            sum
        })
        .collect();
    // The groups' sums added in order onto zero, value by value (runs of values in parallel).
    const RUN: usize = 4096;
    let mut total = vec![0.0f32; len];
    total.par_chunks_mut(RUN).enumerate().for_each(|(k, run)| {
        for partial in &partials {
            for (t, p) in run.iter_mut().zip(&partial[k * RUN..]) {
                *t += p;
            }
        }
    });
    total
}

/// Adds output `rows` of image `n`'s weight gradient onto `sum` (`[out_channels, taps]`): one
/// GEMM of the tile's output gradient by its im2col block, over the tile's pixels.
pub(super) fn add_tile_weight_grad(
    shape: &ConvShape,
    x: &[f32],
    output_grad: &[f32],
    sum: &mut [f32],
    n: usize,
    rows: &Range<usize>,
) {
    let (taps, in_len, out_len) = (shape.taps(), shape.in_pixels(), shape.out_pixels());
    let (c_in, c_out) = (shape.in_channels, shape.out_channels);
    let image = &x[n * c_in * in_len..(n + 1) * c_in * in_len];
    let len = rows.len() * shape.out_size[1];
    let first = rows.start * shape.out_size[1];
    with_scratch(|col| {
        // The block transposed: pixels × taps.
        let (block, tap_stride) = shape.taps_by_pixels(image, rows, col);
        let rhs = (block, 1, tap_stride);
        // SAFETY: `sum` is the caller's own; the tile's gradient rows and im2col block lie
        // inside the buffers (sizes asserted by the callers).
        unsafe {
            matmul(
                [c_out, taps, len],
                (sum.as_mut_ptr(), taps, 1),
                (
                    output_grad[n * c_out * out_len + first..].as_ptr(),
                    out_len,
                    1,
                ),
                rhs,
                true,
            );
        }
    });
}

/// The gradient with respect to the input, `[batch, in_channels, h, w]`, of a convolution by
/// `weight` whose output gradient is `output_grad`.
pub fn input_grad(shape: &ConvShape, weight: &[f32], output_grad: &[f32]) -> Vec<f32> {
    let (taps, in_len, out_len) = (shape.taps(), shape.in_pixels(), shape.out_pixels());
    let (c_in, c_out) = (shape.in_channels, shape.out_channels);
    assert_eq!(weight.len(), c_out * taps, "weight size");
    assert_eq!(
        output_grad.len(),
        shape.batch * c_out * out_len,
        "gradient size"
    );
    let out_w = shape.out_size[1];
    // Zeroed in parallel: `col2im` adds the taps onto it.
    let mut grad = filled(shape.batch * c_in * in_len, shape.batch * c_in, |_| 0.0);
    // The im2col-shaped gradient of one image (taps × output pixels), overwritten in full by
    // the GEMM for every image (the zeros only keep the buffer initialised); for a pointwise
    // convolution that is the input gradient itself.
    let mut col = if shape.is_pointwise() {
        Vec::new()
    } else {
        filled(taps * out_len, taps, |_| 0.0)
    };
    let rows_of_image = shape.row_tiles(TILE_PIXELS);
    for (n, image_grad) in grad.chunks_exact_mut(c_in * in_len).enumerate() {
        let target = if shape.is_pointwise() {
            Disjoint(image_grad.as_mut_ptr())
        } else {
            Disjoint(col.as_mut_ptr())
        };
        let output_grad = &output_grad[n * c_out * out_len..(n + 1) * c_out * out_len];
        rows_of_image.par_iter().for_each(|rows| {
            let first = rows.start * out_w;
            // SAFETY: this tile alone writes the columns of its output rows in the taps ×
            // pixels block (`out_len` = `in_len` when pointwise); sizes asserted above.
            unsafe {
                matmul_over_pixels(
                    [taps, rows.len() * out_w, c_out],
                    (target.at(first), out_len, 1),
                    (weight.as_ptr(), 1, taps),
                    (output_grad[first..].as_ptr(), out_len, 1),
                    false,
                );
            }
        });
        if !shape.is_pointwise() {
            image_grad
                .par_chunks_exact_mut(in_len)
                .enumerate()
                .for_each(|(channel, plane)| shape.col2im_channel(&col, channel, plane));
        }
    }
    grad
}

/// The gradient with respect to the bias: the output gradient `[batch, channels, pixels]`
/// summed over images and pixels.
pub fn bias_grad(batch: usize, channels: usize, pixels: usize, output_grad: &[f32]) -> Vec<f32> {
    assert_eq!(
        output_grad.len(),
        batch * channels * pixels,
        "gradient size"
    );
    // Per channel, its planes' sums added image after image (channels in parallel).
    (0..channels)
        .into_par_iter()
        .map(|channel| {
            let mut sum = 0.0f64;
            for n in 0..batch {
                let plane = &output_grad[(n * channels + channel) * pixels..][..pixels];
                sum += plane.iter().map(|&v| f64::from(v)).sum::<f64>();
            }
            sum as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution by its definition, for one output value.
    fn direct(shape: &ConvShape, x: &[f32], weight: &[f32], at: [usize; 4]) -> f32 {
        let [n, co, oy, ox] = at;
        let [h, w] = shape.in_size;
        let [kh, kw] = shape.kernel;
        let mut sum = 0.0;
        for ci in 0..shape.in_channels {
            for ky in 0..kh {
                for kx in 0..kw {
                    let iy = (oy * shape.stride[0] + ky * shape.dilation[0]) as isize
                        - shape.padding[0] as isize;
                    let ix = (ox * shape.stride[1] + kx * shape.dilation[1]) as isize
                        - shape.padding[1] as isize;
                    if (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix) {
                        let xi = ((n * shape.in_channels + ci) * h + iy as usize) * w + ix as usize;
                        let wi = ((co * shape.in_channels + ci) * kh + ky) * kw + kx;
                        sum += x[xi] * weight[wi];
                    }
                }
            }
        }
        sum
    }

    use crate::fusion::ops::cpu::test_kit::test_values as values;

    #[test]
    fn forward_matches_the_definition_with_stride_padding_and_dilation() {
        let shape = ConvShape::new(
            [2, 3, 9, 7],
            [4, 3, 3, 2],
            [2, 1],
            [(1, 2), (0, 1)],
            [1, 2],
            1,
        )
        .expect("supported");
        let x = values(2 * 3 * 9 * 7, 1);
        let weight = values(4 * 3 * 3 * 2, 2);
        let bias = [0.5, -0.25, 0.0, 1.0];
        let out = forward(&shape, &x, &weight, Some(&bias));
        let [oh, ow] = shape.out_size;
        for n in 0..2 {
            for co in 0..4 {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let got = out[((n * 4 + co) * oh + oy) * ow + ox];
                        let want = direct(&shape, &x, &weight, [n, co, oy, ox]) + bias[co];
                        assert!(
                            (got - want).abs() < 1e-4,
                            "{got} vs {want} at {n},{co},{oy},{ox}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn gradients_are_the_adjoints_of_the_forward_pass() {
        // <conv(x, w), g> = <x, input_grad(w, g)> = <w, weight_grad(x, g)>.
        for (x_dims, w_dims, stride, padding) in [
            ([2, 3, 11, 8], [5, 3, 3, 3], [1, 1], [(1, 1), (1, 1)]),
            ([1, 4, 10, 9], [2, 4, 3, 3], [2, 2], [(1, 1), (1, 1)]),
            ([3, 6, 5, 5], [4, 6, 1, 1], [1, 1], [(0, 0), (0, 0)]),
        ] {
            let shape = ConvShape::new(x_dims, w_dims, stride, padding, [1, 1], 1).expect("ok");
            let x = values(x_dims.iter().product(), 3);
            let weight = values(w_dims.iter().product(), 4);
            let out = forward(&shape, &x, &weight, None);
            let g = values(out.len(), 5);
            let dot =
                |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| (p * q) as f64).sum::<f64>();
            let reference = dot(&out, &g);
            let via_input = dot(&x, &input_grad(&shape, &weight, &g));
            let via_weight = dot(&weight, &weight_grad(&shape, &x, &g));
            assert!((reference - via_input).abs() < 1e-3 * reference.abs().max(1.0));
            assert!((reference - via_weight).abs() < 1e-3 * reference.abs().max(1.0));
        }
    }

    #[test]
    fn unsupported_geometry_is_left_to_burn() {
        assert!(
            ConvShape::new([1, 4, 8, 8], [4, 2, 3, 3], [1, 1], [(1, 1); 2], [1, 1], 2).is_none()
        );
        assert!(
            ConvShape::new([1, 1, 2, 2], [1, 1, 5, 5], [1, 1], [(0, 0); 2], [1, 1], 1).is_none()
        );
    }
}
