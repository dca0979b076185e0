//! Guided-filter fusion (Li, Kang & Hu, IEEE TIP 2013): two-scale decomposition by a 31×31
//! mean filter, saliency from the Gaussian-smoothed absolute Laplacian, binary weight maps
//! refined by guided filtering (base r = 45, ε = 0.3; detail r = 7, ε = 1e-6).

use super::Plane;

/// Mean over a (2r+1)² box, edges replicated, via an integral image.
fn box_mean(p: &Plane, r: usize) -> Plane {
    let (w, h) = (p.width, p.height);
    let r = r as isize;
    // Integral of the edge-replicated image over [−r, w+r) × [−r, h+r).
    let (iw, ih) = (w + 2 * r as usize + 1, h + 2 * r as usize + 1);
    let mut integral = vec![0.0f64; iw * ih];
    for y in 1..ih {
        let mut row = 0.0f64;
        for x in 1..iw {
            row += f64::from(p.at(x as isize - 1 - r, y as isize - 1 - r));
            integral[y * iw + x] = integral[(y - 1) * iw + x] + row;
        }
    }
    let side = (2 * r + 1) as usize;
    let area = (side * side) as f64;
    Plane::new(
        w,
        h,
        (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let (x1, y1) = (x + side, y + side);
                let sum = integral[y1 * iw + x1] - integral[y * iw + x1] - integral[y1 * iw + x]
                    + integral[y * iw + x];
                (sum / area) as f32
            })
            .collect(),
    )
}

/// He et al.'s guided filter of `input` guided by `guide`.
fn guided_filter(guide: &Plane, input: &Plane, r: usize, eps: f32) -> Plane {
    let mean_i = box_mean(guide, r);
    let mean_p = box_mean(input, r);
    let corr_ip = box_mean(&guide.zip(input, |a, b| a * b), r);
    let corr_ii = box_mean(&guide.map(|a| a * a), r);
    let var_i = corr_ii.zip(&mean_i, |c, m| c - m * m);
    let cov_ip = corr_ip.zip(&mean_i.zip(&mean_p, |a, b| a * b), |c, m| c - m);
    let a = cov_ip.zip(&var_i, |c, v| c / (v + eps));
    let b = mean_p.zip(&a.zip(&mean_i, |x, y| x * y), |m, am| m - am);
    let (mean_a, mean_b) = (box_mean(&a, r), box_mean(&b, r));
    mean_a.zip(guide, |x, y| x * y).zip(&mean_b, |x, y| x + y)
}

/// |3×3 Laplacian| smoothed by a Gaussian (r = 5, σ = 5).
fn saliency(p: &Plane) -> Plane {
    let (w, h) = (p.width, p.height);
    let laplacian = Plane::new(
        w,
        h,
        (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as isize, (i / w) as isize);
                (p.at(x - 1, y) + p.at(x + 1, y) + p.at(x, y - 1) + p.at(x, y + 1)
                    - 4.0 * p.at(x, y))
                .abs()
            })
            .collect(),
    );
    let radius = 5isize;
    let taps: Vec<f32> = (-radius..=radius)
        .map(|d| (-(d * d) as f32 / (2.0 * 25.0)).exp())
        .collect();
    let total: f32 = taps.iter().sum();
    let blur_axis = |q: &Plane, horizontal: bool| {
        Plane::new(
            w,
            h,
            (0..w * h)
                .map(|i| {
                    let (x, y) = ((i % w) as isize, (i / w) as isize);
                    taps.iter()
                        .enumerate()
                        .map(|(k, t)| {
                            let d = k as isize - radius;
                            t * if horizontal {
                                q.at(x + d, y)
                            } else {
                                q.at(x, y + d)
                            }
                        })
                        .sum::<f32>()
                        / total
                })
                .collect(),
        )
    };
    blur_axis(&blur_axis(&laplacian, true), false)
}

/// GFF of two gray planes.
pub fn guided_filter_fusion(a: &Plane, b: &Plane) -> Plane {
    let (base_a, base_b) = (box_mean(a, 15), box_mean(b, 15));
    let (detail_a, detail_b) = (a.zip(&base_a, |x, y| x - y), b.zip(&base_b, |x, y| x - y));
    let (sa, sb) = (saliency(a), saliency(b));
    let pa = sa.zip(&sb, |x, y| if x >= y { 1.0 } else { 0.0 });
    let pb = pa.map(|v| 1.0 - v);
    let refine = |p: &Plane, guide: &Plane, r, eps| {
        guided_filter(guide, p, r, eps).map(|v| v.clamp(0.0, 1.0))
    };
    let (wba, wbb) = (refine(&pa, a, 45, 0.3), refine(&pb, b, 45, 0.3));
    let (wda, wdb) = (refine(&pa, a, 7, 1e-6), refine(&pb, b, 7, 1e-6));
    let mut out = Plane::filled(a.width, a.height, 0.0);
    for i in 0..out.data.len() {
        let base_sum = (wba.data[i] + wbb.data[i]).max(1e-6);
        let detail_sum = (wda.data[i] + wdb.data[i]).max(1e-6);
        out.data[i] = (wba.data[i] * base_a.data[i] + wbb.data[i] * base_b.data[i]) / base_sum
            + (wda.data[i] * detail_a.data[i] + wdb.data[i] * detail_b.data[i]) / detail_sum;
    }
    out
}
