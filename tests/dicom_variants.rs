//! DICOM files that GDCM and dcmtk read although they bend the file format or use rarer
//! encodings: a meta group with neither the 128-byte preamble nor the "DICM" magic, a file
//! with the magic but no preamble, an ACR-NEMA-style bare data set (no meta group, no SOP
//! class, retired elements), an RLE frame over several fragments, a malformed
//! NumberOfFrames, explicit big endian with undefined-length sequences (and a UN of
//! undefined length holding implicit little-endian items, as PS3.5 6.2.2 has it),
//! bit-packed (BitsAllocated 1) pixels, and 12-bit lossy JPEG frames split over fragments
//! with no offset table. Each is made here from the phantom (the JPEG by a small DC-only
//! encoder) and must load to the same volume as its plain counterpart.

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

/// The phantom slice at `path` with its pixels as 16-bit words, so that a big-endian
/// writer swaps them.
fn big_endian_ready(path: &Path) -> dicom_object::DefaultDicomObject {
    let mut file = open_file(path).expect("open");
    let bytes = file
        .element(tags::PIXEL_DATA)
        .expect("pixels")
        .to_bytes()
        .expect("native pixel data")
        .into_owned();
    let words: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|w| u16::from_le_bytes([w[0], w[1]]))
        .collect();
    file.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(words.into()),
    ));
    file
}

#[test]
fn big_endian_explicit_with_undefined_length_sequences_is_read() {
    use dicom_core::value::{DataSetSequence, Value};
    use dicom_core::{Length, smallvec};
    use dicom_object::InMemDicomObject;

    let dir = tempfile::tempdir().expect("temp dir");
    let (path, expected) = phantom_slice(dir.path());
    let mut file = big_endian_ready(&path);
    // Sequences and items of undefined length, one nested in the other, before the pixels.
    let code = |value: &str| {
        InMemDicomObject::from_element_iter([
            DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from(value)),
            DataElement::new(
                tags::CODING_SCHEME_DESIGNATOR,
                VR::SH,
                PrimitiveValue::from("DCM"),
            ),
        ])
    };
    let mut outer = code("113691");
    outer.put(DataElement::new(
        tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
        VR::SQ,
        Value::from(DataSetSequence::new(
            vec![code("121311")],
            Length::UNDEFINED,
        )),
    ));
    file.put(DataElement::new(
        tags::PROCEDURE_CODE_SEQUENCE,
        VR::SQ,
        Value::from(DataSetSequence::new(
            smallvec::smallvec![outer, code("77477000")],
            Length::UNDEFINED,
        )),
    ));
    file.meta_mut()
        .set_transfer_syntax(&entries::EXPLICIT_VR_BIG_ENDIAN);
    let folder = dir.path().join("big-endian");
    std::fs::create_dir_all(&folder).expect("folder");
    file.write_to_file(folder.join("slice.dcm")).expect("write");
    let written = std::fs::read(folder.join("slice.dcm")).expect("read back");
    // Undefined lengths really are in the file (0xFFFFFFFF after "SQ" and two reserved bytes).
    let undefined = written
        .windows(8)
        .filter(|w| w[..4] == *b"SQ\0\0" && w[4..] == [0xFF; 4])
        .count();
    assert_eq!(undefined, 2, "two sequences of undefined length");
    let got = io::load(&folder, None).unwrap_or_else(|e| panic!("big endian: {e}"));
    same(&got, &expected);
}

/// A phantom CT slice turned into a 1-bit image of `columns`×`rows` holding `bit(i)` at
/// pixel `i`, bits packed least significant first with no padding.
fn bit_packed_file(
    path: &Path,
    columns: u16,
    rows: u16,
    bit: impl Fn(usize) -> bool,
) -> dicom_object::DefaultDicomObject {
    let mut file = open_file(path).expect("open");
    let pixels = usize::from(columns) * usize::from(rows);
    let mut packed = vec![0u8; pixels.div_ceil(8)];
    for i in (0..pixels).filter(|&i| bit(i)) {
        packed[i / 8] |= 1 << (i % 8);
    }
    for (tag, value) in [
        (tags::ROWS, rows),
        (tags::COLUMNS, columns),
        (tags::BITS_ALLOCATED, 1),
        (tags::BITS_STORED, 1),
        (tags::HIGH_BIT, 0),
        (tags::PIXEL_REPRESENTATION, 0),
    ] {
        file.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
    }
    file.put(DataElement::new(
        tags::RESCALE_SLOPE,
        VR::DS,
        PrimitiveValue::from("1"),
    ));
    file.put(DataElement::new(
        tags::RESCALE_INTERCEPT,
        VR::DS,
        PrimitiveValue::from("0"),
    ));
    file.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(packed),
    ));
    file
}

#[test]
fn bit_packed_native_pixels_are_unpacked_without_padding() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, _) = phantom_slice(dir.path());
    // 13×11 = 143 pixels: the last byte holds 7 bits, which a per-byte frame size loses.
    let bit = |i: usize| (i * 7) % 5 < 2 || i == 142;
    let file = bit_packed_file(&path, 13, 11, bit);
    let folder = dir.path().join("bits");
    std::fs::create_dir_all(&folder).expect("folder");
    file.write_to_file(folder.join("slice.dcm")).expect("write");
    let got = io::load(&folder, None).unwrap_or_else(|e| panic!("1-bit: {e}"));
    assert_eq!(got.geometry.dims, [13, 11, 1]);
    let expected: Vec<f32> = (0..143).map(|i| f32::from(u8::from(bit(i)))).collect();
    assert_eq!(got.data, expected);
}

/// Top-level element starts of an explicit VR big-endian data set (after the meta group):
/// (tag, byte offset), walking defined lengths only.
fn big_endian_elements(bytes: &[u8], mut pos: usize) -> Vec<(Tag, usize)> {
    let mut out = Vec::new();
    while pos + 8 <= bytes.len() {
        let tag = Tag(
            u16::from_be_bytes([bytes[pos], bytes[pos + 1]]),
            u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]),
        );
        out.push((tag, pos));
        let vr = &bytes[pos + 4..pos + 6];
        let long = [
            &b"OB"[..],
            b"OW",
            b"SQ",
            b"UN",
            b"UT",
            b"OF",
            b"OD",
            b"OL",
            b"UC",
            b"UR",
        ]
        .contains(&vr);
        let (length, header) = if long {
            let l = &bytes[pos + 8..pos + 12];
            (u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize, 12)
        } else {
            (
                usize::from(u16::from_be_bytes([bytes[pos + 6], bytes[pos + 7]])),
                8,
            )
        };
        if length == u32::MAX as usize {
            break;
        }
        pos += header + length;
    }
    out
}

#[test]
fn a_big_endian_un_sequence_of_undefined_length_is_read_as_the_standard_encodes_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, expected) = phantom_slice(dir.path());
    let mut file = big_endian_ready(&path);
    file.meta_mut()
        .set_transfer_syntax(&entries::EXPLICIT_VR_BIG_ENDIAN);
    let mut written = Vec::new();
    file.write_all(&mut written).expect("write");
    // PS3.5 6.2.2: a UN of undefined length holds its items in implicit VR little endian,
    // whatever the file's syntax. ProcedureCodeSequence (0008,1032) as such a UN, one item
    // of undefined length holding CodeValue "113691".
    let mut un = vec![
        0x00, 0x08, 0x10, 0x32, b'U', b'N', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
    ];
    un.extend([0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
    un.extend([0x08, 0x00, 0x00, 0x01, 6, 0, 0, 0]);
    un.extend(b"113691");
    un.extend([0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
    un.extend([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
    let meta_end = 132 + 12 + {
        let l = &written[140..144];
        u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize
    };
    let at = big_endian_elements(&written, meta_end)
        .into_iter()
        .find(|(tag, _)| *tag > Tag(0x0008, 0x1032))
        .expect("an element after (0008,1032)")
        .1;
    written.splice(at..at, un);
    let got = load_bytes(dir.path(), "big-endian-un", &written);
    same(&got, &expected);
}

/// Bits written most significant first, with JPEG byte stuffing (0xFF is followed by 0x00).
#[derive(Default)]
struct EntropyWriter {
    out: Vec<u8>,
    byte: u8,
    used: u8,
}

impl EntropyWriter {
    fn put(&mut self, value: u32, bits: u8) {
        for i in (0..bits).rev() {
            self.byte = (self.byte << 1) | ((value >> i) & 1) as u8;
            self.used += 1;
            if self.used == 8 {
                self.out.push(self.byte);
                if self.byte == 0xFF {
                    self.out.push(0);
                }
                (self.byte, self.used) = (0, 0);
            }
        }
    }

    fn finish(mut self) -> Vec<u8> {
        while self.used != 0 {
            self.put(1, 1); // pad with ones
        }
        self.out
    }
}

/// A 12-bit sequential JPEG (SOF1, one component) of a `width`×`height` image whose every
/// 8×8 block is constant: `block(bx, by)` (0..4095). Only DC coefficients are coded (with a
/// quantiser of 1 a constant block decodes exactly), so the stream is exact and tiny.
fn jpeg12_of_blocks(width: u16, height: u16, block: impl Fn(usize, usize) -> u16) -> Vec<u8> {
    let segment = |marker: u8, body: &[u8]| {
        let mut s = vec![0xFF, marker];
        s.extend(((body.len() + 2) as u16).to_be_bytes());
        s.extend(body);
        s
    };
    let mut out = vec![0xFF, 0xD8];
    out.extend(segment(0xDB, &[[0u8].as_slice(), &[1u8; 64]].concat()));
    let [w, h] = [width.to_be_bytes(), height.to_be_bytes()];
    out.extend(segment(0xC1, &[12, h[0], h[1], w[0], w[1], 1, 1, 0x11, 0]));
    // DC table: the 16 categories 0..15, each a 5-bit code equal to the category.
    let mut dc = vec![0x00, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    dc.extend(0..16u8);
    out.extend(segment(0xC4, &dc));
    // AC table: end-of-block only, code "0".
    out.extend(segment(
        0xC4,
        &[0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00],
    ));
    out.extend(segment(0xDA, &[1, 1, 0x00, 0, 63, 0]));
    let mut bits = EntropyWriter::default();
    let mut previous = 0i32;
    for by in 0..usize::from(height).div_ceil(8) {
        for bx in 0..usize::from(width).div_ceil(8) {
            // DC of a constant block: 8 × (value − 2048).
            let dc = 8 * (i32::from(block(bx, by)) - 2048);
            let diff = dc - previous;
            previous = dc;
            let category = 32 - diff.unsigned_abs().leading_zeros();
            bits.put(category, 5);
            if category > 0 {
                let coded = if diff < 0 { diff - 1 } else { diff };
                bits.put((coded as u32) & ((1 << category) - 1), category as u8);
            }
            bits.put(0, 1); // end of block
        }
    }
    out.extend(bits.finish());
    out.extend([0xFF, 0xD9]);
    out
}

#[test]
fn a_12_bit_lossy_jpeg_multi_frame_split_over_fragments_without_offsets_is_read() {
    use dicom_core::value::{PixelFragmentSequence, Value};

    let dir = tempfile::tempdir().expect("temp dir");
    let studies = dualmine::phantom::write_demo(
        &dir.path().join("phantom"),
        dualmine::phantom::PhantomSize::SMALL,
    )
    .expect("phantom");
    let source = common::files_under(&studies.spect)
        .into_iter()
        .next()
        .expect("the NM file");
    let mut file = open_file(&source).expect("open");
    let number = |tag| {
        file.element(tag)
            .expect("present")
            .to_int::<u16>()
            .expect("a number")
    };
    let (rows, columns, frames) = (
        number(tags::ROWS),
        number(tags::COLUMNS),
        number(tags::NUMBER_OF_FRAMES),
    );
    assert!(frames > 1, "a multi-frame");
    let value = |frame: usize, bx: usize, by: usize| {
        ((frame * 397 + by * 131 + bx * 59) % 4000 + 40) as u16
    };
    for (tag, v) in [
        (tags::BITS_STORED, 12u16),
        (tags::HIGH_BIT, 11),
        (tags::PIXEL_REPRESENTATION, 0),
    ] {
        file.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
    }
    // The same block values stored natively: what the JPEG must decode to.
    let (w, h) = (usize::from(columns), usize::from(rows));
    let native: Vec<u16> = (0..usize::from(frames))
        .flat_map(|f| (0..h * w).map(move |i| value(f, (i % w) / 8, (i / w) / 8)))
        .collect();
    let mut native_file = file.clone();
    native_file.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(native.into()),
    ));
    let native_folder = dir.path().join("native");
    std::fs::create_dir_all(&native_folder).expect("folder");
    native_file
        .write_to_file(native_folder.join("nm.dcm"))
        .expect("write");
    let expected = io::load(&native_folder, None).expect("the native copy loads");

    // Each frame's JPEG in two fragments (an even split), and an empty offset table.
    let mut fragments = Vec::new();
    for frame in 0..usize::from(frames) {
        let mut stream = jpeg12_of_blocks(columns, rows, |bx, by| value(frame, bx, by));
        if stream.len() % 2 == 1 {
            stream.push(0);
        }
        let half = (stream.len() / 4) * 2;
        fragments.push(stream[..half].to_vec());
        fragments.push(stream[half..].to_vec());
    }
    file.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        Value::PixelSequence(PixelFragmentSequence::new_fragments(fragments)),
    ));
    file.meta_mut()
        .set_transfer_syntax(&entries::JPEG_EXTENDED.erased());
    let folder = dir.path().join("jpeg12");
    std::fs::create_dir_all(&folder).expect("folder");
    file.write_to_file(folder.join("nm.dcm")).expect("write");
    let got = io::load(&folder, None).unwrap_or_else(|e| panic!("12-bit JPEG: {e}"));
    same(&got, &expected);
}

/// `tests/fixtures/bits-13x11.j2k`: the 13×11 pattern of the bit-packed test, one byte per
/// pixel, as a lossless JPEG 2000 codestream (192 bytes, made with Pillow's OpenJPEG:
/// `Image.new("L", (13, 11)).putdata(bits); save("bits-13x11.j2k", irreversible=False)`).
#[test]
fn bit_packed_segmentation_in_jpeg_2000_is_read() {
    use dicom_core::value::{PixelFragmentSequence, Value};
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, _) = phantom_slice(dir.path());
    let bit = |i: usize| (i * 7) % 5 < 2 || i == 142;
    let mut file = bit_packed_file(&path, 13, 11, bit);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bits-13x11.j2k");
    let mut stream = std::fs::read(fixture).expect("fixture");
    if stream.len() % 2 == 1 {
        stream.push(0);
    }
    file.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        Value::PixelSequence(PixelFragmentSequence::new_fragments(vec![stream])),
    ));
    file.meta_mut()
        .set_transfer_syntax(&entries::JPEG_2000_IMAGE_COMPRESSION_LOSSLESS_ONLY.erased());
    let folder = dir.path().join("j2k");
    std::fs::create_dir_all(&folder).expect("folder");
    file.write_to_file(folder.join("slice.dcm")).expect("write");
    let got = io::load(&folder, None).unwrap_or_else(|e| panic!("1-bit JPEG 2000: {e}"));
    let expected: Vec<f32> = (0..143).map(|i| f32::from(u8::from(bit(i)))).collect();
    assert_eq!(got.data, expected);
}
