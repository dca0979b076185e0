//! Fuzzes the DICOM parse → header → layout → decode → volume path with arbitrary file
//! contents: it must return a volume or an error, never panic or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("dualmine-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("input.dcm");
    let Ok(mut file) = std::fs::File::create(&path) else {
        return;
    };
    if file.write_all(data).is_err() {
        return;
    }
    drop(file);
    let _ = dualmine::io::dicom::load_path(&path, None);
});
