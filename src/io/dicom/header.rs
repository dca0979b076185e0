//! What one DICOM image file says about itself: identity, pixel format and, for every frame,
//! where the frame lies in patient space and how its stored values map to physical units.
//!
//! Handles classic single-frame images, enhanced multi-frame objects (shared and per-frame
//! functional groups) and NM multi-frame objects (detector/frame vectors).

use super::tags::{
    Unreadable, checked_fixed, checked_integer, checked_number, first_item, integer, items, text,
};
use crate::volume::{Identity, Vec3};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

/// Placement and value mapping of one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct FramePlane {
    /// ImagePositionPatient: centre of the first transmitted pixel.
    pub position: Option<Vec3>,
    /// ImageOrientationPatient: row direction, column direction.
    pub orientation: Option<[Vec3; 2]>,
    /// PixelSpacing: (between rows, between columns) in mm.
    pub pixel_spacing: Option<[f64; 2]>,
    /// Nominal slice thickness (mm).
    pub slice_thickness: Option<f64>,
    /// RescaleSlope, RescaleIntercept.
    pub rescale: (f64, f64),
}

/// The radiopharmaceutical and patient facts needed for SUV.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PetDose {
    /// Units (0054,1001): BQML, GML, CNTS, …
    pub units: Option<String>,
    /// DecayCorrection (0054,1102): START, ADMIN, NONE.
    pub decay_correction: Option<String>,
    pub patient_weight_kg: Option<f64>,
    pub total_dose_bq: Option<f64>,
    pub half_life_s: Option<f64>,
    /// Injection date-time as (date, time) text.
    pub injection: Option<(String, String)>,
    /// Series date-time (acquisition start reference) as (date, time) text.
    pub series: Option<(String, String)>,
    /// Acquisition date-time as (date, time) text (earliest of the series is the reference
    /// when the series time is missing).
    pub acquisition: Option<(String, String)>,
}

/// Everything a series needs to know about one file, read without decoding pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageHeader {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub transfer_syntax: String,
    pub modality: String,
    /// Patient, study and series identity (shared by every file of a series).
    pub identity: Identity,
    pub instance_number: Option<i64>,
    pub rows: u32,
    pub columns: u32,
    pub samples_per_pixel: u16,
    pub bits_allocated: u16,
    pub photometric: String,
    pub number_of_frames: u32,
    pub frames: Vec<FramePlane>,
    /// Whether frame positions came from the file (false: guessed by stacking).
    pub frames_positioned: bool,
    pub pet: PetDose,
    /// Set when NumberOfFrames was malformed and the frame count came from the pixel data:
    /// the warning to show.
    pub frames_from_pixel_data: Option<String>,
}

/// Reasons a file cannot describe an image.
#[derive(Clone, Debug, PartialEq)]
pub enum HeaderProblem {
    /// The object has no pixel data (a structured report, a plan, a DICOMDIR…).
    NotAnImage,
    /// A required attribute is missing or unreadable.
    Missing(&'static str),
    /// An attribute holds an impossible value.
    Invalid(&'static str, String),
    /// A geometry, pixel-format or unit attribute is present but does not read as numbers.
    Unreadable(Unreadable),
}

impl From<Unreadable> for HeaderProblem {
    fn from(value: Unreadable) -> Self {
        HeaderProblem::Unreadable(value)
    }
}

/// At most this many frames in one object: more is a lying header, not an image.
const MAX_FRAMES: i64 = 1 << 16;

impl ImageHeader {
    /// Reads the header of an image object. `has_pixel_data` says whether the object holds
    /// (or, when read only up to it, reached) the PixelData attribute.
    pub fn from_object(
        obj: &InMemDicomObject,
        transfer_syntax: &str,
        has_pixel_data: bool,
    ) -> Result<Self, HeaderProblem> {
        let rows = checked_integer(obj, tags::ROWS)?;
        let columns = checked_integer(obj, tags::COLUMNS)?;
        if !has_pixel_data && rows.is_none() {
            return Err(HeaderProblem::NotAnImage);
        }
        let rows = rows.ok_or(HeaderProblem::Missing("Rows"))?;
        let columns = columns.ok_or(HeaderProblem::Missing("Columns"))?;
        if !(1..=65535).contains(&rows) || !(1..=65535).contains(&columns) {
            return Err(HeaderProblem::Invalid(
                "Rows/Columns",
                format!("{rows}×{columns}"),
            ));
        }
        let samples = checked_integer(obj, tags::SAMPLES_PER_PIXEL)?.unwrap_or(1);
        if samples != 1 && samples != 3 {
            return Err(HeaderProblem::Invalid(
                "SamplesPerPixel",
                samples.to_string(),
            ));
        }
        let bits_allocated = checked_integer(obj, tags::BITS_ALLOCATED)?
            .ok_or(HeaderProblem::Missing("BitsAllocated"))?;
        // Read by the pixel decoders: refuse a file whose value is there but unreadable.
        checked_integer(obj, tags::BITS_STORED)?;
        checked_integer(obj, tags::PIXEL_REPRESENTATION)?;
        if ![1, 8, 16, 32].contains(&bits_allocated) {
            return Err(HeaderProblem::Invalid(
                "BitsAllocated",
                bits_allocated.to_string(),
            ));
        }
        let mut frames_from_pixel_data = None;
        let number_of_frames = match checked_integer(obj, tags::NUMBER_OF_FRAMES) {
            Ok(frames) => frames.unwrap_or(1).max(1),
            // What the pixel data holds, when it is at hand (a whole file, not a header).
            Err(unreadable) => {
                let frame_bits = rows * columns * samples * bits_allocated;
                let held = frames_held(obj, frame_bits).ok_or(unreadable.clone())?;
                frames_from_pixel_data = Some(format!(
                    "{unreadable}; read the {held} frame(s) the pixel data holds"
                ));
                held
            }
        };
        if number_of_frames > MAX_FRAMES {
            return Err(HeaderProblem::Invalid(
                "NumberOfFrames",
                number_of_frames.to_string(),
            ));
        }
        let get = |tag| text(obj, tag).unwrap_or_default();
        let (frames, frames_positioned) = frame_planes(obj, number_of_frames as usize)?;
        Ok(Self {
            sop_class_uid: get(tags::SOP_CLASS_UID),
            sop_instance_uid: get(tags::SOP_INSTANCE_UID),
            transfer_syntax: transfer_syntax.trim_end_matches('\0').to_string(),
            modality: get(tags::MODALITY),
            identity: Identity {
                patient_name: get(tags::PATIENT_NAME),
                patient_id: get(tags::PATIENT_ID),
                study_instance_uid: get(tags::STUDY_INSTANCE_UID),
                study_description: get(tags::STUDY_DESCRIPTION),
                study_date: get(tags::STUDY_DATE),
                series_instance_uid: get(tags::SERIES_INSTANCE_UID),
                series_description: get(tags::SERIES_DESCRIPTION),
                series_number: integer(obj, tags::SERIES_NUMBER).map(|n| n as i32),
                frame_of_reference_uid: get(tags::FRAME_OF_REFERENCE_UID),
                body_part_examined: get(tags::BODY_PART_EXAMINED),
                stored_window: stored_window(obj),
                instances: Vec::new(),
            },
            instance_number: integer(obj, tags::INSTANCE_NUMBER),
            rows: rows as u32,
            columns: columns as u32,
            samples_per_pixel: samples as u16,
            bits_allocated: bits_allocated as u16,
            photometric: get(tags::PHOTOMETRIC_INTERPRETATION),
            number_of_frames: number_of_frames as u32,
            frames,
            frames_positioned,
            pet: pet_dose(obj)?,
            frames_from_pixel_data,
        })
    }

    /// Bytes the decoded pixel data of this object occupies.
    pub fn decoded_bytes(&self) -> u64 {
        u64::from(self.rows)
            * u64::from(self.columns)
            * u64::from(self.samples_per_pixel)
            * u64::from(self.number_of_frames)
            * u64::from(self.bits_allocated).div_ceil(8)
    }

    /// The orientation of the first frame, if any frame has one.
    pub fn orientation(&self) -> Option<[Vec3; 2]> {
        self.frames.iter().find_map(|f| f.orientation)
    }
}

/// How many whole frames of `frame_bits` bits the object's pixel data holds: native data
/// by its length, encapsulated data by its offset table or else its fragments. `None` without
/// pixel data (a header read) or when not even one frame is there.
fn frames_held(obj: &InMemDicomObject, frame_bits: i64) -> Option<i64> {
    let value = obj.get(tags::PIXEL_DATA)?.value();
    let frames = if let Some(fragments) = value.fragments() {
        let table = value.offset_table().map_or(0, <[u32]>::len);
        (if table > 0 { table } else { fragments.len() }) as i64
    } else {
        let bytes = value.primitive()?.calculate_byte_len() as i64;
        (bytes * 8).checked_div(frame_bits)?
    };
    (1..=MAX_FRAMES).contains(&frames).then_some(frames)
}

/// Geometry and rescale for each frame, plus whether positions were read (not guessed).
fn frame_planes(
    obj: &InMemDicomObject,
    frames: usize,
) -> Result<(Vec<FramePlane>, bool), Unreadable> {
    let shared = first_item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE);
    let per_frame = items(obj, tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE);
    let classic = classic_plane(obj)?;
    if shared.is_some() || !per_frame.is_empty() {
        let planes: Vec<FramePlane> = (0..frames)
            .map(|f| functional_group_plane(per_frame.get(f), shared, &classic))
            .collect::<Result<_, _>>()?;
        let positioned = planes.iter().all(|p| p.position.is_some());
        return Ok((planes, positioned));
    }
    if frames > 1 {
        if let Some(planes) = nm_planes(obj, frames, &classic)? {
            return Ok((planes, true));
        }
        // Multi-frame with no per-frame geometry: stack along the normal, flagged as guessed.
        return Ok((vec![classic; frames], false));
    }
    let positioned = classic.position.is_some();
    Ok((vec![classic], positioned))
}

/// The classic (top-level) plane attributes.
fn classic_plane(obj: &InMemDicomObject) -> Result<FramePlane, Unreadable> {
    let pixel_spacing = match checked_fixed::<2>(obj, tags::PIXEL_SPACING)? {
        Some(spacing) => Some(spacing),
        None => checked_fixed::<2>(obj, tags::IMAGER_PIXEL_SPACING)?,
    };
    Ok(FramePlane {
        position: checked_fixed::<3>(obj, tags::IMAGE_POSITION_PATIENT)?,
        orientation: orientation(obj)?,
        pixel_spacing,
        slice_thickness: checked_number(obj, tags::SLICE_THICKNESS)?,
        rescale: (
            checked_number(obj, tags::RESCALE_SLOPE)?.unwrap_or(1.0),
            checked_number(obj, tags::RESCALE_INTERCEPT)?.unwrap_or(0.0),
        ),
    })
}

fn orientation(obj: &InMemDicomObject) -> Result<Option<[Vec3; 2]>, Unreadable> {
    Ok(checked_fixed::<6>(obj, tags::IMAGE_ORIENTATION_PATIENT)?
        .map(|v| [[v[0], v[1], v[2]], [v[3], v[4], v[5]]]))
}

/// A frame of an enhanced object: per-frame groups override shared groups, which override
/// top-level attributes.
fn functional_group_plane(
    frame: Option<&InMemDicomObject>,
    shared: Option<&InMemDicomObject>,
    classic: &FramePlane,
) -> Result<FramePlane, Unreadable> {
    // The first group (per-frame, then shared) whose `sequence` item gives a value.
    fn lookup<T>(
        groups: [Option<&InMemDicomObject>; 2],
        sequence: dicom_core::Tag,
        read: impl Fn(&InMemDicomObject) -> Result<Option<T>, Unreadable>,
    ) -> Result<Option<T>, Unreadable> {
        for item in groups
            .into_iter()
            .flatten()
            .filter_map(|group| first_item(group, sequence))
        {
            if let Some(value) = read(item)? {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }
    let groups = [frame, shared];
    let mut plane = classic.clone();
    if let Some(p) = lookup(groups, tags::PLANE_POSITION_SEQUENCE, |o| {
        checked_fixed::<3>(o, tags::IMAGE_POSITION_PATIENT)
    })? {
        plane.position = Some(p);
    }
    if let Some(o) = lookup(groups, tags::PLANE_ORIENTATION_SEQUENCE, orientation)? {
        plane.orientation = Some(o);
    }
    if let Some(s) = lookup(groups, tags::PIXEL_MEASURES_SEQUENCE, |o| {
        checked_fixed::<2>(o, tags::PIXEL_SPACING)
    })? {
        plane.pixel_spacing = Some(s);
    }
    if let Some(t) = lookup(groups, tags::PIXEL_MEASURES_SEQUENCE, |o| {
        checked_number(o, tags::SLICE_THICKNESS)
    })? {
        plane.slice_thickness = Some(t);
    }
    if let Some(r) = lookup(groups, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE, |o| {
        let Some(slope) = checked_number(o, tags::RESCALE_SLOPE)? else {
            return Ok(None);
        };
        let intercept = checked_number(o, tags::RESCALE_INTERCEPT)?.unwrap_or(0.0);
        Ok(Some((slope, intercept)))
    })? {
        plane.rescale = r;
    }
    Ok(plane)
}

/// NM multi-frame (tomographic) objects: the detector item gives the first frame's position
/// and the orientation; frames step by SpacingBetweenSlices (which may be negative) along
/// the normal.
fn nm_planes(
    obj: &InMemDicomObject,
    frames: usize,
    classic: &FramePlane,
) -> Result<Option<Vec<FramePlane>>, Unreadable> {
    let detector = first_item(obj, tags::DETECTOR_INFORMATION_SEQUENCE);
    let position = match (classic.position, detector) {
        (Some(p), _) => Some(p),
        (None, Some(d)) => checked_fixed::<3>(d, tags::IMAGE_POSITION_PATIENT)?,
        (None, None) => None,
    };
    let orientation = match (classic.orientation, detector) {
        (Some(o), _) => Some(o),
        (None, Some(d)) => orientation(d)?,
        (None, None) => None,
    };
    let step = checked_number(obj, tags::SPACING_BETWEEN_SLICES)?.or(classic.slice_thickness);
    let (Some(position), Some(orientation), Some(step)) = (position, orientation, step) else {
        return Ok(None);
    };
    let normal = crate::volume::geometry::normalize(crate::volume::geometry::cross(
        orientation[0],
        orientation[1],
    ));
    Ok(Some(
        (0..frames)
            .map(|f| FramePlane {
                position: Some([
                    position[0] + normal[0] * step * f as f64,
                    position[1] + normal[1] * step * f as f64,
                    position[2] + normal[2] * step * f as f64,
                ]),
                orientation: Some(orientation),
                ..classic.clone()
            })
            .collect(),
    ))
}

/// PET dose facts, top level and from the radiopharmaceutical sequence. An SUV factor that
/// is present but unreadable refuses the file: SUV from a wrong weight or dose is worse than
/// none.
fn pet_dose(obj: &InMemDicomObject) -> Result<PetDose, Unreadable> {
    let radiopharmaceutical = first_item(obj, tags::RADIOPHARMACEUTICAL_INFORMATION_SEQUENCE);
    let injection = radiopharmaceutical.and_then(|r| {
        text(r, tags::RADIOPHARMACEUTICAL_START_DATE_TIME)
            .and_then(|dt| super::tags::split_datetime(&dt))
            .or_else(|| {
                let time = text(r, tags::RADIOPHARMACEUTICAL_START_TIME)?;
                let date = text(obj, tags::SERIES_DATE)
                    .or_else(|| text(obj, tags::ACQUISITION_DATE))
                    .or_else(|| text(obj, tags::STUDY_DATE))?;
                Some((date, time))
            })
    });
    let pair = |date_tag, time_tag| -> Option<(String, String)> {
        Some((text(obj, date_tag)?, text(obj, time_tag)?))
    };
    let in_radiopharmaceutical = |tag| match radiopharmaceutical {
        Some(r) => checked_number(r, tag),
        None => Ok(None),
    };
    Ok(PetDose {
        units: text(obj, tags::UNITS),
        decay_correction: text(obj, tags::DECAY_CORRECTION),
        patient_weight_kg: checked_number(obj, tags::PATIENT_WEIGHT)?.filter(|w| *w > 0.0),
        total_dose_bq: in_radiopharmaceutical(tags::RADIONUCLIDE_TOTAL_DOSE)?.filter(|d| *d > 0.0),
        half_life_s: in_radiopharmaceutical(tags::RADIONUCLIDE_HALF_LIFE)?.filter(|h| *h > 0.0),
        injection,
        series: pair(tags::SERIES_DATE, tags::SERIES_TIME),
        acquisition: pair(tags::ACQUISITION_DATE, tags::ACQUISITION_TIME),
    })
}

/// The first WindowCenter/WindowWidth pair, when both read as numbers and the width is
/// positive. A display hint only: an unreadable value is left out, never guessed.
fn stored_window(obj: &InMemDicomObject) -> Option<[f32; 2]> {
    let center = checked_number(obj, tags::WINDOW_CENTER).ok().flatten()?;
    let width = checked_number(obj, tags::WINDOW_WIDTH).ok().flatten()?;
    (width > 0.0 && center.is_finite() && width.is_finite())
        .then_some([center as f32, width as f32])
}
