//! Finding image series in a folder tree: every readable DICOM image file, grouped by
//! SeriesInstanceUID and split further where frame of reference, orientation, image size or
//! samples per pixel differ (such files cannot share one volume grid).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use rayon::prelude::*;
use serde::Serialize;

use super::header::{HeaderProblem, ImageHeader};
use super::open::open;
use crate::io::LoadError;

/// One image file of a series, with its header.
#[derive(Clone, Debug)]
pub struct SeriesFile {
    pub path: PathBuf,
    pub header: ImageHeader,
}

/// Files that together make one volume.
#[derive(Clone, Debug)]
pub struct Series {
    pub files: Vec<SeriesFile>,
}

/// A short description of a series, for tables and pickers.
#[derive(Clone, Debug, Serialize)]
pub struct SeriesSummary {
    pub modality: String,
    pub description: String,
    pub series_number: Option<i32>,
    pub series_instance_uid: String,
    pub frame_of_reference_uid: String,
    pub files: usize,
    pub frames: usize,
    pub columns: u32,
    pub rows: u32,
    pub pixel_spacing: Option<[f64; 2]>,
    pub transfer_syntax: String,
    /// The transfer syntax's name ("unknown" when not registered).
    pub transfer_syntax_name: String,
    pub units: Option<String>,
    pub folder: PathBuf,
}

impl Series {
    /// The first file's header (a series is never empty).
    pub fn first(&self) -> &ImageHeader {
        &self.files[0].header
    }

    /// A one-line description.
    pub fn summary(&self) -> SeriesSummary {
        let h = self.first();
        SeriesSummary {
            modality: h.modality.clone(),
            description: h.identity.series_description.clone(),
            series_number: h.identity.series_number,
            series_instance_uid: h.identity.series_instance_uid.clone(),
            frame_of_reference_uid: h.identity.frame_of_reference_uid.clone(),
            files: self.files.len(),
            frames: self
                .files
                .iter()
                .map(|f| f.header.number_of_frames as usize)
                .sum(),
            columns: h.columns,
            rows: h.rows,
            pixel_spacing: h.frames.iter().find_map(|f| f.pixel_spacing),
            transfer_syntax: h.transfer_syntax.clone(),
            transfer_syntax_name: TransferSyntaxRegistry
                .get(&h.transfer_syntax)
                .map_or("unknown", |ts| ts.name())
                .to_string(),
            units: h.pet.units.clone(),
            folder: self.files[0]
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        }
    }
}

/// The outcome of scanning: the series found and the files that could not be used.
#[derive(Debug, Default)]
pub struct ScanReport {
    pub series: Vec<Series>,
    /// DICOM-looking files that failed, with the reason.
    pub failed: Vec<LoadError>,
    /// Files that are not DICOM images at all (text, NIfTI, DICOMDIR, reports…), with why.
    pub ignored: Vec<LoadError>,
}

/// Folders nested deeper than this are not searched (guards against link loops).
const MAX_DEPTH: usize = 32;

/// Scans a file or folder tree for DICOM image series.
pub fn scan(path: &Path) -> Result<ScanReport, LoadError> {
    let paths = files_under(path)?;
    let outcomes: Vec<Result<SeriesFile, LoadError>> =
        paths.par_iter().map(|p| read_header(p)).collect();
    let mut report = ScanReport::default();
    let mut groups: BTreeMap<String, Vec<SeriesFile>> = BTreeMap::new();
    for outcome in outcomes {
        match outcome {
            Ok(file) => groups
                .entry(group_key(&file.header))
                .or_default()
                .push(file),
            Err(error @ LoadError::NotAnImage { .. }) => report.ignored.push(error),
            Err(LoadError::NotDicom { path, reason }) if !looks_like_dicom(&path) => {
                report.ignored.push(LoadError::NotDicom { path, reason })
            }
            Err(error) => report.failed.push(error),
        }
    }
    report.series = groups.into_values().map(|files| Series { files }).collect();
    report.series.sort_by(|a, b| {
        let (a, b) = (a.first(), b.first());
        (
            a.identity.series_number,
            &a.identity.series_description,
            &a.identity.series_instance_uid,
        )
            .cmp(&(
                b.identity.series_number,
                &b.identity.series_description,
                &b.identity.series_instance_uid,
            ))
    });
    Ok(report)
}

/// Reads one file's header, as a series member.
pub fn read_header(path: &Path) -> Result<SeriesFile, LoadError> {
    let obj = open(path, true)?;
    let ts = obj.meta().transfer_syntax().to_string();
    let header = match ImageHeader::from_object(&obj, &ts, false) {
        // A malformed NumberOfFrames is replaced by what the pixel data holds: read it all.
        Err(HeaderProblem::Unreadable(u)) if u.tag == tags::NUMBER_OF_FRAMES => {
            let whole = open(path, false)?;
            ImageHeader::from_object(&whole, &ts, true)
        }
        other => other,
    }
    .map_err(|p| header_error(p, path))?;
    check_size_plausible(&header, path)?;
    Ok(SeriesFile {
        path: path.to_path_buf(),
        header,
    })
}

/// Refuses headers that declare far more pixels than the file could hold: uncompressed
/// pixels must fit in the file; compressed ones within 1000:1.
fn check_size_plausible(header: &ImageHeader, path: &Path) -> Result<(), LoadError> {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let declared = header.decoded_bytes();
    let compressed = header.transfer_syntax.trim_end_matches('\0') == "1.2.840.10008.1.2.1.99"
        || TransferSyntaxRegistry
            .get(&header.transfer_syntax)
            .is_none_or(|ts| ts.is_encapsulated_pixel_data());
    let limit = if compressed {
        super::pixels::max_decoded_from(size)
    } else if header.bits_allocated == 1 {
        size.saturating_mul(8)
    } else {
        size
    };
    if declared > limit {
        return Err(LoadError::Implausible {
            reason: format!(
                "{}×{}×{} frames declared in a file of {size} bytes",
                header.columns, header.rows, header.number_of_frames
            ),
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Turns a header problem into a load error naming the file.
pub fn header_error(problem: HeaderProblem, path: &Path) -> LoadError {
    let path = path.to_path_buf();
    match problem {
        HeaderProblem::NotAnImage => LoadError::NotAnImage { path },
        HeaderProblem::Missing(name) => LoadError::MissingAttribute { name, path },
        HeaderProblem::Invalid(name, value) => LoadError::InvalidAttribute { name, value, path },
        HeaderProblem::Unreadable(value) => LoadError::UnreadableAttribute {
            name: value.name,
            detail: value.detail,
            path,
        },
    }
}

/// Files whose name or first bytes say DICOM: their failures are reported, while other
/// files that fail to parse are just not DICOM.
fn looks_like_dicom(path: &Path) -> bool {
    let by_name = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "dcm" | "dicom" | "ima"));
    let by_magic = std::fs::File::open(path)
        .and_then(|mut f| {
            use std::io::{Read, Seek, SeekFrom};
            let mut magic = [0u8; 4];
            f.seek(SeekFrom::Start(128))?;
            f.read_exact(&mut magic)?;
            Ok(&magic == b"DICM")
        })
        .unwrap_or(false);
    let extensionless = path.extension().is_none();
    by_name || by_magic || extensionless
}

/// The grouping key: files with equal keys can share a grid.
fn group_key(h: &ImageHeader) -> String {
    let orientation = h
        .orientation()
        .map(|o| {
            o.iter()
                .flatten()
                .map(|v| format!("{:.3}", v + 0.0))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    format!(
        "{}|{}|{}x{}x{}|{}",
        h.identity.series_instance_uid,
        h.identity.frame_of_reference_uid,
        h.columns,
        h.rows,
        h.samples_per_pixel,
        orientation
    )
}

/// Every file under `path` (itself, when a file), hidden entries skipped, at most
/// `MAX_DEPTH` folders deep, sorted: the files a scan reads, and what `pacs send` sends.
pub fn files_under(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    collect_files(path, 0, &mut files)?;
    files.sort();
    Ok(files)
}

fn collect_files(path: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let entries = std::fs::read_dir(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let child = entry.path();
        let hidden = child
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if !hidden {
            // A child that vanished or cannot be read is skipped, not fatal to the scan.
            let _ = collect_files(&child, depth + 1, out);
        }
    }
    Ok(())
}
