//! Standard attributes stored with VR UN (as archives and anonymisers with older dictionaries
//! write them) must read as the dictionary says: a CT slice whose rescale or orientation is
//! UN loads with the same Hounsfield units and geometry as the original, and a geometry or
//! unit value that does not read as numbers refuses the file, naming the attribute. The
//! phantom's CT is the fixture; STS_001's CT is used as well when the shared data is present.

mod common;

use std::path::{Path, PathBuf};

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::open_file;
use dualmine::io;

/// Copies `source` into `folder/name` with each of `tags` rewritten as VR UN holding the
/// same value bytes, or with `replace` as the new text of the first one.
fn rewrite_as_unknown(
    source: &Path,
    folder: &Path,
    tags: &[Tag],
    replace: Option<&str>,
) -> PathBuf {
    std::fs::create_dir_all(folder).expect("folder");
    let mut obj = open_file(source).expect("a DICOM file");
    for (i, &tag) in tags.iter().enumerate() {
        let bytes = match (i, replace) {
            (0, Some(text)) => text.as_bytes().to_vec(),
            _ => {
                let element = obj.element(tag).expect("the attribute is present");
                let text = element.to_str().expect("text").into_owned();
                let mut bytes = text.into_bytes();
                if bytes.len() % 2 == 1 {
                    bytes.push(b' ');
                }
                bytes
            }
        };
        obj.put(DataElement::new(tag, VR::UN, PrimitiveValue::from(bytes)));
    }
    // Explicit VR, so that the file really says UN (an implicit-VR file has no VRs to say it).
    let syntax = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_string();
    assert!(
        ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"].contains(&syntax.as_str()),
        "native little-endian fixture expected, got {syntax}"
    );
    obj.meta_mut()
        .set_transfer_syntax(&dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN);
    let target = folder.join("slice.dcm");
    obj.write_to_file(&target).expect("write");
    target
}

/// Loads the slice in `folder` and checks values and geometry equal the original's.
fn loads_like(original: &Path, rewritten: &Path) {
    let expected = io::load(original.parent().expect("folder"), None).expect("original loads");
    let got = io::load(rewritten.parent().expect("folder"), None).expect("rewritten loads");
    assert_eq!(got.geometry.dims, expected.geometry.dims);
    assert_eq!(got.geometry.direction, expected.geometry.direction);
    assert_eq!(got.geometry.origin, expected.geometry.origin);
    assert_eq!(got.units, expected.units);
    let (lo, hi) = got
        .data
        .iter()
        .fold((f32::MAX, f32::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
    assert_eq!(got.data, expected.data, "values {lo}..{hi}");
}

#[test]
fn rescale_stored_as_unknown_reads_as_hounsfield_units() {
    let dir = tempfile::tempdir().expect("temp dir");
    let original = common::phantom_ct_slice(dir.path());
    let rewritten = rewrite_as_unknown(
        &original,
        &dir.path().join("un"),
        &[tags::RESCALE_SLOPE, tags::RESCALE_INTERCEPT],
        None,
    );
    loads_like(&original, &rewritten);
}

#[test]
fn geometry_stored_as_unknown_reads_as_numbers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let original = common::phantom_ct_slice(dir.path());
    let rewritten = rewrite_as_unknown(
        &original,
        &dir.path().join("un"),
        &[
            tags::IMAGE_ORIENTATION_PATIENT,
            tags::IMAGE_POSITION_PATIENT,
            tags::PIXEL_SPACING,
        ],
        None,
    );
    loads_like(&original, &rewritten);
}

#[test]
fn an_unreadable_rescale_refuses_the_file_and_names_the_attribute() {
    let dir = tempfile::tempdir().expect("temp dir");
    let original = common::phantom_ct_slice(dir.path());
    for (tag, text, name) in [
        (tags::RESCALE_SLOPE, "one ", "RescaleSlope"),
        (
            tags::IMAGE_ORIENTATION_PATIENT,
            "1\\0\\0\\0\\1 ",
            "ImageOrientationPatient",
        ),
    ] {
        let rewritten = rewrite_as_unknown(&original, &dir.path().join(name), &[tag], Some(text));
        let error = io::load(rewritten.parent().expect("folder"), None)
            .expect_err("an unreadable value must not load")
            .to_string();
        assert!(error.contains(name), "{error}");
    }
}

#[test]
fn a_real_ct_slice_with_unknown_rescale_keeps_its_hounsfield_units() {
    let Some(ct) = common::shared_data("dicom/sts/STS_001/CT") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let first = common::files_under(&ct)
        .into_iter()
        .next()
        .expect("a CT file");
    let original = dir.path().join("original/slice.dcm");
    std::fs::create_dir_all(original.parent().expect("folder")).expect("folder");
    std::fs::copy(&first, &original).expect("copy");
    let rewritten = rewrite_as_unknown(
        &original,
        &dir.path().join("un"),
        &[
            tags::RESCALE_SLOPE,
            tags::RESCALE_INTERCEPT,
            tags::IMAGE_ORIENTATION_PATIENT,
        ],
        None,
    );
    loads_like(&original, &rewritten);
    let volume = io::load(rewritten.parent().expect("folder"), None).expect("loads");
    let max = volume.data.iter().copied().fold(f32::MIN, f32::max);
    let min = volume.data.iter().copied().fold(f32::MAX, f32::min);
    assert!(
        min >= -1100.0 && max <= 4000.0,
        "HU {min}..{max} out of a CT's range"
    );
}
