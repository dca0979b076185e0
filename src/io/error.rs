//! The errors of the io layer. Each names the problem first and the file last (a path may
//! carry patient data, so it comes where a reader can cut it off).

use std::path::PathBuf;
use thiserror::Error;

use crate::volume::VolumeError;

/// Why an input could not be read.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("cannot read: {source} ({})", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not a readable DICOM file: {reason} ({})", path.display())]
    NotDicom { path: PathBuf, reason: String },
    #[error("not an image (no pixel data) ({})", path.display())]
    NotAnImage { path: PathBuf },
    #[error("missing required attribute {name} ({})", path.display())]
    MissingAttribute { name: &'static str, path: PathBuf },
    #[error("invalid attribute {name}: {value} ({})", path.display())]
    InvalidAttribute {
        name: &'static str,
        value: String,
        path: PathBuf,
    },
    #[error("unreadable attribute {name}: {detail} ({})", path.display())]
    UnreadableAttribute {
        name: String,
        detail: String,
        path: PathBuf,
    },
    #[error("unsupported transfer syntax {name} ({uid}) ({})", path.display())]
    UnsupportedTransferSyntax {
        uid: String,
        name: String,
        path: PathBuf,
    },
    #[error("corrupt or truncated DICOM: {reason} ({})", path.display())]
    Corrupt { reason: String, path: PathBuf },
    #[error("implausible image size: {reason} ({})", path.display())]
    Implausible { reason: String, path: PathBuf },
    #[error("cannot decode pixel data: {reason} ({})", path.display())]
    Decode { reason: String, path: PathBuf },
    #[error("no image series found ({})", path.display())]
    NoSeries { path: PathBuf },
    #[error("{count} series found; choose one with --series (1..={count}) ({})", path.display())]
    SeveralSeries { count: usize, path: PathBuf },
    #[error("series cannot be assembled into a volume: {reason} (series {series})")]
    Assembly { reason: String, series: String },
    #[error("every file of the series failed; first error: {first}")]
    AllFilesFailed { first: Box<LoadError> },
    #[error("the volume would need {bytes} bytes, more than the {limit} allowed")]
    TooLarge { bytes: u64, limit: u64 },
    #[error("NIfTI: {reason} ({})", path.display())]
    Nifti { reason: String, path: PathBuf },
    #[error("image: {reason} ({})", path.display())]
    Image { reason: String, path: PathBuf },
    #[error("cannot write: {source} ({})", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Volume(#[from] VolumeError),
}
