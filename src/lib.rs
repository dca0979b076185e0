//! dualmine: a radiology viewer that fuses two studies with the W-DUALMINE network.
//!
//! Layers, each importing only those below it (see ARCHITECTURE.md):
//! - [`volume`]: volumes in patient space (no framework);
//! - [`io`]: DICOM, NIfTI and PNG readers into volumes;
//! - [`export`]: writers of derived DICOM series;
//! - [`phantom`]: the procedural multi-modal head phantom (the built-in demo);
//! - [`app`]: the eframe/egui viewer.

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
