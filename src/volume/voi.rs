//! Volumes of interest (VOIs) and their statistics, as a reader of PET/CT uses them:
//! spheres and boxes placed in patient space, and regions grown from a click by a threshold
//! (a fixed value, or a percentage of the local maximum such as 41 %). Statistics are in the
//! volume's own units (SUV, HU, Bq/ml, or the network's maps): max, mean, std, min, voxel
//! count, volume in ml, and the peak of PERCIST (the highest mean in a 1 ml sphere).
//!
//! Partial voxels: a voxel counts by the fraction of it inside the shape, measured as the
//! share of its 4 × 4 × 4 sub-voxel points (at the centres of its sub-cells) that fall inside.
//! Mean, std and volume are weighted by that fraction; max and min run over every voxel with
//! any part inside. Grown regions hold whole voxels.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::geometry::{Vec3, norm, sub};
use super::{Geometry, Units, Volume};

/// Sub-voxel points per axis for the partial-voxel fraction.
const SUBSAMPLES: usize = 4;

/// Radius of a 1 ml sphere, in mm: the PERCIST peak's region.
pub const PEAK_RADIUS_MM: f64 = 6.203_504_908_994;

/// A shape placed in patient space (LPS millimetres).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Shape {
    Sphere {
        centre: Vec3,
        radius_mm: f64,
    },
    /// A box between two opposite corners, its faces along the patient axes.
    Box {
        corner_a: Vec3,
        corner_b: Vec3,
    },
}

impl Shape {
    fn contains(&self, p: Vec3) -> bool {
        match *self {
            Self::Sphere { centre, radius_mm } => norm(sub(p, centre)) <= radius_mm,
            Self::Box { corner_a, corner_b } => (0..3).all(|a| {
                let (lo, hi) = (corner_a[a].min(corner_b[a]), corner_a[a].max(corner_b[a]));
                (lo..=hi).contains(&p[a])
            }),
        }
    }

    /// The patient-space box around the shape: (low corner, high corner).
    fn bounds(&self) -> (Vec3, Vec3) {
        match *self {
            Self::Sphere { centre, radius_mm } => {
                (centre.map(|c| c - radius_mm), centre.map(|c| c + radius_mm))
            }
            Self::Box { corner_a, corner_b } => (
                [0, 1, 2].map(|a| corner_a[a].min(corner_b[a])),
                [0, 1, 2].map(|a| corner_a[a].max(corner_b[a])),
            ),
        }
    }
}

/// How a grown region decides which voxels belong.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Threshold {
    /// Voxels at or above this value (in the volume's units).
    Absolute(f32),
    /// Voxels at or above this fraction (0..1) of the local maximum: the highest voxel
    /// reached by climbing from the click to ever higher neighbours.
    OfLocalMax(f32),
}

/// Why a VOI cannot be made.
#[derive(Debug, Error, PartialEq)]
pub enum VoiError {
    #[error("the VOI does not touch the volume")]
    Outside,
    #[error("the VOI's size is not a positive number of millimetres")]
    BadSize,
    #[error("the grid's axes are degenerate")]
    Degenerate,
    #[error("the clicked voxel ({value}) is below the threshold ({threshold})")]
    SeedBelowThreshold { value: f32, threshold: f32 },
    #[error(
        "the region grew past {limit} voxels ({ml:.0} ml) without closing: raise the threshold"
    )]
    TooLarge { limit: usize, ml: f64 },
    #[error("the VOI would cover {voxels} voxels, more than the {limit} allowed")]
    TooManyVoxels { voxels: u64, limit: u64 },
}

/// Voxels of a VOI with the fraction of each inside.
#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    /// (voxel index in x-fastest order, fraction inside 0..1]).
    pub voxels: Vec<(usize, f32)>,
    /// Part of the shape lies outside the volume and was cut off.
    pub clipped: bool,
}

/// Largest number of voxels a shape's bounding box may span (a 1 m sphere in 1 mm voxels
/// is far beyond any lesion).
const MAX_SHAPE_VOXELS: u64 = 64 << 20;

/// The voxels of `geometry` inside `shape`, with their fractions.
pub fn shape_region(geometry: &Geometry, shape: &Shape) -> Result<Region, VoiError> {
    let size_ok = match *shape {
        Shape::Sphere { radius_mm, .. } => radius_mm.is_finite() && radius_mm > 0.0,
        Shape::Box { corner_a, corner_b } => (0..3).all(|a| {
            corner_a[a].is_finite() && corner_b[a].is_finite() && corner_a[a] != corner_b[a]
        }),
    };
    if !size_ok {
        return Err(VoiError::BadSize);
    }
    // The index-space box around the shape, from the 8 corners of its patient-space box.
    let (lo, hi) = shape.bounds();
    let mut min = [f64::INFINITY; 3];
    let mut max = [f64::NEG_INFINITY; 3];
    for corner in 0..8 {
        let p = [0, 1, 2].map(|a| if corner >> a & 1 == 0 { lo[a] } else { hi[a] });
        let ijk = geometry.world_to_index(p).ok_or(VoiError::Degenerate)?;
        for a in 0..3 {
            min[a] = min[a].min(ijk[a]);
            max[a] = max[a].max(ijk[a]);
        }
    }
    let dims = geometry.dims;
    let span: u64 = (0..3)
        .map(|a| (max[a].ceil() - min[a].floor() + 1.0).max(0.0) as u64)
        .product();
    if span > MAX_SHAPE_VOXELS {
        return Err(VoiError::TooManyVoxels {
            voxels: span,
            limit: MAX_SHAPE_VOXELS,
        });
    }
    let first = min.map(|v| (v - 0.5).floor() as i64);
    let last = max.map(|v| (v + 0.5).ceil() as i64);
    let mut region = Region {
        voxels: Vec::new(),
        clipped: false,
    };
    for k in first[2]..=last[2] {
        for j in first[1]..=last[1] {
            for i in first[0]..=last[0] {
                let fraction = fraction_inside(geometry, shape, [i, j, k]);
                if fraction == 0.0 {
                    continue;
                }
                let inside = [i, j, k]
                    .iter()
                    .zip(dims)
                    .all(|(&v, d)| v >= 0 && (v as usize) < d);
                if inside {
                    let [i, j, k] = [i, j, k].map(|v| v as usize);
                    region
                        .voxels
                        .push(((k * dims[1] + j) * dims[0] + i, fraction));
                } else {
                    region.clipped = true;
                }
            }
        }
    }
    if region.voxels.is_empty() {
        return Err(VoiError::Outside);
    }
    Ok(region)
}

/// The share of voxel `ijk`'s sub-voxel points inside `shape`.
fn fraction_inside(geometry: &Geometry, shape: &Shape, ijk: [i64; 3]) -> f32 {
    let step = 1.0 / SUBSAMPLES as f64;
    let offset = |s: usize| (s as f64 + 0.5) * step - 0.5;
    let mut inside = 0;
    for sk in 0..SUBSAMPLES {
        for sj in 0..SUBSAMPLES {
            for si in 0..SUBSAMPLES {
                let p = geometry.index_to_world([
                    ijk[0] as f64 + offset(si),
                    ijk[1] as f64 + offset(sj),
                    ijk[2] as f64 + offset(sk),
                ]);
                if shape.contains(p) {
                    inside += 1;
                }
            }
        }
    }
    inside as f32 / (SUBSAMPLES * SUBSAMPLES * SUBSAMPLES) as f32
}

/// A region grown from `seed` over face-connected voxels that pass `threshold`, holding at
/// most `limit` voxels.
pub fn grow_region(
    volume: &Volume,
    seed: [usize; 3],
    threshold: Threshold,
    limit: usize,
) -> Result<Region, VoiError> {
    let dims = volume.dims();
    if (0..3).any(|a| seed[a] >= dims[a]) {
        return Err(VoiError::Outside);
    }
    let (start, level) = match threshold {
        Threshold::Absolute(level) => (seed, level),
        Threshold::OfLocalMax(fraction) => {
            let top = climb(volume, seed);
            (top, volume.value(top[0], top[1], top[2]) * fraction)
        }
    };
    let value = volume.value(start[0], start[1], start[2]);
    if value.is_nan() || value < level {
        return Err(VoiError::SeedBelowThreshold {
            value,
            threshold: level,
        });
    }
    let index = |v: [usize; 3]| (v[2] * dims[1] + v[1]) * dims[0] + v[0];
    let mut seen = vec![false; dims.iter().product()];
    let mut queue = VecDeque::from([start]);
    seen[index(start)] = true;
    let mut voxels = Vec::new();
    while let Some(v) = queue.pop_front() {
        voxels.push((index(v), 1.0));
        if voxels.len() > limit {
            return Err(VoiError::TooLarge {
                limit,
                ml: limit as f64 * voxel_ml(&volume.geometry),
            });
        }
        for (axis, delta) in [(0, -1i64), (0, 1), (1, -1), (1, 1), (2, -1), (2, 1)] {
            let moved = v[axis] as i64 + delta;
            if moved < 0 || moved as usize >= dims[axis] {
                continue;
            }
            let mut n = v;
            n[axis] = moved as usize;
            let at = index(n);
            if !seen[at] && volume.value(n[0], n[1], n[2]) >= level {
                seen[at] = true;
                queue.push_back(n);
            }
        }
    }
    Ok(Region {
        voxels,
        clipped: false,
    })
}

/// The outline of `region` on slice `slice` across `axis` of a grid of `dims`: every edge
/// between a voxel of the region lying in that slice and an in-plane neighbour that is not in
/// it (or lies beyond the grid), as a segment in continuous voxel coordinates (voxel `i` spans
/// `i..i+1`) in the slice's middle plane. Empty where the region does not cut the slice.
pub fn outline(region: &Region, dims: [usize; 3], axis: usize, slice: usize) -> Vec<[[f32; 3]; 2]> {
    let [a, b] = match axis {
        0 => [1, 2],
        1 => [0, 2],
        _ => [0, 1],
    };
    let (width, height) = (dims[a], dims[b]);
    let mut inside = vec![false; width * height];
    let mut any = false;
    for &(index, fraction) in &region.voxels {
        let ijk = [
            index % dims[0],
            index / dims[0] % dims[1],
            index / (dims[0] * dims[1]),
        ];
        if fraction > 0.0 && ijk[axis] == slice && ijk[2] < dims[2] {
            inside[ijk[b] * width + ijk[a]] = true;
            any = true;
        }
    }
    let mut segments = Vec::new();
    if !any {
        return segments;
    }
    let middle = slice as f32 + 0.5;
    let point = |u: usize, v: usize| {
        let mut p = [middle; 3];
        p[a] = u as f32;
        p[b] = v as f32;
        p
    };
    let is_inside = |u: i64, v: i64| {
        u >= 0
            && v >= 0
            && (u as usize) < width
            && (v as usize) < height
            && inside[v as usize * width + u as usize]
    };
    for v in 0..height {
        for u in 0..width {
            if !inside[v * width + u] {
                continue;
            }
            let (ui, vi) = (u as i64, v as i64);
            if !is_inside(ui - 1, vi) {
                segments.push([point(u, v), point(u, v + 1)]);
            }
            if !is_inside(ui + 1, vi) {
                segments.push([point(u + 1, v), point(u + 1, v + 1)]);
            }
            if !is_inside(ui, vi - 1) {
                segments.push([point(u, v), point(u + 1, v)]);
            }
            if !is_inside(ui, vi + 1) {
                segments.push([point(u, v + 1), point(u + 1, v + 1)]);
            }
        }
    }
    segments
}

/// The local maximum reached from `from` by moving to the highest of the 26 neighbours while
/// it is higher.
fn climb(volume: &Volume, from: [usize; 3]) -> [usize; 3] {
    let dims = volume.dims();
    let mut at = from;
    loop {
        let mut best = (volume.value(at[0], at[1], at[2]), at);
        for dk in -1i64..=1 {
            for dj in -1i64..=1 {
                for di in -1i64..=1 {
                    let n = [at[0] as i64 + di, at[1] as i64 + dj, at[2] as i64 + dk];
                    if (0..3).any(|a| n[a] < 0 || n[a] as usize >= dims[a]) {
                        continue;
                    }
                    let n = n.map(|v| v as usize);
                    let value = volume.value(n[0], n[1], n[2]);
                    if value > best.0 {
                        best = (value, n);
                    }
                }
            }
        }
        if best.1 == at {
            return at;
        }
        at = best.1;
    }
}

/// Millilitres per voxel of `geometry` (sheared grids included).
pub fn voxel_ml(geometry: &Geometry) -> f64 {
    let [a, b, c] =
        [0, 1, 2].map(|axis| geometry.direction[axis].map(|d| d * geometry.spacing[axis]));
    let det = a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0])
        + a[2] * (b[0] * c[1] - b[1] * c[0]);
    det.abs() / 1000.0
}

/// Statistics of one volume inside one region.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Statistics {
    pub units: String,
    /// Voxels with any part inside (and a value: NaN voxels are skipped).
    pub voxels: usize,
    /// Sum of the fractions inside × the voxel volume.
    pub volume_ml: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub std: f64,
    /// Highest mean over a 1 ml sphere centred on a voxel of the region (PERCIST's SUVpeak
    /// when the units are SUV); `None` for grown regions of one voxel's size and below.
    pub peak: Option<f64>,
}

/// Statistics of `volume`'s first channel inside `region`; `None` when no voxel there has a
/// value.
pub fn statistics(volume: &Volume, region: &Region) -> Option<Statistics> {
    let channels = volume.channels;
    let (mut weight, mut sum, mut count) = (0.0f64, 0.0f64, 0usize);
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for &(index, fraction) in &region.voxels {
        let value = f64::from(volume.data[index * channels]);
        if value.is_nan() {
            continue;
        }
        weight += f64::from(fraction);
        sum += f64::from(fraction) * value;
        count += 1;
        min = min.min(value);
        max = max.max(value);
    }
    if count == 0 || weight <= 0.0 {
        return None;
    }
    let mean = sum / weight;
    let variance = region
        .voxels
        .iter()
        .map(|&(index, fraction)| (f64::from(volume.data[index * channels]), fraction))
        .filter(|(v, _)| !v.is_nan())
        .map(|(v, fraction)| f64::from(fraction) * (v - mean).powi(2))
        .sum::<f64>()
        / weight;
    Some(Statistics {
        units: units_name(&volume.units),
        voxels: count,
        volume_ml: weight * voxel_ml(&volume.geometry),
        min,
        max,
        mean,
        std: variance.sqrt(),
        peak: peak(volume, region),
    })
}

/// The name a statistic's units go by ("SUV", "HU", "Bq/ml", …).
pub fn units_name(units: &Units) -> String {
    match units {
        Units::Hounsfield => "HU".into(),
        Units::SuvBw => "SUV".into(),
        Units::BqPerMl => "Bq/ml".into(),
        Units::Counts => "counts".into(),
        Units::Signal => "signal".into(),
        Units::Other(name) => name.clone(),
    }
}

/// PERCIST's peak: the highest mean over a 1 ml sphere centred on any voxel of the region
/// whose centre lies inside it (fraction ≥ ½), the sphere's voxels weighted by the fraction
/// of each inside it and cut at the volume's edge.
fn peak(volume: &Volume, region: &Region) -> Option<f64> {
    let geometry = &volume.geometry;
    let dims = geometry.dims;
    let kernel = peak_kernel(geometry)?;
    let mut best: Option<f64> = None;
    for &(index, fraction) in &region.voxels {
        if fraction < 0.5 {
            continue;
        }
        let centre = [
            (index % dims[0]) as i64,
            (index / dims[0] % dims[1]) as i64,
            (index / (dims[0] * dims[1])) as i64,
        ];
        let (mut sum, mut weight) = (0.0f64, 0.0f64);
        for &(offset, w) in &kernel {
            let v = [0, 1, 2].map(|a| centre[a] + offset[a]);
            if (0..3).any(|a| v[a] < 0 || v[a] as usize >= dims[a]) {
                continue;
            }
            let value = f64::from(volume.value(v[0] as usize, v[1] as usize, v[2] as usize));
            if value.is_nan() {
                continue;
            }
            sum += f64::from(w) * value;
            weight += f64::from(w);
        }
        if weight > 0.0 {
            let mean = sum / weight;
            best = Some(best.map_or(mean, |b| b.max(mean)));
        }
    }
    best
}

/// Voxel offsets around a centre voxel with the fraction of each inside a 1 ml sphere
/// centred on that voxel's centre.
fn peak_kernel(geometry: &Geometry) -> Option<Vec<([i64; 3], f32)>> {
    let local = Geometry {
        origin: [0.0; 3],
        ..geometry.clone()
    };
    let sphere = Shape::Sphere {
        centre: [0.0; 3],
        radius_mm: PEAK_RADIUS_MM,
    };
    let reach = (0..3)
        .map(|a| (PEAK_RADIUS_MM / geometry.spacing[a]).ceil() as i64 + 1)
        .collect::<Vec<_>>();
    if reach.iter().any(|r| *r > 64) {
        return None;
    }
    let mut kernel = Vec::new();
    for k in -reach[2]..=reach[2] {
        for j in -reach[1]..=reach[1] {
            for i in -reach[0]..=reach[0] {
                let fraction = fraction_inside(&local, &sphere, [i, j, k]);
                if fraction > 0.0 {
                    kernel.push(([i, j, k], fraction));
                }
            }
        }
    }
    Some(kernel)
}

#[cfg(test)]
mod tests {
    /// An L of three voxels on axial slice 1 of a 4×3×2 grid: eight edges, none on the
    /// other slice; across the other axes the same region cuts as strips.
    #[test]
    fn an_outline_follows_the_voxels_of_its_slice() {
        let dims = [4, 3, 2];
        let index = |i: usize, j: usize, k: usize| (k * dims[1] + j) * dims[0] + i;
        let region = Region {
            voxels: vec![
                (index(1, 1, 1), 1.0),
                (index(2, 1, 1), 1.0),
                (index(1, 2, 1), 1.0),
            ],
            clipped: false,
        };
        let segments = outline(&region, dims, 2, 1);
        assert_eq!(segments.len(), 8);
        assert!(segments.iter().flatten().all(|p| p[2] == 1.5));
        // Every edge has unit length and lies on whole voxel boundaries.
        for [p, q] in &segments {
            let length: f32 = (0..3).map(|d| (p[d] - q[d]).abs()).sum();
            assert_eq!(length, 1.0);
            assert!([p[0], p[1], q[0], q[1]].iter().all(|c| c.fract() == 0.0));
        }
        // The shared edge between (1,1) and (2,1) is not an outline edge.
        assert!(!segments.contains(&[[2.0, 1.0, 1.5], [2.0, 2.0, 1.5]]));
        assert!(outline(&region, dims, 2, 0).is_empty());
        // Coronal slice j = 1: voxels i = 1, 2 at k = 1, at the top edge of the grid.
        let coronal = outline(&region, dims, 1, 1);
        assert_eq!(coronal.len(), 6);
        assert!(coronal.iter().flatten().all(|p| p[1] == 1.5));
        assert!(coronal.contains(&[[1.0, 1.5, 2.0], [2.0, 1.5, 2.0]]));
    }

    use super::*;

    fn cube(values: impl Fn([usize; 3]) -> f32) -> Volume {
        let dims = [21, 21, 21];
        let g = Geometry::axis_aligned(dims, [2.0; 3], [-20.0; 3]);
        let data = (0..21 * 21 * 21)
            .map(|n| values([n % 21, n / 21 % 21, n / 441]))
            .collect();
        Volume::new(g, data).expect("valid")
    }

    #[test]
    fn a_sphere_holds_its_volume_and_a_box_its_exact_voxels() {
        let volume = cube(|_| 3.0);
        let sphere = Shape::Sphere {
            centre: [0.0; 3],
            radius_mm: 10.0,
        };
        let region = shape_region(&volume.geometry, &sphere).expect("inside");
        let stats = statistics(&volume, &region).expect("values");
        let exact = 4.0 / 3.0 * std::f64::consts::PI * 1000.0 / 1000.0;
        assert!((stats.volume_ml - exact).abs() / exact < 0.01, "{stats:?}");
        assert_eq!((stats.mean, stats.std, stats.max), (3.0, 0.0, 3.0));
        assert!(!region.clipped);
        // A box on voxel edges (±1 mm around centres): exactly 3 × 3 × 3 whole voxels.
        let boxed = Shape::Box {
            corner_a: [-3.0; 3],
            corner_b: [3.0; 3],
        };
        let region = shape_region(&volume.geometry, &boxed).expect("inside");
        assert_eq!(region.voxels.len(), 27);
        assert!(region.voxels.iter().all(|(_, f)| *f == 1.0));
        assert!((statistics(&volume, &region).expect("values").volume_ml - 0.216).abs() < 1e-9);
    }

    #[test]
    fn a_sphere_over_the_edge_is_clipped_and_one_outside_refused() {
        let volume = cube(|_| 1.0);
        let over = Shape::Sphere {
            centre: [20.0, 0.0, 0.0],
            radius_mm: 6.0,
        };
        assert!(
            shape_region(&volume.geometry, &over)
                .expect("touches")
                .clipped
        );
        let outside = Shape::Sphere {
            centre: [100.0, 0.0, 0.0],
            radius_mm: 6.0,
        };
        assert_eq!(
            shape_region(&volume.geometry, &outside),
            Err(VoiError::Outside)
        );
        let zero = Shape::Sphere {
            centre: [0.0; 3],
            radius_mm: 0.0,
        };
        assert_eq!(
            shape_region(&volume.geometry, &zero),
            Err(VoiError::BadSize)
        );
    }

    #[test]
    fn a_grown_region_follows_the_threshold_and_stops_at_its_limit() {
        // A hot 5³ block (value 10) with a peak of 20 at its centre, in a background of 1.
        let volume = cube(|v| {
            if v == [10, 10, 10] {
                20.0
            } else if v.iter().all(|c| (8..13).contains(c)) {
                10.0
            } else {
                1.0
            }
        });
        // 41 % of the local max (20) is 8.2: the block, climbed to from its corner.
        let region =
            grow_region(&volume, [8, 8, 8], Threshold::OfLocalMax(0.41), 10_000).expect("grows");
        assert_eq!(region.voxels.len(), 125);
        let absolute = grow_region(&volume, [9, 9, 9], Threshold::Absolute(15.0), 10_000);
        assert!(matches!(absolute, Err(VoiError::SeedBelowThreshold { .. })));
        let everything = grow_region(&volume, [0, 0, 0], Threshold::Absolute(0.5), 1000);
        assert!(matches!(
            everything,
            Err(VoiError::TooLarge { limit: 1000, .. })
        ));
    }
}
