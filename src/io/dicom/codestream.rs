//! Image dimensions declared inside compressed codestreams (JPEG, JPEG-LS, JPEG 2000), read
//! without decoding, so that a stream claiming a different size than the DICOM header is
//! refused before a codec allocates for it.

/// Width and height a codestream declares, or `None` when it cannot be told.
pub fn dimensions(stream: &[u8]) -> Option<(usize, usize)> {
    match stream.get(..2)? {
        [0xFF, 0xD8] => jpeg_dimensions(stream),
        [0xFF, 0x4F] => j2k_dimensions(stream),
        _ if stream.get(4..8) == Some(b"jP  ") => {
            // JP2 file format: find the codestream box.
            let start = stream.windows(2).position(|w| w == [0xFF, 0x4F])?;
            j2k_dimensions(&stream[start..])
        }
        _ => None,
    }
}

fn be16(stream: &[u8], pos: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([
        *stream.get(pos)?,
        *stream.get(pos + 1)?,
    ])))
}

fn be32(stream: &[u8], pos: usize) -> Option<usize> {
    let b = stream.get(pos..pos + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// JPEG and JPEG-LS: the first SOFn (or SOF55) segment.
fn jpeg_dimensions(stream: &[u8]) -> Option<(usize, usize)> {
    let mut pos = 2;
    loop {
        while stream.get(pos) == Some(&0xFF) && stream.get(pos + 1) == Some(&0xFF) {
            pos += 1;
        }
        if stream.get(pos) != Some(&0xFF) {
            return None;
        }
        let marker = *stream.get(pos + 1)?;
        let length = be16(stream, pos + 2)?;
        let is_sof = matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF | 0xF7);
        if is_sof {
            let height = be16(stream, pos + 5)?;
            let width = be16(stream, pos + 7)?;
            return Some((width, height));
        }
        if marker == 0xDA || length < 2 {
            return None;
        }
        pos += 2 + length;
    }
}

/// JPEG 2000 codestream: the SIZ segment right after SOC.
fn j2k_dimensions(stream: &[u8]) -> Option<(usize, usize)> {
    if stream.get(2..4)? != [0xFF, 0x51] {
        return None;
    }
    let (x, y, x0, y0) = (
        be32(stream, 8)?,
        be32(stream, 12)?,
        be32(stream, 16)?,
        be32(stream, 20)?,
    );
    Some((x.checked_sub(x0)?, y.checked_sub(y0)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_jpeg_and_j2k_sizes() {
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xC1, 0x00, 0x0B, 0x0C, 0x02,
            0x00, 0x01, 0x80,
        ];
        assert_eq!(dimensions(&jpeg), Some((384, 512)));
        let mut j2k = vec![0xFF, 0x4F, 0xFF, 0x51, 0x00, 0x29, 0x00, 0x00];
        for v in [300u32, 200, 0, 0] {
            j2k.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(dimensions(&j2k), Some((300, 200)));
        assert_eq!(dimensions(b"garbage"), None);
    }
}
