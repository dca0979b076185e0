//! Registration of a moving study onto a fixed one: six parameters (three rotations about a
//! centre, three translations; with [`Options::affine`] also three scales and three shears
//! on the two finest levels) maximising Mattes mutual information (joint histogram
//! with a cubic B-spline Parzen window on the moving side), over a resolution pyramid
//! (block-averaged to 4×, 2×, 1× the fixed study's finest voxel edge by default, each axis
//! only as far as that, so thick slices and coarse PET voxels are kept), started from the
//! centres of mass (or of the grids). The metric runs in parallel over a fixed random sample
//! of fixed-image voxels; the optimiser is a pattern search with step halving, with several
//! rotated starts at the coarsest level so that rotations of ±15° about every axis are within
//! reach.
//!
//! The [`Transform`] maps fixed patient coordinates (LPS mm) to moving ones, so
//! `resample_transformed(moving, fixed grid, matrix)` puts the moving study on the fixed
//! grid.

use rayon::prelude::*;
use thiserror::Error;

use super::geometry::{invert3, sub};
use super::stats::percentiles;
use super::transform::{Parameters, Transform};
use super::{Geometry, Volume};

/// Why a registration could not run.
#[derive(Debug, Error, PartialEq)]
pub enum RegisterError {
    #[error("only gray studies can be registered (a study has {0} channels)")]
    NotGray(usize),
    #[error("the {0} study has no contrast to register on (all its values are equal)")]
    Flat(&'static str),
    #[error("the studies do not overlap: no fixed sample falls inside the moving study")]
    NoOverlap,
    #[error("a study's grid cannot be inverted")]
    DegenerateGrid,
    #[error("the registration was cancelled")]
    Cancelled,
}

/// Where the search starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Start {
    /// The moving study's intensity centre of mass over the fixed study's.
    CentreOfMass,
    /// The moving grid's centre over the fixed grid's.
    GridCentre,
    /// A given transform.
    Given(Transform),
}

/// How to register.
#[derive(Clone, Debug)]
pub struct Options {
    /// Pyramid levels, coarsest first: target voxel edges as multiples of the fixed study's
    /// finest one.
    pub levels: Vec<usize>,
    /// Histogram bins per study.
    pub bins: usize,
    /// Fixed voxels sampled per level.
    pub samples: usize,
    pub start: Start,
    /// Also search scales and shears (12 degrees of freedom) on the two finest levels.
    pub affine: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            levels: vec![4, 2, 1],
            bins: 32,
            samples: 60_000,
            start: Start::CentreOfMass,
            affine: false,
        }
    }
}

/// The outcome.
#[derive(Clone, Debug)]
pub struct Registration {
    pub transform: Transform,
    /// Mattes mutual information at the finest level (nats).
    pub mutual_information: f64,
    /// Metric evaluations over all levels.
    pub evaluations: usize,
}

/// Registers `moving` onto `fixed` (see the module documentation).
pub fn register(
    fixed: &Volume,
    moving: &Volume,
    options: &Options,
) -> Result<Registration, RegisterError> {
    register_with_progress(fixed, moving, options, &mut |_, _| true)
}

/// [`register`] reporting `progress(levels done, levels)` before each level and at
/// the end; returning `false` cancels.
pub fn register_with_progress(
    fixed: &Volume,
    moving: &Volume,
    options: &Options,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Registration, RegisterError> {
    for v in [fixed, moving] {
        if v.channels != 1 {
            return Err(RegisterError::NotGray(v.channels));
        }
    }
    let levels: Vec<usize> = if options.levels.is_empty() {
        vec![1]
    } else {
        options.levels.clone()
    };
    let pyramid = pyramid(fixed, moving, &levels);
    // Intensity ranges from the coarsest level (cheap, and robust to noise).
    let range = |v: &Volume, which| -> Result<(f32, f32), RegisterError> {
        let [low, high] = percentiles(v, [0.5, 99.5]).ok_or(RegisterError::Flat(which))?;
        if high > low {
            Ok((low, high))
        } else {
            Err(RegisterError::Flat(which))
        }
    };
    let fixed_range = range(&pyramid[0].0, "fixed")?;
    let moving_range = range(&pyramid[0].1, "moving")?;
    let mut transform = starting_transform(options.start, fixed, moving, &pyramid[0]);
    let mut evaluations = 0;
    let mut metric = f64::NEG_INFINITY;
    for (index, (f, m)) in pyramid.iter().enumerate() {
        if !progress(index, pyramid.len()) {
            return Err(RegisterError::Cancelled);
        }
        let level = Level::new(f, m, options, fixed_range, moving_range, index as u64)?;
        let voxel = f.geometry.spacing.iter().copied().fold(0.0, f64::max);
        let scale = (levels.len() - 1 - index) as i32;
        let last = index + 1 == pyramid.len();
        let affine = options.affine && index + 2 >= pyramid.len();
        let (steps, min_steps) = search_steps(scale, voxel, last, affine);
        let mut starts = vec![transform];
        if index == 0 {
            // Rotated starts: the pattern search alone can stall far from large rotations.
            for axis in 0..3 {
                for sign in [-1.0, 1.0] {
                    let mut start = transform;
                    start.angles_deg[axis] += sign * 12.0;
                    starts.push(start);
                }
            }
        }
        let mut best = (transform, f64::NEG_INFINITY);
        for start in starts {
            let found = level.pattern_search(start, &steps, &min_steps, &mut evaluations);
            if found.1 > best.1 {
                best = found;
            }
        }
        if !best.1.is_finite() {
            return Err(RegisterError::NoOverlap);
        }
        (transform, metric) = best;
    }
    progress(pyramid.len(), pyramid.len());
    Ok(Registration {
        transform,
        mutual_information: metric,
        evaluations,
    })
}

/// The levels' pairs of studies, coarsest first: each level's target spacing is its factor
/// times the fixed study's finest voxel edge, and every axis of either study is
/// block-averaged only as far as that, so thick slices and coarse PET voxels are not
/// coarsened further.
fn pyramid(fixed: &Volume, moving: &Volume, levels: &[usize]) -> Vec<(Volume, Volume)> {
    levels
        .iter()
        .map(|&f| {
            let target = f as f64
                * fixed
                    .geometry
                    .spacing
                    .iter()
                    .copied()
                    .fold(f64::MAX, f64::min);
            let factors = |v: &Volume| {
                v.geometry
                    .spacing
                    .map(|s| ((target / s).round() as usize).clamp(1, f.max(1)))
            };
            (
                downsample(fixed, factors(fixed)),
                downsample(moving, factors(moving)),
            )
        })
        .collect()
}

/// Where the search starts: the given transform, the grids' centres aligned, or the
/// centres of mass of the coarsest level aligned (the grid centre when either has none).
fn starting_transform(
    start: Start,
    fixed: &Volume,
    moving: &Volume,
    coarsest: &(Volume, Volume),
) -> Transform {
    let centre = grid_centre(&fixed.geometry);
    match start {
        Start::Given(t) => t,
        Start::GridCentre => Transform {
            translation_mm: sub(grid_centre(&moving.geometry), centre),
            ..Transform::identity_about(centre)
        },
        Start::CentreOfMass => {
            let (f, m) = (centre_of_mass(&coarsest.0), centre_of_mass(&coarsest.1));
            match (f, m) {
                (Some(f), Some(m)) => Transform {
                    translation_mm: sub(m, f),
                    ..Transform::identity_about(f)
                },
                _ => Transform::identity_about(centre),
            }
        }
    }
}

/// A level's first and smallest pattern-search steps (rotations in degrees, translations in
/// mm, then the affine scales and shears): `scale` levels above the finest, `voxel` its
/// largest voxel edge, `affine` whether scales and shears are searched on this level.
fn search_steps(scale: i32, voxel: f64, last: bool, affine: bool) -> (Parameters, Parameters) {
    let floor = if last { 0.02 } else { 0.25 };
    // Rotation steps: 1° moves a point 100 mm from the centre by 1.7 mm. Scales and
    // shears (affine only, on the two finest levels): 2 % at first; 0.05 % at 100 mm
    // is another 0.05 mm.
    let (linear_step, linear_floor) = if affine {
        (0.02, if last { 0.0005 } else { 0.002 })
    } else {
        (0.0, 0.0)
    };
    let mut steps: Parameters = [0.0; 12];
    let mut min_steps: Parameters = [0.0; 12];
    for i in 0..3 {
        steps[i] = 2f64.powi(scale).min(8.0);
        steps[3 + i] = voxel * 2.0;
        min_steps[i] = floor;
        min_steps[3 + i] = voxel * floor;
    }
    for i in 6..12 {
        (steps[i], min_steps[i]) = (linear_step, linear_floor);
    }
    (steps, min_steps)
}

/// One pyramid level: the fixed samples and the moving study, with both intensity maps.
struct Level<'a> {
    /// World position and histogram bin of each fixed sample.
    samples: Vec<([f64; 3], u16)>,
    moving: &'a Volume,
    /// Moving world → index.
    to_index: [[f64; 4]; 3],
    moving_low: f32,
    moving_scale: f32,
    bins: usize,
}

impl<'a> Level<'a> {
    fn new(
        fixed: &Volume,
        moving: &'a Volume,
        options: &Options,
        fixed_range: (f32, f32),
        moving_range: (f32, f32),
        seed: u64,
    ) -> Result<Self, RegisterError> {
        let bins = options.bins.max(4);
        let count = fixed.data.len();
        let take = options.samples.min(count).max(1);
        // A fixed pseudo-random subset (xorshift), the same on every run.
        let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ seed.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let dims = fixed.geometry.dims;
        let [nx, ny, _] = dims;
        let fixed_scale = (bins - 1) as f32 / (fixed_range.1 - fixed_range.0);
        // Positions jittered within their voxel: samples on the voxel lattice make the
        // metric jagged wherever the two grids line up.
        // Every sample counts, background included: the outline of the body against air
        // is what aligns emission and anatomy best (a foreground-only mask moved STS_001's
        // PET 7–10 mm off its CT).
        let samples = (0..take)
            .filter_map(|n| {
                let index = if take == count {
                    n
                } else {
                    (next() % count as u64) as usize
                };
                let ijk = [index % nx, (index / nx) % ny, index / (nx * ny)];
                let q = ijk.map(|c| c as f64 + (next() % 1_000_000) as f64 / 1_000_000.0 - 0.5);
                let value = trilinear(fixed, dims, q).unwrap_or(fixed.data[index]);
                if !value.is_finite() {
                    // No data at this sample (NaN in a float NIfTI): not used.
                    return None;
                }
                let world = fixed.geometry.index_to_world(q);
                let bin = ((value - fixed_range.0) * fixed_scale)
                    .round()
                    .clamp(0.0, (bins - 1) as f32) as u16;
                Some((world, bin))
            })
            .collect();
        let affine = moving.geometry.affine_lps();
        let linear = [0, 1, 2].map(|r| [affine[r][0], affine[r][1], affine[r][2]]);
        let inverse = invert3(&linear).ok_or(RegisterError::DegenerateGrid)?;
        let mut to_index = [[0.0; 4]; 3];
        for r in 0..3 {
            to_index[r][..3].copy_from_slice(&inverse[r]);
            to_index[r][3] = -(0..3).map(|k| inverse[r][k] * affine[k][3]).sum::<f64>();
        }
        Ok(Self {
            samples,
            moving,
            to_index,
            moving_low: moving_range.0,
            moving_scale: (bins - 1) as f32 / (moving_range.1 - moving_range.0),
            bins,
        })
    }

    /// Mattes mutual information of the fixed samples and the moving study under
    /// `transform`; −∞ when fewer than a tenth of the samples land inside.
    fn metric(&self, transform: &Transform) -> f64 {
        let m = transform.matrix();
        // Fixed world → moving index in one affine.
        let mut a = [[0.0; 4]; 3];
        for r in 0..3 {
            for c in 0..4 {
                a[r][c] = (0..3).map(|k| self.to_index[r][k] * m[k][c]).sum::<f64>()
                    + if c == 3 { self.to_index[r][3] } else { 0.0 };
            }
        }
        let bins = self.bins;
        let dims = self.moving.geometry.dims;
        let (histogram, inside) = self
            .samples
            .par_chunks(4096)
            .map(|chunk| {
                let mut histogram = vec![0.0f64; bins * bins];
                let mut inside = 0usize;
                for (p, fixed_bin) in chunk {
                    let q = [0, 1, 2]
                        .map(|r| a[r][0] * p[0] + a[r][1] * p[1] + a[r][2] * p[2] + a[r][3]);
                    // Outside the grid, or no data there (NaN in a float NIfTI).
                    let Some(value) = trilinear(self.moving, dims, q).filter(|v| v.is_finite())
                    else {
                        continue;
                    };
                    inside += 1;
                    let b = ((value - self.moving_low) * self.moving_scale)
                        .clamp(0.0, (bins - 1) as f32);
                    let row = &mut histogram[*fixed_bin as usize * bins..][..bins];
                    let centre = b.floor() as i64;
                    for k in centre - 1..=centre + 2 {
                        let w = cubic_bspline(b - k as f32);
                        row[k.clamp(0, bins as i64 - 1) as usize] += f64::from(w);
                    }
                }
                (histogram, inside)
            })
            .reduce(
                || (vec![0.0; bins * bins], 0),
                |(mut h, n), (g, m)| {
                    h.iter_mut().zip(g).for_each(|(a, b)| *a += b);
                    (h, n + m)
                },
            );
        if inside * 10 < self.samples.len() {
            return f64::NEG_INFINITY;
        }
        mutual_information(&histogram, bins)
    }

    /// Pattern search from `start`: try ± each step, keep improvements, halve the steps
    /// when none helps, stop below `min_steps`. Parameters with a zero step stay fixed.
    fn pattern_search(
        &self,
        start: Transform,
        steps: &Parameters,
        min_steps: &Parameters,
        evaluations: &mut usize,
    ) -> (Transform, f64) {
        let mut best = start;
        let mut value = self.metric(&best);
        *evaluations += 1;
        let mut steps = *steps;
        let budget = *evaluations + 4000;
        while *evaluations < budget {
            let mut improved = false;
            for i in (0..steps.len()).filter(|&i| steps[i] > 0.0) {
                for sign in [1.0, -1.0] {
                    let mut params = best.parameters();
                    params[i] += sign * steps[i];
                    let candidate = best.with_parameters(&params);
                    let v = self.metric(&candidate);
                    *evaluations += 1;
                    if v > value {
                        (best, value, improved) = (candidate, v, true);
                        break;
                    }
                }
            }
            if !improved {
                steps.iter_mut().for_each(|s| *s *= 0.5);
                if steps.iter().zip(min_steps).all(|(s, m)| *s <= 0.0 || s < m) {
                    break;
                }
            }
        }
        (best, value)
    }
}

/// Trilinear value at fractional index `q`, `None` outside the grid.
fn trilinear(v: &Volume, dims: [usize; 3], q: [f64; 3]) -> Option<f32> {
    let mut base = [0usize; 3];
    let mut frac = [0f32; 3];
    for a in 0..3 {
        let last = dims[a].saturating_sub(1) as f64;
        if !(q[a] >= 0.0 && q[a] <= last) {
            return None;
        }
        let b = (q[a].floor() as usize).min(dims[a].saturating_sub(2));
        base[a] = b;
        frac[a] = if dims[a] > 1 {
            (q[a] - b as f64) as f32
        } else {
            0.0
        };
    }
    let [nx, ny, _] = dims;
    let step = [0, 1, 2].map(|a| usize::from(dims[a] > 1));
    let at = |i: usize, j: usize, k: usize| {
        v.data[((base[2] + k * step[2]) * ny + base[1] + j * step[1]) * nx + base[0] + i * step[0]]
    };
    let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
    let x00 = lerp(at(0, 0, 0), at(1, 0, 0), frac[0]);
    let x10 = lerp(at(0, 1, 0), at(1, 1, 0), frac[0]);
    let x01 = lerp(at(0, 0, 1), at(1, 0, 1), frac[0]);
    let x11 = lerp(at(0, 1, 1), at(1, 1, 1), frac[0]);
    Some(lerp(
        lerp(x00, x10, frac[1]),
        lerp(x01, x11, frac[1]),
        frac[2],
    ))
}

/// The cubic B-spline kernel (support −2..2, sums to 1 over integer shifts).
fn cubic_bspline(x: f32) -> f32 {
    let x = x.abs();
    if x < 1.0 {
        (4.0 - 6.0 * x * x + 3.0 * x * x * x) / 6.0
    } else if x < 2.0 {
        let t = 2.0 - x;
        t * t * t / 6.0
    } else {
        0.0
    }
}

/// Mutual information (nats) of a joint histogram `bins × bins` (rows: fixed).
fn mutual_information(histogram: &[f64], bins: usize) -> f64 {
    let total: f64 = histogram.iter().sum();
    if total <= 0.0 {
        return f64::NEG_INFINITY;
    }
    let mut rows = vec![0.0; bins];
    let mut columns = vec![0.0; bins];
    for r in 0..bins {
        for c in 0..bins {
            let p = histogram[r * bins + c] / total;
            rows[r] += p;
            columns[c] += p;
        }
    }
    let mut mi = 0.0;
    for r in 0..bins {
        for c in 0..bins {
            let p = histogram[r * bins + c] / total;
            if p > 0.0 {
                mi += p * (p / (rows[r] * columns[c])).ln();
            }
        }
    }
    mi
}

/// Block-averaged copy (`factors[a]` voxels per block along axis `a`; all 1: a plain
/// copy); the grid keeps its orientation and covers the same space.
pub fn downsample(volume: &Volume, factors: [usize; 3]) -> Volume {
    let factors = factors.map(|f| f.max(1));
    if factors == [1; 3] {
        return volume.clone();
    }
    let g = &volume.geometry;
    let dims = [0, 1, 2].map(|a| g.dims[a].div_ceil(factors[a]).max(1));
    let [nx, ny, nz] = g.dims;
    let [ox, oy, _] = dims;
    let [fx, fy, fz] = factors;
    let data: Vec<f32> = (0..dims[2])
        .into_par_iter()
        .flat_map_iter(|k| {
            (0..oy * ox).map(move |n| {
                let (i, j) = (n % ox, n / ox);
                let (mut sum, mut count) = (0.0f64, 0u32);
                for z in k * fz..((k + 1) * fz).min(nz) {
                    for y in j * fy..((j + 1) * fy).min(ny) {
                        for x in i * fx..((i + 1) * fx).min(nx) {
                            sum += f64::from(volume.data[(z * ny + y) * nx + x]);
                            count += 1;
                        }
                    }
                }
                (sum / f64::from(count.max(1))) as f32
            })
        })
        .collect();
    let spacing = [0, 1, 2].map(|a| g.spacing[a] * factors[a] as f64);
    // The first block's centre.
    let origin = g.index_to_world(factors.map(|f| (f as f64 - 1.0) / 2.0));
    let geometry = Geometry {
        dims,
        spacing,
        origin,
        direction: g.direction,
    };
    Volume {
        geometry,
        data,
        channels: 1,
        modality: volume.modality.clone(),
        units: volume.units.clone(),
        identity: volume.identity.clone(),
        warnings: Vec::new(),
    }
}

/// The patient position of the grid's centre.
pub fn grid_centre(g: &Geometry) -> [f64; 3] {
    g.index_to_world(g.dims.map(|d| (d as f64 - 1.0) / 2.0))
}

/// The intensity-weighted centre (values above the volume's minimum), if any.
fn centre_of_mass(v: &Volume) -> Option<[f64; 3]> {
    let min = v.data.iter().copied().fold(f32::INFINITY, f32::min);
    let [nx, ny, _] = v.geometry.dims;
    let (mut weight, mut sum) = (0.0f64, [0.0f64; 3]);
    for (index, value) in v.data.iter().enumerate() {
        let w = f64::from(value - min);
        if w > 0.0 && w.is_finite() {
            weight += w;
            let ijk = [index % nx, (index / nx) % ny, index / (nx * ny)];
            for a in 0..3 {
                sum[a] += w * ijk[a] as f64;
            }
        }
    }
    (weight > 0.0).then(|| v.geometry.index_to_world(sum.map(|s| s / weight)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_studies_are_refused() {
        let g = Geometry::axis_aligned([8, 8, 8], [1.0; 3], [0.0; 3]);
        let flat = Volume::new(g, vec![1.0; 512]).expect("valid");
        assert_eq!(
            register(&flat, &flat, &Options::default()).map(|r| r.evaluations),
            Err(RegisterError::Flat("fixed"))
        );
    }
}
