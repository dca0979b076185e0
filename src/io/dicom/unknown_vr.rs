//! Standard attributes stored with VR UN re-read under the data dictionary's VR.
//!
//! Archives and anonymisers with older dictionaries write explicit-VR files in which a
//! standard attribute has VR UN: the value bytes are the attribute's own encoding (text for
//! DS, binary in the file's byte order for US, implicit VR little endian for a sequence), but
//! the parser keeps them as opaque bytes. Read as numbers those bytes are character codes —
//! "1" in a UN RescaleSlope is 49 — so every such element is decoded again here, right after
//! parsing and at every depth, as the dictionary says it is. An element whose bytes do not
//! read under that VR stays UN; the typed readers of `tags` refuse UN as a number, so it can
//! never become a wrong value.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::header::Header;
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use dicom_encoding::TransferSyntax;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries;

use super::precheck::SEQUENCE_END_LITTLE;

/// Re-reads every UN element of `obj` (and of its sequences' items) whose tag the standard
/// dictionary knows. `big_endian`: the byte order of the file's transfer syntax. Returns the
/// tags that were re-read.
pub fn reread(obj: &mut InMemDicomObject, big_endian: bool) -> Vec<Tag> {
    // Every file comes through here: most hold no UN at all, and are only read.
    if !holds_unknown(obj) {
        return Vec::new();
    }
    let mut changed = Vec::new();
    let unknown: Vec<Tag> = obj
        .iter()
        .filter(|e| e.vr() == VR::UN)
        .map(|e| e.tag())
        .collect();
    for tag in unknown {
        let Some(vr) = dictionary_vr(obj, tag) else {
            continue;
        };
        let Some(bytes) = obj
            .get(tag)
            .and_then(|e| e.value().primitive())
            .map(|v| v.to_bytes().into_owned())
        else {
            continue;
        };
        if let Some(element) = decode_as(tag, vr, &bytes, big_endian) {
            obj.put(element);
            changed.push(tag);
        }
    }
    let sequences: Vec<Tag> = obj
        .iter()
        .filter(|e| {
            e.items()
                .is_some_and(|items| items.iter().any(holds_unknown))
        })
        .map(|e| e.tag())
        .collect();
    for tag in sequences {
        obj.update_value(tag, |value| {
            if let Some(items) = value.items_mut() {
                for item in items.iter_mut() {
                    changed.extend(reread(item, big_endian));
                }
            }
        });
    }
    changed
}

/// Whether `obj` or any item of its sequences holds a UN element.
fn holds_unknown(obj: &InMemDicomObject) -> bool {
    obj.iter().any(|e| {
        e.vr() == VR::UN
            || e.items()
                .is_some_and(|items| items.iter().any(holds_unknown))
    })
}

/// The VR the standard dictionary gives `tag`, when it is definite (a US/SS choice is made by
/// PixelRepresentation). Pixel data and private or unknown tags have none.
fn dictionary_vr(obj: &InMemDicomObject, tag: Tag) -> Option<VR> {
    if tag == tags::PIXEL_DATA || tag.group() % 2 == 1 || tag.element() == 0 {
        return None;
    }
    let entry = StandardDataDictionary.by_tag(tag)?;
    let vr = match entry.vr() {
        VirtualVr::Exact(vr) => vr,
        VirtualVr::Xs => {
            let signed = obj
                .get(tags::PIXEL_REPRESENTATION)
                .and_then(|e| e.to_int::<i64>().ok())
                == Some(1);
            if signed { VR::SS } else { VR::US }
        }
        // Overlay, pixel and LUT data (OB or OW by context), and whatever comes later.
        _ => return None,
    };
    (vr != VR::UN).then_some(vr)
}

/// Bytes of one binary value of `vr` (0 for text and sequences).
fn binary_width(vr: VR) -> usize {
    match vr {
        VR::US | VR::SS | VR::OW | VR::AT => 2,
        VR::UL | VR::SL | VR::FL | VR::OF | VR::OL => 4,
        VR::FD | VR::OD | VR::SV | VR::UV | VR::OV => 8,
        _ => 0,
    }
}

/// Whether explicit VR encodings give `vr` a 4-byte length (after two reserved bytes).
fn long_length(vr: VR) -> bool {
    matches!(
        vr,
        VR::OB
            | VR::OD
            | VR::OF
            | VR::OL
            | VR::OV
            | VR::OW
            | VR::SQ
            | VR::SV
            | VR::UC
            | VR::UN
            | VR::UR
            | VR::UT
            | VR::UV
    )
}

/// The element `tag` with `bytes` decoded as `vr`, or `None` when they do not fit it.
fn decode_as(
    tag: Tag,
    vr: VR,
    bytes: &[u8],
    big_endian: bool,
) -> Option<dicom_object::mem::InMemElement> {
    let width = binary_width(vr);
    if width > 0 && !bytes.len().is_multiple_of(width) {
        return None;
    }
    let mut value = bytes.to_vec();
    if big_endian && width > 1 {
        // Binary values in UN keep the file's byte order; the wrapper below is little endian.
        let swap = if vr == VR::AT { 2 } else { width };
        value.chunks_exact_mut(swap).for_each(<[u8]>::reverse);
    }
    if value.len() % 2 == 1 {
        value.push(if width == 0 { b' ' } else { 0 });
    }
    let (wrapper, syntax): (Vec<u8>, TransferSyntax) = if vr == VR::SQ {
        // A sequence in UN is encoded in implicit VR little endian (PS3.5 6.2.2); one that
        // had an undefined length (given one by `precheck`) still ends with its delimiter.
        if value.ends_with(&SEQUENCE_END_LITTLE) {
            value.truncate(value.len() - SEQUENCE_END_LITTLE.len());
        }
        let mut w = header_bytes(tag);
        w.extend_from_slice(&u32::try_from(value.len()).ok()?.to_le_bytes());
        w.extend_from_slice(&value);
        (w, entries::IMPLICIT_VR_LITTLE_ENDIAN.erased())
    } else {
        let mut w = header_bytes(tag);
        w.extend_from_slice(vr.to_string().as_bytes());
        if long_length(vr) {
            w.extend_from_slice(&[0, 0]);
            w.extend_from_slice(&u32::try_from(value.len()).ok()?.to_le_bytes());
        } else {
            w.extend_from_slice(&u16::try_from(value.len()).ok()?.to_le_bytes());
        }
        w.extend_from_slice(&value);
        (w, entries::EXPLICIT_VR_LITTLE_ENDIAN.erased())
    };
    let mut parsed = InMemDicomObject::read_dataset_with_ts(&wrapper[..], &syntax).ok()?;
    let element = parsed.take_element(tag).ok()?;
    (element.vr() == vr).then_some(element)
}

/// The tag's group and element, little endian.
fn header_bytes(tag: Tag) -> Vec<u8> {
    let mut bytes = tag.group().to_le_bytes().to_vec();
    bytes.extend_from_slice(&tag.element().to_le_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::value::{DataSetSequence, PrimitiveValue};
    use dicom_core::{DataElement, Length};

    fn unknown(tag: Tag, bytes: &[u8]) -> dicom_object::mem::InMemElement {
        DataElement::new(tag, VR::UN, PrimitiveValue::from(bytes.to_vec()))
    }

    #[test]
    fn text_and_binary_values_read_as_the_dictionary_says() {
        let mut obj = InMemDicomObject::new_empty();
        obj.put(unknown(tags::RESCALE_SLOPE, b"2.5 "));
        obj.put(unknown(tags::RESCALE_INTERCEPT, b"-1024"));
        obj.put(unknown(
            tags::IMAGE_ORIENTATION_PATIENT,
            b"1\\0\\0\\0\\1\\0 ",
        ));
        obj.put(unknown(tags::ROWS, &512u16.to_le_bytes()));
        obj.put(unknown(Tag(0x0009, 0x0010), b"PRIVATE "));
        let changed = reread(&mut obj, false);
        assert_eq!(changed.len(), 4);
        let slope = obj.get(tags::RESCALE_SLOPE).expect("present");
        assert_eq!(slope.vr(), VR::DS);
        assert_eq!(slope.to_float64().expect("a number"), 2.5);
        let intercept = obj.get(tags::RESCALE_INTERCEPT).expect("present");
        assert_eq!(intercept.to_float64().expect("a number"), -1024.0);
        let orientation = obj.get(tags::IMAGE_ORIENTATION_PATIENT).expect("present");
        assert_eq!(
            orientation.to_multi_float64().expect("numbers"),
            vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        );
        let rows = obj.get(tags::ROWS).expect("present");
        assert_eq!((rows.vr(), rows.to_int::<u16>().ok()), (VR::US, Some(512)));
        // A private tag has no dictionary VR and stays UN.
        assert_eq!(obj.get(Tag(0x0009, 0x0010)).map(|e| e.vr()), Some(VR::UN));
    }

    #[test]
    fn binary_values_of_a_big_endian_file_are_swapped() {
        let mut obj = InMemDicomObject::new_empty();
        obj.put(unknown(tags::COLUMNS, &256u16.to_be_bytes()));
        obj.put(unknown(tags::RESCALE_SLOPE, b"1 "));
        reread(&mut obj, true);
        let columns = obj.get(tags::COLUMNS).expect("present");
        assert_eq!(columns.to_int::<u16>().ok(), Some(256));
        let slope = obj.get(tags::RESCALE_SLOPE).expect("present");
        assert_eq!(slope.to_float64().ok(), Some(1.0));
    }

    #[test]
    fn bytes_that_do_not_fit_the_vr_stay_unknown() {
        let mut obj = InMemDicomObject::new_empty();
        // Three bytes cannot be a US value.
        obj.put(unknown(tags::ROWS, &[1, 2, 3]));
        assert!(reread(&mut obj, false).is_empty());
        assert_eq!(obj.get(tags::ROWS).map(|e| e.vr()), Some(VR::UN));
    }

    #[test]
    fn elements_inside_sequence_items_are_reread() {
        let mut item = InMemDicomObject::new_empty();
        item.put(unknown(tags::RESCALE_SLOPE, b"0.5 "));
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE,
            VR::SQ,
            DataSetSequence::new(vec![item], Length::UNDEFINED),
        ));
        assert_eq!(reread(&mut obj, false), vec![tags::RESCALE_SLOPE]);
        let items = obj
            .get(tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE)
            .and_then(|e| e.items())
            .expect("a sequence");
        let slope = items[0].get(tags::RESCALE_SLOPE).expect("present");
        assert_eq!((slope.vr(), slope.to_float64().ok()), (VR::DS, Some(0.5)));
    }

    #[test]
    fn a_sequence_stored_as_unknown_is_parsed_in_implicit_little_endian() {
        // One item holding RescaleSlope "2" (implicit VR LE), defined lengths.
        let mut element = Vec::new();
        element.extend_from_slice(&header_bytes(tags::RESCALE_SLOPE));
        element.extend_from_slice(&2u32.to_le_bytes());
        element.extend_from_slice(b"2 ");
        let mut bytes = vec![0xFE, 0xFF, 0x00, 0xE0];
        bytes.extend_from_slice(&(element.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&element);
        let mut obj = InMemDicomObject::new_empty();
        obj.put(unknown(tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE, &bytes));
        reread(&mut obj, false);
        let items = obj
            .get(tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE)
            .and_then(|e| e.items())
            .expect("now a sequence");
        let slope = items[0].get(tags::RESCALE_SLOPE).expect("present");
        assert_eq!(slope.to_float64().ok(), Some(2.0));
    }
}
