//! DICOM RLE Lossless (PS3.5 Annex G), decoded here rather than by dicom-pixeldata, whose
//! RLE adapter panics on short segments: a malformed file must be an error, never a crash.

/// Decodes one frame's fragment into little-endian samples, interleaved by pixel
/// (`rows × columns × samples × bytes` bytes).
pub fn decode_frame(
    fragment: &[u8],
    pixels: usize,
    samples_per_pixel: usize,
    bytes_per_sample: usize,
) -> Result<Vec<u8>, String> {
    if fragment.len() < 64 {
        return Err("RLE fragment shorter than its 64-byte header".into());
    }
    let word = |i: usize| {
        u32::from_le_bytes([
            fragment[4 * i],
            fragment[4 * i + 1],
            fragment[4 * i + 2],
            fragment[4 * i + 3],
        ]) as usize
    };
    let segments = word(0);
    let expected = samples_per_pixel * bytes_per_sample;
    if segments != expected || segments > 15 {
        return Err(format!(
            "RLE header lists {segments} segments, {expected} expected"
        ));
    }
    let mut offsets: Vec<usize> = (1..=segments).map(word).collect();
    offsets.push(fragment.len());
    let stride = expected;
    let mut out = vec![0u8; pixels * stride];
    for segment in 0..segments {
        let (start, end) = (offsets[segment], offsets[segment + 1]);
        if start < 64 || start > end || end > fragment.len() {
            return Err(format!(
                "RLE segment {segment} has invalid offsets {start}..{end}"
            ));
        }
        // Segments run MSB first within each sample; output is little endian.
        let (sample, byte_from_msb) = (segment / bytes_per_sample, segment % bytes_per_sample);
        let position = sample * bytes_per_sample + (bytes_per_sample - 1 - byte_from_msb);
        unpack_bits(&fragment[start..end], pixels, |index, byte| {
            out[index * stride + position] = byte;
        })
        .map_err(|e| format!("RLE segment {segment}: {e}"))?;
    }
    Ok(out)
}

/// PackBits: calls `put(index, byte)` for each of exactly `count` output bytes.
fn unpack_bits(input: &[u8], count: usize, mut put: impl FnMut(usize, u8)) -> Result<(), String> {
    let (mut i, mut n) = (0usize, 0usize);
    while n < count {
        let header = *input.get(i).ok_or("segment ends early")? as i8;
        i += 1;
        match header {
            0..=127 => {
                let run = header as usize + 1;
                let bytes = input.get(i..i + run).ok_or("literal run past the end")?;
                for &b in bytes.iter().take(count - n) {
                    put(n, b);
                    n += 1;
                }
                i += run;
            }
            -127..=-1 => {
                let run = (1 - isize::from(header)) as usize;
                let b = *input.get(i).ok_or("repeat run past the end")?;
                i += 1;
                for _ in 0..run.min(count - n) {
                    put(n, b);
                    n += 1;
                }
            }
            _ => {} // -128: no operation
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragment(segments: &[Vec<u8>]) -> Vec<u8> {
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(&(segments.len() as u32).to_le_bytes());
        let mut offset = 64u32;
        let mut body = Vec::new();
        for (i, s) in segments.iter().enumerate() {
            header[4 + 4 * i..8 + 4 * i].copy_from_slice(&offset.to_le_bytes());
            offset += s.len() as u32;
            body.extend_from_slice(s);
        }
        header.extend(body);
        header
    }

    #[test]
    fn decodes_16_bit_segments_msb_first() {
        // 4 pixels: 0x0102, 0x0102, 0x0304, 0x0506.
        let msb = vec![0xFF, 0x01, 1, 0x03, 0x05]; // repeat 0x01 twice, then literal 03 05
        let lsb = vec![3, 0x02, 0x02, 0x04, 0x06];
        let out = decode_frame(&fragment(&[msb, lsb]), 4, 1, 2).expect("valid");
        assert_eq!(out, vec![0x02, 0x01, 0x02, 0x01, 0x04, 0x03, 0x06, 0x05]);
    }

    #[test]
    fn short_or_lying_segments_are_errors() {
        let short = fragment(&[vec![0x00, 0x07]]);
        assert!(decode_frame(&short, 4, 1, 1).is_err());
        let mut lying = fragment(&[vec![0xFD, 0x07]]);
        lying[4..8].copy_from_slice(&9999u32.to_le_bytes());
        assert!(decode_frame(&lying, 4, 1, 1).is_err());
        assert!(decode_frame(&[0u8; 10], 4, 1, 1).is_err());
    }
}
