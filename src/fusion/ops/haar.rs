//! One-level orthonormal 2-D Haar transform and its exact inverse, the fixed filters of
//! W-DUALMINE's wavelet expert (MODEL.md).
//!
//! `x: [N, C, H, W]` (H, W even) → `HaarBands { ll, lh, hl, hh }`, each `[N, C, H/2, W/2]`.
//! With a, b, c, d the pixels of each 2×2 block (row-major):
//! `LL = (a+b+c+d)/2`, `HL = (a−b+c−d)/2` (horizontal change), `LH = (a+b−c−d)/2`
//! (vertical change), `HH = (a−b−c+d)/2`. The transform is orthonormal, so its inverse is
//! its transpose and reconstruction is exact up to rounding.
//!
//! On the CPU without autodiff (fusion) both run as one pass over plain slices; elsewhere as
//! burn tensor operations on strided views. Both do the same f32 operations in the same order,
//! so they give the same bits (tested). Under autodiff on the CPU (training) both are
//! operations with their own backward steps (`training::haar`), same bits again.

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use super::cpu::buffers::{contiguous, f32s};
use super::device::is_cpu;

/// The four sub-bands of a one-level Haar transform.
#[derive(Clone, Debug)]
pub struct HaarBands {
    pub ll: Tensor<4>,
    pub lh: Tensor<4>,
    pub hl: Tensor<4>,
    pub hh: Tensor<4>,
}

/// The four pixels of every 2×2 block, each `[N, C, H/2, W/2]`.
fn blocks(x: Tensor<4>) -> [Tensor<4>; 4] {
    let [n, c, h, w] = x.dims();
    let (h2, w2) = (h / 2, w / 2);
    let x = x.reshape([n, c, h2, 2, w2, 2]);
    let pick = |dy: usize, dx: usize| {
        x.clone()
            .slice([0..n, 0..c, 0..h2, dy..dy + 1, 0..w2, dx..dx + 1])
            .reshape([n, c, h2, w2])
    };
    [pick(0, 0), pick(0, 1), pick(1, 0), pick(1, 1)]
}

/// Forward transform. Panics if H or W is odd (callers pad to a multiple of 2^S).
pub fn dwt(x: Tensor<4>) -> HaarBands {
    let [_, _, h, w] = x.dims();
    assert!(
        h % 2 == 0 && w % 2 == 0,
        "Haar DWT needs even sizes, got {h}×{w}"
    );
    if is_cpu(&x.device()) && x.dtype() == DType::F32 {
        let (ll, lh, hl, hh) = <Dispatch as HaarKernels>::haar_forward(x.into_dispatch());
        return HaarBands {
            ll: Tensor::from_dispatch(ll),
            lh: Tensor::from_dispatch(lh),
            hl: Tensor::from_dispatch(hl),
            hh: Tensor::from_dispatch(hh),
        };
    }
    dwt_composed(x)
}

/// The forward transform as burn tensor operations (the GPU; the reference of the tests).
pub(crate) fn dwt_composed(x: Tensor<4>) -> HaarBands {
    let [a, b, c, d] = blocks(x);
    let (ab_sum, ab_diff) = (a.clone() + b.clone(), a - b);
    let (cd_sum, cd_diff) = (c.clone() + d.clone(), c - d);
    HaarBands {
        ll: (ab_sum.clone() + cd_sum.clone()) * 0.5,
        hl: (ab_diff.clone() + cd_diff.clone()) * 0.5,
        lh: (ab_sum - cd_sum) * 0.5,
        hh: (ab_diff - cd_diff) * 0.5,
    }
}

/// Inverse transform: `[N, C, H/2, W/2]` bands → `[N, C, H, W]`.
pub fn idwt(bands: HaarBands) -> Tensor<4> {
    let device = bands.ll.device();
    let on_cpu = is_cpu(&device);
    let all = [&bands.ll, &bands.lh, &bands.hl, &bands.hh];
    let covered = on_cpu
        && all
            .iter()
            .all(|band| band.dims() == bands.ll.dims() && band.dtype() == DType::F32);
    if !covered {
        return idwt_composed(bands);
    }
    let HaarBands { ll, lh, hl, hh } = bands;
    Tensor::from_dispatch(<Dispatch as HaarKernels>::haar_inverse(
        ll.into_dispatch(),
        lh.into_dispatch(),
        hl.into_dispatch(),
        hh.into_dispatch(),
    ))
}

/// The inverse transform as burn tensor operations (the GPU; the reference of the tests).
pub(crate) fn idwt_composed(bands: HaarBands) -> Tensor<4> {
    let HaarBands { ll, lh, hl, hh } = bands;
    let [n, c, h2, w2] = ll.dims();
    let a = (ll.clone() + hl.clone() + lh.clone() + hh.clone()) * 0.5;
    let b = (ll.clone() - hl.clone() + lh.clone() - hh.clone()) * 0.5;
    let cc = (ll.clone() + hl.clone() - lh.clone() - hh.clone()) * 0.5;
    let d = (ll - hl - lh + hh) * 0.5;
    let as6 = |t: Tensor<4>| t.reshape([n, c, h2, 1, w2, 1]);
    let top = Tensor::cat(vec![as6(a), as6(b)], 5);
    let bottom = Tensor::cat(vec![as6(cc), as6(d)], 5);
    Tensor::cat(vec![top, bottom], 3).reshape([n, c, h2 * 2, w2 * 2])
}

/// The forward and inverse transforms as backend operations.
#[backend_extension(Flex, Autodiff)]
pub trait HaarKernels: Backend {
    /// The LL, LH, HL and HH bands, each `[N, C, H/2, W/2]`, of an `[N, C, H, W]` f32 image
    /// (H and W even). Under autodiff the four bands are four operations sharing one backward
    /// step: every band must reach the loss (the wavelet expert uses all four).
    #[allow(clippy::type_complexity)]
    fn haar_forward(
        x: FloatTensor<Self>,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    );

    /// The image of four `[N, C, h, w]` f32 bands (LL, LH, HL, HH): `[N, C, 2h, 2w]`.
    fn haar_inverse(
        ll: FloatTensor<Self>,
        lh: FloatTensor<Self>,
        hl: FloatTensor<Self>,
        hh: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

impl HaarKernels for Flex {
    fn haar_forward(x: FlexTensor) -> (FlexTensor, FlexTensor, FlexTensor, FlexTensor) {
        let dims = x.shape().to_vec();
        let x = contiguous(x);
        let band_dims = vec![dims[0], dims[1], dims[2] / 2, dims[3] / 2];
        let [ll, lh, hl, hh] = dwt_planes(f32s(&x), [dims[2], dims[3]])
            .map(|band| FlexTensor::from_data(TensorData::new(band, band_dims.clone())));
        (ll, lh, hl, hh)
    }

    fn haar_inverse(ll: FlexTensor, lh: FlexTensor, hl: FlexTensor, hh: FlexTensor) -> FlexTensor {
        let dims = ll.shape().to_vec();
        let bands = [ll, lh, hl, hh].map(contiguous);
        let image = idwt_planes(bands.each_ref().map(f32s), [dims[2], dims[3]]);
        FlexTensor::from_data(TensorData::new(
            image,
            vec![dims[0], dims[1], 2 * dims[2], 2 * dims[3]],
        ))
    }
}

/// [`dwt`] of every `h × w` plane of `x`: the LL, LH, HL and HH planes, each `h/2 × w/2`.
fn dwt_planes(x: &[f32], [h, w]: [usize; 2]) -> [Vec<f32>; 4] {
    per_block(x, [h / 2, w / 2], |[a, b, c, d]| {
        let (ab_sum, ab_diff, cd_sum, cd_diff) = (a + b, a - b, c + d, c - d);
        [
            (ab_sum + cd_sum) * 0.5,
            (ab_sum - cd_sum) * 0.5,
            (ab_diff + cd_diff) * 0.5,
            (ab_diff - cd_diff) * 0.5,
        ]
    })
}

/// `f` of every 2×2 block's pixels `[a, b, c, d]` (row-major) of the `2·h2 × 2·w2` planes of
/// `image`: four `h2 × w2` planes (in the bands' order LL, LH, HL, HH), the planes in
/// parallel.
pub(crate) fn per_block(
    image: &[f32],
    [h2, w2]: [usize; 2],
    f: impl Fn([f32; 4]) -> [f32; 4] + Sync,
) -> [Vec<f32>; 4] {
    let w = 2 * w2;
    let len = image.len() / 4;
    let mut bands: [Vec<f32>; 4] = std::array::from_fn(|_| vec![0.0; len]);
    let [ll, lh, hl, hh] = &mut bands;
    image
        .par_chunks_exact(4 * h2 * w2)
        .zip(ll.par_chunks_exact_mut(h2 * w2))
        .zip(lh.par_chunks_exact_mut(h2 * w2))
        .zip(hl.par_chunks_exact_mut(h2 * w2))
        .zip(hh.par_chunks_exact_mut(h2 * w2))
        .for_each(|((((plane, ll), lh), hl), hh)| {
            for y in 0..h2 {
                let (top, bottom) = (&plane[2 * y * w..], &plane[(2 * y + 1) * w..]);
                for x in 0..w2 {
                    let block = [top[2 * x], top[2 * x + 1], bottom[2 * x], bottom[2 * x + 1]];
                    let i = y * w2 + x;
                    [ll[i], lh[i], hl[i], hh[i]] = f(block);
                }
            }
        });
    bands
}

/// [`idwt`] of planes of `h2 × w2` bands (LL, LH, HL, HH): planes of `2·h2 × 2·w2`.
fn idwt_planes(bands: [&[f32]; 4], size: [usize; 2]) -> Vec<f32> {
    per_band_value(bands, size, |[l, v, o, d]| {
        [
            (l + o + v + d) * 0.5,
            (l - o + v - d) * 0.5,
            (l + o - v - d) * 0.5,
            (l - o - v + d) * 0.5,
        ]
    })
}

/// Planes of `2·h2 × 2·w2` pixels from planes of `h2 × w2` band values (LL, LH, HL, HH):
/// `f` of each band position's four values gives its 2×2 block's pixels `[a, b, c, d]`
/// (row-major); the planes in parallel.
pub(crate) fn per_band_value(
    [ll, lh, hl, hh]: [&[f32]; 4],
    [h2, w2]: [usize; 2],
    f: impl Fn([f32; 4]) -> [f32; 4] + Sync,
) -> Vec<f32> {
    let w = 2 * w2;
    let mut image = vec![0.0f32; ll.len() * 4];
    image
        .par_chunks_exact_mut(4 * h2 * w2)
        .enumerate()
        .for_each(|(p, plane)| {
            let at = p * h2 * w2..(p + 1) * h2 * w2;
            let (ll, lh, hl, hh) = (&ll[at.clone()], &lh[at.clone()], &hl[at.clone()], &hh[at]);
            for y in 0..h2 {
                let (top, bottom) = plane[2 * y * w..(2 * y + 2) * w].split_at_mut(w);
                for x in 0..w2 {
                    let i = y * w2 + x;
                    let [a, b, c, d] = f([ll[i], lh[i], hl[i], hh[i]]);
                    top[2 * x] = a;
                    top[2 * x + 1] = b;
                    bottom[2 * x] = c;
                    bottom[2 * x + 1] = d;
                }
            }
        });
    image
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, TensorData};

    fn bits(t: &Tensor<4>) -> Vec<u32> {
        t.to_data()
            .try_to_vec::<f32>()
            .expect("f32")
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    #[test]
    fn dwt_then_idwt_reconstructs_exactly() {
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 8, 6], Distribution::Uniform(-1.0, 1.0), &device);
        let back = idwt(dwt(x.clone()));
        let error: f32 = (back - x).abs().max().into_scalar();
        assert!(error < 1e-5, "reconstruction error {error}");
    }

    /// The slice kernels give burn's composition bit for bit (same operations, same order).
    #[test]
    fn slice_kernels_equal_the_composition_bit_for_bit() {
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 10, 14], Distribution::Uniform(-1.0, 1.0), &device);
        // The composition runs on an autodiff device (same values, burn's operations).
        let composed = dwt(Tensor::from_data(x.to_data(), &device.clone().autodiff()));
        let direct = dwt(x);
        for (ours, theirs) in [
            (&direct.ll, &composed.ll),
            (&direct.lh, &composed.lh),
            (&direct.hl, &composed.hl),
            (&direct.hh, &composed.hh),
        ] {
            assert_eq!(bits(ours), bits(theirs));
        }
        assert_eq!(bits(&idwt(direct)), bits(&idwt_composed(composed)));
    }

    #[test]
    fn bands_of_a_known_block() {
        let device = Device::flex();
        // One 2×2 block: a=1, b=2, c=3, d=4.
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 1, 2, 2]),
            &device,
        );
        let bands = dwt(x);
        let value = |t: Tensor<4>| -> f32 { t.into_scalar() };
        assert_eq!(value(bands.ll), 5.0);
        assert_eq!(value(bands.hl), -1.0);
        assert_eq!(value(bands.lh), -2.0);
        assert_eq!(value(bands.hh), 0.0);
    }
}
