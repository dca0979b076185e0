//! DICOM input: scan folders into series, load a series into a patient-space volume.

mod assemble;
mod codestream;
mod fragments;
pub mod header;
mod jpeg12;
mod load;
mod open;
mod pixels;
mod precheck;
mod rle;
mod scan;
mod tags;
mod units;
mod unknown_vr;

pub use assemble::{Layout, layout};
pub use header::{FramePlane, ImageHeader};
pub use load::{MAX_VOLUME_BYTES, layout_of, load_series, units_of};
pub use scan::{ScanReport, Series, SeriesFile, SeriesSummary, files_under, scan};
pub use tags::parse_time_seconds;

use std::path::Path;

use crate::io::LoadError;
use crate::volume::Volume;

/// An error and its sources, joined: codec errors hide the useful part in a source.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}

/// Loads the one series under `path` (or series number `choice`, 1-based, in scan order).
pub fn load_path(path: &Path, choice: Option<usize>) -> Result<Volume, LoadError> {
    let report = scan(path)?;
    let count = report.series.len();
    let series = match (count, choice) {
        (0, _) => {
            let nothing = LoadError::NoSeries {
                path: path.to_path_buf(),
            };
            // For a single file, why it is not an image says more than "no series".
            let ignored = report.ignored.into_iter().next().filter(|_| path.is_file());
            return Err(report
                .failed
                .into_iter()
                .next()
                .or(ignored)
                .unwrap_or(nothing));
        }
        (1, None) => &report.series[0],
        (_, Some(n)) if (1..=count).contains(&n) => &report.series[n - 1],
        _ => {
            return Err(LoadError::SeveralSeries {
                count,
                path: path.to_path_buf(),
            });
        }
    };
    let mut volume = load_series(series)?;
    volume.warnings.extend(
        report
            .failed
            .iter()
            .map(|e| format!("a file under the folder was not read: {e}")),
    );
    Ok(volume)
}
