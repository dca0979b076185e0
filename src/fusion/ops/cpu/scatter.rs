//! The backward step of a slice on the CPU: the input-shaped gradient written once, in
//! parallel — the slice's gradient inside its ranges, +0 outside (the values burn's zero
//! tensor and copy give), with no zeroing pass first.

use std::mem::MaybeUninit;
use std::ops::Range;

use rayon::prelude::*;

/// The gradient of `x` (shape `shape`) from the gradient `grad` (contiguous, shaped by
/// `ranges`) of its slice: `grad` inside the ranges, +0 elsewhere, every value written once.
/// Parallel over the first two dimensions' planes.
pub(crate) fn scattered(shape: &[usize], ranges: &[Range<usize>], grad: &[f32]) -> Vec<f32> {
    let len: usize = shape.iter().product();
    let dims = shape.len();
    let mut strides = vec![1; dims];
    let mut grad_strides = vec![1; dims];
    for d in (0..dims.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
        grad_strides[d] = grad_strides[d + 1] * ranges[d + 1].len();
    }
    // Tasks: the planes of the first two dimensions, or the rows of a matrix.
    let split = if dims >= 3 { 2 } else { dims.saturating_sub(1) };
    let plane = if split == 0 { len } else { strides[split - 1] };
    let mut buffer: Vec<f32> = Vec::with_capacity(len);
    if len > 0 {
        let walk = Walk {
            shape,
            ranges,
            strides: &strides,
            grad_strides: &grad_strides,
            grad,
        };
        buffer.spare_capacity_mut()[..len]
            .par_chunks_mut(plane)
            .enumerate()
            .for_each(|(p, out)| {
                // The plane's indices in the first `split` dimensions.
                let (mut inside, mut offset, mut rest) = (true, 0, p);
                for d in (0..split).rev() {
                    let i = rest % shape[d];
                    rest /= shape[d];
                    inside &= ranges[d].contains(&i);
                    offset += i.saturating_sub(ranges[d].start) * grad_strides[d];
                }
                walk.fill(out, split, inside, offset);
            });
    }
    // SAFETY: the planes tile the first `len` values and `Walk::fill` writes each value of its
    // part once (zeros or a copy of the same length).
    unsafe { buffer.set_len(len) };
    buffer
}

/// The geometry [`scattered`] walks.
struct Walk<'a> {
    shape: &'a [usize],
    ranges: &'a [Range<usize>],
    strides: &'a [usize],
    grad_strides: &'a [usize],
    grad: &'a [f32],
}

impl Walk<'_> {
    /// Writes `out`, the part of the gradient at dimension `d` onwards whose earlier indices
    /// lie `inside` the ranges or not, with the slice's gradient starting at `offset`.
    fn fill(&self, out: &mut [MaybeUninit<f32>], d: usize, inside: bool, offset: usize) {
        if !inside || d == self.shape.len() {
            if inside {
                out[0].write(self.grad[offset]);
            } else {
                out.fill(MaybeUninit::new(0.0));
            }
            return;
        }
        let range = &self.ranges[d];
        let stride = self.strides[d];
        if d + 1 == self.shape.len() {
            out[..range.start].fill(MaybeUninit::new(0.0));
            for (o, g) in out[range.clone()]
                .iter_mut()
                .zip(&self.grad[offset..offset + range.len()])
            {
                o.write(*g);
            }
            out[range.end..].fill(MaybeUninit::new(0.0));
            return;
        }
        for (i, part) in out.chunks_mut(stride).enumerate() {
            let inside = range.contains(&i);
            let offset = offset + i.saturating_sub(range.start) * self.grad_strides[d];
            self.fill(part, d + 1, inside, offset);
        }
    }
}
