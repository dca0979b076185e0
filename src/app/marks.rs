//! The marks a session holds besides its studies and layers: volumes of interest, ruler
//! measurements, the sphere being dragged out, and the MIP pane's cached projection. Data
//! only: the tools that make them live in `vois` and `mip_pane`, which draw them.

use egui::TextureHandle;

use super::layers::LayerId;
use crate::volume::mip::Projection;
use crate::volume::voi::{Region, Statistics, Threshold};

/// A distance between two points (continuous voxel coordinates of the pair's grid).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measurement {
    pub from: [f32; 3],
    pub to: [f32; 3],
    pub mm: f64,
}

/// How a VOI was made.
#[derive(Clone, Debug, PartialEq)]
pub enum VoiKind {
    /// Centre in the pair grid's continuous voxel coordinates (voxel `i` spans `i..i+1`).
    Sphere { centre: [f32; 3], radius_mm: f64 },
    /// Opposite corners in continuous voxel coordinates (low, high on every axis).
    Box { low: [f32; 3], high: [f32; 3] },
    /// Grown on `layer` from `seed`.
    Grown {
        seed: [usize; 3],
        layer: LayerId,
        threshold: Threshold,
    },
}

/// One VOI and its statistics per layer.
pub struct Voi {
    pub name: String,
    pub kind: VoiKind,
    pub region: Region,
    pub statistics: Vec<(LayerId, Statistics)>,
}

impl Voi {
    /// Where "go to" puts the crosshair (continuous voxel coordinates).
    pub fn centre(&self) -> [f32; 3] {
        match &self.kind {
            VoiKind::Sphere { centre, .. } => *centre,
            VoiKind::Box { low, high } => [0, 1, 2].map(|a| (low[a] + high[a]) / 2.0),
            VoiKind::Grown { seed, .. } => seed.map(|v| v as f32 + 0.5),
        }
    }
}

/// A sphere being dragged out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SphereDrag {
    pub centre: [f32; 3],
    pub radius_mm: f64,
}

/// A projection and its texture, remade when what it shows changes.
pub struct MipCache {
    pub(super) key: (LayerId, u64, i32, [u32; 2]),
    pub projection: Projection,
    pub(super) texture: TextureHandle,
}
