//! `dualmine eval`: fuses every AANLIB test pair of a task with W-DUALMINE and the classical
//! baselines, scores them with the MODEL.md protocol next to the published peers' released
//! results, and prints a markdown table (mean ± std over the pairs); `--csv` writes every
//! number. A second table says how local each fusion is (issue 16's locality residual) and,
//! for the model, how much its finest reliability map spreads and what replacing every map
//! by 0.5 changes. `--split validation` scores the validation pairs instead (no peers there):
//! the split every training choice is made on.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rayon::prelude::*;

use dualmine::baselines::{Baseline, Plane};
use dualmine::fusion::fuser::{Backend, Fuser};
use dualmine::fusion::images::{FusedImage, fuse_image_pair};
use dualmine::fusion::network::local::LocalWeights;
use dualmine::fusion::network::model::DualMineConfig;
use dualmine::fusion::shipped;
use dualmine::io::aanlib::{Pair, Split, Task, split_pairs};
use dualmine::io::image2d::{as_image8, read, to_gray8};
use dualmine::metrics::{
    GrayImage, METRIC_NAMES, MetricSet, Scores, Summary, foreground, locality_residual,
    mean_absolute_difference, mean_and_std, percentile_span, score,
};
use dualmine::volume::Volume;
use dualmine::volume::colour::fuse_luminance;

use super::pipeline::pet_ct_slices;
use super::progress::Progress;
use super::train::tasks_named;

/// The published peers whose released results are scored.
pub const PEERS: [&str; 3] = ["AdaFuse", "ASFE-Fusion", "TEA-Net"];

/// The command's arguments.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// ct-mri, pet-mri, spect-mri, all (the three benchmark tasks) or pet-ct (the slices of
    /// a PET/CT study folder, --studies).
    #[arg(long, default_value = "all")]
    pub task: String,
    /// For --task pet-ct: a folder holding CT/ and PET/ of one session (kept out of training).
    #[arg(long, default_value = "../shared/data/dicom/sts/STS_002")]
    pub studies: PathBuf,
    /// The shared data folder (holds aanlib/ and peers/).
    #[arg(long, default_value = "../shared/data")]
    pub data: PathBuf,
    /// Trained weights: one file for every task, or a folder holding
    /// `wdualmine-<config>-<task>.bpk` (or `wdualmine-<config>-all.bpk`).
    #[arg(long, default_value = "assets")]
    pub weights: PathBuf,
    #[arg(long, default_value = shipped::CONFIG, value_parser = ["tiny", "tiny-local", "base"])]
    pub config: String,
    #[arg(long, default_value = "auto", value_parser = ["auto", "gpu", "cpu"])]
    pub backend: String,
    /// The detail control d of the model's row (0 faithful … 1 most local; default: the
    /// task's, `shipped::default_detail`). A model with the local part is also scored at
    /// d = 0, 0.25, 0.5, 0.75 and 1.
    #[arg(long, value_name = "D", value_parser = super::detail_value)]
    pub detail: Option<f32>,
    /// Run the model with this local part (`k0,k1,k2;τ0,τ1,τ2;c0,c1,c2;u`, `network::local`)
    /// instead of the one stored with its weights: how it is chosen on the validation split.
    #[arg(long)]
    pub local: Option<String>,
    /// Also write every mean and std as CSV (task, method, metric, mean, std).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Leave out FMI (the slowest metric, indicative only).
    #[arg(long)]
    pub no_fmi: bool,
    /// Write a grid of example pairs (two per task): A, B, fused, reliability and α maps.
    #[arg(long)]
    pub figure: Option<PathBuf>,
    /// test (the benchmark's test pairs, scored once per shipped model) or validation (the
    /// pairs carved from train/ on which every training choice is made; no peer results).
    #[arg(long, default_value = "test", value_parser = ["test", "validation"])]
    pub split: String,
    /// Run the model with this γ (the decoder's detail gain) instead of the one stored with
    /// its weights: how γ is chosen on the validation split.
    #[arg(long)]
    pub detail_gain: Option<f32>,
    /// Also score fused images made elsewhere (another method, or `dualmine fuse` run by
    /// hand): DIR/<CT-MRI|PET-MRI|SPECT-MRI>/<pair name>.png, one row named by DIR.
    #[arg(long, value_name = "DIR")]
    pub score: Vec<PathBuf>,
}

/// One row of a task's table.
#[derive(Clone)]
pub struct Row {
    pub method: String,
    pub scores: Vec<Scores>,
    /// The locality residual of each pair (grey levels).
    pub locality: Vec<f64>,
    /// The model's reliability span, and how far the fused image moves with every
    /// reliability map and with every mixer weight at 0.5 (grey levels), per pair.
    pub maps: Option<MapEffects>,
}

/// The locality residual of each fused image against its pair.
fn localities(fused: &[Volume], sources: &[Source]) -> Vec<f64> {
    fused
        .par_iter()
        .zip(sources)
        .map(|(f, s)| {
            locality_residual(as_image8(&s.a), as_image8(&s.b), as_image8(f)).unwrap_or(f64::NAN)
        })
        .collect()
}

/// One pair, read once: the sources and the gray images the metrics score.
struct Source {
    a: Volume,
    b: Volume,
    gray_a: GrayImage,
    gray_b: GrayImage,
}

impl Source {
    fn new(a: Volume, b: Volume) -> Result<Self> {
        let (gray_a, gray_b) = (to_gray8(&a)?, to_gray8(&b)?);
        Ok(Self {
            a,
            b,
            gray_a,
            gray_b,
        })
    }
}

/// What one table scores: a benchmark task's pairs (with the published peers' results on
/// the test split and any `--score` folders), or the PET–CT slices of a study folder.
struct Subject {
    /// The model's task name (`ct-mri`, …, `pet-ct`): weights and CSV rows.
    task: String,
    /// The table's heading, e.g. `CT-MRI (24 test pairs)`.
    heading: String,
    sources: Vec<Source>,
    /// Results made elsewhere, one row each.
    others: Vec<(String, Vec<Volume>)>,
}

impl Subject {
    /// A benchmark task in `split`.
    fn aanlib(data: &Path, task: Task, split: Split, given: &[PathBuf]) -> Result<Self> {
        let listed = split_pairs(&data.join("aanlib"), task, split)?;
        let sources = listed
            .iter()
            .map(|p: &Pair| Source::new(read(&p.a)?, read(&p.b)?))
            .collect::<Result<Vec<_>>>()?;
        let published = PEERS
            .iter()
            .filter(|_| split == Split::Test)
            .map(|peer| (peer.to_string(), data.join("peers").join(peer)));
        let given = given
            .iter()
            .map(|dir| (format!("{} (given)", dir.display()), dir.clone()));
        let mut others = Vec::new();
        for (method, root) in published.chain(given) {
            let folder = root.join(task.folder());
            let fused: Vec<Volume> = listed
                .iter()
                .map(|p| read(&folder.join(format!("{}.png", p.name))))
                .collect::<Result<_, _>>()
                .with_context(|| format!("reading {method}'s results"))?;
            others.push((method, fused));
        }
        Ok(Self {
            task: task.name().to_string(),
            heading: format!(
                "{} ({} {} pairs)",
                task.folder(),
                sources.len(),
                split.name()
            ),
            sources,
            others,
        })
    }

    /// The PET–CT slices of `folder` (`CT/` and `PET/` of one session).
    fn pet_ct(folder: &Path) -> Result<Self> {
        let sources = pet_ct_slices(folder)?
            .into_iter()
            .map(|pair| Source::new(pair.a, pair.b))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            task: "pet-ct".to_string(),
            heading: format!("PET-CT ({} slices of {})", sources.len(), folder.display()),
            sources,
            others: Vec::new(),
        })
    }
}

/// The weights file for task `task` (`ct-mri`, …), if any.
pub fn weights_for(weights: &Path, config: &str, task: &str) -> Option<PathBuf> {
    if weights.is_file() {
        return Some(weights.to_path_buf());
    }
    [task, "all"]
        .iter()
        .map(|t| weights.join(format!("wdualmine-{config}-{t}.bpk")))
        .find(|p| p.is_file())
}

/// A baseline applied with the same YCbCr protocol as the network.
fn fuse_baseline(method: Baseline, a: &Volume, b: &Volume) -> Result<Volume> {
    let [w, h, _] = a.geometry.dims;
    let (image, ()) = fuse_luminance(a, b, |ya, yb| {
        let fused = method.fuse(
            &Plane::new(w, h, ya.to_vec()),
            &Plane::new(w, h, yb.to_vec()),
        );
        Ok::<_, anyhow::Error>((fused.data, ()))
    })?;
    Ok(image)
}

/// A table's scored rows, and the network's results on its first `examples` pairs (with the
/// sources) for the figure.
pub struct TaskResult {
    pub rows: Vec<Row>,
    pub examples: Vec<Example>,
}

/// Scores every pair of `subject` for the results made elsewhere, the baselines and (when
/// given) the model.
fn evaluate(
    subject: Subject,
    fuser: Option<&Fuser>,
    set: MetricSet,
    examples: usize,
) -> Result<TaskResult> {
    let sources = &subject.sources;
    let row = |method: String, fused: Vec<Volume>| -> Result<Row> {
        let scores = fused
            .par_iter()
            .zip(sources)
            .map(|(f, s)| Ok(score(&s.gray_a, &s.gray_b, &to_gray8(f)?, set)?))
            .collect::<Result<Vec<Scores>>>()?;
        Ok(Row {
            method,
            scores,
            locality: localities(&fused, sources),
            maps: None,
        })
    };
    let mut rows = Vec::new();
    for (method, fused) in subject.others {
        rows.push(row(method, fused)?);
    }
    for method in Baseline::ALL {
        let fused: Vec<Volume> = sources
            .par_iter()
            .map(|s| fuse_baseline(method, &s.a, &s.b))
            .collect::<Result<_>>()?;
        rows.push(row(method.name().to_string(), fused)?);
    }
    let mut kept = Vec::new();
    if let Some(fuser) = fuser {
        // The detail controls to score: the model's own, and along the curve when it has a
        // local part; a curve point at the model's own d is fused once and gives both rows.
        let curve: &[f32] = if fuser.has_local_part() {
            &DETAIL_CURVE
        } else {
            &[]
        };
        let own = fuser.detail();
        let mut at_own = None;
        if !curve.contains(&own) {
            let label = format!("fuse {}", subject.heading);
            let (fused, effects, examples) = fuse_with_model(fuser, sources, &label, examples)?;
            kept = examples;
            at_own = Some(with_maps(row(MODEL_ROW.to_string(), fused)?, effects));
        }
        let mut curve_rows = Vec::new();
        for &d in curve {
            let mut at = fuser.clone();
            at.set_detail(d);
            let label = format!("fuse {} at d = {d}", subject.heading);
            let wanted = if d == own { examples } else { 0 };
            let (fused, effects, examples) = fuse_with_model(&at, sources, &label, wanted)?;
            let curve_row = with_maps(row(format!("W-DUALMINE d = {d}"), fused)?, effects);
            if d == own {
                kept = examples;
                at_own = Some(Row {
                    method: MODEL_ROW.to_string(),
                    ..curve_row.clone()
                });
            }
            curve_rows.push(curve_row);
        }
        rows.extend(at_own);
        rows.extend(curve_rows);
    }
    Ok(TaskResult {
        rows,
        examples: kept,
    })
}

/// `row` with the model's map effects.
fn with_maps(row: Row, effects: MapEffects) -> Row {
    Row {
        maps: Some(effects),
        ..row
    }
}

/// The model's row at the detail it runs with (the task's default unless `--detail`).
const MODEL_ROW: &str = "W-DUALMINE (this project)";

/// The detail controls at which a model with the local part is also scored (issue 36).
pub const DETAIL_CURVE: [f32; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

/// A pair's sources and the model's result on it (the figure's rows).
type Example = (Volume, Volume, FusedImage);

/// The model's fused images of every pair, what its maps do, and its results on the first
/// `examples` pairs (with the sources) for the figure.
fn fuse_with_model(
    fuser: &Fuser,
    sources: &[Source],
    label: &str,
    examples: usize,
) -> Result<(Vec<Volume>, MapEffects, Vec<Example>)> {
    let ablated = fuser.with_fixed_reliability(0.5);
    let mixed_evenly = fuser.with_fixed_alpha(0.5);
    let mut effects = MapEffects::default();
    let (mut fused, mut kept) = (Vec::new(), Vec::new());
    let mut progress = Progress::new(label, sources.len(), "pairs", 1);
    for (i, s) in sources.iter().enumerate() {
        let result = fuse_image_pair(fuser, &s.a, &s.b)?;
        let without_maps = fuse_image_pair(&ablated, &s.a, &s.b)?;
        let without_mixer = fuse_image_pair(&mixed_evenly, &s.a, &s.b)?;
        let mask = foreground(as_image8(&s.a), as_image8(&s.b));
        let span = percentile_span(&result.maps.reliability_a[0], &mask);
        effects.spans.push(span.map_or(f64::NAN, f64::from));
        let change = |other: &FusedImage| {
            mean_absolute_difference(&result.maps.fused, &other.maps.fused, &mask)
                .map_or(f64::NAN, |d| d * 255.0)
        };
        effects.reliability.push(change(&without_maps));
        effects.alpha.push(change(&without_mixer));
        if i < examples {
            fused.push(result.image.clone());
            kept.push((s.a.clone(), s.b.clone(), result));
        } else {
            fused.push(result.image);
        }
        progress.set(i + 1, "");
    }
    progress.finish();
    Ok((fused, effects, kept))
}

/// What the model's maps do, per pair: the finest reliability map's span, and the mean
/// change of the fused image (grey levels, foreground) with every reliability map and with
/// every mixer weight set to 0.5.
#[derive(Clone, Default)]
pub struct MapEffects {
    pub spans: Vec<f64>,
    pub reliability: Vec<f64>,
    pub alpha: Vec<f64>,
}

/// The markdown table of one subject.
fn markdown(heading: &str, rows: &[Row], set: MetricSet) -> String {
    let shown: Vec<usize> = (0..METRIC_NAMES.len())
        .filter(|&i| set == MetricSet::All || i < 10)
        .collect();
    let mut out = format!("### {heading}\n\n| Method |");
    for &i in &shown {
        let _ = write!(out, " {} |", METRIC_NAMES[i]);
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(shown.len()));
    out.push('\n');
    for row in rows {
        let summary = Summary::of(&row.scores);
        let _ = write!(out, "| {} |", row.method);
        for &i in &shown {
            let _ = write!(out, " {:.4} ± {:.3} |", summary.mean[i], summary.std[i]);
        }
        out.push('\n');
    }
    out
}

/// Mean ± std and minimum of per-pair values (NaN-free), as the locality table shows them.
fn spread(values: &[f64]) -> (f64, f64, f64) {
    let (mean, std) = mean_and_std(values.iter().copied());
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    (mean, std, min)
}

/// The locality table of one task: per method the locality residual; for the model also
/// the reliability span and the ablation (mean ± std, minimum over the pairs).
fn locality_markdown(heading: &str, rows: &[Row]) -> String {
    let mut out = format!(
        "#### {heading}: how local (grey levels; mean ± std, min over the pairs)\n\n\
         | Method | locality residual | reliability span (A, finest) | change with maps at 0.5 \
         | change with α at 0.5 |\n\
         |---|---|---|---|---|\n"
    );
    let cell = |values: &[f64]| {
        let (mean, std, min) = spread(values);
        format!("{mean:.2} ± {std:.2} (min {min:.2})")
    };
    for row in rows {
        let (span, change, alpha) = match &row.maps {
            Some(effects) => (
                cell(&effects.spans),
                cell(&effects.reliability),
                cell(&effects.alpha),
            ),
            None => ("–".to_string(), "–".to_string(), "–".to_string()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {span} | {change} | {alpha} |",
            row.method,
            cell(&row.locality)
        );
    }
    out
}

/// The model of `task` as the arguments say (weights, γ, local part, detail), or `None`
/// when no weights are found (the table then leaves the model row out).
fn model_for(args: &EvalArgs, config: &DualMineConfig, task: &str) -> Result<Option<Fuser>> {
    let Some(path) = weights_for(&args.weights, &args.config, task) else {
        eprintln!(
            "{task}: no trained weights under {} — the model row is left out",
            args.weights.display()
        );
        return Ok(None);
    };
    let mut fuser = Fuser::new(config, &path, Backend::parse(&args.backend))?;
    if let Some(gain) = args.detail_gain {
        fuser.set_detail_gain(gain);
    }
    if let Some(spec) = &args.local {
        let local = LocalWeights::parse(spec)
            .context("--local: k; τ; c (one number per scale each) and u (0 … 1)")?;
        if !fuser.set_local_weights(&local) {
            bail!(
                "--local: the {} configuration has no local part",
                args.config
            );
        }
    }
    fuser.set_detail(args.detail.unwrap_or(shipped::default_detail(task)));
    eprintln!(
        "{task}: {} (detail gain γ = {}, detail d = {}) on {}",
        path.display(),
        fuser.detail_gain(),
        fuser.detail(),
        fuser.description()
    );
    Ok(Some(fuser))
}

pub fn run(args: &EvalArgs) -> Result<()> {
    let config = DualMineConfig::named(&args.config);
    let set = if args.no_fmi {
        MetricSet::WithoutFmi
    } else {
        MetricSet::All
    };
    let split = Split::parse(&args.split).context("--split: test or validation")?;
    let mut csv = String::from("task,method,metric,mean,std\n");
    let mut figure_rows = Vec::new();
    let subjects: Vec<Subject> = if args.task.eq_ignore_ascii_case("pet-ct") {
        vec![Subject::pet_ct(&args.studies)?]
    } else {
        tasks_named(&args.task)?
            .into_iter()
            .map(|task| Subject::aanlib(&args.data, task, split, &args.score))
            .collect::<Result<_>>()?
    };
    for subject in subjects {
        let task = subject.task.clone();
        let fuser = model_for(args, &config, &task)?;
        let examples = if args.figure.is_some() { 2 } else { 0 };
        let heading = subject.heading.clone();
        let TaskResult { rows, examples } = evaluate(subject, fuser.as_ref(), set, examples)?;
        figure_rows.extend(examples);
        println!("{}", markdown(&heading, &rows, set));
        println!("{}", locality_markdown(&heading, &rows));
        for row in &rows {
            let summary = Summary::of(&row.scores);
            let mut numbers: Vec<(&str, f64, f64)> = METRIC_NAMES
                .iter()
                .enumerate()
                .map(|(i, name)| (*name, summary.mean[i], summary.std[i]))
                .collect();
            let mut add = |name, values: &[f64]| {
                let (mean, std, _) = spread(values);
                numbers.push((name, mean, std));
            };
            add("locality", &row.locality);
            if let Some(effects) = &row.maps {
                add("reliability_span", &effects.spans);
                add("ablation", &effects.reliability);
                add("alpha_ablation", &effects.alpha);
            }
            for (name, mean, std) in numbers {
                let _ = writeln!(csv, "{task},{},{name},{mean},{std}", row.method);
            }
        }
    }
    if let Some(path) = &args.figure {
        if figure_rows.is_empty() {
            eprintln!("no figure: it needs trained weights");
        } else {
            super::figure::write(&figure_rows, path)?;
            eprintln!(
                "wrote {} (columns: {})",
                path.display(),
                super::figure::COLUMNS.join(", ")
            );
        }
    }
    if let Some(path) = &args.csv {
        dualmine::io::atomic::write_atomically(path, true, |w| w.write_all(csv.as_bytes()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
