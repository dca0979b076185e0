//! Where a voxel grid sits in patient space (DICOM LPS millimetres).
//!
//! A grid is `dims` voxels along three axes; axis `a` steps `spacing[a]` mm along the unit
//! vector `direction[a]`, starting from `origin` (the centre of voxel 0,0,0). Axis 0 runs
//! along a row (DICOM column index), axis 1 down the columns (row index), axis 2 from slice
//! to slice. The three directions need not be orthogonal (gantry tilt shears the grid).

use serde::Serialize;

/// A 3-vector in patient space (millimetres, LPS).
pub type Vec3 = [f64; 3];

/// The placement of a voxel grid in patient space.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Geometry {
    /// Voxels along each axis: columns, rows, slices.
    pub dims: [usize; 3],
    /// Millimetres between voxel centres along each axis (always positive).
    pub spacing: Vec3,
    /// Patient-space position of the centre of voxel (0, 0, 0).
    pub origin: Vec3,
    /// Unit vector of each axis in patient space.
    pub direction: [Vec3; 3],
}

impl Geometry {
    /// An axis-aligned grid at the origin with the given spacing.
    pub fn axis_aligned(dims: [usize; 3], spacing: Vec3, origin: Vec3) -> Self {
        Self {
            dims,
            spacing,
            origin,
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        }
    }

    /// Number of voxels in the grid.
    pub fn voxel_count(&self) -> usize {
        self.dims.iter().product()
    }

    /// The 4×4 matrix taking (i, j, k, 1) to patient LPS (x, y, z, 1).
    pub fn affine_lps(&self) -> [[f64; 4]; 4] {
        let mut m = [[0.0; 4]; 4];
        for row in 0..3 {
            for axis in 0..3 {
                m[row][axis] = self.direction[axis][row] * self.spacing[axis];
            }
            m[row][3] = self.origin[row];
        }
        m[3][3] = 1.0;
        m
    }

    /// The same matrix in RAS (NIfTI's convention): the first two rows negated.
    pub fn affine_ras(&self) -> [[f64; 4]; 4] {
        let mut m = self.affine_lps();
        for row in m.iter_mut().take(2) {
            for v in row.iter_mut() {
                *v = -*v;
            }
        }
        m
    }

    /// Builds a grid from an LPS affine (columns are the scaled axis vectors).
    pub fn from_affine_lps(dims: [usize; 3], m: &[[f64; 4]; 4]) -> Self {
        let mut spacing = [0.0; 3];
        let mut direction = [[0.0; 3]; 3];
        for axis in 0..3 {
            let column = [m[0][axis], m[1][axis], m[2][axis]];
            let length = norm(column);
            spacing[axis] = if length > 0.0 { length } else { 1.0 };
            direction[axis] = if length > 0.0 {
                scale(column, 1.0 / length)
            } else {
                let mut unit = [0.0; 3];
                unit[axis] = 1.0;
                unit
            };
        }
        Self {
            dims,
            spacing,
            origin: [m[0][3], m[1][3], m[2][3]],
            direction,
        }
    }

    /// Patient-space position of a (possibly fractional) voxel index.
    pub fn index_to_world(&self, ijk: Vec3) -> Vec3 {
        let mut p = self.origin;
        for axis in 0..3 {
            for (row, value) in p.iter_mut().enumerate() {
                *value += self.direction[axis][row] * self.spacing[axis] * ijk[axis];
            }
        }
        p
    }

    /// Fractional voxel index of a patient-space point (inverse of [`Self::index_to_world`]).
    /// `None` when the axes are degenerate.
    pub fn world_to_index(&self, p: Vec3) -> Option<Vec3> {
        let m = self.affine_lps();
        let a = [
            [m[0][0], m[0][1], m[0][2]],
            [m[1][0], m[1][1], m[1][2]],
            [m[2][0], m[2][1], m[2][2]],
        ];
        let inv = invert3(&a)?;
        let d = sub(p, self.origin);
        Some([dot(inv[0], d), dot(inv[1], d), dot(inv[2], d)])
    }

    /// Angle in degrees between the slice axis and the normal of the row/column plane:
    /// non-zero for gantry-tilted acquisitions.
    pub fn shear_degrees(&self) -> f64 {
        let normal = normalize(cross(self.direction[0], self.direction[1]));
        dot(normal, self.direction[2])
            .abs()
            .clamp(-1.0, 1.0)
            .acos()
            .to_degrees()
    }

    /// True when every axis is within `tolerance` of a patient axis.
    pub fn is_axis_aligned(&self, tolerance: f64) -> bool {
        self.direction
            .iter()
            .all(|d| d.iter().any(|c| (c.abs() - 1.0).abs() <= tolerance))
    }

    /// Three-letter orientation code (e.g. "LPS") naming the patient direction each axis
    /// points to most.
    pub fn orientation_code(&self) -> String {
        self.direction
            .iter()
            .map(|d| {
                let (axis, value) = d
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                    .unwrap_or((0, &1.0));
                match (axis, *value >= 0.0) {
                    (0, true) => 'L',
                    (0, false) => 'R',
                    (1, true) => 'P',
                    (1, false) => 'A',
                    (2, true) => 'S',
                    _ => 'I',
                }
            })
            .collect()
    }
}

/// Dot product.
pub fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Cross product.
pub fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// Euclidean length.
pub fn norm(a: Vec3) -> f64 {
    dot(a, a).sqrt()
}

/// `a - b`.
pub fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// `a * s`.
pub fn scale(a: Vec3, s: f64) -> Vec3 {
    [a[0] * s, a[1] * s, a[2] * s]
}

/// `a` scaled to unit length (unchanged when zero).
pub fn normalize(a: Vec3) -> Vec3 {
    let n = norm(a);
    if n > 0.0 { scale(a, 1.0 / n) } else { a }
}

/// Inverse of a 3×3 matrix, `None` when singular.
pub fn invert3(a: &[Vec3; 3]) -> Option<[Vec3; 3]> {
    let det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
        - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
        + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
    if det.abs() < 1e-12 || !det.is_finite() {
        return None;
    }
    let inv_det = 1.0 / det;
    Some([
        [
            (a[1][1] * a[2][2] - a[1][2] * a[2][1]) * inv_det,
            (a[0][2] * a[2][1] - a[0][1] * a[2][2]) * inv_det,
            (a[0][1] * a[1][2] - a[0][2] * a[1][1]) * inv_det,
        ],
        [
            (a[1][2] * a[2][0] - a[1][0] * a[2][2]) * inv_det,
            (a[0][0] * a[2][2] - a[0][2] * a[2][0]) * inv_det,
            (a[0][2] * a[1][0] - a[0][0] * a[1][2]) * inv_det,
        ],
        [
            (a[1][0] * a[2][1] - a[1][1] * a[2][0]) * inv_det,
            (a[0][1] * a[2][0] - a[0][0] * a[2][1]) * inv_det,
            (a[0][0] * a[1][1] - a[0][1] * a[1][0]) * inv_det,
        ],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_index_round_trip_on_an_oblique_sheared_grid() {
        let g = Geometry {
            dims: [10, 20, 30],
            spacing: [0.5, 0.7, 2.0],
            origin: [-10.0, 20.0, 5.0],
            direction: [
                normalize([0.9, 0.1, 0.0]),
                normalize([-0.1, 0.9, 0.2]),
                normalize([0.0, 0.3, 1.0]),
            ],
        };
        let p = g.index_to_world([3.0, 4.5, 7.25]);
        let back = g.world_to_index(p).expect("invertible");
        for (a, b) in back.iter().zip([3.0, 4.5, 7.25]) {
            assert!((a - b).abs() < 1e-9);
        }
        assert!(g.shear_degrees() > 1.0);
    }

    #[test]
    fn affine_round_trip_and_orientation_code() {
        let g = Geometry {
            dims: [4, 4, 4],
            spacing: [1.0, 2.0, 3.0],
            origin: [1.0, 2.0, 3.0],
            direction: [[-1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]],
        };
        let back = Geometry::from_affine_lps(g.dims, &g.affine_lps());
        assert_eq!(back, g);
        assert_eq!(g.orientation_code(), "RIP");
        assert_eq!(g.affine_ras()[0][0], 1.0);
    }
}
