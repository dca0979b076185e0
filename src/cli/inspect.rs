//! `dualmine info`, `convert` and `phantom`: describe, convert and generate studies.

use std::path::Path;

use anyhow::{Context, Result, bail};

use dualmine::io::{self, dicom};
use dualmine::phantom::{self, PhantomSize};
use dualmine::volume::stats;

/// `dualmine phantom`: writes the procedural head as DICOM series.
pub fn phantom(folder: &Path, small: bool, matrix: Option<u32>, slices: u32) -> Result<()> {
    let size = match (matrix, small) {
        (Some(matrix), _) => PhantomSize {
            matrix: matrix as usize,
            slices: slices as usize,
        },
        (None, true) => PhantomSize::SMALL,
        (None, false) => PhantomSize::DEMO,
    };
    let studies = phantom::write_demo(folder, size).context("writing the phantom")?;
    println!(
        "wrote {}, {}, {}, {}",
        studies.ct.display(),
        studies.mr.display(),
        studies.pet.display(),
        studies.spect.display()
    );
    Ok(())
}

/// `dualmine info`: a table of the series under a folder, or one file described.
pub fn info(path: &Path, json: bool) -> Result<()> {
    if io::input_kind(path) != io::InputKind::Dicom {
        let volume = io::load(path, None)?;
        let g = &volume.geometry;
        println!(
            "{}: {}×{}×{} voxels, {} channel(s), spacing {:.4}×{:.4}×{:.4} mm, orientation {}",
            path.display(),
            g.dims[0],
            g.dims[1],
            g.dims[2],
            volume.channels,
            g.spacing[0],
            g.spacing[1],
            g.spacing[2],
            g.orientation_code()
        );
        return Ok(());
    }
    let report = dicom::scan(path)?;
    if json {
        let rows: Vec<_> = report.series.iter().map(|s| s.summary()).collect();
        let failed: Vec<String> = report.failed.iter().map(|e| e.to_string()).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "series": rows,
                "failed": failed,
                "ignored": report.ignored.len(),
            }))?
        );
        return Ok(());
    }
    if report.series.is_empty() {
        if let Some(first) = report.failed.first() {
            bail!(
                "no image series found; {} file(s) failed, e.g. {first}",
                report.failed.len()
            );
        }
        bail!("no image series found under {}", path.display());
    }
    println!(
        "{:>3}  {:<4} {:<28} {:>6} {:>9}  {:<19} {:<7} {:<24} frame of reference",
        "#", "mod", "description", "slices", "size", "spacing (mm)", "units", "transfer syntax"
    );
    for (index, series) in report.series.iter().enumerate() {
        let summary = series.summary();
        // Slice spacing needs the layout: load the headers' geometry only.
        let spacing = dicom::layout_of(series)
            .map(|g| {
                format!(
                    "{:.3}×{:.3}×{:.3}",
                    g.spacing[0], g.spacing[1], g.spacing[2]
                )
            })
            .unwrap_or_else(|e| format!("({e})"));
        let units = dicom::units_of(series);
        println!(
            "{:>3}  {:<4} {:<28} {:>6} {:>9}  {:<19} {:<7} {:<24} {}",
            index + 1,
            summary.modality,
            truncate(&summary.description, 28),
            summary.frames,
            format!("{}×{}", summary.columns, summary.rows),
            spacing,
            units.to_string(),
            truncate(&summary.transfer_syntax_name, 24),
            summary.frame_of_reference_uid
        );
    }
    if !report.failed.is_empty() {
        println!("{} file(s) could not be read:", report.failed.len());
        for error in &report.failed {
            println!("  {error}");
        }
    }
    Ok(())
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(width - 1).collect();
        short.push('…');
        short
    }
}

/// `dualmine convert`: one series to NIfTI.
pub fn convert(input: &Path, output: &Path, series: Option<usize>, force: bool) -> Result<()> {
    let volume = io::load(input, series)?;
    for warning in &volume.warnings {
        eprintln!("warning: {warning}");
    }
    io::nifti::write(&volume, output, force)?;
    let g = &volume.geometry;
    let range = stats::stats(&volume)
        .map(|s| format!("{:.2}..{:.2} {}", s.min, s.max, volume.units))
        .unwrap_or_default();
    println!(
        "wrote {}: {}×{}×{} {} {range}",
        output.display(),
        g.dims[0],
        g.dims[1],
        g.dims[2],
        volume.modality
    );
    Ok(())
}
