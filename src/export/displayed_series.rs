//! The fusion as displayed, written as an RGB secondary-capture series: one object a slice of
//! the viewer's plane, 8-bit RGB in the colours on screen, derived from both source series.
//! A picture for reading and reports, not a volume: it carries no physical values (no
//! rescale, no HU or SUV) and says so in its derivation.

use std::path::{Path, PathBuf};

use dicom_core::{PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;

use super::derived;
use super::dicom_series::{ExportError, write_file};
use super::elements::element;
use super::series_options::SeriesOptions;
use crate::io::atomic::WrittenFiles;
use crate::volume::Modality;

/// The pictures to write.
pub struct DisplayedSeries<'a> {
    /// Sub-folder of the export.
    pub folder: String,
    /// SeriesDescription (cut to 64 characters).
    pub description: String,
    /// DerivationDescription: how it was made.
    pub derivation: String,
    /// Pixels across and down (the same for every slice).
    pub size: [usize; 2],
    /// How many slices.
    pub count: usize,
    /// The patient directions of the picture's rows and columns (PatientOrientation, e.g.
    /// `L\P` for an axial plane shown with the patient's right on the left).
    pub patient_orientation: String,
    /// Slice `k`'s RGB pixels, row by row.
    pub frame: &'a (dyn Fn(usize) -> Vec<u8> + Sync),
}

/// Writes `series` into `folder` with `options` (series identity, derivation); all or
/// nothing; `progress(written, total)` returning false cancels.
pub fn write_displayed(
    series: &DisplayedSeries<'_>,
    options: &SeriesOptions,
    folder: &Path,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Vec<PathBuf>, ExportError> {
    let [width, height] = series.size;
    if width == 0 || height == 0 || width > 65535 || height > 65535 {
        return Err(ExportError::Encode {
            reason: format!("a picture of {width} x {height} pixels cannot be stored"),
        });
    }
    let paths: Vec<PathBuf> = (0..series.count)
        .map(|k| folder.join(format!("IM{:06}.dcm", k + 1)))
        .collect();
    if !options.overwrite
        && let Some(path) = paths.iter().find(|p| p.exists())
    {
        return Err(ExportError::Exists { path: path.clone() });
    }
    std::fs::create_dir_all(folder).map_err(|source| ExportError::Folder {
        path: folder.to_path_buf(),
        source,
    })?;
    let mut written = WrittenFiles::new();
    for (k, path) in paths.iter().enumerate() {
        let pixels = (series.frame)(k);
        if pixels.len() != width * height * 3 {
            return Err(ExportError::Encode {
                reason: format!("slice {} has {} bytes of RGB", k + 1, pixels.len()),
            });
        }
        let object = picture_object(series, options, k, pixels);
        write_file(object, path, options.overwrite)?;
        written.push(path.clone());
        if !progress(written.len(), series.count) && written.len() < series.count {
            return Err(ExportError::Cancelled);
        }
    }
    Ok(written.keep())
}

/// Slice `k` as a secondary-capture image object.
fn picture_object(
    series: &DisplayedSeries<'_>,
    options: &SeriesOptions,
    k: usize,
    pixels: Vec<u8>,
) -> InMemDicomObject {
    let [width, height] = series.size;
    let identity = options.identity_elements(uids::SECONDARY_CAPTURE_IMAGE_STORAGE, "OT", k + 1);
    let mut object = InMemDicomObject::from_element_iter(identity);
    for e in [
        element(tags::SERIES_TIME, VR::TM, "080000"),
        // Type 2C in the General Series module: present, may be empty.
        element(tags::LATERALITY, VR::CS, ""),
        element(tags::CONVERSION_TYPE, VR::CS, "WSD"),
        element(
            tags::PATIENT_ORIENTATION,
            VR::CS,
            series.patient_orientation.as_str(),
        ),
        element(tags::BURNED_IN_ANNOTATION, VR::CS, "NO"),
        element(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(3u16)),
        element(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "RGB"),
        element(
            tags::PLANAR_CONFIGURATION,
            VR::US,
            PrimitiveValue::from(0u16),
        ),
        element(tags::ROWS, VR::US, PrimitiveValue::from(height as u16)),
        element(tags::COLUMNS, VR::US, PrimitiveValue::from(width as u16)),
        element(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(8u16)),
        element(tags::BITS_STORED, VR::US, PrimitiveValue::from(8u16)),
        element(tags::HIGH_BIT, VR::US, PrimitiveValue::from(7u16)),
        element(
            tags::PIXEL_REPRESENTATION,
            VR::US,
            PrimitiveValue::from(0u16),
        ),
    ] {
        object.put(e);
    }
    if let Some(derivation) = &options.derivation {
        let other = Modality::Other("OT".into());
        for e in derived::elements(derivation, &options.study_instance_uid, &other) {
            object.put(e);
        }
    }
    let mut pixels = pixels;
    // OB values have even length.
    if pixels.len() % 2 == 1 {
        pixels.push(0);
    }
    object.put(element(tags::PIXEL_DATA, VR::OB, pixels));
    object
}
