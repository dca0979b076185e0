//! The two sources' contrasts as single operations on the CPU: `[a, b, |a| − |b|]` along the
//! channels (the input of the wavelet expert's detail convolutions, from the two sources'
//! bands) and `|a − b|` (the reliability heads' contrast, which burn then concatenates).
//!
//! burn composes them from absolute values, a subtraction (and a concatenation), and under
//! autodiff from as many backward steps (slices, signs, products, a negation), each a pass on
//! one thread of burn-flex. On the CPU each operation does each direction in one parallel pass.
//! It computes the same f32 operations as the composition, and under autodiff registers each
//! input's gradient terms in the order burn-autodiff registers them (for the stack: the
//! concatenation's slice, then the contrast's term), so values and gradients are the same bits
//! (tested).
//!
//! That holds where no other use of the inputs gets its gradient registered in between: burn
//! orders backward steps by their depth in the graph, and a composition's steps sit at several
//! depths where one operation has one. The wavelet bands are used only by the stack. The
//! reliability heads' features also feed the next scale and the weighting: the whole
//! `[a, b, |a − b|]` as one operation changed the weights after 12 recipe steps, so there only
//! `|a − b|` is one operation and burn's concatenation stays (12 recipe steps with both
//! operations: the same weights to the bit).

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

/// The contrast block's value.
fn contrast(a: f32, b: f32) -> f32 {
    a.abs() - b.abs()
}

/// The composition's two gradient terms `(for a, for b)` from the contrast's gradient `g`: the
/// subtraction's (the right side negated), then the absolute value's `g·sign(·)`.
fn contrast_gradients(g: f32, a: f32, b: f32) -> (f32, f32) {
    (g * sign(a), (-g) * sign(b))
}

/// burn's composition, on any device.
fn composed(a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
    let contrast = a.clone().abs() - b.clone().abs();
    Tensor::cat(vec![a, b, contrast], 1)
}

/// The runs a tensor's values are split into for parallel passes: its first two dimensions'
/// planes (one run for a tensor of fewer than two dimensions).
fn planes(t: &FlexTensor) -> usize {
    match t.shape().as_slice() {
        [n, c, ..] => (n * c).max(1),
        _ => 1,
    }
}

/// burn-flex's `sign`: 0 for zero and NaN, else ±1.
fn sign(x: f32) -> f32 {
    if x.is_nan() || x == 0.0 {
        0.0
    } else {
        1.0f32.copysign(x)
    }
}

/// The stack as one backend operation.
#[backend_extension(Flex, Autodiff)]
pub trait DetailStackKernels: Backend {
    /// `[a, b, |a| − |b|]` along dimension 1 of two `[N, C, H, W]` f32 tensors.
    fn detail_stack(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `|a − b|` of two f32 tensors of one shape.
    fn absolute_difference(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Whether the operations take `a` and `b`: f32 tensors of one shape, training on the CPU.
fn covered<const D: usize>(a: &Tensor<D>, b: &Tensor<D>) -> bool {
    let device = a.device();
    is_cpu_training(&device)
        && b.device() == device
        && a.dims() == b.dims()
        && a.dtype() == DType::F32
        && b.dtype() == DType::F32
}

/// `[a, b, |a| − |b|]` along the channels of two `[N, C, H, W]` tensors: one operation in
/// training on the CPU for f32 values, burn's composition elsewhere.
pub fn detail_stack(a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
    if !covered(&a, &b) {
        return composed(a, b);
    }
    let output =
        <Dispatch as DetailStackKernels>::detail_stack(a.into_dispatch(), b.into_dispatch());
    Tensor::from_dispatch(output)
}

/// The forward kernel: per image, the blocks `a`, `b`, `|a| − |b|`.
fn forward(a: &FlexTensor, b: &FlexTensor) -> FlexTensor {
    let dims = a.shape().to_vec();
    let (xs, ys) = (f32s(a), f32s(b));
    let per_image = xs.len() / dims[0].max(1);
    let image = |n: usize| n * per_image..(n + 1) * per_image;
    let values = written(
        3 * xs.len(),
        3 * dims[0],
        |j| [&xs[image(j / 3)], &ys[image(j / 3)], &ys[image(j / 3)]],
        |j, [x, y, _]| match j % 3 {
            0 => x,
            1 => y,
            _ => contrast(x, y),
        },
    );
    let mut stacked = dims;
    stacked[1] *= 3;
    FlexTensor::from_data(TensorData::new(values, stacked))
}

/// The backward kernel: for `a` and for `b`, the concatenation's slice of the output gradient
/// and the contrast's term, in the order burn-autodiff registers them.
fn backward(a: &FlexTensor, b: &FlexTensor, grad: &FlexTensor) -> [[FlexTensor; 2]; 2] {
    let dims = a.shape().to_vec();
    let (xs, ys, gs) = (f32s(a), f32s(b), f32s(grad));
    let (images, per_image) = (dims[0], xs.len() / dims[0].max(1));
    let image = |n: usize| n * per_image..(n + 1) * per_image;
    let block = |n: usize, k: usize| &gs[(3 * n + k) * per_image..][..per_image];
    let tensor = |values| FlexTensor::from_data(TensorData::new(values, dims.clone()));
    let slice = |k: usize| {
        let block_k = |n| [block(n, k); 3];
        tensor(written(xs.len(), images, block_k, |_, [g, _, _]| g))
    };
    let term = |for_a: bool| {
        let triples = |n| [block(n, 2), &xs[image(n)], &ys[image(n)]];
        tensor(written(xs.len(), images, triples, |_, [g, x, y]| {
            let (for_x, for_y) = contrast_gradients(g, x, y);
            if for_a { for_x } else { for_y }
        }))
    };
    [[slice(0), term(true)], [slice(1), term(false)]]
}

impl DetailStackKernels for Flex {
    fn detail_stack(a: FlexTensor, b: FlexTensor) -> FlexTensor {
        forward(&contiguous(a), &contiguous(b))
    }

    fn absolute_difference(a: FlexTensor, b: FlexTensor) -> FlexTensor {
        let (a, b) = (contiguous(a), contiguous(b));
        let (xs, ys) = (f32s(&a), f32s(&b));
        let (len, runs) = (xs.len(), planes(&a));
        let run = |j: usize| j * (len / runs)..(j + 1) * (len / runs);
        let values = written(
            len,
            runs,
            |j| [&xs[run(j)], &ys[run(j)]],
            |_, [x, y]| (x - y).abs(),
        );
        FlexTensor::from_data(TensorData::new(values, a.shape().to_vec()))
    }
}

/// `|a − b|` of two tensors of one shape (the reliability heads' contrast): one operation in
/// training on the CPU for f32 values, burn's `(a − b).abs()` elsewhere. Under autodiff its
/// backward registers `g·sign(a − b)` for `a`, then its negation for `b`, as burn's
/// subtraction does after the absolute value's step.
pub fn absolute_difference<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    if !covered(&a, &b) {
        return (a - b).abs();
    }
    Tensor::from_dispatch(<Dispatch as DetailStackKernels>::absolute_difference(
        a.into_dispatch(),
        b.into_dispatch(),
    ))
}

/// The backward step of [`DetailStackKernels::absolute_difference`] under autodiff; the state
/// holds the two inputs.
#[derive(Debug)]
struct AbsoluteDifferenceBackward;

impl Backward<Flex, 2> for AbsoluteDifferenceBackward {
    type State = (FlexTensor, FlexTensor);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let (a, b) = &ops.state;
        let (xs, ys, gs) = (f32s(a), f32s(b), f32s(&grad));
        let (len, runs, dims) = (xs.len(), planes(a), a.shape().to_vec());
        let run = |j: usize| j * (len / runs)..(j + 1) * (len / runs);
        // The absolute value's step, then the subtraction's: as is for `a`, negated for `b`.
        let term = |negated: bool| {
            let inputs = |j| [&gs[run(j)], &xs[run(j)], &ys[run(j)]];
            let values = written(len, runs, inputs, |_, [g, x, y]| {
                let term = g * sign(x - y);
                if negated { -term } else { term }
            });
            FlexTensor::from_data(TensorData::new(values, dims.clone()))
        };
        let [node_a, node_b] = ops.parents;
        if let Some(node) = node_a {
            grads.register::<Flex>(node.id, term(false));
        }
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, term(true));
        }
    }
}

/// The backward step of [`DetailStackKernels::detail_stack`] under autodiff; the state holds
/// the two inputs.
#[derive(Debug)]
struct DetailStackBackward;

impl Backward<Flex, 2> for DetailStackBackward {
    type State = (FlexTensor, FlexTensor);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let (a, b) = &ops.state;
        let [for_a, for_b] = backward(a, b, &grad);
        for (node, terms) in ops.parents.into_iter().zip([for_a, for_b]) {
            if let Some(node) = node {
                for term in terms {
                    grads.register::<Flex>(node.id, term);
                }
            }
        }
    }
}

impl<C: CheckpointStrategy> DetailStackKernels for Autodiff<Flex, C> {
    fn detail_stack(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        match DetailStackBackward
            .prepare::<C>([a.node(), b.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (a, b) = (
                    contiguous(a.into_primitive()),
                    contiguous(b.into_primitive()),
                );
                let output = forward(&a, &b);
                prep.finish((a, b), output)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(Flex::detail_stack(a.into_primitive(), b.into_primitive()))
            }
        }
    }

    fn absolute_difference(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        match AbsoluteDifferenceBackward
            .prepare::<C>([a.node(), b.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (a, b) = (
                    contiguous(a.into_primitive()),
                    contiguous(b.into_primitive()),
                );
                let output = Flex::absolute_difference(a.clone(), b.clone());
                prep.finish((a, b), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::absolute_difference(
                a.into_primitive(),
                b.into_primitive(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::ops::cpu::test_kit::{differing_bits, test_values};
    use crate::fusion::ops::host::values;
    use burn::tensor::Device;

    /// In training on the CPU (the only place they run) the operations give the composition's
    /// output, and the gradients of both inputs bit for bit — with a further use of the inputs
    /// after the stack (whose gradient registers first), ties and zeros (the sign's 0), batch
    /// 1, 3 and 4, odd sizes.
    #[test]
    fn detail_stack_gives_the_compositions_values_and_gradients_bit_for_bit() {
        for device in [Device::flex().autodiff()] {
            for dims in [[3, 5, 7, 9], [1, 16, 24, 24], [4, 16, 48, 48]] {
                let what = format!("{dims:?} on {device:?}");
                let len: usize = dims.iter().product();
                let mut a = test_values(len, 1);
                let mut b = test_values(len, 2);
                for i in (0..len).step_by(7) {
                    b[i] = a[i];
                }
                for i in (0..len).step_by(11) {
                    a[i] = 0.0;
                }
                let tensor = |v: Vec<f32>| {
                    let t = Tensor::<4>::from_data(TensorData::new(v, dims), &device);
                    if device.is_autodiff() {
                        t.require_grad()
                    } else {
                        t
                    }
                };
                let (a, b) = (tensor(a), tensor(b));
                let mut stacked = dims;
                stacked[1] *= 3;
                let upstream = Tensor::<4>::from_data(
                    TensorData::new(test_values(3 * len, 3), stacked),
                    &device,
                );

                let ours = detail_stack(a.clone(), b.clone());
                let reference = composed(a.clone(), b.clone());
                check_absolute_difference(&a, &b, &upstream, &what);
                let (our_values, reference_values) =
                    (values(ours.clone()), values(reference.clone()));
                assert_eq!(
                    differing_bits(&our_values, &reference_values),
                    0,
                    "output, {what}"
                );
                if !device.is_autodiff() {
                    continue;
                }
                // A loss using the inputs a third time, after the stack.
                let loss = |out: Tensor<4>| {
                    let weight = (out * upstream.clone()).sum_dim(1);
                    (a.clone() * weight.clone()).sum() + (b.clone() * weight).sum()
                };
                let (grads_ours, grads_reference) =
                    (loss(ours).backward(), loss(reference).backward());
                for (name, input) in [("a", &a), ("b", &b)] {
                    let grad = |grads| values(input.grad(grads).expect("gradient"));
                    assert_eq!(
                        differing_bits(&grad(&grads_ours), &grad(&grads_reference)),
                        0,
                        "gradient of {name}, {what}"
                    );
                }
            }
        }
    }

    /// `absolute_difference` against `(a − b).abs()`: output, and under autodiff the two
    /// inputs' gradients with a further use of them after it (as the heads' concatenation).
    fn check_absolute_difference(a: &Tensor<4>, b: &Tensor<4>, upstream: &Tensor<4>, what: &str) {
        let ours = absolute_difference(a.clone(), b.clone());
        let reference = (a.clone() - b.clone()).abs();
        let (our_values, reference_values) = (values(ours.clone()), values(reference.clone()));
        assert_eq!(
            differing_bits(&our_values, &reference_values),
            0,
            "|a − b|, {what}"
        );
        if !a.device().is_autodiff() {
            return;
        }
        let [n, c, h, w] = a.dims();
        let weights = upstream.clone().slice([0..n, 0..c, 0..h, 0..w]);
        let loss = |out: Tensor<4>| {
            let stacked = Tensor::cat(vec![a.clone(), b.clone(), out], 1);
            let weight = (stacked * upstream.clone()).sum_dim(1);
            (a.clone() * weight.clone() * weights.clone()).sum() + (b.clone() * weight).sum()
        };
        let (grads_ours, grads_reference) = (loss(ours).backward(), loss(reference).backward());
        for (name, input) in [("a", a), ("b", b)] {
            let grad = |grads| values(input.grad(grads).expect("gradient"));
            assert_eq!(
                differing_bits(&grad(&grads_ours), &grad(&grads_reference)),
                0,
                "|a − b| gradient of {name}, {what}"
            );
        }
    }
}
