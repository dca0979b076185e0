//! Volumes in patient space: voxels in physical units plus the grid that places them.
//!
//! This layer depends on no framework: everything above it (io, fusion, export, app) trades
//! in [`Volume`]s.

pub mod colormap;
pub mod colour;
pub mod geometry;
pub mod intensity;
pub mod mip;
pub mod plane;
pub mod register;
pub mod reorient;
pub mod resample;
pub mod stats;
pub mod transform;
pub mod voi;

pub use geometry::{Geometry, Vec3};

use serde::Serialize;
use std::fmt;
use thiserror::Error;

/// Problems building a volume from parts.
#[derive(Debug, Error, PartialEq)]
pub enum VolumeError {
    /// The voxel buffer does not hold `dims × channels` values.
    #[error(
        "voxel buffer holds {actual} values but the grid {dims:?} × {channels} needs {expected}"
    )]
    SizeMismatch {
        dims: [usize; 3],
        channels: usize,
        expected: usize,
        actual: usize,
    },
    /// A grid with a zero-length axis or a non-positive spacing.
    #[error("invalid grid: {0}")]
    InvalidGrid(String),
}

/// The imaging modality, as DICOM's Modality attribute names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Modality {
    /// Computed tomography.
    Ct,
    /// Magnetic resonance.
    Mr,
    /// Positron emission tomography.
    Pet,
    /// Nuclear medicine, SPECT included.
    Nm,
    /// Anything else, with the code as given.
    Other(String),
}

impl Modality {
    /// Parses a DICOM Modality code.
    pub fn from_code(code: &str) -> Self {
        match code.trim().to_ascii_uppercase().as_str() {
            "CT" => Self::Ct,
            "MR" => Self::Mr,
            "PT" => Self::Pet,
            "NM" | "ST" => Self::Nm,
            other => Self::Other(other.to_string()),
        }
    }

    /// The DICOM code.
    pub fn code(&self) -> &str {
        match self {
            Self::Ct => "CT",
            Self::Mr => "MR",
            Self::Pet => "PT",
            Self::Nm => "NM",
            Self::Other(code) => code,
        }
    }

    /// Functional (emission) modalities: PET and SPECT/NM.
    pub fn is_functional(&self) -> bool {
        matches!(self, Self::Pet | Self::Nm)
    }
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The physical unit of the voxel values.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Units {
    /// Hounsfield units (CT).
    Hounsfield,
    /// Body-weight standardised uptake value (g/ml).
    SuvBw,
    /// Activity concentration, Bq/ml, when SUV could not be computed.
    BqPerMl,
    /// Detector counts (NM/SPECT, uncorrected PET).
    Counts,
    /// Scanner signal with no physical unit (MR, or anything stored without a unit).
    Signal,
    /// Another unit, as the file names it.
    Other(String),
}

impl fmt::Display for Units {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hounsfield => f.write_str("HU"),
            Self::SuvBw => f.write_str("SUVbw"),
            Self::BqPerMl => f.write_str("Bq/ml"),
            Self::Counts => f.write_str("counts"),
            Self::Signal => f.write_str("signal"),
            Self::Other(name) => f.write_str(name),
        }
    }
}

/// Who and what a volume shows: patient, study and series identity.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Identity {
    pub patient_name: String,
    pub patient_id: String,
    pub study_instance_uid: String,
    pub study_description: String,
    pub study_date: String,
    pub series_instance_uid: String,
    pub series_description: String,
    pub series_number: Option<i32>,
    pub frame_of_reference_uid: String,
    /// BodyPartExamined as stored (e.g. `HEAD`, `EXTREMITY`; empty when absent).
    pub body_part_examined: String,
    /// The first WindowCenter and WindowWidth stored with the images (in output units: HU
    /// for CT), when both are present, readable and the width is positive.
    pub stored_window: Option<[f32; 2]>,
    /// The stored objects the volume was built from (empty for NIfTI and PNG), so that
    /// derived series can reference them.
    pub instances: Vec<InstanceRef>,
}

/// What BodyPartExamined says the study shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyPart {
    /// Not stored (or blank).
    Unnamed,
    /// The head: a part naming the head, the brain or the skull (any case).
    Head,
    /// Any other named part (e.g. `EXTREMITY`, `CHEST`).
    Body,
}

impl Identity {
    /// What the stored BodyPartExamined says.
    pub fn body_part(&self) -> BodyPart {
        let part = self.body_part_examined.trim().to_ascii_uppercase();
        if part.is_empty() {
            BodyPart::Unnamed
        } else if ["HEAD", "BRAIN", "SKULL"].iter().any(|h| part.contains(h)) {
            BodyPart::Head
        } else {
            BodyPart::Body
        }
    }
}

/// One stored DICOM object: its SOP class and instance UIDs.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct InstanceRef {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
}

/// A 3-D image: voxel values in physical units on a grid in patient space.
///
/// Values are stored x-fastest (`index = (k * ny + j) * nx + i`), with `channels`
/// interleaved values per voxel (1 for gray images, 3 for RGB).
#[derive(Clone, Debug, PartialEq)]
pub struct Volume {
    pub geometry: Geometry,
    pub channels: usize,
    pub data: Vec<f32>,
    pub modality: Modality,
    pub units: Units,
    pub identity: Identity,
    /// Things a reader should know about how this volume was built (gaps, tilt, …).
    pub warnings: Vec<String>,
}

impl Volume {
    /// A gray volume; checks that the buffer matches the grid.
    pub fn new(geometry: Geometry, data: Vec<f32>) -> Result<Self, VolumeError> {
        Self::with_channels(geometry, 1, data)
    }

    /// A volume with `channels` interleaved values per voxel.
    pub fn with_channels(
        geometry: Geometry,
        channels: usize,
        data: Vec<f32>,
    ) -> Result<Self, VolumeError> {
        if geometry.dims.contains(&0) {
            return Err(VolumeError::InvalidGrid(format!(
                "empty axis in {:?}",
                geometry.dims
            )));
        }
        if geometry.spacing.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return Err(VolumeError::InvalidGrid(format!(
                "spacing {:?} must be positive",
                geometry.spacing
            )));
        }
        let expected = geometry.voxel_count() * channels;
        if data.len() != expected || channels == 0 {
            return Err(VolumeError::SizeMismatch {
                dims: geometry.dims,
                channels,
                expected,
                actual: data.len(),
            });
        }
        Ok(Self {
            geometry,
            channels,
            data,
            modality: Modality::Other("OT".into()),
            units: Units::Signal,
            identity: Identity::default(),
            warnings: Vec::new(),
        })
    }

    /// Sets the modality and units (builder style).
    pub fn with_kind(mut self, modality: Modality, units: Units) -> Self {
        self.modality = modality;
        self.units = units;
        self
    }

    /// Grid size (columns, rows, slices).
    pub fn dims(&self) -> [usize; 3] {
        self.geometry.dims
    }

    /// Offset of voxel (i, j, k)'s first channel in `data`.
    pub fn offset(&self, i: usize, j: usize, k: usize) -> usize {
        let [nx, ny, _] = self.geometry.dims;
        ((k * ny + j) * nx + i) * self.channels
    }

    /// The first channel of voxel (i, j, k).
    pub fn value(&self, i: usize, j: usize, k: usize) -> f32 {
        self.data[self.offset(i, j, k)]
    }

    /// The values of axial slice `k` (all channels), row by row.
    pub fn slice(&self, k: usize) -> &[f32] {
        let [nx, ny, _] = self.geometry.dims;
        let len = nx * ny * self.channels;
        &self.data[k * len..(k + 1) * len]
    }

    /// Size of the voxel buffer in bytes.
    pub fn byte_size(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_mismatch_is_an_error_not_a_panic() {
        let g = Geometry::axis_aligned([2, 2, 2], [1.0; 3], [0.0; 3]);
        assert!(matches!(
            Volume::new(g.clone(), vec![0.0; 7]),
            Err(VolumeError::SizeMismatch { .. })
        ));
        let v = Volume::new(g, (0..8).map(|v| v as f32).collect()).expect("valid");
        assert_eq!(v.value(1, 1, 1), 7.0);
        assert_eq!(v.slice(1), &[4.0, 5.0, 6.0, 7.0]);
    }

    #[test]
    fn modality_codes() {
        assert_eq!(Modality::from_code("PT"), Modality::Pet);
        assert_eq!(Modality::from_code(" ct "), Modality::Ct);
        assert!(Modality::Nm.is_functional());
        assert_eq!(Modality::from_code("US").code(), "US");
    }
}
