//! Writers of results: DICOM series written atomically, one file per slice (or one
//! multi-frame NM object).

pub mod derived;
pub mod dicom_series;
pub mod displayed_series;
mod elements;
pub mod fusion_series;
pub mod pet_modules;
pub mod png;
pub mod series_options;
pub mod uid;

pub use derived::Derivation;
pub use dicom_series::{ExportError, write_series, write_series_with_progress};
pub use pet_modules::PetDoseTags;
pub use series_options::SeriesOptions;
