//! The viewer's export dialog, driven through egui_kittest on the phantom: the fusion pane
//! exported "as displayed" matches what the GPU drew, raw 16-bit PNG, and DICOM series with
//! the overwrite question.

mod common;

use std::path::Path;

use common::viewer::*;
use dualmine::app::export_dialog::ExportKind;
use dualmine::app::layers::LayerId;
use dualmine::app::pane::{PaneKind, image_rect};
use dualmine::phantom::PhantomSize;
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;

fn files_in(folder: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(folder)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// Clicks `button` in the open dialog and waits for the export to end.
fn export(h: &mut App<'_>, button: &str) {
    // The dialog's layout may have changed with the form: refresh the widget tree first.
    h.run_steps(2);
    h.get_by_role_and_label(Role::Button, button).click();
    h.run_steps(2);
    wait_until(h, "the export to finish", |a| {
        a.export_job.as_ref().is_some_and(|j| !j.is_running())
    });
}

#[test]
fn the_exported_pane_is_what_the_gpu_drew() {
    let (_dir, studies) = demo(PhantomSize::SMALL);
    let out = tempfile::tempdir().expect("temp dir");
    let mut h = harness(mr_and_pet(&studies), true);
    wait_until(&mut h, "fusion to finish", fused);
    // Something to burn in: an α overlay at 60 % over the fused image.
    set_style(&mut h, LayerId::Alpha(0), true, 0.6);
    h.remove_cursor();
    h.run_steps(2);
    let shown = pane_image(&mut h, PaneKind::Fusion);
    h.key_press(egui::Key::E);
    h.run_steps(2);
    h.state_mut().export_form.folder = out.path().display().to_string();
    export(&mut h, "Export");
    let job = h.state().export_job.as_ref().expect("job");
    assert_eq!(job.outcome, Some(Ok(1)), "{:?}", job.outcome);
    let files = files_in(out.path());
    assert_eq!(files.len(), 1);
    let name = files[0]
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(name.starts_with("fusion_axial_0009_"), "{name}");
    let exported = image::open(&files[0]).expect("PNG").to_rgb8();
    let (w, h_px) = (exported.width(), exported.height());
    assert_eq!((w, h_px), (48, 48));

    // Compare voxel centres with the pane's pixels, away from the crosshair, the colour bar,
    // the orientation letters at the pane's edges and voxel edges.
    let app = h.state();
    let session = app.session().expect("open");
    let pane = app
        .pane_rects
        .iter()
        .find(|(k, _, _)| *k == PaneKind::Fusion)
        .expect("pane")
        .2;
    let size_mm = app.settings.orientation.size_mm(&session.pair.a.geometry);
    let image = image_rect(pane, size_mm, app.settings.zoom, app.settings.pan);
    let cursor = app
        .settings
        .orientation
        .image_position(session.dims(), session.cursor);
    let (mut compared, mut differing) = (0, 0);
    for y in 0..h_px {
        for x in 0..w {
            let (u, v) = ((x as f32 + 0.5) / w as f32, (y as f32 + 0.5) / h_px as f32);
            let at = image.min + egui::vec2(u, v) * image.size() - pane.min;
            let near_cross =
                (u - cursor[0]).abs() < 2.0 / w as f32 || (v - cursor[1]).abs() < 2.0 / h_px as f32;
            if near_cross || at.x < 16.0 || at.x > pane.width() - 100.0 || at.y < 40.0 {
                continue;
            }
            let screen = shown.get_pixel(at.x as u32, at.y as u32);
            let file = exported.get_pixel(x, y);
            compared += 1;
            if (0..3).any(|c| (i32::from(screen[c]) - i32::from(file[c])).abs() > 2) {
                differing += 1;
            }
        }
    }
    assert!(compared > 1000, "compared {compared}");
    assert_eq!(differing, 0, "{differing} of {compared} voxels differ");
}

#[test]
fn raw_and_dicom_exports_ask_before_overwriting() {
    let (_dir, studies) = demo(PhantomSize::SMALL);
    let out = tempfile::tempdir().expect("temp dir");
    let mut h = harness(mr_and_pet(&studies), true);
    wait_until(&mut h, "fusion to finish", fused);
    h.key_press(egui::Key::E);
    h.run_steps(2);
    {
        let form = &mut h.state_mut().export_form;
        form.folder = out.path().display().to_string();
        form.kind = ExportKind::RawPng;
        form.all_slices = true;
    }
    export(&mut h, "Export");
    let pngs = files_in(out.path());
    assert_eq!(pngs.len(), 16);
    let raw = image::open(&pngs[8]).expect("PNG");
    assert!(matches!(raw, image::DynamicImage::ImageLuma16(_)));
    // The raw samples are the fused values: check one voxel.
    let session = h.state().session().expect("open");
    let fused = session.layer(LayerId::Fused).expect("fused");
    let expected = (fused.value([20, 24, 8]).clamp(0.0, 1.0) * 65535.0).round() as u16;
    assert_eq!(raw.to_luma16().get_pixel(20, 24)[0], expected);

    h.state_mut().export_form.kind = ExportKind::Dicom;
    export(&mut h, "Export");
    let series = files_in(out.path())
        .into_iter()
        .filter(|p| p.is_dir())
        .count();
    assert_eq!(series, 10, "fused + 9 maps");
    let first = out.path().join("FUSED").join("IM000001.dcm");
    let before = std::fs::read(&first).expect("written");
    // Again: the files exist, so the dialog asks.
    export(&mut h, "Export");
    let job = h.state().export_job.as_ref().expect("job");
    assert!(job.exists, "{:?}", job.outcome);
    assert_eq!(std::fs::read(&first).expect("kept"), before);
    export(&mut h, "Overwrite the existing files");
    assert_eq!(
        h.state()
            .export_job
            .as_ref()
            .and_then(|j| j.outcome.clone()),
        Some(Ok(160))
    );
    assert_ne!(std::fs::read(&first).expect("replaced"), before);
    let reloaded = dualmine::io::load(&out.path().join("FUSED"), None).expect("reloads");
    let grid = h.state().session().expect("open").dims();
    assert_eq!(reloaded.geometry.dims, grid);
}
