//! PNG output of 2-D images (one-slice volumes), written atomically: 8-bit gray or RGB.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::io::atomic::write_atomically;
use crate::volume::Volume;

/// Why a PNG could not be written.
#[derive(Debug, Error)]
pub enum PngError {
    #[error("only one slice can be written to a PNG (this volume has {0})")]
    NotOneSlice(usize),
    #[error("cannot write PNG: {reason} ({})", path.display())]
    Write { reason: String, path: PathBuf },
}

/// Writes slice 0 of `image` (values clamped to 0..255; 1 or 3 channels) as an 8-bit PNG.
pub fn write_png(image: &Volume, path: &Path, overwrite: bool) -> Result<(), PngError> {
    let [nx, ny, nz] = image.geometry.dims;
    if nz != 1 {
        return Err(PngError::NotOneSlice(nz));
    }
    let bytes: Vec<u8> = image
        .data
        .iter()
        .map(|v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    let colour = if image.channels == 3 {
        image::ExtendedColorType::Rgb8
    } else {
        image::ExtendedColorType::L8
    };
    let mut encoded = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut encoded),
        &bytes,
        nx as u32,
        ny as u32,
        colour,
    )
    .map_err(|e| PngError::Write {
        reason: e.to_string(),
        path: path.to_path_buf(),
    })?;
    write_atomically(path, overwrite, |out| out.write_all(&encoded)).map_err(|e| PngError::Write {
        reason: e.to_string(),
        path: path.to_path_buf(),
    })
}
