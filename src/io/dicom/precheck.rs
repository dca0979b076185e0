//! A structural pre-check of a DICOM byte stream, run before the real parser: walks the
//! element headers (recursing into sequences and items) and rejects any element whose
//! declared length exceeds the bytes that remain. A lying length would otherwise make the
//! parser reserve up to 4 GiB before discovering the file is short.
//!
//! It only rejects what is provably impossible; anything it does not understand is left to
//! the parser to judge.
//!
//! It also finds the one structure the parser misreads: in an explicit VR big-endian file a
//! UN element of undefined length holds its items in implicit VR little endian (PS3.5
//! 6.2.2), which the parser reads big endian and fails on. Each such element gets a
//! [`LengthRepair`]: its defined length, so the parser keeps its bytes (`unknown_vr` then
//! reads them as the sequence they are).

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

/// A 4-byte big-endian length to write at `at`: an undefined-length UN's real length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LengthRepair {
    pub at: usize,
    pub length: u32,
}

impl LengthRepair {
    /// Writes the repairs into `bytes` (the stream they were found in).
    pub fn apply(repairs: &[Self], bytes: &mut [u8]) {
        for repair in repairs {
            if let Some(slot) = bytes.get_mut(repair.at..repair.at + 4) {
                slot.copy_from_slice(&repair.length.to_be_bytes());
            }
        }
    }
}

/// `Err` with a reason when a declared length cannot fit in the stream; else the length
/// repairs the parser needs (see the module's doc).
pub fn check(bytes: &[u8]) -> Result<Vec<LengthRepair>, String> {
    let mut pos = if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        132
    } else if bytes.starts_with(b"DICM") {
        4
    } else {
        // No meta group: the parser refuses the file at once, and the bare data-set
        // fallback is checked on its own (`check_bare`).
        return Ok(Vec::new());
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
        _ => return Ok(Vec::new()),
    };
    let meta_start = pos;
    let mut transfer_syntax = None;
    while pos - meta_start < group_length {
        let Some(header) = element_header(bytes, pos, Encoding::ExplicitLittle)? else {
            return Ok(Vec::new());
        };
        if header.length == u32::MAX {
            return Ok(Vec::new());
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
            let mut walk = Walk::new(&inflated, Encoding::ExplicitLittle);
            return walk.run(0).map(|_| Vec::new());
        }
        Some(_) => Encoding::ExplicitLittle,
        // Without a transfer syntax the parser refuses the meta group.
        None => return Ok(Vec::new()),
    };
    let mut walk = Walk::new(bytes, encoding);
    walk.run(pos)?;
    Ok(walk.repairs)
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
pub fn check_bare(bytes: &[u8], uid: &str) -> Result<Vec<LengthRepair>, String> {
    let encoding = match uid {
        "1.2.840.10008.1.2" => Encoding::ImplicitLittle,
        "1.2.840.10008.1.2.2" => Encoding::ExplicitBig,
        _ => Encoding::ExplicitLittle,
    };
    let mut walk = Walk::new(bytes, encoding);
    walk.run(0)?;
    Ok(walk.repairs)
}

struct ElementHeader {
    tag: Tag,
    sequence: bool,
    /// Explicit VR "UN".
    unknown: bool,
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
            unknown: false,
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
            unknown: &vr == b"UN",
            unit: VR::from_binary(vr).map_or(1, value_unit),
            length: read_u32(bytes, pos + 8, encoding),
            size: 12,
        }))
    } else {
        Ok(Some(ElementHeader {
            tag,
            sequence: false,
            unknown: false,
            unit: VR::from_binary(vr).map_or(1, value_unit),
            length: u32::from(read_u16(bytes, pos + 6, encoding)),
            size: 8,
        }))
    }
}

/// One walk over a data set: its bytes, its encoding, and the repairs it found.
struct Walk<'a> {
    bytes: &'a [u8],
    encoding: Encoding,
    repairs: Vec<LengthRepair>,
}

/// A sequence delimitation item in little endian, as it ends a UN of undefined length.
pub(super) const SEQUENCE_END_LITTLE: [u8; 8] = [0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0];

impl<'a> Walk<'a> {
    fn new(bytes: &'a [u8], encoding: Encoding) -> Self {
        Self {
            bytes,
            encoding,
            repairs: Vec::new(),
        }
    }

    /// Walks the top-level data set from `pos`.
    fn run(&mut self, pos: usize) -> Result<usize, String> {
        self.elements(pos, self.bytes.len(), self.encoding, 0)
    }

    /// Walks elements from `pos` to `end` (or to an item delimiter); returns where it
    /// stopped.
    fn elements(
        &mut self,
        mut pos: usize,
        end: usize,
        encoding: Encoding,
        depth: usize,
    ) -> Result<usize, String> {
        if depth > MAX_DEPTH {
            return Err("sequences nested too deeply".into());
        }
        while pos < end {
            // Read the header from the whole stream, as the parser does: one that crosses
            // the end of its item would be read, and its length trusted, before the item
            // ends.
            let Some(header) = element_header(self.bytes, pos, encoding)? else {
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
                if let Some(value_end) = self.big_endian_un(&header, pos, end, depth) {
                    pos = value_end;
                    continue;
                }
                // Undefined length: a sequence, a UN holding one (its items are data
                // sets), or encapsulated pixel data (its items are fragments).
                let data_set_items = header.tag != Tag(0x7FE0, 0x0010);
                pos = self.items(value_start, end, encoding, depth + 1, data_set_items)?;
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
                self.items(value_start, value_start + length, encoding, depth + 1, true)?;
            }
            pos = value_start + length;
        }
        Ok(pos)
    }

    /// An undefined-length UN of a big-endian file whose value walks as implicit VR little
    /// endian items up to a sequence delimiter (PS3.5 6.2.2): records its length repair and
    /// returns where it ends. `None` when it is not one (the parser reads it as it is).
    fn big_endian_un(
        &mut self,
        header: &ElementHeader,
        pos: usize,
        end: usize,
        depth: usize,
    ) -> Option<usize> {
        if self.encoding != Encoding::ExplicitBig || !header.unknown {
            return None;
        }
        let value_start = pos + header.size;
        let value_end = self
            .items(value_start, end, Encoding::ImplicitLittle, depth + 1, true)
            .ok()?;
        if value_end < value_start + 8
            || self.bytes.get(value_end - 8..value_end) != Some(&SEQUENCE_END_LITTLE[..])
        {
            return None;
        }
        let length = u32::try_from(value_end - value_start).ok()?;
        self.repairs.push(LengthRepair {
            at: pos + 8,
            length,
        });
        Some(value_end)
    }

    /// Walks the items of a sequence (or the fragments of encapsulated pixel data), read
    /// in `encoding`: the parser reads the items of an undefined-length UN element in the
    /// file's own encoding, so they are checked in it too.
    fn items(
        &mut self,
        mut pos: usize,
        end: usize,
        encoding: Encoding,
        depth: usize,
        data_set_items: bool,
    ) -> Result<usize, String> {
        if depth > MAX_DEPTH {
            return Err("sequences nested too deeply".into());
        }
        let bytes = self.bytes;
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
                    pos = self.elements(pos + 8, end, encoding, depth + 1)?;
                }
                // An undefined-length pixel fragment: not ours to judge.
                Tag(0xFFFE, 0xE000) if length == u32::MAX => return Ok(end),
                Tag(0xFFFE, 0xE000) => {
                    let start = pos + 8;
                    if start + length as usize > end {
                        return Err(lying(tag, length, end.saturating_sub(start)));
                    }
                    if data_set_items {
                        self.elements(start, start + length as usize, encoding, depth + 1)?;
                    }
                    pos = start + length as usize;
                }
                // Anything else: not ours to judge.
                _ => return Ok(end),
            }
        }
        Ok(end)
    }
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

    /// Preamble, "DICM" and a meta group naming transfer syntax `uid`.
    fn file_with_meta(uid: &[u8]) -> Vec<u8> {
        let mut file = vec![0u8; 128];
        file.extend_from_slice(b"DICM");
        let syntax = explicit_element(0x0002, 0x0010, b"UI", uid);
        let group_length = (syntax.len() as u32).to_le_bytes();
        file.extend(explicit_element(0x0002, 0x0000, b"UL", &group_length));
        file.extend(syntax);
        file
    }

    #[test]
    fn accepts_consistent_lengths_and_rejects_lies() {
        let mut file = file_with_meta(b"1.2.840.10008.1.2.1\0");
        file.extend(explicit_element(0x0010, 0x0010, b"PN", b"DOE^JOHN"));
        assert_eq!(check(&file), Ok(Vec::new()));
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

    #[test]
    fn a_big_endian_un_of_undefined_length_gets_its_length() {
        let mut file = file_with_meta(b"1.2.840.10008.1.2.2\0");
        // (0008,1032) UN, undefined length: one implicit-LE item holding (0008,0100) "12".
        let at = file.len() + 8;
        file.extend([
            0x00, 0x08, 0x10, 0x32, b'U', b'N', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        let value_start = file.len();
        file.extend([0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        file.extend([0x08, 0x00, 0x00, 0x01, 2, 0, 0, 0, b'1', b'2']);
        file.extend([0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        file.extend(SEQUENCE_END_LITTLE);
        let length = (file.len() - value_start) as u32;
        // Then a big-endian element, which the walk must reach.
        file.extend([0x00, 0x10, 0x00, 0x10, b'P', b'N', 0, 4]);
        file.extend(b"A^B ");
        assert_eq!(check(&file), Ok(vec![LengthRepair { at, length }]));
        // Items that do not end in a little-endian delimiter are left to the parser.
        let mut unended = file.clone();
        unended.truncate(value_start + 18);
        assert_eq!(check(&unended), Ok(Vec::new()));
    }
}
