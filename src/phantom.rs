//! A procedural multi-modal head phantom: CT (HU), T1 MR, FDG-like PET (Bq/ml with dose
//! facts, so SUV is known) and a SPECT-like NM study, all in one frame of reference and
//! written as real DICOM series. It is the app's built-in demo and the test fixture that
//! needs no outside data.
//!
//! The head is an ellipsoid of scalp, skull, cortex (grey matter), white matter, two
//! ventricles and a lesion; each modality maps those tissues to typical values.

use std::path::{Path, PathBuf};

use crate::export::{ExportError, PetDoseTags, SeriesOptions, write_series};
use crate::volume::{Geometry, Modality, Units, Vec3, Volume};

/// Tissue classes of the phantom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tissue {
    Air,
    Scalp,
    Bone,
    Csf,
    Grey,
    White,
    Lesion,
}

/// SUVbw of each tissue in the PET phantom (FDG-like: hot cortex, hotter lesion).
pub fn pet_suv(tissue: Tissue) -> f32 {
    match tissue {
        Tissue::Air => 0.0,
        Tissue::Scalp => 0.8,
        Tissue::Bone => 0.5,
        Tissue::Csf => 0.3,
        Tissue::Grey => 8.0,
        Tissue::White => 3.0,
        Tissue::Lesion => 14.0,
    }
}

fn ct_hu(tissue: Tissue) -> f32 {
    match tissue {
        Tissue::Air => -1000.0,
        Tissue::Scalp => 40.0,
        Tissue::Bone => 1200.0,
        Tissue::Csf => 8.0,
        Tissue::Grey => 42.0,
        Tissue::White => 28.0,
        Tissue::Lesion => 55.0,
    }
}

fn mr_t1(tissue: Tissue) -> f32 {
    match tissue {
        Tissue::Air => 0.0,
        Tissue::Scalp => 620.0,
        Tissue::Bone => 60.0,
        Tissue::Csf => 90.0,
        Tissue::Grey => 420.0,
        Tissue::White => 700.0,
        Tissue::Lesion => 300.0,
    }
}

fn spect_counts(tissue: Tissue) -> f32 {
    match tissue {
        Tissue::Air => 0.0,
        Tissue::Scalp => 40.0,
        Tissue::Bone => 30.0,
        Tissue::Csf => 10.0,
        Tissue::Grey => 400.0,
        Tissue::White => 150.0,
        Tissue::Lesion => 900.0,
    }
}

/// The tissue at a patient-space point (mm, LPS; the head is centred on the origin).
pub fn tissue_at(p: Vec3) -> Tissue {
    let ellipsoid = |c: Vec3, r: Vec3| -> f64 {
        ((p[0] - c[0]) / r[0]).powi(2)
            + ((p[1] - c[1]) / r[1]).powi(2)
            + ((p[2] - c[2]) / r[2]).powi(2)
    };
    let head = ellipsoid([0.0; 3], [72.0, 92.0, 80.0]);
    if head > 1.0 {
        return Tissue::Air;
    }
    if ellipsoid([0.0; 3], [67.0, 87.0, 75.0]) > 1.0 {
        return Tissue::Scalp;
    }
    if ellipsoid([0.0; 3], [61.0, 81.0, 69.0]) > 1.0 {
        return Tissue::Bone;
    }
    if ellipsoid([22.0, -18.0, 10.0], [11.0, 11.0, 11.0]) <= 1.0 {
        return Tissue::Lesion;
    }
    for side in [-1.0, 1.0] {
        if ellipsoid([side * 11.0, 0.0, 8.0], [6.0, 24.0, 12.0]) <= 1.0 {
            return Tissue::Csf;
        }
    }
    if ellipsoid([0.0; 3], [56.0, 76.0, 64.0]) > 1.0 {
        return Tissue::Grey;
    }
    Tissue::White
}

/// Deterministic noise in [-1, 1] from a voxel index (a hash, no RNG state).
fn noise(i: usize, j: usize, k: usize, seed: u64) -> f32 {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (j as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ (k as u64).wrapping_mul(0x1656_67B1_9E37_79F9)
        ^ seed;
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    (x as f64 / u64::MAX as f64 * 2.0 - 1.0) as f32
}

/// Evaluates `value(tissue)` on a grid, averaging 2×2×2 sub-samples per voxel (partial
/// volume), plus noise of amplitude `noise_level`.
fn render(geometry: &Geometry, value: fn(Tissue) -> f32, noise_level: f32, seed: u64) -> Vec<f32> {
    let [nx, ny, nz] = geometry.dims;
    let mut data = Vec::with_capacity(nx * ny * nz);
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let mut sum = 0.0;
                for s in 0..8 {
                    let offset = |bit: usize| if s & bit == 0 { -0.25 } else { 0.25 };
                    let p = geometry.index_to_world([
                        i as f64 + offset(1),
                        j as f64 + offset(2),
                        k as f64 + offset(4),
                    ]);
                    sum += value(tissue_at(p));
                }
                data.push(sum / 8.0 + noise_level * noise(i, j, k, seed));
            }
        }
    }
    data
}

/// A grid of `n × n × slices` voxels of `spacing` mm centred on the head.
pub fn head_grid(n: usize, slices: usize, spacing: f64, slice_spacing: f64) -> Geometry {
    let origin = [
        -(n as f64 - 1.0) * spacing / 2.0,
        -(n as f64 - 1.0) * spacing / 2.0,
        -(slices as f64 - 1.0) * slice_spacing / 2.0,
    ];
    Geometry::axis_aligned([n, n, slices], [spacing, spacing, slice_spacing], origin)
}

/// The phantom's CT on `geometry`, in HU (integers, as a scanner stores them).
pub fn ct(geometry: &Geometry) -> Volume {
    let data = render(geometry, ct_hu, 6.0, 1)
        .into_iter()
        .map(f32::round)
        .collect();
    let mut volume = Volume::new(geometry.clone(), data)
        .expect("render fills the grid")
        .with_kind(Modality::Ct, Units::Hounsfield);
    volume.identity.body_part_examined = "HEAD".into();
    volume
}

/// The phantom's T1-weighted MR on `geometry`.
pub fn mr_t1_volume(geometry: &Geometry) -> Volume {
    let data = render(geometry, mr_t1, 12.0, 2)
        .into_iter()
        .map(|v| v.max(0.0).round())
        .collect();
    Volume::new(geometry.clone(), data)
        .expect("render fills the grid")
        .with_kind(Modality::Mr, Units::Signal)
}

/// The phantom's PET on `geometry`, in SUVbw.
pub fn pet_suv_volume(geometry: &Geometry) -> Volume {
    let data = render(geometry, pet_suv, 0.15, 3)
        .into_iter()
        .map(|v| v.max(0.0))
        .collect();
    Volume::new(geometry.clone(), data)
        .expect("render fills the grid")
        .with_kind(Modality::Pet, Units::SuvBw)
}

/// The phantom's SPECT on `geometry`, in counts.
pub fn spect(geometry: &Geometry) -> Volume {
    let data = render(geometry, spect_counts, 15.0, 4)
        .into_iter()
        .map(|v| v.max(0.0).round())
        .collect();
    Volume::new(geometry.clone(), data)
        .expect("render fills the grid")
        .with_kind(Modality::Nm, Units::Counts)
}

/// The PET dose facts the phantom is written with: 200 MBq F-18 injected 60 minutes before
/// the scan into a 70 kg patient.
pub fn pet_dose() -> PetDoseTags {
    PetDoseTags {
        injected_dose_bq: 200e6,
        half_life_s: 6586.2,
        patient_weight_kg: 70.0,
        injection_time: "090000".into(),
        series_time: "100000".into(),
    }
}

/// Bq/ml that corresponds to 1 SUVbw under `dose` (decay corrected to the series start).
pub fn bq_per_ml_per_suv(dose: &PetDoseTags) -> f64 {
    let seconds = |tm: &str| crate::io::dicom::parse_time_seconds(tm).unwrap_or(0.0);
    let elapsed = seconds(&dose.series_time) - seconds(&dose.injection_time);
    let decayed =
        dose.injected_dose_bq * (-(std::f64::consts::LN_2) * elapsed / dose.half_life_s).exp();
    decayed / (dose.patient_weight_kg * 1000.0)
}

/// Where [`write_demo`] put each study.
#[derive(Clone, Debug)]
pub struct DemoStudies {
    pub ct: PathBuf,
    pub mr: PathBuf,
    pub pet: PathBuf,
    pub spect: PathBuf,
}

/// How big the written phantom is.
#[derive(Clone, Copy, Debug)]
pub struct PhantomSize {
    /// In-plane voxels of CT and MR.
    pub matrix: usize,
    /// CT/MR slices.
    pub slices: usize,
}

impl PhantomSize {
    /// The app's demo: 128² × 48 slices at 1.5 × 1.5 × 3.5 mm.
    pub const DEMO: Self = Self {
        matrix: 128,
        slices: 48,
    };
    /// Small enough for fast tests.
    pub const SMALL: Self = Self {
        matrix: 48,
        slices: 16,
    };
}

/// Writes the four phantom studies as DICOM series under `folder` (CT, MR_T1, PET, SPECT),
/// sharing a study and a frame of reference. PET is written in Bq/ml with its dose facts;
/// SPECT as one NM multi-frame object.
pub fn write_demo(folder: &Path, size: PhantomSize) -> Result<DemoStudies, ExportError> {
    let field_of_view = 192.0;
    let spacing = field_of_view / size.matrix as f64;
    let slice_spacing = 168.0 / size.slices as f64;
    let anatomy = head_grid(size.matrix, size.slices, spacing, slice_spacing);
    let functional_matrix = (size.matrix / 2).max(8);
    let functional_slices = (size.slices / 2).max(4);
    let functional = head_grid(
        functional_matrix,
        functional_slices,
        field_of_view / functional_matrix as f64,
        168.0 / functional_slices as f64,
    );
    let base = SeriesOptions::new_study("PHANTOM^HEAD", "DUALMINE-DEMO", "");
    let series = |number: i32, description: &str| SeriesOptions {
        series_instance_uid: crate::export::uid::new_uid(),
        series_number: number,
        series_description: description.into(),
        overwrite: true,
        ..base.clone()
    };
    let paths = DemoStudies {
        ct: folder.join("CT"),
        mr: folder.join("MR_T1"),
        pet: folder.join("PET"),
        spect: folder.join("SPECT"),
    };
    write_series(&ct(&anatomy), &paths.ct, &series(1, "Phantom CT head"))?;
    write_series(
        &mr_t1_volume(&anatomy),
        &paths.mr,
        &series(2, "Phantom T1 MR"),
    )?;

    let dose = pet_dose();
    let mut pet = pet_suv_volume(&functional);
    let scale = bq_per_ml_per_suv(&dose) as f32;
    pet.data.iter_mut().for_each(|v| *v *= scale);
    pet.units = Units::BqPerMl;
    let pet_options = SeriesOptions {
        pet: Some(dose),
        ..series(3, "Phantom FDG PET")
    };
    write_series(&pet, &paths.pet, &pet_options)?;

    let spect_options = SeriesOptions {
        nm_multi_frame: true,
        ..series(4, "Phantom SPECT")
    };
    write_series(&spect(&functional), &paths.spect, &spect_options)?;
    Ok(paths)
}
