//! Moment metrics: correlation (CC), the mixed-scale PSNR of MODEL.md, the sum of
//! correlations of differences (SCD), standard deviation (SD) and spatial frequency (SF).

use super::GrayImage;

/// Pearson correlation of two equally long value lists (MATLAB `corr2`); 0 when one is flat.
pub(super) fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return 0.0;
    }
    sxy / (sxx * syy).sqrt()
}

/// Pearson correlation of two images.
pub fn correlation(x: &GrayImage, y: &GrayImage) -> f64 {
    pearson(&x.values(), &y.values())
}

/// `20·log10(255 / √MSE)` with `MSE = ½ mean((F−A)²) + ½ mean((F−B)²)` on images scaled to
/// [0, 1] (MODEL.md: this mixed scale is what the paper's ≈64 dB column uses).
pub fn psnr(a: &GrayImage, b: &GrayImage, f: &GrayImage) -> f64 {
    let n = f.pixels.len() as f64;
    let mse = |s: &GrayImage| {
        s.pixels
            .iter()
            .zip(&f.pixels)
            .map(|(&p, &q)| {
                let d = (f64::from(q) - f64::from(p)) / 255.0;
                d * d
            })
            .sum::<f64>()
            / n
    };
    let mse = 0.5 * mse(a) + 0.5 * mse(b);
    if mse == 0.0 {
        return f64::INFINITY;
    }
    20.0 * (255.0 / mse.sqrt()).log10()
}

/// Sum of the correlations of differences: `corr2(F − B, A) + corr2(F − A, B)`.
pub fn scd(a: &GrayImage, b: &GrayImage, f: &GrayImage) -> f64 {
    let (va, vb, vf) = (a.values(), b.values(), f.values());
    let minus =
        |x: &[f64], y: &[f64]| -> Vec<f64> { x.iter().zip(y).map(|(p, q)| p - q).collect() };
    pearson(&minus(&vf, &vb), &va) + pearson(&minus(&vf, &va), &vb)
}

/// Standard deviation of the fused image's values (population).
pub fn standard_deviation(f: &GrayImage) -> f64 {
    let v = f.values();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt()
}

/// Spatial frequency `√(RF² + CF²)`: RF and CF are the root mean squared differences of
/// horizontally and vertically neighbouring pixels.
pub fn spatial_frequency(f: &GrayImage) -> f64 {
    let v = f.values();
    let (w, h) = (f.width, f.height);
    let (mut row, mut col) = (0.0, 0.0);
    for y in 0..h {
        for x in 1..w {
            let d = v[y * w + x] - v[y * w + x - 1];
            row += d * d;
        }
    }
    for y in 1..h {
        for x in 0..w {
            let d = v[y * w + x] - v[(y - 1) * w + x];
            col += d * d;
        }
    }
    (row / (h * (w - 1)) as f64 + col / ((h - 1) * w) as f64).sqrt()
}
