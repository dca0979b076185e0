//! Fusion of 2-D image pairs such as the benchmark PNGs: 8-bit gray, or RGB pseudo-colour
//! (PET, SPECT), fused on the Y channel of YCbCr with the colour source's Cb/Cr put back —
//! the protocol every published peer uses (MODEL.md).

use super::fuser::{Fuser, FuserError, FusionMaps};
use crate::volume::Volume;
use crate::volume::colour::{rgb_to_ycbcr, ycbcr_to_rgb};

/// A fused image pair.
#[derive(Debug)]
pub struct FusedImage {
    /// The fused image, 0..255, gray or RGB like the inputs (RGB when either was colour).
    pub image: Volume,
    /// The network's maps, 0..1.
    pub maps: FusionMaps,
}

/// Y (0..1) of every pixel, and the chroma (Cb, Cr) when the image is colour.
fn luminance(image: &Volume) -> (Vec<f32>, Option<Vec<[f32; 2]>>) {
    if image.channels == 3 {
        let ycc: Vec<[f32; 3]> = image
            .data
            .chunks_exact(3)
            .map(|p| rgb_to_ycbcr([p[0], p[1], p[2]]))
            .collect();
        (
            ycc.iter().map(|p| p[0] / 255.0).collect(),
            Some(ycc.iter().map(|p| [p[1], p[2]]).collect()),
        )
    } else {
        (image.data.iter().map(|v| v / 255.0).collect(), None)
    }
}

/// Fuses two 8-bit images of the same size.
pub fn fuse_image_pair(fuser: &Fuser, a: &Volume, b: &Volume) -> Result<FusedImage, FuserError> {
    if a.geometry.dims != b.geometry.dims {
        return Err(FuserError::GridMismatch {
            a: a.geometry.dims,
            b: b.geometry.dims,
        });
    }
    let (ya, chroma_a) = luminance(a);
    let (yb, chroma_b) = luminance(b);
    let maps = fuser.fuse_normalised(&ya, &yb, a.geometry.dims, 1, &mut |_, _| true)?;
    let (channels, data) = match chroma_a.or(chroma_b) {
        Some(chroma) => (
            3,
            maps.fused
                .iter()
                .zip(&chroma)
                .flat_map(|(y, [cb, cr])| ycbcr_to_rgb([y * 255.0, *cb, *cr]).map(f32::round))
                .collect(),
        ),
        None => (1, maps.fused.iter().map(|y| (y * 255.0).round()).collect()),
    };
    let mut image = Volume::with_channels(a.geometry.clone(), channels, data)
        .map_err(|e| FuserError::Device(e.to_string()))?;
    image.modality = a.modality.clone();
    Ok(FusedImage { image, maps })
}
