//! Histogram metrics on 8-bit images: entropy (EN) and mutual information (MI), 256 bins,
//! log2.

use super::GrayImage;

fn plogp_sum(counts: &[u64], total: f64) -> f64 {
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total;
            -p * p.log2()
        })
        .sum()
}

/// Shannon entropy of the 256-bin gray histogram, in bits.
pub fn entropy(image: &GrayImage) -> f64 {
    let mut counts = [0u64; 256];
    for &p in &image.pixels {
        counts[p as usize] += 1;
    }
    plogp_sum(&counts, image.pixels.len() as f64)
}

/// Mutual information of two images of the same size from their 256×256 joint histogram,
/// in bits: `H(X) + H(Y) − H(X, Y)`.
pub fn mutual_information(x: &GrayImage, y: &GrayImage) -> f64 {
    let mut joint = vec![0u64; 256 * 256];
    let (mut hx, mut hy) = ([0u64; 256], [0u64; 256]);
    for (&p, &q) in x.pixels.iter().zip(&y.pixels) {
        joint[p as usize * 256 + q as usize] += 1;
        hx[p as usize] += 1;
        hy[q as usize] += 1;
    }
    let total = x.pixels.len() as f64;
    plogp_sum(&hx, total) + plogp_sum(&hy, total) - plogp_sum(&joint, total)
}
