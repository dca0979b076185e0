//! Visual information fidelity in the pixel domain (Sheikh & Bovik, `vifp_mscale`): four
//! scales of Gaussian windows (17, 9, 5, 3 pixels, σ = N/5), noise variance 2. A fused image
//! is scored as `VIF(A, F) + VIF(B, F)`, the form the fusion literature's evaluators use.

use super::GrayImage;
use super::filter::{filter_valid, gaussian, product};

/// VIF of `distorted` with respect to `reference`.
pub fn vif(reference: &GrayImage, distorted: &GrayImage) -> f64 {
    let (sigma_nsq, eps) = (2.0, 1e-10);
    let (mut r, mut d) = (reference.values(), distorted.values());
    let (mut w, mut h) = (reference.width, reference.height);
    let (mut numerator, mut denominator) = (0.0, 0.0);
    for scale in 1..=4 {
        let n = (1usize << (4 - scale + 1)) + 1;
        let window = gaussian(n, n as f64 / 5.0);
        if scale > 1 {
            let (rf, fw, fh) = filter_valid(&r, w, h, &window);
            let (df, _, _) = filter_valid(&d, w, h, &window);
            let keep = |v: &[f64]| -> Vec<f64> {
                (0..fh)
                    .step_by(2)
                    .flat_map(|y| (0..fw).step_by(2).map(move |x| v[y * fw + x]))
                    .collect()
            };
            r = keep(&rf);
            d = keep(&df);
            (w, h) = (fw.div_ceil(2), fh.div_ceil(2));
        }
        let (mu1, _, _) = filter_valid(&r, w, h, &window);
        let (mu2, _, _) = filter_valid(&d, w, h, &window);
        let (rr, _, _) = filter_valid(&product(&r, &r), w, h, &window);
        let (dd, _, _) = filter_valid(&product(&d, &d), w, h, &window);
        let (rd, _, _) = filter_valid(&product(&r, &d), w, h, &window);
        for i in 0..mu1.len() {
            let mut sigma1_sq = (rr[i] - mu1[i] * mu1[i]).max(0.0);
            let sigma2_sq = (dd[i] - mu2[i] * mu2[i]).max(0.0);
            let sigma12 = rd[i] - mu1[i] * mu2[i];
            let mut g = sigma12 / (sigma1_sq + eps);
            let mut sv_sq = sigma2_sq - g * sigma12;
            if sigma1_sq < eps {
                g = 0.0;
                sv_sq = sigma2_sq;
                sigma1_sq = 0.0;
            }
            if sigma2_sq < eps {
                g = 0.0;
                sv_sq = 0.0;
            }
            if g < 0.0 {
                sv_sq = sigma2_sq;
                g = 0.0;
            }
            sv_sq = sv_sq.max(eps);
            numerator += (1.0 + g * g * sigma1_sq / (sv_sq + sigma_nsq)).log10();
            denominator += (1.0 + sigma1_sq / sigma_nsq).log10();
        }
    }
    if denominator == 0.0 {
        return 1.0;
    }
    numerator / denominator
}
