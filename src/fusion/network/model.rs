//! W-DUALMINE assembled (MODEL.md): shared encoder → per scale a reliability head, the
//! spatial and wavelet experts and the soft gradient mixer → residual-to-average decoder.
//!
//! Inputs A and B `[N, 1, H, W]` in [0, 1], any H and W (padded to a multiple of 2^S by edge
//! replication, cropped back). Outputs at the input size: the fused image, the reliability
//! map of each modality per scale and the mixer weight α per scale.
//!
//! What a reliability map means (README, model card): `w_A` is the share of the local detail
//! that the network takes from A — trained to follow where A carries the stronger local
//! structure (`loss::structure_share`) — and `w_B = 1 − w_A`. At each scale it weights the
//! features the experts fuse; at the finest scale it also weights the two sources' fine
//! detail in the fused image itself (`decoder::Decoder::local_detail`).

use burn::config::Config;
use burn::module::Module;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions, PadMode};
use burn::tensor::{Device, Tensor};

use super::decoder::{Correction, Decoder};
use super::encoder::Encoder;
use super::experts::{SpatialExpert, WaveletExpert};
use super::local::{FullMaps, LocalHead, LocalWeights};
use super::mixer::SoftGradientMixer;
use super::reliability::ReliabilityHead;
use crate::fusion::ops::device::{is_plain_cpu, on_cpu_workers};
use crate::fusion::ops::slicing::slice;

/// Network size: channels per encoder scale.
#[derive(Config, Debug)]
pub struct DualMineConfig {
    pub channels: Vec<usize>,
    /// With the local part steered by the detail control (`network::local`; issue 36).
    #[config(default = false)]
    pub local: bool,
}

impl DualMineConfig {
    /// S = 3, channels 16/32/64: trainable on 2 CPU cores.
    pub fn tiny() -> Self {
        Self::new(vec![16, 32, 64])
    }

    /// S = 4, channels 32/64/128/256.
    pub fn base() -> Self {
        Self::new(vec![32, 64, 128, 256])
    }

    /// `base` for "base", `tiny` with the local part for "tiny-local", else `tiny` (the
    /// command line's `--config`).
    pub fn named(name: &str) -> Self {
        match name {
            "base" => Self::base(),
            "tiny-local" => Self::tiny().with_local(true),
            _ => Self::tiny(),
        }
    }

    pub fn init(&self, device: &Device) -> DualMine {
        DualMine {
            encoder: Encoder::new(&self.channels, device),
            reliability: self
                .channels
                .iter()
                .map(|&c| ReliabilityHead::new(c, device))
                .collect(),
            spatial: self
                .channels
                .iter()
                .map(|&c| SpatialExpert::new(c, device))
                .collect(),
            wavelet: self
                .channels
                .iter()
                .map(|&c| WaveletExpert::new(c, device))
                .collect(),
            mixers: self
                .channels
                .iter()
                .map(|_| SoftGradientMixer::new(device))
                .collect(),
            decoder: Decoder::new(&self.channels, device),
            local: self
                .local
                .then(|| LocalHead::new(self.channels.len(), self.channels[0], device)),
        }
    }
}

/// The network.
#[derive(Module, Debug)]
pub struct DualMine {
    encoder: Encoder,
    reliability: Vec<ReliabilityHead>,
    spatial: Vec<SpatialExpert>,
    wavelet: Vec<WaveletExpert>,
    mixers: Vec<SoftGradientMixer>,
    decoder: Decoder,
    /// The local part steered by the detail control, when the configuration has it.
    local: Option<LocalHead>,
}

/// Which maps a forward pass returns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Maps {
    /// Every map, upsampled to the input size (inference).
    Upsampled,
    /// The reliability maps of A at their own resolution only (training).
    Native,
}

/// What the network produces, all `[N, 1, H, W]` at the input size.
#[derive(Debug, Clone)]
pub struct FusionOutput {
    pub fused: Tensor<4>,
    /// Reliability of A per scale (that of B is `1 −` it).
    pub reliability_a: Vec<Tensor<4>>,
    pub reliability_b: Vec<Tensor<4>>,
    /// Mixer weight α per scale (1: wavelet expert, 0: spatial expert).
    pub alpha: Vec<Tensor<4>>,
    /// The decoder's gains of A and B and its offset, per image.
    pub correction: Correction,
}

/// How an inference pass runs: the ablations that show what the maps do, and the decoder's
/// gains given instead of computed (a volume's, `Fuser::volume_gains`). The default is the
/// plain forward pass.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ForwardOptions {
    /// Every reliability map replaced by this value (`w_A = value`, `w_B = 1 − value`).
    pub fixed_reliability: Option<f32>,
    /// Every mixer weight α replaced by this value (1: the wavelet expert, 0: the spatial
    /// expert, 0.5: both equally everywhere).
    pub fixed_alpha: Option<f32>,
    /// The decoder's per-image gains and offset replaced by these (`[g_A, g_B, h]`); the
    /// decoder's upward path is skipped.
    pub gains: Option<[f32; 3]>,
    /// The detail control d (0 faithful … 1 most local detail); only a network with the
    /// local part depends on it.
    pub detail: f32,
}

/// How a forward pass runs: which maps it returns, and the inference options.
#[derive(Clone, Copy)]
struct RunOptions {
    maps: Maps,
    options: ForwardOptions,
}

impl DualMine {
    /// Number of scales S.
    pub fn scales(&self) -> usize {
        self.reliability.len()
    }

    /// Fuses `a` and `b` (`[N, 1, H, W]`, values in [0, 1]).
    pub fn forward(&self, a: Tensor<4>, b: Tensor<4>) -> FusionOutput {
        self.forward_with(a, b, ForwardOptions::default())
    }

    /// The forward pass as `options` say (ablations, given gains, detail).
    pub fn forward_with(
        &self,
        a: Tensor<4>,
        b: Tensor<4>,
        options: ForwardOptions,
    ) -> FusionOutput {
        let run = RunOptions {
            maps: Maps::Upsampled,
            options,
        };
        self.run(a, b, run).0
    }

    /// The decoder's per-image gains and offset only: the maps are not brought to the
    /// input size (what `Fuser::volume_gains` needs from its sample of slices).
    pub fn correction(&self, a: Tensor<4>, b: Tensor<4>) -> Correction {
        let run = RunOptions {
            maps: Maps::Native,
            options: ForwardOptions::default(),
        };
        self.run(a, b, run).0.correction
    }

    /// What training looks at: the fused image, the reliability maps of A at each scale's
    /// own resolution (`[N, 1, H/2^s, W/2^s]` of the padded input; the mixer weights and
    /// `reliability_b` are left out, nothing is upsampled), and the finest encoder features
    /// of A and of B (`[N, C0, H, W]`, cropped to the input size) for the reconstruction head.
    /// `detail` is the detail control d the image is fused at (training the network runs at
    /// d = 0, training the local part at d > 0).
    pub fn forward_with_features(
        &self,
        a: Tensor<4>,
        b: Tensor<4>,
        detail: f32,
    ) -> (FusionOutput, [Tensor<4>; 2]) {
        let [n, _, h, w] = a.dims();
        let run = RunOptions {
            maps: Maps::Native,
            options: ForwardOptions {
                detail,
                ..ForwardOptions::default()
            },
        };
        let (output, padded) = self.run(a, b, run);
        let crop = |x: Tensor<4>| {
            let c = x.dims()[1];
            slice(x, [0..n, 0..c, 0..h, 0..w])
        };
        let [fine_a, fine_b] = padded;
        (output, [crop(fine_a), crop(fine_b)])
    }

    /// γ of the decoder's local term.
    pub fn detail_gain(&self) -> f32 {
        self.decoder.detail_gain()
    }

    /// Sets γ of the decoder's local term.
    pub fn set_detail_gain(&mut self, gain: f32) {
        self.decoder.set_detail_gain(gain);
    }

    /// The forward pass as `options` say (which maps, fixed reliability, given gains); also
    /// returns the finest encoder features at the padded size. On the CPU it runs on rayon's
    /// workers (`ops::device::on_cpu_workers`).
    fn run(
        &self,
        a: Tensor<4>,
        b: Tensor<4>,
        options: RunOptions,
    ) -> (FusionOutput, [Tensor<4>; 2]) {
        on_cpu_workers(&a.device(), || self.run_here(a, b, options))
    }

    /// [`Self::run`] on the calling thread.
    fn run_here(
        &self,
        a: Tensor<4>,
        b: Tensor<4>,
        RunOptions {
            maps,
            options:
                ForwardOptions {
                    fixed_reliability: fixed,
                    fixed_alpha,
                    gains,
                    detail,
                },
        }: RunOptions,
    ) -> (FusionOutput, [Tensor<4>; 2]) {
        let [_, _, h, w] = a.dims();
        let multiple = 1usize << self.scales();
        let (ph, pw) = (
            h.div_ceil(multiple) * multiple - h,
            w.div_ceil(multiple) * multiple - w,
        );
        let pad = |x: Tensor<4>| {
            if ph == 0 && pw == 0 {
                x
            } else {
                x.pad((0, pw, 0, ph), PadMode::Edge)
            }
        };
        let (pa, pb) = (pad(a.clone()), pad(b.clone()));
        // Fusing on the CPU, the two encoders run side by side: most of burn-flex's
        // elementwise operations use one thread. Each encoder's operations keep their order,
        // so the values are the same bits. Not under autodiff: burn-autodiff 0.22 records one
        // graph, and two threads recording into it broke a training run ("graph tape has
        // already been consumed") after 200 steps.
        let (features_a, features_b) = if is_plain_cpu(&pa.device()) {
            rayon::join(|| self.encoder.forward(pa), || self.encoder.forward(pb))
        } else {
            (self.encoder.forward(pa), self.encoder.forward(pb))
        };
        let mut fused = Vec::with_capacity(self.scales());
        let mut finest_a = None;
        let (mut rel_a, mut rel_b, mut alphas) = (Vec::new(), Vec::new(), Vec::new());
        // The maps at full size for the local part (those of `Maps::Upsampled` when made),
        // when it adds anything (d > 0).
        let uses_local = self.local.is_some() && detail > 0.0;
        let (mut full_w, mut full_alpha) = (Vec::new(), Vec::new());
        // A map of scale s at the input size: the finest (s = 0) is at the padded size
        // already and only cropped; coarser ones are upsampled bilinearly first.
        let full = |x: Tensor<4>, s: usize| {
            let x = if s == 0 {
                x
            } else {
                interpolate(
                    x,
                    InterpolateOptions::new(InterpolateMode::Bilinear)
                        .with_output_size([h + ph, w + pw]),
                )
            };
            let [n, c, _, _] = x.dims();
            slice(x, [0..n, 0..c, 0..h, 0..w])
        };
        for s in 0..self.scales() {
            let (fa, fb) = (features_a[s].clone(), features_b[s].clone());
            let (wa, wb) = match fixed {
                None => self.reliability[s].forward(fa.clone(), fb.clone()),
                Some(value) => {
                    let [n, _, hs, ws] = fa.dims();
                    let wa = Tensor::<4>::full([n, 1, hs, ws], value, &fa.device());
                    (wa.clone(), wa.neg() + 1.0)
                }
            };
            if s == 0 {
                let [n, _, _, _] = wa.dims();
                finest_a = Some(slice(wa.clone(), [0..n, 0..1, 0..h, 0..w]));
            }
            let (weighted_a, weighted_b) = (fa * wa.clone(), fb * wb.clone());
            let spatial = self.spatial[s].forward(weighted_a.clone(), weighted_b.clone());
            let wavelet = self.wavelet[s].forward(weighted_a.clone(), weighted_b.clone());
            let guide = (weighted_a + weighted_b).mean_dim(1);
            let alpha = match fixed_alpha {
                None => self.mixers[s].weights(guide),
                Some(value) => {
                    let [n, _, hs, ws] = guide.dims();
                    Tensor::<4>::full([n, 1, hs, ws], value, &guide.device())
                }
            };
            fused.push(SoftGradientMixer::mix(alpha.clone(), wavelet, spatial));
            match maps {
                Maps::Upsampled => {
                    // B's map is 1 − A's (the head's softmax over two): derived, not
                    // upsampled a second time.
                    let wa = full(wa, s);
                    rel_b.push(wa.clone().neg() + 1.0);
                    rel_a.push(wa.clone());
                    let alpha = full(alpha, s);
                    alphas.push(alpha.clone());
                    if uses_local {
                        full_w.push(wa);
                        full_alpha.push(alpha);
                    }
                }
                Maps::Native => {
                    if uses_local {
                        full_w.push(full(wa.clone(), s));
                        full_alpha.push(full(alpha, s));
                    }
                    rel_a.push(wa);
                }
            }
        }
        // The decoder's upward path runs when its gains or the local part need it.
        let (correction, features) = match gains {
            Some(values) => (
                Correction::constant(values, a.dims()[0], &a.device()),
                uses_local.then(|| self.decoder.features(&fused)),
            ),
            None => {
                let features = self.decoder.features(&fused);
                let correction = self.decoder.correction_from(features.clone());
                (correction, uses_local.then_some(features))
            }
        };
        let finest_a = finest_a.expect("the network has at least one scale");
        let residual = correction.gain_a.clone() * a.clone()
            + correction.gain_b.clone() * b.clone()
            + correction.offset.clone()
            + self.decoder.local_detail(a.clone(), b.clone(), finest_a);
        let residual = match (&self.local, features) {
            // F(d) = avg + (1 − u·d)·(global correction) + d·L (`network::local`); at d = 0
            // the local part is not computed (the trained network alone, the same bits).
            (Some(head), Some(features)) if uses_local => {
                let [n, c, _, _] = features.dims();
                let maps = FullMaps {
                    reliability_a: &full_w,
                    alpha: &full_alpha,
                    features: slice(features, [0..n, 0..c, 0..h, 0..w]),
                };
                let kept = (head.fade() * (-detail) + 1.0).reshape([1, 1, 1, 1]);
                residual * kept + head.forward(a.clone(), b.clone(), maps) * detail
            }
            _ => residual,
        };
        let fine = [features_a[0].clone(), features_b[0].clone()];
        let output = FusionOutput {
            fused: ((a + b) * 0.5 + residual).clamp(0.0, 1.0),
            reliability_a: rel_a,
            reliability_b: rel_b,
            alpha: alphas,
            correction,
        };
        (output, fine)
    }

    /// Sets the local part's weights (`network::local`), when the network has one; returns
    /// whether it has.
    pub fn set_local_weights(&mut self, weights: &LocalWeights) -> bool {
        match &mut self.local {
            Some(head) => {
                head.set_weights(weights);
                true
            }
            None => false,
        }
    }

    /// The local part, when the network has one (what training the local part alone updates).
    pub fn local_head(&self) -> Option<&LocalHead> {
        self.local.as_ref()
    }

    /// The local part's weights, when the network has one.
    pub fn local_weights(&self) -> Option<LocalWeights> {
        self.local.as_ref().map(LocalHead::weights)
    }

    /// Channels of the finest encoder scale.
    pub fn fine_channels(&self) -> usize {
        self.encoder.channels()[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::ops::host::values;
    use burn::tensor::Distribution;

    #[test]
    fn untrained_model_is_exactly_the_average_on_odd_sizes() {
        let device = Device::flex();
        let model = DualMineConfig::tiny().init(&device);
        let a = Tensor::<4>::random([1, 1, 255, 301], Distribution::Uniform(0.0, 1.0), &device);
        let b = Tensor::<4>::random([1, 1, 255, 301], Distribution::Uniform(0.0, 1.0), &device);
        let out = model.forward(a.clone(), b.clone());
        assert_eq!(out.fused.dims(), [1, 1, 255, 301]);
        let average = values((a + b) * 0.5);
        for (f, m) in values(out.fused).iter().zip(&average) {
            assert_eq!(f, m);
        }
        assert_eq!(out.alpha.len(), 3);
        for s in 0..3 {
            assert_eq!(out.reliability_a[s].dims(), [1, 1, 255, 301]);
            let sum = values(out.reliability_a[s].clone() + out.reliability_b[s].clone());
            assert!(sum.iter().all(|v| (v - 1.0).abs() < 1e-5));
            assert!(
                values(out.alpha[s].clone())
                    .iter()
                    .all(|v| (0.0..=1.0).contains(v))
            );
        }
    }

    /// The forward pass at detail `d`.
    fn at_detail(model: &DualMine, a: Tensor<4>, b: Tensor<4>, d: f32) -> FusionOutput {
        let options = ForwardOptions {
            detail: d,
            ..ForwardOptions::default()
        };
        model.forward_with(a, b, options)
    }

    #[test]
    fn the_detail_control_scales_the_local_part_and_the_maps_shape_it() {
        let device = Device::flex();
        let mut model = DualMineConfig::named("tiny-local").init(&device);
        let a = Tensor::<4>::random([1, 1, 40, 36], Distribution::Uniform(0.0, 1.0), &device);
        let b = Tensor::<4>::random([1, 1, 40, 36], Distribution::Uniform(0.0, 1.0), &device);
        let average = values((a.clone() + b.clone()) * 0.5);
        // Untrained: the local part adds nothing at any d.
        for d in [0.0, 1.0] {
            assert_eq!(
                values(at_detail(&model, a.clone(), b.clone(), d).fused),
                average
            );
        }
        let weights = LocalWeights {
            intensity: vec![1.0, 0.0, 0.0],
            sharpness: vec![16.0, 4.0, 4.0],
            detail: vec![0.0, 0.0, 0.5],
            fade: 1.0,
        };
        assert!(model.set_local_weights(&weights));
        assert_eq!(model.local_weights(), Some(weights.clone()));
        let at = |d: f32| values(at_detail(&model, a.clone(), b.clone(), d).fused);
        assert_eq!(at(0.0), average);
        // Away from the clamp, F(d) − avg is d times F(1) − avg.
        let (half, full) = (at(0.5), at(1.0));
        let mut compared = 0;
        for i in 0..average.len() {
            if (0.01..0.99).contains(&full[i]) && (0.01..0.99).contains(&half[i]) {
                let expected = average[i] + 0.5 * (full[i] - average[i]);
                assert!((half[i] - expected).abs() < 1e-5, "{i}");
                compared += 1;
            }
        }
        assert!(compared > 100);
        assert!(
            !DualMineConfig::tiny()
                .init(&device)
                .set_local_weights(&weights)
        );
    }
}
