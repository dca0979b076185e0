//! Saving and loading W-DUALMINE weights (burn's Burnpack format). A missing, truncated or
//! corrupt file, or one made for another network configuration, is a clear error — never a
//! silently half-loaded model. Saving is atomic (temporary file, then rename). Also the
//! weight average of several networks (a "model soup" of fine-tunes from one start).

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::{Device, Tensor, TensorData};
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
/// must be present with the right shape — except, for a configuration with the local part,
/// the local part's own (weights trained without it: the network then adds no local detail
/// at any d, `network::local`).
pub fn load(
    config: &DualMineConfig,
    path: &Path,
    device: &Device,
) -> Result<DualMine, WeightsError> {
    if config.local {
        load_into_extending(config.init(device), path)
    } else {
        load_into(config.init(device), path)
    }
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

/// [`load_into`] for a network with the local part from weights made without it (the
/// local part keeps its start).
pub fn load_into_extending<M: ModuleSnapshot>(model: M, path: &Path) -> Result<M, WeightsError> {
    if !path.is_file() {
        return Err(WeightsError::Missing {
            path: path.to_path_buf(),
        });
    }
    let store = BurnpackStore::from_file(path).auto_extension(false);
    load_from_store_allowing(model, store, path, &|name: &str| name.starts_with("local."))
}

fn load_from_store<M: ModuleSnapshot>(
    model: M,
    store: BurnpackStore,
    path: &Path,
) -> Result<M, WeightsError> {
    load_from_store_allowing(model, store, path, &|_| false)
}

/// [`load_from_store`] where the tensors `may_miss` names may be absent from the file.
fn load_from_store_allowing<M: ModuleSnapshot>(
    mut model: M,
    store: BurnpackStore,
    path: &Path,
    may_miss: &dyn Fn(&str) -> bool,
) -> Result<M, WeightsError> {
    // The store's own validation would report every mismatched tensor as a parse error (one
    // line per tensor); the result is checked below, with a short reason.
    let mut store = store.validate(false).allow_partial(true);
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
    let missing: Vec<_> = result
        .missing
        .iter()
        .filter(|(name, _)| !may_miss(name))
        .collect();
    if !result.errors.is_empty() || !missing.is_empty() || !result.unused.is_empty() {
        let first = result
            .errors
            .first()
            .map(|e| format!("; first: {e}"))
            .unwrap_or_default();
        let reason = format!(
            "{} tensors mismatched, {} missing, {} unexpected{first}",
            result.errors.len(),
            missing.len(),
            result.unused.len()
        );
        return Err(WeightsError::Mismatch {
            reason,
            path: path.to_path_buf(),
        });
    }
    Ok(model)
}

/// The network whose every parameter is the mean of that parameter over `networks`: the
/// weight average of fine-tunes that started from the same network with different seeds,
/// which varies less from seed to seed than any one of them. `None` when `networks` is empty
/// or its networks differ in their parameters' shapes (another configuration).
pub fn average(networks: Vec<DualMine>) -> Option<DualMine> {
    let count = networks.len();
    let mut networks = networks.into_iter();
    let first = networks.next()?;
    let shapes = |parameters: &[TensorData]| -> Vec<Vec<usize>> {
        parameters.iter().map(|p| p.shape().to_vec()).collect()
    };
    let first_shapes = shapes(&parameters_of(&first));
    let mut others = Vec::with_capacity(count - 1);
    for network in networks {
        let parameters = parameters_of(&network);
        if shapes(&parameters) != first_shapes {
            return None;
        }
        others.push(parameters.into_iter());
    }
    Some(first.map(&mut MeanParameters {
        others: &mut others,
        count,
    }))
}

fn parameters_of(network: &DualMine) -> Vec<TensorData> {
    let mut collect = CollectParameters(Vec::new());
    network.visit(&mut collect);
    collect.0
}

/// Collects a network's float parameters in visiting order.
struct CollectParameters(Vec<TensorData>);

impl ModuleVisitor for CollectParameters {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().into_data());
    }
}

/// Replaces each float parameter by its mean with the same-position parameters of `others`
/// (networks of one configuration visit their parameters in the same order).
struct MeanParameters<'a> {
    others: &'a mut [std::vec::IntoIter<TensorData>],
    count: usize,
}

impl ModuleMapper for MeanParameters<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let count = self.count as f32;
        let others = &mut *self.others;
        param.map(|tensor| {
            let device = tensor.device();
            // `average` checked that every network has this parameter, shaped alike.
            let sum = others
                .iter_mut()
                .filter_map(Iterator::next)
                .fold(tensor, |sum, data| {
                    sum + Tensor::<D>::from_data(data, &device)
                });
            sum / count
        })
    }
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

    #[test]
    fn weights_without_the_local_part_load_into_a_network_with_it_and_not_the_reverse() {
        let device = Device::flex();
        let dir = tempfile::tempdir().expect("temp dir");
        let (tiny, local) = (dir.path().join("tiny.bpk"), dir.path().join("local.bpk"));
        save(&DualMineConfig::tiny().init(&device), &tiny).expect("save");
        let with_local = DualMineConfig::named("tiny-local");
        let loaded = load(&with_local, &tiny, &device).expect("the local part may be missing");
        assert_eq!(
            loaded.local_weights(),
            Some(crate::fusion::network::local::LocalWeights::none(3))
        );
        save(&loaded, &local).expect("save");
        // A file with the local part is another network for `tiny` (unexpected tensors).
        assert!(load(&DualMineConfig::tiny(), &local, &device).is_err());
        // Only the local part may be missing: the base network's tensors may not.
        assert!(
            load(
                &DualMineConfig::named("base").with_local(true),
                &tiny,
                &device
            )
            .is_err()
        );
    }

    #[test]
    fn average_is_the_parameterwise_mean() {
        let device = Device::flex();
        let networks: Vec<DualMine> = (0..3)
            .map(|seed| {
                device.seed(seed);
                DualMineConfig::tiny().init(&device)
            })
            .collect();
        let parameters: Vec<Vec<f32>> = networks
            .iter()
            .map(|n| {
                parameters_of(n)
                    .into_iter()
                    .flat_map(|p| p.try_to_vec::<f32>().expect("f32"))
                    .collect()
            })
            .collect();
        assert_ne!(
            parameters[0], parameters[1],
            "seeds give different networks"
        );
        let averaged = average(networks).expect("one configuration");
        let got: Vec<f32> = parameters_of(&averaged)
            .into_iter()
            .flat_map(|p| p.try_to_vec::<f32>().expect("f32"))
            .collect();
        assert_eq!(got.len(), parameters[0].len());
        for (i, value) in got.iter().enumerate() {
            let mean = (parameters[0][i] + parameters[1][i] + parameters[2][i]) / 3.0;
            assert!(
                (value - mean).abs() <= 1e-6 * (1.0 + mean.abs()),
                "{i}: {value} vs {mean}"
            );
        }

        let mixed = vec![
            DualMineConfig::tiny().init(&device),
            DualMineConfig::base().init(&device),
        ];
        assert!(average(mixed).is_none());
        assert!(average(Vec::new()).is_none());
    }
}
