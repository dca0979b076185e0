//! Driving the viewer in tests: a harness on the real app (WGSL renderer on a wgpu adapter,
//! lavapipe in CI), waiting on its background work, and reading back pane pixels.

use std::time::{Duration, Instant};

use burn::tensor::Device;
use dualmine::app::layers::LayerId;
use dualmine::app::pane::PaneKind;
use dualmine::app::pane::image_rect;
use dualmine::app::{Source, ViewerApp};
use dualmine::phantom::{self, PhantomSize};
use egui::{Pos2, Rect};
use egui_kittest::Harness;
use image::RgbaImage;

pub type App<'a> = Harness<'a, ViewerApp>;

pub fn harness(sources: Vec<Source>, auto_fuse: bool) -> App<'static> {
    harness_with(sources, move |app| app.with_auto_fuse(auto_fuse))
}

/// The app on `sources` (CPU fusion), set up further by `configure`.
pub fn harness_with(
    sources: Vec<Source>,
    configure: impl FnOnce(ViewerApp) -> ViewerApp + 'static,
) -> App<'static> {
    Harness::builder()
        .with_size([1280.0, 720.0])
        .wgpu()
        .build_eframe(move |cc| {
            configure(
                ViewerApp::new(cc, sources).with_compute(Device::flex(), "CPU (burn flex)".into()),
            )
        })
}

/// Steps the app (in real time: loading and fusion run on threads) until `done` holds.
pub fn wait_until(h: &mut App<'_>, what: &str, done: impl Fn(&ViewerApp) -> bool) {
    let start = Instant::now();
    while !done(h.state()) {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "timed out waiting for {what}; error: {:?}",
            h.state().error()
        );
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.run_steps(2);
}

/// The open session's fusion job.
pub fn fusion_job<'h>(h: &'h App<'_>) -> &'h dualmine::app::fusion_job::FusionJob {
    h.state()
        .session()
        .and_then(|s| s.job.as_ref())
        .expect("a fusion job")
}

pub fn fused(app: &ViewerApp) -> bool {
    app.session()
        .and_then(|s| s.job.as_ref())
        .is_some_and(|j| !j.is_running())
}

pub fn demo(size: PhantomSize) -> (tempfile::TempDir, phantom::DemoStudies) {
    let dir = tempfile::tempdir().expect("temp dir");
    let studies = phantom::write_demo(dir.path(), size).expect("phantom written");
    (dir, studies)
}

/// The pixels of one pane in the last rendered frame.
pub fn pane_image(h: &mut App<'_>, kind: PaneKind) -> RgbaImage {
    let rect = pane_rect(h, kind);
    rect_image(h, rect)
}

/// The pixels of `rect` in a freshly rendered frame.
pub fn rect_image(h: &mut App<'_>, rect: Rect) -> RgbaImage {
    let image = h.render().expect("rendered");
    image::imageops::crop_imm(
        &image,
        rect.min.x.round() as u32,
        rect.min.y.round() as u32,
        rect.width().round() as u32,
        rect.height().round() as u32,
    )
    .to_image()
}

/// How many pixels of two images of one size differ.
pub fn differing_pixels(a: &RgbaImage, b: &RgbaImage) -> usize {
    a.pixels().zip(b.pixels()).filter(|(x, y)| x != y).count()
}

pub fn pane_rect(h: &App<'_>, kind: PaneKind) -> Rect {
    h.state()
        .pane_rects
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map(|(_, _, r)| *r)
        .expect("pane drawn")
}

pub fn slice(h: &App<'_>) -> usize {
    let app = h.state();
    app.session().expect("open").slice(app.settings.orientation)
}

pub fn set_style(h: &mut App<'_>, id: LayerId, visible: bool, opacity: f32) {
    let layer = h
        .state_mut()
        .session_mut()
        .and_then(|s| s.layer_mut(id))
        .expect("layer");
    layer.style.visible = visible;
    layer.style.opacity = opacity;
    h.run_steps(2);
}

pub fn mr_and_pet(studies: &phantom::DemoStudies) -> Vec<Source> {
    vec![
        Source::Path(studies.mr.clone()),
        Source::Path(studies.pet.clone()),
    ]
}

/// Where continuous voxel coordinates `voxel` of the pair's grid are in the fusion pane, in
/// the plane shown now.
pub fn on_pane(h: &App<'_>, voxel: [f32; 3]) -> Pos2 {
    let app = h.state();
    let session = app.session().expect("open");
    let pane = pane_rect(h, PaneKind::Fusion);
    let orientation = app.settings.orientation;
    let size_mm = orientation.size_mm(&session.pair.a.geometry);
    let image = image_rect(pane, size_mm, app.settings.zoom, app.settings.pan);
    let [u, v] = orientation.image_position(session.dims(), voxel);
    image.min + egui::vec2(u, v) * image.size()
}

/// The phantom's MR + PET opened in the app and fused (the demo's folder must outlive the
/// app: keep the first value).
pub fn fused_mr_and_pet() -> (tempfile::TempDir, App<'static>) {
    let (dir, studies) = demo(PhantomSize::SMALL);
    let mut h = harness(mr_and_pet(&studies), true);
    wait_until(&mut h, "fusion to finish", fused);
    (dir, h)
}

/// The hottest PET (study B) voxel of the slice shown, with its value.
pub fn hottest_in_slice(h: &App<'_>) -> ([usize; 3], f32) {
    let session = h.state().session().expect("open");
    let pet = &session
        .layer(LayerId::Study(dualmine::app::studies::Side::B))
        .expect("PET")
        .volume;
    let [nx, ny, _] = session.dims();
    let k = slice(h);
    let n = (0..nx * ny)
        .max_by(|a, b| {
            pet.value(a % nx, a / nx, k)
                .total_cmp(&pet.value(b % nx, b / nx, k))
        })
        .expect("voxels");
    let voxel = [n % nx, n / nx, k];
    (voxel, pet.value(voxel[0], voxel[1], voxel[2]))
}
