//! Window/level: which value range maps to black..white, with per-modality presets.

use crate::volume::{Modality, Units, Volume, stats};

/// A display window: values `center ± width/2` span black to white.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub center: f32,
    pub width: f32,
}

impl Window {
    /// Maps a value to 0..=1.
    pub fn normalise(&self, value: f32) -> f32 {
        ((value - (self.center - self.width / 2.0)) / self.width.max(1e-6)).clamp(0.0, 1.0)
    }

    /// The default window for a volume: CT brain window; PET SUV 0–6 (SUV only); otherwise
    /// 0.5th–99.5th percentile.
    pub fn default_for(volume: &Volume) -> Self {
        match (&volume.modality, &volume.units) {
            (Modality::Ct, Units::Hounsfield) => Self::CT_BRAIN,
            (_, Units::SuvBw) => Self {
                center: 3.0,
                width: 6.0,
            },
            _ => {
                let low = stats::percentile(volume, 0.5).unwrap_or(0.0);
                let high = stats::percentile(volume, 99.5).unwrap_or(1.0);
                Self {
                    center: (low + high) / 2.0,
                    width: (high - low).max(1e-3),
                }
            }
        }
    }

    pub const CT_BRAIN: Self = Self {
        center: 40.0,
        width: 80.0,
    };
    pub const CT_BONE: Self = Self {
        center: 500.0,
        width: 2000.0,
    };
    pub const CT_SOFT_TISSUE: Self = Self {
        center: 50.0,
        width: 400.0,
    };
    pub const CT_LUNG: Self = Self {
        center: -600.0,
        width: 1500.0,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_maps_its_range_to_unit_interval() {
        let w = Window::CT_BRAIN;
        assert_eq!(w.normalise(0.0), 0.0);
        assert_eq!(w.normalise(40.0), 0.5);
        assert_eq!(w.normalise(80.0), 1.0);
        assert_eq!(w.normalise(1000.0), 1.0);
    }
}
