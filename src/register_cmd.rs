//! `dualmine register` (rigid Mattes-MI registration → a transform file) and
//! `dualmine resample` (a study on another's grid, optionally through a transform).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use dualmine::export::{Derivation, SeriesOptions, write_series};
use dualmine::io::transform::{self, TransformNotes};
use dualmine::io::{self, InputKind};
use dualmine::volume::Volume;
use dualmine::volume::register::{self as registration, Options, Registration, Start};
use dualmine::volume::resample::{IDENTITY, Interpolation, background_of, resample_transformed};
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

/// How a study is named in transform files and descriptions.
pub fn describe(v: &Volume) -> String {
    format!(
        "{} \"{}\" (series {})",
        v.modality, v.identity.series_description, v.identity.series_instance_uid
    )
}

/// Registers `moving` onto `fixed`, printing the outcome.
pub fn register(fixed: &Volume, moving: &Volume, options: &Options) -> Result<Registration> {
    let start = Instant::now();
    let found = registration::register(fixed, moving, options).context("registering")?;
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

pub fn run_register(args: &RegisterArgs) -> Result<()> {
    if !args.force && args.output.exists() {
        bail!(
            "{} exists (use --force to replace it)",
            args.output.display()
        );
    }
    let fixed = io::load(&args.fixed, None).context("loading the fixed study")?;
    let moving = io::load(&args.moving, None).context("loading the moving study")?;
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

/// `moving` on `fixed`'s grid through `transform` (identity when `None`).
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

pub fn run_resample(args: &ResampleArgs) -> Result<()> {
    let moving = io::load(&args.moving, None).context("loading the moving study")?;
    let fixed = io::load(&args.like, None).context("loading the study to take the grid of")?;
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
        write_series(&resampled, &args.output, &options)?;
    }
    println!("wrote {}", args.output.display());
    Ok(())
}

fn is_nifti(path: &Path) -> bool {
    io::input_kind(path) == InputKind::Nifti
}
