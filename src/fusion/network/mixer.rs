//! The Soft Gradient Mixer (MODEL.md): arbitrates between the spatial and the wavelet expert
//! by local edge strength, with continuous weights rather than a hard switch.
//!
//! `e = |Sobel(m)|` of the mean weighted feature `m: [N, 1, h, w]`;
//! `α = sigmoid(k · (e / mean(e) − τ))` with learnable `k` (init 5) and `τ` (init 1);
//! output `α · wavelet + (1 − α) · spatial`. Strong edges favour the wavelet expert.

use burn::module::{Module, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor, TensorData};

use crate::fusion::ops::slicing::slice;

/// Learnable sharpness `k` and threshold `τ` of the mixer.
#[derive(Module, Debug)]
pub struct SoftGradientMixer {
    pub sharpness: Param<Tensor<1>>,
    pub threshold: Param<Tensor<1>>,
}

impl SoftGradientMixer {
    /// A mixer with `k = 5`, `τ = 1`.
    pub fn new(device: &Device) -> Self {
        let scalar =
            |v: f32| Param::from_tensor(Tensor::from_data(TensorData::new(vec![v], [1]), device));
        Self {
            sharpness: scalar(5.0),
            threshold: scalar(1.0),
        }
    }

    /// The mixing weights `α: [N, 1, h, w]` in [0, 1] for guide image `m: [N, 1, h, w]`.
    pub fn weights(&self, guide: Tensor<4>) -> Tensor<4> {
        let edges = sobel_magnitude(guide);
        let mean = edges.clone().mean_dim(2).mean_dim(3) + 1e-6;
        let k = self.sharpness.val().reshape([1, 1, 1, 1]);
        let tau = self.threshold.val().reshape([1, 1, 1, 1]);
        sigmoid((edges / mean - tau) * k)
    }

    /// Mixes the experts' outputs (`[N, C, h, w]` each) by `α` (broadcast over channels).
    pub fn mix(alpha: Tensor<4>, wavelet: Tensor<4>, spatial: Tensor<4>) -> Tensor<4> {
        spatial.clone() + (wavelet - spatial) * alpha
    }
}

/// `sqrt(gx² + gy²)` of a one-channel image with 3×3 Sobel filters, zero padding.
pub fn sobel_magnitude(image: Tensor<4>) -> Tensor<4> {
    // Shifted slices of the zero-padded image rather than `conv2d` with fixed kernels: the
    // same numbers on the CPU, but in training on burn-wgpu (lavapipe) the conv2d path gave
    // an L_grad 50× too large and NaN gradients after one step; the slices do not.
    let [n, c, h, w] = image.dims();
    let padded = image.pad((1, 1, 1, 1), PadMode::Constant(0.0));
    let at = |dy: usize, dx: usize| slice(padded.clone(), [0..n, 0..c, dy..dy + h, dx..dx + w]);
    let dx = at(0, 2) - at(0, 0) + (at(1, 2) - at(1, 0)) * 2.0 + at(2, 2) - at(2, 0);
    let dy = at(2, 0) - at(0, 0) + (at(2, 1) - at(0, 1)) * 2.0 + at(2, 2) - at(0, 2);
    (dx.clone() * dx + dy.clone() * dy + 1e-12).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn weights_lie_in_the_unit_interval_and_follow_edges() {
        let device = Device::flex();
        let mixer = SoftGradientMixer::new(&device);
        // A vertical step edge: strong gradient in the middle columns only.
        let mut values = vec![0.0f32; 8 * 8];
        for row in 0..8 {
            for col in 4..8 {
                values[row * 8 + col] = 1.0;
            }
        }
        let guide = Tensor::<4>::from_data(TensorData::new(values, [1, 1, 8, 8]), &device);
        let alpha = mixer.weights(guide);
        let data: Vec<f32> = alpha.into_data().try_to_vec::<f32>().expect("f32 data");
        assert!(data.iter().all(|a| (0.0..=1.0).contains(a)));
        let at = |row: usize, col: usize| data[row * 8 + col];
        assert!(
            at(4, 4) > 0.9 && at(4, 1) < 0.1,
            "edge {} flat {}",
            at(4, 4),
            at(4, 1)
        );
        let random = Tensor::<4>::random([2, 1, 16, 12], Distribution::Normal(0.0, 1.0), &device);
        let data: Vec<f32> = mixer
            .weights(random)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 data");
        assert!(data.iter().all(|a| (0.0..=1.0).contains(a)));
    }

    #[test]
    fn mixing_is_linear_between_the_experts() {
        let device = Device::flex();
        let ones = Tensor::<4>::ones([1, 2, 2, 2], &device);
        let alpha = Tensor::<4>::full([1, 1, 2, 2], 0.25, &device);
        let mixed = SoftGradientMixer::mix(alpha, ones.clone() * 4.0, ones);
        let data: Vec<f32> = mixed.into_data().try_to_vec::<f32>().expect("f32 data");
        assert!(data.iter().all(|v| (v - 1.75).abs() < 1e-6));
    }
}
