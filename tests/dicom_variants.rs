//! DICOM files that GDCM and dcmtk read although they bend the file format: a meta group
//! with neither the 128-byte preamble nor the "DICM" magic, a file with the magic but no
//! preamble, and an ACR-NEMA-style bare data set (no meta group, no SOP class, retired
//! elements). Each is made from a phantom CT slice and must load to the same volume.

mod common;

use std::path::{Path, PathBuf};

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::open_file;
use dicom_transfer_syntax_registry::entries;
use dualmine::io;
use dualmine::volume::Volume;

/// A phantom CT slice alone in `dir/original`, and its volume.
fn phantom_slice(dir: &Path) -> (PathBuf, Volume) {
    let path = common::phantom_ct_slice(dir);
    let volume = io::load(path.parent().expect("folder"), None).expect("the original loads");
    (path, volume)
}

/// Writes `bytes` as `dir/name/slice.dcm` and loads that folder.
fn load_bytes(dir: &Path, name: &str, bytes: &[u8]) -> Volume {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).expect("folder");
    std::fs::write(folder.join("slice.dcm"), bytes).expect("write");
    io::load(&folder, None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn same(got: &Volume, expected: &Volume) {
    assert_eq!(got.geometry.dims, expected.geometry.dims);
    assert_eq!(got.geometry.origin, expected.geometry.origin);
    assert_eq!(got.units, expected.units);
    assert_eq!(got.data, expected.data);
}

#[test]
fn a_meta_group_without_preamble_or_magic_is_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, expected) = phantom_slice(dir.path());
    let bytes = std::fs::read(&path).expect("read");
    assert_eq!(&bytes[128..132], b"DICM");
    // "DICM" then the meta group: no preamble.
    same(&load_bytes(dir.path(), "magic", &bytes[128..]), &expected);
    // The meta group first: neither preamble nor magic.
    assert_eq!(bytes[132..134], [0x02, 0x00]);
    same(
        &load_bytes(dir.path(), "bare-meta", &bytes[132..]),
        &expected,
    );
}

#[test]
fn an_acr_nema_style_data_set_without_sop_class_is_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, expected) = phantom_slice(dir.path());
    let file = open_file(&path).expect("open");
    let mut dataset = file.into_inner();
    dataset.remove_element(tags::SOP_CLASS_UID);
    dataset.remove_element(tags::SOP_INSTANCE_UID);
    // Retired ACR-NEMA elements: Recognition Code and Image Dimensions.
    dataset.put(DataElement::new(
        Tag(0x0008, 0x0010),
        VR::SH,
        PrimitiveValue::from("ACR-NEMA 2.0"),
    ));
    dataset.put(DataElement::new(
        Tag(0x0028, 0x0005),
        VR::US,
        PrimitiveValue::from(2u16),
    ));
    let mut bytes = Vec::new();
    dataset
        .write_dataset_with_ts(&mut bytes, &entries::IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .expect("write the data set");
    same(&load_bytes(dir.path(), "acr-nema", &bytes), &expected);
}

#[test]
fn a_bare_data_set_that_is_no_image_is_still_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, _) = phantom_slice(dir.path());
    let mut dataset = open_file(&path).expect("open").into_inner();
    dataset.remove_element(tags::SOP_CLASS_UID);
    dataset.remove_element(tags::PIXEL_DATA);
    let mut bytes = Vec::new();
    dataset
        .write_dataset_with_ts(&mut bytes, &entries::IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .expect("write the data set");
    let folder = dir.path().join("no-image");
    std::fs::create_dir_all(&folder).expect("folder");
    std::fs::write(folder.join("slice.dcm"), &bytes).expect("write");
    assert!(io::load(&folder, None).is_err());
}

/// RLE Lossless encoding of one 16-bit frame (two segments, literal runs only).
fn rle_encode_16bit(little_endian: &[u8]) -> Vec<u8> {
    let segment = |byte: usize| -> Vec<u8> {
        let plane: Vec<u8> = little_endian.chunks_exact(2).map(|s| s[byte]).collect();
        let mut out = Vec::new();
        for run in plane.chunks(128) {
            out.push((run.len() - 1) as u8);
            out.extend_from_slice(run);
        }
        if out.len() % 2 == 1 {
            out.push(0);
        }
        out
    };
    let (high, low) = (segment(1), segment(0));
    let mut frame = vec![0u8; 64];
    frame[0..4].copy_from_slice(&2u32.to_le_bytes());
    frame[4..8].copy_from_slice(&64u32.to_le_bytes());
    frame[8..12].copy_from_slice(&(64 + high.len() as u32).to_le_bytes());
    frame.extend_from_slice(&high);
    frame.extend_from_slice(&low);
    frame
}

#[test]
fn an_rle_frame_split_over_several_fragments_is_read() {
    use dicom_core::value::PixelFragmentSequence;
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, expected) = phantom_slice(dir.path());
    let mut file = open_file(&path).expect("open");
    let bits = file
        .element(tags::BITS_ALLOCATED)
        .ok()
        .and_then(|e| e.to_int::<u16>().ok());
    assert_eq!(bits, Some(16));
    let raw = file
        .element(tags::PIXEL_DATA)
        .expect("pixels")
        .to_bytes()
        .expect("native bytes")
        .into_owned();
    let frame = rle_encode_16bit(&raw);
    // Four fragments of even length for one frame, no offset table.
    let quarter = (frame.len() / 4) & !1;
    let fragments: Vec<Vec<u8>> = vec![
        frame[..quarter].to_vec(),
        frame[quarter..2 * quarter].to_vec(),
        frame[2 * quarter..3 * quarter].to_vec(),
        frame[3 * quarter..].to_vec(),
    ];
    file.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PixelFragmentSequence::new(Vec::<u32>::new(), fragments),
    ));
    file.meta_mut().set_transfer_syntax(&entries::RLE_LOSSLESS);
    let folder = dir.path().join("rle");
    std::fs::create_dir_all(&folder).expect("folder");
    file.write_to_file(folder.join("slice.dcm")).expect("write");
    let got = io::load(&folder, None).expect("the RLE file loads");
    same(&got, &expected);
}

#[test]
fn a_malformed_number_of_frames_takes_what_the_pixel_data_holds_with_a_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    let studies = dualmine::phantom::write_demo(
        &dir.path().join("phantom"),
        dualmine::phantom::PhantomSize::SMALL,
    )
    .expect("phantom");
    let expected = io::load(&studies.spect, None).expect("the SPECT loads");
    let source = common::files_under(&studies.spect)
        .into_iter()
        .next()
        .expect("the NM file");
    let mut file = open_file(&source).expect("open");
    file.put(DataElement::new(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        PrimitiveValue::from("1A"),
    ));
    let folder = dir.path().join("frames");
    std::fs::create_dir_all(&folder).expect("folder");
    file.write_to_file(folder.join("nm.dcm")).expect("write");
    let got = io::load(&folder, None).expect("loads from the pixel data's frames");
    same(&got, &expected);
    assert!(
        got.warnings.iter().any(|w| w.contains("NumberOfFrames")),
        "{:?}",
        got.warnings
    );
}
