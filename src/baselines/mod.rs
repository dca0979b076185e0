//! Classical fusion baselines, the references the network is scored against: the plain
//! average, Laplacian-pyramid fusion, Haar-DWT max-detail fusion and guided-filter fusion
//! (GFF, Li et al. 2013). Plain `[0, 1]` gray planes in and out, no framework.

mod gff;
mod pyramid;

pub use gff::guided_filter_fusion;
pub use pyramid::{dwt_max_detail, laplacian_pyramid};

/// A gray image, rows top to bottom, x fastest, values nominally in [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Plane {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Plane {
    pub fn new(width: usize, height: usize, data: Vec<f32>) -> Self {
        assert_eq!(data.len(), width * height, "plane size");
        Self {
            width,
            height,
            data,
        }
    }

    pub(crate) fn filled(width: usize, height: usize, value: f32) -> Self {
        Self::new(width, height, vec![value; width * height])
    }

    /// The value at (x, y) with coordinates clamped to the border (edge replication).
    pub(crate) fn at(&self, x: isize, y: isize) -> f32 {
        let x = x.clamp(0, self.width as isize - 1) as usize;
        let y = y.clamp(0, self.height as isize - 1) as usize;
        self.data[y * self.width + x]
    }

    pub(crate) fn zip(&self, other: &Plane, f: impl Fn(f32, f32) -> f32) -> Plane {
        Plane::new(
            self.width,
            self.height,
            self.data
                .iter()
                .zip(&other.data)
                .map(|(&a, &b)| f(a, b))
                .collect(),
        )
    }

    pub(crate) fn map(&self, f: impl Fn(f32) -> f32) -> Plane {
        Plane::new(
            self.width,
            self.height,
            self.data.iter().map(|&a| f(a)).collect(),
        )
    }
}

/// A classical fusion method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Baseline {
    Average,
    LaplacianPyramid,
    DwtMaxDetail,
    GuidedFilter,
}

impl Baseline {
    pub const ALL: [Baseline; 4] = [
        Baseline::Average,
        Baseline::LaplacianPyramid,
        Baseline::DwtMaxDetail,
        Baseline::GuidedFilter,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Baseline::Average => "Average",
            Baseline::LaplacianPyramid => "Laplacian pyramid",
            Baseline::DwtMaxDetail => "DWT max-detail",
            Baseline::GuidedFilter => "GFF",
        }
    }

    /// Fuses two planes of the same size.
    pub fn fuse(self, a: &Plane, b: &Plane) -> Plane {
        assert_eq!((a.width, a.height), (b.width, b.height), "plane sizes");
        match self {
            Baseline::Average => a.zip(b, |x, y| 0.5 * (x + y)),
            Baseline::LaplacianPyramid => laplacian_pyramid(a, b, 4),
            Baseline::DwtMaxDetail => dwt_max_detail(a, b, 3),
            Baseline::GuidedFilter => guided_filter_fusion(a, b),
        }
        .map(|v| v.clamp(0.0, 1.0))
    }
}

/// Max-absolute selection, the detail rule of the multi-scale baselines.
pub(crate) fn max_abs(x: f32, y: f32) -> f32 {
    if x.abs() >= y.abs() { x } else { y }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(w: usize, h: usize, f: impl Fn(usize, usize) -> f32) -> Plane {
        Plane::new(w, h, (0..w * h).map(|i| f(i % w, i / w)).collect())
    }

    #[test]
    fn fusing_an_image_with_itself_returns_it() {
        let a = pattern(37, 29, |x, y| ((x * 3 + y * 5) % 17) as f32 / 16.0);
        for method in Baseline::ALL {
            let f = method.fuse(&a, &a);
            let worst = f
                .data
                .iter()
                .zip(&a.data)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f32::max);
            assert!(worst < 2e-3, "{method:?}: {worst}");
        }
    }

    #[test]
    fn detail_methods_keep_the_stronger_edge() {
        // A has a vertical edge (off the Haar block grid), B is flat: the fused edge must be stronger than the average's.
        let a = pattern(32, 32, |x, _| if x < 17 { 0.0 } else { 1.0 });
        let b = pattern(32, 32, |_, _| 0.5);
        let average = Baseline::Average.fuse(&a, &b);
        let step = |p: &Plane| p.at(17, 16) - p.at(16, 16);
        for method in [
            Baseline::LaplacianPyramid,
            Baseline::DwtMaxDetail,
            Baseline::GuidedFilter,
        ] {
            let f = method.fuse(&a, &b);
            assert!(
                step(&f) > step(&average) + 0.1,
                "{method:?}: {} vs {}",
                step(&f),
                step(&average)
            );
        }
    }
}
