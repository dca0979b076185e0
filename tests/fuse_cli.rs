//! `dualmine fuse` end to end, with untrained weights written by the test (so the fused
//! result must be the plain average): a PNG pair (gray + RGB pseudo-colour) and the phantom's
//! MR + PET series (PET resampled onto the MR grid). Real data when present: an AANLIB pair
//! and STS_001 MR_T1 + PET (which model a PET–MR of the body gets).

#![cfg(feature = "fusion")]

mod common;

use std::path::Path;
use std::process::Command;

use burn::tensor::Device;
use dualmine::fusion::network::model::DualMineConfig;
use dualmine::fusion::network::weights::save;
use dualmine::io;
use dualmine::io::image2d::read_gray8;
use dualmine::metrics::{MetricSet, score};

fn untrained_weights(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("tiny.bpk");
    save(&DualMineConfig::tiny().init(&Device::flex()), &path).expect("save weights");
    path
}

/// Runs `dualmine fuse INPUTS -o OUT [--weights W] --backend cpu EXTRA…` (no weights: the
/// built-in ones); asserts success when `must_succeed`.
fn fuse(
    inputs: [&Path; 2],
    out: &Path,
    weights: Option<&Path>,
    extra: &[&str],
    must_succeed: bool,
) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_dualmine"))
        .arg("fuse")
        .args(inputs)
        .arg("-o")
        .arg(out)
        .args(weights.iter().flat_map(|w| [Path::new("--weights"), w]))
        .args(["--backend", "cpu"])
        .args(extra)
        .output()
        .expect("dualmine runs");
    if must_succeed {
        common::succeeded(&output);
    }
    output
}

#[test]
fn fuses_a_gray_and_a_colour_png_into_their_average_with_maps() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = untrained_weights(dir.path());
    let (a, b, out) = (
        dir.path().join("mr.png"),
        dir.path().join("pet.png"),
        dir.path().join("fused.png"),
    );
    image::GrayImage::from_fn(20, 12, |x, y| image::Luma([(x * 10 + y) as u8]))
        .save(&a)
        .expect("png");
    image::RgbImage::from_fn(20, 12, |x, _| {
        image::Rgb([(100 + x * 2) as u8, (90 + x) as u8, 80])
    })
    .save(&b)
    .expect("png");
    fuse([&a, &b], &out, Some(&weights), &["--maps"], true);
    let fused = io::load(&out, None).expect("fused PNG");
    assert_eq!((fused.geometry.dims, fused.channels), ([20, 12, 1], 3));
    assert!(dir.path().join("fused_alpha_scale0.png").exists());
    assert!(dir.path().join("fused_reliability_a_scale2.png").exists());
    // Untrained: Y of the result is the average of the gray image and the PET's Y.
    let gray = io::load(&a, None).expect("gray");
    let colour = io::load(&b, None).expect("colour");
    let y = |p: &[f32]| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
    for i in 0..240 {
        let expected = (gray.data[i] + y(&colour.data[3 * i..3 * i + 3])) / 2.0;
        let got = y(&fused.data[3 * i..3 * i + 3]);
        assert!(
            (got - expected).abs() < 2.5,
            "pixel {i}: {got} vs {expected}"
        );
    }
    // No silent overwrite.
    let again = fuse([&a, &b], &out, Some(&weights), &[], false);
    assert!(!again.status.success());
}

#[test]
fn fuses_phantom_mr_and_pet_series_on_the_mr_grid() {
    let dir = tempfile::tempdir().expect("temp dir");
    let weights = untrained_weights(dir.path());
    let studies = dualmine::phantom::write_demo(
        &dir.path().join("demo"),
        dualmine::phantom::PhantomSize::SMALL,
    )
    .expect("phantom");
    let out = dir.path().join("fused.nii.gz");
    let result = fuse([&studies.mr, &studies.pet], &out, Some(&weights), &[], true);
    let fused = io::load(&out, None).expect("fused volume");
    let mr = io::load(&studies.mr, None).expect("MR");
    assert_eq!(fused.geometry.dims, mr.geometry.dims);
    assert!(fused.data.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(String::from_utf8_lossy(&result.stderr).contains("CPU"));
}

#[test]
fn volume_outputs_streamed_to_nifti_are_the_fusion_held_whole() {
    use dualmine::fusion::fuser::{Backend, Fuser};
    use dualmine::volume::resample::{Interpolation, onto_reference};
    let dir = tempfile::tempdir().expect("temp dir");
    let studies = dualmine::phantom::write_demo(
        &dir.path().join("demo"),
        dualmine::phantom::PhantomSize::SMALL,
    )
    .expect("phantom");
    let out = dir.path().join("fused.nii.gz");
    // Built-in PET–MRI weights: trained maps, not the untrained constants.
    fuse([&studies.mr, &studies.pet], &out, None, &["--maps"], true);
    // The same fusion in this process, every output held (A = the PET, as the CLI orders).
    let mr = io::load(&studies.mr, None).expect("MR");
    let pet = onto_reference(
        &io::load(&studies.pet, None).expect("PET"),
        &mr,
        Interpolation::Linear,
    )
    .expect("PET on the MR grid");
    let fuser = Fuser::shipped("pet-mri", Backend::Cpu).expect("built-in model");
    let whole = fuser
        .fuse_volumes(&pet, &mr, 4, &mut |_, _| true)
        .expect("fusion");
    let near = |file: &str, expected: &dualmine::volume::Volume| {
        let streamed = io::load(&dir.path().join(file), None).expect(file);
        assert_eq!(streamed.geometry, expected.geometry, "{file}");
        let worst = streamed
            .data
            .iter()
            .zip(&expected.data)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-6, "{file}: differs by {worst}");
        streamed
    };
    near("fused.nii.gz", &whole.fused);
    for s in 0..3 {
        let a = near(
            &format!("fused_reliability_a_scale{s}.nii.gz"),
            &whole.reliability_a[s],
        );
        let b = near(
            &format!("fused_reliability_b_scale{s}.nii.gz"),
            &whole.reliability_b[s],
        );
        assert!(
            a.data
                .iter()
                .zip(&b.data)
                .all(|(x, y)| (x + y - 1.0).abs() < 1e-5)
        );
        near(&format!("fused_alpha_scale{s}.nii.gz"), &whole.alpha[s]);
    }
    let spread = |v: &[f32]| {
        let (lo, hi) = v
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), x| (l.min(*x), h.max(*x)));
        hi - lo
    };
    assert!(
        spread(&whole.reliability_a[0].data) > 0.1,
        "trained maps vary"
    );
    // Existing outputs are refused before any fusing, and nothing partial is left.
    let again = fuse([&studies.mr, &studies.pet], &out, None, &["--maps"], false);
    assert!(!again.status.success());
    let message = String::from_utf8_lossy(&again.stderr);
    assert!(message.contains("--force"), "{message}");
    assert!(
        !message.contains("fuse: "),
        "failed before fusing: {message}"
    );
    let partial = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .count();
    assert_eq!(partial, 0);
}

#[test]
fn fuses_real_pairs_when_present() {
    let dir = tempfile::tempdir().expect("temp dir");
    if let Some(root) = common::shared_data("aanlib/PET-MRI/test") {
        // Untrained weights give the average; the built-in (trained) weights must carry
        // more of the sources' edges (Qabf) on a real pair.
        let (pet, mri) = (root.join("PET/25015.png"), root.join("MRI/25015.png"));
        let weights = untrained_weights(dir.path());
        let qabf = |weights: Option<&Path>, name: &str| {
            let out = dir.path().join(name);
            fuse([&pet, &mri], &out, weights, &["--task", "pet-mri"], true);
            let fused = read_gray8(&out).expect("fused");
            let (a, b) = (
                read_gray8(&pet).expect("PET"),
                read_gray8(&mri).expect("MRI"),
            );
            score(&a, &b, &fused, MetricSet::WithoutFmi)
                .expect("scores")
                .qabf
        };
        let average = qabf(Some(&weights), "average.png");
        let trained = qabf(None, "built_in.png");
        assert!(
            trained > average + 0.05,
            "Qabf {trained} vs average {average}"
        );
    }
    if let Some(root) = common::shared_data("dicom/sts/STS_001") {
        let weights = untrained_weights(dir.path());
        let out = dir.path().join("sts.nii");
        fuse(
            [&root.join("MR_T1"), &root.join("PET")],
            &out,
            Some(&weights),
            &["--force"],
            true,
        );
        assert_eq!(
            io::load(&out, None).expect("fused").geometry.dims,
            [174, 158, 59]
        );
        // An MR and a PET of the body (EXTREMITY) get the body PET model (the PET–CT
        // weights) at d = 0, not the atlas's brain PET–MRI model.
        let [picked, named] = ["picked.nii", "named.nii"].map(|name| dir.path().join(name));
        let auto = fuse(
            [&root.join("MR_T1"), &root.join("PET")],
            &picked,
            None,
            &[],
            true,
        );
        let stderr = String::from_utf8_lossy(&auto.stderr);
        assert!(stderr.contains("pet-mr-body, detail d = 0"), "{stderr}");
        let extra = ["--task", "pet-ct", "--detail", "0"];
        fuse(
            [&root.join("MR_T1"), &root.join("PET")],
            &named,
            None,
            &extra,
            true,
        );
        let load = |path: &Path| io::load(path, None).expect("fused").data;
        assert_eq!(load(&picked), load(&named));
    }
}

/// Gray and colour test images.
fn write_pair(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (gray, colour) = (dir.join("mr.png"), dir.join("spect.png"));
    image::GrayImage::from_fn(40, 32, |x, y| image::Luma([(x * 5 + y * 2) as u8]))
        .save(&gray)
        .expect("png");
    image::RgbImage::from_fn(40, 32, |x, y| {
        image::Rgb([(120 + x * 2) as u8, (60 + y) as u8, 40])
    })
    .save(&colour)
    .expect("png");
    (gray, colour)
}

#[test]
fn a_colour_png_pair_needs_its_task_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (gray, colour) = write_pair(dir.path());
    let out = dir.path().join("fused.png");
    let refused = fuse([&colour, &gray], &out, None, &[], false);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("--task pet-mri") && message.contains("--task spect-mri"),
        "{message}"
    );
    assert!(!out.exists());
    // A gray pair has one model: CT–MRI.
    let gray_out = dir.path().join("gray.png");
    let gray_pair = fuse([&gray, &gray], &gray_out, None, &[], true);
    assert!(String::from_utf8_lossy(&gray_pair.stderr).contains("ct-mri"));
}

#[test]
fn the_spect_flag_fuses_with_the_shipped_spect_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (gray, colour) = write_pair(dir.path());
    let by_flag = dir.path().join("flag.png");
    let result = fuse(
        [&colour, &gray],
        &by_flag,
        None,
        &["--task", "spect-mri"],
        true,
    );
    assert!(String::from_utf8_lossy(&result.stderr).contains("spect-mri"));
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/wdualmine-tiny-local-spect-mri.bpk");
    let by_file = dir.path().join("file.png");
    // The task names the default detail control.
    fuse(
        [&colour, &gray],
        &by_file,
        Some(&file),
        &["--task", "spect-mri"],
        true,
    );
    let pet = dir.path().join("pet.png");
    fuse([&colour, &gray], &pet, None, &["--task", "pet-mri"], true);
    let read = |p: &Path| io::load(p, None).expect("fused").data;
    assert_eq!(read(&by_flag), read(&by_file));
    assert_ne!(read(&by_flag), read(&pet));
}

/// Without a desktop session (no XDG_RUNTIME_DIR, no display) the automatic device choice
/// probes for a GPU; stderr must hold the model line and the device line and nothing else.
#[test]
fn fusing_without_a_desktop_session_prints_only_the_model_and_the_device() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (gray, colour) = write_pair(dir.path());
    let out = dir.path().join("fused.png");
    let output = Command::new(env!("CARGO_BIN_EXE_dualmine"))
        .args(["fuse", "--task", "spect-mri", "-o"])
        .arg(&out)
        .arg(&colour)
        .arg(&gray)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("RUST_LOG")
        .output()
        .expect("dualmine runs");
    common::succeeded(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "stderr: {stderr}");
    assert!(lines[0].starts_with("model: built-in W-DUALMINE tiny-local spect-mri"));
    assert!(lines[1].starts_with("device: "), "{}", lines[1]);
    assert!(out.exists());
}
