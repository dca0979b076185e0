//! A spatial transform from fixed to moving patient coordinates, rigid (6 parameters) or
//! affine (12): `p_moving = R · K · (p_fixed − c) + c + t`, with `R = Rz · Ry · Rx` a
//! rotation, `K` an upper-triangular matrix of scales and shears (the identity for a rigid
//! transform), `c` the centre and `t` the translation.

use super::geometry::invert3;

/// A fixed → moving transform (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transform {
    /// Rotations about the x, y and z axes in degrees (applied x, then y, then z).
    pub angles_deg: [f64; 3],
    pub translation_mm: [f64; 3],
    /// The centre of rotation (LPS mm).
    pub centre_mm: [f64; 3],
    /// Scale factors along x, y and z (1 for a rigid transform).
    pub scale: [f64; 3],
    /// Shears xy, xz and yz: `K = [[sx, xy, xz], [0, sy, yz], [0, 0, sz]]` (0 when rigid).
    pub shear: [f64; 3],
}

/// The parameters a search varies: rotations (°), translations (mm), scales, shears.
pub type Parameters = [f64; 12];

impl Transform {
    /// No motion, rotations about `centre`.
    pub fn identity_about(centre_mm: [f64; 3]) -> Self {
        Self::rigid([0.0; 3], [0.0; 3], centre_mm)
    }

    /// A rigid transform.
    pub fn rigid(angles_deg: [f64; 3], translation_mm: [f64; 3], centre_mm: [f64; 3]) -> Self {
        Self {
            angles_deg,
            translation_mm,
            centre_mm,
            scale: [1.0; 3],
            shear: [0.0; 3],
        }
    }

    /// Whether scales and shears are those of a rigid transform.
    pub fn is_rigid(&self) -> bool {
        self.scale == [1.0; 3] && self.shear == [0.0; 3]
    }

    /// The rotation matrix `Rz · Ry · Rx`.
    pub fn rotation(&self) -> [[f64; 3]; 3] {
        let [x, y, z] = self.angles_deg.map(f64::to_radians);
        let (sx, cx, sy, cy, sz, cz) = (x.sin(), x.cos(), y.sin(), y.cos(), z.sin(), z.cos());
        [
            [cy * cz, sx * sy * cz - cx * sz, cx * sy * cz + sx * sz],
            [cy * sz, sx * sy * sz + cx * cz, cx * sy * sz - sx * cz],
            [-sy, sx * cy, cx * cy],
        ]
    }

    /// The linear part `R · K`.
    pub fn linear(&self) -> [[f64; 3]; 3] {
        let r = self.rotation();
        let [sx, sy, sz] = self.scale;
        let [xy, xz, yz] = self.shear;
        let k = [[sx, xy, xz], [0.0, sy, yz], [0.0, 0.0, sz]];
        [0, 1, 2].map(|a| [0, 1, 2].map(|b| (0..3).map(|i| r[a][i] * k[i][b]).sum()))
    }

    /// Where fixed point `p` lands in the moving study.
    pub fn apply(&self, p: [f64; 3]) -> [f64; 3] {
        let l = self.linear();
        let d = [0, 1, 2].map(|a| p[a] - self.centre_mm[a]);
        [0, 1, 2].map(|a| {
            (0..3).map(|k| l[a][k] * d[k]).sum::<f64>() + self.centre_mm[a] + self.translation_mm[a]
        })
    }

    /// The 4×4 matrix of [`Self::apply`].
    pub fn matrix(&self) -> [[f64; 4]; 4] {
        let l = self.linear();
        let origin = self.apply([0.0; 3]);
        let mut m = [[0.0; 4]; 4];
        for a in 0..3 {
            m[a][..3].copy_from_slice(&l[a]);
            m[a][3] = origin[a];
        }
        m[3][3] = 1.0;
        m
    }

    /// The matrix of the inverse transform (moving → fixed); `None` when the scales make
    /// it singular.
    pub fn inverse_matrix(&self) -> Option<[[f64; 4]; 4]> {
        let m = self.matrix();
        let inverse = invert3(&[0, 1, 2].map(|r| [m[r][0], m[r][1], m[r][2]]))?;
        let mut out = [[0.0; 4]; 4];
        for r in 0..3 {
            out[r][..3].copy_from_slice(&inverse[r]);
            out[r][3] = -(0..3).map(|k| inverse[r][k] * m[k][3]).sum::<f64>();
        }
        out[3][3] = 1.0;
        Some(out)
    }

    /// The angle of the rotation taking this transform's rotation to `other`'s (degrees).
    pub fn rotation_difference_deg(&self, other: &Transform) -> f64 {
        let (a, b) = (self.rotation(), other.rotation());
        // trace(Aᵀ B) = 1 + 2 cos θ
        let trace: f64 = (0..3)
            .map(|i| (0..3).map(|k| a[k][i] * b[k][i]).sum::<f64>())
            .sum();
        ((trace - 1.0) / 2.0).clamp(-1.0, 1.0).acos().to_degrees()
    }

    /// A sentence recording this registration (for derived series and logs).
    pub fn note(&self, metric: Option<f64>) -> String {
        let metric = metric.map_or(String::new(), |m| format!(", Mattes MI {m:.4}"));
        let affine = if self.is_rigid() {
            String::new()
        } else {
            format!(", scale {:.4?}, shear {:.4?}", self.scale, self.shear)
        };
        format!(
            "registered {} to the first (rotation {:.3?} deg, translation {:.3?} mm about \
             {:.1?}{affine}{metric})",
            if self.is_rigid() {
                "rigidly"
            } else {
                "affinely"
            },
            self.angles_deg,
            self.translation_mm,
            self.centre_mm
        )
    }

    pub fn parameters(&self) -> Parameters {
        let mut p = [0.0; 12];
        for (slot, value) in p.iter_mut().zip(
            self.angles_deg
                .iter()
                .chain(&self.translation_mm)
                .chain(&self.scale)
                .chain(&self.shear),
        ) {
            *slot = *value;
        }
        p
    }

    pub fn with_parameters(&self, p: &Parameters) -> Self {
        Self {
            angles_deg: [p[0], p[1], p[2]],
            translation_mm: [p[3], p[4], p[5]],
            centre_mm: self.centre_mm,
            scale: [p[6], p[7], p[8]],
            shear: [p[9], p[10], p[11]],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_compose_as_documented() {
        let t = Transform::rigid([0.0, 0.0, 90.0], [1.0, 2.0, 3.0], [10.0, 0.0, 0.0]);
        let p = t.apply([11.0, 0.0, 0.0]);
        // (1, 0, 0) from the centre turns to (0, 1, 0), then moves by t.
        for (a, b) in p.iter().zip([11.0, 3.0, 3.0]) {
            assert!((a - b).abs() < 1e-9, "{p:?}");
        }
        let m = t.matrix();
        let q = [0, 1, 2].map(|r| m[r][0] * 11.0 + m[r][3]);
        assert!((q[1] - 3.0).abs() < 1e-9);
        assert!(
            (t.rotation_difference_deg(&Transform::identity_about([0.0; 3])) - 90.0).abs() < 1e-9
        );
    }

    #[test]
    fn affine_inverse_undoes_the_transform() {
        let t = Transform {
            scale: [1.1, 0.9, 1.05],
            shear: [0.05, -0.03, 0.02],
            ..Transform::rigid([3.0, -7.0, 12.0], [4.0, -2.0, 9.0], [5.0, 6.0, -7.0])
        };
        assert!(!t.is_rigid());
        let inverse = t.inverse_matrix().expect("invertible");
        let p = [12.0, -40.0, 33.0];
        let q = t.apply(p);
        let back =
            [0, 1, 2].map(|r| (0..3).map(|k| inverse[r][k] * q[k]).sum::<f64>() + inverse[r][3]);
        for a in 0..3 {
            assert!((back[a] - p[a]).abs() < 1e-9, "{back:?}");
        }
        assert_eq!(t.with_parameters(&t.parameters()), t);
        let flat = Transform {
            scale: [1.0, 0.0, 1.0],
            ..t
        };
        assert!(flat.inverse_matrix().is_none());
    }
}
