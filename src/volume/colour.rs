//! RGB ↔ YCbCr (full range, ITU-R BT.601 as JPEG uses it): colour PET/SPECT images are fused
//! on their Y channel and their Cb/Cr put back (the protocol of every published peer), and
//! uncompressed YBR_FULL DICOM is turned into RGB.

use super::{Volume, VolumeError};

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

/// `luma`'s luminance with `source`'s chroma (all RGB 0..1, result clamped to 0..1): how a
/// grey fused image takes on a colour-mapped PET's colours (the viewer's shader does the
/// same in `shaders/slice.wgsl`).
pub fn with_chroma_of(luma: [f32; 3], source: [f32; 3]) -> [f32; 3] {
    let [y, _, _] = rgb_to_ycbcr(luma.map(|c| c * 255.0));
    let [_, cb, cr] = rgb_to_ycbcr(source.map(|c| c * 255.0));
    ycbcr_to_rgb([y, cb, cr]).map(|c| c / 255.0)
}

/// The Y channel (0..1) of an 8-bit gray or RGB image, and its chroma (Cb, Cr) when colour.
pub fn luminance(data: &[f32], channels: usize) -> (Vec<f32>, Option<Vec<[f32; 2]>>) {
    if channels == 3 {
        let ycc: Vec<[f32; 3]> = data
            .chunks_exact(3)
            .map(|p| rgb_to_ycbcr([p[0], p[1], p[2]]))
            .collect();
        (
            ycc.iter().map(|p| p[0] / 255.0).collect(),
            Some(ycc.iter().map(|p| [p[1], p[2]]).collect()),
        )
    } else {
        (data.iter().map(|v| v / 255.0).collect(), None)
    }
}

/// Rebuilds an 8-bit image (rounded) from a fused Y (0..1) and the chroma of the colour
/// source, if any: returns (channels, values).
fn from_luminance(y: &[f32], chroma: Option<&[[f32; 2]]>) -> (usize, Vec<f32>) {
    match chroma {
        Some(chroma) => (
            3,
            y.iter()
                .zip(chroma)
                .flat_map(|(y, [cb, cr])| ycbcr_to_rgb([y * 255.0, *cb, *cr]).map(f32::round))
                .collect(),
        ),
        None => (
            1,
            y.iter()
                .map(|v| (v * 255.0).round().clamp(0.0, 255.0))
                .collect(),
        ),
    }
}

/// Fuses two 8-bit images (gray or RGB, same grid) on their Y channel — the protocol of the
/// published peers: `fuse(Y_A, Y_B)` (0..1) returns the fused Y and anything else it made;
/// the result is gray, or RGB with the colour source's Cb/Cr put back, on A's grid.
pub fn fuse_luminance<T, E: From<VolumeError>>(
    a: &Volume,
    b: &Volume,
    fuse: impl FnOnce(&[f32], &[f32]) -> Result<(Vec<f32>, T), E>,
) -> Result<(Volume, T), E> {
    let (ya, chroma_a) = luminance(&a.data, a.channels);
    let (yb, chroma_b) = luminance(&b.data, b.channels);
    let (fused, extra) = fuse(&ya, &yb)?;
    let (channels, data) = from_luminance(&fused, chroma_a.or(chroma_b).as_deref());
    let mut image = Volume::with_channels(a.geometry.clone(), channels, data)?;
    image.modality = a.modality.clone();
    Ok((image, extra))
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

    #[test]
    fn chroma_comes_from_the_source_and_luminance_stays() {
        // Grey source: no chroma, the grey is kept.
        let grey = with_chroma_of([0.4; 3], [0.9; 3]);
        assert!(grey.iter().all(|c| (c - 0.4).abs() < 1e-4), "{grey:?}");
        // Red source: the result is reddish with the grey's luminance (unclipped here).
        let red = with_chroma_of([0.5; 3], [0.6, 0.3, 0.3]);
        assert!(red[0] > red[1] && red[0] > red[2], "{red:?}");
        let [y, _, _] = rgb_to_ycbcr(red.map(|c| c * 255.0));
        assert!((y - 127.5).abs() < 0.01, "{y}");
    }
}
