//! 2-D images (the PNG benchmark pairs) as one-slice volumes: 8/16-bit gray or RGB values
//! as stored, 1 mm pixels.

use std::path::Path;

use super::LoadError;
use crate::metrics::{GrayImage, Image8, MetricsError};
use crate::volume::{Geometry, Modality, Units, Volume};

/// Largest image accepted (pixels).
const MAX_PIXELS: u64 = 1 << 28;

/// Reads a PNG (or other format the `image` crate was built with) as a one-slice volume.
/// Gray images give one channel, colour images three (alpha dropped).
pub fn read(path: &Path) -> Result<Volume, LoadError> {
    let bad = |reason: String| LoadError::Image {
        reason,
        path: path.to_path_buf(),
    };
    let reader = image::ImageReader::open(path)
        .map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .with_guessed_format()
        .map_err(|e| bad(e.to_string()))?;
    let (width, height) = reader.into_dimensions().map_err(|e| bad(e.to_string()))?;
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(bad(format!("{width}×{height} pixels is too large")));
    }
    let image = image::open(path).map_err(|e| bad(e.to_string()))?;
    let geometry = Geometry::axis_aligned([width as usize, height as usize, 1], [1.0; 3], [0.0; 3]);
    let volume = if image.color().has_color() {
        let rgb = image.to_rgb8();
        Volume::with_channels(
            geometry,
            3,
            rgb.into_raw().into_iter().map(f32::from).collect(),
        )?
    } else if image.color().bytes_per_pixel() > 2
        || matches!(
            image.color(),
            image::ColorType::L16 | image::ColorType::La16
        )
    {
        let gray = image.to_luma16();
        Volume::new(
            geometry,
            gray.into_raw().into_iter().map(f32::from).collect(),
        )?
    } else {
        let gray = image.to_luma8();
        Volume::new(
            geometry,
            gray.into_raw().into_iter().map(f32::from).collect(),
        )?
    };
    Ok(volume.with_kind(Modality::Other("OT".into()), Units::Signal))
}

/// Reads an 8-bit PNG as the gray image the fusion metrics score ([`to_gray8`]).
pub fn read_gray8(path: &Path) -> Result<GrayImage, LoadError> {
    let volume = read(path)?;
    let bad = |reason: String| LoadError::Image {
        reason,
        path: path.to_path_buf(),
    };
    if volume.data.iter().any(|&v| v > 255.0) {
        return Err(bad("a 16-bit image cannot be scored as 8-bit".into()));
    }
    to_gray8(&volume).map_err(|e| bad(e.to_string()))
}

/// A one-slice 8-bit image (values 0..255, gray or RGB) as the locality measure reads it.
pub fn as_image8(image: &Volume) -> Image8<'_> {
    Image8 {
        data: &image.data,
        channels: image.channels,
    }
}

/// A one-slice 8-bit image (values 0..255, rounded and clamped) as the gray image the
/// fusion metrics score: colour is turned to gray the MATLAB way ([`GrayImage::from_rgb`]).
pub fn to_gray8(image: &Volume) -> Result<GrayImage, MetricsError> {
    let [width, height, _] = image.geometry.dims;
    let bytes: Vec<u8> = image
        .data
        .iter()
        .map(|v| v.round().clamp(0.0, 255.0) as u8)
        .collect();
    if image.channels == 3 {
        GrayImage::from_rgb(width, height, &bytes)
    } else {
        GrayImage::new(width, height, bytes)
    }
}
