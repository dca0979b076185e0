//! Saving and loading W-DUALMINE weights (burn's Burnpack format). A missing, truncated or
//! corrupt file, or one made for another network configuration, is a clear error — never a
//! silently half-loaded model. Saving is atomic (temporary file, then rename).

use std::path::{Path, PathBuf};

use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Device;
use thiserror::Error;

use super::model::{DualMine, DualMineConfig};

/// Why weights could not be saved or loaded.
#[derive(Debug, Error)]
pub enum WeightsError {
    #[error("weights file not found ({})", path.display())]
    Missing { path: PathBuf },
    #[error("weights file is unreadable, truncated or corrupt: {reason} ({})", path.display())]
    Corrupt { reason: String, path: PathBuf },
    #[error("weights were made for another network ({reason}) ({})", path.display())]
    Mismatch { reason: String, path: PathBuf },
    #[error("cannot write weights: {reason} ({})", path.display())]
    Write { reason: String, path: PathBuf },
}

/// Writes a file through `write(temporary_path)` and renames it onto `path` when complete,
/// so `path` is never half-written; the temporary file is removed on failure.
pub fn replace_atomically(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), WeightsError> {
    let write_error = |reason: String| WeightsError::Write {
        reason,
        path: path.to_path_buf(),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "weights".into());
    let temporary = path.with_file_name(format!(".{file_name}.{}.partial", std::process::id()));
    let written = write(&temporary)
        .map_err(write_error)
        .and_then(|()| std::fs::rename(&temporary, path).map_err(|e| write_error(e.to_string())));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// Writes `model`'s weights to `path` (atomically; an existing file is replaced).
pub fn save<M: ModuleSnapshot>(model: &M, path: &Path) -> Result<(), WeightsError> {
    replace_atomically(path, |temporary| {
        let mut store = BurnpackStore::from_file(temporary)
            .auto_extension(false)
            .overwrite(true);
        model.save_into(&mut store).map_err(|e| e.to_string())
    })
}

/// Builds a `config` network on `device` and loads its weights from `path`; every tensor
/// must be present with the right shape.
pub fn load(
    config: &DualMineConfig,
    path: &Path,
    device: &Device,
) -> Result<DualMine, WeightsError> {
    load_into(config.init(device), path)
}

/// Loads the weights at `path` into `model` (any module); every tensor must be present with
/// the right shape.
pub fn load_into<M: ModuleSnapshot>(model: M, path: &Path) -> Result<M, WeightsError> {
    if !path.is_file() {
        return Err(WeightsError::Missing {
            path: path.to_path_buf(),
        });
    }
    let store = BurnpackStore::from_file(path).auto_extension(false);
    load_from_store(model, store, path)
}

/// Builds a `config` network on `device` from weights held in memory (`name` says where
/// they came from in errors).
pub fn load_static(
    config: &DualMineConfig,
    bytes: &'static [u8],
    name: &str,
    device: &Device,
) -> Result<DualMine, WeightsError> {
    load_from_store(
        config.init(device),
        BurnpackStore::from_static(bytes),
        Path::new(name),
    )
}

fn load_from_store<M: ModuleSnapshot>(
    mut model: M,
    mut store: BurnpackStore,
    path: &Path,
) -> Result<M, WeightsError> {
    // The store may panic on some malformed inputs; that must stay an error here.
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.load_from(&mut store)))
            .map_err(|_| WeightsError::Corrupt {
                reason: "the file could not be parsed".into(),
                path: path.to_path_buf(),
            })?
            .map_err(|e| WeightsError::Corrupt {
                reason: e.to_string(),
                path: path.to_path_buf(),
            })?;
    if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
        let reason = format!(
            "{} tensors mismatched, {} missing, {} unexpected",
            result.errors.len(),
            result.missing.len(),
            result.unused.len()
        );
        return Err(WeightsError::Mismatch {
            reason,
            path: path.to_path_buf(),
        });
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tensor};

    #[test]
    fn round_trip_and_clear_errors() {
        let device = Device::flex();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("tiny.bpk");
        let model = DualMineConfig::tiny().init(&device);
        save(&model, &path).expect("save");
        let loaded = load(&DualMineConfig::tiny(), &path, &device).expect("load");
        let a = Tensor::<4>::random([1, 1, 16, 16], Distribution::Uniform(0.0, 1.0), &device);
        let b = Tensor::<4>::random([1, 1, 16, 16], Distribution::Uniform(0.0, 1.0), &device);
        let (x, y) = (model.forward(a.clone(), b.clone()), loaded.forward(a, b));
        let alpha = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().expect("f32");
        assert_eq!(alpha(x.alpha[1].clone()), alpha(y.alpha[1].clone()));

        assert!(matches!(
            load(
                &DualMineConfig::tiny(),
                &dir.path().join("absent.bpk"),
                &device
            ),
            Err(WeightsError::Missing { .. })
        ));
        assert!(matches!(
            load(&DualMineConfig::base(), &path, &device),
            Err(WeightsError::Mismatch { .. } | WeightsError::Corrupt { .. })
        ));
        let bytes = std::fs::read(&path).expect("read");
        let truncated = dir.path().join("truncated.bpk");
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
        assert!(load(&DualMineConfig::tiny(), &truncated, &device).is_err());
        std::fs::write(&truncated, b"garbage").expect("write");
        assert!(load(&DualMineConfig::tiny(), &truncated, &device).is_err());
    }
}
