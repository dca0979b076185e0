//! Fusion quality metrics, exactly as `MODEL.md` defines them (the protocol that reproduces
//! the W-DUALMINE paper's table from the peers' released images): plain 8-bit gray arrays in,
//! numbers out. No framework.
//!
//! Every metric scores a fused image F against the two sources A and B of one pair; the
//! reported value for a task is the mean (± std) over its test pairs (see [`Summary`]).

mod filter;
mod fmi;
mod information;
mod locality;
mod qabf;
mod ssim;
mod statistics;
mod vif;

use thiserror::Error;

pub use fmi::{FmiFeature, fmi};
pub use information::{entropy, mutual_information};
pub use locality::{
    FOREGROUND_LEVEL, Image8, foreground, locality_residual, mean_absolute_difference,
    percentile_span,
};
pub use qabf::qabf;
pub use ssim::ssim;
pub use statistics::{correlation, psnr, scd, spatial_frequency, standard_deviation};
pub use vif::vif;

/// An 8-bit gray image, rows top to bottom, x fastest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrayImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// Why a pair could not be scored.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MetricsError {
    #[error("images differ in size: {0}×{1} and {2}×{3}")]
    SizeMismatch(usize, usize, usize, usize),
    #[error("an image of {width}×{height} has {len} pixels")]
    BadLength {
        width: usize,
        height: usize,
        len: usize,
    },
    #[error("images of {0}×{1} are too small to score (at least 11×11)")]
    TooSmall(usize, usize),
}

impl GrayImage {
    pub fn new(width: usize, height: usize, pixels: Vec<u8>) -> Result<Self, MetricsError> {
        if pixels.len() != width * height {
            return Err(MetricsError::BadLength {
                width,
                height,
                len: pixels.len(),
            });
        }
        Ok(Self {
            width,
            height,
            pixels,
        })
    }

    /// MATLAB's `rgb2gray` on uint8: `round(0.298936021293775 R + 0.587043074451121 G +
    /// 0.114020904255103 B)` (rounding half away from zero).
    pub fn from_rgb(width: usize, height: usize, rgb: &[u8]) -> Result<Self, MetricsError> {
        if rgb.len() != 3 * width * height {
            return Err(MetricsError::BadLength {
                width,
                height,
                len: rgb.len() / 3,
            });
        }
        let pixels = rgb
            .chunks_exact(3)
            .map(|p| {
                let y = 0.298936021293775 * f64::from(p[0])
                    + 0.587043074451121 * f64::from(p[1])
                    + 0.114020904255103 * f64::from(p[2]);
                y.round().clamp(0.0, 255.0) as u8
            })
            .collect();
        Ok(Self {
            width,
            height,
            pixels,
        })
    }

    /// The pixel values as f64 (0..255).
    pub fn values(&self) -> Vec<f64> {
        self.pixels.iter().map(|&p| f64::from(p)).collect()
    }

    fn same_size(&self, other: &Self) -> Result<(), MetricsError> {
        if (self.width, self.height) != (other.width, other.height) {
            return Err(MetricsError::SizeMismatch(
                self.width,
                self.height,
                other.width,
                other.height,
            ));
        }
        Ok(())
    }
}

/// All metrics of one fused image against its sources.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Scores {
    pub en: f64,
    pub mi: f64,
    pub cc: f64,
    pub psnr: f64,
    pub ssim: f64,
    pub qabf: f64,
    pub scd: f64,
    pub sd: f64,
    pub sf: f64,
    pub vif: f64,
    pub fmi_gradient: f64,
    pub fmi_dct: f64,
}

/// Names of the metrics in [`Scores::as_array`] order.
pub const METRIC_NAMES: [&str; 12] = [
    "EN", "MI", "CC", "PSNR", "SSIM", "Qabf", "SCD", "SD", "SF", "VIF", "FMI_g", "FMI_dct",
];

impl Scores {
    pub fn as_array(&self) -> [f64; 12] {
        [
            self.en,
            self.mi,
            self.cc,
            self.psnr,
            self.ssim,
            self.qabf,
            self.scd,
            self.sd,
            self.sf,
            self.vif,
            self.fmi_gradient,
            self.fmi_dct,
        ]
    }
}

/// Which metrics to compute: FMI is slow-ish (a few hundred ms per pair) and indicative only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricSet {
    /// Everything.
    All,
    /// All but FMI.
    WithoutFmi,
}

/// Scores fused image `f` against sources `a` and `b` (all the same size).
pub fn score(
    a: &GrayImage,
    b: &GrayImage,
    f: &GrayImage,
    set: MetricSet,
) -> Result<Scores, MetricsError> {
    a.same_size(b)?;
    a.same_size(f)?;
    if a.width < 11 || a.height < 11 {
        return Err(MetricsError::TooSmall(a.width, a.height));
    }
    let (with_fmi_g, with_fmi_dct) = match set {
        MetricSet::All => (
            fmi(a, b, f, FmiFeature::Gradient),
            fmi(a, b, f, FmiFeature::Dct),
        ),
        MetricSet::WithoutFmi => (f64::NAN, f64::NAN),
    };
    Ok(Scores {
        en: entropy(f),
        mi: mutual_information(a, f) + mutual_information(b, f),
        cc: 0.5 * (correlation(a, f) + correlation(b, f)),
        psnr: psnr(a, b, f),
        ssim: 0.5 * (ssim(a, f) + ssim(b, f)),
        qabf: qabf(a, b, f),
        scd: scd(a, b, f),
        sd: standard_deviation(f),
        sf: spatial_frequency(f),
        vif: vif(a, f) + vif(b, f),
        fmi_gradient: with_fmi_g,
        fmi_dct: with_fmi_dct,
    })
}

/// Mean and (population) standard deviation of each metric over a set of pairs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub mean: [f64; 12],
    pub std: [f64; 12],
    pub count: usize,
}

impl Summary {
    pub fn of(scores: &[Scores]) -> Self {
        let (mut mean, mut std) = ([0.0; 12], [0.0; 12]);
        for i in 0..12 {
            (mean[i], std[i]) = mean_and_std(scores.iter().map(|s| s.as_array()[i]));
        }
        Self {
            mean,
            std,
            count: scores.len(),
        }
    }
}

/// The mean and the (population) standard deviation of `values` (0, 0 when empty).
pub fn mean_and_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count().max(1) as f64;
    let mean = values.clone().fold(0.0, |m, v| m + v / n);
    let variance = values.fold(0.0, |d, v| d + (v - mean) * (v - mean) / n);
    (mean, variance.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(width: usize, height: usize, f: impl Fn(usize, usize) -> u8) -> GrayImage {
        let pixels = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect();
        GrayImage::new(width, height, pixels).expect("size")
    }

    #[test]
    fn matlab_gray_conversion_rounds_half_away() {
        let g = GrayImage::from_rgb(2, 1, &[255, 255, 255, 10, 20, 30]).expect("size");
        // 0.2989·10 + 0.5870·20 + 0.1140·30 = 18.1 → 18.
        assert_eq!(g.pixels, vec![255, 18]);
    }

    #[test]
    fn a_fused_copy_of_one_source_scores_as_expected() {
        let a = ramp(32, 24, |x, y| ((x * 7 + y * 3) % 256) as u8);
        let b = ramp(
            32,
            24,
            |x, y| if (x / 8 + y / 8) % 2 == 0 { 40 } else { 200 },
        );
        let s = score(&a, &b, &a, MetricSet::All).expect("scores");
        assert!((correlation(&a, &a) - 1.0).abs() < 1e-12);
        assert!((ssim(&a, &a) - 1.0).abs() < 1e-12);
        assert!((mutual_information(&a, &a) - entropy(&a)).abs() < 1e-12);
        assert!((vif(&a, &a) - 1.0).abs() < 1e-9);
        assert!(s.qabf > 0.0 && s.qabf <= 1.0);
        assert!(s.fmi_gradient > 0.0 && s.fmi_gradient <= 1.0);
    }

    #[test]
    fn mismatched_and_tiny_images_are_errors() {
        let a = ramp(16, 16, |x, _| x as u8);
        let b = ramp(16, 15, |x, _| x as u8);
        assert!(matches!(
            score(&a, &b, &a, MetricSet::WithoutFmi),
            Err(MetricsError::SizeMismatch(..))
        ));
        let t = ramp(8, 8, |x, _| x as u8);
        assert_eq!(
            score(&t, &t, &t, MetricSet::WithoutFmi),
            Err(MetricsError::TooSmall(8, 8))
        );
        assert!(GrayImage::new(4, 4, vec![0; 15]).is_err());
    }
}
