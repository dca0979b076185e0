//! `dualmine train` end to end: two runs with one seed are the same run (seeded initial
//! weights and batches), in separate processes, so that no other test's random draws share
//! the backend's generator. Needs the shared AANLIB pairs (skips without them).

#![cfg(feature = "fusion")]

mod common;

use std::path::Path;
use std::process::Command;

use burn::tensor::{Device, Tensor, TensorData};
use dualmine::fusion::model::DualMineConfig;
use dualmine::fusion::weights::load;

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
