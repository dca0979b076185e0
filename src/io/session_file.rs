//! The saved-session file format (JSON): what the viewer writes and reopens
//! (`app::saved_session`) and what `dualmine stats --session` reads. VOI positions are kept
//! both in the viewer's grid (to restore it exactly) and in patient millimetres (for any
//! grid, and for the command line).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::volume::voi::Threshold;

/// The file format's version.
pub const VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SavedSession {
    pub version: u32,
    pub studies: Vec<SavedStudy>,
    pub registration: Option<SavedTransform>,
    pub layout: String,
    pub orientation: String,
    /// Crosshair in the pair grid's continuous voxel coordinates.
    pub cursor: [f32; 3],
    pub zoom: f32,
    pub pan: [f32; 2],
    pub mip_angle: f32,
    pub layers: Vec<SavedLayer>,
    pub vois: Vec<SavedVoi>,
    /// Distances: both ends in the pair grid's continuous voxel coordinates.
    pub distances: Vec<[[f32; 3]; 2]>,
    /// The fused image's detail control d the reader chose (absent: the model's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<f32>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SavedStudy {
    pub path: PathBuf,
    /// Series number in the folder (1-based) when it holds several.
    pub series: Option<usize>,
    /// The study as it was: reopening says so when the series found differs.
    pub series_instance_uid: String,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct SavedTransform {
    pub angles_deg: [f64; 3],
    pub translation_mm: [f64; 3],
    pub centre_mm: [f64; 3],
    pub scale: [f64; 3],
    pub shear: [f64; 3],
    pub metric: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SavedLayer {
    /// The layer's name as the panel shows it ("A", "fused", "reliability A (scale 0)", …).
    pub layer: String,
    pub visible: bool,
    pub opacity: f32,
    pub colormap: String,
    pub window: [f32; 2],
    /// "A" or "B" when the layer wears that study's colours.
    pub colours_from: Option<String>,
    /// The value below which the layer is not drawn (absent in files from before it was
    /// saved: none).
    #[serde(default)]
    pub threshold: Option<f32>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum SavedVoi {
    Sphere {
        name: String,
        /// In the viewer's grid (continuous voxel coordinates).
        centre: [f32; 3],
        /// The same point in patient millimetres (LPS).
        centre_mm: [f64; 3],
        radius_mm: f64,
    },
    Box {
        name: String,
        /// Opposite corners in the viewer's grid (continuous voxel coordinates)...
        low: [f32; 3],
        high: [f32; 3],
        /// ...and in patient millimetres (LPS).
        low_mm: [f64; 3],
        high_mm: [f64; 3],
    },
    Grown {
        name: String,
        /// In the viewer's grid, and in patient millimetres (LPS).
        seed: [usize; 3],
        seed_mm: [f64; 3],
        /// The layer grown on, by its panel name ("A", "B", …).
        layer: String,
        /// `{"OfLocalMax": 0.41}` (a fraction of the local maximum) or `{"Absolute": 2.5}`.
        threshold: Threshold,
    },
}

impl SavedVoi {
    pub fn name(&self) -> &str {
        match self {
            Self::Sphere { name, .. } | Self::Box { name, .. } | Self::Grown { name, .. } => name,
        }
    }
}

impl SavedSession {
    /// Reads and checks a session file.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let saved: Self = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a dualmine session: {e}", path.display()))?;
        if saved.version != VERSION {
            return Err(format!(
                "{} is a version {} session; this dualmine reads version {VERSION}",
                path.display(),
                saved.version
            ));
        }
        Ok(saved)
    }
}
