//! Writing a [`Volume`] as a DICOM series in patient space: one 16-bit file per slice with
//! ImagePositionPatient/ImageOrientationPatient of the grid, or one NM multi-frame object.
//! Values are quantised with one rescale slope/intercept for the whole series so that they
//! read back in the same physical units. Every file is written atomically.

use std::path::{Path, PathBuf};

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use thiserror::Error;

use super::derived;
use super::elements::{decimal, decimals, element};
use super::pet_modules;
use super::series_options::SeriesOptions;
use crate::io::atomic::{WrittenFiles, write_atomically};
use crate::volume::geometry::{cross, normalize};
use crate::volume::{Modality, Units, Volume};

/// Why a series could not be written.
#[derive(Debug, Error)]
pub enum ExportError {
    #[error("cannot create the output folder: {source} ({})", path.display())]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write: {source} ({})", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode DICOM: {reason}")]
    Encode { reason: String },
    #[error("only gray volumes can be written as DICOM series (this one has {0} channels)")]
    NotGray(usize),
    #[error("the volume holds no finite value")]
    NoFiniteValue,
    #[error("{} exists (use --force to replace it); nothing was written", path.display())]
    Exists { path: PathBuf },
    #[error("the export was cancelled; the files it had written were removed")]
    Cancelled,
}

/// Stored 16-bit values and the rescale that maps them back.
struct Quantised {
    values: Vec<u16>,
    signed: bool,
    slope: f64,
    intercept: f64,
}

/// Chooses a lossless mapping when the values are integers in 16 bits, else a linear one
/// over the full unsigned range.
fn quantise(data: &[f32]) -> Result<Quantised, ExportError> {
    let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
    for v in data.iter().filter(|v| v.is_finite()) {
        min = min.min(*v);
        max = max.max(*v);
    }
    if !min.is_finite() {
        return Err(ExportError::NoFiniteValue);
    }
    let integral = data.iter().all(|v| !v.is_finite() || v.fract() == 0.0);
    if integral && min >= f32::from(i16::MIN) && max <= f32::from(i16::MAX) {
        let signed = min < 0.0;
        let values = data
            .iter()
            .map(|v| {
                let v = if v.is_finite() { *v } else { min };
                if signed { (v as i16) as u16 } else { v as u16 }
            })
            .collect();
        return Ok(Quantised {
            values,
            signed,
            slope: 1.0,
            intercept: 0.0,
        });
    }
    let range = f64::from(max) - f64::from(min);
    let slope = if range > 0.0 { range / 65535.0 } else { 1.0 };
    let intercept = f64::from(min);
    let values = data
        .iter()
        .map(|v| {
            let v = if v.is_finite() {
                f64::from(*v)
            } else {
                intercept
            };
            ((v - intercept) / slope).round().clamp(0.0, 65535.0) as u16
        })
        .collect();
    Ok(Quantised {
        values,
        signed: false,
        slope,
        intercept,
    })
}

/// Writes `volume` as a series into `folder` (created if needed); returns the files.
pub fn write_series(
    volume: &Volume,
    folder: &Path,
    options: &SeriesOptions,
) -> Result<Vec<PathBuf>, ExportError> {
    write_series_with_progress(volume, folder, options, &mut |_, _| true)
}

/// [`write_series`] reporting `progress(files written, total)`; returning `false` cancels.
///
/// All or nothing: existing files are refused before anything is written (unless
/// `overwrite`), every file goes through a temporary name, and on any error or cancel the
/// files this call wrote are removed again.
pub fn write_series_with_progress(
    volume: &Volume,
    folder: &Path,
    options: &SeriesOptions,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Vec<PathBuf>, ExportError> {
    if volume.channels != 1 {
        return Err(ExportError::NotGray(volume.channels));
    }
    let q = quantise(&volume.data)?;
    let nz = volume.geometry.dims[2];
    let parts: Vec<(PathBuf, ObjectPart)> = if options.nm_multi_frame {
        vec![(folder.join("NM000001.dcm"), ObjectPart::AllFrames)]
    } else {
        (0..nz)
            .map(|k| {
                (
                    folder.join(format!("IM{:06}.dcm", k + 1)),
                    ObjectPart::Slice(k),
                )
            })
            .collect()
    };
    if !options.overwrite
        && let Some((path, _)) = parts.iter().find(|(path, _)| path.exists())
    {
        return Err(ExportError::Exists { path: path.clone() });
    }
    std::fs::create_dir_all(folder).map_err(|source| ExportError::Folder {
        path: folder.to_path_buf(),
        source,
    })?;
    let mut written = WrittenFiles::new();
    let total = parts.len();
    for (path, part) in parts {
        let obj = build_object(volume, options, &q, part)?;
        write_file(obj, &path, options.overwrite)?;
        written.push(path);
        if !progress(written.len(), total) && written.len() < total {
            return Err(ExportError::Cancelled);
        }
    }
    Ok(written.keep())
}

/// Which part of the volume an object carries.
#[derive(Clone, Copy)]
enum ObjectPart {
    Slice(usize),
    AllFrames,
}

fn sop_class(modality: &Modality, part: ObjectPart) -> &'static str {
    match (modality, part) {
        (_, ObjectPart::AllFrames) => uids::NUCLEAR_MEDICINE_IMAGE_STORAGE,
        (Modality::Ct, _) => uids::CT_IMAGE_STORAGE,
        (Modality::Mr, _) => uids::MR_IMAGE_STORAGE,
        (Modality::Pet, _) => uids::POSITRON_EMISSION_TOMOGRAPHY_IMAGE_STORAGE,
        _ => uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
    }
}
/// One object of the series: slice `k` of the volume, or every frame in one NM object.
fn build_object(
    volume: &Volume,
    options: &SeriesOptions,
    q: &Quantised,
    part: ObjectPart,
) -> Result<InMemDicomObject, ExportError> {
    let g = &volume.geometry;
    let [nx, ny, nz] = g.dims;
    let slice_len = nx * ny;
    let (first_slice, frames) = match part {
        ObjectPart::Slice(k) => (k, 1),
        ObjectPart::AllFrames => (0, nz),
    };
    let position = g.index_to_world([0.0, 0.0, first_slice as f64]);
    let orientation = [
        g.direction[0][0],
        g.direction[0][1],
        g.direction[0][2],
        g.direction[1][0],
        g.direction[1][1],
        g.direction[1][2],
    ];
    let mut obj = common_elements(volume, options, q, part, first_slice);
    let plane = [
        element(tags::IMAGE_POSITION_PATIENT, VR::DS, decimals(&position)),
        element(
            tags::IMAGE_ORIENTATION_PATIENT,
            VR::DS,
            decimals(&orientation),
        ),
    ];
    let body_part = volume.identity.body_part_examined.as_str();
    if !body_part.is_empty() {
        obj.put(element(tags::BODY_PART_EXAMINED, VR::CS, body_part));
    }
    match part {
        ObjectPart::Slice(_) => put_slice_modules(&mut obj, volume, options, q, plane, position),
        ObjectPart::AllFrames => put_multi_frame_modules(&mut obj, g, q, plane),
    }
    if volume.modality == Modality::Pet && matches!(part, ObjectPart::Slice(_)) {
        let index = first_slice + 1;
        for e in pet_modules::elements(options.pet.as_ref(), &volume.units, index, nz) {
            obj.put(e);
        }
    } else {
        obj.put(element(tags::SERIES_TIME, VR::TM, "080000"));
    }
    if let Some(derivation) = &options.derivation {
        for e in derived::elements(derivation, &options.study_instance_uid, &volume.modality) {
            obj.put(e);
        }
    }
    if !body_part.is_empty() {
        // Laterality (type 2C) is empty only while the body part is unknown; for a known
        // one the side is not known here, so it is left out.
        obj.remove_element(tags::LATERALITY);
    }
    let start = first_slice * slice_len;
    let bytes: Vec<u8> = q.values[start..start + frames * slice_len]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    obj.put(element(tags::PIXEL_DATA, VR::OW, bytes));
    Ok(obj)
}

/// The elements every object of the series has: SOP, patient, study and series identity,
/// dates, and the image pixel description (one gray sample of 16 bits, signed or not).
fn common_elements(
    volume: &Volume,
    options: &SeriesOptions,
    q: &Quantised,
    part: ObjectPart,
    first_slice: usize,
) -> InMemDicomObject {
    let g = &volume.geometry;
    let [nx, ny, _] = g.dims;
    let modality_code = match part {
        ObjectPart::AllFrames => "NM",
        ObjectPart::Slice(_) => volume.modality.code(),
    };
    let sop_class = sop_class(&volume.modality, part);
    let identity = options.identity_elements(sop_class, modality_code, first_slice + 1);
    let mut obj = InMemDicomObject::from_element_iter(identity);
    obj.put(element(
        tags::IMAGE_TYPE,
        VR::CS,
        "ORIGINAL\\PRIMARY\\AXIAL",
    ));
    obj.put(element(
        tags::SLICE_THICKNESS,
        VR::DS,
        decimal(g.spacing[2]),
    ));
    for e in [
        element(
            tags::FRAME_OF_REFERENCE_UID,
            VR::UI,
            options.frame_of_reference_uid.as_str(),
        ),
        element(tags::POSITION_REFERENCE_INDICATOR, VR::LO, ""),
        element(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16)),
        element(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        element(tags::ROWS, VR::US, PrimitiveValue::from(ny as u16)),
        element(tags::COLUMNS, VR::US, PrimitiveValue::from(nx as u16)),
        element(
            tags::PIXEL_SPACING,
            VR::DS,
            decimals(&[g.spacing[1], g.spacing[0]]),
        ),
        element(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16)),
        element(tags::BITS_STORED, VR::US, PrimitiveValue::from(16u16)),
        element(tags::HIGH_BIT, VR::US, PrimitiveValue::from(15u16)),
        element(
            tags::PIXEL_REPRESENTATION,
            VR::US,
            PrimitiveValue::from(u16::from(q.signed)),
        ),
    ] {
        obj.put(e);
    }
    obj
}

/// The plane and modality-specific elements of one slice's object: position, orientation,
/// slice location, rescale, and the CT and MR image modules' required elements.
fn put_slice_modules(
    obj: &mut InMemDicomObject,
    volume: &Volume,
    options: &SeriesOptions,
    q: &Quantised,
    plane: [DataElement<InMemDicomObject>; 2],
    position: [f64; 3],
) {
    let g = &volume.geometry;
    let normal = normalize(cross(g.direction[0], g.direction[1]));
    let location: f64 = (0..3).map(|i| normal[i] * position[i]).sum();
    for e in plane {
        obj.put(e);
    }
    obj.put(element(tags::SLICE_LOCATION, VR::DS, decimal(location)));
    obj.put(element(
        tags::RESCALE_INTERCEPT,
        VR::DS,
        decimal(q.intercept),
    ));
    obj.put(element(tags::RESCALE_SLOPE, VR::DS, decimal(q.slope)));
    if matches!(volume.modality, Modality::Ct | Modality::Mr) {
        // Type 2C in the General Series module for CT and MR: present, may be empty.
        obj.put(element(tags::PATIENT_POSITION, VR::CS, ""));
        obj.put(element(tags::LATERALITY, VR::CS, ""));
    }
    if volume.modality == Modality::Ct {
        obj.put(element(tags::ACQUISITION_NUMBER, VR::IS, ""));
        // HU only for Hounsfield units; a fused image or a map is "US" (unspecified), its
        // meaning in DerivationDescription.
        let rescale_type = if volume.units == Units::Hounsfield {
            "HU"
        } else {
            "US"
        };
        obj.put(element(tags::RESCALE_TYPE, VR::LO, rescale_type));
        obj.put(element(tags::KVP, VR::DS, ""));
    }
    if volume.modality == Modality::Mr {
        // A derived image has no pulse sequence of its own: "research mode".
        let sequence = if options.derivation.is_some() {
            "RM"
        } else {
            "GR"
        };
        for (tag, vr, value) in [
            (tags::SCANNING_SEQUENCE, VR::CS, sequence),
            (tags::SEQUENCE_VARIANT, VR::CS, "NONE"),
            (tags::SCAN_OPTIONS, VR::CS, ""),
            (tags::MR_ACQUISITION_TYPE, VR::CS, "3D"),
            (tags::ECHO_TIME, VR::DS, ""),
            (tags::REPETITION_TIME, VR::DS, ""),
            (tags::ECHO_TRAIN_LENGTH, VR::IS, ""),
        ] {
            obj.put(element(tag, vr, value));
        }
    }
}

/// The elements of the one multi-frame NM object: the plane in the detector sequence, the
/// frames and their slice vector, spacing and rescale.
fn put_multi_frame_modules(
    obj: &mut InMemDicomObject,
    g: &crate::volume::Geometry,
    q: &Quantised,
    plane: [DataElement<InMemDicomObject>; 2],
) {
    let nz = g.dims[2];
    let detector = InMemDicomObject::from_element_iter(plane);
    obj.put(DataElement::new(
        tags::DETECTOR_INFORMATION_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![detector]),
    ));
    obj.put(element(tags::NUMBER_OF_FRAMES, VR::IS, nz.to_string()));
    obj.put(element(
        tags::FRAME_INCREMENT_POINTER,
        VR::AT,
        PrimitiveValue::Tags([tags::SLICE_VECTOR].into_iter().collect()),
    ));
    obj.put(element(
        tags::SLICE_VECTOR,
        VR::US,
        PrimitiveValue::U16((1..=nz as u16).collect()),
    ));
    obj.put(element(
        tags::NUMBER_OF_SLICES,
        VR::US,
        PrimitiveValue::from(nz as u16),
    ));
    obj.put(element(
        tags::SPACING_BETWEEN_SLICES,
        VR::DS,
        decimal(g.spacing[2]),
    ));
    obj.put(element(
        tags::RESCALE_INTERCEPT,
        VR::DS,
        decimal(q.intercept),
    ));
    obj.put(element(tags::RESCALE_SLOPE, VR::DS, decimal(q.slope)));
}

pub(super) fn write_file(
    obj: InMemDicomObject,
    path: &Path,
    overwrite: bool,
) -> Result<(), ExportError> {
    let file = obj
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
        .map_err(|e| ExportError::Encode {
            reason: e.to_string(),
        })?;
    write_atomically(path, overwrite, |out| {
        file.write_all(out).map_err(std::io::Error::other)
    })
    .map_err(|source| ExportError::Write {
        path: path.to_path_buf(),
        source,
    })
}
