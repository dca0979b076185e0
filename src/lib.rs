//! dualmine: a radiology viewer that fuses two studies with the W-DUALMINE network.
//!
//! Layers, each importing only those below it (ARCHITECTURE.md draws them):
//! - [`app`]: the eframe/egui viewer (feature `app`);
//! - [`phantom`]: the procedural multi-modal head phantom, written as DICOM (the demo);
//! - [`export`]: writers of PNG slices and derived DICOM series;
//! - [`pacs`]: PACS networking (DIMSE and DICOMweb) and the cache of retrieved studies;
//! - [`fusion`]: the W-DUALMINE network on burn, its engine, weights and training (feature
//!   `fusion`);
//! - [`io`]: DICOM, NIfTI and PNG readers into volumes, saved sessions and transforms;
//! - [`volume`]: volumes in patient space, resampling, registration, VOIs (no framework);
//! - [`metrics`]: fusion quality metrics on plain 8-bit images (no framework);
//! - [`baselines`]: classical fusion methods on plain planes (no framework).
//!
//! The binary (`main.rs`) adds the command line, `cli`, on top of them all.

// Small fixed-size matrix code reads best with index loops.
#![allow(clippy::needless_range_loop)]

#[cfg(feature = "app")]
pub mod app;
pub mod baselines;
pub mod export;
#[cfg(feature = "fusion")]
pub mod fusion;
pub mod io;
pub mod metrics;
pub mod pacs;
pub mod phantom;
pub mod volume;
