//! PNG output, written atomically: 2-D images (one-slice volumes) as 8-bit gray or RGB, and
//! whole volumes as one PNG per slice — 8-bit through a window and colour map (as displayed)
//! or raw 16-bit gray — named so that they sort by slice position.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::io::atomic::{WrittenFiles, write_atomically};
use crate::volume::Volume;
use crate::volume::colormap::ColorMap;
use crate::volume::geometry::{cross, dot, normalize};
use crate::volume::intensity::Window;

/// Why a PNG could not be written.
#[derive(Debug, Error)]
pub enum PngError {
    #[error("only one slice can be written to a PNG (this volume has {0})")]
    NotOneSlice(usize),
    #[error("cannot write PNG: {reason} ({})", path.display())]
    Write { reason: String, path: PathBuf },
    #[error("{} exists (use --force to replace it); nothing was written", path.display())]
    Exists { path: PathBuf },
    #[error("the export was cancelled; the files it had written were removed")]
    Cancelled,
}

/// Pixel layouts this module writes.
#[derive(Clone, Copy, Debug)]
pub enum PngPixels {
    Gray8,
    Rgb8,
    Gray16,
}

/// The pixel size of a picture of a plane `voxels` across and `mm` in size: square pixels in
/// patient millimetres at the finer of its two spacings, enlarged to 512 pixels along the
/// longer side when smaller (so that text burned in stays legible) and reduced to 4096 when
/// larger.
pub fn picture_size(voxels: [usize; 2], mm: [f64; 2]) -> [usize; 2] {
    let mm = mm.map(|v| if v.is_finite() && v > 0.0 { v } else { 1.0 });
    let finer = (voxels[0] as f64 / mm[0]).max(voxels[1] as f64 / mm[1]);
    let longer = mm[0].max(mm[1]);
    let per_mm = (finer * longer).clamp(512.0, 4096.0) / longer;
    mm.map(|v| ((v * per_mm).round() as usize).max(1))
}

/// Encodes `bytes` (row by row; 16-bit samples big-endian as PNG stores them) and writes
/// them atomically.
pub fn write_pixels(
    bytes: &[u8],
    size: [usize; 2],
    pixels: PngPixels,
    path: &Path,
    overwrite: bool,
) -> Result<(), PngError> {
    let colour = match pixels {
        PngPixels::Gray8 => image::ExtendedColorType::L8,
        PngPixels::Rgb8 => image::ExtendedColorType::Rgb8,
        PngPixels::Gray16 => image::ExtendedColorType::L16,
    };
    let failed = |reason: String| PngError::Write {
        reason,
        path: path.to_path_buf(),
    };
    let mut encoded = Vec::new();
    // The image crate takes 16-bit samples in native order.
    let native: Vec<u8>;
    let data = if matches!(pixels, PngPixels::Gray16) {
        native = bytes
            .chunks_exact(2)
            .flat_map(|b| u16::from_be_bytes([b[0], b[1]]).to_ne_bytes())
            .collect();
        &native
    } else {
        bytes
    };
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut encoded),
        data,
        size[0] as u32,
        size[1] as u32,
        colour,
    )
    .map_err(|e| failed(e.to_string()))?;
    write_atomically(path, overwrite, |out| out.write_all(&encoded))
        .map_err(|e| failed(e.to_string()))
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
    let pixels = if image.channels == 3 {
        PngPixels::Rgb8
    } else {
        PngPixels::Gray8
    };
    write_pixels(&bytes, [nx, ny], pixels, path, overwrite)
}

/// How slices become pixels.
#[derive(Clone, Copy, Debug)]
pub enum SliceRendering {
    /// Through a window and colour map, 8-bit RGB (gray maps give gray RGB).
    Displayed(Window, ColorMap),
    /// The values mapped linearly from `low..high` onto 0..65535, 16-bit gray.
    Raw16 { low: f32, high: f32 },
}

/// File names for the slices of `volume`, `{prefix}_{rank:04}_{position:+.2}mm.png`, where
/// rank orders the slices by position along the slice normal (so names sort by position).
pub fn slice_names(volume: &Volume, prefix: &str) -> Vec<String> {
    let g = &volume.geometry;
    let normal = normalize(cross(g.direction[0], g.direction[1]));
    let positions: Vec<f64> = (0..g.dims[2])
        .map(|k| dot(g.index_to_world([0.0, 0.0, k as f64]), normal))
        .collect();
    let mut order: Vec<usize> = (0..positions.len()).collect();
    order.sort_by(|a, b| positions[*a].total_cmp(&positions[*b]));
    let mut names = vec![String::new(); positions.len()];
    for (rank, k) in order.into_iter().enumerate() {
        names[k] = format!("{prefix}_{:04}_{:+.2}mm.png", rank + 1, positions[k]);
    }
    names
}

/// Writes every axial slice of a gray `volume` into `folder` as PNG. All or nothing, like
/// the DICOM export: existing files are refused unless `overwrite`, and on failure or
/// cancel (`progress` returning false) the files written are removed.
pub fn write_slices(
    volume: &Volume,
    folder: &Path,
    prefix: &str,
    rendering: SliceRendering,
    overwrite: bool,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Vec<PathBuf>, PngError> {
    let [nx, ny, _] = volume.geometry.dims;
    let paths: Vec<PathBuf> = slice_names(volume, prefix)
        .into_iter()
        .map(|n| folder.join(n))
        .collect();
    write_all(folder, paths, overwrite, progress, &mut |k| {
        let values =
            &volume.data[k * nx * ny * volume.channels..(k + 1) * nx * ny * volume.channels];
        let values = values.iter().step_by(volume.channels);
        Ok(match rendering {
            SliceRendering::Displayed(window, map) => (
                values
                    .flat_map(|v| map.color(window.normalise(*v)))
                    .collect(),
                [nx, ny],
                PngPixels::Rgb8,
            ),
            SliceRendering::Raw16 { low, high } => (
                values
                    .flat_map(|v| sample16(*v, low, high).to_be_bytes())
                    .collect(),
                [nx, ny],
                PngPixels::Gray16,
            ),
        })
    })
}

/// `value` mapped linearly from `low..high` onto a 16-bit sample (non-finite: `low`).
pub fn sample16(value: f32, low: f32, high: f32) -> u16 {
    let value = if value.is_finite() { value } else { low };
    let scale = 65535.0 / (high - low).max(f32::MIN_POSITIVE);
    ((value - low) * scale).round().clamp(0.0, 65535.0) as u16
}

/// Bytes, size and layout of one PNG.
pub type PngImage = (Vec<u8>, [usize; 2], PngPixels);

/// Writes `paths` (in `folder`), the `k`-th from `render(k)`. All or nothing: existing files
/// are refused unless `overwrite` before any is written, and on failure or cancel
/// (`progress(written, total)` returning false) the files written are removed.
pub fn write_all(
    folder: &Path,
    paths: Vec<PathBuf>,
    overwrite: bool,
    progress: &mut dyn FnMut(usize, usize) -> bool,
    render: &mut dyn FnMut(usize) -> Result<PngImage, PngError>,
) -> Result<Vec<PathBuf>, PngError> {
    if !overwrite && let Some(path) = paths.iter().find(|p| p.exists()) {
        return Err(PngError::Exists { path: path.clone() });
    }
    std::fs::create_dir_all(folder).map_err(|e| PngError::Write {
        reason: e.to_string(),
        path: folder.to_path_buf(),
    })?;
    let total = paths.len();
    let mut written = WrittenFiles::new();
    for (k, path) in paths.into_iter().enumerate() {
        let (bytes, size, pixels) = render(k)?;
        write_pixels(&bytes, size, pixels, &path, overwrite)?;
        written.push(path);
        if !progress(written.len(), total) && written.len() < total {
            return Err(PngError::Cancelled);
        }
    }
    Ok(written.keep())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_have_square_millimetres() {
        // A coronal plane of 512 × 48 voxels at 0.98 × 3.27 mm (STS_002's CT).
        let [w, h] = picture_size([512, 48], [512.0 * 0.98, 48.0 * 3.27]);
        let aspect = (w as f64 / h as f64) / ((512.0 * 0.98) / (48.0 * 3.27));
        assert!((aspect - 1.0).abs() < 0.01, "{w} x {h}");
        assert_eq!(w, 512);
        // Small planes are enlarged, huge ones reduced.
        assert_eq!(picture_size([48, 48], [96.0, 96.0]), [512, 512]);
        assert_eq!(picture_size([8000, 100], [8000.0, 100.0]), [4096, 51]);
    }
}
