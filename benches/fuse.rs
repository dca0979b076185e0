//! W-DUALMINE speed (compare with `../shared/perf/torch_ref.py` in the same sitting; the
//! README has the ratios):
//! - one 256×256 pair through `tiny` and `base` on burn's CPU backend (flex) and on burn-wgpu
//!   (whatever adapter exists: lavapipe here, a GPU elsewhere);
//! - one training step of `tiny` on the CPU, shaped like the yardstick's: forward on 4 pairs
//!   of 96² crops, L1 loss to the average, backward, Adam;
//! - a whole volume pair end to end on the CPU: STS_001 MR T1 + PET (59 slices) from the shared
//!   data when present, else the phantom's MR + PET — load both DICOM series, resample the
//!   PET onto the MR grid, fuse every slice with `tiny`.
//!
//! - the training step's 3×3 convolution kernels on the CPU alone (forward, input gradient,
//!   weight gradient by the direct kernels and by im2col + GEMM) on its three main shapes.
//!
//! `DUALMINE_BENCH=pair`, `=train`, `=volume` or `=kernels` runs one group only;
//! `DUALMINE_BENCH_CPU=1` leaves wgpu out (for profiling the CPU path alone).

use std::path::PathBuf;

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use dualmine::fusion::fuser::Fuser;
use dualmine::fusion::network::model::DualMineConfig;
use dualmine::fusion::ops::cpu::conv_im2col;
use dualmine::fusion::ops::cpu::conv_shape::ConvShape;
use dualmine::fusion::ops::cpu::freed_memory::KeepFreedMemory;
use dualmine::fusion::ops::cpu::{conv_direct, conv_weight_direct};
use dualmine::fusion::ops::device::on_cpu_workers;
use dualmine::io;
use dualmine::phantom::{self, PhantomSize};
use dualmine::volume::resample::{Interpolation, onto_reference};

// The allocator the `dualmine` binary uses (src/main.rs), so the numbers are the program's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn wanted(group: &str) -> bool {
    std::env::var("DUALMINE_BENCH").map_or(true, |g| g == group)
}

fn pair(c: &mut Criterion) {
    if !wanted("pair") {
        return;
    }
    let mut devices = vec![("flex", Device::flex())];
    if std::env::var_os("DUALMINE_BENCH_CPU").is_some() {
        eprintln!("DUALMINE_BENCH_CPU is set: CPU only");
    } else {
        match Device::wgpu_options().init() {
            Ok(device) => devices.push(("wgpu", device)),
            Err(error) => eprintln!("no wgpu adapter ({error}): CPU only"),
        }
    }
    // Freed memory kept, as `Fuser::fuse_normalised` keeps it for a pair.
    let _memory = KeepFreedMemory::new();
    let mut group = c.benchmark_group("fuse_256x256_pair");
    group.sample_size(10);
    for (name, device) in &devices {
        for (size, config) in [
            ("tiny", DualMineConfig::tiny()),
            ("base", DualMineConfig::base()),
        ] {
            let model = config.init(device);
            let a = Tensor::<4>::random([1, 1, 256, 256], Distribution::Uniform(0.0, 1.0), device);
            let b = Tensor::<4>::random([1, 1, 256, 256], Distribution::Uniform(0.0, 1.0), device);
            // Warm up (shader compilation on wgpu).
            let _ = model.forward(a.clone(), b.clone()).fused.into_data();
            group.bench_function(format!("{size}/{name}"), |bench| {
                bench.iter(|| model.forward(a.clone(), b.clone()).fused.into_data())
            });
        }
    }
    group.finish();
}

fn train_step(c: &mut Criterion) {
    if !wanted("train") {
        return;
    }
    // Freed memory kept, as `Trainer` keeps it for its run.
    let _memory = KeepFreedMemory::new();
    let device = Device::flex().autodiff();
    let mut model = DualMineConfig::tiny().init(&device);
    let mut optimizer = AdamConfig::new().init();
    let crops = || Tensor::<4>::random([4, 1, 96, 96], Distribution::Uniform(0.0, 1.0), &device);
    let (a, b) = (crops(), crops());
    let mut group = c.benchmark_group("train_step_4x96x96");
    group.sample_size(10);
    group.bench_function("tiny/flex", |bench| {
        let mut step = || {
            // The training path (as `dualmine train` runs it): the fused image without maps.
            let fused = model
                .forward_with_features(a.clone(), b.clone(), 0.0)
                .0
                .fused;
            let loss = (fused - (a.clone() + b.clone()) / 2.0).abs().mean();
            let gradients = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(1e-4, model.clone(), gradients);
        };
        // On rayon's workers, as `Trainer::train_step` runs it.
        bench.iter(|| on_cpu_workers(&device, &mut step))
    });
    group.finish();
}

/// The MR and PET series to fuse, and what they are.
fn volume_pair() -> (String, PathBuf, PathBuf, Option<tempfile::TempDir>) {
    let root = std::env::var_os("DUALMINE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let sts = root.join("dicom/sts/STS_001");
    if sts.join("MR_T1").is_dir() && sts.join("PET").is_dir() {
        return (
            "STS_001 MR_T1 + PET".into(),
            sts.join("MR_T1"),
            sts.join("PET"),
            None,
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = phantom::write_demo(dir.path(), PhantomSize::DEMO).expect("phantom");
    ("phantom MR + PET".into(), demo.mr, demo.pet, Some(dir))
}

fn volume(c: &mut Criterion) {
    if !wanted("volume") {
        return;
    }
    let (name, mr, pet, _keep) = volume_pair();
    let device = Device::flex();
    let fuser = Fuser::from_model(DualMineConfig::tiny().init(&device), device, "flex".into());
    let mut group = c.benchmark_group("fuse_volume_pair");
    group.sample_size(10);
    group.bench_function(format!("{name}/tiny/flex"), |bench| {
        bench.iter(|| {
            let reference = io::load(&mr, None).expect("MR");
            let moving = io::load(&pet, None).expect("PET");
            let moving =
                onto_reference(&moving, &reference, Interpolation::Linear).expect("resample");
            fuser
                .fuse_volumes(&moving, &reference, 8, &mut |_, _| true)
                .expect("fusion")
        })
    });
    group.finish();
}

/// Values in [−0.5, 0.5) from a multiplicative hash: deterministic inputs for the kernels.
fn kernel_values(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) % 1000) as f32 / 1000.0 - 0.5)
        .collect()
}

fn kernels(c: &mut Criterion) {
    if !wanted("kernels") {
        return;
    }
    let _memory = KeepFreedMemory::new();
    let mut group = c.benchmark_group("conv3x3_4_images");
    group.sample_size(20);
    for (channels, size) in [(16, 96), (32, 48), (64, 24)] {
        let Some(shape) = ConvShape::new(
            [4, channels, size, size],
            [channels, channels, 3, 3],
            [1, 1],
            [(1, 1); 2],
            [1, 1],
            1,
        ) else {
            continue;
        };
        let x = kernel_values(4 * channels * size * size, 1);
        let g = kernel_values(4 * channels * size * size, 2);
        let w = kernel_values(channels * channels * 9, 3);
        let bias = kernel_values(channels, 4);
        let name = |pass: &str| format!("{pass}/{channels}x{size}");
        if conv_direct::covers(&shape) {
            group.bench_function(name("forward_direct"), |b| {
                b.iter(|| conv_direct::forward(&shape, &x, &w, &bias))
            });
            group.bench_function(name("input_grad_direct"), |b| {
                b.iter(|| conv_direct::input_grad(&shape, &w, &g))
            });
            group.bench_function(name("weight_grad_direct"), |b| {
                b.iter(|| conv_weight_direct::weight_grad(&shape, &x, &g))
            });
        }
        group.bench_function(name("weight_grad_gemm"), |b| {
            b.iter(|| conv_im2col::weight_grad(&shape, &x, &g))
        });
    }
    group.finish();
}

criterion_group!(benches, pair, train_step, volume, kernels);
criterion_main!(benches);
