//! Stacking frames into a volume grid: sort by position along the slice normal and check
//! what real series get wrong (duplicates, gaps, uneven spacing, gantry tilt, mixed
//! orientation).

use super::header::FramePlane;
use crate::volume::geometry::{cross, dot, norm, normalize, sub};
use crate::volume::{Geometry, Vec3};

/// How the frames of a series form a grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub geometry: Geometry,
    /// Indices into the input frames, in slice order (duplicates left out).
    pub order: Vec<usize>,
    pub warnings: Vec<String>,
}

/// Two orientations closer than this (per direction-cosine component) are the same.
const ORIENTATION_TOLERANCE: f64 = 1e-3;
/// Two positions closer than this along the normal (mm) are the same slice.
const DUPLICATE_TOLERANCE_MM: f64 = 1e-3;

/// Lays out `frames` of `columns × rows` pixels. `positioned` says whether the positions
/// came from the file; otherwise frames are stacked in the given order.
pub fn layout(
    frames: &[FramePlane],
    columns: usize,
    rows: usize,
    positioned: bool,
) -> Result<Layout, String> {
    if frames.is_empty() {
        return Err("no frames".into());
    }
    let mut warnings = Vec::new();
    let orientation = match frames.iter().find_map(|f| f.orientation) {
        Some(o) => o,
        None => {
            warnings.push("no ImageOrientationPatient: assuming axial slices".into());
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
        }
    };
    let (row_dir, col_dir) = (normalize(orientation[0]), normalize(orientation[1]));
    if norm(orientation[0]) < 0.5
        || norm(orientation[1]) < 0.5
        || dot(row_dir, col_dir).abs() > 0.01
    {
        return Err(format!(
            "ImageOrientationPatient {orientation:?} is not two orthogonal unit vectors"
        ));
    }
    if frames.iter().filter_map(|f| f.orientation).any(|o| {
        o.iter()
            .flatten()
            .zip(orientation.iter().flatten())
            .any(|(a, b)| (a - b).abs() > ORIENTATION_TOLERANCE)
    }) {
        return Err("frames have mixed orientations; split the series by orientation".into());
    }
    let pixel_spacing = match frames.iter().find_map(|f| f.pixel_spacing) {
        Some(s) if s.iter().all(|v| *v > 0.0) => s,
        _ => {
            warnings.push("no valid PixelSpacing: assuming 1 mm pixels".into());
            [1.0, 1.0]
        }
    };
    if frames
        .iter()
        .filter_map(|f| f.pixel_spacing)
        .any(|s| (s[0] - pixel_spacing[0]).abs() > 1e-4 || (s[1] - pixel_spacing[1]).abs() > 1e-4)
    {
        warnings.push("frames differ in PixelSpacing; the first frame's is used".into());
    }
    let normal = normalize(cross(row_dir, col_dir));
    let thickness = frames
        .iter()
        .find_map(|f| f.slice_thickness)
        .filter(|t| *t > 0.0);

    let positions: Option<Vec<Vec3>> = frames.iter().map(|f| f.position).collect();
    let (order, origin, slice_dir, slice_spacing) = match positions.filter(|_| positioned) {
        Some(positions) => stack_by_position(&positions, normal, thickness, &mut warnings)?,
        None => {
            if frames.len() > 1 {
                warnings.push(
                    "frames carry no positions: stacked in file order along the normal".into(),
                );
            }
            let origin = frames[0].position.unwrap_or([0.0; 3]);
            (
                (0..frames.len()).collect(),
                origin,
                normal,
                thickness.unwrap_or(1.0),
            )
        }
    };
    let geometry = Geometry {
        dims: [columns, rows, order.len()],
        spacing: [pixel_spacing[1], pixel_spacing[0], slice_spacing],
        origin,
        direction: [row_dir, col_dir, slice_dir],
    };
    let tilt = geometry.shear_degrees();
    if order.len() > 1 && tilt > 0.01 {
        warnings.push(format!(
            "gantry tilt of {tilt:.2}°: the grid is sheared to keep true slice positions"
        ));
    }
    Ok(Layout {
        geometry,
        order,
        warnings,
    })
}

/// Sorts positioned frames along the normal; returns (order, origin, slice direction,
/// slice spacing).
fn stack_by_position(
    positions: &[Vec3],
    normal: Vec3,
    thickness: Option<f64>,
    warnings: &mut Vec<String>,
) -> Result<(Vec<usize>, Vec3, Vec3, f64), String> {
    let mut order: Vec<usize> = (0..positions.len()).collect();
    let along = |i: usize| dot(positions[i], normal);
    order.sort_by(|&a, &b| along(a).total_cmp(&along(b)).then(a.cmp(&b)));

    let before = order.len();
    let mut unique: Vec<usize> = Vec::with_capacity(before);
    for index in order {
        match unique.last() {
            Some(&last) if (along(index) - along(last)).abs() < DUPLICATE_TOLERANCE_MM => {}
            _ => unique.push(index),
        }
    }
    if unique.len() < before {
        warnings.push(format!(
            "{} frames repeat a slice position (several echoes, phases or duplicates?); \
             the first at each position is used",
            before - unique.len()
        ));
    }
    let first = positions[unique[0]];
    if unique.len() == 1 {
        return Ok((unique, first, normal, thickness.unwrap_or(1.0)));
    }
    let steps: Vec<f64> = unique
        .windows(2)
        .map(|w| norm(sub(positions[w[1]], positions[w[0]])))
        .collect();
    let mut sorted = steps.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    if median <= 0.0 {
        return Err("slice positions do not advance".into());
    }
    let tolerance = (median * 0.01).max(0.01);
    if max - min > tolerance {
        let gaps = steps
            .iter()
            .filter(|s| {
                (*s / median).round() >= 2.0 && (*s / median - (*s / median).round()).abs() < 0.1
            })
            .count();
        if gaps > 0 {
            warnings.push(format!(
                "{gaps} gap(s) in the series: missing slices (spacing {median:.3} mm, largest step {max:.3} mm)"
            ));
        } else {
            warnings.push(format!(
                "non-uniform slice spacing ({min:.3}–{max:.3} mm): the median {median:.3} mm is used"
            ));
        }
    }
    let last = positions[unique[unique.len() - 1]];
    let span = sub(last, first);
    let direction = normalize(span);
    let spacing = if max - min > tolerance {
        median
    } else {
        norm(span) / (unique.len() - 1) as f64
    };
    Ok((unique, first, direction, spacing))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(z: f64) -> FramePlane {
        FramePlane {
            position: Some([0.0, 0.0, z]),
            orientation: Some([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
            pixel_spacing: Some([0.5, 0.25]),
            slice_thickness: Some(2.0),
            rescale: (1.0, 0.0),
        }
    }

    #[test]
    fn sorts_by_position_not_file_order() {
        let frames: Vec<_> = [4.0, 0.0, 2.0, 6.0].into_iter().map(plane).collect();
        let l = layout(&frames, 8, 4, true).expect("valid");
        assert_eq!(l.order, vec![1, 2, 0, 3]);
        assert_eq!(l.geometry.spacing, [0.25, 0.5, 2.0]);
        assert_eq!(l.geometry.dims, [8, 4, 4]);
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    }

    #[test]
    fn reports_duplicates_gaps_and_uneven_spacing() {
        let frames: Vec<_> = [0.0, 2.0, 2.0, 4.0, 8.0].into_iter().map(plane).collect();
        let l = layout(&frames, 2, 2, true).expect("valid");
        assert_eq!(l.order.len(), 4);
        assert!(l.warnings.iter().any(|w| w.contains("repeat")));
        assert!(l.warnings.iter().any(|w| w.contains("gap")));
        let frames: Vec<_> = [0.0, 2.0, 3.1, 6.0].into_iter().map(plane).collect();
        let l = layout(&frames, 2, 2, true).expect("valid");
        assert!(l.warnings.iter().any(|w| w.contains("non-uniform")));
    }

    #[test]
    fn tilt_and_mixed_orientation() {
        let frames: Vec<_> = (0..4)
            .map(|k| FramePlane {
                position: Some([0.0, 0.3 * k as f64, 2.0 * k as f64]),
                ..plane(0.0)
            })
            .collect();
        let l = layout(&frames, 2, 2, true).expect("valid");
        assert!(l.warnings.iter().any(|w| w.contains("tilt")));
        let mut mixed = vec![plane(0.0), plane(1.0)];
        mixed[1].orientation = Some([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]);
        assert!(layout(&mixed, 2, 2, true).is_err());
    }

    #[test]
    fn negative_nm_spacing_still_sorts_ascending() {
        let frames: Vec<_> = [0.0, -3.0, -6.0].into_iter().map(plane).collect();
        let l = layout(&frames, 2, 2, true).expect("valid");
        assert_eq!(l.order, vec![2, 1, 0]);
        assert_eq!(l.geometry.origin, [0.0, 0.0, -6.0]);
        assert!((l.geometry.spacing[2] - 3.0).abs() < 1e-12);
    }
}
