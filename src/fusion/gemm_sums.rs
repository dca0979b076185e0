//! How the gemm crate (0.19) sums the products of `conv_cpu`, and so where the direct
//! kernels reproduce them bit for bit.
//!
//! gemm splits a product's inner dimension into blocks, sums each block as one FMA chain from
//! zero per output and adds the blocks onto the destination in order; small or thin products
//! take other paths (matrix–vector kernels, horizontal sums) that order the sums otherwise.
//! `conv_direct` and `conv_weight_direct` compute the same chains without im2col or packing;
//! the rules below say where their results are gemm's, so training — whose rounding the
//! shipped weights were made with — takes them exactly there.

#[cfg(doc)]
use super::conv_cpu;
use super::conv_cpu::{ConvShape, SIMD_PIXELS, TILE_PIXELS};

/// The gemm crate's (0.19) smallest block of the inner dimension: a product whose inner
/// dimension fits is summed in one pass.
const GEMM_MIN_DEPTH_BLOCK: usize = 512;

/// Whether [`conv_cpu::forward`] sums each output as one FMA chain from zero over the taps in order,
/// then adds it to the bias: the gemm crate does when the taps fit one block of its inner
/// dimension and no product takes one of its matrix–vector paths. `conv_direct::forward`
/// computes exactly that chain, so where this holds the two give the same bits.
pub fn forward_is_one_chain(shape: &ConvShape) -> bool {
    products_are_one_chain(shape, shape.taps(), shape.out_channels)
}

/// Whether [`conv_cpu::input_grad`]'s GEMMs sum each im2col value as one FMA chain from zero over the
/// output channels in order (`col2im` then adds the taps in order): as for
/// [`forward_is_one_chain`], with the output channels as the inner dimension.
/// `conv_direct::input_grad` computes exactly that.
pub fn input_grad_is_one_chain(shape: &ConvShape) -> bool {
    products_are_one_chain(shape, shape.out_channels, shape.taps())
}

/// Whether the per-tile GEMMs (`rows` × tile pixels, inner dimension `depth`) of a forward or
/// input-gradient pass run gemm's blocked kernel over one block of the inner dimension: more
/// than two and at most [`GEMM_MIN_DEPTH_BLOCK`] deep (else gevv, or several blocks), two or
/// more rows, and no product of one pixel (a tile, or the remainder `conv_cpu::matmul_over_pixels`
/// splits off) — those take gemm's matrix–vector paths.
fn products_are_one_chain(shape: &ConvShape, depth: usize, rows: usize) -> bool {
    let one_pixel_product =
        |pixels: usize| pixels == 1 || (pixels > SIMD_PIXELS && pixels % SIMD_PIXELS == 1);
    !shape.is_pointwise()
        && (3..=GEMM_MIN_DEPTH_BLOCK).contains(&depth)
        && rows >= 2
        && shape
            .row_tiles(TILE_PIXELS)
            .iter()
            .all(|tile| !one_pixel_product(tile.len() * shape.out_size[1]))
}

/// Whether gemm 0.19 computes [`conv_cpu::add_tile_weight_grad`]'s products with its blocked
/// kernel (given a depth of more than two pixels): not for few outputs or a matrix–vector
/// product.
///
/// gemm turns the product around (the destination is row-major), so it sees taps × output
/// channels over the pixels.
pub(super) fn weight_grad_is_blocked(shape: &ConvShape) -> bool {
    let (m, n) = (shape.taps(), shape.out_channels);
    m >= 2 && n >= 2 && m * n > 16 * 16
}

/// The depth gemm 0.19 sums [`conv_cpu::add_tile_weight_grad`]'s product over, for a tile of
/// `pixels` pixels: its blocked kernel sums each block of this many pixels as one FMA chain
/// from zero and adds it onto `sum`, block after block. `None` where gemm takes another path
/// for this product ([`weight_grad_is_blocked`] false, or a depth of at most two). The block
/// comes from gemm's `kernel_params` (AVX-512 f32: 64 × 6 register tiles), which read the
/// machine's cache sizes.
pub(super) fn weight_grad_depth_block(shape: &ConvShape, pixels: usize) -> Option<usize> {
    const MR: usize = 64;
    const NR: usize = 6;
    let (m, n, k) = (shape.taps(), shape.out_channels, pixels);
    if !weight_grad_is_blocked(shape) || k <= 2 {
        return None;
    }
    Some(if m <= 64 && n <= 64 {
        k.min(GEMM_MIN_DEPTH_BLOCK)
    } else {
        gemm_common::cache::kernel_params(m, n, k, MR, NR, std::mem::size_of::<f32>()).kc
    })
}
