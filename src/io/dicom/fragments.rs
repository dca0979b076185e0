//! Encapsulated pixel data: which fragments make up which frame. One fragment per frame is
//! the common case; a frame may also span several fragments, told apart by the Basic Offset
//! Table when there is one, else by where a frame's own header starts (an RLE header, a
//! JPEG start-of-image marker) — never by splitting bytes evenly.

use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;

/// The compressed stream of each of `frames` frames. `starts_frame` says whether a fragment
/// can be the first of a frame (used when there is no offset table).
pub fn frame_streams(
    obj: &DefaultDicomObject,
    frames: usize,
    starts_frame: fn(&[u8]) -> bool,
) -> Result<Vec<Vec<u8>>, String> {
    let value = obj
        .get(tags::PIXEL_DATA)
        .map(|e| e.value())
        .ok_or_else(|| "no pixel data".to_string())?;
    let fragments = value
        .fragments()
        .ok_or_else(|| "pixel data is not encapsulated".to_string())?;
    let offsets = value.offset_table().unwrap_or(&[]);
    group(fragments, offsets, frames, starts_frame)
}

fn group(
    fragments: &[Vec<u8>],
    offsets: &[u32],
    frames: usize,
    starts_frame: fn(&[u8]) -> bool,
) -> Result<Vec<Vec<u8>>, String> {
    if fragments.len() == frames {
        return Ok(fragments.to_vec());
    }
    if frames == 1 {
        return Ok(vec![fragments.concat()]);
    }
    if fragments.len() < frames {
        return Err(format!("{} fragments for {frames} frames", fragments.len()));
    }
    // First fragment of each frame: by the offset table (offsets count each fragment's
    // 8-byte item header), else by the frames' own headers.
    let firsts: Vec<usize> = if offsets.len() == frames {
        let mut position = 0u64;
        let starts: Vec<u64> = fragments
            .iter()
            .map(|f| {
                let at = position;
                position += 8 + f.len() as u64;
                at
            })
            .collect();
        offsets
            .iter()
            .map(|&o| {
                starts
                    .iter()
                    .position(|&s| s == u64::from(o))
                    .ok_or_else(|| format!("offset table entry {o} is no fragment's start"))
            })
            .collect::<Result<_, _>>()?
    } else {
        fragments
            .iter()
            .enumerate()
            .filter(|(_, f)| starts_frame(f))
            .map(|(i, _)| i)
            .collect()
    };
    let ordered = firsts.first() == Some(&0) && firsts.windows(2).all(|w| w[0] < w[1]);
    if firsts.len() != frames || !ordered {
        return Err(format!(
            "{} fragments for {frames} frames, and no way to tell where each frame starts",
            fragments.len()
        ));
    }
    Ok((0..frames)
        .map(|f| {
            let end = firsts.get(f + 1).copied().unwrap_or(fragments.len());
            fragments[firsts[f]..end].concat()
        })
        .collect())
}

/// Whether `bytes` start with an RLE Lossless header: 1–15 segments, the first at byte 64.
pub fn starts_rle_frame(bytes: &[u8]) -> bool {
    let word = |i: usize| {
        bytes
            .get(4 * i..4 * i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    matches!((word(0), word(1)), (Some(1..=15), Some(64))) && bytes.len() >= 64
}

/// Whether `bytes` start with a JPEG start-of-image marker.
pub fn starts_jpeg_frame(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rle_header(extra: usize) -> Vec<u8> {
        let mut h = vec![0u8; 64 + extra];
        h[0] = 1;
        h[4] = 64;
        h
    }

    #[test]
    fn frames_are_found_by_their_headers_or_the_offset_table() {
        let (a, b) = (rle_header(6), vec![7u8; 10]);
        let (c, d) = (rle_header(2), vec![9u8; 4]);
        let fragments = vec![a.clone(), b.clone(), c.clone(), d.clone()];
        let by_headers = group(&fragments, &[], 2, starts_rle_frame).expect("two frames");
        assert_eq!(
            by_headers,
            vec![
                [a.clone(), b.clone()].concat(),
                [c.clone(), d.clone()].concat()
            ]
        );
        // Offsets: frame 2 starts after two fragments and their item headers.
        let second = (8 + a.len() + 8 + b.len()) as u32;
        let by_table = group(&fragments, &[0, second], 2, |_| false).expect("two frames");
        assert_eq!(by_table, by_headers);
        // One frame takes every fragment; too few fragments or unfindable starts are errors.
        assert_eq!(
            group(&fragments, &[], 1, starts_rle_frame).expect("one")[0].len(),
            150
        );
        assert!(group(&fragments, &[], 5, starts_rle_frame).is_err());
        assert!(group(&fragments, &[], 3, starts_rle_frame).is_err());
        assert!(group(&fragments, &[0, 5], 2, starts_rle_frame).is_err());
    }
}
