//! Maximum-intensity projections (MIP) for scanning a PET or SPECT for foci: the volume seen
//! through from a direction that turns about the patient's vertical axis, each pixel the
//! largest value along its ray, with the voxel that holds it (so a click on a hot spot can
//! go to it). Angle 0 looks from the front (anterior), like a coronal view: the patient's
//! right on the image's left, head at the top.
//!
//! The volume must lie along the patient axes (the viewer's pair grid does): axes 0 and 1
//! span the horizontal plane and axis 2 runs foot–head.

use rayon::prelude::*;

use super::Volume;

/// One projection.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    pub width: usize,
    pub height: usize,
    /// Row by row from the top (head) down; NaN where no ray met a value.
    pub values: Vec<f32>,
    /// The voxel that gave each pixel its value.
    pub sources: Vec<Option<[usize; 3]>>,
    /// Millimetres per pixel across and down.
    pub pixel_mm: [f64; 2],
}

impl Projection {
    /// The pixel (row by row index) with the largest value: the hottest focus in view.
    pub fn brightest(&self) -> Option<usize> {
        self.values
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_nan())
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(index, _)| index)
    }
}

/// One image row: the values and the voxels they came from.
type Row = (Vec<f32>, Vec<Option<[usize; 3]>>);

/// The MIP of `volume`'s first channel at `angle_deg` about the vertical axis (positive
/// turns the viewpoint from the front towards the patient's left).
pub fn project(volume: &Volume, angle_deg: f64) -> Projection {
    let g = &volume.geometry;
    let [nx, ny, nz] = g.dims;
    let [sx, sy, sz] = g.spacing;
    // Where the axes point: a grid may run right-to-left or head-to-foot.
    let x_sign = if g.direction[0][0] >= 0.0 { 1.0 } else { -1.0 };
    let y_sign = if g.direction[1][1] >= 0.0 { 1.0 } else { -1.0 };
    let head_up = g.direction[2][2] >= 0.0;
    // Half a voxel between rays and between samples along a ray: every voxel is met by
    // some ray near its centre, whatever the angle, so no focus drops out of the MIP.
    let step = sx.min(sy) / 2.0;
    let half = [(nx as f64 - 1.0) / 2.0 * sx, (ny as f64 - 1.0) / 2.0 * sy];
    let reach = (half[0].powi(2) + half[1].powi(2)).sqrt();
    let samples = (2.0 * reach / step).ceil() as usize + 1;
    let (sin, cos) = angle_deg.to_radians().sin_cos();
    // Across the image: towards the patient's left (+x in LPS) at angle 0; the ray runs
    // from the front (anterior, −y) to the back.
    let across = [cos, sin];
    let ray = [-sin, cos];
    let width = samples;
    let height = nz;
    // The in-slice voxels each ray meets, in order (repeats dropped): the same for every
    // slice, so they are found once.
    let rays: Vec<Vec<u32>> = (0..width)
        .map(|column| {
            let s = column as f64 * step - reach;
            let mut offsets: Vec<u32> = Vec::new();
            for t in 0..samples {
                let t = t as f64 * step - reach;
                // Patient offsets from the volume's centre, then voxel indices.
                let px = s * across[0] + t * ray[0];
                let py = s * across[1] + t * ray[1];
                let i = ((x_sign * px + half[0]) / sx).round();
                let j = ((y_sign * py + half[1]) / sy).round();
                if i < 0.0 || j < 0.0 || i >= nx as f64 || j >= ny as f64 {
                    continue;
                }
                let offset = (j as usize * nx + i as usize) as u32;
                if offsets.last() != Some(&offset) {
                    offsets.push(offset);
                }
            }
            offsets
        })
        .collect();
    // Slice by slice (each slice's values stay in cache), slices in parallel.
    let slice = nx * ny;
    let rows: Vec<Row> = (0..nz)
        .into_par_iter()
        .map(|k| {
            let mut values = vec![f32::NAN; width];
            let mut sources = vec![None; width];
            for (column, offsets) in rays.iter().enumerate() {
                let mut best = (f32::NAN, None);
                for &offset in offsets {
                    let offset = offset as usize;
                    let value = volume.data[(k * slice + offset) * volume.channels];
                    if value > best.0 || (best.0.is_nan() && !value.is_nan()) {
                        best = (value, Some([offset % nx, offset / nx, k]));
                    }
                }
                values[column] = best.0;
                sources[column] = best.1;
            }
            (values, sources)
        })
        .collect();
    let mut values = Vec::with_capacity(width * height);
    let mut sources = Vec::with_capacity(width * height);
    // Top row first: the head when axis 2 runs towards it.
    let order: Vec<usize> = if head_up {
        (0..nz).rev().collect()
    } else {
        (0..nz).collect()
    };
    for k in order {
        values.extend_from_slice(&rows[k].0);
        sources.extend_from_slice(&rows[k].1);
    }
    Projection {
        width,
        height,
        values,
        sources,
        pixel_mm: [step, sz],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Geometry;

    #[test]
    fn a_hot_voxel_shows_where_it_is_and_moves_as_the_view_turns() {
        let dims = [20, 20, 10];
        let g = Geometry::axis_aligned(dims, [2.0, 2.0, 3.0], [0.0; 3]);
        let mut data = vec![1.0; 4000];
        // Hot voxel towards the patient's left (+x), near the head (high k), at the front.
        let hot = [15, 3, 8];
        data[(hot[2] * 20 + hot[1]) * 20 + hot[0]] = 9.0;
        let volume = Volume::new(g, data).expect("valid");
        let front = project(&volume, 0.0);
        let at = front.brightest().expect("pixels");
        assert_eq!(front.sources[at], Some(hot));
        let (row, column) = (at / front.width, at % front.width);
        assert_eq!(row, 10 - 1 - hot[2], "head at the top");
        assert!(
            column > front.width / 2,
            "the patient's left on the image's right"
        );
        // Seen from the left side (90°) the front of the patient is on the image's left.
        let side = project(&volume, 90.0);
        let at = side.brightest().expect("pixels");
        assert_eq!(side.sources[at], Some(hot));
        assert!(
            at % side.width < side.width / 2,
            "anterior on the left from the left"
        );
    }

    #[test]
    fn no_single_hot_voxel_drops_out_at_any_angle() {
        let dims = [31, 27, 3];
        let g = Geometry::axis_aligned(dims, [1.5, 1.5, 2.0], [0.0; 3]);
        for hot in [[0, 0, 1], [7, 19, 0], [30, 26, 2], [15, 13, 1]] {
            let mut data = vec![1.0; 31 * 27 * 3];
            data[(hot[2] * 27 + hot[1]) * 31 + hot[0]] = 5.0;
            let volume = Volume::new(g.clone(), data).expect("valid");
            for angle in (0..360).step_by(7) {
                let p = project(&volume, f64::from(angle));
                assert!(p.values.contains(&5.0), "voxel {hot:?} missing at {angle}°");
            }
        }
    }
}
