//! `dualmine view` (and no command at all): the viewer on two studies or the phantom demo.

use std::path::PathBuf;

use anyhow::{Context, Result};

use dualmine::app::{Benchmark, Source, ViewerApp};
use dualmine::phantom::{self, PhantomSize};

/// Opens the viewer.
pub fn run(
    studies: Vec<PathBuf>,
    benchmark: Option<Benchmark>,
    overlays: Vec<String>,
    layout: Option<dualmine::app::pane::Layout>,
    session: Option<PathBuf>,
    detail: Option<f32>,
) -> Result<()> {
    let studies = if studies.is_empty() && session.is_none() {
        let folder = std::env::temp_dir().join("dualmine-demo");
        let demo = phantom::write_demo(&folder, PhantomSize::DEMO).context("writing the demo")?;
        vec![demo.mr, demo.pet]
    } else {
        studies
    };
    let sources = studies.into_iter().map(Source::Path).collect();
    let mut options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1280.0, 720.0])
            .with_title("dualmine"),
        ..Default::default()
    };
    // A hardware GPU is created once, by burn, and handed to eframe as well.
    let (device, description) = match dualmine::app::gpu::share_hardware_gpu() {
        Some(shared) => {
            options.wgpu_options.wgpu_setup = shared.setup;
            (shared.device, shared.description)
        }
        None => (
            burn::tensor::Device::flex(),
            "CPU (burn flex): no hardware GPU adapter found".to_string(),
        ),
    };
    eprintln!("fusion runs on {description}");
    eframe::run_native(
        "dualmine",
        options,
        Box::new(move |cc| {
            let mut app = ViewerApp::new(cc, sources)
                .with_compute(device, description)
                .with_overlays(overlays)
                .with_detail(detail);
            if let Some(benchmark) = benchmark {
                app = app.with_benchmark(benchmark);
            }
            if let Some(layout) = layout {
                app.settings.layout = layout;
            }
            if let Some(path) = &session
                && let Err(e) = app.open_session(path)
            {
                eprintln!("{e}");
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the viewer could not start: {e}"))
}
