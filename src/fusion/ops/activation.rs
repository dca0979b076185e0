//! ReLU on the CPU as one parallel operation each way.
//!
//! burn-flex's ReLU and its backward step (a mask of the gradient) run on one thread, with a
//! scalar loop for the backward one; the encoder alone applies ReLU 24 times a training step
//! to activations of up to 600 000 values. Here both run in parallel with burn-flex's own
//! rules (NaN passes, −0 and everything at or below zero become +0; the gradient is kept where
//! the input was above zero or NaN, else +0), so values and gradients are the same bits
//! (tested). It is one operation with one input like burn's, so autodiff orders its backward
//! step as before.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, Tensor, TensorData};

use super::cpu::buffers::{contiguous, f32s, written};
use super::device::is_cpu_training;

/// Values per parallel task.
const RUN: usize = 1 << 14;

/// ReLU as one backend operation.
#[backend_extension(Flex, Autodiff)]
pub trait ActivationKernels: Backend {
    /// `max(x, 0)` of an f32 tensor, NaN kept.
    fn relu_parallel(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `relu(x)`: the parallel operation in training on the CPU for f32 values, burn's own
/// elsewhere.
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    let on_cpu = is_cpu_training(&device);
    if !on_cpu || x.dtype() != DType::F32 {
        return burn::tensor::activation::relu(x);
    }
    Tensor::from_dispatch(<Dispatch as ActivationKernels>::relu_parallel(
        x.into_dispatch(),
    ))
}

/// burn-flex's ReLU of one value.
fn rectified(x: f32) -> f32 {
    if x.is_nan() || x > 0.0 { x } else { 0.0 }
}

/// burn-flex's ReLU backward of one value: the gradient where the input passed.
fn passed(x: f32, grad: f32) -> f32 {
    if x.is_nan() || x > 0.0 { grad } else { 0.0 }
}

/// `f` over the values of `tensors` (same shape) side by side, in parallel runs.
fn map<const I: usize>(
    tensors: [&FlexTensor; I],
    f: impl Fn([f32; I]) -> f32 + Sync,
) -> FlexTensor {
    let owned = tensors.map(|t| contiguous(t.clone()));
    let values = owned.each_ref().map(f32s);
    let len = values[0].len();
    let runs = len.div_ceil(RUN).max(1);
    // Runs of equal length: the last one takes the remainder as a separate pass.
    let main = len / runs * runs;
    let mut out = written(
        main,
        runs,
        |j| values.map(|v| &v[j * (main / runs)..][..main / runs]),
        |_, x| f(x),
    );
    out.extend((main..len).map(|i| f(values.map(|v| v[i]))));
    FlexTensor::from_data(TensorData::new(out, owned[0].shape().to_vec()))
}

impl ActivationKernels for Flex {
    fn relu_parallel(x: FlexTensor) -> FlexTensor {
        map([&x], |[x]| rectified(x))
    }
}

/// The backward step of [`ActivationKernels::relu_parallel`]; the state holds the input.
#[derive(Debug)]
struct ReluBackward;

impl Backward<Flex, 1> for ReluBackward {
    type State = FlexTensor;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<Flex>(&ops.node);
        let [parent] = ops.parents;
        if let Some(node) = parent {
            grads.register::<Flex>(node.id, map([&ops.state, &grad], |[x, g]| passed(x, g)));
        }
    }
}

impl<C: CheckpointStrategy> ActivationKernels for Autodiff<Flex, C> {
    fn relu_parallel(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match ReluBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let input = x.into_primitive();
                let output = Flex::relu_parallel(input.clone());
                prep.finish(input, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::relu_parallel(x.into_primitive())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::ops::cpu::test_kit::{differing_bits, test_values};
    use crate::fusion::ops::host::values;
    use burn::tensor::Device;

    /// In training on the CPU (the only place it runs) the operation gives burn's ReLU and its
    /// gradient bit for bit, with zeros, −0 and NaN among the inputs, on sizes below, at and
    /// above a run.
    #[test]
    fn relu_gives_burns_values_and_gradients_bit_for_bit() {
        for device in [Device::flex().autodiff()] {
            for len in [5, RUN, 3 * RUN + 77] {
                let mut x = test_values(len, 7);
                x[0] = -0.0;
                x[1 % len] = 0.0;
                x[2 % len] = f32::NAN;
                let x = Tensor::<1>::from_data(TensorData::new(x, [len]), &device);
                let x = if device.is_autodiff() {
                    x.require_grad()
                } else {
                    x
                };
                let upstream =
                    Tensor::<1>::from_data(TensorData::new(test_values(len, 8), [len]), &device);
                let ours = relu(x.clone());
                let reference = burn::tensor::activation::relu(x.clone());
                let what = format!("{len} values on {device:?}");
                assert_eq!(
                    differing_bits(&values(ours.clone()), &values(reference.clone())),
                    0,
                    "output, {what}"
                );
                if device.is_autodiff() {
                    let grad = |out: Tensor<1>| {
                        let grads = (out * upstream.clone()).sum().backward();
                        values(x.grad(&grads).expect("gradient"))
                    };
                    assert_eq!(
                        differing_bits(&grad(ours), &grad(reference)),
                        0,
                        "gradient, {what}"
                    );
                }
            }
        }
    }
}
