//! The `dualmine` command line: one module per command (view; info, convert and phantom;
//! fuse; register and resample; stats; pacs; train; eval), the pipeline steps they share in `pipeline`,
//! progress reporting in `progress`. `anyhow` errors end here; the library uses `thiserror`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};

#[cfg(feature = "fusion")]
mod eval;
#[cfg(feature = "fusion")]
mod figure;
#[cfg(feature = "fusion")]
mod fuse;
mod inspect;
mod pacs;
mod pipeline;
mod progress;
mod register;
mod stats;
#[cfg(feature = "fusion")]
mod train;
#[cfg(feature = "app")]
mod view;

#[cfg(feature = "app")]
use dualmine::app::Benchmark;

#[derive(Parser)]
#[command(
    name = "dualmine",
    version,
    about = "Fuse two medical studies with W-DUALMINE"
)]
struct Cli {
    /// What to do; with none, the viewer opens on the built-in phantom demo.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Open studies in the viewer (no study: the built-in phantom demo, MR + PET).
    #[cfg(feature = "app")]
    View {
        studies: Vec<PathBuf>,
        /// Measure frame times: scroll one slice per frame for N frames, print the median
        /// and worst frame time while fusing and after, and close.
        #[arg(long, value_name = "N")]
        benchmark_frames: Option<usize>,
        /// With --benchmark-frames: wait for fusion to finish before scrolling.
        #[arg(long)]
        benchmark_after_fusion: bool,
        /// With --benchmark-frames: first time what a reader waits for — the slice in view
        /// fused after the studies open, then a slice 150 away after a jump — then scroll N
        /// frames while fusing and N once fusion has finished.
        #[arg(
            long,
            requires = "benchmark_frames",
            conflicts_with = "benchmark_after_fusion"
        )]
        benchmark_reading: bool,
        /// Overlays to show, e.g. `fused,reliability-a,alpha-2` (layer names as in the panel,
        /// `-S` for scale S); the last one gets the right-drag's window/level.
        #[arg(long, value_delimiter = ',')]
        overlays: Vec<String>,
        /// Start with the fusion in three planes (axial, coronal, sagittal; key M).
        #[arg(long)]
        planes: bool,
        /// Start with the fusion beside the PET/SPECT maximum-intensity projection.
        #[arg(long, conflicts_with = "planes")]
        mip: bool,
        /// Reopen a saved session (its studies, view, VOIs and distances).
        #[arg(long, value_name = "FILE", conflicts_with = "studies")]
        session: Option<PathBuf>,
        /// Fuse at this detail control d (0 faithful … 1 most local detail) instead of the
        /// model's default; the fused layer's slider changes it.
        #[arg(long, value_name = "D", value_parser = detail_value)]
        detail: Option<f32>,
    },
    /// List the image series under a folder (or describe a NIfTI/PNG file).
    Info {
        path: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Load a series (DICOM folder, NIfTI or PNG) and write it as NIfTI (.nii or .nii.gz).
    Convert {
        input: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        /// Which series (1-based, as `info` numbers them) when the folder holds several.
        #[arg(long)]
        series: Option<usize>,
        /// Replace an existing output file.
        #[arg(long)]
        force: bool,
    },
    /// Fuse two studies with W-DUALMINE: two PNG images → a fused PNG; two DICOM series or
    /// NIfTI volumes (sharing a frame of reference) → the second resampled onto the first's
    /// grid and a fused NIfTI volume.
    #[cfg(feature = "fusion")]
    Fuse(fuse::FuseArgs),
    /// Register MOVING onto FIXED rigidly (Mattes mutual information, 4×/2×/1× pyramid) and
    /// write the transform as text.
    Register(register::RegisterArgs),
    /// Put MOVING on the grid of another study (through a transform from `register`, or
    /// shared patient coordinates) and write NIfTI or a DICOM series.
    Resample(register::ResampleArgs),
    /// Train W-DUALMINE on the AANLIB training pairs (composite loss of MODEL.md).
    #[cfg(feature = "fusion")]
    Train(train::TrainArgs),
    /// Average the weights of networks fine-tuned from one start with different seeds (a
    /// "model soup": less seed-to-seed variation than any one of them).
    #[cfg(feature = "fusion")]
    AverageWeights(train::AverageArgs),
    /// Give trained weights the local part that the detail control steers (`--config tiny`
    /// → `tiny-local`): k, τ and c per scale, chosen on the validation split with `eval --local`
    #[cfg(feature = "fusion")]
    SetLocal(train::SetLocalArgs),
    /// Score W-DUALMINE, the classical baselines and the published peers on the AANLIB test
    /// pairs (MODEL.md's protocol) and print markdown tables.
    #[cfg(feature = "fusion")]
    Eval(eval::EvalArgs),
    /// Statistics of a volume of interest in a study (sphere, box or grown region): max,
    /// mean, std, min, volume, and the 1 ml peak (SUVpeak for PET in SUV).
    Stats(stats::StatsArgs),
    /// Talk to a PACS: echo, find, get (into the cache), send; configured nodes and cache.
    Pacs(pacs::PacsArgs),
    /// Write the procedural head phantom (CT, MR T1, PET, SPECT) as DICOM series.
    Phantom {
        folder: PathBuf,
        /// A small phantom (48² × 16) instead of the demo size (128² × 48).
        #[arg(long)]
        small: bool,
        /// In-plane size of CT and MR (e.g. 512 for a full-size study); overrides --small.
        #[arg(long, value_parser = clap::value_parser!(u32).range(8..=1024))]
        matrix: Option<u32>,
        /// CT/MR slices (with --matrix; default 48).
        #[arg(long, default_value_t = 48, value_parser = clap::value_parser!(u32).range(4..=1024))]
        slices: u32,
    },
}

/// Parses the command line and runs the command.
pub fn run() -> Result<()> {
    let Some(command) = Cli::parse().command.or_else(default_command) else {
        bail!("built without the viewer: give a command (see --help)");
    };
    match command {
        #[cfg(feature = "app")]
        Command::View {
            studies,
            benchmark_frames,
            benchmark_after_fusion,
            benchmark_reading,
            overlays,
            planes,
            mip,
            session,
            detail,
        } => view::run(
            studies,
            benchmark_frames.map(|frames| Benchmark {
                frames,
                after_fusion: benchmark_after_fusion,
                reading: benchmark_reading,
            }),
            overlays,
            if planes {
                Some(dualmine::app::pane::Layout::Planes)
            } else if mip {
                Some(dualmine::app::pane::Layout::WithMip)
            } else {
                None
            },
            session,
            detail,
        ),
        Command::Info { path, json } => inspect::info(&path, json),
        Command::Convert {
            input,
            output,
            series,
            force,
        } => inspect::convert(&input, &output, series, force),
        #[cfg(feature = "fusion")]
        Command::Fuse(args) => fuse::run(&args),
        Command::Register(args) => register::run_register(&args),
        Command::Stats(args) => stats::run(&args),
        Command::Pacs(args) => pacs::run(&args),
        Command::Resample(args) => register::run_resample(&args),
        #[cfg(feature = "fusion")]
        Command::Train(args) => train::run(&args),
        #[cfg(feature = "fusion")]
        Command::AverageWeights(args) => train::average(&args),
        #[cfg(feature = "fusion")]
        Command::SetLocal(args) => train::set_local(&args),
        #[cfg(feature = "fusion")]
        Command::Eval(args) => eval::run(&args),
        Command::Phantom {
            folder,
            small,
            matrix,
            slices,
        } => inspect::phantom(&folder, small, matrix, slices),
    }
}

/// A detail control from the command line (`view`, `fuse`, `eval --detail`): a number from
/// 0 to 1.
#[cfg(feature = "fusion")]
fn detail_value(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(d) if (0.0..=1.0).contains(&d) => Ok(d),
        _ => Err(format!(
            "{text}: the detail control is a number from 0 to 1"
        )),
    }
}

/// With no command: the viewer on the demo (when built with it).
fn default_command() -> Option<Command> {
    #[cfg(feature = "app")]
    return Some(Command::View {
        studies: vec![],
        benchmark_frames: None,
        benchmark_after_fusion: false,
        benchmark_reading: false,
        overlays: vec![],
        planes: false,
        mip: false,
        session: None,
        detail: None,
    });
    #[cfg(not(feature = "app"))]
    return None;
}
