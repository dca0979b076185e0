//! Every file under the shared DICOM folder either loads or gives a clear error: no panic,
//! no abort. Each file is scanned and loaded on its own, then each folder as a whole.
//! Skips with a printed reason when the shared data is absent.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use dualmine::io::dicom;

#[test]
fn every_shared_dicom_file_loads_or_fails_cleanly() {
    let Some(root) = common::shared_data("dicom") else {
        return;
    };
    let mut loaded = 0;
    let mut errors = 0;
    let mut panics = Vec::new();
    let files = common::files_under(&root);
    for file in &files {
        let outcome = catch_unwind(AssertUnwindSafe(|| dicom::load_path(file, None)));
        match outcome {
            Ok(Ok(_)) => loaded += 1,
            Ok(Err(error)) => {
                errors += 1;
                let message = error.to_string();
                assert!(!message.is_empty());
                println!("error: {message}");
            }
            Err(_) => panics.push(file.display().to_string()),
        }
    }
    println!(
        "{} files: {loaded} loaded, {errors} clear errors",
        files.len()
    );
    assert!(panics.is_empty(), "panicked on: {panics:?}");
    assert!(loaded > 300, "only {loaded} files loaded");
}

#[test]
fn every_shared_folder_scans_and_its_series_load_or_fail_cleanly() {
    let Some(root) = common::shared_data("dicom") else {
        return;
    };
    let report = catch_unwind(|| dicom::scan(&root))
        .expect("scan must not panic")
        .expect("scan");
    let mut panics = 0;
    for series in &report.series {
        match catch_unwind(AssertUnwindSafe(|| dicom::load_series(series))) {
            Ok(Ok(volume)) => assert!(volume.data.iter().any(|v| v.is_finite())),
            Ok(Err(error)) => println!("series error: {error}"),
            Err(_) => panics += 1,
        }
    }
    println!(
        "{} series, {} unreadable files",
        report.series.len(),
        report.failed.len()
    );
    assert_eq!(panics, 0);
}
