//! Opening DICOM files: with or without preamble, and even without a file meta group
//! (a bare data set, as some old archives hold), header only or whole. The bytes are
//! pre-checked for lying lengths before the parser sees them, and the lengths it cannot
//! read (big-endian UN of undefined length) are given.

use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntax;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::entries;

use super::precheck::{self, LengthRepair};
use super::unknown_vr;
use crate::io::LoadError;

/// Secondary Capture Image Storage: the meta group's class for an ACR-NEMA image.
const SECONDARY_CAPTURE: &str = "1.2.840.10008.5.1.4.1.1.7";

/// Files larger than this are not DICOM images we can hold (16 GiB).
const MAX_FILE_BYTES: u64 = 16 << 30;

/// Opens a DICOM file. With `header_only`, parses no further than the pixel data.
pub fn open(path: &Path, header_only: bool) -> Result<DefaultDicomObject, LoadError> {
    let not_dicom = |reason: String| LoadError::NotDicom {
        path: path.to_path_buf(),
        reason,
    };
    let size = std::fs::metadata(path)
        .map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(not_dicom(format!("{size} bytes is too large")));
    }
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let has_preamble = bytes.len() >= 132 && &bytes[128..132] == b"DICM";
    // A meta group with neither preamble nor "DICM" magic (some old writers): read it as if
    // the magic were there, as GDCM and dcmtk do.
    let bytes = if !has_preamble && meta_group_first(&bytes) {
        [b"DICM".as_slice(), bytes.as_slice()].concat()
    } else {
        bytes
    };
    let starts_with_meta = bytes.starts_with(b"DICM");
    let bare = bare_encoding(&bytes);
    if !has_preamble && !starts_with_meta && bare.is_none() {
        return Err(not_dicom(
            "no DICOM preamble, meta header or recognisable data set".into(),
        ));
    }
    let repairs = precheck::check(&bytes).map_err(|reason| LoadError::Corrupt {
        reason,
        path: path.to_path_buf(),
    })?;
    let mut bytes = bytes;
    LengthRepair::apply(&repairs, &mut bytes);
    let options = OpenFileOptions::new();
    let options = if header_only {
        options.read_until(tags::PIXEL_DATA)
    } else {
        options
    };
    let parsed = if has_preamble {
        options.from_reader(&bytes[128..])
    } else {
        options.from_reader(&bytes[..])
    };
    let mut obj = match (parsed, bare) {
        (Ok(obj), _) => obj,
        (Err(error), Some(ts)) => {
            open_bare_dataset(&bytes, ts).ok_or_else(|| not_dicom(super::error_chain(&error)))?
        }
        (Err(error), None) => return Err(not_dicom(super::error_chain(&error))),
    };
    // Standard attributes stored as UN are read as the dictionary says they are.
    let big_endian = obj.meta().transfer_syntax().trim_end_matches('\0')
        == entries::EXPLICIT_VR_BIG_ENDIAN.uid();
    unknown_vr::reread(&mut obj, big_endian);
    Ok(obj)
}

/// Whether `bytes` start with a file meta element, (0002,xxxx) in explicit VR little endian.
fn meta_group_first(bytes: &[u8]) -> bool {
    bytes.len() >= 8
        && bytes[..2] == [0x02, 0x00]
        && bytes[4].is_ascii_uppercase()
        && bytes[5].is_ascii_uppercase()
}

/// The encoding of bytes that start with a bare data set (no preamble, no meta group),
/// guessed from the first element: a low group (0008 usually) in a known byte order.
pub(super) fn bare_encoding(bytes: &[u8]) -> Option<TransferSyntax> {
    let head = bytes.get(..8)?;
    let little_group = u16::from_le_bytes([head[0], head[1]]);
    let big_group = u16::from_be_bytes([head[0], head[1]]);
    let vr_like = head[4].is_ascii_uppercase() && head[5].is_ascii_uppercase();
    if (3..=0x0010).contains(&little_group) {
        Some(if vr_like {
            entries::EXPLICIT_VR_LITTLE_ENDIAN.erased()
        } else {
            entries::IMPLICIT_VR_LITTLE_ENDIAN.erased()
        })
    } else if (3..=0x0010).contains(&big_group) && vr_like {
        Some(entries::EXPLICIT_VR_BIG_ENDIAN.erased())
    } else {
        None
    }
}

/// Reads bytes that hold a bare data set in encoding `ts`.
fn open_bare_dataset(bytes: &[u8], ts: TransferSyntax) -> Option<DefaultDicomObject> {
    // The main check read these bytes with a meta group in mind; check them as read here.
    let repairs = precheck::check_bare(bytes, ts.uid()).ok()?;
    let mut bytes = bytes.to_vec();
    LengthRepair::apply(&repairs, &mut bytes);
    let dataset = InMemDicomObject::read_dataset_with_ts(&bytes[..], &ts).ok()?;
    // An image: a SOP class, or (ACR-NEMA files, which predate SOP classes) rows and pixels.
    let image = dataset.get(tags::ROWS).is_some() && dataset.get(tags::PIXEL_DATA).is_some();
    if dataset.get(tags::SOP_CLASS_UID).is_none() && !image {
        return None;
    }
    let mut meta = FileMetaTableBuilder::new().transfer_syntax(ts.uid());
    if dataset.get(tags::SOP_CLASS_UID).is_none() {
        // The meta group needs one; the data set keeps saying it has none.
        meta = meta.media_storage_sop_class_uid(SECONDARY_CAPTURE);
    }
    if dataset.get(tags::SOP_INSTANCE_UID).is_none() {
        meta = meta.media_storage_sop_instance_uid("2.25.0");
    }
    dataset.with_meta(meta).ok()
}
