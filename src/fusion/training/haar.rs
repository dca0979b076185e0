//! The Haar transforms' backward steps for training on the CPU (burn's CPU backend under
//! autodiff): [`dwt`](crate::fusion::ops::haar::dwt) and [`idwt`](crate::fusion::ops::haar::idwt) as operations whose
//! gradients are one parallel pass each, where the compositions' backward is some twenty
//! passes on one thread (strided additions, four zero-filled slice gradients added onto each
//! other). Each gives burn's
//! composition's gradients bit for bit — its terms added in the order burn-autodiff adds them
//! (tested) — so training keeps the rounding the shipped weights were made with.
//!
//! The forward transform's four bands are four operations on the image; their backward steps
//! gather the bands' gradients and the last one writes the image's.

use std::sync::{Arc, Mutex};

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata};
use burn::tensor::TensorData;

use crate::fusion::ops::cpu::buffers::{contiguous, f32s};
use crate::fusion::ops::haar::{HaarKernels, per_band_value, per_block};

/// The backward step of [`HaarKernels::haar_inverse`] under autodiff (linear: no state but
/// the bands' shape).
#[derive(Debug)]
struct HaarInverseBackward;

impl Backward<Flex, 4> for HaarInverseBackward {
    type State = Vec<usize>;

    fn backward(
        self,
        ops: Ops<Self::State, 4>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let image_grad = contiguous(grads.consume::<Flex>(&ops.node));
        let band_dims = ops.state;
        let band_grads = idwt_backward_planes(f32s(&image_grad), [band_dims[2], band_dims[3]]);
        for (node, grad) in ops.parents.into_iter().zip(band_grads) {
            if let Some(node) = node {
                let grad = FlexTensor::from_data(TensorData::new(grad, band_dims.clone()));
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

/// The four bands' gradients, gathered by the bands' backward steps: the last one to run
/// computes the image's gradient. All four steps sit at the same graph depth (each band's
/// only input is the image), so they run one after another, after every use of the bands.
#[derive(Debug, Default)]
struct BandGradients {
    bands: [Option<FlexTensor>; 4],
}

/// The backward step of band `band` (0 = LL, 1 = LH, 2 = HL, 3 = HH) of
/// [`HaarKernels::haar_forward`] under autodiff.
#[derive(Debug)]
struct HaarBandBackward;

/// A band's place and the gradients gathered so far.
#[derive(Debug, Clone)]
struct BandState {
    band: usize,
    gathered: Arc<Mutex<BandGradients>>,
}

impl Backward<Flex, 1> for HaarBandBackward {
    type State = BandState;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let band_dims = grad.shape().to_vec();
        let complete = {
            let mut gathered = ops
                .state
                .gathered
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            gathered.bands[ops.state.band] = Some(grad);
            if gathered.bands.iter().all(Option::is_some) {
                Some(std::mem::take(&mut gathered.bands).map(|band| band.expect("checked")))
            } else {
                None
            }
        };
        let ([Some(node)], Some(bands)) = (ops.parents, complete) else {
            return;
        };
        let image = dwt_backward_planes(bands.each_ref().map(f32s), [band_dims[2], band_dims[3]]);
        let image_dims = vec![
            band_dims[0],
            band_dims[1],
            2 * band_dims[2],
            2 * band_dims[3],
        ];
        grads.register::<Flex>(
            node.id,
            FlexTensor::from_data(TensorData::new(image, image_dims)),
        );
    }
}

impl<C: CheckpointStrategy> HaarKernels for Autodiff<Flex, C> {
    fn haar_forward(
        x: FloatTensor<Self>,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    ) {
        let nodes: [_; 4] = std::array::from_fn(|_| x.node());
        let (ll, lh, hl, hh) = Flex::haar_forward(x.into_primitive());
        let gathered = Arc::new(Mutex::new(BandGradients::default()));
        let mut bands =
            [ll, lh, hl, hh]
                .into_iter()
                .zip(nodes)
                .enumerate()
                .map(|(band, (values, node))| {
                    match HaarBandBackward
                        .prepare::<C>([node])
                        .compute_bound()
                        .stateful()
                    {
                        OpsKind::Tracked(prep) => prep.finish(
                            BandState {
                                band,
                                gathered: gathered.clone(),
                            },
                            values,
                        ),
                        OpsKind::UnTracked(prep) => prep.finish(values),
                    }
                });
        let mut next = || bands.next().expect("four bands");
        (next(), next(), next(), next())
    }

    fn haar_inverse(
        ll: FloatTensor<Self>,
        lh: FloatTensor<Self>,
        hl: FloatTensor<Self>,
        hh: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let dims = ll.shape().to_vec();
        match HaarInverseBackward
            .prepare::<C>([ll.node(), lh.node(), hl.node(), hh.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                dims,
                Flex::haar_inverse(
                    ll.into_primitive(),
                    lh.into_primitive(),
                    hl.into_primitive(),
                    hh.into_primitive(),
                ),
            ),
            OpsKind::UnTracked(prep) => prep.finish(Flex::haar_inverse(
                ll.into_primitive(),
                lh.into_primitive(),
                hl.into_primitive(),
                hh.into_primitive(),
            )),
        }
    }
}

/// The gradient of the image from the gradients of its [`dwt`](crate::fusion::ops::haar::dwt) bands
/// (`h2 × w2` planes, LL, LH, HL, HH), with the values burn-autodiff gives the composition
/// (`haar::dwt_composed`): each band's gradient halved (`· 0.5`), then per block sum `s` and
/// difference `t` of the LL and LH terms and `u`, `w` of the HL and HH terms, pixel a
/// `s + u`, b `s − u`, c `t + w`, d `t − w` — each then plus `0.0`, as the four block slices'
/// gradients are added onto each other's zeros (which turns a `−0` into `+0`).
fn dwt_backward_planes(bands: [&[f32]; 4], size: [usize; 2]) -> Vec<f32> {
    per_band_value(bands, size, |terms| {
        let [l, v, o, d] = terms.map(|g| g * 0.5);
        let (s, t, u, w) = (l + v, l + -v, o + d, o + -d);
        [(s + u) + 0.0, (s + -u) + 0.0, (t + w) + 0.0, (t + -w) + 0.0]
    })
}

/// The gradients of the LL, LH, HL and HH bands (`h2 × w2` planes) from the gradient of
/// [`idwt`](crate::fusion::ops::haar::idwt)'s image. Each band's gradient is the sum of its four pixels'
/// terms `g·½` (signed as the band enters the pixel), added in the order burn-autodiff
/// registers them for the composition: pixel d's, c's, b's, then a's.
fn idwt_backward_planes(image: &[f32], [h2, w2]: [usize; 2]) -> [Vec<f32>; 4] {
    per_block(image, [h2, w2], |pixels| {
        let [a, b, c, d] = pixels.map(|g| g * 0.5);
        [
            ((d + c) + b) + a,
            ((-d + -c) + b) + a,
            ((-d + c) + -b) + a,
            ((d + -c) + -b) + a,
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::ops::cpu::test_kit::{differing_bits, test_values};
    use crate::fusion::ops::haar::{HaarBands, dwt, dwt_composed, idwt, idwt_composed};
    use crate::fusion::ops::host::values;
    use burn::tensor::{Device, Tensor};

    fn bits(t: &Tensor<4>) -> Vec<u32> {
        values(t.clone()).iter().map(|v| v.to_bits()).collect()
    }

    /// Decimal fractions (not dyadic) of shape `dims`, so the order of additions shows in the
    /// bits.
    fn decimals(dims: [usize; 4], seed: u64, device: &Device) -> Tensor<4> {
        let data = TensorData::new(test_values(dims.iter().product(), seed), dims);
        Tensor::<4>::from_data(data, device)
    }

    /// Under autodiff the inverse's gradients of the four bands are the composition's, bit for
    /// bit (batch 1 and 3, odd band sizes); the test fails with the terms added a→d.
    #[test]
    fn inverse_gradients_equal_the_compositions_bit_for_bit() {
        let device = Device::flex().autodiff();
        for dims in [[3, 5, 7, 9], [1, 16, 24, 24]] {
            let decimals = |dims, seed| decimals(dims, seed, &device);
            let band = |seed| decimals(dims, seed).require_grad();
            let bands = HaarBands {
                ll: band(1),
                lh: band(2),
                hl: band(3),
                hh: band(4),
            };
            let [n, c, h, w] = dims;
            let upstream = decimals([n, c, 2 * h, 2 * w], 5);
            let ours = idwt(bands.clone());
            let reference = idwt_composed(bands.clone());
            assert_eq!(bits(&ours), bits(&reference), "image, {dims:?}");
            let grads_ours = (ours * upstream.clone()).sum().backward();
            let grads_reference = (reference * upstream).sum().backward();
            for (name, band) in [
                ("LL", &bands.ll),
                ("LH", &bands.lh),
                ("HL", &bands.hl),
                ("HH", &bands.hh),
            ] {
                let grad = |grads| values(band.grad(grads).expect("gradient"));
                assert_eq!(
                    differing_bits(&grad(&grads_ours), &grad(&grads_reference)),
                    0,
                    "{name} gradient, {dims:?}"
                );
            }
        }
    }

    /// Under autodiff the forward transform's gradient of the image is the composition's, bit
    /// for bit, with the image used three times (as the model uses the weighted features:
    /// the wavelet expert, the spatial expert, the mixer's guide) and every band used.
    #[test]
    fn forward_gradients_equal_the_compositions_bit_for_bit() {
        let device = Device::flex().autodiff();
        for dims in [[3, 5, 6, 10], [1, 16, 24, 24]] {
            let decimals = |dims, seed| decimals(dims, seed, &device);
            let [n, c, h, w] = dims;
            let x = decimals(dims, 1).require_grad();
            let weights: Vec<_> = (2..6)
                .map(|seed| decimals([n, c, h / 2, w / 2], seed))
                .collect();
            let other = decimals(dims, 7);
            let loss = |bands: HaarBands| {
                let [ll, lh, hl, hh] = [bands.ll, bands.lh, bands.hl, bands.hh];
                let wavelet = (ll * weights[0].clone()).sum()
                    + (lh * weights[1].clone()).sum()
                    + (hl * weights[2].clone()).sum()
                    + (hh * weights[3].clone()).sum();
                let spatial = (x.clone() * other.clone()).sum();
                let guide = (x.clone() - other.clone()).abs().sum();
                spatial + wavelet + guide
            };
            let ours = dwt(x.clone());
            let reference = dwt_composed(x.clone());
            for (name, a, b) in [
                ("LL", &ours.ll, &reference.ll),
                ("LH", &ours.lh, &reference.lh),
                ("HL", &ours.hl, &reference.hl),
                ("HH", &ours.hh, &reference.hh),
            ] {
                assert_eq!(bits(a), bits(b), "{name} band, {dims:?}");
            }
            let grad = |grads| values(x.grad(grads).expect("gradient"));
            let (grads_ours, grads_reference) = (loss(ours).backward(), loss(reference).backward());
            assert_eq!(
                differing_bits(&grad(&grads_ours), &grad(&grads_reference)),
                0,
                "image gradient, {dims:?}"
            );
        }
    }

    /// A gradient of `−0` comes back as `+0`, as the composition's zero-filled slices make it.
    #[test]
    fn forward_gradient_turns_negative_zero_into_positive_zero() {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::zeros([1, 1, 2, 2], &device).require_grad();
        for bands in [dwt(x.clone()), dwt_composed(x.clone())] {
            // Every band's gradient −0: pixel a's sum is −0 before the added zero.
            let loss = (bands.ll + bands.lh + bands.hl + bands.hh).sum() * -0.0;
            let grads = loss.backward();
            let grad = values(x.grad(&grads).expect("gradient"));
            assert!(grad.iter().all(|g| g.to_bits() == 0), "{grad:?}");
        }
    }
}
