//! The residual-to-average decoder (MODEL.md): a U-Net path from the deepest fused features
//! up to full size predicts a residual `R = β · tanh(·)`; the fused image is
//! `F = clamp((A + B) / 2 + R, 0, 1)`. The last convolution starts at zero, so an untrained
//! decoder gives R = 0 and F is exactly the average.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};

/// Largest residual the decoder can add (β).
pub const RESIDUAL_SCALE: f32 = 0.5;

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
            head: Conv2dConfig::new([channels[0], 1], [1, 1])
                .with_initializer(Initializer::Zeros)
                .init(device),
        }
    }

    /// The residual `R: [N, 1, H, W]` from fused features (finest first).
    pub fn residual(&self, fused: &[Tensor<4>]) -> Tensor<4> {
        let mut x = fused[fused.len() - 1].clone();
        for (stage, skip) in self.stages.iter().zip(fused.iter().rev().skip(1)) {
            let [_, _, h, w] = skip.dims();
            let up = interpolate(
                x,
                InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h, w]),
            );
            x = Tensor::cat(vec![up, skip.clone()], 1);
            x = relu(stage.conv1.forward(x));
            x = relu(stage.conv2.forward(x));
        }
        self.head.forward(x).tanh() * RESIDUAL_SCALE
    }
}
