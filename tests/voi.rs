//! Volumes of interest: statistics exact on a constructed PET (a lesion of known SUV written
//! as real DICOM and read back), and on the real STS_001 PET against the stored values read
//! back independently (dicom-pixeldata without our loader, and pydicom when installed);
//! `dualmine stats` prints what the library computes.

mod common;

use std::process::Command;

use dicom_dictionary_std::tags;
use dicom_object::open_file;
use dicom_pixeldata::{ConvertOptions, ModalityLutOption, PixelDecoder};
use dualmine::export::{SeriesOptions, write_series};
use dualmine::io;
use dualmine::phantom::{bq_per_ml_per_suv, pet_dose};
use dualmine::volume::voi::{self, PEAK_RADIUS_MM, Shape};
use dualmine::volume::{Geometry, Modality, Units, Volume};

/// The partial-voxel rule, written again here: the share of a voxel's 4³ sub-cell centres
/// within `radius` of `centre` (axis-aligned grid).
fn fraction(geometry: &Geometry, voxel: [usize; 3], centre: [f64; 3], radius: f64) -> f64 {
    let mut inside = 0;
    for s in 0..64 {
        let sub = [s % 4, s / 4 % 4, s / 16].map(|v| (v as f64 + 0.5) / 4.0 - 0.5);
        let p: Vec<f64> = (0..3)
            .map(|a| geometry.origin[a] + (voxel[a] as f64 + sub[a]) * geometry.spacing[a])
            .collect();
        let d2: f64 = (0..3).map(|a| (p[a] - centre[a]).powi(2)).sum();
        if d2.sqrt() <= radius {
            inside += 1;
        }
    }
    f64::from(inside) / 64.0
}

#[test]
fn statistics_are_exact_on_a_constructed_pet_lesion() {
    // 40 × 40 × 30 voxels of 2 × 2 × 3 mm; a lesion of radius 20 mm whose SUV rises by 0.1
    // per mm along x from 6 at its centre, in a background of SUV 1.
    let geometry = Geometry::axis_aligned([40, 40, 30], [2.0, 2.0, 3.0], [-40.0, -40.0, -45.0]);
    let lesion = [1.0, -1.0, 0.0];
    let suv = |p: [f64; 3]| {
        let d: f64 = (0..3)
            .map(|a| (p[a] - lesion[a]).powi(2))
            .sum::<f64>()
            .sqrt();
        if d <= 20.0 {
            6.0 + 0.1 * (p[0] - lesion[0])
        } else {
            1.0
        }
    };
    let centre_of = |v: [usize; 3]| geometry.index_to_world(v.map(|c| c as f64));
    let voxels: Vec<[usize; 3]> = (0..30)
        .flat_map(|k| (0..40).flat_map(move |j| (0..40).map(move |i| [i, j, k])))
        .collect();
    let dose = pet_dose();
    let scale = bq_per_ml_per_suv(&dose);
    let data = voxels
        .iter()
        .map(|&v| (suv(centre_of(v)) * scale) as f32)
        .collect();
    let pet = Volume::new(geometry.clone(), data)
        .expect("valid")
        .with_kind(Modality::Pet, Units::BqPerMl);
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SeriesOptions {
        pet: Some(dose),
        ..SeriesOptions::new_study("VOI^TEST", "VOI1", "constructed lesion")
    };
    write_series(&pet, dir.path(), &options).expect("written");
    let loaded = io::load(dir.path(), None).expect("read back");
    assert_eq!(loaded.units, Units::SuvBw);

    // A sphere of radius 8 mm at the lesion's centre: every voxel it touches is in the lesion.
    let radius = 8.0;
    let region = voi::shape_region(
        &loaded.geometry,
        &Shape::Sphere {
            centre: lesion,
            radius_mm: radius,
        },
    )
    .expect("inside");
    let stats = voi::statistics(&loaded, &region).expect("values");
    assert_eq!(stats.units, "SUV");

    // Expected, from the construction: fractions by the stated rule, SUV from the formula.
    let (mut weight, mut sum, mut max, mut count) = (0.0, 0.0, f64::MIN, 0);
    let mut peak = f64::MIN;
    for &v in &voxels {
        let f = fraction(&geometry, v, lesion, radius);
        if f > 0.0 {
            let value = suv(centre_of(v));
            weight += f;
            sum += f * value;
            max = max.max(value);
            count += 1;
        }
        // The 1 ml sphere's voxel weights are symmetric and it stays inside the lesion,
        // so its mean over the linear SUV is the SUV at its centre.
        if f >= 0.5 {
            peak = peak.max(suv(centre_of(v)));
        }
    }
    let voxel_ml = 2.0 * 2.0 * 3.0 / 1000.0;
    // Quantisation to 16 bits over the series' range costs at most ~1e-4 SUV.
    let close = |got: f64, want: f64, what: &str| {
        assert!((got - want).abs() < 2e-3, "{what}: {got} vs {want}");
    };
    assert_eq!(stats.voxels, count);
    close(stats.max, max, "max");
    close(stats.mean, sum / weight, "mean");
    close(stats.volume_ml, weight * voxel_ml, "volume");
    close(stats.peak.expect("a peak"), peak, "SUVpeak");
    // The rule's volume is within 1 % of the true sphere's.
    let true_ml = 4.0 / 3.0 * std::f64::consts::PI * radius.powi(3) / 1000.0;
    assert!(
        (stats.volume_ml - true_ml).abs() / true_ml < 0.01,
        "{}",
        stats.volume_ml
    );
    assert!(
        PEAK_RADIUS_MM + radius + 2.4 < 20.0,
        "the peak sphere stays in the lesion"
    );
    // The raw Bq/ml volume says Bq/ml, never SUV.
    let raw = voi::statistics(&pet, &region).expect("values");
    assert_eq!(raw.units, "Bq/ml");
}

/// SUV factor of a PET file, read from its own tags: 1 when it stores SUV already (GML);
/// for BQML decay corrected to the series start, g of body weight per Bq of decayed dose.
fn suv_factor(file: &dicom_object::DefaultDicomObject) -> f64 {
    let text = |obj: &dicom_object::InMemDicomObject, tag| {
        obj.element(tag)
            .expect("present")
            .to_str()
            .expect("text")
            .trim()
            .to_string()
    };
    let number = |obj: &dicom_object::InMemDicomObject, tag| {
        text(obj, tag).parse::<f64>().expect("a number")
    };
    let seconds = |tm: String| {
        let h: f64 = tm[0..2].parse().expect("hours");
        let m: f64 = tm[2..4].parse().expect("minutes");
        let s: f64 = tm[4..].parse().expect("seconds");
        h * 3600.0 + m * 60.0 + s
    };
    match text(file, tags::UNITS).as_str() {
        "GML" => return 1.0,
        "BQML" => assert_eq!(text(file, tags::DECAY_CORRECTION), "START"),
        other => panic!("PET units {other}"),
    }
    let weight_g = number(file, tags::PATIENT_WEIGHT) * 1000.0;
    let drug = &file
        .element(tags::RADIOPHARMACEUTICAL_INFORMATION_SEQUENCE)
        .expect("radiopharmaceutical")
        .items()
        .expect("items")[0];
    let dose = number(drug, tags::RADIONUCLIDE_TOTAL_DOSE);
    let half_life = number(drug, tags::RADIONUCLIDE_HALF_LIFE);
    let injected = seconds(text(drug, tags::RADIOPHARMACEUTICAL_START_TIME));
    let series = seconds(text(file, tags::SERIES_TIME));
    let decayed = dose * (-(std::f64::consts::LN_2) * (series - injected) / half_life).exp();
    weight_g / decayed
}

#[test]
fn suv_max_of_a_real_pet_matches_its_stored_values_and_the_cli_agrees() {
    let Some(folder) = common::shared_data("dicom/sts/STS_001/PET") else {
        return;
    };
    // Independently: the largest stored value × slope + intercept × SUV factor over the files.
    let mut expected = f64::MIN;
    for path in common::files_under(&folder) {
        let Ok(file) = open_file(&path) else {
            continue;
        };
        let pixels = file.decode_pixel_data().expect("pixels");
        let raw = ConvertOptions::new().with_modality_lut(ModalityLutOption::None);
        let stored: Vec<f64> = pixels.to_vec_with_options(&raw).expect("stored values");
        let rescale = |tag| file.element(tag).ok().and_then(|e| e.to_float64().ok());
        let slope = rescale(tags::RESCALE_SLOPE).unwrap_or(1.0);
        let intercept = rescale(tags::RESCALE_INTERCEPT).unwrap_or(0.0);
        let top = stored.iter().copied().fold(f64::MIN, f64::max);
        expected = expected.max((top * slope + intercept) * suv_factor(&file));
    }

    // And by pydicom, a reader that shares no code with ours (CI installs it).
    if let Some(python) = common::python_with_pydicom() {
        let by_pydicom = pydicom_suv_max(python, &folder);
        assert!(
            (by_pydicom - expected).abs() <= 1e-6 * expected,
            "pydicom {by_pydicom} vs {expected}"
        );
    }

    let pet = io::load(&folder, None).expect("loads");
    assert_eq!(pet.units, Units::SuvBw);
    let voxel = common::hottest_voxel(&pet);
    let centre = pet.geometry.index_to_world(voxel.map(|v| v as f64));
    // A 30 mm sphere (radius 15 mm) on the hottest voxel.
    let region = voi::shape_region(
        &pet.geometry,
        &Shape::Sphere {
            centre,
            radius_mm: 15.0,
        },
    )
    .expect("inside");
    let stats = voi::statistics(&pet, &region).expect("values");
    assert!(
        (stats.max - expected).abs() <= 1e-4 * expected,
        "SUVmax {} vs {expected} from the stored values",
        stats.max
    );
    let peak = stats.peak.expect("a peak");
    println!(
        "STS_001 PET, 30 mm sphere at ({:.1}, {:.1}, {:.1}) mm: {stats:?}",
        centre[0], centre[1], centre[2]
    );
    assert!(peak <= stats.max && peak >= stats.mean, "{stats:?}");

    let sphere = format!("--sphere={},{},{},15", centre[0], centre[1], centre[2]);
    let json = common::stats_json(&[folder.as_os_str(), sphere.as_ref()]);
    let cli = &json["statistics"];
    common::assert_printed(
        cli,
        &[
            ("max", stats.max),
            ("mean", stats.mean),
            ("std", stats.std),
            ("min", stats.min),
            ("volume_ml", stats.volume_ml),
            ("peak", peak),
        ],
        1e-9,
    );
    assert_eq!(cli["units"], "SUV");
    assert_eq!(cli["voxels"].as_u64(), Some(stats.voxels as u64));
}

/// SUVmax of a PET folder read back by pydicom: the largest stored value × slope +
/// intercept × the SUV factor of its own tags (1 for GML), over every file.
fn pydicom_suv_max(python: &str, folder: &std::path::Path) -> f64 {
    let script = r#"
import os, struct, sys, pydicom
def seconds(tm):
    tm = str(tm)
    return int(tm[0:2]) * 3600 + int(tm[2:4]) * 60 + float(tm[4:])
best = None
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        try:
            d = pydicom.dcmread(os.path.join(root, name))
        except Exception:
            continue
        if "PixelData" not in d:
            continue
        n = d.Rows * d.Columns * int(d.get("NumberOfFrames", 1))
        code = {16: "h", 32: "i"}[d.BitsAllocated]
        code = code if d.PixelRepresentation else code.upper()
        raw = struct.unpack("<%d%s" % (n, code), d.PixelData[: n * d.BitsAllocated // 8])
        top = max(raw) * float(d.get("RescaleSlope", 1)) + float(d.get("RescaleIntercept", 0))
        if d.Units == "GML":
            factor = 1.0
        else:
            assert d.Units == "BQML" and d.DecayCorrection == "START", d.Units
            drug = d.RadiopharmaceuticalInformationSequence[0]
            elapsed = seconds(d.SeriesTime) - seconds(drug.RadiopharmaceuticalStartTime)
            dose = float(drug.RadionuclideTotalDose) * 2 ** (-elapsed / float(drug.RadionuclideHalfLife))
            factor = float(d.PatientWeight) * 1000 / dose
        best = top * factor if best is None else max(best, top * factor)
print(repr(best))
"#;
    let output = Command::new(python)
        .args(["-c", script])
        .arg(folder)
        .output()
        .expect("python runs");
    common::succeeded(&output);
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("a number")
}
