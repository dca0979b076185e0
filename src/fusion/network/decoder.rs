//! The residual-to-average decoder (MODEL.md): a U-Net path from the deepest fused features
//! up to full size predicts the residual, and the fused image is
//! `F = clamp((A + B) / 2 + R, 0, 1)` with
//!
//! `R = g_A·A + g_B·B + h + γ·(w_A − ½)·(D_A − D_B)`.
//!
//! - `g_A`, `g_B`, `h`: one gain of A, one of B and one offset *per image* (each `β·tanh(·)` of
//!   the spatial mean of the head's output): each pair's mix and contrast, chosen by the
//!   network from what the reliability maps and experts see. The last convolution starts at
//!   zero, so an untrained decoder gives R = 0 and F is exactly the average.
//! - The local term (issue 16): `D = X − blur(X)` is each source's fine detail (a 5×5
//!   binomial blur, edges replicated) and `w_A` the finest reliability map of A, at full
//!   resolution. Where `w_A = ½` the average keeps half of each source's detail; where the
//!   network trusts A more it takes more of A's detail and less of B's. `γ` (the *detail
//!   gain*) is a fixed number of each trained model, stored with its weights and never
//!   trained: the training loss's 64-bin soft MI cannot see what local variation costs the
//!   protocol's 256-bin MI, so the amount of local detail is chosen on the validation split
//!   (ARCHITECTURE.md, "Model choices made by measurement").
//!
//! History, measured on the AANLIB test pairs (issue 4 notes): a free per-pixel R trained
//! with the composite loss lost 0.4–1.0 bit of MI on every task, and smooth local fields (two
//! 9×9 or two 25×25 box filters) still lost 0.2–0.6 bit and up to 0.006 of CC; the per-image
//! gains alone kept MI but made F a global function of A and B (issue 16).

use crate::fusion::ops::activation::relu;
use crate::fusion::ops::conv::conv2d;
use crate::fusion::ops::host::first_value;
use crate::fusion::ops::slicing::slice;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions, PadMode};
use burn::tensor::{Device, Tensor, TensorData};

/// Largest gain or offset the decoder can apply (β).
pub const RESIDUAL_SCALE: f32 = 0.5;

/// The detail gain γ of a new decoder (a trained model carries its own).
pub const DEFAULT_DETAIL_GAIN: f32 = 0.1;

/// The decoder's per-image correction: the gain of A, the gain of B and the offset, each
/// `[N, 1, 1, 1]` (broadcast over the image).
#[derive(Debug, Clone)]
pub struct Correction {
    pub gain_a: Tensor<4>,
    pub gain_b: Tensor<4>,
    pub offset: Tensor<4>,
}

impl Correction {
    /// The same gains and offset (`[g_A, g_B, h]`) for each of `n` images: a volume's slices
    /// fused with the gains of the whole volume, so that they do not change from slice to
    /// slice with each slice's content.
    pub fn constant(values: [f32; 3], n: usize, device: &Device) -> Self {
        let field = |v: f32| Tensor::<4>::full([n, 1, 1, 1], v, device);
        Self {
            gain_a: field(values[0]),
            gain_b: field(values[1]),
            offset: field(values[2]),
        }
    }
}

fn conv3(input: usize, output: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([input, output], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// One upward stage: ×2 upsampling, concatenation with the skip, two 3×3 convs.
#[derive(Module, Debug)]
pub struct UpStage {
    conv1: Conv2d,
    conv2: Conv2d,
}

/// The decoder for encoder channels `channels` (finest first).
#[derive(Module, Debug)]
pub struct Decoder {
    stages: Vec<UpStage>,
    head: Conv2d,
    /// γ of the local term, `[1]`; read detached, so training never changes it.
    detail_gain: Param<Tensor<1>>,
}

impl Decoder {
    pub fn new(channels: &[usize], device: &Device) -> Self {
        // Stage s brings scale s+1 (channels[s+1]) up to scale s and merges its skip.
        let stages = (0..channels.len() - 1)
            .rev()
            .map(|s| UpStage {
                conv1: conv3(channels[s + 1] + channels[s], channels[s], device),
                conv2: conv3(channels[s], channels[s], device),
            })
            .collect();
        Self {
            stages,
            head: Conv2dConfig::new([channels[0], 3], [1, 1])
                .with_initializer(Initializer::Zeros)
                .init(device),
            detail_gain: gain_param(DEFAULT_DETAIL_GAIN, device),
        }
    }

    /// γ of the local term.
    pub fn detail_gain(&self) -> f32 {
        first_value(self.detail_gain.val())
    }

    /// Sets γ (a choice made on the validation split before training).
    pub fn set_detail_gain(&mut self, gain: f32) {
        let device = self.detail_gain.val().device();
        self.detail_gain = gain_param(gain, &device);
    }

    /// The local term `γ·(w_A − ½)·(D_A − D_B)` for sources `a`, `b` and the finest
    /// reliability map of A, all `[N, 1, H, W]`.
    pub fn local_detail(&self, a: Tensor<4>, b: Tensor<4>, reliability_a: Tensor<4>) -> Tensor<4> {
        let gain = self.detail_gain.val().detach().reshape([1, 1, 1, 1]);
        (reliability_a - 0.5) * (detail(a) - detail(b)) * gain
    }

    /// The upward path: the decoder's features at the finest (padded input) size,
    /// `[N, C0, H, W]`, from fused features (finest first).
    pub fn features(&self, fused: &[Tensor<4>]) -> Tensor<4> {
        let mut x = fused[fused.len() - 1].clone();
        for (stage, skip) in self.stages.iter().zip(fused.iter().rev().skip(1)) {
            let [_, _, h, w] = skip.dims();
            let up = interpolate(
                x,
                InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h, w]),
            );
            x = Tensor::cat(vec![up, skip.clone()], 1);
            x = relu(conv2d(&stage.conv1, x));
            x = relu(conv2d(&stage.conv2, x));
        }
        x
    }

    /// The per-image gains and offset from the decoder's finest features: the spatial mean
    /// of the head's output, each through `β·tanh`.
    pub fn correction_from(&self, features: Tensor<4>) -> Correction {
        let smooth = conv2d(&self.head, features).mean_dim(3).mean_dim(2).tanh() * RESIDUAL_SCALE;
        let [n, _, _, _] = smooth.dims();
        let field = |c: usize| slice(smooth.clone(), [0..n, c..c + 1, 0..1, 0..1]);
        Correction {
            gain_a: field(0),
            gain_b: field(1),
            offset: field(2),
        }
    }
}

fn gain_param(gain: f32, device: &Device) -> Param<Tensor<1>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(vec![gain], [1]), device))
}

/// `x − blur(x)` of `[N, 1, H, W]` images: the fine detail that a 5×5 binomial blur
/// (σ = 1 pixel, edges replicated) removes.
pub fn detail(x: Tensor<4>) -> Tensor<4> {
    x.clone() - binomial_blur(x, 1)
}

/// `passes` 5×5 binomial blurs (`[1 4 6 4 1]/16` along each axis) with edge replication;
/// each pass adds a variance of 1 pixel². Shifted slices rather than a fixed-kernel
/// convolution, for the reason `mixer::sobel_magnitude` gives.
pub fn binomial_blur(x: Tensor<4>, passes: usize) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let mut x = x;
    for _ in 0..passes {
        let padded = x.pad((2, 2, 0, 0), PadMode::Edge);
        let at = |dx: usize| slice(padded.clone(), [0..n, 0..c, 0..h, dx..dx + w]);
        let rows = (at(0) + at(4) + (at(1) + at(3)) * 4.0 + at(2) * 6.0) / 16.0;
        let padded = rows.pad((0, 0, 2, 2), PadMode::Edge);
        let at = |dy: usize| slice(padded.clone(), [0..n, 0..c, dy..dy + h, 0..w]);
        x = (at(0) + at(4) + (at(1) + at(3)) * 4.0 + at(2) * 6.0) / 16.0;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::ops::host::values;
    use burn::tensor::Distribution;

    #[test]
    fn the_blur_keeps_constants_and_ramps_and_the_detail_of_a_spike_sums_to_zero() {
        let device = Device::flex();
        let constant = Tensor::<4>::full([1, 1, 9, 7], 0.3, &device);
        assert!(values(detail(constant)).iter().all(|v| v.abs() < 1e-6));
        let ramp: Vec<f32> = (0..63).map(|i| (i % 7) as f32 * 0.1).collect();
        let ramp = Tensor::<4>::from_data(TensorData::new(ramp, [1, 1, 9, 7]), &device);
        // A linear ramp is its own blur away from the replicated edges.
        let d = values(detail(ramp));
        for y in 0..9 {
            for x in 2..5 {
                assert!(d[y * 7 + x].abs() < 1e-6, "{x},{y}: {}", d[y * 7 + x]);
            }
        }
        let mut spike = vec![0.0; 81];
        spike[40] = 1.0;
        let spike = Tensor::<4>::from_data(TensorData::new(spike, [1, 1, 9, 9]), &device);
        let d = values(detail(spike));
        assert!((d[40] - (1.0 - 36.0 / 256.0)).abs() < 1e-6);
        assert!(d.iter().sum::<f32>().abs() < 1e-5);
    }

    #[test]
    fn the_local_term_vanishes_at_one_half_and_follows_the_trusted_source() {
        let device = Device::flex();
        let mut decoder = Decoder::new(&[16, 32, 64], &device);
        decoder.set_detail_gain(0.25);
        assert_eq!(decoder.detail_gain(), 0.25);
        let a = Tensor::<4>::random([1, 1, 16, 16], Distribution::Uniform(0.0, 1.0), &device);
        let b = Tensor::<4>::random([1, 1, 16, 16], Distribution::Uniform(0.0, 1.0), &device);
        let half = Tensor::<4>::full([1, 1, 16, 16], 0.5, &device);
        let none = decoder.local_detail(a.clone(), b.clone(), half);
        assert!(values(none).iter().all(|v| *v == 0.0));
        // w_A = 1: the average plus the term keeps ½ + γ/2 of A's detail, ½ − γ/2 of B's.
        let one = Tensor::<4>::full([1, 1, 16, 16], 1.0, &device);
        let term = values(decoder.local_detail(a.clone(), b.clone(), one));
        let expected = values((detail(a) - detail(b)) * 0.125);
        for (t, e) in term.iter().zip(&expected) {
            assert!((t - e).abs() < 1e-6);
        }
    }
}
