//! Guards the layering of ARCHITECTURE.md: each layer imports only the frameworks it owns
//! (as rerun guards its dependency rules). Reads the `use` lines of every source file.

use std::path::Path;

/// Crates and layers above it that each layer must not import.
const RULES: [(&str, &[&str]); 7] = [
    (
        "src/metrics",
        &[
            "dicom_", "burn", "egui", "eframe", "rfd", "wgpu", "image", "crate::",
        ],
    ),
    (
        "src/baselines",
        &[
            "dicom_", "burn", "egui", "eframe", "rfd", "wgpu", "image", "crate::",
        ],
    ),
    (
        "src/volume",
        &[
            "dicom_",
            "burn",
            "egui",
            "eframe",
            "rfd",
            "wgpu",
            "image",
            "crate::io",
            "crate::export",
            "crate::fusion",
            "crate::app",
            "crate::phantom",
        ],
    ),
    (
        "src/io",
        &[
            "burn",
            "egui",
            "eframe",
            "rfd",
            "wgpu",
            "crate::export",
            "crate::fusion",
            "crate::app",
        ],
    ),
    (
        "src/export",
        &["burn", "egui", "eframe", "rfd", "wgpu", "crate::app"],
    ),
    (
        "src/fusion",
        &["dicom_", "egui", "eframe", "rfd", "crate::io", "crate::app"],
    ),
    (
        "src/phantom.rs",
        &["dicom_", "burn", "egui", "eframe", "crate::app"],
    ),
];

fn rust_files(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_file() {
        out.push(path.to_path_buf());
    } else if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            rust_files(&entry.path(), out);
        }
    }
}

#[test]
fn layers_import_only_what_they_own() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut violations = Vec::new();
    for (layer, forbidden) in RULES {
        let mut files = Vec::new();
        rust_files(&root.join(layer), &mut files);
        assert!(!files.is_empty(), "{layer} has no sources");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("source readable");
            for line in text.lines().map(str::trim) {
                let imported = line
                    .strip_prefix("use ")
                    .or_else(|| line.strip_prefix("pub use "));
                if let Some(path) = imported
                    && forbidden.iter().any(|f| path.starts_with(f))
                {
                    violations.push(format!("{}: {line}", file.display()));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
}
