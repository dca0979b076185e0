//! Fusion of 2-D image pairs such as the benchmark PNGs: 8-bit gray, or RGB pseudo-colour
//! (PET, SPECT), fused on the Y channel of YCbCr with the colour source's Cb/Cr put back —
//! the protocol every published peer uses (MODEL.md).

use super::fuser::{Fuser, FuserError, FusionMaps};
use crate::volume::Volume;
use crate::volume::colour::fuse_luminance;

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
    let (image, maps) = fuse_luminance(a, b, |ya, yb| {
        let maps = fuser.fuse_normalised(ya, yb, a.geometry.dims, 1, None, &mut |_, _| true)?;
        Ok::<_, FuserError>((maps.fused.clone(), maps))
    })?;
    Ok(FusedImage { image, maps })
}
