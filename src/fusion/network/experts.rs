//! W-DUALMINE's two experts per scale (MODEL.md), each fusing the reliability-weighted
//! features `w_A·f_A`, `w_B·f_B` (`[N, C, h, w]`, h and w even) into `[N, C, h, w]`:
//! - the spatial expert: 1×1 conv on `[a, b]`, a global-context block (attention pooling →
//!   1×1 conv → LayerNorm → ReLU → 1×1 conv, broadcast-added), then a 3×3 conv;
//! - the wavelet expert: one-level Haar DWT of `a` and `b`; LL bands fused by a 1×1 conv, each
//!   detail band (LH, HL, HH) by a 3×3 conv on `[H_A, H_B, |H_A| − |H_B|]`; inverse DWT.

use crate::fusion::ops::activation::relu;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, PaddingConfig2d};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use crate::fusion::ops::conv::conv2d;
use crate::fusion::ops::detail_stack::detail_stack;
use crate::fusion::ops::device::is_cpu;
use crate::fusion::ops::haar::{HaarBands, dwt, idwt};

fn conv(input: usize, output: usize, kernel: usize, device: &Device) -> Conv2d {
    let pad = kernel / 2;
    Conv2dConfig::new([input, output], [kernel, kernel])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .init(device)
}

/// The global-context block: a whole-image summary added back to every pixel.
#[derive(Module, Debug)]
pub struct GlobalContext {
    attention: Conv2d,
    squeeze: Conv2d,
    norm: LayerNorm,
    expand: Conv2d,
}

impl GlobalContext {
    pub fn new(channels: usize, device: &Device) -> Self {
        let hidden = (channels / 4).max(4);
        Self {
            attention: conv(channels, 1, 1, device),
            squeeze: conv(channels, hidden, 1, device),
            norm: LayerNormConfig::new(hidden).init(device),
            expand: conv(hidden, channels, 1, device),
        }
    }

    /// `[N, C, h, w]` → `[N, C, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let context = attention_pool(conv2d(&self.attention, x.clone()), x.clone());
        let n = context.dims()[0];
        let squeezed = conv2d(&self.squeeze, context);
        let hidden = squeezed.dims()[1];
        let normed = self
            .norm
            .forward(squeezed.reshape([n, hidden]))
            .reshape([n, hidden, 1, 1]);
        x + conv2d(&self.expand, relu(normed))
    }
}

/// Attention pooling: the softmax of `logits` `[N, 1, h, w]` over the pixels weighting a sum of
/// `x`'s features `[N, C, h, w]`, giving `[N, C, 1, 1]`. On the CPU one softmax over the h·w
/// pixels (the rounding the shipped weights were trained with); elsewhere the maximum and the
/// sums taken one axis at a time — burn-wgpu's one-pass reduction of more than 65,536 values
/// comes back wrong (`ops::group_norm::group_norm_by_axes`), and a 512² slice's finest scale
/// has 262,144 pixels.
fn attention_pool(logits: Tensor<4>, x: Tensor<4>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    if is_cpu(&x.device()) {
        let weights = softmax(logits.reshape([n, 1, h * w]), 2);
        return (x.reshape([n, c, h * w]) * weights)
            .sum_dim(2)
            .reshape([n, c, 1, 1]);
    }
    let largest = logits.clone().max_dim(3).max_dim(2);
    let exponentials = (logits - largest).exp();
    let weights = exponentials.clone() / exponentials.sum_dim(3).sum_dim(2);
    (x * weights).sum_dim(3).sum_dim(2)
}

/// The spatial (global-context) expert.
#[derive(Module, Debug)]
pub struct SpatialExpert {
    merge: Conv2d,
    context: GlobalContext,
    out: Conv2d,
}

impl SpatialExpert {
    pub fn new(channels: usize, device: &Device) -> Self {
        Self {
            merge: conv(2 * channels, channels, 1, device),
            context: GlobalContext::new(channels, device),
            out: conv(channels, channels, 3, device),
        }
    }

    pub fn forward(&self, a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
        let merged = conv2d(&self.merge, Tensor::cat(vec![a, b], 1));
        conv2d(&self.out, self.context.forward(merged))
    }
}

/// The wavelet-domain (frequency) expert.
#[derive(Module, Debug)]
pub struct WaveletExpert {
    low: Conv2d,
    details: Vec<Conv2d>,
}

impl WaveletExpert {
    pub fn new(channels: usize, device: &Device) -> Self {
        Self {
            low: conv(2 * channels, channels, 1, device),
            details: (0..3)
                .map(|_| conv(3 * channels, channels, 3, device))
                .collect(),
        }
    }

    pub fn forward(&self, a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
        let (bands_a, bands_b) = (dwt(a), dwt(b));
        let detail = |conv: &Conv2d, x: Tensor<4>, y: Tensor<4>| conv2d(conv, detail_stack(x, y));
        idwt(HaarBands {
            ll: conv2d(&self.low, Tensor::cat(vec![bands_a.ll, bands_b.ll], 1)),
            lh: detail(&self.details[0], bands_a.lh, bands_b.lh),
            hl: detail(&self.details[1], bands_a.hl, bands_b.hl),
            hh: detail(&self.details[2], bands_a.hh, bands_b.hh),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn experts_keep_the_feature_shape() {
        let device = Device::flex();
        let a = Tensor::<4>::random([2, 8, 12, 10], Distribution::Normal(0.0, 1.0), &device);
        let b = Tensor::<4>::random([2, 8, 12, 10], Distribution::Normal(0.0, 1.0), &device);
        let spatial = SpatialExpert::new(8, &device).forward(a.clone(), b.clone());
        let wavelet = WaveletExpert::new(8, &device).forward(a, b);
        assert_eq!(spatial.dims(), [2, 8, 12, 10]);
        assert_eq!(wavelet.dims(), [2, 8, 12, 10]);
        let finite = |t: Tensor<4>| -> bool {
            let v: Vec<f32> = t.into_data().try_to_vec::<f32>().expect("f32");
            v.iter().all(|x| x.is_finite())
        };
        assert!(finite(spatial) && finite(wavelet));
    }
}
