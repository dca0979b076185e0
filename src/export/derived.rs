//! What makes an exported series a *derived* one: ImageType DERIVED\SECONDARY, a description
//! of how it was made, and references to the source series and their instances (the Common
//! Instance Reference module), plus anonymisation with consistently remapped UIDs.

use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::elements::{element, sequence};
use crate::volume::{Identity, InstanceRef, Modality};

/// How a derived series was made and from what.
#[derive(Clone, Debug, Default)]
pub struct Derivation {
    /// DerivationDescription (up to 1024 characters).
    pub description: String,
    /// The source series, each with the instances it was built from.
    pub sources: Vec<Identity>,
}

/// A reference to one stored object.
fn instance_item(instance: &InstanceRef) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        element(
            tags::REFERENCED_SOP_CLASS_UID,
            VR::UI,
            instance.sop_class_uid.as_str(),
        ),
        element(
            tags::REFERENCED_SOP_INSTANCE_UID,
            VR::UI,
            instance.sop_instance_uid.as_str(),
        ),
    ])
}

/// The series item of the Common Instance Reference module for `source`.
fn series_item(source: &Identity) -> InMemDicomObject {
    let instances = source.instances.iter().map(instance_item).collect();
    InMemDicomObject::from_element_iter([
        element(
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            source.series_instance_uid.as_str(),
        ),
        sequence(tags::REFERENCED_INSTANCE_SEQUENCE, instances),
    ])
}

/// The elements `derivation` adds to every object of a series in study `study_uid`, stored
/// as `modality` (ImageType's third value is required for CT and MR images).
pub fn elements(
    derivation: &Derivation,
    study_uid: &str,
    modality: &Modality,
) -> Vec<DataElement<InMemDicomObject>> {
    let description: String = derivation.description.chars().take(1024).collect();
    let image_type = match modality {
        Modality::Ct => "DERIVED\\SECONDARY\\AXIAL",
        Modality::Mr => "DERIVED\\SECONDARY\\OTHER",
        // The PET Image module allows PRIMARY only as the second value.
        Modality::Pet => "DERIVED\\PRIMARY",
        _ => "DERIVED\\SECONDARY",
    };
    let sources: Vec<InMemDicomObject> = derivation
        .sources
        .iter()
        .flat_map(|s| &s.instances)
        .map(instance_item)
        .collect();
    let mut out = vec![
        element(tags::IMAGE_TYPE, VR::CS, image_type),
        element(tags::DERIVATION_DESCRIPTION, VR::ST, description),
    ];
    if !sources.is_empty() {
        // Every source image contributed (through resampling and the network).
        out.push(sequence(tags::SOURCE_IMAGE_SEQUENCE, sources));
    }
    // Sources with instances to point at; in this study, or in another one.
    let referable: Vec<&Identity> = derivation
        .sources
        .iter()
        .filter(|s| !s.instances.is_empty() && !s.series_instance_uid.is_empty())
        .collect();
    let (here, elsewhere): (Vec<&Identity>, Vec<&Identity>) = referable
        .into_iter()
        .partition(|s| s.study_instance_uid == study_uid);
    if !here.is_empty() {
        out.push(sequence(
            tags::REFERENCED_SERIES_SEQUENCE,
            here.iter().map(|s| series_item(s)).collect(),
        ));
    }
    if !elsewhere.is_empty() {
        let studies = elsewhere
            .iter()
            .map(|s| {
                InMemDicomObject::from_element_iter([
                    element(
                        tags::STUDY_INSTANCE_UID,
                        VR::UI,
                        s.study_instance_uid.as_str(),
                    ),
                    sequence(tags::REFERENCED_SERIES_SEQUENCE, vec![series_item(s)]),
                ])
            })
            .collect();
        out.push(sequence(
            tags::STUDIES_CONTAINING_OTHER_REFERENCED_INSTANCES_SEQUENCE,
            studies,
        ));
    }
    out
}
