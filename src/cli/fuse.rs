//! `dualmine fuse`: fuse a PNG pair into a PNG, or two volumes into a NIfTI volume.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::pipeline::{self, PacsTarget, load_study, onto_grid, send_to_pacs};
use super::progress::Progress;
use dualmine::export::fusion_series::{
    FusionExport, Meaning, OutputSeries, describe, write_fusion,
};
use dualmine::export::png::{SliceRendering, write_png, write_slices};
use dualmine::fusion::fuser::{
    Backend, Fuser, FusionMaps, FusionResult, output_kinds, output_modality,
};
use dualmine::fusion::images::fuse_image_pair;
use dualmine::fusion::network::model::DualMineConfig;
use dualmine::fusion::shipped;
use dualmine::io::nifti::NiftiWriter;
use dualmine::io::{self, InputKind};
use dualmine::volume::Volume;
use dualmine::volume::colormap::ColorMap;
use dualmine::volume::intensity::Window;
use dualmine::volume::register::Options as RegisterOptions;
use dualmine::volume::resample::{Interpolation, onto_reference};

/// The command's arguments.
#[derive(clap::Args)]
pub struct FuseArgs {
    pub a: PathBuf,
    pub b: PathBuf,
    /// Output file: a PNG for a PNG pair, NIfTI (.nii / .nii.gz) for volumes.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Also (or instead) write the fusion of two volumes as derived DICOM series under this
    /// folder (FUSED/, and with --maps one series per map), in the first study's study.
    #[arg(long, value_name = "DIR")]
    pub dicom: Option<PathBuf>,
    /// With --dicom: send the derived series to this PACS node (a configured name, or
    /// `AE@host:port`, or a DICOMweb URL) once written.
    #[arg(long, value_name = "NODE", requires = "dicom")]
    pub pacs: Option<String>,
    /// Also (or instead) write the fused volume's slices as PNG under this folder.
    #[arg(long, value_name = "DIR")]
    pub png: Option<PathBuf>,
    /// With --png: raw 16-bit gray (fused 0..1 → 0..65535) instead of 8-bit as displayed.
    #[arg(long)]
    pub png_16bit: bool,
    /// With --dicom: replace patient identity and remap every UID (consistently).
    #[arg(long)]
    pub anonymize: bool,
    /// Register the second study onto the first (rigid, Mattes MI) before fusing: for
    /// studies from different sessions (different frames of reference).
    #[arg(long, conflicts_with = "transform")]
    pub register: bool,
    /// With --register: affine (12 degrees of freedom) instead of rigid.
    #[arg(long, requires = "register")]
    pub affine: bool,
    /// Put the second study on the first through this transform (from `dualmine register`).
    #[arg(long)]
    pub transform: Option<PathBuf>,
    /// Trained weights (Burnpack file); without it, the weights built into the program.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Which built-in model fuses (without `--weights`): ct-mri, pet-mri, spect-mri, pet-ct,
    /// pet-mr-body, or auto — from the studies' modalities (PET + CT → pet-ct; PET + MR →
    /// pet-mr-body when a study names a body part other than the head, else pet-mri;
    /// NM/SPECT → spect-mri, else ct-mri); a gray PNG pair is ct-mri, a colour PNG pair needs
    /// `--task pet-mri` or `--task spect-mri`.
    #[arg(long, default_value = "auto", value_parser = clap::builder::PossibleValuesParser::new(
        std::iter::once("auto").chain(shipped::TASKS)
    ))]
    pub task: String,
    /// Network size the `--weights` file was trained for.
    #[arg(long, default_value = shipped::CONFIG, value_parser = ["tiny", "tiny-local", "base"])]
    pub config: String,
    /// The detail control d: 0 keeps the fusion faithful (close to the average), 1 adds the
    /// most local detail (each pixel leaning to the source its reliability map trusts).
    /// Default: the task's, chosen on the validation split (`assets/MODEL_CARD.md`).
    #[arg(long, value_name = "D", value_parser = super::detail_value)]
    pub detail: Option<f32>,
    /// Device: a hardware GPU when present (auto), or force gpu / cpu.
    #[arg(long, default_value = "auto", value_parser = ["auto", "gpu", "cpu"])]
    pub backend: String,
    /// Also write the reliability maps and the mixer weights of every scale.
    #[arg(long)]
    pub maps: bool,
    /// Replace existing outputs.
    #[arg(long)]
    pub force: bool,
}

/// Pixels fused per batch (whole slices, 1 to 4 of them): two 512² slices, four 256² ones.
/// The network's intermediate tensors grow with the batch, and they are most of what a
/// streamed fusion holds beside the two studies. Measured on a 512² × 300 pair: 4 slices
/// a batch 4 min 38 s and 1.72 GB peak, 2 slices 4 min 14 s and 1.32 GB; on STS_001's
/// 174 × 158 slices, 16 a batch was no faster than 4 and held twice the memory.
const BATCH_PIXELS: usize = 1 << 19;

/// `OUT.png` + `_suffix` → `OUT_suffix.png` (same for `.nii.gz`).
fn sibling(output: &Path, suffix: &str) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, extension) = match name.find('.') {
        Some(dot) => (&name[..dot], &name[dot..]),
        None => (name.as_str(), ""),
    };
    output.with_file_name(format!("{stem}_{suffix}{extension}"))
}

/// The built-in model for `requested`, or for "auto" the one the studies' modalities name.
fn shipped_task(requested: &str, studies: [&Volume; 2]) -> Result<&'static str> {
    if let Some(task) = shipped::TASKS.iter().find(|t| **t == requested) {
        return Ok(task);
    }
    shipped::task_for(studies).with_context(|| {
        format!(
            "a colour image pair can be PET–MRI or SPECT–MRI: say which with --task pet-mri or \
             --task spect-mri (the built-in models: {})",
            shipped::TASKS.join(", ")
        )
    })
}

pub fn run(args: &FuseArgs) -> Result<()> {
    let images = [&args.a, &args.b]
        .iter()
        .all(|p| io::input_kind(p) == InputKind::Image);
    if images {
        fuse_images(args)
    } else {
        fuse_volumes(args)
    }
}

/// The network chosen by `--weights`/`--task` (from the studies' modalities for auto), at
/// the detail control `--detail` or the task's default.
fn make_fuser(args: &FuseArgs, studies: [&Volume; 2]) -> Result<Fuser> {
    let backend = Backend::parse(&args.backend);
    // With `--weights` the task only names the default detail control (none for a colour
    // PNG pair without `--task`).
    let task = shipped_task(&args.task, studies);
    let known_task = task.as_ref().ok().copied();
    let (mut fuser, mut line) = match &args.weights {
        Some(weights) => (
            Fuser::new(&DualMineConfig::named(&args.config), weights, backend)?,
            format!("W-DUALMINE {} from {}", args.config, weights.display()),
        ),
        None => {
            let task = task?;
            (
                Fuser::shipped(task, backend)?,
                format!("built-in W-DUALMINE {} {task}", shipped::CONFIG),
            )
        }
    };
    if fuser.has_local_part() {
        let default = shipped::default_detail(known_task.unwrap_or_default());
        let d = args.detail.unwrap_or(default);
        fuser.set_detail(d);
        line += &format!(", detail d = {d}");
    } else if args.detail.is_some() {
        bail!(
            "--detail: the {} network has no local part to steer",
            args.config
        );
    }
    eprintln!("model: {line}");
    eprintln!("device: {}", fuser.description());
    Ok(fuser)
}

/// A PNG pair into a PNG (and with `--maps` one PNG per map beside it).
fn fuse_images(args: &FuseArgs) -> Result<()> {
    if args.dicom.is_some() || args.png.is_some() {
        bail!("--dicom and --png are for volumes; a PNG pair is written with -o OUT.png");
    }
    let Some(output) = &args.output else {
        bail!("give -o OUT.png for the fused image");
    };
    let a = io::load(&args.a, None)?;
    let b = io::load(&args.b, None)?;
    let fuser = make_fuser(args, [&a, &b])?;
    let fused = fuse_image_pair(&fuser, &a, &b)?;
    write_png(&fused.image, output, args.force)?;
    if args.maps {
        let mut map = fused.image.clone();
        map.channels = 1;
        let kinds = output_kinds(fuser.scales());
        // Every output but the first, the fused image (written above in its colours).
        for ((name, _), values) in kinds.iter().zip(fused.maps.outputs()).skip(1) {
            map.data = values.iter().map(|v| v * 255.0).collect();
            write_png(&map, &sibling(output, name), args.force)?;
        }
    }
    println!("wrote {}", output.display());
    Ok(())
}

/// Two studies, the second put on the first's grid, fused into NIfTI (streamed), PNG
/// slices and/or derived DICOM series.
fn fuse_volumes(args: &FuseArgs) -> Result<()> {
    if args.output.is_none() && args.dicom.is_none() && args.png.is_none() {
        bail!("say where to write: -o OUT.nii.gz, --dicom DIR and/or --png DIR");
    }
    let first = load_study(&args.a, "the first study")?;
    let loaded = load_study(&args.b, "the second study")?;
    if first.channels != 1 || loaded.channels != 1 {
        bail!("volume fusion needs gray studies");
    }
    // Registered (or given) transform, or shared patient coordinates.
    let registration = if args.register {
        let options = RegisterOptions {
            affine: args.affine,
            ..RegisterOptions::default()
        };
        let found = pipeline::register(&first, &loaded, &options)?;
        Some((found.transform, Some(found.mutual_information)))
    } else if let Some(path) = &args.transform {
        let (t, notes) = dualmine::io::transform::read(path)?;
        Some((t, notes.metric))
    } else {
        None
    };
    // The first study is the reference grid; the second is resampled onto it (the copy
    // keeps the study's identity), and only that copy is kept.
    let second = match &registration {
        Some((t, _)) => onto_grid(&loaded, &first, Some(t))?,
        None => onto_reference(&loaded, &first, Interpolation::Linear)?,
    };
    drop(loaded);
    let fuser = make_fuser(args, [&first, &second])?;
    let Some(result) = fuse_streamed(args, &fuser, [&first, &second])? else {
        return Ok(());
    };
    if let Some(folder) = &args.png {
        write_png_slices(args, &result.fused, folder)?;
    }
    if let Some(folder) = &args.dicom {
        let mut model = match &args.weights {
            Some(w) => format!("weights {}", w.display()),
            None => format!(
                "built-in {} weights",
                shipped_task(&args.task, [&first, &second])?
            ),
        };
        if fuser.has_local_part() {
            model += &format!(", detail d = {}", fuser.detail());
        }
        if let Some((t, metric)) = &registration {
            model += &format!("; the second {}", t.note(*metric));
        }
        write_dicom(args, &result, [&first, &second], &model, folder)?;
    }
    Ok(())
}

/// Runs the network over the pair (on the first study's grid), streaming the NIfTI outputs
/// to disk batch by batch; returns what `--png` and `--dicom` need (the fused volume, and
/// the maps for `--dicom --maps`), or `None` when they are not asked for.
fn fuse_streamed(
    args: &FuseArgs,
    fuser: &Fuser,
    studies: [&Volume; 2],
) -> Result<Option<FusionResult>> {
    // The network takes the functional or CT study as A and the MR (or the CT) as B.
    let [a, b] = if shipped::swapped_for_network(studies) {
        [studies[1], studies[0]]
    } else {
        studies
    };
    let mut files = match &args.output {
        Some(output) => nifti_outputs(output, a, fuser.scales(), args.maps, args.force)?,
        None => Vec::new(),
    };
    let keep_fused = args.png.is_some() || args.dicom.is_some();
    let keep_maps = args.dicom.is_some() && args.maps;
    let [nx, ny, nz] = a.geometry.dims;
    let mut kept = FusionMaps::with_capacity(
        if keep_maps { fuser.scales() } else { 0 },
        if keep_fused { nx * ny * nz } else { 0 },
    );
    let mut progress = Progress::new("fuse", nz, "slices", 1);
    let batch = (BATCH_PIXELS / (nx * ny).max(1)).clamp(1, 4);
    fuser.fuse_volumes_in_batches(a, b, batch, &mut |slices, maps| -> Result<bool> {
        for (file, values) in files.iter_mut().zip(maps.outputs()) {
            file.append(values)?;
        }
        progress.set(slices.end, "");
        if keep_fused {
            kept.append(if keep_maps { maps } else { maps.fused_only() });
        }
        Ok(true)
    })?;
    progress.finish();
    for file in files {
        file.finish()?;
    }
    if let Some(output) = &args.output {
        println!("wrote {}", output.display());
    }
    Ok(if keep_fused {
        Some(FusionResult::on_grid_of(a, kept)?)
    } else {
        None
    })
}

/// `--png DIR`: the fused volume's slices, 8-bit as displayed or raw 16-bit.
fn write_png_slices(args: &FuseArgs, fused: &Volume, folder: &Path) -> Result<()> {
    let rendering = if args.png_16bit {
        SliceRendering::Raw16 {
            low: 0.0,
            high: 1.0,
        }
    } else {
        SliceRendering::Displayed(Window::from_range(0.0, 1.0), ColorMap::Gray)
    };
    let files = write_slices(
        fused,
        folder,
        "fused",
        rendering,
        args.force,
        &mut |_, _| true,
    )?;
    println!(
        "wrote {} PNG slices under {}",
        files.len(),
        folder.display()
    );
    Ok(())
}

/// `--dicom DIR` (and `--pacs NODE`): the derived series in the first study's study.
fn write_dicom(
    args: &FuseArgs,
    result: &FusionResult,
    sources: [&Volume; 2],
    model: &str,
    folder: &Path,
) -> Result<()> {
    let outputs = fusion_outputs(result, sources, model, args.maps);
    let export = FusionExport {
        reference: sources[0],
        sources,
        outputs,
        displayed: None,
        anonymize: args.anonymize,
        overwrite: args.force,
    };
    let mut progress = Progress::new("write DICOM", 0, "files", 25);
    let files = write_fusion(&export, folder, &mut |done, total| {
        progress.report(done, total)
    })?;
    progress.finish();
    println!(
        "wrote {} DICOM files under {}",
        files.len(),
        folder.display()
    );
    if let Some(node) = &args.pacs {
        send_to_pacs(&PacsTarget::named(node), &files)?;
    }
    Ok(())
}

/// The NIfTI files a volume fusion streams into, in [`FusionMaps::outputs`]' order: `output`
/// for the fused image and, with `maps`, a sibling per map (`OUT_reliability_a_scale0.nii.gz`,
/// …), all on the grid of `a`. Existing files are refused before any fusing unless `force`.
fn nifti_outputs(
    output: &Path,
    a: &Volume,
    scales: usize,
    maps: bool,
    force: bool,
) -> Result<Vec<NiftiWriter>> {
    let kinds = output_kinds(scales);
    let count = if maps { kinds.len() } else { 1 };
    let modality = output_modality();
    kinds
        .into_iter()
        .take(count)
        .enumerate()
        .map(|(i, (name, units))| {
            let path = if i == 0 {
                output.to_path_buf()
            } else {
                sibling(output, &name)
            };
            let description = io::nifti::describe(&modality, &units);
            Ok(NiftiWriter::create(
                &path,
                &a.geometry,
                1,
                &description,
                force,
            )?)
        })
        .collect()
}

/// The series a fusion exports: the fused image, and with `maps` every map.
fn fusion_outputs<'a>(
    result: &'a FusionResult,
    sources: [&Volume; 2],
    model: &str,
    maps: bool,
) -> Vec<OutputSeries<'a>> {
    let output = |folder: String, what: &str, volume: &'a Volume, meaning| {
        let (description, derivation) = describe(what, sources, model, meaning);
        OutputSeries {
            folder,
            description,
            derivation,
            volume,
        }
    };
    let mut outputs = vec![output(
        "FUSED".into(),
        "fusion",
        &result.fused,
        Meaning::Fused,
    )];
    if maps {
        for s in 0..result.alpha.len() {
            outputs.push(output(
                format!("RELIABILITY_A_S{s}"),
                &format!("reliability of A, scale {s},"),
                &result.reliability_a[s],
                Meaning::Reliability {
                    study: 'A',
                    scale: s,
                },
            ));
            outputs.push(output(
                format!("RELIABILITY_B_S{s}"),
                &format!("reliability of B, scale {s},"),
                &result.reliability_b[s],
                Meaning::Reliability {
                    study: 'B',
                    scale: s,
                },
            ));
            outputs.push(output(
                format!("ALPHA_S{s}"),
                &format!("mixer alpha, scale {s},"),
                &result.alpha[s],
                Meaning::Alpha { scale: s },
            ));
        }
    }
    outputs
}
