//! Helpers shared by the integration tests: where the shared third-party data lives, and (in
//! `viewer`) a harness that drives the real app.

#![allow(dead_code)]

use std::path::PathBuf;

#[cfg(feature = "app")]
pub mod viewer;

/// The shared data folder (`$DUALMINE_DATA`, else `../shared/data` beside the project), or
/// `None` with a printed reason so that a test can skip.
pub fn shared_data(sub: &str) -> Option<PathBuf> {
    let root = std::env::var_os("DUALMINE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let path = root.join(sub);
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "skipped: {} is absent (set DUALMINE_DATA to the shared data folder)",
            path.display()
        );
        None
    }
}

/// Every regular file under `root`, sorted.
pub fn files_under(root: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Asserts that a `dualmine` run succeeded, showing its stderr when it did not.
pub fn succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The first CT slice of a freshly written small phantom, copied alone into
/// `dir/original/slice.dcm` (so that the folder loads as a one-slice series).
pub fn phantom_ct_slice(dir: &std::path::Path) -> PathBuf {
    let studies =
        dualmine::phantom::write_demo(&dir.join("phantom"), dualmine::phantom::PhantomSize::SMALL)
            .expect("phantom");
    let first = files_under(&studies.ct)
        .into_iter()
        .next()
        .expect("a CT file");
    let folder = dir.join("original");
    std::fs::create_dir_all(&folder).expect("folder");
    let path = folder.join("slice.dcm");
    std::fs::copy(&first, &path).expect("copy");
    path
}

/// The first Python that has pydicom (a pyenv `python3` may not see Debian's package
/// python3-pydicom, which CI installs), or `None` with a printed reason.
pub fn python_with_pydicom() -> Option<&'static str> {
    let python = ["python3", "/usr/bin/python3"].into_iter().find(|python| {
        std::process::Command::new(python)
            .args(["-c", "import pydicom"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if python.is_none() {
        eprintln!("skipped: no python3 with pydicom (Debian package python3-pydicom)");
    }
    python
}
