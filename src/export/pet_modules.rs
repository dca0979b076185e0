//! The PET-specific modules of a PET Image object (PET Series, PET Isotope, NM/PET Patient
//! Orientation, PET Image): the values' unit, and, when the dose facts are known, what a
//! reader needs to compute SUVbw from Bq/ml.

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::elements::{decimal, element};
use crate::volume::Units;

/// PET dose facts to record, so that readers can compute SUVbw from Bq/ml values.
#[derive(Clone, Debug, PartialEq)]
pub struct PetDoseTags {
    pub injected_dose_bq: f64,
    pub half_life_s: f64,
    pub patient_weight_kg: f64,
    /// Injection time of day, DICOM TM ("HHMMSS").
    pub injection_time: String,
    /// Series start time of day, DICOM TM.
    pub series_time: String,
}

/// The DICOM code of a PET series' Units (0054,1001).
fn units_code(units: &Units, dose: Option<&PetDoseTags>) -> &'static str {
    match (units, dose) {
        (Units::SuvBw, _) => "GML",
        (Units::Counts, None) => "CNTS",
        (Units::BqPerMl, _) | (_, Some(_)) => "BQML",
        _ => "PROP",
    }
}

/// The elements of slice `index` (1-based) of `slices` for values in `units`.
pub(super) fn elements(
    dose: Option<&PetDoseTags>,
    units: &Units,
    index: usize,
    slices: usize,
) -> Vec<DataElement<InMemDicomObject>> {
    let empty = |tag| DataElement::new(tag, VR::SQ, DataSetSequence::from(Vec::new()));
    let radiopharmaceutical = match dose {
        Some(dose) => DataElement::new(
            tags::RADIOPHARMACEUTICAL_INFORMATION_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![InMemDicomObject::from_element_iter([
                element(
                    tags::RADIOPHARMACEUTICAL_START_TIME,
                    VR::TM,
                    dose.injection_time.as_str(),
                ),
                element(
                    tags::RADIONUCLIDE_TOTAL_DOSE,
                    VR::DS,
                    decimal(dose.injected_dose_bq),
                ),
                element(
                    tags::RADIONUCLIDE_HALF_LIFE,
                    VR::DS,
                    decimal(dose.half_life_s),
                ),
                // Which nuclide is not among the facts we keep (type 2: empty).
                empty(tags::RADIONUCLIDE_CODE_SEQUENCE),
            ])]),
        ),
        None => empty(tags::RADIOPHARMACEUTICAL_INFORMATION_SEQUENCE),
    };
    let series_time = dose.map_or("080000".to_string(), |d| d.series_time.clone());
    let mut out = vec![
        radiopharmaceutical,
        empty(tags::PATIENT_ORIENTATION_CODE_SEQUENCE),
        empty(tags::PATIENT_GANTRY_RELATIONSHIP_CODE_SEQUENCE),
        element(tags::UNITS, VR::CS, units_code(units, dose)),
        element(tags::COUNTS_SOURCE, VR::CS, "EMISSION"),
        element(tags::SERIES_TYPE, VR::CS, "STATIC\\IMAGE"),
        element(tags::NUMBER_OF_SLICES, VR::US, slices as u16),
        element(tags::IMAGE_INDEX, VR::US, index as u16),
        element(tags::COLLIMATOR_TYPE, VR::CS, "NONE"),
        element(tags::LATERALITY, VR::CS, ""),
        element(tags::SERIES_TIME, VR::TM, series_time.as_str()),
        element(tags::ACQUISITION_DATE, VR::DA, ""),
        element(tags::ACQUISITION_TIME, VR::TM, series_time.as_str()),
        element(tags::FRAME_REFERENCE_TIME, VR::DS, "0"),
        element(tags::ACTUAL_FRAME_DURATION, VR::IS, ""),
    ];
    match dose {
        Some(dose) => out.extend([
            element(tags::DECAY_CORRECTION, VR::CS, "START"),
            // A static frame starting at the series start: nothing to decay-correct.
            element(tags::DECAY_FACTOR, VR::DS, "1"),
            element(tags::CORRECTED_IMAGE, VR::CS, "DECY\\ATTN"),
            element(
                tags::PATIENT_WEIGHT,
                VR::DS,
                decimal(dose.patient_weight_kg),
            ),
        ]),
        // Values already in SUV or of unknown history: which corrections were applied is
        // not known here.
        None => out.extend([
            element(tags::DECAY_CORRECTION, VR::CS, "NONE"),
            element(tags::CORRECTED_IMAGE, VR::CS, ""),
        ]),
    }
    out
}
