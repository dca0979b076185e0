//! Multi-scale baselines: Laplacian-pyramid fusion (Burt & Adelson; 5-tap binomial kernel,
//! averaged base, max-absolute details) and Haar-DWT fusion (averaged LL, max-absolute
//! details).

use super::{Plane, max_abs};

const KERNEL: [f32; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];

/// Separable 5-tap binomial blur, edges replicated.
fn blur(p: &Plane) -> Plane {
    let (w, h) = (p.width, p.height);
    let mut rows = Plane::filled(w, h, 0.0);
    for y in 0..h {
        for x in 0..w {
            rows.data[y * w + x] = (0..5)
                .map(|k| KERNEL[k] * p.at(x as isize + k as isize - 2, y as isize))
                .sum();
        }
    }
    let mut out = Plane::filled(w, h, 0.0);
    for y in 0..h {
        for x in 0..w {
            out.data[y * w + x] = (0..5)
                .map(|k| KERNEL[k] * rows.at(x as isize, y as isize + k as isize - 2))
                .sum();
        }
    }
    out
}

/// Blur then keep every other pixel.
fn reduce(p: &Plane) -> Plane {
    let b = blur(p);
    let (w, h) = (p.width.div_ceil(2), p.height.div_ceil(2));
    Plane::new(
        w,
        h,
        (0..w * h)
            .map(|i| b.data[(i / w) * 2 * p.width + (i % w) * 2])
            .collect(),
    )
}

/// Upsample to `width × height` (bilinear, pixel centres aligned) then blur lightly.
fn expand(p: &Plane, width: usize, height: usize) -> Plane {
    let sample = |x: usize, y: usize| {
        let fx = (x as f32 + 0.5) / 2.0 - 0.5;
        let fy = (y as f32 + 0.5) / 2.0 - 0.5;
        let (x0, y0) = (fx.floor(), fy.floor());
        let (tx, ty) = (fx - x0, fy - y0);
        let (x0, y0) = (x0 as isize, y0 as isize);
        (1.0 - ty) * ((1.0 - tx) * p.at(x0, y0) + tx * p.at(x0 + 1, y0))
            + ty * ((1.0 - tx) * p.at(x0, y0 + 1) + tx * p.at(x0 + 1, y0 + 1))
    };
    Plane::new(
        width,
        height,
        (0..width * height)
            .map(|i| sample(i % width, i / width))
            .collect(),
    )
}

/// Laplacian-pyramid fusion with `levels` detail levels.
pub fn laplacian_pyramid(a: &Plane, b: &Plane, levels: usize) -> Plane {
    let (mut ga, mut gb) = (a.clone(), b.clone());
    let mut details = Vec::new();
    for _ in 0..levels {
        if ga.width < 4 || ga.height < 4 {
            break;
        }
        let (na, nb) = (reduce(&ga), reduce(&gb));
        let la = ga.zip(&expand(&na, ga.width, ga.height), |x, y| x - y);
        let lb = gb.zip(&expand(&nb, gb.width, gb.height), |x, y| x - y);
        details.push(la.zip(&lb, max_abs));
        (ga, gb) = (na, nb);
    }
    let mut fused = ga.zip(&gb, |x, y| 0.5 * (x + y));
    for detail in details.into_iter().rev() {
        fused = expand(&fused, detail.width, detail.height).zip(&detail, |x, y| x + y);
    }
    fused
}

/// One orthonormal Haar level (edge-replicated to even size): LL, LH, HL, HH at half size.
fn haar(p: &Plane) -> [Plane; 4] {
    let (w, h) = (p.width.div_ceil(2), p.height.div_ceil(2));
    let mut bands = [(); 4].map(|_| Plane::filled(w, h, 0.0));
    for y in 0..h {
        for x in 0..w {
            let (x2, y2) = (2 * x as isize, 2 * y as isize);
            let (a, b, c, d) = (
                p.at(x2, y2),
                p.at(x2 + 1, y2),
                p.at(x2, y2 + 1),
                p.at(x2 + 1, y2 + 1),
            );
            let i = y * w + x;
            bands[0].data[i] = (a + b + c + d) / 2.0;
            bands[1].data[i] = (a - b + c - d) / 2.0;
            bands[2].data[i] = (a + b - c - d) / 2.0;
            bands[3].data[i] = (a - b - c + d) / 2.0;
        }
    }
    bands
}

/// Inverse of [`haar`], cropped to `width × height`.
fn inverse_haar(bands: &[Plane; 4], width: usize, height: usize) -> Plane {
    let mut out = Plane::filled(width, height, 0.0);
    let w = bands[0].width;
    for y in 0..height {
        for x in 0..width {
            let i = (y / 2) * w + x / 2;
            let (ll, lh, hl, hh) = (
                bands[0].data[i],
                bands[1].data[i],
                bands[2].data[i],
                bands[3].data[i],
            );
            let sx = if x % 2 == 0 { 1.0 } else { -1.0 };
            let sy = if y % 2 == 0 { 1.0 } else { -1.0 };
            out.data[y * width + x] = (ll + sx * lh + sy * hl + sx * sy * hh) / 2.0;
        }
    }
    out
}

/// Haar DWT fusion over `levels` levels.
pub fn dwt_max_detail(a: &Plane, b: &Plane, levels: usize) -> Plane {
    if levels == 0 || a.width < 2 || a.height < 2 {
        return a.zip(b, |x, y| 0.5 * (x + y));
    }
    let (ba, bb) = (haar(a), haar(b));
    let low = dwt_max_detail(&ba[0], &bb[0], levels - 1);
    let detail = |k: usize| ba[k].zip(&bb[k], max_abs);
    inverse_haar(&[low, detail(1), detail(2), detail(3)], a.width, a.height)
}
