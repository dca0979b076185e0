//! Real co-registered CT, MR and PET (TCIA soft-tissue sarcoma) and a real Lu-177 SPECT:
//! slice counts, sizes, spacing and physical units. Skips with a printed reason when the
//! shared data is absent.

mod common;

use dualmine::io;
use dualmine::volume::intensity::Window;
use dualmine::volume::resample::{Interpolation, onto_reference};
use dualmine::volume::{Modality, Units, stats};

/// (series folder, slices, columns, rows, pixel spacing)
const STS: [(&str, usize, usize, usize, f64); 6] = [
    ("STS_001/CT", 59, 198, 202, 0.976562),
    ("STS_001/MR_T1", 59, 174, 158, 0.976562),
    ("STS_001/PET", 59, 41, 43, 4.6875),
    ("STS_002/CT", 48, 161, 143, 0.976562),
    ("STS_002/MR_T1", 35, 115, 90, 0.976562),
    ("STS_002/PET", 48, 30, 27, 5.46875),
];

#[test]
fn sts_series_have_the_right_grids_and_units() {
    let Some(root) = common::shared_data("dicom/sts") else {
        return;
    };
    for (folder, slices, columns, rows, spacing) in STS {
        let volume = io::load(&root.join(folder), None).unwrap_or_else(|e| panic!("{folder}: {e}"));
        let g = &volume.geometry;
        assert_eq!(g.dims, [columns, rows, slices], "{folder}");
        assert!(
            (g.spacing[0] - spacing).abs() < 1e-4,
            "{folder}: {:?}",
            g.spacing
        );
        assert!(
            (g.spacing[2] - 3.27).abs() < 1e-3,
            "{folder}: {:?}",
            g.spacing
        );
        let s = stats::stats(&volume).expect("finite values");
        match volume.modality {
            Modality::Ct => {
                assert_eq!(volume.units, Units::Hounsfield);
                assert_eq!(s.min, -1000.0, "{folder}: air is -1000 HU");
                // Soft tissue (muscle, fat, water) around the tumour sits near 0 HU.
                let median = stats::percentile(&volume, 50.0).expect("values");
                assert!(
                    (-200.0..100.0).contains(&median),
                    "{folder}: median {median} HU"
                );
            }
            Modality::Pet => {
                assert_eq!(volume.units, Units::SuvBw);
                assert!(
                    s.min >= 0.0 && (5.0..40.0).contains(&s.max),
                    "{folder}: SUV {s:?}"
                );
                assert!(
                    (0.1..3.0).contains(&s.mean),
                    "{folder}: mean SUV {}",
                    s.mean
                );
            }
            Modality::Mr => assert_eq!(volume.units, Units::Signal),
            ref other => panic!("{folder}: unexpected modality {other}"),
        }
        assert!(
            volume.warnings.is_empty(),
            "{folder}: {:?}",
            volume.warnings
        );
    }
}

#[test]
fn lu177_spect_loads_all_199_slices_in_suv() {
    let Some(folder) = common::shared_data("dicom/spect-lu177") else {
        return;
    };
    let volume = io::load(&folder, None).expect("SPECT loads");
    assert_eq!(volume.geometry.dims, [256, 256, 199]);
    // Stored as PET (BQML) with dose, weight and times: SUVbw is computable.
    assert_eq!(volume.units, Units::SuvBw, "{:?}", volume.warnings);
    let s = stats::stats(&volume).expect("finite");
    assert!(s.min >= 0.0 && s.max > 1.0 && s.max < 1000.0, "{s:?}");
}

#[test]
fn pet_resamples_onto_the_mr_grid_through_patient_space() {
    let Some(root) = common::shared_data("dicom/sts/STS_001") else {
        return;
    };
    let mr = io::load(&root.join("MR_T1"), None).expect("MR loads");
    let pet = io::load(&root.join("PET"), None).expect("PET loads");
    let on_mr = onto_reference(&pet, &mr, Interpolation::Linear).expect("same frame of reference");
    assert_eq!(on_mr.geometry, mr.geometry);
    assert_eq!(on_mr.units, Units::SuvBw);
    let (before, after) = (
        stats::stats(&pet).expect("finite"),
        stats::stats(&on_mr).expect("finite"),
    );
    // Interpolation never leaves the source's range, and the uptake is still there.
    assert!(after.min >= before.min && after.max <= before.max + 1e-4);
    assert!(after.max > 0.5 * before.max, "{after:?} vs {before:?}");
    // The same patient point has (nearly) the same SUV in both grids.
    let centre = mr.geometry.index_to_world([87.0, 79.0, 29.0]);
    let p = pet
        .geometry
        .world_to_index(centre)
        .expect("invertible")
        .map(|x| x.round() as usize);
    let nearest = pet.value(p[0], p[1], p[2]);
    let resampled = on_mr.value(87, 79, 29);
    assert!(
        (nearest - resampled).abs() <= 0.5 * before.max,
        "{nearest} vs {resampled}"
    );
}

#[test]
fn a_thigh_ct_is_not_shown_or_fused_in_the_brain_window() {
    let Some(root) = common::shared_data("dicom/sts") else {
        return;
    };
    for folder in ["STS_001/CT", "STS_002/CT"] {
        let ct = io::load(&root.join(folder), None).unwrap_or_else(|e| panic!("{folder}: {e}"));
        // The sarcoma CTs are of the thigh (BodyPartExamined EXTREMITY): the default window
        // is the file's own or soft tissue, never the brain window the network once got.
        assert_eq!(ct.identity.body_part_examined, "EXTREMITY", "{folder}");
        let window = Window::default_for(&ct);
        eprintln!(
            "{folder}: stored {:?}, default {window:?}",
            ct.identity.stored_window
        );
        assert_ne!(window, Window::CT_BRAIN, "{folder}");
        match ct.identity.stored_window {
            Some([center, width]) => assert_eq!([window.center, window.width], [center, width]),
            None => assert_eq!(window, Window::CT_SOFT_TISSUE),
        }
    }
}
