//! How the gemm crate (0.19) sums the products of `conv_im2col`, and so where the direct
//! kernels reproduce them bit for bit.
//!
//! gemm splits a product's inner dimension into blocks, sums each block as one FMA chain from
//! zero per output and adds the blocks onto the destination in order; small or thin products
//! take other paths (matrix–vector kernels, horizontal sums) that order the sums otherwise.
//! `conv_direct` and `conv_weight_direct` compute the same chains without im2col or packing;
//! the rules below say where their results are gemm's, so training — whose rounding the
//! shipped weights were made with — takes them exactly there.

#[cfg(doc)]
use super::conv_im2col;
use std::ops::Range;

use super::conv_im2col::{SIMD_PIXELS, TILE_PIXELS};
use super::conv_shape::ConvShape;

/// The gemm crate's (0.19) smallest block of the inner dimension: a product whose inner
/// dimension fits is summed in one pass.
const GEMM_MIN_DEPTH_BLOCK: usize = 512;

/// How [`conv_im2col::forward`] sums the taps of one tile's pixels (numbered row after row,
/// `y·w + x`): each output is a sum of FMA chains from zero over consecutive blocks of taps in
/// order (input channel, kernel row, kernel column), added block after block onto the bias.
/// The tile's pixels before `split` are summed in blocks of `main` taps, the rest in blocks of
/// `ragged` taps: they belong to the small second product `conv_im2col::matmul_over_pixels` splits
/// off the tile, for which gemm may choose another block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileChains {
    pub pixels: Range<usize>,
    pub main: usize,
    pub split: usize,
    pub ragged: usize,
}

impl TileChains {
    /// An output image of `shape` as one tile, every output one chain over all its taps
    /// (fusion's summation).
    pub fn one_chain(shape: &ConvShape) -> Vec<Self> {
        let pixels = shape.out_size[0] * shape.out_size[1];
        vec![Self {
            pixels: 0..pixels,
            main: usize::MAX,
            split: pixels,
            ragged: usize::MAX,
        }]
    }
}

/// How [`conv_im2col::forward`] sums the taps, tile by tile ([`TileChains`], covering an image's
/// pixels in order), or `None` where one of its products takes another path (gevv, the
/// matrix–vector kernels) or the convolution is pointwise. `conv_direct::forward_in_chains`
/// computes exactly these chains, so where this is `Some` the two give the same bits.
///
/// gemm splits the inner dimension (the taps) of a product of `m` pixels × `n` output channels
/// into blocks of [`depth_block`]`(m, n, taps)`; a tile's product over its pixels is cut in two
/// (a multiple of 16 pixels, then the rest), and the two may get different blocks.
pub fn forward_chains(shape: &ConvShape) -> Option<Vec<TileChains>> {
    let (taps, channels) = (shape.taps(), shape.out_channels);
    if !products_are_blocked(shape, taps, channels) {
        return None;
    }
    let width = shape.out_size[1];
    let tiles = shape.row_tiles(TILE_PIXELS).into_iter().map(|rows| {
        let (first, pixels) = (rows.start * width, rows.len() * width);
        let aligned = if pixels > SIMD_PIXELS {
            pixels - pixels % SIMD_PIXELS
        } else {
            pixels
        };
        TileChains {
            pixels: first..first + pixels,
            main: depth_block(aligned, channels, taps),
            split: first + aligned,
            ragged: depth_block(pixels - aligned, channels, taps),
        }
    });
    Some(tiles.collect())
}

/// Whether [`conv_im2col::input_grad`]'s GEMMs sum each im2col value as one FMA chain from zero over the
/// output channels in order (`col2im` then adds the taps in order): the forward's one-block
/// case of [`forward_chains`], with the output channels as the inner dimension.
/// `conv_direct::input_grad` computes exactly that.
///
/// With one output channel gemm takes its `gevv` path, which writes each im2col value as the
/// plain product — the same value as a chain of one FMA from zero, except that a zero product
/// may keep its sign there; `col2im` adds it onto +0 first, as the direct kernel adds the
/// first tap onto +0, so the sums agree bit for bit.
pub fn input_grad_is_one_chain(shape: &ConvShape) -> bool {
    (shape.out_channels == 1 && !shape.is_pointwise())
        || products_are_one_chain(shape, shape.out_channels, shape.taps())
}

/// Whether the per-tile GEMMs (`rows` × tile pixels, inner dimension `depth`) of a forward or
/// input-gradient pass run gemm's blocked kernel over one block of the inner dimension: more
/// than two and at most [`GEMM_MIN_DEPTH_BLOCK`] deep (else gevv, or several blocks), and
/// [`products_are_blocked`].
fn products_are_one_chain(shape: &ConvShape, depth: usize, rows: usize) -> bool {
    depth <= GEMM_MIN_DEPTH_BLOCK && products_are_blocked(shape, depth, rows)
}

/// Whether the per-tile GEMMs (`rows` × tile pixels, inner dimension `depth`) of a forward or
/// input-gradient pass run gemm's blocked kernel: more than two deep (else gevv), two or more
/// rows, and no product of one pixel (a tile, or the remainder `conv_im2col::matmul_over_pixels`
/// splits off) — those take gemm's matrix–vector paths.
fn products_are_blocked(shape: &ConvShape, depth: usize, rows: usize) -> bool {
    let one_pixel_product =
        |pixels: usize| pixels == 1 || (pixels > SIMD_PIXELS && pixels % SIMD_PIXELS == 1);
    !shape.is_pointwise()
        && depth >= 3
        && rows >= 2
        && shape
            .row_tiles(TILE_PIXELS)
            .iter()
            .all(|tile| !one_pixel_product(tile.len() * shape.out_size[1]))
}

/// The block of the inner dimension `k` that gemm 0.19's blocked kernel sums a product of
/// `m` × `n` outputs in: each block one FMA chain from zero per output, added onto the
/// destination block after block. Small products skip `kernel_params` and take at most
/// [`GEMM_MIN_DEPTH_BLOCK`]; the others get its `kc` (AVX-512 f32: 64 × 6 register tiles),
/// which reads the machine's cache sizes.
fn depth_block(m: usize, n: usize, k: usize) -> usize {
    const MR: usize = 64;
    const NR: usize = 6;
    if m <= 64 && n <= 64 {
        k.min(GEMM_MIN_DEPTH_BLOCK)
    } else {
        gemm_common::cache::kernel_params(m, n, k, MR, NR, std::mem::size_of::<f32>()).kc
    }
}

/// Whether gemm 0.19 computes [`conv_im2col::add_tile_weight_grad`]'s products with its blocked
/// kernel (given a depth of more than two pixels): not for few outputs or a matrix–vector
/// product.
///
/// gemm turns the product around (the destination is row-major), so it sees taps × output
/// channels over the pixels.
pub(super) fn weight_grad_is_blocked(shape: &ConvShape) -> bool {
    let (m, n) = (shape.taps(), shape.out_channels);
    m >= 2 && n >= 2 && m * n > 16 * 16
}

/// The depth gemm 0.19 sums [`conv_im2col::add_tile_weight_grad`]'s product over, for a tile of
/// `pixels` pixels: its blocked kernel sums each block of this many pixels as one FMA chain
/// from zero and adds it onto `sum`, block after block. `None` where gemm takes another path
/// for this product ([`weight_grad_is_blocked`] false, or a depth of at most two). The block
/// is [`depth_block`]'s.
pub(super) fn weight_grad_depth_block(shape: &ConvShape, pixels: usize) -> Option<usize> {
    let (m, n, k) = (shape.taps(), shape.out_channels, pixels);
    if !weight_grad_is_blocked(shape) || k <= 2 {
        return None;
    }
    Some(depth_block(m, n, k))
}
