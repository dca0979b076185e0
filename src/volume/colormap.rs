//! Colour maps for display: gray, hot iron, rainbow and a PET-style scale, each a 256-entry
//! lookup table from a windowed value in 0..1 to an RGB colour. The viewer uploads the tables
//! to the GPU as one texture (a row per map); the colour bar and CPU drawing read them here.

/// A colour map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ColorMap {
    Gray,
    /// Black → red → yellow → white (emission studies).
    HotIron,
    /// Blue → cyan → green → yellow → red (maps such as reliability and α).
    Rainbow,
    /// Black → blue → violet → red → orange → yellow → white, as PET workstations show SUV.
    Pet,
}

/// Entries in a lookup table.
pub const LUT_SIZE: usize = 256;

impl ColorMap {
    /// Every map, in the order of the rows of [`all_tables`].
    pub const ALL: [ColorMap; 4] = [Self::Gray, Self::HotIron, Self::Rainbow, Self::Pet];

    /// The name shown in menus.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gray => "gray",
            Self::HotIron => "hot iron",
            Self::Rainbow => "rainbow",
            Self::Pet => "PET",
        }
    }

    /// The row of this map in [`all_tables`].
    pub fn row(self) -> usize {
        Self::ALL.iter().position(|m| *m == self).unwrap_or(0)
    }

    /// The colour of windowed value `t` (clamped to 0..1).
    pub fn color(self, t: f32) -> [u8; 3] {
        let t = if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let rgb = match self {
            Self::Gray => [t, t, t],
            Self::HotIron => [
                (t * 3.0).clamp(0.0, 1.0),
                (t * 3.0 - 1.0).clamp(0.0, 1.0),
                (t * 3.0 - 2.0).clamp(0.0, 1.0),
            ],
            Self::Rainbow => piecewise(
                t,
                &[
                    (0.0, [0.0, 0.0, 0.5]),
                    (0.15, [0.0, 0.0, 1.0]),
                    (0.4, [0.0, 1.0, 1.0]),
                    (0.6, [0.0, 1.0, 0.0]),
                    (0.8, [1.0, 1.0, 0.0]),
                    (1.0, [1.0, 0.0, 0.0]),
                ],
            ),
            Self::Pet => piecewise(
                t,
                &[
                    (0.0, [0.0, 0.0, 0.0]),
                    (0.2, [0.0, 0.05, 0.6]),
                    (0.4, [0.5, 0.0, 0.7]),
                    (0.6, [1.0, 0.1, 0.2]),
                    (0.8, [1.0, 0.6, 0.0]),
                    (1.0, [1.0, 1.0, 1.0]),
                ],
            ),
        };
        rgb.map(|c| (c * 255.0).round() as u8)
    }

    /// The 256-entry table, RGBA with opaque alpha.
    pub fn table(self) -> Vec<[u8; 4]> {
        (0..LUT_SIZE)
            .map(|i| {
                let [r, g, b] = self.color(i as f32 / (LUT_SIZE - 1) as f32);
                [r, g, b, 255]
            })
            .collect()
    }

    /// The table entry for windowed value `t`: the same rounding the shader uses.
    pub fn index_of(t: f32) -> usize {
        let t = if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        };
        (t * (LUT_SIZE - 1) as f32).round() as usize
    }
}

/// Every map's table, one row after another (`ALL` order), RGBA.
pub fn all_tables() -> Vec<u8> {
    ColorMap::ALL
        .iter()
        .flat_map(|m| m.table())
        .flatten()
        .collect()
}

/// Linear interpolation between control points `(t, rgb)` sorted by `t`.
fn piecewise(t: f32, points: &[(f32, [f32; 3])]) -> [f32; 3] {
    for pair in points.windows(2) {
        let ((t0, c0), (t1, c1)) = (pair[0], pair[1]);
        if t <= t1 {
            let f = ((t - t0) / (t1 - t0)).clamp(0.0, 1.0);
            return [0, 1, 2].map(|i| c0[i] + (c1[i] - c0[i]) * f);
        }
    }
    points.last().map(|p| p.1).unwrap_or([0.0; 3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_run_from_dark_to_bright_with_their_own_hues() {
        assert_eq!(ColorMap::Gray.color(0.0), [0, 0, 0]);
        assert_eq!(ColorMap::Gray.color(1.0), [255, 255, 255]);
        assert_eq!(ColorMap::HotIron.color(1.0 / 3.0), [255, 0, 0]);
        assert_eq!(ColorMap::Pet.color(1.0), [255, 255, 255]);
        assert_eq!(ColorMap::Rainbow.color(1.0), [255, 0, 0]);
        assert_eq!(ColorMap::Rainbow.color(0.6), [0, 255, 0]);
        // Out-of-range and NaN values clamp instead of wrapping.
        assert_eq!(ColorMap::Gray.color(2.0), [255, 255, 255]);
        assert_eq!(ColorMap::Gray.color(f32::NAN), [0, 0, 0]);
    }

    #[test]
    fn tables_hold_one_row_per_map() {
        let tables = all_tables();
        assert_eq!(tables.len(), ColorMap::ALL.len() * LUT_SIZE * 4);
        let pet = ColorMap::Pet.row() * LUT_SIZE * 4;
        assert_eq!(&tables[pet + 255 * 4..pet + 256 * 4], &[255, 255, 255, 255]);
        assert_eq!(ColorMap::index_of(0.5), 128);
    }
}
