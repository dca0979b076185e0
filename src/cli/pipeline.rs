//! Pipeline steps that several commands share: loading a study with its warnings shown,
//! registering one study onto another (with progress), putting a study onto another's grid,
//! and naming a study in transform files and descriptions.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use super::progress::Progress;
use dualmine::io;
use dualmine::volume::Volume;
use dualmine::volume::register::{self as registration, Options, Registration};
use dualmine::volume::resample::{IDENTITY, Interpolation, background_of, resample_transformed};
use dualmine::volume::transform::Transform;

/// Loads the study at `path` (`what` names it in errors) and prints its warnings.
pub fn load_study(path: &Path, what: &str) -> Result<Volume> {
    let volume = io::load(path, None).with_context(|| format!("loading {what}"))?;
    for warning in &volume.warnings {
        eprintln!("warning ({what}): {warning}");
    }
    Ok(volume)
}

/// How a study is named in transform files and descriptions.
pub fn describe(v: &Volume) -> String {
    format!(
        "{} \"{}\" (series {})",
        v.modality, v.identity.series_description, v.identity.series_instance_uid
    )
}

/// Registers `moving` onto `fixed` with progress by pyramid level, printing the outcome.
pub fn register(fixed: &Volume, moving: &Volume, options: &Options) -> Result<Registration> {
    let start = Instant::now();
    let mut progress = Progress::new("register", options.levels.len(), "levels", 1);
    let found = registration::register_with_progress(fixed, moving, options, &mut |done, _| {
        progress.set(done, "");
        true
    })
    .context("registering")?;
    progress.finish();
    let t = &found.transform;
    let affine = if t.is_rigid() {
        String::new()
    } else {
        format!(", scale {:.4?}, shear {:.4?}", t.scale, t.shear)
    };
    eprintln!(
        "registered in {:.1} s: rotation {:.2?}°, translation {:.2?} mm{affine}, Mattes MI \
         {:.4} ({} evaluations)",
        start.elapsed().as_secs_f64(),
        t.angles_deg,
        t.translation_mm,
        found.mutual_information,
        found.evaluations
    );
    Ok(found)
}

/// `moving` on `fixed`'s grid through `transform` (identity when `None`: shared patient
/// coordinates), trilinear, outside filled with `moving`'s background.
pub fn onto_grid(moving: &Volume, fixed: &Volume, transform: Option<&Transform>) -> Result<Volume> {
    let matrix = transform.map_or(IDENTITY, Transform::matrix);
    Ok(resample_transformed(
        moving,
        &fixed.geometry,
        &matrix,
        Interpolation::Linear,
        background_of(moving),
    )?)
}
