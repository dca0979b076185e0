//! The Harvard (AANLIB) fusion benchmark as laid out in the shared data: `<root>/<task>/
//! <split>/<A folder>/<name>.png` paired with `<root>/<task>/<split>/MRI/<name>.png`, and the
//! published peers' results as `<peers>/<method>/<task>/<name>.png`.

use std::path::{Path, PathBuf};

use super::LoadError;

/// A fusion task of the benchmark: A is the functional or CT image, B the MRI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Task {
    CtMri,
    PetMri,
    SpectMri,
}

impl Task {
    pub const ALL: [Task; 3] = [Task::CtMri, Task::PetMri, Task::SpectMri];

    /// The folder name (`CT-MRI`, …).
    pub fn folder(self) -> &'static str {
        match self {
            Task::CtMri => "CT-MRI",
            Task::PetMri => "PET-MRI",
            Task::SpectMri => "SPECT-MRI",
        }
    }

    /// The command-line name (`ct-mri`, …).
    pub fn name(self) -> &'static str {
        match self {
            Task::CtMri => "ct-mri",
            Task::PetMri => "pet-mri",
            Task::SpectMri => "spect-mri",
        }
    }

    /// The folder of the A images.
    pub fn source_a(self) -> &'static str {
        match self {
            Task::CtMri => "CT",
            Task::PetMri => "PET",
            Task::SpectMri => "SPECT",
        }
    }

    pub fn parse(name: &str) -> Option<Task> {
        Task::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name) || t.folder().eq_ignore_ascii_case(name))
    }
}

/// One registered pair of the benchmark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    /// The shared file name without extension (e.g. `16009`).
    pub name: String,
    pub a: PathBuf,
    pub b: PathBuf,
}

/// The pairs of `task` in `split` (`train` or `test`), sorted by name: every A image with an
/// MRI of the same name.
pub fn pairs(root: &Path, task: Task, split: &str) -> Result<Vec<Pair>, LoadError> {
    let folder = root.join(task.folder()).join(split);
    let a_dir = folder.join(task.source_a());
    let b_dir = folder.join("MRI");
    let entries = std::fs::read_dir(&a_dir).map_err(|source| LoadError::Io {
        path: a_dir.clone(),
        source,
    })?;
    let mut pairs: Vec<Pair> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
        .filter_map(|a| {
            let file = a.file_name()?.to_owned();
            let b = b_dir.join(&file);
            let name = Path::new(&file).file_stem()?.to_string_lossy().into_owned();
            b.exists().then_some(Pair { name, a, b })
        })
        .collect();
    pairs.sort_by(|x, y| x.name.cmp(&y.name));
    Ok(pairs)
}
