//! Group normalisation being trained on the CPU: burn-nn's affine `GroupNorm` as one autodiff
//! operation with its own backward step, giving burn-nn's values and gradients bit for bit.
//!
//! burn-nn composes the layer from about ten tensor operations and autodiff adds some twenty
//! backward ones, each a full pass over the activations on one thread of burn-flex. Here each
//! image-group is one parallel task. The elementwise arithmetic is burn's own, operation for
//! operation and rounded after each one (so every value comes out the same), and every sum over
//! many values is burn-flex's own reduction run on the same terms (so it adds in the same
//! order). Training must keep burn-nn's rounding: the shipped weights were made with it and the
//! model recipe has to rebuild them (`group_norm` has the measurement of what a fused kernel
//! with its own rounding did to a rerun).
//!
//! The steps, as burn-nn and burn-autodiff 0.22.1 take them on `x` viewed as `[N, G, L]`
//! (`L` = the group's channels × pixels), with `m`, `s` and the sums per image-group:
//! - forward: `m = mean(x)`, `xc = x − m`, `v = mean(xc·xc)`, `ve = v + ε`, `s = √ve`,
//!   `y = (xc / s)·γ + β`;
//! - backward from `gy`: `gβ = Σ gy`, `gγ = Σ gy·(xc / s)` (over batch and pixels);
//!   `gxn = gy·γ`; `gs = Σ gxn·((−xc) / (s·s))`; `gv = gs·(ve^−½ / 2)`;
//!   `t = (1/L)·gv·xc`; `gxc = (gxn·(1/s) + t) + t`; `gm = Σ −gxc`; `gx = gxc + (1/L)·gm`.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata};
use burn::tensor::{Shape, TensorData};
use rayon::prelude::*;

use crate::fusion::ops::cpu::buffers::{contiguous, f32s, mapped_in_parts};
use crate::fusion::ops::group_norm::NormKernels;

fn tensor(values: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.to_vec()))
}

/// The geometry: batch, groups, values per image-group (`L`), channels per group, pixels
/// per channel.
#[derive(Debug, Clone)]
struct Groups {
    dims: Vec<usize>,
    batch: usize,
    groups: usize,
    per_group: usize,
    group_channels: usize,
    pixels: usize,
}

impl Groups {
    fn new(dims: Vec<usize>, groups: usize) -> Self {
        let (batch, channels) = (dims[0], dims[1]);
        let pixels: usize = dims[2..].iter().product();
        let group_channels = channels / groups;
        Self {
            batch,
            groups,
            per_group: group_channels * pixels,
            group_channels,
            pixels,
            dims,
        }
    }

    /// `x` viewed as `[N, G, L]`.
    fn grouped(&self) -> [usize; 3] {
        [self.batch, self.groups, self.per_group]
    }

    /// The channels of image-group `index`.
    fn channels(&self, index: usize) -> std::ops::Range<usize> {
        let first = (index % self.groups) * self.group_channels;
        first..first + self.group_channels
    }

    /// `1/L` as burn-autodiff's mean backward rounds it (an f64 scalar applied to f32 ones).
    fn mean_weight(&self) -> f32 {
        1.0f32 * (1.0f64 / self.per_group as f64) as f32
    }
}

/// `O` new buffers the size of `inputs`, each value `per_channel(group, channel)(inputs there)`:
/// `group` the image-group's index (`n·G + g`), `channel` the channel's index in `[C]`. Each
/// image-group is one parallel task; the buffers are written once, never zeroed first (on one
/// thread, zeroing cost as much as the arithmetic). `per_channel` takes the group's and the
/// channel's statistics out of their slices once per channel, so the loop over its pixels
/// holds only the arithmetic and vectorises ([`mapped_in_parts`]: the same operations lane by
/// lane, so the same bits).
fn map_per_group<const I: usize, const O: usize, F: Fn([f32; I]) -> [f32; O]>(
    shape: &Groups,
    inputs: [&[f32]; I],
    per_channel: impl Fn(usize, usize) -> F + Sync,
) -> [Vec<f32>; O] {
    let parts = [
        shape.batch * shape.groups,
        shape.group_channels,
        shape.pixels,
    ];
    mapped_in_parts(parts, inputs, |group, k| {
        per_channel(group, shape.channels(group).start + k)
    })
}

/// What the backward step needs from the forward one.
#[derive(Debug, Clone)]
struct Saved {
    shape: Groups,
    /// The input `x`, `[N, G, L]`: the passes recompute `x − m` from it (the same bits)
    /// rather than write and reread a centred copy.
    x: FlexTensor,
    /// `m`, `[N, G, 1]`.
    mean: FlexTensor,
    /// `s = √(v + ε)`, `[N, G, 1]`.
    deviation: FlexTensor,
    /// `v + ε`, `[N, G, 1]`.
    variance: FlexTensor,
    /// γ, `[C]`.
    gamma: FlexTensor,
}

/// The forward step: the normalised output and what the backward step needs.
fn forward(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    groups: usize,
    epsilon: f64,
) -> (FlexTensor, Saved) {
    let shape = Groups::new(x.shape().to_vec(), groups);
    let x = contiguous(x).reshape(Shape::from(shape.grouped().to_vec()));
    let (gamma, beta) = (contiguous(gamma), contiguous(beta));
    let mean = per_image_group(&x, &shape, true);

    let mean_values = f32s(&mean);
    let [squares] = map_per_group(&shape, [f32s(&x)], |group, _| {
        let m = mean_values[group];
        move |[v]: [f32; 1]| {
            let c = v - m;
            [c * c]
        }
    });
    let grouped = shape.grouped();
    let squares = tensor(squares, &grouped);
    let variance = per_image_group(&squares, &shape, true);
    let variance = Flex::float_add_scalar(variance, epsilon.into());
    let deviation = contiguous(Flex::float_sqrt(variance.clone()));

    let (s, gamma_values, beta_values) = (f32s(&deviation), f32s(&gamma), f32s(&beta));
    let [output] = map_per_group(&shape, [f32s(&x)], |group, channel| {
        let m = mean_values[group];
        let (s, gamma, beta) = (s[group], gamma_values[channel], beta_values[channel]);
        move |[v]: [f32; 1]| [((v - m) / s) * gamma + beta]
    });
    let output = tensor(output, &shape.dims);
    let saved = Saved {
        x,
        mean,
        deviation,
        variance: contiguous(variance),
        gamma,
        shape,
    };
    (output, saved)
}

/// `reduce(part)` of each part of `values` (`parts` views along dimension `dim`, one value
/// each) side by side, gathered into `shape`. burn-flex reduces the parts of a tensor one after
/// another on one thread, each independently of the others, with the same kernel it runs on a
/// view of that part alone: so the values are burn-flex's bits (tested).
fn reduced_per_part(
    values: &FlexTensor,
    dim: usize,
    shape: Vec<usize>,
    reduce: impl Fn(FlexTensor) -> FlexTensor + Sync,
) -> FlexTensor {
    let parts = values.shape()[dim];
    let reduced: Vec<f32> = (0..parts)
        .into_par_iter()
        .map(|part| {
            let value = contiguous(reduce(values.narrow(dim, part, 1)));
            f32s(&value).first().copied().unwrap_or(f32::NAN)
        })
        .collect();
    tensor(reduced, &shape)
}

/// The mean (`mean`) or sum over `L` of `[N, G, L]` values: burn-flex's `mean_dim` or
/// `sum_dim` over dimension 2, each image-group side by side.
fn per_image_group(values: &FlexTensor, shape: &Groups, mean: bool) -> FlexTensor {
    let rows = values.reshape(Shape::from(vec![
        shape.batch * shape.groups,
        shape.per_group,
    ]));
    let per_group = vec![shape.batch, shape.groups, 1];
    reduced_per_part(&rows, 0, per_group, |row| {
        if mean {
            Flex::float_mean_dim(row, 1)
        } else {
            Flex::float_sum_dim(row, 1)
        }
    })
}

/// Σ over batch and pixels of a `[N, C, …]` tensor, as autodiff reduces a broadcast `[C]`
/// parameter's gradient: burn-flex's sums over those dimensions in order, each channel side by
/// side.
fn per_channel_sum(values: &FlexTensor, shape: &Groups) -> FlexTensor {
    // The dimensions where `[1, C, 1, …]` is broadcast (autodiff's `broadcast_shape`).
    let dims: Vec<usize> = (0..shape.dims.len())
        .filter(|&d| d != 1 && shape.dims[d] != 1)
        .collect();
    reduced_per_part(values, 1, vec![shape.dims[1]], |channel| {
        match dims.as_slice() {
            [] => channel,
            dims => Flex::float_sum_dims(channel, dims),
        }
    })
}

/// The backward step: the gradients of `x`, γ and β from the output's gradient.
fn backward(output_grad: FlexTensor, saved: &Saved) -> [FlexTensor; 3] {
    let shape = &saved.shape;
    let grouped = shape.grouped();
    let output_grad = contiguous(output_grad);
    let gy = f32s(&output_grad);
    let (x, gamma) = (f32s(&saved.x), f32s(&saved.gamma));
    let (m, s) = (f32s(&saved.mean), f32s(&saved.deviation));
    let beta_grad = per_channel_sum(&output_grad, shape);

    // gγ's terms gy·xn; the normalised values' gradient gxn; gs's terms gxn·((−xc)/(s·s)).
    let s_squared = contiguous(Flex::float_powi_scalar(saved.deviation.clone(), 2.into()));
    let s2 = f32s(&s_squared);
    let [gamma_terms, s_terms] = map_per_group(shape, [gy, x], |group, channel| {
        let (m, s, s2, gamma) = (m[group], s[group], s2[group], gamma[channel]);
        // gy·xn; gxn = gy·γ, then gxn·((−xc)/(s·s)).
        move |[gy, v]: [f32; 2]| {
            let c = v - m;
            [gy * (c / s), (gy * gamma) * (-c / s2)]
        }
    });
    let gamma_grad = per_channel_sum(&tensor(gamma_terms, &shape.dims), shape);
    let s_grad = per_image_group(&tensor(s_terms, &grouped), shape, false);

    // Through √, + ε and the variance's mean.
    let sqrt_slope = Flex::float_div_scalar(
        Flex::float_powf_scalar(saved.variance.clone(), (-0.5).into()),
        2f32.into(),
    );
    let variance_grad = Flex::float_sum_dim(Flex::float_mul(s_grad, sqrt_slope), 2);
    let variance_grad = contiguous(variance_grad);
    let reciprocal = contiguous(Flex::float_recip(saved.deviation.clone()));
    let weight = shape.mean_weight();

    // gxc (the square's two gradients, one per factor, after the division's): negated for
    // the mean's gradient, then again (the same bits; cheaper than writing and rereading it)
    // for the input's.
    let (reciprocal, variance_grad) = (f32s(&reciprocal), f32s(&variance_grad));
    let centred_grad = |group: usize, channel: usize| {
        let m = m[group];
        let (variance_grad, reciprocal, gamma) =
            (variance_grad[group], reciprocal[group], gamma[channel]);
        move |gy: f32, v: f32| {
            let t = (weight * variance_grad) * (v - m);
            ((gy * gamma) * reciprocal + t) + t
        }
    };
    let [negated] = map_per_group(shape, [gy, x], |group, channel| {
        let grad = centred_grad(group, channel);
        move |[gy, v]: [f32; 2]| [-grad(gy, v)]
    });
    let mean_grad = per_image_group(&tensor(negated, &grouped), shape, false);
    let mean_grad = contiguous(Flex::float_sum_dim(mean_grad, 2));
    let mean_grad = f32s(&mean_grad);
    let [x_grad] = map_per_group(shape, [gy, x], |group, channel| {
        let (grad, mean_grad) = (centred_grad(group, channel), mean_grad[group]);
        move |[gy, v]: [f32; 2]| [grad(gy, v) + weight * mean_grad]
    });
    [tensor(x_grad, &shape.dims), gamma_grad, beta_grad]
}

impl NormKernels for Flex {
    fn group_norm_affine(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        groups: usize,
        epsilon: f64,
    ) -> FlexTensor {
        forward(x, gamma, beta, groups, epsilon).0
    }
}

/// The backward step of [`NormKernels::group_norm_affine`] under autodiff.
#[derive(Debug)]
struct GroupNormBackward;

impl Backward<Flex, 3> for GroupNormBackward {
    type State = Saved;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let output_grad = grads.consume::<Flex>(&ops.node);
        let [x_grad, gamma_grad, beta_grad] = backward(output_grad, &ops.state);
        let [node_x, node_gamma, node_beta] = ops.parents;
        for (node, grad) in [
            (node_x, x_grad),
            (node_gamma, gamma_grad),
            (node_beta, beta_grad),
        ] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

impl<C: CheckpointStrategy> NormKernels for Autodiff<Flex, C> {
    fn group_norm_affine(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        match GroupNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (output, saved) = forward(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    groups,
                    epsilon,
                );
                prep.finish(saved, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::group_norm_affine(
                x.into_primitive(),
                gamma.into_primitive(),
                beta.into_primitive(),
                groups,
                epsilon,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::fusion::ops::cpu::test_kit::differing_bits;
    use crate::fusion::ops::group_norm::group_norm;
    use crate::fusion::ops::host::values;
    use burn::module::Param;
    use burn::nn::GroupNormConfig;
    use burn::tensor::{Device, Distribution, Tensor};

    /// On the autodiff CPU device the operation gives burn-nn's output and the gradients of
    /// the input, γ and β bit for bit: the training shapes, batch 1 and odd sizes, one and
    /// several groups, a single pixel, an offset input (a mean far from zero).
    #[test]
    fn training_gives_burn_nns_values_and_gradients_bit_for_bit() {
        let device = Device::flex().autodiff();
        for (dims, groups, offset) in [
            ([4, 16, 96, 96], 8, 0.0),
            ([4, 32, 48, 48], 8, 0.3),
            ([4, 64, 24, 24], 8, -0.2),
            ([1, 16, 13, 7], 8, 2.0),
            ([3, 6, 5, 9], 3, -1.5),
            ([2, 4, 7, 5], 1, 0.0),
            ([2, 8, 1, 1], 4, 0.5),
            ([1, 5, 3, 4], 5, 0.1),
        ] {
            let what = format!("{dims:?} in {groups} groups");
            let random = |shape: Vec<usize>, low: f64, high: f64| {
                Tensor::<4>::random(shape, Distribution::Uniform(low, high), &device)
            };
            let channels = dims[1];
            let mut layer = GroupNormConfig::new(groups, channels).init(&device);
            let affine = |low, high| random(vec![1, 1, 1, channels], low, high).reshape([channels]);
            layer.gamma = Some(Param::from_tensor(affine(0.5, 1.5)));
            layer.beta = Some(Param::from_tensor(affine(-0.5, 0.5)));
            let x = random(dims.to_vec(), offset - 1.0, offset + 1.0).require_grad();
            let upstream = random(dims.to_vec(), -1.0, 1.0);

            let reference = layer.forward(x.clone());
            let ours = group_norm(&layer, x.clone());
            let (reference_values, our_values) = (values(reference.clone()), values(ours.clone()));
            assert_eq!(
                differing_bits(&our_values, &reference_values),
                0,
                "output, {what}"
            );

            let grads_reference = (reference * upstream.clone()).sum().backward();
            let grads_ours = (ours * upstream).sum().backward();
            let x_grad = |grads| values(x.grad(grads).expect("input gradient"));
            let gamma = layer.gamma.as_ref().expect("gamma").val();
            let beta = layer.beta.as_ref().expect("beta").val();
            let param_grad =
                |p: &Tensor<1>, grads| values(p.grad(grads).expect("parameter gradient"));
            for (name, ours, reference) in [
                ("input", x_grad(&grads_ours), x_grad(&grads_reference)),
                (
                    "gamma",
                    param_grad(&gamma, &grads_ours),
                    param_grad(&gamma, &grads_reference),
                ),
                (
                    "beta",
                    param_grad(&beta, &grads_ours),
                    param_grad(&beta, &grads_reference),
                ),
            ] {
                assert_eq!(
                    differing_bits(&ours, &reference),
                    0,
                    "{name} gradient, {what}"
                );
            }
        }
    }
}
