//! Fusion of 2-D image pairs such as the benchmark PNGs: 8-bit gray, or RGB pseudo-colour
//! (PET, SPECT), fused on the Y channel of YCbCr with the colour source's Cb/Cr put back —
//! the protocol every published peer uses (MODEL.md).

use super::fuser::{Fuser, FuserError, FusionMaps};
use crate::volume::Volume;
use crate::volume::colour::{from_luminance, luminance};

/// A fused image pair.
#[derive(Debug)]
pub struct FusedImage {
    /// The fused image, 0..255, gray or RGB like the inputs (RGB when either was colour).
    pub image: Volume,
    /// The network's maps, 0..1.
    pub maps: FusionMaps,
}

/// Fuses two 8-bit images of the same size.
pub fn fuse_image_pair(fuser: &Fuser, a: &Volume, b: &Volume) -> Result<FusedImage, FuserError> {
    if a.geometry.dims != b.geometry.dims {
        return Err(FuserError::GridMismatch {
            a: a.geometry.dims,
            b: b.geometry.dims,
        });
    }
    let (ya, chroma_a) = luminance(&a.data, a.channels);
    let (yb, chroma_b) = luminance(&b.data, b.channels);
    let maps = fuser.fuse_normalised(&ya, &yb, a.geometry.dims, 1, &mut |_, _| true)?;
    let (channels, data) = from_luminance(&maps.fused, chroma_a.or(chroma_b).as_deref());
    let mut image = Volume::with_channels(a.geometry.clone(), channels, data)
        .map_err(|e| FuserError::Device(e.to_string()))?;
    image.modality = a.modality.clone();
    Ok(FusedImage { image, maps })
}
