//! Structure-aware fuzzing of the paths a byte-level fuzzer rarely reaches: a small valid
//! CT slice whose geometry and unit attributes are stored as VR UN with fuzzed bytes
//! (defined or undefined length, little or big endian), or whose pixels are bit-packed
//! (BitsAllocated 1) with fuzzed sizes and bits. Loading must give a volume or an error,
//! never a panic.
#![no_main]

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use libfuzzer_sys::fuzz_target;

/// The attributes that decide geometry and units.
const FIELDS: [Tag; 10] = [
    tags::IMAGE_POSITION_PATIENT,
    tags::IMAGE_ORIENTATION_PATIENT,
    tags::PIXEL_SPACING,
    tags::SLICE_THICKNESS,
    tags::RESCALE_SLOPE,
    tags::RESCALE_INTERCEPT,
    tags::ROWS,
    tags::NUMBER_OF_FRAMES,
    tags::PATIENT_WEIGHT,
    tags::PROCEDURE_CODE_SEQUENCE,
];

fn slice(rows: u16, columns: u16, bits: u16, pixels: Vec<u8>) -> InMemDicomObject {
    let text = |tag, vr, value: &str| DataElement::new(tag, vr, PrimitiveValue::from(value));
    let short = |tag, value: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(value));
    InMemDicomObject::from_element_iter([
        text(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE),
        text(tags::SOP_INSTANCE_UID, VR::UI, "2.25.1"),
        text(tags::MODALITY, VR::CS, "CT"),
        text(tags::SERIES_INSTANCE_UID, VR::UI, "2.25.2"),
        text(tags::IMAGE_POSITION_PATIENT, VR::DS, "0\\0\\0"),
        text(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, "1\\0\\0\\0\\1\\0"),
        text(tags::PIXEL_SPACING, VR::DS, "1\\1"),
        text(tags::SLICE_THICKNESS, VR::DS, "1"),
        short(tags::SAMPLES_PER_PIXEL, 1),
        text(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        short(tags::ROWS, rows),
        short(tags::COLUMNS, columns),
        short(tags::BITS_ALLOCATED, bits),
        short(tags::BITS_STORED, bits),
        short(tags::HIGH_BIT, bits - 1),
        short(tags::PIXEL_REPRESENTATION, 0),
        text(tags::RESCALE_INTERCEPT, VR::DS, "-1024"),
        text(tags::RESCALE_SLOPE, VR::DS, "1"),
        DataElement::new(tags::PIXEL_DATA, VR::OB, PrimitiveValue::from(pixels)),
    ])
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let big_endian = mode & 1 == 1;
    let obj = if mode & 2 == 0 {
        // One attribute as UN holding the fuzzed bytes; bit 2: undefined length (the
        // bytes then end with a little-endian sequence delimiter, as PS3.5 6.2.2 has it).
        let Some((&which, value)) = rest.split_first() else {
            return;
        };
        let mut value = value.to_vec();
        if mode & 4 == 4 {
            value.extend([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        }
        let mut obj = slice(4, 4, 16, vec![0; 32]);
        let tag = FIELDS[usize::from(which) % FIELDS.len()];
        obj.put(DataElement::new(tag, VR::UN, PrimitiveValue::from(value)));
        obj
    } else {
        // Bit-packed pixels: fuzzed size, frame count and bits.
        let [rows, columns, frames, bits @ ..] = rest else {
            return;
        };
        let mut obj = slice(u16::from(*rows), u16::from(*columns), 1, bits.to_vec());
        obj.put(DataElement::new(
            tags::NUMBER_OF_FRAMES,
            VR::IS,
            PrimitiveValue::from(frames.to_string()),
        ));
        obj
    };
    let syntax = if big_endian {
        "1.2.840.10008.1.2.2" // retired in the standard, still written by old archives
    } else {
        uids::EXPLICIT_VR_LITTLE_ENDIAN
    };
    let Ok(file) = obj.with_meta(FileMetaTableBuilder::new().transfer_syntax(syntax)) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("dualmine-fields-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("input.dcm");
    if file.write_to_file(&path).is_err() {
        return;
    }
    let _ = dualmine::io::dicom::load_path(&path, None);
});
