//! Readers: DICOM series, NIfTI volumes and 2-D images, all into [`Volume`]s.

pub mod aanlib;
pub mod atomic;
pub mod dicom;
mod error;
pub mod image2d;
pub mod nifti;
pub mod session_file;
pub mod transform;

pub use error::LoadError;

use std::path::Path;

use crate::volume::Volume;

/// The kind of input a path holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// A folder or file of DICOM.
    Dicom,
    /// A `.nii` or `.nii.gz` file.
    Nifti,
    /// A 2-D image file (PNG).
    Image,
}

/// Guesses the kind of input from the path's name.
pub fn input_kind(path: &Path) -> InputKind {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if path.is_dir() {
        InputKind::Dicom
    } else if name.ends_with(".nii") || name.ends_with(".nii.gz") {
        InputKind::Nifti
    } else if name.ends_with(".png") {
        InputKind::Image
    } else {
        InputKind::Dicom
    }
}

/// Loads any supported input. `series` picks one series (1-based) from a DICOM folder
/// holding several.
pub fn load(path: &Path, series: Option<usize>) -> Result<Volume, LoadError> {
    match input_kind(path) {
        InputKind::Dicom => dicom::load_path(path, series),
        InputKind::Nifti => nifti::read(path),
        InputKind::Image => image2d::read(path),
    }
}
