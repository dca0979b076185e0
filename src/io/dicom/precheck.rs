//! A structural pre-check of a DICOM byte stream, run before the real parser: walks the
//! element headers (recursing into sequences and items) and rejects any element whose
//! declared length exceeds the bytes that remain. A lying length would otherwise make the
//! parser reserve up to 4 GiB before discovering the file is short.
//!
//! It only rejects what is provably impossible; anything it does not understand is left to
//! the parser to judge.

use dicom_core::dictionary::{DataDictionary, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

/// How the data set is encoded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    ImplicitLittle,
    ExplicitLittle,
    ExplicitBig,
}

/// Nesting deeper than this is refused (and would exhaust the parser's stack anyway).
const MAX_DEPTH: usize = 48;

/// `Err` with a reason when a declared length cannot fit in the stream.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    let mut pos = if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        132
    } else if bytes.starts_with(b"DICM") {
        4
    } else {
        // No meta group: the parser refuses the file at once, and the bare data-set
        // fallback is checked on its own (`check_bare`).
        return Ok(());
    };
    // File meta group, read as the parser reads it: explicit VR little endian, a group
    // length first, then elements (of any group) until that many bytes are consumed.
    let group_length = match element_header(bytes, pos, Encoding::ExplicitLittle)? {
        Some(h)
            if h.tag == Tag(0x0002, 0x0000) && h.length == 4 && pos + h.size + 4 <= bytes.len() =>
        {
            let at = pos + h.size;
            pos = at + 4;
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
        }
        // Without a group length the parser refuses the meta group before reading values.
        _ => return Ok(()),
    };
    let meta_start = pos;
    let mut transfer_syntax = None;
    while pos - meta_start < group_length {
        let Some(header) = element_header(bytes, pos, Encoding::ExplicitLittle)? else {
            return Ok(());
        };
        if header.length == u32::MAX {
            return Ok(());
        }
        let value_start = pos + header.size;
        let length = header.length as usize;
        if value_start + length > bytes.len() {
            return Err(lying(
                header.tag,
                header.length,
                bytes.len().saturating_sub(value_start),
            ));
        }
        if header.tag == Tag(0x0002, 0x0010) {
            transfer_syntax = Some(
                String::from_utf8_lossy(&bytes[value_start..value_start + length])
                    .trim_matches(|c: char| c == '\0' || c.is_whitespace())
                    .to_string(),
            );
        }
        pos = value_start + length;
    }
    let encoding = match transfer_syntax.as_deref() {
        Some("1.2.840.10008.1.2") => Encoding::ImplicitLittle,
        Some("1.2.840.10008.1.2.2") => Encoding::ExplicitBig,
        // A deflated data set is checked as the parser will read it: inflated.
        Some("1.2.840.10008.1.2.1.99") => {
            let inflated = inflate(&bytes[pos..])?;
            return walk_elements(&inflated, 0, inflated.len(), Encoding::ExplicitLittle, 0)
                .map(|_| ());
        }
        Some(_) => Encoding::ExplicitLittle,
        // Without a transfer syntax the parser refuses the meta group.
        None => return Ok(()),
    };
    walk_elements(bytes, pos, bytes.len(), encoding, 0).map(|_| ())
}

/// A deflated data set may expand to at most this many bytes.
const MAX_INFLATED: u64 = 1 << 30;

/// Inflates raw deflate data, keeping what was inflated before any corruption (the parser
/// would read that much too).
fn inflate(deflated: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut decoder = flate2::read::DeflateDecoder::new(deflated).take(MAX_INFLATED + 1);
    let mut out = Vec::new();
    let mut chunk = [0u8; 1 << 16];
    loop {
        match decoder.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
    if out.len() as u64 > MAX_INFLATED {
        return Err(format!(
            "the deflated data set expands beyond {MAX_INFLATED} bytes"
        ));
    }
    Ok(out)
}

/// Checks bytes that hold a bare data set (no preamble, no meta group) in the transfer
/// syntax `uid`, as the fallback reader will parse them.
pub fn check_bare(bytes: &[u8], uid: &str) -> Result<(), String> {
    let encoding = match uid {
        "1.2.840.10008.1.2" => Encoding::ImplicitLittle,
        "1.2.840.10008.1.2.2" => Encoding::ExplicitBig,
        _ => Encoding::ExplicitLittle,
    };
    walk_elements(bytes, 0, bytes.len(), encoding, 0).map(|_| ())
}

struct ElementHeader {
    tag: Tag,
    sequence: bool,
    /// Bytes per value: the parser reads `length / unit` whole values and moves on from
    /// there, so an odd length under a 2-, 4- or 8-byte VR shifts the stream.
    unit: usize,
    length: u32,
    size: usize,
}

/// The VR the parser uses for a dictionary entry in implicit VR.
fn relaxed(vr: VirtualVr) -> VR {
    match vr {
        VirtualVr::Exact(vr) => vr,
        VirtualVr::Xs => VR::US,
        _ => VR::OW,
    }
}

/// Bytes per value of a VR as the parser reads it.
fn value_unit(vr: VR) -> usize {
    match vr {
        VR::US | VR::OW | VR::SS => 2,
        VR::AT | VR::FL | VR::OF | VR::SL | VR::OL | VR::UL => 4,
        VR::FD | VR::OD | VR::SV | VR::OV | VR::UV => 8,
        _ => 1,
    }
}

fn lying(tag: Tag, length: u32, remaining: usize) -> String {
    format!(
        "element ({:04X},{:04X}) declares {length} bytes but only {remaining} remain",
        tag.0, tag.1
    )
}

fn read_u16(bytes: &[u8], pos: usize, encoding: Encoding) -> u16 {
    let b = [bytes[pos], bytes[pos + 1]];
    if encoding == Encoding::ExplicitBig {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    }
}

fn read_u32(bytes: &[u8], pos: usize, encoding: Encoding) -> u32 {
    let b = [bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]];
    if encoding == Encoding::ExplicitBig {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

/// Reads an element header at `pos`; `Ok(None)` when too few bytes remain to tell.
fn element_header(
    bytes: &[u8],
    pos: usize,
    encoding: Encoding,
) -> Result<Option<ElementHeader>, String> {
    if pos + 8 > bytes.len() {
        return Ok(None);
    }
    let tag = Tag(
        read_u16(bytes, pos, encoding),
        read_u16(bytes, pos + 2, encoding),
    );
    if tag.0 == 0xFFFE || encoding == Encoding::ImplicitLittle {
        let vr = if tag.0 == 0xFFFE {
            VR::UN
        } else {
            StandardDataDictionary
                .by_tag(tag)
                .map_or(VR::UN, |entry| relaxed(entry.vr))
        };
        return Ok(Some(ElementHeader {
            tag,
            sequence: vr == VR::SQ,
            unit: value_unit(vr),
            length: read_u32(bytes, pos + 4, encoding),
            size: 8,
        }));
    }
    let vr = [bytes[pos + 4], bytes[pos + 5]];
    // Like the parser: the short-form VRs have a 2-byte length; every other VR, unknown
    // bytes included (read as UN), has 2 reserved bytes and a 4-byte length.
    let short = matches!(
        &vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SS"
            | b"ST"
            | b"TM"
            | b"UI"
            | b"UL"
            | b"US"
    );
    let long = !short;
    if long {
        if pos + 12 > bytes.len() {
            return Ok(None);
        }
        Ok(Some(ElementHeader {
            tag,
            sequence: &vr == b"SQ",
            unit: VR::from_binary(vr).map_or(1, value_unit),
            length: read_u32(bytes, pos + 8, encoding),
            size: 12,
        }))
    } else {
        Ok(Some(ElementHeader {
            tag,
            sequence: false,
            unit: VR::from_binary(vr).map_or(1, value_unit),
            length: u32::from(read_u16(bytes, pos + 6, encoding)),
            size: 8,
        }))
    }
}

/// Walks elements from `pos` to `end` (or to an item delimiter); returns where it stopped.
fn walk_elements(
    bytes: &[u8],
    mut pos: usize,
    end: usize,
    encoding: Encoding,
    depth: usize,
) -> Result<usize, String> {
    if depth > MAX_DEPTH {
        return Err("sequences nested too deeply".into());
    }
    while pos < end {
        // Read the header from the whole stream, as the parser does: one that crosses the
        // end of its item would be read, and its length trusted, before the item ends.
        let Some(header) = element_header(bytes, pos, encoding)? else {
            return Ok(end);
        };
        if pos + header.size > end {
            return Err(format!(
                "element ({:04X},{:04X}) crosses the end of its item",
                header.tag.0, header.tag.1
            ));
        }
        if header.tag == Tag(0xFFFE, 0xE00D) {
            if depth == 0 {
                // The parser skips a stray item delimiter outside any sequence.
                pos += 8;
                continue;
            }
            return Ok(pos + 8);
        }
        let value_start = pos + header.size;
        if header.length == u32::MAX {
            // Undefined length: a sequence, a UN holding one (its items are data sets), or
            // encapsulated pixel data (its items are fragments).
            let data_set_items = header.tag != Tag(0x7FE0, 0x0010);
            pos = walk_items(bytes, value_start, end, encoding, depth + 1, data_set_items)?;
            continue;
        }
        let declared = header.length as usize;
        // The parser reads whole values only, and continues right after them.
        let length = if header.sequence {
            declared
        } else {
            declared - declared % header.unit
        };
        if value_start + length > end {
            return Err(lying(
                header.tag,
                header.length,
                end.saturating_sub(value_start),
            ));
        }
        if header.sequence {
            walk_items(
                bytes,
                value_start,
                value_start + length,
                encoding,
                depth + 1,
                true,
            )?;
        }
        pos = value_start + length;
    }
    Ok(pos)
}

/// Walks the items of a sequence (or the fragments of encapsulated pixel data).
fn walk_items(
    bytes: &[u8],
    mut pos: usize,
    end: usize,
    encoding: Encoding,
    depth: usize,
    data_set_items: bool,
) -> Result<usize, String> {
    if depth > MAX_DEPTH {
        return Err("sequences nested too deeply".into());
    }
    // The parser reads the items of an undefined-length UN element in the file's own
    // encoding, so they are checked in it too.
    let item_encoding = encoding;
    while pos < end {
        if pos + 8 > end {
            if end < bytes.len() {
                return Err("an item header crosses the end of its sequence".into());
            }
            return Ok(end);
        }
        let tag = Tag(
            read_u16(bytes, pos, encoding),
            read_u16(bytes, pos + 2, encoding),
        );
        let length = read_u32(bytes, pos + 4, encoding);
        match tag {
            Tag(0xFFFE, 0xE0DD) => return Ok(pos + 8),
            Tag(0xFFFE, 0xE000) if length == u32::MAX && data_set_items => {
                pos = walk_elements(bytes, pos + 8, end, item_encoding, depth + 1)?;
            }
            // An undefined-length pixel fragment: not ours to judge.
            Tag(0xFFFE, 0xE000) if length == u32::MAX => return Ok(end),
            Tag(0xFFFE, 0xE000) => {
                let start = pos + 8;
                if start + length as usize > end {
                    return Err(lying(tag, length, end.saturating_sub(start)));
                }
                if data_set_items {
                    walk_elements(
                        bytes,
                        start,
                        start + length as usize,
                        item_encoding,
                        depth + 1,
                    )?;
                }
                pos = start + length as usize;
            }
            // Anything else: not ours to judge.
            _ => return Ok(end),
        }
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explicit_element(group: u16, element: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&group.to_le_bytes());
        out.extend_from_slice(&element.to_le_bytes());
        out.extend_from_slice(vr);
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        out.extend_from_slice(value);
        out
    }

    #[test]
    fn accepts_consistent_lengths_and_rejects_lies() {
        let mut file = vec![0u8; 128];
        file.extend_from_slice(b"DICM");
        let syntax = explicit_element(0x0002, 0x0010, b"UI", b"1.2.840.10008.1.2.1\0");
        let group_length = (syntax.len() as u32).to_le_bytes();
        file.extend(explicit_element(0x0002, 0x0000, b"UL", &group_length));
        file.extend(syntax);
        file.extend(explicit_element(0x0010, 0x0010, b"PN", b"DOE^JOHN"));
        assert_eq!(check(&file), Ok(()));
        // A long-VR element claiming 4 GiB.
        let mut lie = file.clone();
        lie.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00]);
        lie.extend_from_slice(b"OW\0\0");
        lie.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        lie.extend_from_slice(&[0u8; 16]);
        assert!(
            check(&lie)
                .expect_err("lying length")
                .contains("(7FE0,0010)")
        );
    }
}
