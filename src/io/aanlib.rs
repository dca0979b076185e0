//! The Harvard (AANLIB) fusion benchmark as laid out in the shared data: `<root>/<task>/
//! <split>/<A folder>/<name>.png` paired with `<root>/<task>/<split>/MRI/<name>.png`, and the
//! published peers' results as `<peers>/<method>/<task>/<name>.png`. The benchmark's `train/`
//! folder is divided here into the pairs trained on and a fixed validation split
//! (`assets/validation-split.txt`, built into the program), on which every training choice
//! is made; `test/` is scored once per shipped model.

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

/// A part of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// `train/` less the validation pairs: what training sees.
    Train,
    /// The validation pairs carved from `train/`.
    Validation,
    /// `test/`.
    Test,
}

impl Split {
    pub fn parse(name: &str) -> Option<Split> {
        match name.to_ascii_lowercase().as_str() {
            "train" => Some(Split::Train),
            "validation" | "val" => Some(Split::Validation),
            "test" => Some(Split::Test),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }
}

/// The committed list of validation pairs (task folder, pair name per line).
const VALIDATION_LIST: &str = include_str!("../../assets/validation-split.txt");

/// The names of `task`'s validation pairs.
pub fn validation_names(task: Task) -> Vec<&'static str> {
    VALIDATION_LIST
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once(' '))
        .filter(|(folder, _)| *folder == task.folder())
        .map(|(_, name)| name.trim())
        .collect()
}

/// The pairs of `task` in `split`, sorted by name.
pub fn split_pairs(root: &Path, task: Task, split: Split) -> Result<Vec<Pair>, LoadError> {
    if split == Split::Test {
        return pairs(root, task, "test");
    }
    let validation = validation_names(task);
    Ok(pairs(root, task, "train")?
        .into_iter()
        .filter(|p| validation.contains(&p.name.as_str()) == (split == Split::Validation))
        .collect())
}

/// The pairs in the benchmark's folder `split` (`train` or `test`), sorted by name: every A
/// image with an MRI of the same name.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_validation_split_is_a_tenth_of_each_training_folder() {
        // 160, 245 and 333 training pairs (the paper's split): every tenth.
        for (task, count) in [(Task::CtMri, 16), (Task::PetMri, 25), (Task::SpectMri, 33)] {
            let names = validation_names(task);
            assert_eq!(names.len(), count, "{task:?}");
            let mut unique = names.clone();
            unique.dedup();
            assert_eq!(unique.len(), names.len());
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/aanlib");
        if !root.is_dir() {
            eprintln!("skipped the data check: {} is absent", root.display());
            return;
        }
        for task in Task::ALL {
            let all = pairs(&root, task, "train").expect("train pairs");
            let train = split_pairs(&root, task, Split::Train).expect("train split");
            let validation = split_pairs(&root, task, Split::Validation).expect("validation");
            assert_eq!(validation.len(), validation_names(task).len(), "{task:?}");
            assert_eq!(train.len() + validation.len(), all.len());
            assert!(train.iter().all(|p| !validation.contains(p)));
        }
    }
}
