//! One-level orthonormal 2-D Haar transform and its exact inverse, the fixed filters of
//! W-DUALMINE's wavelet expert (MODEL.md).
//!
//! `x: [N, C, H, W]` (H, W even) → `HaarBands { ll, lh, hl, hh }`, each `[N, C, H/2, W/2]`.
//! With a, b, c, d the pixels of each 2×2 block (row-major):
//! `LL = (a+b+c+d)/2`, `HL = (a−b+c−d)/2` (horizontal change), `LH = (a+b−c−d)/2`
//! (vertical change), `HH = (a−b−c+d)/2`. The transform is orthonormal, so its inverse is
//! its transpose and reconstruction is exact up to rounding.

use burn::tensor::Tensor;

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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, TensorData};

    #[test]
    fn dwt_then_idwt_reconstructs_exactly() {
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 3, 8, 6], Distribution::Uniform(-1.0, 1.0), &device);
        let back = idwt(dwt(x.clone()));
        let error: f32 = (back - x).abs().max().into_scalar();
        assert!(error < 1e-5, "reconstruction error {error}");
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
