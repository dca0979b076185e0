//! Load time and the peak resident memory a load adds (Linux: VmHWM, reset before the load)
//! for a DICOM series: the 199-slice Lu-177 SPECT from the
//! shared data when present (pydicom + numpy take ≈0.4 s for it), else the generated phantom.
//! Also the time of one MIP projection (what turning the viewer's MIP pane costs per angle)
//! on grids the size of STS_001's CT (a PET resampled onto it) and of a 512² CT.

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use dualmine::io;

/// A value of `/proc/self/status` in kB (VmRSS: resident now; VmHWM: the peak since the
/// last reset).
fn status_kb(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Sets the process's peak resident size (VmHWM) back to what is resident now (Linux ≥ 4.0).
fn reset_peak_resident() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn series_to_load() -> (String, PathBuf, Option<tempfile::TempDir>) {
    let shared = std::env::var_os("DUALMINE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
        .join("dicom/spect-lu177");
    if shared.exists() {
        return ("spect_lu177_199_slices".into(), shared, None);
    }
    eprintln!("shared SPECT absent: benchmarking the generated phantom CT instead");
    let dir = tempfile::tempdir().expect("temp dir");
    let studies = dualmine::phantom::write_demo(dir.path(), dualmine::phantom::PhantomSize::DEMO)
        .expect("phantom");
    ("phantom_ct_48_slices".into(), studies.ct, Some(dir))
}

fn load(c: &mut Criterion) {
    let (name, path, _keep) = series_to_load();
    // Peak resident memory one cold load adds, relative to the voxel data it produces.
    let before = status_kb("VmRSS:").filter(|_| reset_peak_resident());
    let volume = io::load(&path, None).expect("series loads");
    let voxels = volume.byte_size();
    match (before, status_kb("VmHWM:")) {
        (Some(before), Some(peak)) => {
            let added = peak.saturating_sub(before) as f64 * 1024.0;
            println!(
                "{name}: {:?} voxels, {:.1} MB of voxel data, peak resident memory added {:.1} MB ({:.2}× the voxel data)",
                volume.geometry.dims,
                voxels as f64 / 1e6,
                added / 1e6,
                added / voxels as f64
            );
        }
        _ => println!("{name}: peak resident memory not measured (no /proc/self on this system)"),
    }
    drop(volume);
    let mut group = c.benchmark_group("load");
    group.sample_size(20);
    group.bench_function(&name, |b| {
        b.iter(|| io::load(&path, None).expect("series loads"))
    });
    group.finish();
}

fn mip(c: &mut Criterion) {
    use dualmine::volume::{Geometry, Volume, mip};
    let mut group = c.benchmark_group("mip");
    group.sample_size(10);
    for (name, dims, spacing) in [
        (
            "198x202x59 at 0.98 mm",
            [198, 202, 59],
            [0.977, 0.977, 3.27],
        ),
        ("512x512x100 at 0.7 mm", [512, 512, 100], [0.7, 0.7, 2.5]),
    ] {
        let g = Geometry::axis_aligned(dims, spacing, [0.0; 3]);
        let count = dims.iter().product::<usize>();
        let data = (0..count).map(|n| (n % 977) as f32).collect();
        let volume = Volume::new(g, data).expect("valid");
        group.bench_function(name, |b| b.iter(|| mip::project(&volume, 33.0)));
    }
    group.finish();
}

criterion_group!(benches, load, mip);
criterion_main!(benches);
