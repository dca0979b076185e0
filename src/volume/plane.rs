//! Display planes through a volume stored along the patient axes (L, P, S; see
//! [`super::reorient`]): axial, coronal and sagittal, in radiological convention (patient's
//! right on the screen's left, anterior up in axial, superior up in coronal and sagittal).
//!
//! A plane maps image coordinates `(u, v)` in 0..1 (left to right, top to bottom) to
//! continuous voxel coordinates `origin + u·du + v·dv`; the voxel shown is the one whose cell
//! holds that point (nearest neighbour). The GPU shader uses the same mapping, so the value
//! read out under the cursor is the value drawn there.

use super::Geometry;

/// Which plane a view shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Orientation {
    Axial,
    Coronal,
    Sagittal,
}

/// Image-to-voxel mapping of one plane (continuous voxel coordinates, cell `i` spanning
/// `i..i+1`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlaneMapping {
    pub origin: [f32; 3],
    pub du: [f32; 3],
    pub dv: [f32; 3],
}

impl Orientation {
    pub const ALL: [Orientation; 3] = [Self::Axial, Self::Coronal, Self::Sagittal];

    pub fn name(self) -> &'static str {
        match self {
            Self::Axial => "axial",
            Self::Coronal => "coronal",
            Self::Sagittal => "sagittal",
        }
    }

    /// The patient directions at the image's left, right, top and bottom edges as the panes
    /// show it (radiological convention: the patient's right on the left).
    pub fn edge_letters(self) -> [&'static str; 4] {
        match self {
            Self::Axial => ["R", "L", "A", "P"],
            Self::Coronal => ["R", "L", "S", "I"],
            Self::Sagittal => ["A", "P", "S", "I"],
        }
    }

    /// The voxel axis the plane cuts across (its slices step along it).
    pub fn slice_axis(self) -> usize {
        match self {
            Self::Axial => 2,
            Self::Coronal => 1,
            Self::Sagittal => 0,
        }
    }

    /// The voxel axes along the image's width and height.
    pub fn image_axes(self) -> [usize; 2] {
        match self {
            Self::Axial => [0, 1],
            Self::Coronal => [0, 2],
            Self::Sagittal => [1, 2],
        }
    }

    /// Slices of this orientation in a grid of `dims`.
    pub fn slice_count(self, dims: [usize; 3]) -> usize {
        dims[self.slice_axis()]
    }

    /// Width and height of the image in millimetres.
    pub fn size_mm(self, geometry: &Geometry) -> [f64; 2] {
        self.image_axes()
            .map(|a| geometry.dims[a] as f64 * geometry.spacing[a])
    }

    /// Width and height of the image in voxels.
    pub fn size_voxels(self, dims: [usize; 3]) -> [usize; 2] {
        self.image_axes().map(|a| dims[a])
    }

    /// The mapping of slice `slice` (a voxel index along [`Self::slice_axis`]).
    pub fn mapping(self, dims: [usize; 3], slice: usize) -> PlaneMapping {
        let [nx, ny, nz] = dims.map(|d| d as f32);
        let s = slice as f32 + 0.5;
        match self {
            Self::Axial => PlaneMapping {
                origin: [0.0, 0.0, s],
                du: [nx, 0.0, 0.0],
                dv: [0.0, ny, 0.0],
            },
            Self::Coronal => PlaneMapping {
                origin: [0.0, s, nz],
                du: [nx, 0.0, 0.0],
                dv: [0.0, 0.0, -nz],
            },
            Self::Sagittal => PlaneMapping {
                origin: [s, 0.0, nz],
                du: [0.0, ny, 0.0],
                dv: [0.0, 0.0, -nz],
            },
        }
    }

    /// Image coordinates (0..1) of the centre of voxel `voxel` in this orientation's planes.
    pub fn image_position(self, dims: [usize; 3], voxel: [f32; 3]) -> [f32; 2] {
        let m = self.mapping(dims, 0);
        let [a, b] = self.image_axes();
        let along = |axis: usize, d: [f32; 3]| (voxel[axis] - m.origin[axis]) / d[axis];
        [along(a, m.du), along(b, m.dv)]
    }
}

impl PlaneMapping {
    /// Continuous voxel coordinates (voxel `i` spans `i..i+1`) at image coordinates `(u, v)`.
    pub fn point_at(&self, u: f32, v: f32) -> [f32; 3] {
        [0, 1, 2].map(|a| self.origin[a] + u * self.du[a] + v * self.dv[a])
    }

    /// The voxel shown at image coordinates `(u, v)`, or `None` outside the grid.
    pub fn voxel_at(&self, dims: [usize; 3], u: f32, v: f32) -> Option<[usize; 3]> {
        let point = self.point_at(u, v);
        let mut voxel = [0usize; 3];
        for a in 0..3 {
            let c = point[a].floor();
            if !(c >= 0.0 && c < dims[a] as f32) {
                return None;
            }
            voxel[a] = c as usize;
        }
        Some(voxel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_show_the_radiological_views() {
        let dims = [4, 5, 6];
        // Axial: top-left is voxel (0, 0) of the slice, bottom-right (nx-1, ny-1).
        let axial = Orientation::Axial.mapping(dims, 2);
        assert_eq!(axial.voxel_at(dims, 0.01, 0.01), Some([0, 0, 2]));
        assert_eq!(axial.voxel_at(dims, 0.99, 0.99), Some([3, 4, 2]));
        // Coronal and sagittal: the top row is the most superior slice.
        let coronal = Orientation::Coronal.mapping(dims, 3);
        assert_eq!(coronal.voxel_at(dims, 0.01, 0.01), Some([0, 3, 5]));
        assert_eq!(coronal.voxel_at(dims, 0.01, 0.99), Some([0, 3, 0]));
        let sagittal = Orientation::Sagittal.mapping(dims, 1);
        assert_eq!(sagittal.voxel_at(dims, 0.99, 0.01), Some([1, 4, 5]));
        assert_eq!(axial.voxel_at(dims, 1.2, 0.5), None);
        assert_eq!(Orientation::Sagittal.slice_count(dims), 4);
    }

    #[test]
    fn image_position_inverts_the_mapping() {
        let dims = [10, 20, 30];
        for orientation in Orientation::ALL {
            let voxel = [3.5, 7.5, 11.5];
            let [u, v] = orientation.image_position(dims, voxel);
            let slice = voxel[orientation.slice_axis()] as usize;
            let hit = orientation.mapping(dims, slice).voxel_at(dims, u, v);
            assert_eq!(hit, Some([3, 7, 11]), "{orientation:?}");
        }
    }
}
