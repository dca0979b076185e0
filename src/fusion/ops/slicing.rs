//! Slices under autodiff on the CPU whose backward step runs in parallel.
//!
//! burn-autodiff's slice backward allocates a zero tensor of the input's shape and writes the
//! slice's gradient into it; burn-flex does both on one thread (a zeroing pass, a copy of the
//! gradient to contiguous, then a strided write). A training step takes hundreds of such
//! slices of full-size maps: eight per Sobel stencil (the mixers, the loss) and ten per blur
//! pass (the decoder's details), besides the crops. (The Haar transform's block slices are
//! gone from training: it is one operation there, `training::haar`.)
//!
//! Here the forward step is burn-flex's own slice (a view, as before) and the backward step
//! writes each value of the input-shaped gradient once, in parallel: the slice's gradient
//! inside, +0 outside — the values burn's zero tensor and copy give. It is one operation with
//! one input, like burn's, so autodiff orders its backward step as before and training keeps
//! its bits (tested).

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, Slice, Tensor, TensorData};
use std::ops::Range;

use super::cpu::buffers::{contiguous, f32s};
use super::cpu::scatter::scattered;
use super::device::is_cpu_training;

/// A slice (step 1 in every dimension) as one backend operation.
#[backend_extension(Flex, Autodiff)]
pub trait SliceKernels: Backend {
    /// The values of `x` (f32) in `ranges`, one range per dimension.
    fn slice_ranges(x: FloatTensor<Self>, ranges: Vec<Range<usize>>) -> FloatTensor<Self>;
}

/// `x.slice(ranges)`: the operation with a parallel backward step in training on the CPU for
/// f32 values, burn's own elsewhere.
pub fn slice<const D: usize>(x: Tensor<D>, ranges: [Range<usize>; D]) -> Tensor<D> {
    let dims = x.dims();
    let within = ranges
        .iter()
        .zip(dims)
        .all(|(range, size)| range.start <= range.end && range.end <= size);
    if !within || !is_cpu_training(&x.device()) || x.dtype() != DType::F32 {
        return x.slice(ranges);
    }
    Tensor::from_dispatch(<Dispatch as SliceKernels>::slice_ranges(
        x.into_dispatch(),
        ranges.to_vec(),
    ))
}

/// burn's description of `ranges`.
fn slices(ranges: &[Range<usize>]) -> Vec<Slice> {
    ranges
        .iter()
        .map(|range| Slice::new(range.start as isize, Some(range.end as isize), 1))
        .collect()
}

impl SliceKernels for Flex {
    fn slice_ranges(x: FlexTensor, ranges: Vec<Range<usize>>) -> FlexTensor {
        Flex::float_slice(x, &slices(&ranges))
    }
}

/// The backward step of [`SliceKernels::slice_ranges`]; the state holds the input's shape and
/// the ranges.
#[derive(Debug)]
struct SliceBackward;

impl Backward<Flex, 1> for SliceBackward {
    type State = (Vec<usize>, Vec<Range<usize>>);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let [parent] = ops.parents;
        if let Some(node) = parent {
            let (shape, ranges) = ops.state;
            let values = scattered(&shape, &ranges, f32s(&grad));
            grads.register::<Flex>(
                node.id,
                FlexTensor::from_data(TensorData::new(values, shape)),
            );
        }
    }
}

impl<C: CheckpointStrategy> SliceKernels for Autodiff<Flex, C> {
    fn slice_ranges(x: FloatTensor<Self>, ranges: Vec<Range<usize>>) -> FloatTensor<Self> {
        match SliceBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let input = x.into_primitive();
                let shape = input.shape().to_vec();
                let output = Flex::slice_ranges(input, ranges.clone());
                prep.finish((shape, ranges), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::slice_ranges(x.into_primitive(), ranges)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::ops::cpu::test_kit::{differing_bits, test_values};
    use crate::fusion::ops::host::values;
    use burn::tensor::Device;

    /// One slice against burn's: values and the input's gradient, with a further use of the
    /// input so that the gradients add up.
    fn compare<const D: usize>(shape: [usize; D], ranges: [Range<usize>; D], seed: u64) {
        let device = Device::flex().autodiff();
        let len: usize = shape.iter().product();
        let sliced: usize = ranges.iter().map(|r| r.len()).product();
        let run = |use_ours: bool| {
            let x = Tensor::<D>::from_data(TensorData::new(test_values(len, seed), shape), &device)
                .require_grad();
            let part = if use_ours {
                slice(x.clone(), ranges.clone())
            } else {
                x.clone().slice(ranges.clone())
            };
            let upstream = TensorData::new(test_values(sliced, seed + 50), part.dims());
            let loss = (part.clone() * Tensor::<D>::from_data(upstream, &device)).sum()
                + (x.clone() * 0.25).sum();
            let grads = loss.backward();
            let gx = x.grad(&grads).expect("gradient of x");
            (values(part), values(gx))
        };
        let (ours, ours_grad) = run(true);
        let (reference, reference_grad) = run(false);
        let what = format!("{shape:?} in {ranges:?}");
        assert_eq!(differing_bits(&ours, &reference), 0, "{what}: values");
        assert_eq!(
            differing_bits(&ours_grad, &reference_grad),
            0,
            "{what}: gradient"
        );
    }

    /// Slices of 1, 2, 4 and 6 dimensions (the stencils' shifted windows, 6-D block views as
    /// the Haar composition takes, whole ranges, one value) give burn's values and gradients
    /// bit for bit.
    #[test]
    fn slices_give_burns_values_and_gradients_bit_for_bit() {
        // One range for one dimension, not a list of the range's values.
        #[allow(clippy::single_range_in_vec_init)]
        compare([7], [2..5], 1);
        compare([3, 5], [0..3, 1..4], 2);
        compare([1, 1], [0..1, 0..1], 3);
        compare([2, 3, 6, 7], [0..2, 0..3, 2..6, 1..6], 4);
        compare([4, 3, 9, 9], [0..4, 1..3, 0..9, 0..9], 5);
        compare([3, 2, 5, 4], [1..2, 0..2, 4..5, 0..4], 6);
        compare([2, 3, 4, 2, 5, 2], [0..2, 0..3, 0..4, 1..2, 0..5, 0..1], 7);
        compare([1, 1, 3, 2, 4, 2], [0..1, 0..1, 0..3, 0..1, 0..4, 1..2], 8);
    }
}
