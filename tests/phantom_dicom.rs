//! The generated phantom, written as real DICOM and read back: geometry, units (HU, SUVbw,
//! counts), NM multi-frame, and NIfTI conversion. Needs no outside data.

use dualmine::io::{self, dicom};
use dualmine::phantom::{self, PhantomSize, Tissue};
use dualmine::volume::{Modality, Units, stats};

fn write_small() -> (tempfile::TempDir, phantom::DemoStudies) {
    let dir = tempfile::tempdir().expect("temp dir");
    let studies = phantom::write_demo(dir.path(), PhantomSize::SMALL).expect("write phantom");
    (dir, studies)
}

#[test]
fn scan_finds_four_series_sharing_a_frame_of_reference() {
    let (dir, _) = write_small();
    let report = dicom::scan(dir.path()).expect("scan");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.series.len(), 4);
    let frames: Vec<_> = report.series.iter().map(|s| s.summary().frames).collect();
    assert_eq!(frames, vec![16, 16, 8, 8]);
    let for_uid = &report.series[0].summary().frame_of_reference_uid;
    assert!(
        report
            .series
            .iter()
            .all(|s| &s.summary().frame_of_reference_uid == for_uid)
    );
}

#[test]
fn ct_reads_back_in_hounsfield_with_the_written_geometry() {
    let (_dir, studies) = write_small();
    let volume = io::load(&studies.ct, None).expect("load CT");
    assert_eq!(volume.modality, Modality::Ct);
    assert_eq!(volume.units, Units::Hounsfield);
    let expected = phantom::head_grid(48, 16, 4.0, 10.5);
    assert_eq!(volume.geometry.dims, expected.dims);
    for a in 0..3 {
        assert!((volume.geometry.spacing[a] - expected.spacing[a]).abs() < 1e-4);
        assert!((volume.geometry.origin[a] - expected.origin[a]).abs() < 1e-4);
    }
    assert_eq!(
        volume.data,
        phantom::ct(&expected).data,
        "CT is stored losslessly"
    );
    // Air in the corner, soft tissue inside the head.
    assert!((volume.value(0, 0, 0) + 1000.0).abs() < 20.0);
    assert!(volume.warnings.is_empty(), "{:?}", volume.warnings);
}

#[test]
fn pet_in_bq_per_ml_with_dose_reads_as_the_known_suv() {
    let (_dir, studies) = write_small();
    let volume = io::load(&studies.pet, None).expect("load PET");
    assert_eq!(
        volume.units,
        Units::SuvBw,
        "warnings: {:?}",
        volume.warnings
    );
    let grid = phantom::head_grid(24, 8, 8.0, 21.0);
    let truth = phantom::pet_suv_volume(&grid);
    let max_error = volume
        .data
        .iter()
        .zip(&truth.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    // Only 16-bit quantisation separates them.
    assert!(max_error < 1e-3, "max SUV error {max_error}");
    let s = stats::stats(&volume).expect("finite");
    assert!(
        s.max > 0.8 * phantom::pet_suv(Tissue::Lesion) || s.max > phantom::pet_suv(Tissue::Grey)
    );
}

#[test]
fn spect_nm_multi_frame_loads_as_counts_on_its_grid() {
    let (_dir, studies) = write_small();
    let volume = io::load(&studies.spect, None).expect("load SPECT");
    assert_eq!(volume.modality, Modality::Nm);
    assert_eq!(volume.units, Units::Counts);
    let grid = phantom::head_grid(24, 8, 8.0, 21.0);
    assert_eq!(volume.geometry.dims, grid.dims);
    assert!((volume.geometry.spacing[2] - 21.0).abs() < 1e-4);
    assert_eq!(volume.data, phantom::spect(&grid).data);
}

#[test]
fn convert_to_nifti_keeps_values_and_world_positions() {
    let (dir, studies) = write_small();
    let volume = io::load(&studies.mr, None).expect("load MR");
    let out = dir.path().join("mr.nii.gz");
    io::nifti::write(&volume, &out, false).expect("write NIfTI");
    let back = io::nifti::read(&out).expect("read NIfTI");
    assert_eq!(back.data, volume.data);
    let (a, b) = (back.geometry.affine_lps(), volume.geometry.affine_lps());
    for r in 0..3 {
        for c in 0..4 {
            assert!((a[r][c] - b[r][c]).abs() < 1e-3);
        }
    }
    assert!(
        io::nifti::write(&volume, &out, false).is_err(),
        "no silent overwrite"
    );
}

#[test]
fn a_corrupt_slice_is_left_out_and_the_rest_loads() {
    let (_dir, studies) = write_small();
    let mut files: Vec<_> = std::fs::read_dir(&studies.ct)
        .expect("list")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    // Truncate one slice's pixel data.
    let victim = &files[5];
    let bytes = std::fs::read(victim).expect("read");
    std::fs::write(victim, &bytes[..bytes.len() - 2000]).expect("truncate");
    let volume = io::load(&studies.ct, None).expect("the rest still loads");
    assert!(volume.geometry.dims[2] == 15 || volume.geometry.dims[2] == 16);
    assert!(
        volume
            .warnings
            .iter()
            .any(|w| w.contains("left out") || w.contains("not read")),
        "{:?}",
        volume.warnings
    );
}
