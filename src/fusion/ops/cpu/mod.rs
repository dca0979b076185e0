//! The raw CPU kernels on plain slices, and their helpers: the only room of the crate where
//! `unsafe` is allowed (AVX-512 intrinsics, writes into uninitialised buffers, disjoint writes
//! from parallel tasks); every `unsafe` block says why it holds.
//!
//! - convolution: [`conv_shape`] (the geometry), [`conv_im2col`] (im2col + `gemm`, all three
//!   passes, any geometry), [`conv_direct`] (3×3 `same` forward and input gradient straight
//!   from the input, AVX-512), [`conv_weight_direct`] (their weight gradient) and
//!   [`gemm_sums`] (where the direct kernels give the gemm crate's bits);
//! - [`scatter`]: a slice's input-shaped gradient;
//! - [`buffers`] (values written once in parallel, a tensor's values, disjoint writes),
//!   [`simd`] (AVX-512 detection, loops compiled for it), [`freed_memory`] (mimalloc keeps
//!   freed pages while the network runs), [`priority`] (background threads yield to the
//!   viewer's), and the tests' [`test_kit`].
#![allow(unsafe_code)]

pub mod buffers;
pub mod conv_direct;
pub mod conv_im2col;
pub mod conv_shape;
pub mod conv_weight_direct;
pub mod freed_memory;
pub mod gemm_sums;
pub mod priority;
pub mod scatter;
pub mod simd;
#[cfg(test)]
pub mod test_kit;
