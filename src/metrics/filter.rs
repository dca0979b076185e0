//! The 2-D filtering the metrics need, with MATLAB's conventions: `fspecial('gaussian')`
//! windows, `filter2(.., 'valid')` and `conv2(.., 'same')` with zero padding.

/// A square window, row-major.
pub(super) struct Window {
    pub size: usize,
    pub weights: Vec<f64>,
}

/// `fspecial('gaussian', size, sigma)`: tiny tails (< eps·max) zeroed, normalised to sum 1.
pub(super) fn gaussian(size: usize, sigma: f64) -> Window {
    let half = (size as f64 - 1.0) / 2.0;
    let mut weights: Vec<f64> = (0..size * size)
        .map(|i| {
            let (y, x) = ((i / size) as f64 - half, (i % size) as f64 - half);
            (-(x * x + y * y) / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let max = weights.iter().cloned().fold(0.0, f64::max);
    for w in &mut weights {
        if *w < f64::EPSILON * max {
            *w = 0.0;
        }
    }
    let sum: f64 = weights.iter().sum();
    weights.iter_mut().for_each(|w| *w /= sum);
    Window { size, weights }
}

/// `filter2(window, image, 'valid')`: correlation over the positions where the window fits.
/// Returns the values and the output width and height.
pub(super) fn filter_valid(
    image: &[f64],
    width: usize,
    height: usize,
    window: &Window,
) -> (Vec<f64>, usize, usize) {
    let k = window.size;
    if width < k || height < k {
        return (Vec::new(), 0, 0);
    }
    let (ow, oh) = (width - k + 1, height - k + 1);
    let mut out = vec![0.0; ow * oh];
    for y in 0..oh {
        for (wy, row) in window.weights.chunks_exact(k).enumerate() {
            let line = &image[(y + wy) * width..(y + wy) * width + width];
            let target = &mut out[y * ow..(y + 1) * ow];
            for (wx, &weight) in row.iter().enumerate() {
                if weight == 0.0 {
                    continue;
                }
                for (o, &v) in target.iter_mut().zip(&line[wx..wx + ow]) {
                    *o += weight * v;
                }
            }
        }
    }
    (out, ow, oh)
}

/// `conv2(image, kernel, 'same')` for a 3×3 kernel (row-major), zero padding outside.
pub(super) fn convolve_same_3x3(
    image: &[f64],
    width: usize,
    height: usize,
    kernel: &[f64; 9],
) -> Vec<f64> {
    let mut out = vec![0.0; width * height];
    for y in 0..height {
        for x in 0..width {
            let mut sum = 0.0;
            // Convolution: out(y, x) = Σ image(y − m, x − n) · kernel(m + 1, n + 1).
            for m in -1i64..=1 {
                for n in -1i64..=1 {
                    let (sy, sx) = (y as i64 - m, x as i64 - n);
                    if sy < 0 || sx < 0 || sy >= height as i64 || sx >= width as i64 {
                        continue;
                    }
                    sum += image[sy as usize * width + sx as usize]
                        * kernel[((m + 1) * 3 + n + 1) as usize];
                }
            }
            out[y * width + x] = sum;
        }
    }
    out
}

/// Element-wise product of two equally long value lists.
pub(super) fn product(x: &[f64], y: &[f64]) -> Vec<f64> {
    x.iter().zip(y).map(|(a, b)| a * b).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_window_sums_to_one_and_is_symmetric() {
        let w = gaussian(11, 1.5);
        assert!((w.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(w.weights[0], w.weights[120]);
        assert!(w.weights[60] > w.weights[59]);
    }

    #[test]
    fn same_convolution_flips_the_kernel() {
        // An impulse convolved with a kernel reproduces the kernel (not its mirror).
        let mut image = vec![0.0; 9];
        image[4] = 1.0;
        let kernel = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
        assert_eq!(convolve_same_3x3(&image, 3, 3, &kernel), kernel.to_vec());
    }
}
