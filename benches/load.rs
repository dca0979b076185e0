//! Load time and peak heap memory of a DICOM series: the 199-slice Lu-177 SPECT from the
//! shared data when present (pydicom + numpy take ≈0.4 s for it), else the generated phantom.
//! Also the time of one MIP projection (what turning the viewer's MIP pane costs per angle)
//! on grids the size of STS_001's CT (a PET resampled onto it) and of a 512² CT.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use dualmine::io;

/// Counts live and peak heap bytes.
struct PeakAllocator;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for PeakAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: PeakAllocator = PeakAllocator;

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
    // Peak memory of one cold load, relative to the voxel data it produces.
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let volume = io::load(&path, None).expect("series loads");
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let voxels = volume.byte_size();
    println!(
        "{name}: {:?} voxels, {:.1} MB of voxel data, peak heap {:.1} MB ({:.2}× the voxel data)",
        volume.geometry.dims,
        voxels as f64 / 1e6,
        peak as f64 / 1e6,
        peak as f64 / voxels as f64
    );
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
