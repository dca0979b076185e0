//! The dense reliability head (MODEL.md): per pixel and per scale, how much to trust each
//! modality. Its maps are shown to the user.
//!
//! `[f_A, f_B, |f_A − f_B|]: [N, 3C, h, w]` → conv3×3 → ReLU → conv1×1 → 2 logits → softmax
//! over the two modalities → `w_A`, `w_B: [N, 1, h, w]` with `w_A + w_B = 1`. The last
//! convolution starts at zero, so an untrained head trusts both modalities equally (0.5).

use crate::fusion::ops::activation::relu;
use crate::fusion::ops::conv::conv2d;
use crate::fusion::ops::detail_stack::absolute_difference;
use crate::fusion::ops::slicing::slice;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

/// Reliability head for features of `channels` channels.
#[derive(Module, Debug)]
pub struct ReliabilityHead {
    hidden: Conv2d,
    logits: Conv2d,
}

impl ReliabilityHead {
    pub fn new(channels: usize, device: &Device) -> Self {
        let hidden_channels = (channels / 2).max(4);
        Self {
            hidden: Conv2dConfig::new([3 * channels, hidden_channels], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device),
            logits: Conv2dConfig::new([hidden_channels, 2], [1, 1])
                .with_initializer(Initializer::Zeros)
                .init(device),
        }
    }

    /// `(w_A, w_B)`, each `[N, 1, h, w]`, summing to 1 per pixel.
    pub fn forward(&self, a: Tensor<4>, b: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let difference = absolute_difference(a.clone(), b.clone());
        let x = Tensor::cat(vec![a, b, difference], 1);
        let weights = softmax(conv2d(&self.logits, relu(conv2d(&self.hidden, x))), 1);
        let [n, _, h, w] = weights.dims();
        let w_a = slice(weights.clone(), [0..n, 0..1, 0..h, 0..w]);
        let w_b = slice(weights, [0..n, 1..2, 0..h, 0..w]);
        (w_a, w_b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn maps_sum_to_one_and_start_at_one_half() {
        let device = Device::flex();
        let head = ReliabilityHead::new(8, &device);
        let a = Tensor::<4>::random([2, 8, 6, 5], Distribution::Normal(0.0, 1.0), &device);
        let b = Tensor::<4>::random([2, 8, 6, 5], Distribution::Normal(0.0, 1.0), &device);
        let (w_a, w_b) = head.forward(a, b);
        assert_eq!(w_a.dims(), [2, 1, 6, 5]);
        let sum: Vec<f32> = (w_a.clone() + w_b)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        assert!(sum.iter().all(|s| (s - 1.0).abs() < 1e-5));
        let w_a: Vec<f32> = w_a.into_data().try_to_vec::<f32>().expect("f32");
        assert!(
            w_a.iter().all(|w| (w - 0.5).abs() < 1e-6),
            "zero-initialised head"
        );
    }
}
