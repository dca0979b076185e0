//! Fuzzes the NIfTI reader with arbitrary file contents.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("dualmine-fuzz-nii-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("input.nii");
    if std::fs::write(&path, data).is_ok() {
        let _ = dualmine::io::nifti::read(&path);
    }
});
