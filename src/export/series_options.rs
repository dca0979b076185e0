//! What a DICOM series is written with besides its voxels: identity, UIDs, description,
//! PET dose facts, derivation, and their anonymisation.

use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::derived::Derivation;
use super::elements::element;
use super::pet_modules::PetDoseTags;
use super::uid::{new_uid, remapped};

/// What to write besides the voxels.
#[derive(Clone, Debug)]
pub struct SeriesOptions {
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub frame_of_reference_uid: String,
    pub patient_name: String,
    pub patient_id: String,
    pub study_date: String,
    pub series_number: i32,
    pub series_description: String,
    /// Values are Bq/ml and these facts are written (PET only; without them a PET series
    /// records its values' own unit and no radiopharmaceutical).
    pub pet: Option<PetDoseTags>,
    /// Write NM as one multi-frame object (NM Image Storage) instead of one file per slice.
    pub nm_multi_frame: bool,
    /// Replace existing files.
    pub overwrite: bool,
    /// Set for a derived series (fusion results): DERIVED\SECONDARY and source references.
    pub derivation: Option<Derivation>,
}

impl SeriesOptions {
    /// The elements every object of the series carries: character set, SOP class and a new
    /// SOP instance UID, patient, study and series identity, dates, and the object's
    /// `modality` and `instance_number`.
    pub(super) fn identity_elements(
        &self,
        sop_class: &str,
        modality: &str,
        instance_number: usize,
    ) -> Vec<DataElement<InMemDicomObject>> {
        vec![
            element(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192"),
            element(tags::SOP_CLASS_UID, VR::UI, sop_class),
            element(tags::SOP_INSTANCE_UID, VR::UI, new_uid()),
            element(tags::STUDY_DATE, VR::DA, self.study_date.as_str()),
            element(tags::SERIES_DATE, VR::DA, self.study_date.as_str()),
            element(tags::STUDY_TIME, VR::TM, "080000"),
            element(tags::ACCESSION_NUMBER, VR::SH, ""),
            element(tags::MODALITY, VR::CS, modality),
            element(tags::MANUFACTURER, VR::LO, "dualmine"),
            element(tags::REFERRING_PHYSICIAN_NAME, VR::PN, ""),
            element(
                tags::SERIES_DESCRIPTION,
                VR::LO,
                self.series_description.as_str(),
            ),
            element(tags::PATIENT_NAME, VR::PN, self.patient_name.as_str()),
            element(tags::PATIENT_ID, VR::LO, self.patient_id.as_str()),
            element(tags::PATIENT_BIRTH_DATE, VR::DA, ""),
            element(tags::PATIENT_SEX, VR::CS, "O"),
            element(
                tags::STUDY_INSTANCE_UID,
                VR::UI,
                self.study_instance_uid.as_str(),
            ),
            element(
                tags::SERIES_INSTANCE_UID,
                VR::UI,
                self.series_instance_uid.as_str(),
            ),
            element(tags::STUDY_ID, VR::SH, "1"),
            element(tags::SERIES_NUMBER, VR::IS, self.series_number.to_string()),
            element(tags::INSTANCE_NUMBER, VR::IS, instance_number.to_string()),
        ]
    }

    /// Options with fresh UIDs for a new study, series and frame of reference.
    pub fn new_study(patient_name: &str, patient_id: &str, description: &str) -> Self {
        Self {
            study_instance_uid: new_uid(),
            series_instance_uid: new_uid(),
            frame_of_reference_uid: new_uid(),
            patient_name: patient_name.into(),
            patient_id: patient_id.into(),
            study_date: "20260101".into(),
            series_number: 1,
            series_description: description.into(),
            pet: None,
            nm_multi_frame: false,
            overwrite: false,
            derivation: None,
        }
    }

    /// Replaces the patient's identity and remaps every UID in these options (study, frame of
    /// reference, and the sources' study, series and instance UIDs) with `secret`, the same way
    /// everywhere, so that references between the exported series still hold.
    pub fn anonymize(&mut self, secret: u128) {
        let map = |uid: &mut String| *uid = remapped(uid, secret);
        self.patient_name = "ANONYMOUS".into();
        let pseudonym = remapped(&format!("patient:{}", self.patient_id), secret);
        self.patient_id = format!("ANON-{}", pseudonym.get(5..15).unwrap_or("0"));
        map(&mut self.study_instance_uid);
        map(&mut self.frame_of_reference_uid);
        if let Some(derivation) = &mut self.derivation {
            for source in &mut derivation.sources {
                source.patient_name.clear();
                source.patient_id.clear();
                map(&mut source.study_instance_uid);
                map(&mut source.series_instance_uid);
                map(&mut source.frame_of_reference_uid);
                for instance in &mut source.instances {
                    map(&mut instance.sop_instance_uid);
                }
            }
        }
    }
}
