//! The local part of the fused image, steered by the detail control `d` (issue 36). Built
//! from what the network's maps say, so that the overlays mean what they show:
//!
//! `L = Σ_s k_s·(α_s·(σ(τ_s·(w_s − ½)) − ½) + (1 − α_s)·(w_s − ½))·(A − B)` — the
//! reliability map of A at scale s, brought to full size, weighting the two images pixel by
//! pixel: where the map trusts A the fused image takes more of A, where it trusts B more of
//! B. The mixer's α says how: towards 1 (the wavelet expert's way) the map is sharpened
//! into a choice of one source (τ_s = 4 leaves it as it is near ½, larger τ_s chooses),
//! towards 0 (the spatial expert's way) it weights as it is;
//! `  + Σ_s c_s·(α_s·wav_s + (1 − α_s)·spa_s − (D_A,s + D_B,s)/2)` — each scale's band detail
//! of A and of B, the spatial expert's reliability-weighted mix `spa = w·D_A + (1 − w)·D_B`
//! and the wavelet expert's larger-magnitude pick `wav`, mixed by the mixer's α;
//! `  + tanh(conv3×3(decoder features))·½·(A − B)` — the learned *lean*: per pixel, how far the
//! decoder's full-resolution features move the image towards A or B (zero until trained).
//!
//! The fused image is `F(d) = clamp(avg + (1 − u·d)·(g_A·A + g_B·B + h + γ-term) + d·L, 0, 1)`
//! (`model::DualMine`): the faithful end is the decoder's global correction of the average;
//! towards the detailed end the local part is added and, as far as the fade u says, the
//! global correction taken away (u = 1: the detailed end is the average with the local
//! part; u = 0: the correction stays). With k_s = c_s = 0, a zero lean and u = 0, F(d) = F(0)
//! at every d.
//!
//! k_s, τ_s, c_s and u are chosen on the validation split and written into trained weights by
//! `dualmine set-local` (`assets/MODEL_CARD.md`, "Detail control"). The maps and α are the
//! trained network's; training at both ends of d (`training::train`, `TrainConfig::detail`)
//! trains them, the lean and these numbers for what the local part does — the shipped CT–MRI
//! model was trained so; the others have a zero lean.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};

use super::decoder::binomial_blur;
use crate::fusion::ops::conv::conv2d;

/// Binomial blur passes that end each scale's band (variance 1, 4, 16 pixels²).
const BAND_PASSES: [usize; 3] = [1, 3, 12];

/// The sharpness τ at which a map is used as it is (σ(4x) − ½ ≈ x near 0).
pub const NEUTRAL_SHARPNESS: f32 = 4.0;

/// Largest share of A − B that the decoder's features add at a pixel (½: the fused image
/// may go from the average all the way to A or to B).
const LEARNED_SHARE: f32 = 0.5;

/// The weights of the local part, per scale.
#[derive(Module, Debug)]
pub struct LocalHead {
    /// k_s: how far scale s's reliability map weights the two images.
    intensity: Param<Tensor<1>>,
    /// τ_s: how sharply scale s's map chooses between them.
    sharpness: Param<Tensor<1>>,
    /// c_s: how much of scale s's α-mixed band detail is added.
    detail: Param<Tensor<1>>,
    /// u (one number): how far d takes away the decoder's global correction.
    fade: Param<Tensor<1>>,
    /// The learned lean: a 3×3 convolution of the decoder's full-resolution features giving,
    /// per pixel, how far the image leans to A or to B (starts at zero: adds nothing).
    lean: Conv2d,
}

/// The network's maps at full size, finest scale first, that the local part reads.
pub struct FullMaps<'a> {
    pub reliability_a: &'a [Tensor<4>],
    pub alpha: &'a [Tensor<4>],
    /// The decoder's finest features, `[N, C0, H, W]` at the input size.
    pub features: Tensor<4>,
}

/// The local part's weights as numbers, one per scale.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalWeights {
    pub intensity: Vec<f32>,
    pub sharpness: Vec<f32>,
    pub detail: Vec<f32>,
    /// u: how far d takes away the decoder's global correction (0 … 1).
    pub fade: f32,
}

impl LocalWeights {
    /// No local part at any d: k = c = 0, τ neutral, u = 0.
    pub fn none(scales: usize) -> Self {
        Self {
            intensity: vec![0.0; scales],
            sharpness: vec![NEUTRAL_SHARPNESS; scales],
            detail: vec![0.0; scales],
            fade: 0.0,
        }
    }

    /// The weights in the form [`Self::parse`] reads.
    pub fn spec(&self) -> String {
        let list = |v: &[f32]| {
            v.iter()
                .map(|x| format!("{x:.4}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "{};{};{};{:.4}",
            list(&self.intensity),
            list(&self.sharpness),
            list(&self.detail),
            self.fade
        )
    }

    /// Parses `k0,k1,…;τ0,τ1,…;c0,c1,…;u` (the form `dualmine set-local --local` takes); `None`
    /// when a part is missing, a number does not parse, the lists differ in length or u is
    /// outside 0 … 1.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts: Vec<Vec<f32>> = text
            .split(';')
            .map(|p| p.split(',').map(|v| v.trim().parse::<f32>().ok()).collect())
            .collect::<Option<_>>()?;
        let fade = match parts.pop()?.as_slice() {
            [u] if (0.0..=1.0).contains(u) => *u,
            _ => return None,
        };
        let [intensity, sharpness, detail]: [Vec<f32>; 3] = parts.try_into().ok()?;
        let n = intensity.len();
        let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
        (n > 0
            && sharpness.len() == n
            && detail.len() == n
            && finite(&intensity)
            && finite(&sharpness)
            && finite(&detail))
        .then_some(Self {
            intensity,
            sharpness,
            detail,
            fade,
        })
    }
}

impl LocalHead {
    /// A head for `scales` scales and decoder features of `channels` channels that adds
    /// nothing ([`LocalWeights::none`], the lean's convolution at zero).
    pub fn new(scales: usize, channels: usize, device: &Device) -> Self {
        let none = LocalWeights::none(scales);
        let param = |v: &[f32]| {
            Param::from_tensor(Tensor::from_data(
                TensorData::new(v.to_vec(), [v.len()]),
                device,
            ))
        };
        Self {
            intensity: param(&none.intensity),
            sharpness: param(&none.sharpness),
            detail: param(&none.detail),
            fade: param(&[none.fade]),
            lean: Conv2dConfig::new([channels, 1], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_initializer(Initializer::Zeros)
                .init(device),
        }
    }

    /// `L` for sources `a`, `b` (`[N, 1, H, W]`) and the maps at full size.
    pub fn forward(&self, a: Tensor<4>, b: Tensor<4>, maps: FullMaps<'_>) -> Tensor<4> {
        let scales = maps.reliability_a.len().min(maps.alpha.len());
        let (k, tau, c) = (
            self.intensity.val(),
            self.sharpness.val(),
            self.detail.val(),
        );
        let weight = |t: &Tensor<1>, s: usize| t.clone().slice(s..s + 1).reshape([1, 1, 1, 1]);
        let difference = a.clone() - b.clone();
        let mut local = difference.zeros_like();
        let (mut coarse_a, mut coarse_b) = (a, b);
        for s in 0..scales {
            let w = maps.reliability_a[s].clone();
            let alpha = maps.alpha[s].clone();
            // The wavelet expert's way: a choice, the map sharpened; the spatial expert's: the
            // map as it is; the mixer's α says which way, pixel by pixel.
            let choice = sigmoid((w.clone() - 0.5) * weight(&tau, s)) - 0.5;
            let share = alpha.clone() * choice + (alpha.clone().neg() + 1.0) * (w.clone() - 0.5);
            local = local + share * difference.clone() * weight(&k, s);
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
        let lean = conv2d(&self.lean, maps.features).tanh() * LEARNED_SHARE;
        local + lean * difference
    }

    /// The weights as numbers.
    pub fn weights(&self) -> LocalWeights {
        let numbers =
            |p: &Param<Tensor<1>>| p.val().into_data().try_to_vec::<f32>().unwrap_or_default();
        LocalWeights {
            intensity: numbers(&self.intensity),
            sharpness: numbers(&self.sharpness),
            detail: numbers(&self.detail),
            fade: numbers(&self.fade).first().copied().unwrap_or(0.0),
        }
    }

    /// Sets the weights (chosen on the validation split: `dualmine train --local`).
    pub fn set_weights(&mut self, weights: &LocalWeights) {
        let device = self.intensity.val().device();
        let param = |v: &[f32]| {
            Param::from_tensor(Tensor::from_data(
                TensorData::new(v.to_vec(), [v.len()]),
                &device,
            ))
        };
        self.intensity = param(&weights.intensity);
        self.sharpness = param(&weights.sharpness);
        self.detail = param(&weights.detail);
        self.fade = param(&[weights.fade]);
    }

    /// u as a `[1]` tensor.
    pub fn fade(&self) -> Tensor<1> {
        self.fade.val()
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
        let run = |head: &LocalHead, maps: &[Tensor<4>], alphas: &[Tensor<4>]| {
            values(head.forward(
                a.clone(),
                b.clone(),
                FullMaps {
                    reliability_a: maps,
                    alpha: alphas,
                    features: Tensor::<4>::ones([1, 4, 24, 20], &device),
                },
            ))
        };
        assert!(run(&head, &maps, &alphas).iter().all(|v| *v == 0.0));
        // k_0 = 1, τ_0 = τ alone: (α(σ(τ(w − ½)) − ½) + (1 − α)(w − ½))(A − B) exactly, with
        // the scale-0 maps; reliability maps at ½ give nothing.
        let only = |k: [f32; 3], tau: f32, c: [f32; 3]| LocalWeights {
            intensity: k.to_vec(),
            sharpness: vec![tau, 4.0, 4.0],
            detail: c.to_vec(),
            fade: 1.0,
        };
        for tau in [4.0f32, 30.0] {
            head.set_weights(&only([1.0, 0.0, 0.0], tau, [0.0; 3]));
            let got = run(&head, &maps, &alphas);
            let (wa, al, va, vb) = (
                values(maps[0].clone()),
                values(alphas[0].clone()),
                values(a.clone()),
                values(b.clone()),
            );
            for i in 0..got.len() {
                let choice = 1.0 / (1.0 + (-tau * (wa[i] - 0.5)).exp()) - 0.5;
                let share = al[i] * choice + (1.0 - al[i]) * (wa[i] - 0.5);
                assert!((got[i] - share * (va[i] - vb[i])).abs() < 1e-5);
            }
            let half: Vec<Tensor<4>> = maps.iter().map(|m| m.clone() * 0.0 + 0.5).collect();
            assert!(run(&head, &half, &alphas).iter().all(|v| v.abs() < 1e-6));
        }
        // c_0 = 1 alone: α = ½ and α = its map give different images (the mixer shapes it).
        head.set_weights(&only([0.0; 3], 4.0, [1.0, 0.0, 0.0]));
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

    #[test]
    fn local_weights_parse_from_text_and_refuse_bad_text() {
        let parsed = LocalWeights::parse("0, 0.5, 0; 4, 30, 4; 0.2, 0, 0; 0.5").expect("parses");
        assert_eq!(parsed.intensity, vec![0.0, 0.5, 0.0]);
        assert_eq!(parsed.sharpness, vec![4.0, 30.0, 4.0]);
        assert_eq!(parsed.detail, vec![0.2, 0.0, 0.0]);
        assert_eq!(parsed.fade, 0.5);
        for bad in [
            "",
            "1;2;3",
            "1,2;3;4;1",
            "a;b;c;1",
            "1;inf;0;1",
            "1;2;3;4;5",
            "1;2;3;2",
            "1;2;3;1,1",
        ] {
            assert_eq!(LocalWeights::parse(bad), None, "{bad}");
        }
    }
}
