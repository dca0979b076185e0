//! Export of fusion results: derived DICOM series that validate (dciodvfy), reload through
//! our own loader with the reference grid and the same values within the rescale step, and
//! read in pydicom; PNG slices; and the safety rules (no overwrite without --force, a target
//! that cannot be written gives an error and no file, an interrupted export leaves nothing).
//! Runs on the phantom; the external tools are skipped with a reason when absent.

#![cfg(feature = "fusion")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{files_under, succeeded};
use dualmine::export::displayed_series::DisplayedSeries;
use dualmine::export::fusion_series::{FusionExport, OutputSeries, write_fusion};
use dualmine::export::{ExportError, SeriesOptions, write_series};
use dualmine::io;
use dualmine::phantom::{self, PhantomSize};

/// `dualmine fuse A B EXTRA…` on the CPU with the built-in weights.
fn fuse(inputs: [&Path; 2], extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dualmine"))
        .arg("fuse")
        .args(inputs)
        .args(["--backend", "cpu"])
        .args(extra)
        .output()
        .expect("dualmine runs")
}

/// The phantom, fused with `--dicom OUT --maps -o fused.nii` (plus `extra`).
struct Exported {
    dir: tempfile::TempDir,
    studies: phantom::DemoStudies,
}

impl Exported {
    fn new(reference: fn(&phantom::DemoStudies) -> PathBuf, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let studies =
            phantom::write_demo(&dir.path().join("in"), PhantomSize::SMALL).expect("phantom");
        let out = dir.path().join("out");
        let nifti = dir.path().join("fused.nii");
        let mut args = vec![
            "--dicom",
            out.to_str().expect("utf-8"),
            "--maps",
            "-o",
            nifti.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(extra);
        succeeded(&fuse([&reference(&studies), &studies.pet], &args));
        Self { dir, studies }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }
}

#[test]
fn the_fused_series_reloads_on_the_reference_grid_with_its_values() {
    let exported = Exported::new(|s| s.mr.clone(), &[]);
    let fused = io::load(&exported.out().join("FUSED"), None).expect("reloads");
    let reference = io::load(&exported.studies.mr, None).expect("MR");
    let nifti = io::load(&exported.dir.path().join("fused.nii"), None).expect("NIfTI");
    assert_eq!(fused.geometry.dims, reference.geometry.dims);
    for a in 0..3 {
        assert!((fused.geometry.origin[a] - reference.geometry.origin[a]).abs() < 1e-3);
        assert!((fused.geometry.spacing[a] - reference.geometry.spacing[a]).abs() < 1e-4);
        for b in 0..3 {
            let d = fused.geometry.direction[a][b] - reference.geometry.direction[a][b];
            assert!(d.abs() < 1e-5);
        }
    }
    // Values: within one rescale step (range / 65535) of the float result.
    let (low, high) = nifti
        .data
        .iter()
        .fold((f32::MAX, f32::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
    let step = (high - low) / 65535.0;
    let worst = largest_difference(&fused.data, &nifti.data);
    assert!(worst <= step * 0.51 + 1e-6, "worst {worst}, step {step}");
    // Identity: the reference's patient and study, a new series, derived.
    assert_eq!(
        fused.identity.study_instance_uid,
        reference.identity.study_instance_uid
    );
    assert_eq!(fused.identity.patient_id, reference.identity.patient_id);
    assert_ne!(
        fused.identity.series_instance_uid,
        reference.identity.series_instance_uid
    );
    assert_eq!(
        fused.identity.frame_of_reference_uid,
        reference.identity.frame_of_reference_uid
    );
    assert!(
        fused
            .identity
            .series_description
            .starts_with("W-DUALMINE fusion")
    );
    // Every map is a series of its own.
    let series = io::dicom::scan(&exported.out()).expect("scan");
    assert_eq!(
        series.series.len(),
        10,
        "fused + 3 scales × (2 reliability + α)"
    );
    let uids: std::collections::HashSet<_> = series
        .series
        .iter()
        .map(|s| s.first().identity.series_instance_uid.clone())
        .collect();
    assert_eq!(uids.len(), 10);
}

/// The largest absolute difference between two voxel buffers.
fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max)
}

#[test]
fn dciodvfy_finds_no_errors_in_mr_and_ct_referenced_exports() {
    if Command::new("dciodvfy").arg("-help").output().is_err() {
        eprintln!("skipped: dciodvfy is not installed (Debian package dicom3tools)");
        return;
    }
    let mr = Exported::new(|s| s.mr.clone(), &[]);
    let ct = Exported::new(|s| s.ct.clone(), &["--anonymize"]);
    for exported in [&mr, &ct] {
        for series in ["FUSED", "RELIABILITY_A_S0", "ALPHA_S2"] {
            let file = exported.out().join(series).join("IM000003.dcm");
            let errors = common::dciodvfy_errors(&file).expect("dciodvfy ran");
            assert!(errors.is_empty(), "{}: {errors:?}", file.display());
        }
    }
}

#[test]
fn pydicom_reads_the_export() {
    let Some(python) = common::python_with_pydicom() else {
        return;
    };
    let exported = Exported::new(|s| s.mr.clone(), &[]);
    let file = exported.out().join("FUSED").join("IM000002.dcm");
    let script = r#"
import sys, struct, pydicom
d = pydicom.dcmread(sys.argv[1])
n = d.Rows * d.Columns
values = struct.unpack("<%dH" % n, d.PixelData[:2 * n])
slope, intercept = float(d.RescaleSlope), float(d.RescaleIntercept)
print(d.Modality, "\\".join(d.ImageType), d.Rows, d.Columns, len(d.SourceImageSequence),
      max(v * slope + intercept for v in values) <= 1.0001)
"#;
    let output = Command::new(python)
        .args(["-c", script])
        .arg(&file)
        .output()
        .expect("python runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields[..4], ["MR", "DERIVED\\SECONDARY\\OTHER", "48", "48"]);
    // 16 MR slices + the PET's 8 slices are referenced as sources.
    assert_eq!(fields[4], "24");
    assert_eq!(fields[5], "True");
}

#[test]
fn anonymised_exports_replace_identity_and_remap_uids_consistently() {
    let exported = Exported::new(|s| s.mr.clone(), &["--anonymize"]);
    let reference = io::load(&exported.studies.mr, None).expect("MR");
    let report = io::dicom::scan(&exported.out()).expect("scan");
    let studies: std::collections::HashSet<_> = report
        .series
        .iter()
        .flat_map(|s| &s.files)
        .map(|f| f.header.identity.study_instance_uid.clone())
        .collect();
    assert_eq!(studies.len(), 1, "one (remapped) study for every series");
    let study = studies.into_iter().next().expect("one");
    assert_ne!(study, reference.identity.study_instance_uid);
    let fused = io::load(&exported.out().join("FUSED"), None).expect("reloads");
    assert_eq!(fused.identity.patient_name, "ANONYMOUS");
    assert_ne!(fused.identity.patient_id, reference.identity.patient_id);
    assert_ne!(
        fused.identity.frame_of_reference_uid,
        reference.identity.frame_of_reference_uid
    );
}

#[test]
fn png_slices_sort_by_position_and_keep_raw_values() {
    let dir = tempfile::tempdir().expect("temp dir");
    let studies = phantom::write_demo(&dir.path().join("in"), PhantomSize::SMALL).expect("phantom");
    let (eight, sixteen) = (dir.path().join("png8"), dir.path().join("png16"));
    succeeded(&fuse(
        [&studies.mr, &studies.pet],
        &["--png", eight.to_str().expect("utf-8")],
    ));
    succeeded(&fuse(
        [&studies.mr, &studies.pet],
        &["--png", sixteen.to_str().expect("utf-8"), "--png-16bit"],
    ));
    let names: Vec<String> = files_under(&eight)
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 16);
    let positions: Vec<f64> = names
        .iter()
        .map(|n| {
            let mm = n.rsplit('_').next().expect("position");
            mm.trim_end_matches("mm.png").parse().expect("a number")
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    let image = image::open(&files_under(&sixteen)[8]).expect("PNG");
    assert!(matches!(image, image::DynamicImage::ImageLuma16(_)));
    let rgb = image::open(&files_under(&eight)[8]).expect("PNG");
    assert!(matches!(rgb, image::DynamicImage::ImageRgb8(_)));
}

#[test]
fn existing_outputs_are_kept_unless_forced() {
    let exported = Exported::new(|s| s.mr.clone(), &[]);
    let out = exported.out();
    let file = out.join("FUSED").join("IM000001.dcm");
    let before = std::fs::read(&file).expect("written");
    let again = fuse(
        [&exported.studies.mr, &exported.studies.pet],
        &["--dicom", out.to_str().expect("utf-8")],
    );
    assert!(!again.status.success());
    let message = String::from_utf8_lossy(&again.stderr);
    assert!(
        message.contains("exists") && message.contains("--force"),
        "{message}"
    );
    assert_eq!(std::fs::read(&file).expect("kept"), before);
    succeeded(&fuse(
        [&exported.studies.mr, &exported.studies.pet],
        &["--dicom", out.to_str().expect("utf-8"), "--force"],
    ));
    assert_ne!(
        std::fs::read(&file).expect("replaced"),
        before,
        "new SOP UIDs"
    );
}

/// A folder this process cannot write into: a read-only folder, or (as root, whom
/// permissions do not stop) a folder under /proc.
fn unwritable_folder(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let folder = dir.join("read-only");
    std::fs::create_dir(&folder).expect("folder");
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    if std::fs::write(folder.join("probe"), b"x").is_err() {
        return folder;
    }
    let _ = std::fs::remove_file(folder.join("probe"));
    PathBuf::from("/proc/self/dualmine-export")
}

#[test]
fn an_unwritable_target_is_an_error_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let studies = phantom::write_demo(&dir.path().join("in"), PhantomSize::SMALL).expect("phantom");
    let target = unwritable_folder(dir.path());
    let output = fuse(
        [&studies.mr, &studies.pet],
        &["--dicom", target.to_str().expect("utf-8")],
    );
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("cannot"), "{message}");
    assert!(files_under(&target).is_empty(), "nothing written");
}

#[test]
fn an_interrupted_export_leaves_no_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let studies = phantom::write_demo(&dir.path().join("in"), PhantomSize::SMALL).expect("phantom");
    let mr = io::load(&studies.mr, None).expect("MR");
    let pet = io::load(&studies.pet, None).expect("PET");
    let out = dir.path().join("out");
    let export = FusionExport {
        reference: &mr,
        sources: [&mr, &pet],
        outputs: ["A", "B"]
            .iter()
            .map(|name| OutputSeries {
                folder: (*name).into(),
                description: format!("series {name}"),
                derivation: "test".into(),
                volume: &mr,
            })
            .collect(),
        displayed: Some(DisplayedSeries {
            folder: "PICTURES".into(),
            description: "pictures".into(),
            derivation: "test".into(),
            size: [8, 4],
            count: 4,
            patient_orientation: "L\\P".into(),
            frame: &|k| vec![k as u8 * 60; 8 * 4 * 3],
        }),
        anonymize: false,
        overwrite: false,
    };
    // Stopped in the second series, after 20 of 36 files, and in the pictures after 34.
    for stop in [20, 34] {
        let result = write_fusion(&export, &out, &mut |done, _| done < stop);
        assert!(matches!(result, Err(ExportError::Cancelled)), "{result:?}");
        assert!(
            files_under(&out).is_empty(),
            "left: {:?}",
            files_under(&out)
        );
    }
    // A whole export still works afterwards, and refuses to overwrite it.
    write_fusion(&export, &out, &mut |_, _| true).expect("written");
    assert_eq!(files_under(&out).len(), 36);
    assert!(matches!(
        write_series(&mr, &out.join("A"), &SeriesOptions::new_study("X", "Y", "")),
        Err(ExportError::Exists { .. })
    ));
}

/// `dualmine resample PET --like MR -o DIR` (and to NIfTI for the values): a PET Image
/// series that dciodvfy accepts and that reloads in SUV on the MR grid.
#[test]
fn a_pet_resampled_to_dicom_validates_and_reloads_in_suv() {
    let dir = tempfile::tempdir().expect("temp dir");
    let studies = phantom::write_demo(&dir.path().join("in"), PhantomSize::SMALL).expect("phantom");
    let resample = |out: &Path| {
        Command::new(env!("CARGO_BIN_EXE_dualmine"))
            .arg("resample")
            .args([
                &studies.pet,
                Path::new("--like"),
                &studies.mr,
                Path::new("-o"),
                out,
            ])
            .output()
            .expect("dualmine runs")
    };
    let (series, nifti) = (dir.path().join("PET_on_MR"), dir.path().join("pet.nii"));
    succeeded(&resample(&series));
    succeeded(&resample(&nifti));
    let reloaded = io::load(&series, None).expect("reloads");
    let expected = io::load(&nifti, None).expect("NIfTI");
    assert_eq!(reloaded.modality, dualmine::volume::Modality::Pet);
    assert_eq!(reloaded.units, dualmine::volume::Units::SuvBw);
    assert_eq!(reloaded.geometry.dims, expected.geometry.dims);
    let high = expected.data.iter().copied().fold(0.0f32, f32::max);
    let worst = largest_difference(&reloaded.data, &expected.data);
    assert!(
        high > 1.0 && worst <= high / 65535.0 + 1e-5,
        "worst {worst} of {high}"
    );
    // The phantom's own PET (Bq/ml with dose facts) validates too.
    let original = files_under(&studies.pet)
        .into_iter()
        .next()
        .expect("a PET file");
    for file in [series.join("IM000002.dcm"), original] {
        match common::dciodvfy_errors(&file) {
            Some(errors) => assert!(errors.is_empty(), "{}: {errors:?}", file.display()),
            None => eprintln!("dciodvfy not installed: validation skipped"),
        }
    }
}
