//! W-DUALMINE inference speed: one 256×256 pair through `tiny` and `base` on burn's CPU
//! backend (flex) and on burn-wgpu (whatever adapter exists: lavapipe here, a GPU elsewhere).
//! The PyTorch yardstick for `tiny` on this 2-core machine is 151 ms per pair.

use burn::tensor::{Device, Distribution, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use dualmine::fusion::model::DualMineConfig;

fn pair(c: &mut Criterion) {
    let mut devices = vec![("flex", Device::flex())];
    match Device::wgpu_options().init() {
        Ok(device) => devices.push(("wgpu", device)),
        Err(error) => eprintln!("no wgpu adapter ({error}): CPU only"),
    }
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

criterion_group!(benches, pair);
criterion_main!(benches);
