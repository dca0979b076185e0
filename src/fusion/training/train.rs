//! Training W-DUALMINE: the network plus a light reconstruction head, Adam with warm-up and
//! cosine decay, seeded initial weights and batches, and checkpoints (network + head,
//! optimiser state, progress) that a run can resume from exactly.

use std::path::Path;
use std::time::Instant;

use burn::config::Config;
use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use thiserror::Error;

use super::loss::{LossInputs, LossTerms, LossWeights, MI_SAMPLES, composite};
use super::sampler::{Rng, TrainingPair, draw_batch};
use crate::fusion::network::decoder::DEFAULT_DETAIL_GAIN;
use crate::fusion::network::model::{DualMine, DualMineConfig};
use crate::fusion::network::weights::{
    WeightsError, load_into, load_into_extending, replace_atomically, save,
};
use crate::fusion::ops::conv::conv2d;
use crate::fusion::ops::cpu::freed_memory::KeepFreedMemory;
use crate::fusion::ops::device::on_cpu_workers;
use crate::fusion::ops::host::first_value;

/// Everything that defines a training run (saved with every checkpoint).
#[derive(Config, Debug)]
pub struct TrainConfig {
    pub network: DualMineConfig,
    pub loss: LossWeights,
    #[config(default = 2000)]
    pub steps: usize,
    #[config(default = 4)]
    pub batch: usize,
    /// Side of the square training crops.
    #[config(default = 128)]
    pub crop: usize,
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    #[config(default = 100)]
    pub warmup: usize,
    #[config(default = 0)]
    pub seed: u64,
    /// γ of the decoder's local term (fixed for the run; see `decoder`).
    #[config(default = "DEFAULT_DETAIL_GAIN")]
    pub detail_gain: f32,
    /// The detail control d of the detailed end (0: the network is trained at d = 0 alone).
    /// With the whole network training, each step scores the image at d = 0 with `loss`
    /// and at d with `detail_loss`; with `local_only`, at d alone with `loss`.
    #[config(default = 0.0)]
    pub detail: f32,
    /// The λ at the detailed end (`loss` when absent).
    pub detail_loss: Option<LossWeights>,
    /// Only the local part (`network::local`) is trained; the rest of the network stays as
    /// it started (its d = 0 fusion is unchanged, bit for bit).
    #[config(default = false)]
    pub local_only: bool,
}

/// Why training could not go on.
#[derive(Debug, Error)]
pub enum TrainError {
    #[error("no training pairs")]
    NoData,
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error("checkpoint {what} could not be {action}: {reason}")]
    Checkpoint {
        what: &'static str,
        action: &'static str,
        reason: String,
    },
    #[error("the loss became {0} at step {1}: lower the learning rate")]
    Diverged(f32, usize),
    #[error(
        "training at a detail above 0 needs a network with a local part (--config tiny-local), \
         and training the local part alone needs a detail above 0"
    )]
    NoLocalPart,
}

/// The network and the reconstruction head used only by `L_rec`.
#[derive(Module, Debug)]
pub struct TrainingModel {
    pub network: DualMine,
    reconstruction: Conv2d,
}

impl TrainingModel {
    pub fn new(config: &DualMineConfig, device: &Device) -> Self {
        let network = config.init(device);
        let reconstruction = Conv2dConfig::new([network.fine_channels(), 1], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device);
        Self {
            network,
            reconstruction,
        }
    }
}

/// The loss terms of one step as numbers, and its duration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    pub step: usize,
    pub learning_rate: f64,
    pub total: f32,
    pub average: f32,
    pub gradient: f32,
    pub correlation: f32,
    pub mutual_information: f32,
    pub reconstruction: f32,
    pub reliability: f32,
    pub structure: f32,
    pub seconds: f64,
}

/// A training run in progress.
pub struct Trainer {
    pub config: TrainConfig,
    model: TrainingModel,
    optimizer: ModuleOptimizer,
    step: usize,
    rng: Rng,
    device: Device,
    /// Freed memory stays in the process for the run's lifetime (every step frees and
    /// reallocates the same tensors).
    _memory: KeepFreedMemory,
}

const MODEL_FILE: &str = "model.bpk";
/// The network's weights alone in a checkpoint folder.
pub const NETWORK_FILE: &str = "network.bpk";
const OPTIMIZER_FILE: &str = "optimizer.bpk";
const STATE_FILE: &str = "state.json";
const CONFIG_FILE: &str = "config.json";

impl Trainer {
    /// A fresh run on `device` (an autodiff device is made from it).
    pub fn new(config: TrainConfig, device: &Device) -> Self {
        // The initial weights come from the device's generator: seeded, a rerun starts from
        // the same network (the batches are seeded by `Rng` below).
        device.seed(config.seed);
        let device = device.clone().autodiff();
        let mut model = TrainingModel::new(&config.network, &device);
        model.network.set_detail_gain(config.detail_gain);
        Self {
            rng: Rng(config.seed),
            config,
            model,
            optimizer: AdamConfig::new().init(),
            step: 0,
            device,
            _memory: KeepFreedMemory::new(),
        }
    }

    /// Starts the network from trained weights (fine-tuning, e.g. for one task); the
    /// reconstruction head and the optimiser start fresh, and γ is this run's.
    pub fn start_from(&mut self, weights: &Path) -> Result<(), TrainError> {
        let network = self.model.network.clone();
        self.model.network = load_into_extending(network, weights)?;
        self.model.network.set_detail_gain(self.config.detail_gain);
        Ok(())
    }

    /// Steps done so far.
    pub fn step(&self) -> usize {
        self.step
    }

    /// Learning rate at `step`: linear warm-up, then cosine decay to 5 %.
    pub fn learning_rate(&self, step: usize) -> f64 {
        let base = self.config.learning_rate;
        if step < self.config.warmup {
            return base * (step + 1) as f64 / self.config.warmup as f64;
        }
        let span = self.config.steps.saturating_sub(self.config.warmup).max(1);
        let t = ((step - self.config.warmup) as f64 / span as f64).min(1.0);
        base * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
    }

    /// One optimisation step on a fresh batch; on the CPU on rayon's workers
    /// (`ops::device::on_cpu_workers`).
    pub fn train_step(&mut self, pairs: &[TrainingPair]) -> Result<StepReport, TrainError> {
        let device = self.device.clone();
        on_cpu_workers(&device, || self.train_step_here(pairs))
    }

    /// [`Self::train_step`] on the calling thread.
    fn train_step_here(&mut self, pairs: &[TrainingPair]) -> Result<StepReport, TrainError> {
        if pairs.is_empty() {
            return Err(TrainError::NoData);
        }
        // Without a local part the image at d > 0 is the one at d = 0: nothing to train there
        // (and both ends would fuse the same image twice).
        let has_local = self.model.network.local_head().is_some();
        let detail = self.config.detail > 0.0;
        if (detail && !has_local) || (self.config.local_only && !detail) {
            return Err(TrainError::NoLocalPart);
        }
        let started = Instant::now();
        let (count, side) = (self.config.batch, self.config.crop);
        let batch = draw_batch(pairs, count, side, &mut self.rng);
        let tensor = |v: Vec<f32>| {
            Tensor::<4>::from_data(TensorData::new(v, [count, 1, side, side]), &self.device)
        };
        let (a, b) = (tensor(batch.a), tensor(batch.b));
        let chroma = [tensor(batch.cb), tensor(batch.cr)];
        let pixels = side * side;
        let sample: Vec<i64> = (0..MI_SAMPLES.min(pixels))
            .map(|_| self.rng.below(pixels) as i64)
            .collect();
        let terms = self.losses(a, b, chroma, &sample);
        let total = first_value(terms.total.clone());
        if !total.is_finite() {
            return Err(TrainError::Diverged(total, self.step));
        }
        let learning_rate = self.learning_rate(self.step);
        let mut gradients = terms.total.backward();
        let gradients = if self.config.local_only {
            let head = self
                .model
                .network
                .local_head()
                .ok_or(TrainError::NoLocalPart)?;
            GradientsParams::from_module(&mut gradients, head)
        } else {
            GradientsParams::from_grads(gradients, &self.model)
        };
        self.model = self
            .optimizer
            .step(learning_rate, self.model.clone(), gradients);
        self.step += 1;
        Ok(StepReport {
            step: self.step,
            learning_rate,
            total,
            average: first_value(terms.average),
            gradient: first_value(terms.gradient),
            correlation: first_value(terms.correlation),
            mutual_information: first_value(terms.mutual_information),
            reconstruction: first_value(terms.reconstruction),
            reliability: first_value(terms.reliability),
            structure: first_value(terms.structure),
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// The step's loss: at d = 0 (the network alone), at d (the local part alone), or the
    /// sum of both ends (the whole network with its local part); the terms reported are the
    /// faithful end's, L_ssim the detailed end's.
    fn losses(
        &self,
        a: Tensor<4>,
        b: Tensor<4>,
        chroma: [Tensor<4>; 2],
        sample: &[i64],
    ) -> LossTerms {
        let detail = self.config.detail;
        if detail <= 0.0 {
            return self.loss_at(a, b, chroma, sample, 0.0, &self.config.loss);
        }
        if self.config.local_only {
            return self.loss_at(a, b, chroma, sample, detail, &self.config.loss);
        }
        let at_detail = self
            .config
            .detail_loss
            .as_ref()
            .unwrap_or(&self.config.loss);
        let faithful = self.loss_at(
            a.clone(),
            b.clone(),
            chroma.clone(),
            sample,
            0.0,
            &self.config.loss,
        );
        let detailed = self.loss_at(a, b, chroma, sample, detail, at_detail);
        LossTerms {
            total: faithful.total + detailed.total,
            structure: detailed.structure,
            ..faithful
        }
    }

    /// The loss of the image fused at `detail` with `weights`.
    fn loss_at(
        &self,
        a: Tensor<4>,
        b: Tensor<4>,
        chroma: [Tensor<4>; 2],
        sample: &[i64],
        detail: f32,
        weights: &LossWeights,
    ) -> LossTerms {
        let (output, [fine_a, fine_b]) =
            self.model
                .network
                .forward_with_features(a.clone(), b.clone(), detail);
        let reconstruct = |f: Tensor<4>| sigmoid(conv2d(&self.model.reconstruction, f));
        let inputs = LossInputs {
            reconstructed_a: reconstruct(fine_a),
            reconstructed_b: reconstruct(fine_b),
            a,
            b,
            chroma,
            fused: output.fused,
            reliability_a: output.reliability_a,
        };
        composite(inputs, weights, sample)
    }

    /// The trained network, ready for inference (no autodiff).
    pub fn network(&self) -> DualMine {
        self.model.network.valid()
    }

    /// Writes a checkpoint into `dir` (created if needed); each file is replaced atomically.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<(), TrainError> {
        let failed = |what, reason: String| TrainError::Checkpoint {
            what,
            action: "written",
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| failed("folder", e.to_string()))?;
        save(&self.model, &dir.join(MODEL_FILE))?;
        // The network alone, loadable by `fuse` and `eval` while training goes on.
        save(&self.network(), &dir.join(NETWORK_FILE))?;
        replace_atomically(&dir.join(OPTIMIZER_FILE), |temporary| {
            self.optimizer.save(temporary).map_err(|e| e.to_string())
        })?;
        let state = serde_json::json!({ "step": self.step, "rng": self.rng.0 });
        for (name, text) in [
            (STATE_FILE, state.to_string()),
            (CONFIG_FILE, self.config.to_string()),
        ] {
            replace_atomically(&dir.join(name), |temporary| {
                std::fs::write(temporary, text).map_err(|e| e.to_string())
            })?;
        }
        Ok(())
    }

    /// Resumes the run saved in `dir` (its own configuration, step, generator state).
    pub fn resume(dir: &Path, device: &Device) -> Result<Self, TrainError> {
        let failed = |what, reason: String| TrainError::Checkpoint {
            what,
            action: "read",
            reason,
        };
        let config = TrainConfig::load(dir.join(CONFIG_FILE))
            .map_err(|e| failed("configuration", e.to_string()))?;
        let state: serde_json::Value = std::fs::read_to_string(dir.join(STATE_FILE))
            .map_err(|e| failed("progress", e.to_string()))
            .and_then(|t| {
                serde_json::from_str(&t).map_err(|e| failed("progress", e.to_string()))
            })?;
        let (Some(step), Some(rng)) = (state["step"].as_u64(), state["rng"].as_u64()) else {
            return Err(failed("progress", "step or generator state missing".into()));
        };
        let mut trainer = Trainer::new(config, device);
        trainer.model = load_into(trainer.model, &dir.join(MODEL_FILE))?;
        trainer.optimizer = AdamConfig::new()
            .init()
            .load(dir.join(OPTIMIZER_FILE))
            .map_err(|e| failed("optimizer state", e.to_string()))?;
        trainer.step = step as usize;
        trainer.rng = Rng(rng);
        Ok(trainer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusion::ops::host::values;

    fn phantom_pairs() -> Vec<TrainingPair> {
        // Two registered "modalities" of one shape: a bright ring in A, a filled disc with a
        // texture in B.
        let side = 48;
        let mut a = vec![0.0; side * side];
        let mut b = vec![0.0; side * side];
        for y in 0..side {
            for x in 0..side {
                let r = ((x as f32 - 24.0).powi(2) + (y as f32 - 24.0).powi(2)).sqrt();
                a[y * side + x] = if (14.0..18.0).contains(&r) { 0.9 } else { 0.1 };
                b[y * side + x] = if r < 18.0 {
                    0.4 + 0.3 * ((x / 3 + y / 3) % 2) as f32
                } else {
                    0.0
                };
            }
        }
        vec![TrainingPair {
            width: side,
            height: side,
            a,
            b,
            chroma: None,
        }]
    }

    #[test]
    fn a_few_steps_lower_the_loss_and_a_checkpoint_resumes_exactly() {
        let config = TrainConfig::new(DualMineConfig::tiny(), LossWeights::new())
            .with_steps(30)
            .with_batch(2)
            .with_crop(32)
            .with_learning_rate(3e-3)
            .with_warmup(2);
        let pairs = phantom_pairs();
        let mut trainer = Trainer::new(config, &Device::flex());
        let reports: Vec<StepReport> = (0..30)
            .map(|_| trainer.train_step(&pairs).expect("step"))
            .collect();
        let mean = |r: &[StepReport]| r.iter().map(|s| s.total).sum::<f32>() / r.len() as f32;
        let (first, last) = (mean(&reports[..5]), mean(&reports[25..]));
        assert!(last < first, "loss did not fall: {first} → {last}");

        let dir = tempfile::tempdir().expect("temp dir");
        trainer.save_checkpoint(dir.path()).expect("checkpoint");
        let mut resumed = Trainer::resume(dir.path(), &Device::flex()).expect("resume");
        assert_eq!(resumed.step(), 30);
        let (x, y) = (
            trainer.train_step(&pairs).expect("step"),
            resumed.train_step(&pairs).expect("step"),
        );
        assert!((x.total - y.total).abs() < 1e-5, "{x:?} vs {y:?}");
    }

    /// One 16² crop per step.
    fn small_config() -> TrainConfig {
        TrainConfig::new(DualMineConfig::tiny(), LossWeights::new())
            .with_batch(1)
            .with_crop(16)
    }

    #[test]
    fn training_the_local_part_alone_leaves_the_faithful_end_unchanged() {
        let pairs = phantom_pairs();
        let with_network =
            |config: TrainConfig, network: DualMineConfig| TrainConfig { network, ..config };
        let config = || {
            with_network(small_config(), DualMineConfig::named("tiny-local"))
                .with_learning_rate(1e-2)
                .with_detail(1.0)
                .with_local_only(true)
        };
        let mut trainer = Trainer::new(config(), &Device::flex());
        let before = trainer.network();
        for _ in 0..3 {
            trainer.train_step(&pairs).expect("step");
        }
        let after = trainer.network();
        assert_ne!(before.local_weights(), after.local_weights());
        let input = |v: f32| Tensor::<4>::full([1, 1, 16, 16], v, &Device::flex());
        let fused = |n: &DualMine| values(n.forward(input(0.3), input(0.7)).fused);
        assert_eq!(fused(&before), fused(&after));
        // Without a local part, or at d = 0, there is nothing to train.
        for config in [
            with_network(config(), DualMineConfig::tiny()),
            config().with_detail(0.0),
        ] {
            let mut trainer = Trainer::new(config, &Device::flex());
            assert!(matches!(
                trainer.train_step(&pairs),
                Err(TrainError::NoLocalPart)
            ));
        }
    }

    #[test]
    fn training_both_ends_scores_the_detailed_image_and_moves_the_whole_network() {
        let pairs = phantom_pairs();
        let config = TrainConfig {
            network: DualMineConfig::named("tiny-local"),
            ..small_config()
        }
        .with_learning_rate(1e-2)
        .with_detail(1.0)
        .with_detail_loss(Some(LossWeights::new().with_structure(1.0)));
        let mut trainer = Trainer::new(config, &Device::flex());
        let before = trainer.network();
        let reports: Vec<StepReport> = (0..3)
            .map(|_| trainer.train_step(&pairs).expect("step"))
            .collect();
        // L_ssim is the detailed end's (the faithful end's λ_ssim is 0).
        assert!(
            reports
                .iter()
                .all(|r| r.structure > 0.0 && r.structure < 1.0)
        );
        let input = |v: f32| Tensor::<4>::full([1, 1, 16, 16], v, &Device::flex());
        let fused = |n: &DualMine| values(n.forward(input(0.3), input(0.7)).fused);
        assert_ne!(fused(&before), fused(&trainer.network()));
    }

    #[test]
    fn a_run_can_start_from_saved_network_weights() {
        let config = || small_config().with_learning_rate(1e-2);
        let pairs = phantom_pairs();
        let mut trained = Trainer::new(config(), &Device::flex());
        for _ in 0..3 {
            trained.train_step(&pairs).expect("step");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let weights = dir.path().join("network.bpk");
        save(&trained.network(), &weights).expect("save");
        let mut started = Trainer::new(config(), &Device::flex());
        started.start_from(&weights).expect("start from weights");
        assert_eq!(started.step(), 0);
        let input = || Tensor::<4>::full([1, 1, 16, 16], 0.3, &Device::flex());
        let output = |t: &Trainer| {
            t.network()
                .forward(input(), input() * 2.0)
                .fused
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32")
        };
        assert_eq!(output(&trained), output(&started));
        assert!(
            Trainer::new(config(), &Device::flex())
                .start_from(&dir.path().join("absent.bpk"))
                .is_err()
        );
    }
}
