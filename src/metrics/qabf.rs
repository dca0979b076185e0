//! Xydeas–Petrović edge preservation Q^{AB/F}: Sobel gradients ('same' convolution, zero
//! padding) of images scaled to [0, 1]; strength and orientation preservation through the
//! sigmoids with Tg 0.9994, kg −15, Dg 0.5, Ta 0.9879, ka −22, Da 0.8; weighted by the source
//! gradient strengths. Follows the reference MATLAB code, including its rule that equal
//! strengths give `G = g_F` (not 1).

use std::f64::consts::FRAC_PI_2;

use super::GrayImage;
use super::filter::convolve_same_3x3;

const SOBEL_Y: [f64; 9] = [1.0, 2.0, 1.0, 0.0, 0.0, 0.0, -1.0, -2.0, -1.0];
const SOBEL_X: [f64; 9] = [-1.0, 0.0, 1.0, -2.0, 0.0, 2.0, -1.0, 0.0, 1.0];

/// Gradient strength and orientation per pixel.
fn gradients(image: &GrayImage) -> (Vec<f64>, Vec<f64>) {
    let v: Vec<f64> = image.values().iter().map(|p| p / 255.0).collect();
    let gx = convolve_same_3x3(&v, image.width, image.height, &SOBEL_X);
    let gy = convolve_same_3x3(&v, image.width, image.height, &SOBEL_Y);
    let strength = gx.iter().zip(&gy).map(|(x, y)| x.hypot(*y)).collect();
    let angle = gx
        .iter()
        .zip(&gy)
        .map(|(x, y)| if *x == 0.0 { FRAC_PI_2 } else { (y / x).atan() })
        .collect();
    (strength, angle)
}

/// Edge preservation of source (g, a) in the fused (gf, af), per pixel.
fn preservation(g: &[f64], a: &[f64], gf: &[f64], af: &[f64]) -> Vec<f64> {
    let (tg, kg, dg, ta, ka, da) = (0.9994, -15.0, 0.5, 0.9879, -22.0, 0.8);
    (0..g.len())
        .map(|i| {
            let relative = if g[i] > gf[i] {
                gf[i] / g[i]
            } else if g[i] == gf[i] {
                gf[i]
            } else {
                g[i] / gf[i]
            };
            let orientation = 1.0 - (a[i] - af[i]).abs() / FRAC_PI_2;
            let qg = tg / (1.0 + (kg * (relative - dg)).exp());
            let qa = ta / (1.0 + (ka * (orientation - da)).exp());
            qg * qa
        })
        .collect()
}

/// Q^{AB/F} of fused `f` from sources `a` and `b`, in [0, 1].
pub fn qabf(a: &GrayImage, b: &GrayImage, f: &GrayImage) -> f64 {
    let (ga, aa) = gradients(a);
    let (gb, ab) = gradients(b);
    let (gf, af) = gradients(f);
    let (qa, qb) = (
        preservation(&ga, &aa, &gf, &af),
        preservation(&gb, &ab, &gf, &af),
    );
    let mut numerator = 0.0;
    let mut denominator = 0.0;
    for i in 0..ga.len() {
        numerator += qa[i] * ga[i] + qb[i] * gb[i];
        denominator += ga[i] + gb[i];
    }
    if denominator == 0.0 {
        return 0.0;
    }
    numerator / denominator
}
