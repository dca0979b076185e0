//! The `dualmine` command line: view, inspect, convert, generate, fuse, train and evaluate.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

#[cfg(feature = "fusion")]
mod eval;
#[cfg(feature = "fusion")]
mod figure;
#[cfg(feature = "fusion")]
mod fuse;
mod register_cmd;
#[cfg(feature = "fusion")]
mod train;
use clap::{Parser, Subcommand};

#[cfg(feature = "app")]
use dualmine::app::{Benchmark, Source, ViewerApp};
use dualmine::io::{self, dicom};
use dualmine::phantom::{self, PhantomSize};
use dualmine::volume::stats;

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
        /// Overlays to show, e.g. `fused,reliability-a,alpha` (layer names as in the panel).
        #[arg(long, value_delimiter = ',')]
        overlays: Vec<String>,
        /// Start with the fusion in three planes (axial, coronal, sagittal; key M).
        #[arg(long)]
        planes: bool,
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
    Register(register_cmd::RegisterArgs),
    /// Put MOVING on the grid of another study (through a transform from `register`, or
    /// shared patient coordinates) and write NIfTI or a DICOM series.
    Resample(register_cmd::ResampleArgs),
    /// Train W-DUALMINE on the AANLIB training pairs (composite loss of MODEL.md).
    #[cfg(feature = "fusion")]
    Train(train::TrainArgs),
    /// Score W-DUALMINE, the classical baselines and the published peers on the AANLIB test
    /// pairs (MODEL.md's protocol) and print markdown tables.
    #[cfg(feature = "fusion")]
    Eval(eval::EvalArgs),
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

fn main() -> std::process::ExitCode {
    env_logger::init();
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the cause chain without resolving a backtrace.
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let Some(command) = Cli::parse().command.or_else(default_command) else {
        bail!("built without the viewer: give a command (see --help)");
    };
    match command {
        #[cfg(feature = "app")]
        Command::View {
            studies,
            benchmark_frames,
            benchmark_after_fusion,
            overlays,
            planes,
        } => view(
            studies,
            benchmark_frames.map(|frames| Benchmark {
                frames,
                after_fusion: benchmark_after_fusion,
            }),
            overlays,
            planes,
        ),
        Command::Info { path, json } => info(&path, json),
        Command::Convert {
            input,
            output,
            series,
            force,
        } => convert(&input, &output, series, force),
        #[cfg(feature = "fusion")]
        Command::Fuse(args) => fuse::run(&args),
        Command::Register(args) => register_cmd::run_register(&args),
        Command::Resample(args) => register_cmd::run_resample(&args),
        #[cfg(feature = "fusion")]
        Command::Train(args) => train::run(&args),
        #[cfg(feature = "fusion")]
        Command::Eval(args) => eval::run(&args),
        Command::Phantom {
            folder,
            small,
            matrix,
            slices,
        } => {
            let size = match (matrix, small) {
                (Some(matrix), _) => PhantomSize {
                    matrix: matrix as usize,
                    slices: slices as usize,
                },
                (None, true) => PhantomSize::SMALL,
                (None, false) => PhantomSize::DEMO,
            };
            let studies = phantom::write_demo(&folder, size).context("writing the phantom")?;
            println!(
                "wrote {}, {}, {}, {}",
                studies.ct.display(),
                studies.mr.display(),
                studies.pet.display(),
                studies.spect.display()
            );
            Ok(())
        }
    }
}

/// With no command: the viewer on the demo (when built with it).
fn default_command() -> Option<Command> {
    #[cfg(feature = "app")]
    return Some(Command::View {
        studies: vec![],
        benchmark_frames: None,
        benchmark_after_fusion: false,
        overlays: vec![],
        planes: false,
    });
    #[cfg(not(feature = "app"))]
    return None;
}

#[cfg(feature = "app")]
fn view(
    studies: Vec<PathBuf>,
    benchmark: Option<Benchmark>,
    overlays: Vec<String>,
    planes: bool,
) -> Result<()> {
    let studies = if studies.is_empty() {
        let folder = std::env::temp_dir().join("dualmine-demo");
        let demo = phantom::write_demo(&folder, PhantomSize::DEMO).context("writing the demo")?;
        vec![demo.mr, demo.pet]
    } else {
        studies
    };
    let sources = studies.into_iter().map(Source::Path).collect();
    let mut options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1280.0, 720.0])
            .with_title("dualmine"),
        ..Default::default()
    };
    // A hardware GPU is created once, by burn, and handed to eframe as well.
    let (device, description) = match dualmine::app::gpu::share_hardware_gpu() {
        Some(shared) => {
            options.wgpu_options.wgpu_setup = shared.setup;
            (shared.device, shared.description)
        }
        None => (
            burn::tensor::Device::flex(),
            "CPU (burn flex): no hardware GPU adapter found".to_string(),
        ),
    };
    eprintln!("fusion runs on {description}");
    eframe::run_native(
        "dualmine",
        options,
        Box::new(move |cc| {
            let mut app = ViewerApp::new(cc, sources)
                .with_compute(device, description)
                .with_overlays(overlays);
            if let Some(benchmark) = benchmark {
                app = app.with_benchmark(benchmark);
            }
            if planes {
                app.settings.layout = dualmine::app::pane::Layout::Planes;
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the viewer could not start: {e}"))
}

fn info(path: &Path, json: bool) -> Result<()> {
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

fn convert(input: &Path, output: &Path, series: Option<usize>, force: bool) -> Result<()> {
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
