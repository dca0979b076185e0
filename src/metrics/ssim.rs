//! Structural similarity (Wang et al. 2004, the reference MATLAB `ssim_index`): 11×11
//! Gaussian window with σ = 1.5, K = (0.01, 0.03), L = 255, mean over the 'valid' map.

use super::GrayImage;
use super::filter::{filter_valid, gaussian, product};

/// SSIM of two images of the same size.
pub fn ssim(x: &GrayImage, y: &GrayImage) -> f64 {
    let window = gaussian(11, 1.5);
    let (w, h) = (x.width, x.height);
    let (vx, vy) = (x.values(), y.values());
    let (mu_x, _, _) = filter_valid(&vx, w, h, &window);
    let (mu_y, _, _) = filter_valid(&vy, w, h, &window);
    let (xx, _, _) = filter_valid(&product(&vx, &vx), w, h, &window);
    let (yy, _, _) = filter_valid(&product(&vy, &vy), w, h, &window);
    let (xy, _, _) = filter_valid(&product(&vx, &vy), w, h, &window);
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let n = mu_x.len() as f64;
    (0..mu_x.len())
        .map(|i| {
            let (mx, my) = (mu_x[i], mu_y[i]);
            let (sxx, syy, sxy) = (xx[i] - mx * mx, yy[i] - my * my, xy[i] - mx * my);
            ((2.0 * mx * my + c1) * (2.0 * sxy + c2))
                / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        })
        .sum::<f64>()
        / n
}
