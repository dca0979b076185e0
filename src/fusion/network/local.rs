//! The local part of the fused image, steered by the detail control `d` (issue 36; on the
//! `detail-input` branch, not trained yet). Built from what the network's maps say, so that
//! the overlays mean what they show:
//!
//! `L = Σ_s k_s·(w_s − ½)·(A − B)`  — the reliability map of A at scale s, brought to full
//! size, weighting the two images pixel by pixel (the part that makes F local);
//! `  + Σ_s c_s·(α_s·wav_s + (1 − α_s)·spa_s − (D_A,s + D_B,s)/2)` — each scale's band detail
//! of A and of B, the spatial expert's reliability-weighted mix `spa = w·D_A + (1 − w)·D_B`
//! and the wavelet expert's larger-magnitude pick `wav`, mixed by the mixer's α (the part
//! that keeps edges);
//! `  + β·tanh(r(x))` — a 3×3 head on the decoder's full-resolution features.
//!
//! The fused image is `F(d) = clamp(avg + g_A·A + g_B·B + h + γ-term + d·L, 0, 1)`. Every
//! weight starts at zero, so an untrained head leaves F as it was at every d. Measured
//! without training on the CT–MRI validation pairs (docs/design-history.md): the first sum
//! alone with the scale-1 map at 0.45 reaches TEA-Net's locality, CC, SSIM and Qabf, 0.4 bit
//! of MI short.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::{Device, Tensor, TensorData};

use super::decoder::binomial_blur;
use crate::fusion::ops::conv::conv2d;

/// Largest per-pixel value of the learned residual head (β).
pub const HEAD_SCALE: f32 = 0.25;

/// Binomial blur passes that end each scale's band (variance 1, 4, 16 pixels²).
const BAND_PASSES: [usize; 3] = [1, 3, 12];

/// The learned weights of the local part.
#[derive(Module, Debug)]
pub struct LocalHead {
    /// k_s: how far scale s's reliability map weights the two images.
    intensity: Param<Tensor<1>>,
    /// c_s: how much of scale s's α-mixed band detail is added.
    detail: Param<Tensor<1>>,
    /// r: the residual head on the decoder's finest features.
    head: Conv2d,
}

/// The network's maps at full size, finest scale first, that the local part reads.
pub struct FullMaps<'a> {
    pub reliability_a: &'a [Tensor<4>],
    pub alpha: &'a [Tensor<4>],
}

impl LocalHead {
    /// A head for `scales` scales on `channels` finest decoder channels, all weights zero.
    pub fn new(scales: usize, channels: usize, device: &Device) -> Self {
        let zeros = |n: usize| {
            Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![0.0f32; n], [n]),
                device,
            ))
        };
        Self {
            intensity: zeros(scales),
            detail: zeros(scales),
            head: Conv2dConfig::new([channels, 1], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_initializer(Initializer::Zeros)
                .init(device),
        }
    }

    /// `L` for sources `a`, `b` (`[N, 1, H, W]`), the maps at full size and the decoder's
    /// finest features `features` (`[N, C, H, W]`, cropped to the input).
    pub fn forward(
        &self,
        a: Tensor<4>,
        b: Tensor<4>,
        maps: FullMaps<'_>,
        features: Tensor<4>,
    ) -> Tensor<4> {
        let scales = maps.reliability_a.len().min(maps.alpha.len());
        let k = self.intensity.val();
        let c = self.detail.val();
        let weight = |t: &Tensor<1>, s: usize| t.clone().slice(s..s + 1).reshape([1, 1, 1, 1]);
        let difference = a.clone() - b.clone();
        let mut local = conv2d(&self.head, features).tanh() * HEAD_SCALE;
        let (mut coarse_a, mut coarse_b) = (a, b);
        for s in 0..scales {
            let w = maps.reliability_a[s].clone();
            let alpha = maps.alpha[s].clone();
            local = local + (w.clone() - 0.5) * difference.clone() * weight(&k, s);
            let passes = BAND_PASSES[s.min(BAND_PASSES.len() - 1)];
            let (next_a, next_b) = (
                binomial_blur(coarse_a.clone(), passes),
                binomial_blur(coarse_b.clone(), passes),
            );
            let (da, db) = (coarse_a - next_a.clone(), coarse_b - next_b.clone());
            let spatial = w.clone() * da.clone() + (w.neg() + 1.0) * db.clone();
            let larger = da.clone().abs().greater_equal(db.clone().abs());
            let wavelet = db.clone().mask_where(larger, da.clone());
            let mixed = alpha.clone() * wavelet + (alpha.neg() + 1.0) * spatial;
            local = local + (mixed - (da + db) * 0.5) * weight(&c, s);
            (coarse_a, coarse_b) = (next_a, next_b);
        }
        local
    }

    /// Sets k_s and c_s (a hand-set start before training, or an experiment).
    pub fn set_weights(&mut self, intensity: &[f32], detail: &[f32]) {
        let device = self.intensity.val().device();
        let param = |v: &[f32]| {
            Param::from_tensor(Tensor::from_data(
                TensorData::new(v.to_vec(), [v.len()]),
                &device,
            ))
        };
        self.intensity = param(intensity);
        self.detail = param(detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::ops::host::values;
    use burn::tensor::Distribution;

    fn inputs(device: &Device) -> (Tensor<4>, Tensor<4>, Vec<Tensor<4>>, Vec<Tensor<4>>) {
        let random =
            || Tensor::<4>::random([1, 1, 24, 20], Distribution::Uniform(0.0, 1.0), device);
        let (a, b) = (random(), random());
        let maps = (0..3).map(|_| random()).collect();
        let alphas = (0..3).map(|_| random()).collect();
        (a, b, maps, alphas)
    }

    #[test]
    fn an_untrained_head_adds_nothing_and_each_weight_follows_its_map() {
        let device = Device::flex();
        let mut head = LocalHead::new(3, 4, &device);
        let (a, b, maps, alphas) = inputs(&device);
        let features =
            Tensor::<4>::random([1, 4, 24, 20], Distribution::Uniform(-1.0, 1.0), &device);
        let run = |head: &LocalHead, maps: &[Tensor<4>], alphas: &[Tensor<4>]| {
            values(head.forward(
                a.clone(),
                b.clone(),
                FullMaps {
                    reliability_a: maps,
                    alpha: alphas,
                },
                features.clone(),
            ))
        };
        assert!(run(&head, &maps, &alphas).iter().all(|v| *v == 0.0));
        // k_0 = 1 alone: (w_0 − ½)(A − B) exactly; maps at ½ give nothing.
        head.set_weights(&[1.0, 0.0, 0.0], &[0.0; 3]);
        let got = run(&head, &maps, &alphas);
        let (wa, va, vb) = (
            values(maps[0].clone()),
            values(a.clone()),
            values(b.clone()),
        );
        for i in 0..got.len() {
            assert!((got[i] - (wa[i] - 0.5) * (va[i] - vb[i])).abs() < 1e-6);
        }
        let half: Vec<Tensor<4>> = maps.iter().map(|m| m.clone() * 0.0 + 0.5).collect();
        assert!(run(&head, &half, &alphas).iter().all(|v| v.abs() < 1e-6));
        // c_0 = 1 alone: α = ½ and α = its map give different images (the mixer shapes it).
        head.set_weights(&[0.0; 3], &[1.0, 0.0, 0.0]);
        let mixed = run(&head, &maps, &alphas);
        let even: Vec<Tensor<4>> = alphas.iter().map(|m| m.clone() * 0.0 + 0.5).collect();
        let evenly = run(&head, &maps, &even);
        let change: f32 = mixed
            .iter()
            .zip(&evenly)
            .map(|(x, y)| (x - y).abs())
            .sum::<f32>()
            / mixed.len() as f32;
        assert!(change > 1e-3, "{change}");
    }
}
