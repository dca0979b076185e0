//! W-DUALMINE's convolutions through one burn backend extension: on burn's CPU backend (flex)
//! the kernels of `conv_im2col` compute the forward pass, and under autodiff their own input,
//! weight and bias gradients; on the GPU (cubecl) burn's own kernels run. The model calls
//! [`conv2d`] everywhere, so it keeps one code path on every device.
//!
//! burn-flex 0.22 has a slow forward convolution for these small channel counts and no weight
//! gradient of its own (burn's generic composition lands on a scalar path); issue 15 has the
//! measurements.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Cube, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData};

use super::cpu::conv_im2col;
use super::cpu::conv_shape::ConvShape;
use super::cpu::gemm_sums::{self, TileChains};
use super::cpu::{conv_direct, conv_weight_direct};

/// The convolution with its gradients, per backend. The default bodies are burn's own
/// operations (what the GPU backend runs).
#[backend_extension(Flex, Cube, Autodiff)]
pub trait ConvKernels: Backend {
    /// `x ∗ weight + bias`.
    fn conv2d_biased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, Some(bias), options)
    }

    /// `x ∗ weight + bias` as training computes it. On the CPU: the rounding of the im2col
    /// kernels, which the shipped weights were made with — the direct kernel summing in the
    /// gemm crate's chains, where they are known (`gemm_sums::forward_chains`); fusion takes
    /// the direct kernel, one chain per output, for every 3×3 `same` layer.
    fn conv2d_biased_for_training(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_biased(x, weight, bias, options)
    }

    /// The gradient with respect to `x`.
    fn conv2d_input_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_x_backward(x, weight, output_grad, options)
    }

    /// The gradient with respect to the weight.
    fn conv2d_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_weight_backward(x, weight, output_grad, options)
    }

    /// The gradient with respect to the bias.
    fn conv2d_bias_grad(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv2d_bias_backward(x, bias, output_grad)
    }
}

impl ConvKernels for Cube {}

/// The geometry of a convolution the CPU kernels cover, from its tensors' shapes.
fn geometry(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> Option<ConvShape> {
    let dims = |t: &FlexTensor| -> Option<[usize; 4]> { t.shape().as_slice().try_into().ok() };
    ConvShape::new(
        dims(x)?,
        dims(weight)?,
        options.stride,
        options.padding,
        options.dilation,
        options.groups,
    )
}

/// Runs `f` on the f32 values of each tensor in order (copying a strided one once), or returns
/// `None` when a tensor holds another type.
fn with_values<const N: usize, R>(
    tensors: [&FlexTensor; N],
    f: impl FnOnce([&[f32]; N]) -> R,
) -> Option<R> {
    let owned: Vec<FlexTensor> = tensors
        .iter()
        .map(|t| match t.as_slice::<f32>() {
            Some(_) => (*t).clone(),
            None => t.to_contiguous(),
        })
        .collect();
    let slices: Vec<&[f32]> = owned
        .iter()
        .map(|t| t.as_slice::<f32>())
        .collect::<Option<_>>()?;
    let slices: [&[f32]; N] = slices.try_into().ok()?;
    Some(f(slices))
}

fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

impl ConvKernels for Flex {
    fn conv2d_biased(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        flex_forward(x, weight, bias, options, |shape| {
            Some(TileChains::one_chain(shape))
        })
    }

    fn conv2d_biased_for_training(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        flex_forward(x, weight, bias, options, gemm_sums::forward_chains)
    }

    fn conv2d_input_grad(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let computed = geometry(&x, &weight, &options).and_then(|shape| {
            with_values([&weight, &output_grad], |[w, g]| {
                let direct = (gemm_sums::input_grad_is_one_chain(&shape))
                    .then(|| conv_direct::input_grad(&shape, w, g))
                    .flatten();
                let values = direct.unwrap_or_else(|| conv_im2col::input_grad(&shape, w, g));
                tensor(values, x.shape().to_vec())
            })
        });
        computed.unwrap_or_else(|| Self::conv2d_x_backward(x, weight, output_grad, options))
    }

    fn conv2d_weight_grad(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let computed = geometry(&x, &weight, &options).and_then(|shape| {
            with_values([&x, &output_grad], |[x, g]| {
                let values = conv_weight_direct::weight_grad(&shape, x, g)
                    .unwrap_or_else(|| conv_im2col::weight_grad(&shape, x, g));
                tensor(values, weight.shape().to_vec())
            })
        });
        computed.unwrap_or_else(|| Self::conv2d_weight_backward(x, weight, output_grad, options))
    }

    fn conv2d_bias_grad(x: FlexTensor, bias: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
        let dims = output_grad.shape().to_vec();
        let computed = (dims.len() == 4)
            .then_some(())
            .and_then(|()| {
                with_values([&output_grad], |[g]| {
                    conv_im2col::bias_grad(dims[0], dims[1], dims[2] * dims[3], g)
                })
            })
            .map(|values| tensor(values, bias.shape().to_vec()));
        computed.unwrap_or_else(|| Self::conv2d_bias_backward(x, bias, output_grad))
    }
}

/// The forward convolution on flex: `conv_direct` where it covers the geometry and `chains`
/// says how to sum each tile, else `conv_im2col`'s im2col kernels, else burn's own.
fn flex_forward(
    x: FlexTensor,
    weight: FlexTensor,
    bias: FlexTensor,
    options: ConvOptions<2>,
    chains: fn(&ConvShape) -> Option<Vec<TileChains>>,
) -> FlexTensor {
    let computed = geometry(&x, &weight, &options)
        .filter(conv_direct::covers)
        .and_then(|shape| direct_forward(&shape, &x, &weight, &bias, &chains(&shape)?));
    computed.unwrap_or_else(|| im2col_forward(x, weight, bias, options))
}

/// The forward convolution by `conv_direct` summed in the chains `tiles`, or `None` where it
/// does not run.
fn direct_forward(
    shape: &ConvShape,
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    tiles: &[TileChains],
) -> Option<FlexTensor> {
    with_values([x, weight, bias], |[x, w, b]| {
        let values = conv_direct::forward_in_chains(shape, x, w, b, tiles)?;
        let [oh, ow] = shape.out_size;
        Some(tensor(
            values,
            vec![shape.batch, shape.out_channels, oh, ow],
        ))
    })
    .flatten()
}

/// The forward convolution by `conv_im2col`'s im2col kernels, or burn's own where they do not
/// cover the geometry.
fn im2col_forward(
    x: FlexTensor,
    weight: FlexTensor,
    bias: FlexTensor,
    options: ConvOptions<2>,
) -> FlexTensor {
    let computed = geometry(&x, &weight, &options).and_then(|shape| {
        with_values([&x, &weight, &bias], |[x, w, b]| {
            let [oh, ow] = shape.out_size;
            let dims = vec![shape.batch, shape.out_channels, oh, ow];
            tensor(conv_im2col::forward(&shape, x, w, Some(b)), dims)
        })
    });
    computed.unwrap_or_else(|| Flex::conv2d(x, weight, Some(bias), options))
}

/// The backward step of [`ConvKernels::conv2d_biased`] under autodiff: the state holds the
/// checkpointed input, weight and bias.
#[derive(Debug)]
struct ConvBackward;

impl<B: Backend + ConvKernels> Backward<B, 3> for ConvBackward {
    type State = (NodeId, NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, bias_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        let bias = checkpointer.retrieve_node_output::<FloatTensor<B>>(bias_state);
        if let Some(node) = node_x {
            let dx = B::conv2d_input_grad(x.clone(), weight.clone(), grad.clone(), options.clone());
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_weight {
            let dw = B::conv2d_weight_grad(x.clone(), weight, grad.clone(), options);
            grads.register::<B>(node.id, dw);
        }
        if let Some(node) = node_bias {
            grads.register::<B>(node.id, B::conv2d_bias_grad(x, bias, grad));
        }
    }
}

impl<B: Backend + ConvKernels, C: CheckpointStrategy> ConvKernels for Autodiff<B, C> {
    fn conv2d_biased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match ConvBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (
                    prep.checkpoint(&x),
                    prep.checkpoint(&weight),
                    prep.checkpoint(&bias),
                    options.clone(),
                );
                let output = B::conv2d_biased_for_training(
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                    options,
                );
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::conv2d_biased_for_training(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                options,
            )),
        }
    }
}

/// `layer` applied to `x`: through [`ConvKernels`] when the layer has a bias (all of
/// W-DUALMINE's layers do), else burn's own path.
pub fn conv2d(layer: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [_, _, height, width] = x.dims();
    // `Same` as burn-nn pads: the output is ⌈size / stride⌉, the extra padding at the end.
    let same = |size: usize, d: usize| {
        let (kernel, stride) = (layer.kernel_size[d], layer.stride[d]);
        let total = ((size.div_ceil(stride).max(1) - 1) * stride + kernel).saturating_sub(size);
        (total / 2, total - total / 2)
    };
    let padding = match layer.padding {
        PaddingConfig2d::Valid => [(0, 0); 2],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Same => [same(height, 0), same(width, 1)],
    };
    let Some(bias) = &layer.bias else {
        return layer.forward(x);
    };
    let options =
        ConvOptions::new_with_padding(layer.stride, padding, layer.dilation, layer.groups);
    conv2d_biased(x, layer.weight.val(), bias.val(), options)
}

/// `x ∗ weight + bias` through [`ConvKernels`] on whatever device the tensors are.
pub fn conv2d_biased(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    let output = <Dispatch as ConvKernels>::conv2d_biased(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        options,
    );
    Tensor::from_dispatch(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::ops::host::values;
    use burn::tensor::{Device, Distribution};

    /// A small deterministic generator (xorshift), so a failing shape can be rerun.
    struct Shapes(u64);

    impl Shapes {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// `|ours − burn|` at most `1e-4` of burn's largest magnitude.
    fn assert_close(what: &str, ours: Vec<f32>, burn: Vec<f32>, case: &str) {
        crate::fusion::ops::cpu::test_kit::assert_close(
            &format!("{what}, {case}"),
            ours,
            burn,
            1e-4,
        );
    }

    /// A layer's padding rule (valid, explicit, `Same` with odd and even kernels and strides)
    /// is applied as burn-nn applies it.
    #[test]
    fn layers_pad_as_burn_nn_does() {
        use burn::nn::conv::Conv2dConfig;
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 11, 8], Distribution::Uniform(-1.0, 1.0), &device);
        for (kernel, stride, padding) in [
            ([3, 3], [1, 1], PaddingConfig2d::Same),
            ([4, 2], [2, 1], PaddingConfig2d::Same),
            ([3, 3], [2, 2], PaddingConfig2d::Same),
            ([1, 1], [1, 1], PaddingConfig2d::Valid),
            ([3, 3], [2, 2], PaddingConfig2d::Explicit(1, 0, 2, 1)),
        ] {
            let layer = Conv2dConfig::new([3, 5], kernel)
                .with_stride(stride)
                .with_padding(padding.clone())
                .init(&device);
            let case = format!("kernel {kernel:?}, stride {stride:?}, {padding:?}");
            assert_close(
                "layer",
                values(conv2d(&layer, x.clone())),
                values(layer.forward(x.clone())),
                &case,
            );
        }
    }

    /// Forward, input, weight and bias gradients equal burn's default convolution on flex
    /// (burn's composition of the gradients) on 24 random geometries: odd sizes, strides 1–2,
    /// asymmetric padding, dilation, kernels 1–5, batch 1–8.
    #[test]
    fn fusion_convolution_matches_burns_on_random_shapes() {
        // Without autodiff (fusion), 3×3 `same` layers take the direct kernel where the CPU
        // has AVX-512; every other geometry the im2col one.
        let device = Device::flex();
        let mut rng = Shapes(0x2545_f491_4f6c_dd1d);
        for case in 0..24 {
            let batch = 1 + rng.below(3);
            let (c_in, c_out) = (1 + rng.below(40), 1 + rng.below(40));
            let same = case % 3 != 2;
            let (kernel, stride, padding) = if same {
                ([3, 3], [1, 1], [(1, 1), (1, 1)])
            } else {
                (
                    [1 + rng.below(4), 1 + rng.below(4)],
                    [1 + rng.below(2), 1 + rng.below(2)],
                    [(rng.below(2), rng.below(2)), (rng.below(2), rng.below(2))],
                )
            };
            let size = [kernel[0] + rng.below(40), kernel[1] + rng.below(150)];
            let options = ConvOptions::new_with_padding(stride, padding, [1, 1], 1);
            let case = format!(
                "case {case}: x [{batch}, {c_in}, {}, {}], weight [{c_out}, {c_in}, {}, {}], \
                 {options:?}",
                size[0], size[1], kernel[0], kernel[1]
            );
            let x = Tensor::<4>::random(
                [batch, c_in, size[0], size[1]],
                Distribution::Uniform(-1.0, 1.0),
                &device,
            );
            let weight = Tensor::<4>::random(
                [c_out, c_in, kernel[0], kernel[1]],
                Distribution::Uniform(-1.0, 1.0),
                &device,
            );
            let bias = Tensor::<1>::random([c_out], Distribution::Uniform(-1.0, 1.0), &device);
            let reference = burn::tensor::module::conv2d(
                x.clone(),
                weight.clone(),
                Some(bias.clone()),
                options.clone(),
            );
            assert_close(
                "fusion forward",
                values(conv2d_biased(x, weight, bias, options)),
                values(reference),
                &case,
            );
        }
    }

    #[test]
    fn kernels_match_burns_convolution_on_random_shapes() {
        let device = Device::flex().autodiff();
        let mut rng = Shapes(0x9e37_79b9_7f4a_7c15);
        for case in 0..24 {
            let batch = 1 + rng.below(8);
            let (c_in, c_out) = (1 + rng.below(9), 1 + rng.below(9));
            let kernel = [1 + rng.below(5), 1 + rng.below(3)];
            let stride = [1 + rng.below(2), 1 + rng.below(2)];
            let dilation = [1 + rng.below(2), 1];
            let padding = [(rng.below(3), rng.below(3)), (rng.below(2), rng.below(2))];
            let size = [
                kernel[0] * dilation[0] + rng.below(20),
                kernel[1] + rng.below(20),
            ];
            let options = ConvOptions::new_with_padding(stride, padding, dilation, 1);
            let case = format!(
                "case {case}: x [{batch}, {c_in}, {}, {}], weight [{c_out}, {c_in}, {}, {}], \
                 {options:?}",
                size[0], size[1], kernel[0], kernel[1]
            );
            let random = |dims: Vec<usize>| {
                Tensor::<4>::random(dims, Distribution::Uniform(-1.0, 1.0), &device)
            };
            let x = random(vec![batch, c_in, size[0], size[1]]).require_grad();
            let weight = random(vec![c_out, c_in, kernel[0], kernel[1]]).require_grad();
            let bias = Tensor::<1>::random([c_out], Distribution::Uniform(-1.0, 1.0), &device)
                .require_grad();

            let reference = burn::tensor::module::conv2d(
                x.clone(),
                weight.clone(),
                Some(bias.clone()),
                options.clone(),
            );
            let upstream =
                Tensor::<4>::random(reference.dims(), Distribution::Uniform(-1.0, 1.0), &device);
            let ours = conv2d_biased(x.clone(), weight.clone(), bias.clone(), options);
            assert_close(
                "forward",
                values(ours.clone()),
                values(reference.clone()),
                &case,
            );

            let grads_ref = (reference * upstream.clone()).sum().backward();
            let grads_ours = (ours * upstream).sum().backward();
            let grad4 = |t: &Tensor<4>, g| values(t.grad(g).expect("gradient"));
            assert_close(
                "input gradient",
                grad4(&x, &grads_ours),
                grad4(&x, &grads_ref),
                &case,
            );
            assert_close(
                "weight gradient",
                grad4(&weight, &grads_ours),
                grad4(&weight, &grads_ref),
                &case,
            );
            assert_close(
                "bias gradient",
                values(bias.grad(&grads_ours).expect("gradient")),
                values(bias.grad(&grads_ref).expect("gradient")),
                &case,
            );
        }
    }
}
