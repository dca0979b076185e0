//! Group normalisation (the encoder's `GroupNorm` layers) on the CPU. For inference: one
//! fused kernel — each image-group's statistics, then normalisation and affine in one pass —
//! where burn-nn composes about ten tensor operations, each a full pass over the data. For
//! training: the [`NormKernels`] operation (implemented in `training::group_norm`), burn-nn's
//! values and gradients bit for bit.
//!
//! On the GPU the same arithmetic as burn-nn's layer, its reductions taken one axis at a time
//! ([`group_norm_by_axes`]: burn-wgpu's one-pass reduction of a long group is wrong); for other
//! types burn-nn's own layer runs. Training must keep
//! burn-nn's rounding: a fused kernel in training with its own rounding (tried, with its own
//! backward, 8 % faster per step) moved a from-scratch rerun of the model recipe past its
//! reproducibility bounds (CT–MRI test MI +0.057, SPECT–MRI SSIM +0.023), and the shipped
//! weights must be rebuildable by the recipe.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::nn::GroupNorm;
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use super::device::{is_cpu_training, is_plain_cpu};

/// The affine group normalisation as one backend operation.
#[backend_extension(Flex, Autodiff)]
pub trait NormKernels: Backend {
    /// burn-nn's `GroupNorm` of `x` `[N, C, …]` (f32) in `groups` groups with `gamma` and
    /// `beta` `[C]`.
    fn group_norm_affine(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
    ) -> FloatTensor<Self>;
}

/// `layer`'s group normalisation of `x` through [`NormKernels`]: for the CPU backend (with or
/// without autodiff) and f32 values only; the caller checks both.
pub fn group_norm_affine<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    groups: usize,
    epsilon: f64,
) -> Tensor<D> {
    let output = <Dispatch as NormKernels>::group_norm_affine(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        groups,
        epsilon,
    );
    Tensor::from_dispatch(output)
}

/// `layer` applied to `x` `[N, C, …]` (f32, the layer affine, `groups` dividing the
/// channels): on the CPU backend the fused kernel without autodiff (burn-nn's values within
/// f32 rounding, tested) and `training::group_norm`'s operation under autodiff (burn-nn's
/// values and gradients bit for bit, tested); elsewhere (the GPU) [`group_norm_by_axes`]; for
/// other types or an unaffine layer burn-nn's layer.
pub fn group_norm<const D: usize>(layer: &GroupNorm, x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    let dims = x.dims();
    let covered = D >= 3
        && x.dtype() == DType::F32
        && dims.iter().all(|&d| d > 0)
        && layer.num_groups > 0
        && dims[1].is_multiple_of(layer.num_groups);
    let (Some(gamma), Some(beta), true) = (&layer.gamma, &layer.beta, covered) else {
        return layer.forward(x);
    };
    if is_cpu_training(&device) {
        let (gamma, beta) = (gamma.val(), beta.val());
        if gamma.dtype() == DType::F32 && beta.dtype() == DType::F32 {
            return group_norm_affine(x, gamma, beta, layer.num_groups, layer.epsilon);
        }
    }
    if !is_plain_cpu(&device) {
        return group_norm_by_axes(x, gamma.val(), beta.val(), layer.num_groups, layer.epsilon);
    }
    let (x, gamma, beta) = (
        x.into_data(),
        gamma.val().into_data(),
        beta.val().into_data(),
    );
    let normalised = match (
        x.as_slice::<f32>(),
        gamma.as_slice::<f32>(),
        beta.as_slice::<f32>(),
    ) {
        (Ok(xs), Ok(gs), Ok(bs)) if gs.len() == dims[1] && bs.len() == dims[1] => {
            let grouped = [dims[0], dims[1], dims[2..].iter().product()];
            Some(forward_cpu(
                grouped,
                layer.num_groups,
                xs,
                gs,
                bs,
                layer.epsilon,
            ))
        }
        _ => None,
    };
    match normalised {
        Some(values) => Tensor::from_data(TensorData::new(values, dims), &device),
        None => layer.forward(Tensor::from_data(x, &device)),
    }
}

/// burn-nn's affine group normalisation (the same two passes: the mean, then the mean square
/// of the centred values) with each group's statistics reduced one axis at a time — the last
/// axes, the first spatial axis, the group's channels — instead of in one pass over the group.
/// On burn-wgpu 0.22 one reduction over more than 65,536 values comes back wrong (Mesa
/// lavapipe: a 262,144-value row's mean read 0, one of 131,072 was off in the fourth digit),
/// and the encoder's finest scale of a 256² image groups 131,072 values (16 channels in 8
/// groups): burn-nn's layer was off by 1,263 there and moved the shipped networks' maps by up
/// to 0.32 (`tests/fusion_backends.rs`). Every axis of an image is far shorter.
fn group_norm_by_axes<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    groups: usize,
    epsilon: f64,
) -> Tensor<D> {
    let dims = x.dims();
    let (n, c, h) = (dims[0], dims[1], dims[2]);
    let w: usize = dims[3..].iter().product();
    let grouped = x.reshape([n, groups, c / groups, h, w]);
    // Each axis is of one length, so the mean of the means is the group's mean.
    let mean = |t: Tensor<5>| t.mean_dim(4).mean_dim(3).mean_dim(2);
    let centred = grouped.clone() - mean(grouped);
    let variance = mean(centred.clone().square());
    let normalised = (centred / variance.add_scalar(epsilon).sqrt()).reshape(dims);
    let mut per_channel = [1; D];
    per_channel[1] = c;
    normalised * gamma.reshape(per_channel) + beta.reshape(per_channel)
}

/// `Σ term(v)` over `values`: sixteen f32 lanes over blocks of 1024 values (so the compiler
/// vectorises it), the blocks added in f64 (so a million-value group keeps its precision).
fn blocked_sum(values: &[f32], term: impl Fn(f32) -> f32) -> f64 {
    const LANES: usize = 16;
    let mut total = 0.0f64;
    for block in values.chunks(1024) {
        let mut lanes = [0.0f32; LANES];
        let main = block.chunks_exact(LANES);
        let tail: f32 = main.remainder().iter().map(|&v| term(v)).sum();
        for chunk in main {
            for i in 0..LANES {
                lanes[i] += term(chunk[i]);
            }
        }
        total += f64::from(lanes.iter().sum::<f32>() + tail);
    }
    total
}

/// The group statistics of one image's group (a contiguous run of values): mean and
/// reciprocal standard deviation (two passes: the variance of the centred values).
fn statistics(values: &[f32], epsilon: f64) -> (f32, f32) {
    let count = values.len().max(1) as f64;
    let mean = (blocked_sum(values, |v| v) / count) as f32;
    let variance = blocked_sum(values, |v| (v - mean) * (v - mean)) / count;
    (mean, (1.0 / (variance + epsilon).sqrt()) as f32)
}

/// Group normalisation of `[N, C, rest]` values: each output is `x · a[c] + b[c]` with the
/// group's statistics folded into `a` and `b`.
fn forward_cpu(
    [_, c, rest]: [usize; 3],
    groups: usize,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
) -> Vec<f32> {
    let per_group = c / groups;
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(per_group * rest)
        .zip(x.par_chunks(per_group * rest))
        .enumerate()
        .for_each(|(index, (out, x))| {
            let (mean, rstd) = statistics(x, epsilon);
            let first = (index % groups) * per_group;
            for (k, (out, x)) in out.chunks_mut(rest).zip(x.chunks(rest)).enumerate() {
                let scale = gamma[first + k] * rstd;
                let shift = beta[first + k] - mean * scale;
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = v * scale + shift;
                }
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::ops::cpu::test_kit::assert_close;
    use crate::fusion::ops::host::values;
    use burn::nn::GroupNormConfig;
    use burn::tensor::{Device, Distribution};

    /// The fused kernel gives burn-nn's GroupNorm output on shapes with one, several and
    /// all-channel groups, batch 1–3, odd sizes, and an offset input (a mean far from zero);
    /// on an autodiff device (training) `group_norm` is burn-nn's layer, bit for bit.
    #[test]
    fn fused_kernel_matches_burn_nn_and_training_keeps_burn_nn() {
        for (batch, channels, groups, size, offset) in [
            (1, 16, 8, [7, 5], 0.0),
            (3, 6, 3, [4, 9], 3.0),
            (2, 4, 1, [5, 5], -2.0),
            (2, 8, 8, [3, 1], 0.5),
        ] {
            for device in [Device::flex(), Device::flex().autodiff()] {
                let random = |len: usize, low: f64, high: f64| {
                    Tensor::<1>::random([len], Distribution::Uniform(low, high), &device)
                };
                let mut layer = GroupNormConfig::new(groups, channels).init(&device);
                // Non-trivial gamma and beta.
                layer.gamma = Some(burn::module::Param::from_tensor(random(channels, 0.5, 1.5)));
                layer.beta = Some(burn::module::Param::from_tensor(random(
                    channels, -0.5, 0.5,
                )));
                let dims = [batch, channels, size[0], size[1]];
                let x = random(dims.iter().product(), offset - 1.0, offset + 1.0).reshape(dims);
                let reference = values(layer.forward(x.clone()));
                let ours = values(group_norm(&layer, x));
                let what = format!("{dims:?} in {groups} groups");
                if device.is_autodiff() {
                    assert_eq!(ours, reference, "training goes through burn-nn, {what}");
                } else {
                    assert_close(&format!("forward {what}"), ours, reference, 1e-5);
                }
            }
        }
    }
}
