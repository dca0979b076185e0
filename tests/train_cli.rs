//! `dualmine train` end to end: two runs with one seed are the same run (seeded initial
//! weights and batches), in separate processes, so that no other test's random draws share
//! the backend's generator. Needs the shared AANLIB pairs (skips without them).

#![cfg(feature = "fusion")]

mod common;

use std::path::Path;
use std::process::Command;

use burn::tensor::{Device, Tensor, TensorData};
use dualmine::fusion::network::model::DualMineConfig;
use dualmine::fusion::network::weights::load;

fn train(aanlib: &Path, dir: &Path, name: &str, seed: &str) -> Vec<f32> {
    let output = Command::new(env!("CARGO_BIN_EXE_dualmine"))
        .args(["train", "--task", "ct-mri", "--backend", "cpu"])
        .args([
            "--steps", "2", "--batch", "1", "--crop", "32", "--warmup", "1",
        ])
        .args(["--seed", seed])
        .arg("--data")
        .arg(aanlib)
        .arg("-o")
        .arg(dir.join(format!("{name}.bpk")))
        .arg("--checkpoint")
        .arg(dir.join(name))
        .output()
        .expect("dualmine runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The trained network's answer on a fixed input stands for its weights.
    let device = Device::flex();
    let model = load(
        &DualMineConfig::tiny(),
        &dir.join(format!("{name}.bpk")),
        &device,
    )
    .expect("weights load");
    let ramp: Vec<f32> = (0..32 * 32).map(|i| (i % 32) as f32 / 31.0).collect();
    let a = Tensor::<4>::from_data(TensorData::new(ramp.clone(), [1, 1, 32, 32]), &device);
    let b = Tensor::<4>::from_data(TensorData::new(ramp, [1, 1, 32, 32]), &device).flip([3]);
    let out = model.forward(a, b);
    let mut values = out.fused.into_data().try_to_vec::<f32>().expect("f32");
    values.extend(
        out.reliability_a[0]
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32"),
    );
    values
}

#[test]
fn two_runs_with_one_seed_are_the_same_run() {
    let Some(aanlib) = common::shared_data("aanlib") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let first = train(&aanlib, dir.path(), "first", "3");
    let again = train(&aanlib, dir.path(), "again", "3");
    let other = train(&aanlib, dir.path(), "other", "4");
    assert_eq!(first, again, "one seed, two different networks");
    assert_ne!(first, other, "two seeds, one network");
}

/// `dualmine average-weights` writes the parameter-wise mean of its inputs (the library's
/// `average`, itself checked against the mean in a unit test), and refuses a missing file or
/// a file made for another configuration by naming it, writing nothing.
#[test]
fn average_weights_writes_the_mean_network_or_a_clear_error() {
    use dualmine::fusion::network::weights::{average, save};
    let dir = tempfile::tempdir().expect("temp dir");
    let device = Device::flex();
    let mut inputs = Vec::new();
    for seed in 0..2 {
        device.seed(seed);
        let path = dir.path().join(format!("seed{seed}.bpk"));
        save(&DualMineConfig::tiny().init(&device), &path).expect("save");
        inputs.push(path);
    }
    let run = |inputs: &[&Path], output: &Path| {
        Command::new(env!("CARGO_BIN_EXE_dualmine"))
            .arg("average-weights")
            .args(inputs)
            .arg("-o")
            .arg(output)
            .output()
            .expect("dualmine runs")
    };
    let out = dir.path().join("mean.bpk");
    let done = run(&[&inputs[0], &inputs[1]], &out);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );

    // Every float parameter, in the network's visiting order.
    struct Parameters(Vec<f32>);
    impl burn::module::ModuleVisitor for Parameters {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let values = param.val().into_data().try_to_vec::<f32>().expect("f32");
            self.0.extend(values);
        }
    }
    let answer = |model: &dualmine::fusion::network::model::DualMine| {
        use burn::module::Module;
        let mut parameters = Parameters(Vec::new());
        model.visit(&mut parameters);
        parameters.0
    };
    let load_tiny = |p: &Path| load(&DualMineConfig::tiny(), p, &device).expect("weights load");
    let written = answer(&load_tiny(&out));
    let expected =
        answer(&average(inputs.iter().map(|p| load_tiny(p)).collect()).expect("one configuration"));
    assert_eq!(written, expected);
    assert_ne!(written, answer(&load_tiny(&inputs[0])));

    let missing = dir.path().join("absent.bpk");
    let refused = dir.path().join("refused.bpk");
    let failed = run(&[&inputs[0], &missing], &refused);
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("absent.bpk"));
    let base = dir.path().join("base.bpk");
    save(&DualMineConfig::base().init(&device), &base).expect("save");
    let failed = run(&[&inputs[0], &base], &refused);
    assert!(!failed.status.success());
    let message = String::from_utf8_lossy(&failed.stderr);
    assert!(
        message.contains("another network") && message.contains("base.bpk"),
        "{message}"
    );
    assert!(!refused.exists(), "nothing written on failure");
}
