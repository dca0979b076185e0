//! `dualmine eval` end to end on the shared AANLIB CT–MRI test pairs, with untrained weights
//! written by the test: the untrained network (with its local part) returns exactly the
//! average at every detail control d, so its rows — at the default d and along the curve
//! d = 0 … 1 — must equal the Average baseline's row number for number, and the peers' rows
//! must carry MODEL.md's published means. Also `--csv` and `--figure`.

#![cfg(feature = "fusion")]

mod common;

use std::process::Command;

use burn::tensor::Device;
use dualmine::fusion::network::model::DualMineConfig;
use dualmine::fusion::network::weights::save;

#[test]
fn eval_prints_peers_baselines_and_the_model() {
    let Some(aanlib) = common::shared_data("aanlib") else {
        return;
    };
    let data = aanlib.parent().expect("shared data folder").to_path_buf();
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = dir.path().join("tiny.bpk");
    let untrained = DualMineConfig::named("tiny-local").init(&Device::flex());
    save(&untrained, &weights).expect("save weights");
    let (csv, figure) = (dir.path().join("scores.csv"), dir.path().join("figure.png"));
    let output = Command::new(env!("CARGO_BIN_EXE_dualmine"))
        .args(["eval", "--task", "ct-mri", "--no-fmi", "--backend", "cpu"])
        .arg("--data")
        .arg(&data)
        .arg("--weights")
        .arg(&weights)
        .arg("--csv")
        .arg(&csv)
        .arg("--figure")
        .arg(&figure)
        .output()
        .expect("dualmine runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let row = |method: &str| -> String {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {method} |")))
            .unwrap_or_else(|| panic!("no {method} row in:\n{stdout}"));
        line[method.len() + 4..].to_string()
    };
    assert_eq!(row("W-DUALMINE (this project)"), row("Average"));
    for d in ["0", "0.25", "0.5", "0.75", "1"] {
        assert_eq!(
            row(&format!("W-DUALMINE d = {d}")),
            row("Average"),
            "d = {d}"
        );
    }
    assert!(row("AdaFuse").starts_with(" 5.0592 ± 0.235 | 3.3570 ± 0.198 | 0.8306"));
    assert!(row("ASFE-Fusion").starts_with(" 5.4855 ± 0.273 | 3.1463 ± 0.161 | 0.8302"));
    row("TEA-Net");
    for baseline in ["Laplacian pyramid", "DWT max-detail", "GFF"] {
        row(baseline);
    }
    // The locality table: the untrained network is a global blend (0.00) whose maps are
    // 0.5 everywhere (span 0, nothing changes when they or the mixer weights are set to
    // 0.5); AdaFuse's 0.95.
    let locality = |method: &str| -> String {
        stdout
            .lines()
            .filter(|l| l.starts_with(&format!("| {method} |")))
            .nth(1)
            .unwrap_or_else(|| panic!("no {method} locality row in:\n{stdout}"))
            .to_string()
    };
    assert_eq!(
        locality("W-DUALMINE (this project)"),
        "| W-DUALMINE (this project) | 0.00 ± 0.00 (min 0.00) | 0.00 ± 0.00 (min 0.00) | \
         0.00 ± 0.00 (min 0.00) | 0.00 ± 0.00 (min 0.00) |"
    );
    assert!(locality("AdaFuse").starts_with("| AdaFuse | 0.95 ± "));
    let table = std::fs::read_to_string(&csv).expect("csv written");
    assert!(table.starts_with("task,method,metric,mean,std\n"));
    // 13 rows (8 and the curve's 5) × (12 metrics + locality), and the model's span and its
    // two ablations at the default d and along the curve.
    assert_eq!(table.lines().count(), 1 + 13 * 13 + 6 * 3);
    let image = image::open(&figure).expect("figure readable");
    // Two rows of 256² tiles, 4-pixel gaps, and the colour bar (24 pixels) under them.
    assert_eq!((image.width(), image.height()), (7 * 260 - 4, 2 * 260 + 24));
}
