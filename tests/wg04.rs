//! The NEMA WG04 compression suite: lossless syntaxes decode pixel-identical to the
//! uncompressed reference; lossy ones (J2KI, JLSN, and the 12-bit JPEG JPLY that neither
//! dicom-pixeldata nor pydicom decode) stay within their expected error. Skips with a
//! printed reason when the shared data is absent.

mod common;

use dualmine::io::{self, dicom};

const IMAGES: [&str; 7] = ["CT1", "CT2", "MR1", "MR2", "MR3", "MR4", "NM1"];

fn reference(root: &std::path::Path, image: &str) -> Vec<f32> {
    io::load(&root.join("REF").join(format!("{image}_UNC")), None)
        .expect("reference decodes")
        .data
}

#[test]
fn lossless_variants_are_pixel_identical() {
    let Some(root) = common::shared_data("dicom/wg04") else {
        return;
    };
    for variant in ["J2KR", "JLSL", "JPLL", "RLE"] {
        for image in IMAGES {
            let path = root.join(variant).join(format!("{image}_{variant}"));
            let decoded = io::load(&path, None)
                .unwrap_or_else(|e| panic!("{variant} {image}: {e}"))
                .data;
            let expected = reference(&root, image);
            assert_eq!(decoded.len(), expected.len(), "{variant} {image}");
            let differing = decoded
                .iter()
                .zip(&expected)
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(differing, 0, "{variant} {image}: {differing} pixels differ");
            println!("{variant} {image}: identical ({} pixels)", decoded.len());
        }
    }
}

#[test]
fn lossy_variants_stay_close_to_the_reference() {
    let Some(root) = common::shared_data("dicom/wg04") else {
        return;
    };
    for variant in ["J2KI", "JLSN", "JPLY"] {
        for image in IMAGES {
            let path = root.join(variant).join(format!("{image}_{variant}"));
            if !path.exists() {
                continue;
            }
            match io::load(&path, None) {
                Ok(volume) => {
                    assert_eq!(volume.geometry.dims[2], 1, "{variant} {image}");
                    let expected = reference(&root, image);
                    let (min, max) = expected
                        .iter()
                        .fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
                    let range = f64::from(max - min).max(1.0);
                    let squared: f64 = volume
                        .data
                        .iter()
                        .zip(&expected)
                        .map(|(a, b)| f64::from(a - b).powi(2))
                        .sum();
                    let rms = (squared / expected.len() as f64).sqrt();
                    let worst = volume
                        .data
                        .iter()
                        .zip(&expected)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0f32, f32::max);
                    println!(
                        "{variant} {image}: RMS error {rms:.3} ({:.3}% of range), max {worst}",
                        100.0 * rms / range
                    );
                    // J2KI is compressed up to ~190:1; pydicom + OpenJPEG give the same
                    // errors (e.g. MR3: RMS 36.26 of range 1476).
                    assert!(
                        rms / range < 0.03,
                        "{variant} {image}: RMS {rms} of range {range}"
                    );
                    if variant == "JLSN" {
                        // Near-lossless JPEG-LS bounds every error by its NEAR parameter (4 here),
                        // in stored values: times the rescale slope in physical units.
                        let report = dicom::scan(&path).expect("scan");
                        let slope = report.series[0].first().frames[0].rescale.0 as f32;
                        assert!(
                            worst <= 4.0 * slope.abs() + 1e-3,
                            "{variant} {image}: max error {worst}"
                        );
                    }
                }
                Err(error) => panic!("{variant} {image}: {error}"),
            }
        }
    }
}
