//! DICOM input: scan folders into series, load a series into a patient-space volume.

mod assemble;
pub mod header;
mod load;
mod open;
mod pixels;
mod precheck;
mod scan;
mod tags;
mod units;

pub use assemble::{Layout, layout};
pub use header::{FramePlane, ImageHeader};
pub use load::{MAX_VOLUME_BYTES, layout_of, load_series, units_of};
pub use scan::{ScanReport, Series, SeriesFile, SeriesSummary, scan};

use std::path::Path;

use crate::io::LoadError;
use crate::volume::Volume;

/// Loads the one series under `path` (or series number `choice`, 1-based, in scan order).
pub fn load_path(path: &Path, choice: Option<usize>) -> Result<Volume, LoadError> {
    let report = scan(path)?;
    let count = report.series.len();
    let series = match (count, choice) {
        (0, _) => {
            return Err(report
                .failed
                .into_iter()
                .next()
                .unwrap_or(LoadError::NoSeries {
                    path: path.to_path_buf(),
                }));
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
