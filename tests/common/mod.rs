//! Helpers shared by the integration tests: where the shared third-party data lives, and (in
//! `viewer`) a harness that drives the real app.

#![allow(dead_code)]

use std::path::PathBuf;

pub mod pacs;
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

/// The voxel holding the largest value of `volume`'s first channel.
pub fn hottest_voxel(volume: &dualmine::volume::Volume) -> [usize; 3] {
    let dims = volume.dims();
    let (hottest, _) = volume
        .data
        .iter()
        .step_by(volume.channels)
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .expect("values");
    [
        hottest % dims[0],
        hottest / dims[0] % dims[1],
        hottest / (dims[0] * dims[1]),
    ]
}

/// `dualmine stats ARGS --json`, run and parsed.
pub fn stats_json<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> serde_json::Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dualmine"))
        .arg("stats")
        .args(args)
        .arg("--json")
        .output()
        .expect("dualmine runs");
    succeeded(&output);
    serde_json::from_slice(&output.stdout).expect("JSON")
}

/// Asserts that `printed[name]` equals each `value` within `relative` (of at least 1).
pub fn assert_printed(printed: &serde_json::Value, expected: &[(&str, f64)], relative: f64) {
    for (name, value) in expected {
        let got = printed[*name].as_f64().expect(name);
        assert!(
            (got - value).abs() <= relative * value.abs().max(1.0),
            "{name}: dualmine stats printed {got}, expected {value}"
        );
    }
}

/// dciodvfy's error lines for `file` (None when dciodvfy is not installed).
pub fn dciodvfy_errors(file: &std::path::Path) -> Option<Vec<String>> {
    let output = std::process::Command::new("dciodvfy")
        .arg(file)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    Some(
        text.lines()
            .filter(|l| l.starts_with("Error"))
            .map(str::to_string)
            .collect(),
    )
}
