//! Writers of results: DICOM series written atomically, one file per slice (or one
//! multi-frame NM object).

pub mod derived;
pub mod dicom_series;
pub mod fusion_series;
pub mod png;
pub mod uid;

pub use derived::Derivation;
pub use dicom_series::{
    ExportError, PetDoseTags, SeriesOptions, write_series, write_series_with_progress,
};
