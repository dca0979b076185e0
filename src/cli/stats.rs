//! `dualmine stats`: the statistics of one volume of interest in a study, headless — a
//! sphere or box in patient millimetres, or a region grown from a point by a threshold —
//! as a table or JSON (`volume::voi` computes them).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use dualmine::io;
use dualmine::io::session_file::{SavedSession, SavedVoi};
use dualmine::volume::voi::{self, Region, Shape, Statistics, Threshold};

/// Grown regions stop at this many voxels (about 2 l at 2 mm).
const GROW_LIMIT: usize = 250_000;

#[derive(clap::Args)]
pub struct StatsArgs {
    /// The study (DICOM folder or file, NIfTI); not with --session.
    #[arg(required_unless_present = "session")]
    study: Option<PathBuf>,
    /// Every VOI of a saved viewer session, on each of its studies (each on its own grid).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["study", "sphere", "cuboid", "grow"])]
    session: Option<PathBuf>,
    /// Which series (1-based, as `info` numbers them) when the folder holds several.
    #[arg(long)]
    series: Option<usize>,
    /// A sphere: centre and radius in patient millimetres (LPS), `X,Y,Z,R`.
    #[arg(long, value_delimiter = ',', num_args = 1, allow_hyphen_values = true)]
    sphere: Option<Vec<f64>>,
    /// A box: two opposite corners in patient millimetres, `X0,Y0,Z0,X1,Y1,Z1`.
    #[arg(
        long = "box",
        value_delimiter = ',',
        num_args = 1,
        allow_hyphen_values = true
    )]
    cuboid: Option<Vec<f64>>,
    /// A region grown from the voxel at `X,Y,Z` (patient millimetres) over the voxels that
    /// pass --threshold.
    #[arg(long, value_delimiter = ',', num_args = 1, allow_hyphen_values = true)]
    grow: Option<Vec<f64>>,
    /// For --grow: a value in the study's units (`2.5`) or a percentage of the local
    /// maximum (`41%`).
    #[arg(long, default_value = "41%")]
    threshold: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `dualmine stats`.
pub fn run(args: &StatsArgs) -> Result<()> {
    if let Some(session) = &args.session {
        return run_session(session, args.json);
    }
    let study = args.study.as_ref().context("give a study or --session")?;
    let volume =
        io::load(study, args.series).with_context(|| format!("loading {}", study.display()))?;
    let (description, region) = match (&args.sphere, &args.cuboid, &args.grow) {
        (Some(s), None, None) => {
            let [x, y, z, r] = numbers::<4>(s, "--sphere X,Y,Z,R")?;
            let shape = Shape::Sphere {
                centre: [x, y, z],
                radius_mm: r,
            };
            let region = voi::shape_region(&volume.geometry, &shape)?;
            (
                format!("sphere at ({x}, {y}, {z}) mm, radius {r} mm"),
                region,
            )
        }
        (None, Some(b), None) => {
            let [x0, y0, z0, x1, y1, z1] = numbers::<6>(b, "--box X0,Y0,Z0,X1,Y1,Z1")?;
            let shape = Shape::Box {
                corner_a: [x0, y0, z0],
                corner_b: [x1, y1, z1],
            };
            let region = voi::shape_region(&volume.geometry, &shape)?;
            (
                format!("box ({x0}, {y0}, {z0}) to ({x1}, {y1}, {z1}) mm"),
                region,
            )
        }
        (None, None, Some(g)) => {
            let point = numbers::<3>(g, "--grow X,Y,Z")?;
            let Some(seed) = voxel_of(&volume, point) else {
                bail!(
                    "({}, {}, {}) mm is outside the study",
                    point[0],
                    point[1],
                    point[2]
                );
            };
            let threshold = parse_threshold(&args.threshold)?;
            let region = voi::grow_region(&volume, seed, threshold, GROW_LIMIT)?;
            (
                format!(
                    "region grown from ({}, {}, {}) mm at {}",
                    point[0], point[1], point[2], args.threshold
                ),
                region,
            )
        }
        _ => bail!("give exactly one of --sphere, --box or --grow"),
    };
    let stats = voi::statistics(&volume, &region).context("no voxel inside the VOI has a value")?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "voi": description,
                "clipped": region.clipped,
                "statistics": stats,
            }))?
        );
    } else {
        print!("{}", table(&description, &region, &stats));
    }
    Ok(())
}

/// `dualmine stats --session FILE`: every VOI of the session on each study it applies to
/// (spheres on both, grown regions on the study they were grown on), each on its own grid.
fn run_session(path: &std::path::Path, json: bool) -> Result<()> {
    let saved = SavedSession::read(path).map_err(anyhow::Error::msg)?;
    let mut rows = Vec::new();
    for (index, study) in saved.studies.iter().enumerate() {
        let side = if index == 0 { "A" } else { "B" };
        let volume = match io::load(&study.path, study.series) {
            Ok(volume) => volume,
            Err(e) => {
                eprintln!("study {side} ({}): {e}", study.path.display());
                continue;
            }
        };
        for voi in &saved.vois {
            let region = match voi {
                SavedVoi::Sphere {
                    centre_mm,
                    radius_mm,
                    ..
                } => voi::shape_region(
                    &volume.geometry,
                    &Shape::Sphere {
                        centre: *centre_mm,
                        radius_mm: *radius_mm,
                    },
                ),
                SavedVoi::Box {
                    low_mm, high_mm, ..
                } => voi::shape_region(
                    &volume.geometry,
                    &Shape::Box {
                        corner_a: *low_mm,
                        corner_b: *high_mm,
                    },
                ),
                SavedVoi::Grown {
                    seed_mm,
                    layer,
                    threshold,
                    ..
                } => {
                    if layer != side {
                        continue;
                    }
                    let Some(seed) = voxel_of(&volume, *seed_mm) else {
                        eprintln!("{}: its seed lies outside study {side}", voi.name());
                        continue;
                    };
                    voi::grow_region(&volume, seed, *threshold, GROW_LIMIT)
                }
            };
            let stats = region.map_err(|e| e.to_string()).and_then(|r| {
                voi::statistics(&volume, &r)
                    .map(|s| (r.clipped, s))
                    .ok_or_else(|| "no voxel with a value".to_string())
            });
            match stats {
                Ok((clipped, stats)) => rows.push((voi.name().to_string(), side, clipped, stats)),
                Err(e) => eprintln!("{} on study {side}: {e}", voi.name()),
            }
        }
    }
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(name, side, clipped, stats)| {
                serde_json::json!({"voi": name, "study": side, "clipped": clipped, "statistics": stats})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("voi\tstudy\tunits\tvoxels\tml\tmean\tmax\tpeak (1 ml)");
        for (name, side, clipped, s) in &rows {
            println!(
                "{name}\t{side}\t{}\t{}\t{:.3}{}\t{:.4}\t{:.4}\t{}",
                s.units,
                s.voxels,
                s.volume_ml,
                if *clipped { " (clipped)" } else { "" },
                s.mean,
                s.max,
                s.peak.map_or("—".into(), |p| format!("{p:.4}"))
            );
        }
    }
    Ok(())
}

/// The voxel holding patient point `mm`, if inside the study.
fn voxel_of(volume: &dualmine::volume::Volume, mm: [f64; 3]) -> Option<[usize; 3]> {
    let index = volume.geometry.world_to_index(mm)?;
    let dims = volume.dims();
    let rounded = [0, 1, 2].map(|a| index[a].round());
    (0..3)
        .all(|a| rounded[a] >= 0.0 && rounded[a] < dims[a] as f64)
        .then(|| rounded.map(|v| v as usize))
}

/// The human-readable table.
fn table(description: &str, region: &Region, stats: &Statistics) -> String {
    let units = &stats.units;
    let peak_name = if units == "SUV" {
        "SUVpeak (1 ml)"
    } else {
        "peak (1 ml mean)"
    };
    let mut out = format!("VOI: {description}\n");
    if region.clipped {
        out.push_str("  (clipped: part of it lies outside the study)\n");
    }
    out.push_str(&format!("voxels   {}\n", stats.voxels));
    out.push_str(&format!("volume   {:.3} ml\n", stats.volume_ml));
    for (name, value) in [
        ("max", stats.max),
        ("mean", stats.mean),
        ("std", stats.std),
        ("min", stats.min),
    ] {
        out.push_str(&format!("{name:<8} {value:.4} {units}\n"));
    }
    if let Some(peak) = stats.peak {
        out.push_str(&format!("{peak_name} {peak:.4} {units}\n"));
    }
    out
}

fn numbers<const N: usize>(values: &[f64], form: &str) -> Result<[f64; N]> {
    let array: [f64; N] = values
        .try_into()
        .map_err(|_| anyhow::anyhow!("expected {form} ({N} numbers)"))?;
    if array.iter().any(|v| !v.is_finite()) {
        bail!("{form}: every number must be finite");
    }
    Ok(array)
}

fn parse_threshold(text: &str) -> Result<Threshold> {
    let text = text.trim();
    if let Some(percent) = text.strip_suffix('%') {
        let p: f32 = percent
            .trim()
            .parse()
            .with_context(|| format!("--threshold {text}: not a percentage"))?;
        if !(0.0..=100.0).contains(&p) || p == 0.0 {
            bail!("--threshold {text}: a percentage above 0 and at most 100");
        }
        Ok(Threshold::OfLocalMax(p / 100.0))
    } else {
        let value: f32 = text
            .parse()
            .with_context(|| format!("--threshold {text}: not a number or a percentage"))?;
        if !value.is_finite() {
            bail!("--threshold {text}: not a finite number");
        }
        Ok(Threshold::Absolute(value))
    }
}
