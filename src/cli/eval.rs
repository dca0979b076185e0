//! `dualmine eval`: fuses every AANLIB test pair of a task with W-DUALMINE and the classical
//! baselines, scores them with the MODEL.md protocol next to the published peers' released
//! results, and prints a markdown table (mean ± std over the pairs); `--csv` writes every
//! number.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rayon::prelude::*;

use dualmine::baselines::{Baseline, Plane};
use dualmine::fusion::fuser::{Backend, Fuser};
use dualmine::fusion::images::{FusedImage, fuse_image_pair};
use dualmine::fusion::model::DualMineConfig;
use dualmine::io::aanlib::{Pair, Task, pairs};
use dualmine::io::image2d::{read, read_gray8, to_gray8};
use dualmine::metrics::{GrayImage, METRIC_NAMES, MetricSet, Scores, Summary, score};
use dualmine::volume::Volume;
use dualmine::volume::colour::fuse_luminance;

use super::progress::Progress;
use super::train::tasks_named;

/// The published peers whose released results are scored.
pub const PEERS: [&str; 2] = ["AdaFuse", "ASFE-Fusion"];

/// The command's arguments.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// ct-mri, pet-mri, spect-mri or all.
    #[arg(long, default_value = "all")]
    pub task: String,
    /// The shared data folder (holds aanlib/ and peers/).
    #[arg(long, default_value = "../shared/data")]
    pub data: PathBuf,
    /// Trained weights: one file for every task, or a folder holding
    /// `wdualmine-<config>-<task>.bpk` (or `wdualmine-<config>-all.bpk`).
    #[arg(long, default_value = "assets")]
    pub weights: PathBuf,
    #[arg(long, default_value = "tiny", value_parser = ["tiny", "base"])]
    pub config: String,
    #[arg(long, default_value = "auto", value_parser = ["auto", "gpu", "cpu"])]
    pub backend: String,
    /// Also write every mean and std as CSV (task, method, metric, mean, std).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Leave out FMI (the slowest metric, indicative only).
    #[arg(long)]
    pub no_fmi: bool,
    /// Write a grid of example pairs (two per task): A, B, fused, reliability and α maps.
    #[arg(long)]
    pub figure: Option<PathBuf>,
    /// Also score fused images made elsewhere (another method, or `dualmine fuse` run by
    /// hand): DIR/<CT-MRI|PET-MRI|SPECT-MRI>/<pair name>.png, one row named by DIR.
    #[arg(long, value_name = "DIR")]
    pub score: Vec<PathBuf>,
}

/// One row of a task's table.
pub struct Row {
    pub method: String,
    pub scores: Vec<Scores>,
}

/// The weights file for `task`, if any.
pub fn weights_for(weights: &Path, config: &str, task: Task) -> Option<PathBuf> {
    if weights.is_file() {
        return Some(weights.to_path_buf());
    }
    [task.name(), "all"]
        .iter()
        .map(|t| weights.join(format!("wdualmine-{config}-{t}.bpk")))
        .find(|p| p.is_file())
}

/// A baseline applied with the same YCbCr protocol as the network.
fn fuse_baseline(method: Baseline, a: &Volume, b: &Volume) -> Result<GrayImage> {
    let [w, h, _] = a.geometry.dims;
    let (image, ()) = fuse_luminance(a, b, |ya, yb| {
        let fused = method.fuse(
            &Plane::new(w, h, ya.to_vec()),
            &Plane::new(w, h, yb.to_vec()),
        );
        Ok::<_, anyhow::Error>((fused.data, ()))
    })?;
    Ok(to_gray8(&image)?)
}

/// A task's scored rows, and the network's results on its first `examples` pairs (with the
/// sources) for the figure.
pub struct TaskResult {
    pub rows: Vec<Row>,
    pub examples: Vec<(Volume, Volume, FusedImage)>,
}

/// Scores every test pair of `task` for the peers, the baselines and (when given) the model.
pub fn evaluate_task(
    data: &Path,
    task: Task,
    fuser: Option<&Fuser>,
    set: MetricSet,
    examples: usize,
    others: &[PathBuf],
) -> Result<TaskResult> {
    let test = pairs(&data.join("aanlib"), task, "test")?;
    // Each source is read once; the gray image the metrics score is derived from it.
    let sources: Vec<(Volume, Volume, GrayImage, GrayImage)> = test
        .iter()
        .map(|p: &Pair| -> Result<_> {
            let (a, b) = (read(&p.a)?, read(&p.b)?);
            let (ga, gb) = (to_gray8(&a)?, to_gray8(&b)?);
            Ok((a, b, ga, gb))
        })
        .collect::<Result<_>>()?;
    let score_all = |fused: Vec<GrayImage>| -> Result<Vec<Scores>> {
        fused
            .par_iter()
            .zip(&sources)
            .map(|(f, (_, _, ga, gb))| Ok(score(ga, gb, f, set)?))
            .collect()
    };
    let mut rows = Vec::new();
    let published = PEERS
        .iter()
        .map(|peer| (peer.to_string(), data.join("peers").join(peer)));
    let given = others
        .iter()
        .map(|dir| (format!("{} (given)", dir.display()), dir.clone()));
    for (method, root) in published.chain(given) {
        let folder = root.join(task.folder());
        let fused: Vec<GrayImage> = test
            .iter()
            .map(|p| read_gray8(&folder.join(format!("{}.png", p.name))))
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading {method}'s results"))?;
        rows.push(Row {
            method,
            scores: score_all(fused)?,
        });
    }
    for method in Baseline::ALL {
        let fused: Vec<GrayImage> = sources
            .par_iter()
            .map(|(a, b, _, _)| fuse_baseline(method, a, b))
            .collect::<Result<_>>()?;
        rows.push(Row {
            method: method.name().to_string(),
            scores: score_all(fused)?,
        });
    }
    let mut kept = Vec::new();
    if let Some(fuser) = fuser {
        let mut fused = Vec::with_capacity(sources.len());
        let label = format!("fuse {} test pairs", task.name());
        let mut progress = Progress::new(&label, sources.len(), "pairs", 1);
        for (i, (a, b, _, _)) in sources.iter().enumerate() {
            let result = fuse_image_pair(fuser, a, b)?;
            fused.push(to_gray8(&result.image)?);
            if i < examples {
                kept.push((a.clone(), b.clone(), result));
            }
            progress.set(i + 1, "");
        }
        progress.finish();
        rows.push(Row {
            method: "W-DUALMINE (this project)".to_string(),
            scores: score_all(fused)?,
        });
    }
    Ok(TaskResult {
        rows,
        examples: kept,
    })
}

/// The markdown table of one task.
pub fn markdown(task: Task, rows: &[Row], set: MetricSet) -> String {
    let shown: Vec<usize> = (0..METRIC_NAMES.len())
        .filter(|&i| set == MetricSet::All || i < 10)
        .collect();
    let count = rows.first().map_or(0, |r| r.scores.len());
    let mut out = format!("### {} ({count} test pairs)\n\n| Method |", task.folder());
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

pub fn run(args: &EvalArgs) -> Result<()> {
    let config = DualMineConfig::named(&args.config);
    let set = if args.no_fmi {
        MetricSet::WithoutFmi
    } else {
        MetricSet::All
    };
    let mut csv = String::from("task,method,metric,mean,std\n");
    let mut figure_rows = Vec::new();
    for task in tasks_named(&args.task)? {
        let fuser = match weights_for(&args.weights, &args.config, task) {
            Some(path) => {
                let fuser = Fuser::new(&config, &path, Backend::parse(&args.backend))?;
                eprintln!(
                    "{}: {} on {}",
                    task.name(),
                    path.display(),
                    fuser.description()
                );
                Some(fuser)
            }
            None => {
                eprintln!(
                    "{}: no trained weights under {} — the model row is left out",
                    task.name(),
                    args.weights.display()
                );
                None
            }
        };
        let examples = if args.figure.is_some() { 2 } else { 0 };
        let TaskResult { rows, examples } =
            evaluate_task(&args.data, task, fuser.as_ref(), set, examples, &args.score)?;
        figure_rows.extend(examples);
        println!("{}", markdown(task, &rows, set));
        for row in &rows {
            let summary = Summary::of(&row.scores);
            for (i, name) in METRIC_NAMES.iter().enumerate() {
                let _ = writeln!(
                    csv,
                    "{},{},{name},{},{}",
                    task.name(),
                    row.method,
                    summary.mean[i],
                    summary.std[i]
                );
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
