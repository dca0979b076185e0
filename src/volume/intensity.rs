//! Intensity windows: which physical values map to 0..1, for display and for the network.
//!
//! One default per modality (ARCHITECTURE.md: "what the user sees is what was fused"):
//! CT in HU by the window stored with the images (WindowCenter/WindowWidth), else by the body
//! part — the brain window (W 80 / L 40) for HEAD or BRAIN, soft tissue (W 400 / L 40)
//! otherwise; PET/NM 0 to the 99.5th percentile (an SUV window is only applied to SUV
//! values); MR and anything else the 0.5th–99.5th percentile.

use super::{BodyPart, Modality, Units, Volume, stats};

/// A display window: values `center ± width/2` span 0..1 (black to white).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub center: f32,
    pub width: f32,
}

/// The 0.5th and 99.5th percentiles of a volume's finite values ([0, 1] when it has none):
/// MR's default window and every study's "auto" preset.
pub fn percentile_bounds(volume: &Volume) -> [f32; 2] {
    stats::percentiles(volume, [0.5, 99.5]).unwrap_or([0.0, 1.0])
}

impl Window {
    /// A window from its lowest and highest value.
    pub fn from_range(low: f32, high: f32) -> Self {
        Self {
            center: (low + high) / 2.0,
            width: (high - low).max(1e-6),
        }
    }

    /// Maps a value to 0..=1.
    pub fn normalise(&self, value: f32) -> f32 {
        ((value - (self.center - self.width / 2.0)) / self.width.max(1e-6)).clamp(0.0, 1.0)
    }

    /// The default window for a volume (see the module documentation).
    pub fn default_for(volume: &Volume) -> Self {
        match (&volume.modality, &volume.units) {
            (Modality::Ct, Units::Hounsfield) => Self::ct_default(volume),
            _ => Self::default_given(volume, percentile_bounds(volume)),
        }
    }

    /// A CT's default: its stored window, else the brain window for a head or brain study
    /// (BodyPartExamined), else soft tissue.
    pub fn ct_default(volume: &Volume) -> Self {
        if let Some([center, width]) = volume.identity.stored_window {
            return Self { center, width };
        }
        if volume.identity.body_part() == BodyPart::Head {
            Self::CT_BRAIN
        } else {
            Self::CT_SOFT_TISSUE
        }
    }

    /// [`Self::default_for`] when the volume's [`percentile_bounds`] are known already.
    pub fn default_given(volume: &Volume, bounds: [f32; 2]) -> Self {
        match (&volume.modality, &volume.units) {
            (Modality::Ct, Units::Hounsfield) => Self::ct_default(volume),
            (Modality::Pet | Modality::Nm, _) | (_, Units::SuvBw) => {
                Self::from_range(0.0, bounds[1].max(1e-3))
            }
            _ => Self::between(bounds),
        }
    }

    /// The window spanning `[low, high]` percentile bounds (at least 1e-3 wide).
    pub fn between([low, high]: [f32; 2]) -> Self {
        Self::from_range(low, high.max(low + 1e-3))
    }

    /// The whole volume (first channel) mapped through this window.
    pub fn normalised(&self, volume: &Volume) -> Vec<f32> {
        volume
            .data
            .iter()
            .step_by(volume.channels)
            .map(|v| self.normalise(*v))
            .collect()
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
        center: 40.0,
        width: 400.0,
    };
    pub const CT_LUNG: Self = Self {
        center: -600.0,
        width: 1500.0,
    };
    /// PET SUV 0–6.
    pub const PET_SUV: Self = Self {
        center: 3.0,
        width: 6.0,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Geometry;

    #[test]
    fn window_maps_its_range_to_unit_interval() {
        let w = Window::CT_BRAIN;
        assert_eq!(w.normalise(0.0), 0.0);
        assert_eq!(w.normalise(40.0), 0.5);
        assert_eq!(w.normalise(80.0), 1.0);
        assert_eq!(w.normalise(1000.0), 1.0);
    }

    #[test]
    fn defaults_follow_the_modality() {
        let g = Geometry::axis_aligned([201, 1, 1], [1.0; 3], [0.0; 3]);
        let ramp: Vec<f32> = (0..201).map(|v| v as f32 / 10.0).collect();
        let pet = Volume::new(g.clone(), ramp.clone())
            .expect("valid")
            .with_kind(Modality::Pet, Units::SuvBw);
        let w = Window::default_for(&pet);
        assert_eq!(w.normalise(0.0), 0.0);
        assert!((w.center * 2.0 - 19.9).abs() < 0.11, "{w:?}");
        let mut ct = Volume::new(g, ramp)
            .expect("valid")
            .with_kind(Modality::Ct, Units::Hounsfield);
        // No body part, no stored window: soft tissue; a head: the brain window; a stored
        // window wins over both.
        assert_eq!(Window::default_for(&ct), Window::CT_SOFT_TISSUE);
        ct.identity.body_part_examined = "HEAD".into();
        assert_eq!(Window::default_for(&ct), Window::CT_BRAIN);
        ct.identity.body_part_examined = "EXTREMITY".into();
        assert_eq!(Window::default_for(&ct), Window::CT_SOFT_TISSUE);
        ct.identity.stored_window = Some([50.0, 350.0]);
        assert_eq!(
            Window::default_for(&ct),
            Window {
                center: 50.0,
                width: 350.0
            }
        );
    }
}
