//! Feature mutual information, Haghighat & Razian's fast FMI ("Fast-FMI", 2014), 3×3 sliding
//! windows. Follows the authors' MATLAB code step by step — column-major window order, the
//! Nelsen joint PDF between the Fréchet bounds, `real()` of the log of negative joint
//! probabilities, and the fused window being normalised in place by the A branch before the
//! B branch compares against it — because FMI values are only comparable under one code.

use super::GrayImage;

/// Which feature image the windows are taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FmiFeature {
    /// MATLAB `gradient(image)`: the horizontal central difference (one-sided at the edges).
    Gradient,
    /// MATLAB `dct2(image)`: the orthonormal 2-D DCT-II of the whole image.
    Dct,
}

fn horizontal_gradient(v: &[f64], width: usize, height: usize) -> Vec<f64> {
    let mut out = vec![0.0; v.len()];
    for y in 0..height {
        let row = &v[y * width..(y + 1) * width];
        for x in 0..width {
            out[y * width + x] = if width == 1 {
                0.0
            } else if x == 0 {
                row[1] - row[0]
            } else if x == width - 1 {
                row[x] - row[x - 1]
            } else {
                (row[x + 1] - row[x - 1]) / 2.0
            };
        }
    }
    out
}

/// Orthonormal DCT-II along rows then columns.
fn dct2(v: &[f64], width: usize, height: usize) -> Vec<f64> {
    let table = |n: usize| -> Vec<f64> {
        let mut t = vec![0.0; n * n];
        for k in 0..n {
            let scale = if k == 0 {
                (1.0 / n as f64).sqrt()
            } else {
                (2.0 / n as f64).sqrt()
            };
            for i in 0..n {
                t[k * n + i] = scale
                    * (std::f64::consts::PI * (2 * i + 1) as f64 * k as f64 / (2 * n) as f64).cos();
            }
        }
        t
    };
    let (tw, th) = (table(width), table(height));
    let mut rows = vec![0.0; v.len()];
    for y in 0..height {
        let line = &v[y * width..(y + 1) * width];
        for k in 0..width {
            rows[y * width + k] = tw[k * width..(k + 1) * width]
                .iter()
                .zip(line)
                .map(|(c, x)| c * x)
                .sum();
        }
    }
    let mut out = vec![0.0; v.len()];
    for x in 0..width {
        for k in 0..height {
            out[k * width + x] = (0..height)
                .map(|y| th[k * height + y] * rows[y * width + x])
                .sum();
        }
    }
    out
}

const L: usize = 9;

/// Scales a window to [0, 1]; a flat window becomes all ones.
fn normalise(w: &mut [f64; L]) {
    let max = w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let min = w.iter().cloned().fold(f64::INFINITY, f64::min);
    if max == min {
        *w = [1.0; L];
    } else {
        w.iter_mut().for_each(|v| *v = (*v - min) / (max - min));
    }
}

fn entropy_of(pdf: &[f64; L]) -> f64 {
    pdf.iter()
        .filter(|&&p| p != 0.0)
        .map(|&p| -p * p.log2())
        .sum()
}

/// The normalised FMI of one source window `x` against the fused window `f` (which, as in
/// the reference code, is left normalised).
fn window_fmi(x: &[f64; L], f: &mut [f64; L]) -> f64 {
    if x == f {
        return 1.0;
    }
    let mut x = *x;
    normalise(&mut x);
    normalise(f);
    let (sx, sf): (f64, f64) = (x.iter().sum(), f.iter().sum());
    let xp: [f64; L] = x.map(|v| v / sx);
    let fp: [f64; L] = f.map(|v| v / sf);
    let cumulative = |p: &[f64; L]| {
        let mut c = [0.0; L];
        c[0] = p[0];
        for i in 1..L {
            c[i] = p[i] + c[i - 1];
        }
        c
    };
    let (xc, fc) = (cumulative(&xp), cumulative(&fp));
    let (mean_x, mean_f) = (
        xp.iter().sum::<f64>() / L as f64,
        fp.iter().sum::<f64>() / L as f64,
    );
    let (mut sxf, mut sxx, mut sff) = (0.0, 0.0, 0.0);
    for i in 0..L {
        let (dx, df) = (xp[i] - mean_x, fp[i] - mean_f);
        sxf += dx * df;
        sxx += dx * dx;
        sff += df * df;
    }
    let c = if sxf == 0.0 {
        0.0
    } else {
        sxf / (sxx * sff).sqrt()
    };
    let sd = |p: &[f64; L]| {
        let (mut e, mut e2) = (0.0, 0.0);
        for (i, &v) in p.iter().enumerate() {
            let k = (i + 1) as f64;
            e += k * v;
            e2 += k * k * v;
        }
        (e2 - e * e).sqrt()
    };
    let (xsd, fsd) = (sd(&xp), sd(&fp));
    // Fréchet's upper bound (c ≥ 0) or lower bound (c < 0) copula of the two CDFs.
    let upper = c >= 0.0;
    let bound = |u: f64, v: f64| {
        if upper {
            0.5 * (u + v - (u - v).abs())
        } else {
            0.5 * (u + v - 1.0 + (u + v - 1.0).abs())
        }
    };
    let weight = if (upper && c == 0.0) || xsd == 0.0 || fsd == 0.0 {
        0.0
    } else {
        let mut cov = 0.0;
        for &fi in &fc {
            for &xj in &xc {
                cov += bound(fi, xj) - fi * xj;
            }
        }
        c / (cov / (fsd * xsd))
    };
    let mut joint_entropy = 0.0;
    for i in 0..L {
        for j in 0..L {
            let mut mass = bound(fc[i], xc[j]);
            if i > 0 {
                mass -= bound(fc[i - 1], xc[j]);
            }
            if j > 0 {
                mass -= bound(fc[i], xc[j - 1]);
            }
            if i > 0 && j > 0 {
                mass += bound(fc[i - 1], xc[j - 1]);
            }
            let p = weight * mass + (1.0 - weight) * fp[i] * xp[j];
            if p != 0.0 {
                // MATLAB: real(-p·log2(p)), also for a negative p.
                joint_entropy += -p * p.abs().log2();
            }
        }
    }
    let (hx, hf) = (entropy_of(&xp), entropy_of(&fp));
    let mi = hx + hf - joint_entropy;
    if mi == 0.0 { 0.0 } else { 2.0 * mi / (hx + hf) }
}

/// Fast FMI of fused `f` from sources `a` and `b` with the given feature, 3×3 windows.
pub fn fmi(a: &GrayImage, b: &GrayImage, f: &GrayImage, feature: FmiFeature) -> f64 {
    let (w, h) = (a.width, a.height);
    let extract = |img: &GrayImage| match feature {
        FmiFeature::Gradient => horizontal_gradient(&img.values(), w, h),
        FmiFeature::Dct => dct2(&img.values(), w, h),
    };
    let (fa, fb, ff) = (extract(a), extract(b), extract(f));
    // Column-major 3×3 window around (x, y), as MATLAB's `sub(:)`.
    let window = |v: &[f64], x: usize, y: usize| {
        let mut out = [0.0; L];
        for col in 0..3 {
            for row in 0..3 {
                out[col * 3 + row] = v[(y + row - 1) * w + x + col - 1];
            }
        }
        out
    };
    let mut total = 0.0;
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let mut fw = window(&ff, x, y);
            let af = window_fmi(&window(&fa, x, y), &mut fw);
            let bf = window_fmi(&window(&fb, x, y), &mut fw);
            total += (af + bf) / 2.0;
        }
    }
    total / ((w - 2) * (h - 2)) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dct_of_a_constant_is_its_dc_term() {
        let v = vec![2.0; 12];
        let d = dct2(&v, 4, 3);
        assert!((d[0] - 2.0 * (12.0f64).sqrt()).abs() < 1e-12);
        assert!(d[1..].iter().all(|x| x.abs() < 1e-12));
    }

    #[test]
    fn matlab_gradient_is_central_inside_and_one_sided_at_edges() {
        let g = horizontal_gradient(&[0.0, 1.0, 4.0, 9.0], 4, 1);
        assert_eq!(g, vec![1.0, 2.0, 4.0, 5.0]);
    }
}
