//! Loading a scanned series into a [`Volume`]: lay the frames out in patient space, then
//! decode each file straight into its slices of one preallocated buffer (in parallel), in
//! physical units.

use std::collections::BTreeSet;
use std::path::Path;

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use rayon::prelude::*;

use super::assemble::{Layout, layout};
use super::header::FramePlane;
use super::open::open;
use super::pixels::{
    DecodedFrames, PixelProblem, check_decodable, is_native_bit_packed, is_rle, is_sequential_jpeg,
    strip_jpeg_ls_padding, write_frames_bit_packed, write_frames_jpeg12, write_frames_rle,
};
use super::scan::{Series, header_error};
use super::units::unit_conversion;
use crate::io::LoadError;
use crate::volume::{InstanceRef, Modality, Units, Volume};

/// Largest volume accepted, in bytes of f32 voxels (16 GiB).
pub const MAX_VOLUME_BYTES: u64 = 16 << 30;

/// Loads a series. Files that fail to decode are left out (named in the volume's
/// warnings) and the rest still loads; only when every file fails is it an error.
pub fn load_series(series: &Series) -> Result<Volume, LoadError> {
    let mut excluded: BTreeSet<usize> = BTreeSet::new();
    let mut failures: Vec<LoadError> = Vec::new();
    loop {
        let kept: Vec<usize> = (0..series.files.len())
            .filter(|i| !excluded.contains(i))
            .collect();
        if kept.is_empty() {
            let first = failures
                .into_iter()
                .next()
                .ok_or_else(|| LoadError::Assembly {
                    reason: "the series has no files".into(),
                    series: series.first().identity.series_instance_uid.clone(),
                })?;
            // One file: its own error says it best.
            if series.files.len() == 1 {
                return Err(first);
            }
            return Err(LoadError::AllFilesFailed {
                first: Box::new(first),
            });
        }
        match try_load(series, &kept)? {
            Ok(mut volume) => {
                volume
                    .warnings
                    .extend(failures.iter().map(|e| format!("a file was left out: {e}")));
                return Ok(volume);
            }
            Err(failed) => {
                for (index, error) in failed {
                    excluded.insert(index);
                    failures.push(error);
                }
            }
        }
    }
}

/// One slice of the output and where its pixels come from.
struct SliceSource {
    file: usize,
    frame: usize,
    rescale: (f64, f64),
}

/// How a series' files become a volume: the grid, and where each slice comes from.
struct Plan {
    layout: Layout,
    sources: Vec<SliceSource>,
    conversion: super::units::UnitConversion,
    channels: usize,
}

/// Lays out the frames of files `kept` and decides their units, reading no pixels.
fn plan(series: &Series, kept: &[usize]) -> Result<Plan, LoadError> {
    let first = &series.files[kept[0]].header;
    // Frames in file order (files by instance number, for series without positions).
    let mut files = kept.to_vec();
    files.sort_by_key(|&i| (series.files[i].header.instance_number, i));
    let mut planes: Vec<FramePlane> = Vec::new();
    let mut sources: Vec<SliceSource> = Vec::new();
    let mut positioned = true;
    for &file in &files {
        let header = &series.files[file].header;
        positioned &= header.frames_positioned;
        for (frame, plane) in header.frames.iter().enumerate() {
            planes.push(plane.clone());
            sources.push(SliceSource {
                file,
                frame,
                rescale: plane.rescale,
            });
        }
    }
    let layout = layout(
        &planes,
        first.columns as usize,
        first.rows as usize,
        positioned,
    )
    .map_err(|reason| LoadError::Assembly {
        reason,
        series: first.identity.series_instance_uid.clone(),
    })?;
    let modality = Modality::from_code(&first.modality);
    let headers: Vec<_> = files.iter().map(|&i| &series.files[i].header).collect();
    Ok(Plan {
        layout,
        sources,
        conversion: unit_conversion(&modality, &headers),
        channels: usize::from(first.samples_per_pixel),
    })
}

/// The grid a series would load onto, from its headers alone.
pub fn layout_of(series: &Series) -> Result<crate::volume::Geometry, LoadError> {
    let all: Vec<usize> = (0..series.files.len()).collect();
    Ok(plan(series, &all)?.layout.geometry)
}

/// The units a series would load in, from its headers alone.
pub fn units_of(series: &Series) -> Units {
    let modality = Modality::from_code(&series.first().modality);
    let headers: Vec<_> = series.files.iter().map(|f| &f.header).collect();
    if series.first().samples_per_pixel == 3 {
        return Units::Other("RGB".into());
    }
    unit_conversion(&modality, &headers).units
}

/// Loads the files `kept`; `Ok(Err(..))` lists the files that failed to decode.
#[allow(clippy::type_complexity)]
fn try_load(
    series: &Series,
    kept: &[usize],
) -> Result<Result<Volume, Vec<(usize, LoadError)>>, LoadError> {
    let first = &series.files[kept[0]].header;
    let Plan {
        layout:
            Layout {
                geometry,
                order,
                mut warnings,
            },
        sources,
        conversion,
        channels,
    } = plan(series, kept)?;
    let modality = Modality::from_code(&first.modality);
    warnings.extend(conversion.note.clone());
    warnings.extend(
        kept.iter()
            .filter_map(|&i| series.files[i].header.frames_from_pixel_data.as_ref())
            .map(|note| format!("{note} (a file of the series)")),
    );
    let units = if channels == 3 {
        Units::Other("RGB".into())
    } else {
        conversion.units.clone()
    };

    let slice_len = geometry.dims[0] * geometry.dims[1] * channels;
    let bytes = (slice_len as u64) * (order.len() as u64) * 4;
    if bytes > MAX_VOLUME_BYTES {
        return Err(LoadError::TooLarge {
            bytes,
            limit: MAX_VOLUME_BYTES,
        });
    }
    let mut data = vec![0f32; slice_len * order.len()];
    // Hand each file the output slices it fills.
    let mut per_file: Vec<Vec<(usize, (f64, f64), &mut [f32])>> =
        (0..series.files.len()).map(|_| Vec::new()).collect();
    for (slot, chunk) in order.iter().zip(data.chunks_mut(slice_len)) {
        let source = &sources[*slot];
        let (slope, intercept) = if channels == 3 {
            (1.0, 0.0)
        } else {
            (
                source.rescale.0 * conversion.factor,
                source.rescale.1 * conversion.factor,
            )
        };
        per_file[source.file].push((source.frame, (slope, intercept), chunk));
    }
    let failed: Vec<(usize, LoadError)> = per_file
        .into_par_iter()
        .enumerate()
        .filter(|(_, slices)| !slices.is_empty())
        .filter_map(|(file, slices)| {
            fill_from_file(&series.files[file].path, &series.files[file].header, slices)
                .err()
                .map(|e| (file, e))
        })
        .collect();
    if !failed.is_empty() {
        return Ok(Err(failed));
    }

    let mut volume = Volume::with_channels(geometry, channels, data)?;
    volume.modality = modality;
    volume.units = units;
    volume.identity = first.identity.clone();
    volume.identity.instances = series
        .files
        .iter()
        .map(|f| InstanceRef {
            sop_class_uid: f.header.sop_class_uid.clone(),
            sop_instance_uid: f.header.sop_instance_uid.clone(),
        })
        .filter(|r| !r.sop_instance_uid.is_empty())
        .collect();
    volume.warnings = warnings;
    Ok(Ok(volume))
}

/// Decodes one file and writes the requested frames into their slices.
fn fill_from_file(
    path: &Path,
    header: &super::header::ImageHeader,
    slices: Vec<(usize, (f64, f64), &mut [f32])>,
) -> Result<(), LoadError> {
    let mut obj = open(path, false)?;
    // Re-read the header from the full object: the file may have changed since the scan.
    let ts = obj.meta().transfer_syntax().to_string();
    let fresh = super::header::ImageHeader::from_object(&obj, &ts, true)
        .map_err(|p| header_error(p, path))?;
    if fresh.rows != header.rows
        || fresh.columns != header.columns
        || fresh.number_of_frames != header.number_of_frames
        || fresh.samples_per_pixel != header.samples_per_pixel
    {
        return Err(LoadError::Decode {
            reason: "the file changed since it was scanned".into(),
            path: path.to_path_buf(),
        });
    }
    if fresh.frames_from_pixel_data.is_some() {
        // The codecs read NumberOfFrames themselves: give them the count that was used.
        obj.put(DataElement::new(
            tags::NUMBER_OF_FRAMES,
            VR::IS,
            PrimitiveValue::from(fresh.number_of_frames.to_string()),
        ));
    }
    let pixel_error = |problem| pixel_problem(problem, path);
    check_decodable(&obj, &fresh).map_err(pixel_error)?;
    if is_rle(&fresh.transfer_syntax) {
        return write_frames_rle(&obj, &fresh, slices).map_err(pixel_error);
    }
    // dicom-pixeldata pads each 1-bit frame to whole bytes, which the standard does not.
    if is_native_bit_packed(&obj, &fresh) {
        return write_frames_bit_packed(&obj, &fresh, slices).map_err(pixel_error);
    }
    let first_problem = match DecodedFrames::decode(&obj, &fresh) {
        Ok(decoded) => return write_frames(&decoded, slices).map_err(pixel_error),
        Err(problem) => problem,
    };
    // 12-bit JPEG: dicom-pixeldata's codec rejects it; ours decodes it.
    if is_sequential_jpeg(&fresh.transfer_syntax) && fresh.samples_per_pixel == 1 {
        return write_frames_jpeg12(&obj, &fresh, slices).map_err(|reason| {
            let first = match first_problem {
                PixelProblem::Decode(text) => text,
                other => format!("{other:?}"),
            };
            pixel_error(PixelProblem::Decode(format!(
                "{first}; the fallback decoder failed too: {reason}"
            )))
        });
    }
    // BitsAllocated 1 in an encapsulated syntax (JPEG 2000 segmentations): the codestream
    // holds one sample of 1–8 bits per pixel, which the codecs decode into bytes when the
    // object says 8; dicom-pixeldata refuses the 1 as it stands.
    if fresh.bits_allocated == 1 {
        obj.put(DataElement::new(
            tags::BITS_ALLOCATED,
            VR::US,
            PrimitiveValue::from(8u16),
        ));
        let decoded =
            DecodedFrames::decode(&obj, &fresh).map_err(|_| pixel_error(first_problem))?;
        return write_frames(&decoded, slices).map_err(pixel_error);
    }
    // A known encoder quirk can be repaired; then decode once more.
    if !strip_jpeg_ls_padding(&mut obj, fresh.number_of_frames) {
        return Err(pixel_error(first_problem));
    }
    let decoded = DecodedFrames::decode(&obj, &fresh).map_err(|_| pixel_error(first_problem))?;
    write_frames(&decoded, slices).map_err(pixel_error)
}

/// Writes the requested frames of a decoded object into their output slices.
fn write_frames(
    decoded: &DecodedFrames<'_>,
    slices: Vec<(usize, (f64, f64), &mut [f32])>,
) -> Result<(), PixelProblem> {
    for (frame, (slope, intercept), out) in slices {
        decoded.write_frame(frame, slope, intercept, out)?;
    }
    Ok(())
}

fn pixel_problem(problem: PixelProblem, path: &Path) -> LoadError {
    let path = path.to_path_buf();
    match problem {
        PixelProblem::UnsupportedTransferSyntax { uid, name } => {
            LoadError::UnsupportedTransferSyntax { uid, name, path }
        }
        PixelProblem::Implausible(reason) => LoadError::Implausible { reason, path },
        PixelProblem::Decode(reason) => LoadError::Decode { reason, path },
    }
}
