//! RGB ↔ YCbCr (full range, ITU-R BT.601 as JPEG uses it): colour PET/SPECT images are fused
//! on their Y channel and their Cb/Cr put back (the protocol of every published peer), and
//! uncompressed YBR_FULL DICOM is turned into RGB.

/// (Y, Cb, Cr) of an RGB triple, all 0..255.
pub fn rgb_to_ycbcr([r, g, b]: [f32; 3]) -> [f32; 3] {
    [
        0.299 * r + 0.587 * g + 0.114 * b,
        128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b,
        128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b,
    ]
}

/// RGB of a (Y, Cb, Cr) triple, clamped to 0..255 (not rounded).
pub fn ycbcr_to_rgb([y, cb, cr]: [f32; 3]) -> [f32; 3] {
    let (cb, cr) = (cb - 128.0, cr - 128.0);
    [
        (y + 1.402 * cr).clamp(0.0, 255.0),
        (y - 0.344_136 * cb - 0.714_136 * cr).clamp(0.0, 255.0),
        (y + 1.772 * cb).clamp(0.0, 255.0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_gray_has_no_chroma() {
        for rgb in [
            [0.0, 0.0, 0.0],
            [255.0, 0.0, 0.0],
            [12.0, 200.0, 90.0],
            [255.0; 3],
        ] {
            let back = ycbcr_to_rgb(rgb_to_ycbcr(rgb));
            for (a, b) in back.iter().zip(rgb) {
                assert!((a - b).abs() < 0.01, "{rgb:?} → {back:?}");
            }
        }
        let [y, cb, cr] = rgb_to_ycbcr([77.0; 3]);
        assert!((y - 77.0).abs() < 1e-3 && (cb - 128.0).abs() < 1e-3 && (cr - 128.0).abs() < 1e-3);
    }
}
