//! `dualmine register` (rigid or affine Mattes-MI registration → a transform file) and
//! `dualmine resample` (a study on another's grid, optionally through a transform).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::pipeline::{describe, load_study, onto_grid, register};
use super::progress::Progress;
use dualmine::export::{Derivation, SeriesOptions, write_series_with_progress};
use dualmine::io::transform::{self, TransformNotes};
use dualmine::io::{self, InputKind};
use dualmine::volume::register::{Options, Start};
use dualmine::volume::transform::Transform;

/// `dualmine register`'s arguments.
#[derive(clap::Args)]
pub struct RegisterArgs {
    pub fixed: PathBuf,
    pub moving: PathBuf,
    /// Where to write the transform (text).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Pyramid levels, coarsest first (voxel edges as multiples of the fixed study's finest).
    #[arg(long, value_delimiter = ',', default_value = "4,2,1")]
    pub levels: Vec<usize>,
    /// Start from the centres of mass, the grid centres, or identity (same frame of
    /// reference).
    #[arg(long, default_value = "com", value_parser = ["com", "grid", "identity"])]
    pub start: String,
    /// Also fit scales and shears (affine, 12 degrees of freedom) on the two finest levels.
    #[arg(long)]
    pub affine: bool,
    /// Replace an existing transform file.
    #[arg(long)]
    pub force: bool,
}

/// `dualmine resample`'s arguments.
#[derive(clap::Args)]
pub struct ResampleArgs {
    pub moving: PathBuf,
    /// The study whose grid the result takes.
    #[arg(long)]
    pub like: PathBuf,
    /// A transform from `dualmine register` (fixed → moving); without it, patient
    /// coordinates are taken as shared.
    #[arg(long)]
    pub transform: Option<PathBuf>,
    /// A NIfTI file (.nii, .nii.gz) or a folder for a DICOM series.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Replace existing output.
    #[arg(long)]
    pub force: bool,
}

pub fn run_register(args: &RegisterArgs) -> Result<()> {
    if !args.force && args.output.exists() {
        bail!(
            "{} exists (use --force to replace it)",
            args.output.display()
        );
    }
    let fixed = load_study(&args.fixed, "the fixed study")?;
    let moving = load_study(&args.moving, "the moving study")?;
    let shared = &fixed.identity.frame_of_reference_uid;
    if !shared.is_empty() && *shared == moving.identity.frame_of_reference_uid {
        eprintln!(
            "note: both studies share frame of reference {shared}: their patient coordinates \
             already agree, so the registration only refines (for example patient motion)"
        );
    }
    let centre = dualmine::volume::register::grid_centre(&fixed.geometry);
    let start = match args.start.as_str() {
        "grid" => Start::GridCentre,
        "identity" => Start::Given(Transform::identity_about(centre)),
        _ => Start::CentreOfMass,
    };
    let options = Options {
        levels: args.levels.clone(),
        start,
        affine: args.affine,
        ..Options::default()
    };
    let found = register(&fixed, &moving, &options)?;
    let notes = TransformNotes {
        fixed: describe(&fixed),
        moving: describe(&moving),
        metric: Some(found.mutual_information),
    };
    transform::write(&found.transform, &notes, &args.output, args.force)?;
    println!("wrote {}", args.output.display());
    Ok(())
}

pub fn run_resample(args: &ResampleArgs) -> Result<()> {
    let moving = load_study(&args.moving, "the moving study")?;
    let fixed = load_study(&args.like, "the study to take the grid of")?;
    let transform = match &args.transform {
        Some(path) => Some(transform::read(path)?),
        None => None,
    };
    let resampled = onto_grid(&moving, &fixed, transform.as_ref().map(|t| &t.0))?;
    if is_nifti(&args.output) {
        io::nifti::write(&resampled, &args.output, args.force)?;
    } else {
        let how = match &transform {
            Some((t, notes)) => t.note(notes.metric),
            None => "through shared patient coordinates".into(),
        };
        let mut options = SeriesOptions::new_study(
            &moving.identity.patient_name,
            &moving.identity.patient_id,
            &format!("{} resampled", moving.identity.series_description)
                .chars()
                .take(64)
                .collect::<String>(),
        );
        if !moving.identity.study_instance_uid.is_empty() {
            options.study_instance_uid = moving.identity.study_instance_uid.clone();
        }
        if !fixed.identity.frame_of_reference_uid.is_empty() {
            options.frame_of_reference_uid = fixed.identity.frame_of_reference_uid.clone();
        }
        options.overwrite = args.force;
        options.derivation = Some(Derivation {
            description: format!(
                "{} resampled onto the grid of {} ({how})",
                describe(&moving),
                describe(&fixed)
            ),
            sources: vec![moving.identity.clone()],
        });
        let mut progress = Progress::new("write DICOM", 0, "files", 25);
        write_series_with_progress(&resampled, &args.output, &options, &mut |done, total| {
            progress.report(done, total)
        })?;
        progress.finish();
    }
    println!("wrote {}", args.output.display());
    Ok(())
}

fn is_nifti(path: &Path) -> bool {
    io::input_kind(path) == InputKind::Nifti
}
