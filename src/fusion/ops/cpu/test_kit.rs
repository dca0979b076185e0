//! Inputs and comparisons for the kernels' and operations' tests: deterministic values, the
//! geometry of a 3×3 `same` convolution, bit differences and closeness to a reference.

use super::conv_shape::ConvShape;

/// `len` values in [−1, 1] from a small deterministic generator (xorshift), for kernel tests.
pub(crate) fn test_values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// The geometry of a 3×3 `same` convolution of `batch` images of `c_in` × `h` × `w` into
/// `c_out` channels, for kernel tests.
pub(crate) fn same_conv_shape([batch, c_in, c_out, h, w]: [usize; 5]) -> ConvShape {
    ConvShape::new(
        [batch, c_in, h, w],
        [c_out, c_in, 3, 3],
        [1, 1],
        [(1, 1), (1, 1)],
        [1, 1],
        1,
    )
    .expect("supported")
}

/// How many values of `ours` differ in their bits from `reference`'s, for kernel tests.
pub(crate) fn differing_bits(ours: &[f32], reference: &[f32]) -> usize {
    assert_eq!(ours.len(), reference.len());
    ours.iter()
        .zip(reference)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count()
}

/// Asserts `|ours − reference|` is at most `tolerance` times the reference's largest
/// magnitude, for tests of kernels against burn's own operations.
pub(crate) fn assert_close(what: &str, ours: Vec<f32>, reference: Vec<f32>, tolerance: f32) {
    assert_eq!(ours.len(), reference.len(), "{what}: size");
    let scale = reference
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()))
        .max(1e-6);
    let worst = ours
        .iter()
        .zip(&reference)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        worst <= tolerance * scale,
        "{what}: max difference {worst} against magnitude {scale}"
    );
}
