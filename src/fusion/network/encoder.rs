//! The shared (Siamese) multi-scale encoder of W-DUALMINE (MODEL.md): a 3×3 stem, then per
//! scale two residual blocks, with a stride-2 3×3 convolution between scales. Both
//! modalities pass through the same weights.
//!
//! `[N, 1, H, W]` → one feature map per scale `s`: `[N, channels[s], H / 2^s, W / 2^s]`
//! (H and W divisible by 2^(S−1)). Config `tiny`: 16/32/64; `base`: 32/64/128/256.

use crate::fusion::ops::activation::relu;
use crate::fusion::ops::conv::conv2d;
use crate::fusion::ops::group_norm::group_norm;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

/// A 3×3 convolution keeping the size (or halving it with `stride` 2).
fn conv3x3(input: usize, output: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([input, output], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// Group normalisation with up to 8 groups (batch-size independent, so one slice fuses the
/// same alone or in a batch).
fn norm(channels: usize, device: &Device) -> GroupNorm {
    let groups = (1..=8)
        .rev()
        .find(|g| channels.is_multiple_of(*g))
        .unwrap_or(1);
    GroupNormConfig::new(groups, channels).init(device)
}

/// conv3×3 – norm – ReLU – conv3×3 – norm, plus the input, then ReLU.
#[derive(Module, Debug)]
pub struct ResBlock {
    conv1: Conv2d,
    norm1: GroupNorm,
    conv2: Conv2d,
    norm2: GroupNorm,
}

impl ResBlock {
    pub fn new(channels: usize, device: &Device) -> Self {
        Self {
            conv1: conv3x3(channels, channels, 1, device),
            norm1: norm(channels, device),
            conv2: conv3x3(channels, channels, 1, device),
            norm2: norm(channels, device),
        }
    }

    /// `[N, C, h, w]` → `[N, C, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = relu(group_norm(&self.norm1, conv2d(&self.conv1, x.clone())));
        let y = group_norm(&self.norm2, conv2d(&self.conv2, y));
        relu(y + x)
    }
}

/// One scale: an optional stride-2 entry convolution, then two residual blocks.
#[derive(Module, Debug)]
pub struct EncoderScale {
    down: Option<Conv2d>,
    blocks: Vec<ResBlock>,
}

/// The shared encoder.
#[derive(Module, Debug)]
pub struct Encoder {
    stem: Conv2d,
    scales: Vec<EncoderScale>,
}

impl Encoder {
    /// An encoder with `channels[s]` channels at scale `s`.
    pub fn new(channels: &[usize], device: &Device) -> Self {
        let scales = channels
            .iter()
            .enumerate()
            .map(|(s, &c)| EncoderScale {
                down: (s > 0).then(|| conv3x3(channels[s - 1], c, 2, device)),
                blocks: vec![ResBlock::new(c, device), ResBlock::new(c, device)],
            })
            .collect();
        Self {
            stem: conv3x3(1, channels[0], 1, device),
            scales,
        }
    }

    /// Output channels per scale (finest first).
    pub fn channels(&self) -> Vec<usize> {
        let mut channels = vec![self.stem.weight.val().dims()[0]];
        for scale in self.scales.iter().skip(1) {
            if let Some(down) = &scale.down {
                channels.push(down.weight.val().dims()[0]);
            }
        }
        channels
    }

    /// Features at every scale, finest first.
    pub fn forward(&self, image: Tensor<4>) -> Vec<Tensor<4>> {
        let mut x = conv2d(&self.stem, image);
        let mut features = Vec::with_capacity(self.scales.len());
        for scale in &self.scales {
            if let Some(down) = &scale.down {
                x = conv2d(down, x);
            }
            for block in &scale.blocks {
                x = block.forward(x);
            }
            features.push(x.clone());
        }
        features
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn tiny_encoder_halves_the_size_per_scale() {
        let device = Device::flex();
        let encoder = Encoder::new(&[16, 32, 64], &device);
        let image = Tensor::<4>::random([2, 1, 32, 24], Distribution::Uniform(0.0, 1.0), &device);
        let dims: Vec<[usize; 4]> = encoder.forward(image).iter().map(|f| f.dims()).collect();
        assert_eq!(dims, vec![[2, 16, 32, 24], [2, 32, 16, 12], [2, 64, 8, 6]]);
    }
}
