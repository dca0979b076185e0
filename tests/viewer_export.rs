//! The viewer's export dialog, driven through egui_kittest on the phantom: the fusion pane
//! exported "as displayed" matches what the GPU drew, raw 16-bit PNG, and DICOM series with
//! the overwrite question.

mod common;

use std::path::Path;

use common::viewer::*;
use dualmine::app::export_dialog::{ExportKind, SeriesChoice};
use dualmine::app::layers::LayerId;
use dualmine::app::legend;
use dualmine::app::pane::{PaneKind, draws_at, image_rect};
use dualmine::app::vois;
use dualmine::phantom::PhantomSize;
use dualmine::volume::colormap::ColorMap;
use dualmine::volume::plane::Orientation;
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
    // The image alone on both sides (the burned-in scales have their own test).
    h.state_mut().settings.show_legend = false;
    h.remove_cursor();
    h.run_steps(2);
    let shown = pane_image(&mut h, PaneKind::Fusion);
    h.key_press(egui::Key::E);
    h.run_steps(2);
    h.state_mut().export_form.folder = out.path().display().to_string();
    // The image alone (what is painted over it is checked on its own below).
    h.state_mut().export_form.annotations = false;
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
    // 48 x 48 voxels, square in millimetres, enlarged to 512 pixels.
    assert_eq!((w, h_px), (512, 512));

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
    let voxels = app.settings.orientation.size_voxels(session.dims());
    let (mut compared, mut differing) = (0, 0);
    for y in 0..h_px {
        for x in 0..w {
            let (u, v) = ((x as f32 + 0.5) / w as f32, (y as f32 + 0.5) / h_px as f32);
            let at = image.min + egui::vec2(u, v) * image.size() - pane.min;
            let near_cross = (u - cursor[0]).abs() < 2.0 / voxels[0] as f32
                || (v - cursor[1]).abs() < 2.0 / voxels[1] as f32;
            // Only pixels well inside a voxel: the pane and the file sample it the same way.
            let inside =
                |t: f32, n: usize| (t * n as f32).fract() > 0.3 && (t * n as f32).fract() < 0.7;
            if near_cross
                || !inside(u, voxels[0])
                || !inside(v, voxels[1])
                || at.x < 16.0
                || at.x > pane.width() - 100.0
                || at.y < 40.0
            {
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
    assert!(compared > 10000, "compared {compared}");
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
    assert_eq!(series, 11, "fused + 9 maps + the pane as displayed");
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
        Some(Ok(176)),
        "10 series of 16 slices and 16 pictures"
    );
    assert_ne!(std::fs::read(&first).expect("replaced"), before);
    let reloaded = dualmine::io::load(&out.path().join("FUSED"), None).expect("reloads");
    let grid = h.state().session().expect("open").dims();
    assert_eq!(reloaded.geometry.dims, grid);
}

/// Pixels of `image` within 40 levels per channel of `colour`.
fn pixels_near(image: &image::RgbImage, colour: [u8; 3]) -> usize {
    image
        .pixels()
        .filter(|p| (0..3).all(|c| (i32::from(p[c]) - i32::from(colour[c])).abs() <= 40))
        .count()
}

/// The one PNG the dialog writes into a fresh folder, as RGB.
fn export_one_png(h: &mut App<'_>, annotations: bool) -> image::RgbImage {
    let out = tempfile::tempdir().expect("temp dir");
    {
        let form = &mut h.state_mut().export_form;
        form.folder = out.path().display().to_string();
        form.kind = ExportKind::DisplayedPng;
        form.all_slices = false;
        form.annotations = annotations;
    }
    export(h, "Export");
    let files = files_in(out.path());
    assert_eq!(
        files.len(),
        1,
        "{:?}",
        h.state().export_job.as_ref().map(|j| &j.outcome)
    );
    image::open(&files[0]).expect("PNG").to_rgb8()
}

/// A coronal PNG as displayed (issue 35, defect 5: STS_002's came out 161 × 48 pixels,
/// squashed 3.35 times, without VOIs, colour bar or orientation letters): its pixels are
/// square in millimetres (within 1 %), and it carries the sphere VOI's contour, the colour
/// scales (the top one's colours where the pane draws its bar) and the orientation letters;
/// without them when asked.
#[test]
fn a_coronal_png_is_in_millimetres_with_what_is_painted_over_the_pane() {
    let (_dir, mut h) = fused_mr_and_pet();
    h.remove_cursor();
    {
        let session = h.state_mut().session_mut().expect("open");
        let centre = session.cursor;
        assert!(vois::add_sphere(session, centre, 10.0).is_none());
    }
    h.state_mut().settings.orientation = Orientation::Coronal;
    h.key_press(egui::Key::E);
    h.run_steps(2);
    let picture = export_one_png(&mut h, true);
    let (w, h_px) = (picture.width(), picture.height());
    let (mm, scales, slice) = {
        let app = h.state();
        let session = app.session().expect("open");
        let mm = Orientation::Coronal.size_mm(&session.pair.a.geometry);
        let slice = session.slice(Orientation::Coronal);
        let draws = draws_at(
            session,
            PaneKind::Fusion,
            &app.settings,
            slice,
            [0.0, 0.0, 1.0, 1.0],
            false,
        );
        (mm, legend::scales(session, &draws), slice)
    };
    let aspect = (w as f64 / h_px as f64) / (mm[0] / mm[1]);
    assert!(
        (aspect - 1.0).abs() < 0.01,
        "{w} x {h_px} pixels for {mm:?} mm (slice {slice})"
    );
    assert!(
        (mm[0] / mm[1] - 1.0).abs() > 0.1,
        "the phantom's coronal plane is not square: {mm:?}"
    );
    // The sphere's contour (green) and the orientation letters (amber).
    assert!(pixels_near(&picture, [80, 255, 120]) > 20);
    assert!(pixels_near(&picture, [255, 200, 80]) > 10);
    // The top scale's bar, where the pane draws it on a canvas the picture's size.
    let canvas = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(w as f32, h_px as f32));
    let bar = legend::bar_rects(canvas, &scales)[0];
    for t in [0.6f32, 0.9] {
        let x = bar.left() + t * bar.width();
        let pixel = picture.get_pixel(x as u32, bar.center().y as u32);
        let expected = scales[0].colormap.table()[ColorMap::index_of(t)];
        for c in 0..3 {
            let diff = (i32::from(pixel[c]) - i32::from(expected[c])).abs();
            assert!(diff <= 12, "t {t}: {pixel:?} where the bar is {expected:?}");
        }
    }
    // Left out when asked.
    let bare = export_one_png(&mut h, false);
    assert_eq!((bare.width(), bare.height()), (w, h_px));
    assert_eq!(pixels_near(&bare, [80, 255, 120]), 0);
    assert_eq!(pixels_near(&bare, [255, 200, 80]), 0);
}

/// DICOM export from a CT + PET pair (issue 35, defect 5: the fused 0–1 values were written
/// as a CT object whose units read as HU, and the PET colours were lost): the fused series'
/// Rescale Type is not HU and its derivation says what the values mean; an RGB series as
/// displayed is written; dciodvfy finds no errors in either; dcmj2pnm renders a picture
/// identical to the PNG of the same slice; only the chosen series are written.
#[test]
fn dicom_export_writes_the_fused_values_without_hu_and_the_pane_as_displayed() {
    let (_dir, studies) = demo(PhantomSize::SMALL);
    let mut h = harness(
        vec![
            dualmine::app::Source::Path(studies.ct.clone()),
            dualmine::app::Source::Path(studies.pet.clone()),
        ],
        true,
    );
    wait_until(&mut h, "fusion to finish", fused);
    h.remove_cursor();
    h.key_press(egui::Key::E);
    h.run_steps(2);
    let picture = export_one_png(&mut h, true);
    let out = tempfile::tempdir().expect("temp dir");
    {
        let form = &mut h.state_mut().export_form;
        form.folder = out.path().display().to_string();
        form.kind = ExportKind::Dicom;
        form.series = SeriesChoice {
            fused: true,
            maps: false,
            displayed: true,
        };
    }
    export(&mut h, "Export");
    let folders: Vec<String> = files_in(out.path())
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert_eq!(folders, ["DISPLAYED_RGB", "FUSED"]);
    let fused =
        dicom_object::open_file(out.path().join("FUSED").join("IM000001.dcm")).expect("DICOM");
    let text = |tag| {
        fused
            .element(tag)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    assert_eq!(text(dicom_dictionary_std::tags::MODALITY), "CT");
    assert_eq!(text(dicom_dictionary_std::tags::RESCALE_TYPE), "US");
    let derivation = text(dicom_dictionary_std::tags::DERIVATION_DESCRIPTION);
    assert!(
        derivation.contains("values 0 to 1: fused intensity"),
        "{derivation}"
    );
    let slice = h.state().session().expect("open").slice(Orientation::Axial);
    let rgb = out
        .path()
        .join("DISPLAYED_RGB")
        .join(format!("IM{:06}.dcm", slice + 1));
    if common::dciodvfy_errors(&rgb).is_none() {
        eprintln!("skipped the dciodvfy and dcmj2pnm checks: dicom3tools is not installed");
        return;
    }
    for file in [&rgb, &out.path().join("FUSED").join("IM000001.dcm")] {
        let errors = common::dciodvfy_errors(file).expect("dciodvfy ran");
        assert!(errors.is_empty(), "{}: {errors:?}", file.display());
    }
    let rendered = out.path().join("rendered.png");
    let status = std::process::Command::new("dcmj2pnm")
        .arg("+on")
        .arg(&rgb)
        .arg(&rendered)
        .status();
    match status {
        Ok(status) => {
            assert!(status.success());
            let shown = image::open(&rendered).expect("PNG").to_rgb8();
            assert_eq!(shown.dimensions(), picture.dimensions());
            assert!(shown.pixels().zip(picture.pixels()).all(|(a, b)| a == b));
        }
        Err(e) => eprintln!("skipped the dcmj2pnm check: {e}"),
    }
}
