//! Lossless reorientation: permuting and flipping a volume's axes without resampling.
//!
//! The voxels keep their patient-space positions; only the order in which they are stored
//! changes. Used to compare volumes written in different axis orders and to show any
//! acquisition in the radiological axial/coronal/sagittal frame.

use super::Volume;
use super::geometry::{Geometry, dot};

/// How to reorder axes: output axis `a` is input axis `perm[a]`, reversed when `flip[a]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisMap {
    pub perm: [usize; 3],
    pub flip: [bool; 3],
}

impl AxisMap {
    /// The map that changes nothing.
    pub const IDENTITY: Self = Self {
        perm: [0, 1, 2],
        flip: [false; 3],
    };

    /// The map that stores `from`'s voxels along `to`'s axis directions, when each of
    /// `to`'s axes is within ~25° of one of `from`'s. `None` for grids too oblique to each
    /// other to be matched without resampling.
    pub fn between(from: &Geometry, to: &Geometry) -> Option<Self> {
        let mut perm = [usize::MAX; 3];
        let mut flip = [false; 3];
        for (a, target) in to.direction.iter().enumerate() {
            let (best, cosine) = (0..3)
                .map(|b| (b, dot(*target, from.direction[b])))
                .max_by(|x, y| x.1.abs().total_cmp(&y.1.abs()))?;
            if cosine.abs() < 0.9 || perm.contains(&best) {
                return None;
            }
            perm[a] = best;
            flip[a] = cosine < 0.0;
        }
        Some(Self { perm, flip })
    }

    /// The map onto the patient axes L, P, S (radiological display order).
    pub fn to_patient_axes(from: &Geometry) -> Option<Self> {
        let lps = Geometry::axis_aligned(from.dims, from.spacing, from.origin);
        Self::between(from, &lps)
    }
}

/// The geometry a volume of `geometry` has after applying `map`.
pub fn map_geometry(geometry: &Geometry, map: AxisMap) -> Geometry {
    let mut start = [0.0; 3];
    let mut out = geometry.clone();
    for a in 0..3 {
        let b = map.perm[a];
        out.dims[a] = geometry.dims[b];
        out.spacing[a] = geometry.spacing[b];
        let d = geometry.direction[b];
        out.direction[a] = if map.flip[a] {
            [-d[0], -d[1], -d[2]]
        } else {
            d
        };
        if map.flip[a] {
            start[b] = (geometry.dims[b] - 1) as f64;
        }
    }
    out.origin = geometry.index_to_world(start);
    out
}

/// A copy of `volume` with its axes permuted and flipped by `map`.
pub fn apply(volume: &Volume, map: AxisMap) -> Volume {
    let geometry = map_geometry(&volume.geometry, map);
    let [ox, oy, oz] = geometry.dims;
    let in_dims = volume.geometry.dims;
    let channels = volume.channels;
    let mut data = Vec::with_capacity(volume.data.len());
    let mut index = [0usize; 3];
    for k in 0..oz {
        for j in 0..oy {
            for i in 0..ox {
                for (a, out_index) in [i, j, k].into_iter().enumerate() {
                    let b = map.perm[a];
                    index[b] = if map.flip[a] {
                        in_dims[b] - 1 - out_index
                    } else {
                        out_index
                    };
                }
                let offset = volume.offset(index[0], index[1], index[2]);
                data.extend_from_slice(&volume.data[offset..offset + channels]);
            }
        }
    }
    Volume {
        geometry,
        data,
        channels,
        modality: volume.modality.clone(),
        units: volume.units.clone(),
        identity: volume.identity.clone(),
        warnings: volume.warnings.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> Volume {
        let g = Geometry {
            dims: [3, 4, 5],
            spacing: [1.0, 2.0, 3.0],
            origin: [10.0, 20.0, 30.0],
            direction: [[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]],
        };
        Volume::new(g, (0..60).map(|v| v as f32).collect()).expect("valid")
    }

    #[test]
    fn voxels_keep_their_patient_positions() {
        let v = ramp();
        let map = AxisMap::to_patient_axes(&v.geometry).expect("axis aligned");
        let r = apply(&v, map);
        assert!(r.geometry.is_axis_aligned(1e-9));
        assert_eq!(r.geometry.orientation_code(), "LPS");
        for (i, j, k) in [(0, 0, 0), (2, 3, 4), (1, 2, 3)] {
            let p = v.geometry.index_to_world([i as f64, j as f64, k as f64]);
            let q = r.geometry.world_to_index(p).expect("invertible");
            let q = q.map(|x| x.round() as usize);
            assert_eq!(r.value(q[0], q[1], q[2]), v.value(i, j, k));
        }
        let back = apply(
            &r,
            AxisMap::between(&r.geometry, &v.geometry).expect("match"),
        );
        assert_eq!(back.data, v.data);
        for (a, b) in back.geometry.origin.iter().zip(v.geometry.origin) {
            assert!((a - b).abs() < 1e-9);
        }
    }
}
