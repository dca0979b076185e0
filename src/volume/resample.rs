//! Resampling a volume onto another grid through patient coordinates: every output voxel
//! takes the value at its own patient-space position in the source (trilinear, or nearest
//! for label maps). Grids may differ in size, spacing, orientation and shear; voxels outside
//! the source get a background value.

use rayon::prelude::*;
use thiserror::Error;

use super::geometry::invert3;
use super::{Geometry, Volume};

/// How values between voxel centres are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    /// Trilinear: smooth images (CT, MR, PET).
    Linear,
    /// Nearest neighbour: label maps and masks, whose values must not blend.
    Nearest,
}

/// Why two studies cannot be put on one grid.
#[derive(Debug, Error, PartialEq)]
pub enum ResampleError {
    /// The studies were not acquired in one frame of reference: their patient coordinates
    /// do not correspond until they are registered.
    #[error(
        "the studies have different frames of reference ({reference} and {moving}): they must \
         be registered before they can be fused"
    )]
    DifferentFrameOfReference { reference: String, moving: String },
    /// A grid whose axes are degenerate.
    #[error("the source grid cannot be inverted")]
    DegenerateGrid,
}

/// Puts `moving` on `reference`'s grid, after checking that both share a frame of
/// reference (an empty FrameOfReferenceUID on either side is taken as shared, with the
/// caller responsible for having checked it).
pub fn onto_reference(
    moving: &Volume,
    reference: &Volume,
    interpolation: Interpolation,
) -> Result<Volume, ResampleError> {
    let (a, b) = (
        &reference.identity.frame_of_reference_uid,
        &moving.identity.frame_of_reference_uid,
    );
    if !a.is_empty() && !b.is_empty() && a != b {
        return Err(ResampleError::DifferentFrameOfReference {
            reference: a.clone(),
            moving: b.clone(),
        });
    }
    resample(
        moving,
        &reference.geometry,
        interpolation,
        background_of(moving),
    )
}

/// The value for voxels outside a volume: its minimum (air in CT, zero uptake in PET).
pub fn background_of(volume: &Volume) -> f32 {
    let min = volume
        .data
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f32::INFINITY, f32::min);
    if min.is_finite() { min } else { 0.0 }
}

/// Resamples `source` onto `grid`. The result keeps the source's modality, units and
/// identity (with the grid's geometry).
pub fn resample(
    source: &Volume,
    grid: &Geometry,
    interpolation: Interpolation,
    background: f32,
) -> Result<Volume, ResampleError> {
    resample_transformed(source, grid, &IDENTITY, interpolation, background)
}

/// The 4×4 identity.
pub const IDENTITY: [[f64; 4]; 4] = [
    [1.0, 0.0, 0.0, 0.0],
    [0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, 1.0, 0.0],
    [0.0, 0.0, 0.0, 1.0],
];

/// Resamples `source` onto `grid` through a spatial transform: the output voxel at patient
/// position `p` takes the source's value at `transform · p` (both in LPS mm) — the way a
/// registration result (fixed → moving) puts the moving study on the fixed grid.
pub fn resample_transformed(
    source: &Volume,
    grid: &Geometry,
    transform: &[[f64; 4]; 4],
    interpolation: Interpolation,
    background: f32,
) -> Result<Volume, ResampleError> {
    // Source index = A · output index + t, from the two affines and the transform.
    let s = source.geometry.affine_lps();
    let g = multiply(transform, &grid.affine_lps());
    let s3 = [
        [s[0][0], s[0][1], s[0][2]],
        [s[1][0], s[1][1], s[1][2]],
        [s[2][0], s[2][1], s[2][2]],
    ];
    let inverse = invert3(&s3).ok_or(ResampleError::DegenerateGrid)?;
    let mut a = [[0.0f64; 3]; 3];
    let mut t = [0.0f64; 3];
    for r in 0..3 {
        for c in 0..3 {
            a[r][c] = (0..3).map(|k| inverse[r][k] * g[k][c]).sum();
        }
        t[r] = (0..3).map(|k| inverse[r][k] * (g[k][3] - s[k][3])).sum();
    }
    let [nx, ny, nz] = grid.dims;
    let channels = source.channels;
    let slice_len = nx * ny * channels;
    let mut data = vec![background; slice_len * nz];
    data.par_chunks_mut(slice_len)
        .enumerate()
        .for_each(|(k, slice)| {
            for j in 0..ny {
                for i in 0..nx {
                    let (fi, fj, fk) = (i as f64, j as f64, k as f64);
                    let p = [
                        a[0][0] * fi + a[0][1] * fj + a[0][2] * fk + t[0],
                        a[1][0] * fi + a[1][1] * fj + a[1][2] * fk + t[1],
                        a[2][0] * fi + a[2][1] * fj + a[2][2] * fk + t[2],
                    ];
                    let out = &mut slice[(j * nx + i) * channels..][..channels];
                    sample(source, p, interpolation, out);
                }
            }
        });
    let mut volume = Volume::with_channels(grid.clone(), channels, data)
        .map_err(|_| ResampleError::DegenerateGrid)?;
    volume.modality = source.modality.clone();
    volume.units = source.units.clone();
    volume.identity = source.identity.clone();
    volume.warnings = source.warnings.clone();
    Ok(volume)
}

/// The product of two 4×4 matrices.
pub fn multiply(a: &[[f64; 4]; 4], b: &[[f64; 4]; 4]) -> [[f64; 4]; 4] {
    let mut m = [[0.0; 4]; 4];
    for r in 0..4 {
        for c in 0..4 {
            m[r][c] = (0..4).map(|k| a[r][k] * b[k][c]).sum();
        }
    }
    m
}

/// Writes the value of `source` at fractional index `p` into `out` (all channels); leaves
/// `out` untouched outside the source.
fn sample(source: &Volume, p: [f64; 3], interpolation: Interpolation, out: &mut [f32]) {
    let dims = source.geometry.dims;
    // Half a voxel of tolerance keeps edge voxels of identical grids inside.
    let inside = (0..3).all(|a| p[a] >= -0.5 && p[a] <= dims[a] as f64 - 0.5);
    if !inside {
        return;
    }
    if interpolation == Interpolation::Nearest {
        let idx = [0, 1, 2].map(|a| (p[a].round().max(0.0) as usize).min(dims[a] - 1));
        let offset = source.offset(idx[0], idx[1], idx[2]);
        out.copy_from_slice(&source.data[offset..offset + out.len()]);
        return;
    }
    let clamp = |a: usize| p[a].clamp(0.0, (dims[a] - 1) as f64);
    let q = [clamp(0), clamp(1), clamp(2)];
    let base = [0, 1, 2].map(|a| (q[a].floor() as usize).min(dims[a].saturating_sub(2)));
    let frac = [0, 1, 2].map(|a| {
        if dims[a] == 1 {
            0.0
        } else {
            (q[a] - base[a] as f64) as f32
        }
    });
    let step = [0, 1, 2].map(|a| usize::from(dims[a] > 1));
    for (channel, value) in out.iter_mut().enumerate() {
        let v = |di: usize, dj: usize, dk: usize| {
            source.data[source.offset(
                base[0] + di * step[0],
                base[1] + dj * step[1],
                base[2] + dk * step[2],
            ) + channel]
        };
        let x00 = v(0, 0, 0) + (v(1, 0, 0) - v(0, 0, 0)) * frac[0];
        let x10 = v(0, 1, 0) + (v(1, 1, 0) - v(0, 1, 0)) * frac[0];
        let x01 = v(0, 0, 1) + (v(1, 0, 1) - v(0, 0, 1)) * frac[0];
        let x11 = v(0, 1, 1) + (v(1, 1, 1) - v(0, 1, 1)) * frac[0];
        let y0 = x00 + (x10 - x00) * frac[1];
        let y1 = x01 + (x11 - x01) * frac[1];
        *value = y0 + (y1 - y0) * frac[2];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::geometry::{cross, normalize};

    /// A volume whose value is a linear function of patient position.
    fn linear_field(geometry: Geometry) -> Volume {
        let [nx, ny, nz] = geometry.dims;
        let mut data = Vec::with_capacity(nx * ny * nz);
        for k in 0..nz {
            for j in 0..ny {
                for i in 0..nx {
                    let p = geometry.index_to_world([i as f64, j as f64, k as f64]);
                    data.push((2.0 * p[0] - 0.5 * p[1] + 0.25 * p[2] + 7.0) as f32);
                }
            }
        }
        Volume::new(geometry, data).expect("valid")
    }

    #[test]
    fn identical_grids_reproduce_the_source() {
        let g = Geometry::axis_aligned([6, 5, 4], [1.0, 2.0, 3.0], [-3.0, 1.0, 2.0]);
        let v = linear_field(g.clone());
        let r = resample(&v, &g, Interpolation::Linear, -1.0).expect("resample");
        for (a, b) in r.data.iter().zip(&v.data) {
            assert!((a - b).abs() < 1e-4);
        }
    }

    #[test]
    fn trilinear_is_exact_for_linear_fields_on_an_oblique_grid() {
        let source = linear_field(Geometry::axis_aligned([30, 30, 30], [1.0; 3], [-15.0; 3]));
        let row = normalize([0.9, 0.3, 0.1]);
        let col = normalize(cross([0.0, 0.0, 1.0], row));
        let grid = Geometry {
            dims: [10, 9, 8],
            spacing: [1.3, 0.7, 1.1],
            origin: [-4.0, -3.0, -2.0],
            direction: [row, col, normalize(cross(row, col))],
        };
        let expected = linear_field(grid.clone());
        let r = resample(&source, &grid, Interpolation::Linear, f32::NAN).expect("resample");
        for (a, b) in r.data.iter().zip(&expected.data) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
    }

    #[test]
    fn nearest_keeps_labels_and_outside_is_background() {
        let g = Geometry::axis_aligned([4, 1, 1], [1.0; 3], [0.0; 3]);
        let labels = Volume::new(g, vec![1.0, 2.0, 3.0, 4.0]).expect("valid");
        let grid = Geometry::axis_aligned([8, 1, 1], [0.5, 1.0, 1.0], [0.0; 3]);
        let r = resample(&labels, &grid, Interpolation::Nearest, 0.0).expect("resample");
        assert!(r.data.iter().all(|v| [1.0, 2.0, 3.0, 4.0].contains(v)));
        let far = Geometry::axis_aligned([2, 1, 1], [1.0; 3], [100.0, 0.0, 0.0]);
        let r = resample(&labels, &far, Interpolation::Linear, -5.0).expect("resample");
        assert_eq!(r.data, vec![-5.0, -5.0]);
    }

    #[test]
    fn different_frames_of_reference_are_refused() {
        let g = Geometry::axis_aligned([2, 2, 2], [1.0; 3], [0.0; 3]);
        let mut a = Volume::new(g.clone(), vec![0.0; 8]).expect("valid");
        let mut b = Volume::new(g, vec![1.0; 8]).expect("valid");
        a.identity.frame_of_reference_uid = "1.2.3".into();
        b.identity.frame_of_reference_uid = "1.2.4".into();
        assert!(matches!(
            onto_reference(&b, &a, Interpolation::Linear),
            Err(ResampleError::DifferentFrameOfReference { .. })
        ));
        b.identity.frame_of_reference_uid = "1.2.3".into();
        assert!(onto_reference(&b, &a, Interpolation::Linear).is_ok());
    }
}
