//! Pipeline steps that several commands share: loading a study with its warnings shown,
//! registering one study onto another (with progress), putting a study onto another's grid,
//! naming a study in transform files and descriptions, and cutting a PET–CT study pair into
//! the 8-bit slice pairs that training and evaluation of the PET–CT model use; naming the
//! PACS node a command talks to and sending files there (`pacs send`, `fuse --pacs`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use super::progress::Progress;
use dualmine::io;
use dualmine::metrics::{Image8, foreground};
use dualmine::pacs::{Node, Settings};
use dualmine::volume::intensity::Window;
use dualmine::volume::register::{self as registration, Options, Registration};
use dualmine::volume::resample::{IDENTITY, Interpolation, background_of, resample_transformed};
use dualmine::volume::transform::Transform;
use dualmine::volume::{Geometry, Modality, Units, Volume};

/// Loads the study at `path` (`what` names it in errors) and prints its warnings.
pub fn load_study(path: &Path, what: &str) -> Result<Volume> {
    let volume = io::load(path, None).with_context(|| format!("loading {what}"))?;
    for warning in &volume.warnings {
        eprintln!("warning ({what}): {warning}");
    }
    Ok(volume)
}

/// How a study is named in transform files and descriptions.
pub fn describe(v: &Volume) -> String {
    format!(
        "{} \"{}\" (series {})",
        v.modality, v.identity.series_description, v.identity.series_instance_uid
    )
}

/// Registers `moving` onto `fixed` with progress by pyramid level, printing the outcome.
pub fn register(fixed: &Volume, moving: &Volume, options: &Options) -> Result<Registration> {
    let start = Instant::now();
    let mut progress = Progress::new("register", options.levels.len(), "levels", 1);
    let found = registration::register_with_progress(fixed, moving, options, &mut |done, _| {
        progress.set(done, "");
        true
    })
    .context("registering")?;
    progress.finish();
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

/// `moving` on `fixed`'s grid through `transform` (identity when `None`: shared patient
/// coordinates), trilinear, outside filled with `moving`'s background.
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

/// One axial slice of a PET–CT study pair as the network and the metrics see it: A = the
/// PET, B = the CT, each through its default display window, on the CT's grid, as 8-bit
/// gray values (0..255, whole numbers, like the benchmark's images).
pub struct SlicePair {
    pub a: Volume,
    pub b: Volume,
}

/// Slices whose foreground (either source above [`dualmine::metrics::FOREGROUND_LEVEL`] of
/// 255, the locality measure's rule) covers less than this fraction of the slice are left
/// out (table, air).
const MIN_FOREGROUND: f64 = 0.05;

/// The PET–CT slice pairs of a study folder holding `CT/` and `PET/` (one frame of
/// reference, as from one PET/CT session): the PET put on the CT's grid in patient
/// coordinates, both windowed by their defaults (CT by its stored window or body part, PET
/// from 0 to its 99.5th percentile SUV), quantised to 8 bits.
pub fn pet_ct_slices(folder: &Path) -> Result<Vec<SlicePair>> {
    let ct = load_study(&folder.join("CT"), "the CT")?;
    let pet = load_study(&folder.join("PET"), "the PET")?;
    if ct.identity.frame_of_reference_uid != pet.identity.frame_of_reference_uid {
        anyhow::bail!(
            "{}: the CT and the PET are in different frames of reference; register them first",
            folder.display()
        );
    }
    let pet = onto_grid(&pet, &ct, None)?;
    let eight_bit = |volume: &Volume| -> Vec<f32> {
        Window::default_for(volume)
            .normalised(volume)
            .into_iter()
            .map(|v| (v * 255.0).round())
            .collect()
    };
    let (a, b) = (eight_bit(&pet), eight_bit(&ct));
    let [nx, ny, nz] = ct.geometry.dims;
    let plane = nx * ny;
    let slice_geometry = Geometry::axis_aligned([nx, ny, 1], [1.0; 3], [0.0; 3]);
    let mut pairs = Vec::new();
    for k in 0..nz {
        let range = k * plane..(k + 1) * plane;
        let (sa, sb) = (&a[range.clone()], &b[range]);
        let (a8, b8) = (
            Image8 {
                data: sa,
                channels: 1,
            },
            Image8 {
                data: sb,
                channels: 1,
            },
        );
        let inside = foreground(a8, b8).into_iter().filter(|&f| f).count();
        if (inside as f64) < MIN_FOREGROUND * plane as f64 {
            continue;
        }
        let slice = |values: &[f32], modality: Modality| -> Result<Volume> {
            let volume = Volume::new(slice_geometry.clone(), values.to_vec())?;
            Ok(volume.with_kind(modality, Units::Signal))
        };
        pairs.push(SlicePair {
            a: slice(sa, Modality::Pet)?,
            b: slice(sb, Modality::Ct)?,
        });
    }
    Ok(pairs)
}

/// The PACS node a command talks to, with overrides of our settings.
#[derive(clap::Args, Clone)]
pub struct PacsTarget {
    /// A configured node's name (`dualmine pacs node add`), or an address: `AE@host:port`
    /// (DICOM networking) or an `http(s)://` DICOMweb base URL.
    pub node: String,
    /// Seconds to wait for a connection or the next message (default: `pacs config`).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Our AE title for this command (default: `pacs config`, else DUALMINE).
    #[arg(long)]
    pub ae_title: Option<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// DICOM TLS for a node given by address (or added with `pacs node add`).
#[derive(clap::Args, Clone, Default)]
pub struct TlsArgs {
    /// Talk DICOM over TLS.
    #[arg(long)]
    pub tls: bool,
    /// With --tls: PEM file of the CAs to trust (default: the public web roots).
    #[arg(long, value_name = "PEM", requires = "tls")]
    pub ca: Option<PathBuf>,
    /// With --tls: our certificate chain (PEM), for servers that require one.
    #[arg(long, value_name = "PEM", requires_all = ["tls", "client_key"])]
    pub client_cert: Option<PathBuf>,
    /// With --tls: the private key of --client-cert (PEM).
    #[arg(long, value_name = "PEM", requires_all = ["tls", "client_cert"])]
    pub client_key: Option<PathBuf>,
}

impl TlsArgs {
    /// `node` over TLS when asked.
    pub fn apply(&self, node: Node) -> Node {
        if !self.tls {
            return node;
        }
        node.with_tls(dualmine::pacs::node::Tls {
            ca_file: self.ca.clone(),
            client_certificate: self.client_cert.clone(),
            client_key: self.client_key.clone(),
        })
    }
}

impl PacsTarget {
    /// A target named on another command's flag (e.g. `fuse --pacs NODE`).
    #[cfg(feature = "fusion")]
    pub fn named(node: &str) -> Self {
        Self {
            node: node.to_string(),
            timeout: None,
            ae_title: None,
            tls: TlsArgs::default(),
        }
    }

    /// The node and the settings to reach it with.
    pub fn resolve(&self) -> Result<(Node, Settings)> {
        let mut settings = Settings::load(&Settings::default_path())?;
        if let Some(seconds) = self.timeout {
            settings.timeout_s = seconds;
        }
        if let Some(title) = &self.ae_title {
            dualmine::pacs::node::check_ae_title(title).map_err(anyhow::Error::msg)?;
            settings.ae_title = title.clone();
        }
        let is_address = self.node.contains('@') || self.node.contains("://");
        let node = if is_address {
            Node::parse(&self.node, &self.node).map_err(anyhow::Error::msg)?
        } else {
            settings.node(&self.node)?.clone()
        };
        Ok((self.tls.apply(node), settings))
    }
}

/// `path` itself, or every DICOM Part-10 file under the folder `path` (sorted).
pub fn dicom_files_under(path: &Path) -> Result<Vec<PathBuf>> {
    let files: Vec<PathBuf> = io::dicom::files_under(path)?
        .into_iter()
        .filter(|file| has_dicm_prefix(file))
        .collect();
    if files.is_empty() {
        anyhow::bail!("no DICOM file under {}", path.display());
    }
    Ok(files)
}

fn has_dicm_prefix(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 132];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head[128..] == b"DICM"
}

/// Sends `files` to the target node, with progress; prints what was sent.
pub fn send_to_pacs(target: &PacsTarget, files: &[PathBuf]) -> Result<()> {
    let (node, settings) = target.resolve()?;
    let mut progress = Progress::new("send", files.len(), "instances", 25);
    let outcome = dualmine::pacs::connect(&node, &settings).store(files, &mut |done| {
        progress.report(done, files.len());
    })?;
    progress.finish();
    for warning in &outcome.warnings {
        eprintln!("warning: {warning}");
    }
    println!("sent {} instance(s) to {}", outcome.stored, node.label());
    Ok(())
}
