//! Writers of results: DICOM series written atomically, one file per slice (or one
//! multi-frame NM object).

pub mod dicom_series;
pub mod png;
pub mod uid;

pub use dicom_series::{ExportError, PetDoseTags, SeriesOptions, write_series};
