//! The same W-DUALMINE weights give the same outputs on burn-wgpu (Mesa lavapipe in CI, a
//! real GPU elsewhere) and on the CPU backend, within 1e-3. Skips with a printed reason when
//! no wgpu adapter exists. Training steps (autodiff through every layer) run on wgpu too.

#![cfg(feature = "fusion")]

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use dualmine::fusion::network::model::DualMineConfig;

fn values(t: Tensor<4>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32")
}

#[test]
fn wgpu_and_cpu_agree_on_the_same_weights() {
    let gpu = match Device::wgpu_options().init() {
        Ok(device) => device,
        Err(error) => {
            eprintln!("skipped: no wgpu adapter ({error})");
            return;
        }
    };
    let cpu = Device::flex();
    let model = DualMineConfig::tiny().init(&cpu);
    let a = Tensor::<4>::random([1, 1, 24, 20], Distribution::Uniform(0.0, 1.0), &cpu);
    let b = Tensor::<4>::random([1, 1, 24, 20], Distribution::Uniform(0.0, 1.0), &cpu);
    let on_cpu = model.forward(a.clone(), b.clone());
    let model_gpu = model.to_device(&gpu);
    let on_gpu = model_gpu.forward(a.to_device(&gpu), b.to_device(&gpu));
    let compare = |x: Tensor<4>, y: Tensor<4>, what: &str| {
        let worst = values(x)
            .iter()
            .zip(values(y.to_device(&cpu)))
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "{what}: CPU and wgpu differ by {worst}");
    };
    compare(on_cpu.fused, on_gpu.fused, "fused");
    for s in 0..3 {
        compare(
            on_cpu.alpha[s].clone(),
            on_gpu.alpha[s].clone(),
            "mixer weights",
        );
        compare(
            on_cpu.reliability_a[s].clone(),
            on_gpu.reliability_a[s].clone(),
            "reliability",
        );
    }
}

#[test]
fn auto_backend_picks_a_device_and_says_which() {
    use dualmine::fusion::fuser::{Backend, Fuser};
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = dir.path().join("tiny.bpk");
    dualmine::fusion::network::weights::save(
        &DualMineConfig::tiny().init(&Device::flex()),
        &weights,
    )
    .expect("save");
    let fuser = Fuser::new(&DualMineConfig::tiny(), &weights, Backend::Auto).expect("a device");
    println!("auto backend: {}", fuser.description());
    assert!(fuser.description().starts_with("GPU") || fuser.description().starts_with("CPU"));
}

#[test]
fn training_steps_run_on_wgpu_too() {
    use dualmine::fusion::training::loss::LossWeights;
    use dualmine::fusion::training::sampler::TrainingPair;
    use dualmine::fusion::training::train::{TrainConfig, Trainer};
    let gpu = match Device::wgpu_options().init() {
        Ok(device) => device,
        Err(error) => {
            eprintln!("skipped: no wgpu adapter ({error})");
            return;
        }
    };
    let side = 24;
    let a: Vec<f32> = (0..side * side)
        .map(|i| (i % side) as f32 / side as f32)
        .collect();
    let b: Vec<f32> = (0..side * side)
        .map(|i| (i / side) as f32 / side as f32)
        .collect();
    let pairs = vec![TrainingPair {
        width: side,
        height: side,
        a,
        b,
        chroma: None,
    }];
    let config = TrainConfig::new(DualMineConfig::tiny(), LossWeights::new())
        .with_steps(2)
        .with_batch(1)
        .with_crop(16)
        .with_warmup(1);
    let mut trainer = Trainer::new(config, &gpu);
    for _ in 0..2 {
        let report = trainer.train_step(&pairs).expect("a training step on wgpu");
        assert!(report.total.is_finite(), "{report:?}");
    }
}
