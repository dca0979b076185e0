//! Vendor series from dicom2nifti's test suite against its ground-truth NIfTI volumes: after
//! reorienting ours onto theirs, same shape, affine within 1e-3 mm, same voxel values.
//! Skips with a printed reason when the shared data is absent.

mod common;

use std::path::Path;

use dualmine::io;
use dualmine::volume::reorient::{self, AxisMap};

/// Compares one series with its ground truth; returns a description of the mismatch.
fn compare(series: &Path, truth: &Path, scratch: &Path) -> Result<(), String> {
    let ours = io::load(series, None).map_err(|e| format!("load: {e}"))?;
    // Go through our own NIfTI writer and reader, as `dualmine convert` does.
    let written = scratch.join("ours.nii.gz");
    io::nifti::write(&ours, &written, true).map_err(|e| format!("write: {e}"))?;
    let ours = io::nifti::read(&written).map_err(|e| format!("read back: {e}"))?;
    let truth = io::nifti::read(truth).map_err(|e| format!("ground truth: {e}"))?;
    let map = AxisMap::between(&ours.geometry, &truth.geometry).ok_or_else(|| {
        format!(
            "axes do not match: {:?} vs {:?}",
            ours.geometry, truth.geometry
        )
    })?;
    let ours = reorient::apply(&ours, map);
    if ours.geometry.dims != truth.geometry.dims || ours.channels != truth.channels {
        return Err(format!(
            "shape {:?}×{} vs {:?}×{}",
            ours.geometry.dims, ours.channels, truth.geometry.dims, truth.channels
        ));
    }
    let (a, b) = (ours.geometry.affine_lps(), truth.geometry.affine_lps());
    for r in 0..3 {
        for c in 0..4 {
            if (a[r][c] - b[r][c]).abs() > 1e-3 {
                return Err(format!("affine differs at [{r}][{c}]: {a:?} vs {b:?}"));
            }
        }
    }
    let mut worst = 0.0f32;
    for (x, y) in ours.data.iter().zip(&truth.data) {
        let tolerance = 1e-5 * y.abs().max(1.0);
        if (x - y).abs() > tolerance {
            worst = worst.max((x - y).abs());
        }
    }
    if worst > 0.0 {
        return Err(format!("voxel values differ by up to {worst}"));
    }
    Ok(())
}

#[test]
fn every_series_with_a_ground_truth_matches_it() {
    let Some(root) = common::shared_data("dicom/dicom2nifti") else {
        return;
    };
    let scratch = tempfile::tempdir().expect("temp dir");
    let mut checked = 0;
    let mut failures = Vec::new();
    for truth in common::files_under(&root) {
        let name = truth.to_string_lossy().to_string();
        let Some(series) = name.strip_suffix("_ground_truth.nii.gz") else {
            continue;
        };
        let series = Path::new(series);
        if !series.is_dir() {
            continue;
        }
        checked += 1;
        match compare(series, &truth, scratch.path()) {
            Ok(()) => println!(
                "ok   {}",
                series.strip_prefix(&root).unwrap_or(series).display()
            ),
            Err(problem) => failures.push(format!(
                "{}: {problem}",
                series.strip_prefix(&root).unwrap_or(series).display()
            )),
        }
    }
    assert!(checked >= 15, "only {checked} ground truths found");
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
