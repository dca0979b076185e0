//! The viewer driven through egui_kittest on the procedural phantom (written as real DICOM),
//! drawn by the real WGSL renderer on a wgpu adapter (lavapipe in CI): scrolling, overlay
//! toggles against stored snapshots, linear opacity, window/level drag, the series picker,
//! the frame-of-reference warning, scrolling while fusion runs, and fusion following the
//! reader (the slice in view first, then where the reader goes).
//!
//! Snapshots live in tests/snapshots; `UPDATE_SNAPSHOTS=1 cargo test --test viewer` rewrites
//! them.

mod common;

use std::path::{Path, PathBuf};

use common::viewer::*;
use dualmine::app::fusion_job::SliceState;
use dualmine::app::layers::LayerId;
use dualmine::app::legend;
use dualmine::app::pane::PaneKind;
use dualmine::app::studies::Side;
use dualmine::app::{Source, ViewerApp};
use dualmine::export::{SeriesOptions, write_series};
use dualmine::phantom::{self, PhantomSize};
use dualmine::volume::colormap::ColorMap;
use dualmine::volume::plane::Orientation;
use egui::accesskit::Role;
use egui::{Event, Modifiers, PointerButton, Pos2};
use egui_kittest::image_snapshot;
use egui_kittest::kittest::{NodeT, Queryable};

#[test]
fn scrolling_changes_the_slice_and_the_image() {
    let (_dir, studies) = demo(PhantomSize::SMALL);
    let mut h = harness(mr_and_pet(&studies), false);
    wait_until(&mut h, "the studies to load", |a| a.session().is_some());
    let start = slice(&h);
    let before = pane_image(&mut h, PaneKind::Study(Side::A));
    h.key_press(egui::Key::ArrowUp);
    h.run_steps(2);
    assert_eq!(slice(&h), start + 1);
    assert_ne!(pane_image(&mut h, PaneKind::Study(Side::A)), before);
    h.key_press(egui::Key::PageDown);
    h.run_steps(2);
    assert_eq!(slice(&h), (start + 1).saturating_sub(10));
    h.key_press(egui::Key::Home);
    h.run_steps(2);
    assert_eq!(slice(&h), 0);
    h.key_press(egui::Key::End);
    h.run_steps(2);
    let last = h.state().session().expect("open").dims()[2] - 1;
    assert_eq!(slice(&h), last);
    // The mouse wheel over a pane scrolls too.
    let centre = pane_rect(&h, PaneKind::Fusion).center();
    h.hover_at(centre);
    h.event(Event::MouseWheel {
        unit: egui::MouseWheelUnit::Line,
        delta: egui::vec2(0.0, -1.0),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
        modifiers: Modifiers::NONE,
    });
    h.run_steps(3);
    assert_eq!(slice(&h), last - 1);
}

#[test]
fn overlay_toggles_change_the_image_and_match_snapshots() {
    let (_dir, mut h) = fused_mr_and_pet();
    h.remove_cursor();
    h.run_steps(2);
    let mut previous = pane_image(&mut h, PaneKind::Fusion);
    image_snapshot(&previous, "viewer_fusion_pane");
    for (label, name) in [
        ("fused", "viewer_fused_off"),
        ("reliability A (scale 0)", "viewer_reliability_a"),
        ("reliability B (scale 0)", "viewer_reliability_b"),
        ("mixer α (scale 0)", "viewer_alpha_scale0"),
        ("mixer α (scale 2)", "viewer_alpha_scale2"),
    ] {
        h.get_by_role_and_label(Role::CheckBox, label).click();
        h.run_steps(2);
        h.remove_cursor();
        h.run_steps(2);
        let now = pane_image(&mut h, PaneKind::Fusion);
        assert_ne!(now, previous, "toggling {label} changed nothing");
        image_snapshot(&now, name);
        previous = now;
    }
}

/// The fused image's "colours from" option: the fused luminance wearing the PET's chroma
/// (YCbCr), kept as a choice beside the default PET overlay.
#[test]
fn the_fused_image_in_the_pets_chroma_keeps_its_luminance() {
    let (_dir, mut h) = fused_mr_and_pet();
    h.remove_cursor();
    h.state_mut().settings.show_legend = false;
    set_style(&mut h, LayerId::Study(Side::B), false, 1.0);
    let chroma = |h: &mut App<'_>, from: Option<Side>| {
        h.state_mut()
            .session_mut()
            .and_then(|s| s.layer_mut(LayerId::Fused))
            .expect("fused layer")
            .style
            .chroma_from = from;
        h.run_steps(2);
    };
    chroma(&mut h, Some(Side::B));
    let coloured = pane_image(&mut h, PaneKind::Fusion);
    chroma(&mut h, None);
    let grey = pane_image(&mut h, PaneKind::Fusion);
    let saturation = |p: &image::Rgba<u8>| {
        let (lo, hi) = (p[0].min(p[1]).min(p[2]), p[0].max(p[1]).max(p[2]));
        hi - lo
    };
    let colourful =
        |image: &image::RgbaImage| image.pixels().filter(|p| saturation(p) > 40).count();
    assert!(
        colourful(&coloured) > colourful(&grey) + 200,
        "coloured {} vs grey {} saturated pixels",
        colourful(&coloured),
        colourful(&grey)
    );
    // Luminance is the fused image's wherever the colour is not clipped (the display is
    // sRGB-encoded on both sides, so Y is compared in encoded values).
    let luma = |p: &image::Rgba<u8>| {
        0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])
    };
    let (mut compared, mut worst) = (0, 0.0f32);
    for (c, g) in coloured.pixels().zip(grey.pixels()) {
        let clipped = (0..3).any(|k| c[k] <= 2 || c[k] >= 253);
        if saturation(g) == 0 && saturation(c) > 40 && !clipped {
            compared += 1;
            worst = worst.max((luma(c) - luma(g)).abs());
        }
    }
    assert!(compared > 100, "compared {compared}");
    assert!(worst <= 3.0, "luminance moved by {worst}");
}

/// The colour scales of the fusion pane as drawn now.
fn fusion_scales(h: &App<'_>) -> Vec<legend::Scale> {
    let app = h.state();
    let session = app.session().expect("open");
    let draws = dualmine::app::pane::draws(
        session,
        PaneKind::Fusion,
        &app.settings,
        [0.0, 0.0, 1.0, 1.0],
        false,
    );
    legend::scales(session, &draws)
}

fn layer_style(h: &App<'_>, id: LayerId) -> dualmine::app::layers::Style {
    h.state()
        .session()
        .and_then(|s| s.layer(id))
        .expect("layer")
        .style
}

/// PET on anatomy as readers expect (issue 35, defect 3: the fused image wore the PET's
/// chroma, so peak uptake turned grey-white and mid uptake olive, and a 50 % overlay darkened
/// the anatomy): by default the PET is drawn above the fused grey in its own colour map,
/// above a threshold. A hot voxel's colour on screen is the PET bar's colour for its SUV
/// (within 3 levels), and a voxel below the threshold shows the fused grey unchanged.
#[test]
fn a_hot_voxel_wears_the_colour_the_pet_bar_gives_its_suv() {
    let (_dir, mut h) = fused_mr_and_pet();
    h.remove_cursor();
    h.run_steps(2);
    let (voxel, suv) = hottest_in_slice(&h);
    let style = layer_style(&h, LayerId::Study(Side::B));
    let scales = fusion_scales(&h);
    assert!(style.visible && style.threshold.is_some_and(|t| suv > t));
    assert!(
        scales[0].title.starts_with("B · PT"),
        "the PET's scale comes first: {scales:?}"
    );
    let image = h.render().expect("rendered");
    let centre = [0, 1, 2].map(|a| voxel[a] as f32 + 0.5);
    let at = on_pane(&h, centre);
    let on_screen = image.get_pixel(at.x as u32, at.y as u32);
    // The bar's colour at the voxel's SUV, read from the screen.
    let bar = legend::bar_rects(pane_rect(&h, PaneKind::Fusion), &scales)[0];
    let low = style.window.center - style.window.width / 2.0;
    let t = ((suv - low) / style.window.width).clamp(0.0, 1.0);
    let bar_x = (bar.left() + t * bar.width()).clamp(bar.left() + 1.0, bar.right() - 1.0);
    let on_bar = image.get_pixel(bar_x as u32, bar.center().y as u32);
    let table = style.colormap.table()[ColorMap::index_of(t)];
    for c in 0..3 {
        let (screen, bar, entry) = (
            i32::from(on_screen[c]),
            i32::from(on_bar[c]),
            i32::from(table[c]),
        );
        assert!(
            (screen - bar).abs() <= 3 && (screen - entry).abs() <= 3,
            "SUV {suv:.2}: on screen {on_screen:?}, on the bar {on_bar:?}, table {table:?}"
        );
    }
    // Below the threshold the fused grey shows unchanged: hiding the PET changes nothing
    // there (pixels compared away from the legend).
    set_style(&mut h, LayerId::Study(Side::B), true, 1.0);
    let with_pet = pane_image(&mut h, PaneKind::Fusion);
    let (cold, cold_suv) = {
        let session = h.state().session().expect("open");
        let pet = &session.layer(LayerId::Study(Side::B)).expect("PET").volume;
        let [nx, ny, _] = session.dims();
        let k = slice(&h);
        let n = (0..nx * ny)
            .find(|&n| {
                let (i, j) = (n % nx, n / nx);
                let v = pet.value(i, j, k);
                v > 0.0 && v < style.threshold.unwrap_or(0.0) * 0.5 && i > 4 && j > 4
            })
            .expect("a voxel below the threshold");
        ([n % nx, n / nx, k], pet.value(n % nx, n / nx, k))
    };
    set_style(&mut h, LayerId::Study(Side::B), false, 1.0);
    let without_pet = pane_image(&mut h, PaneKind::Fusion);
    let pane = pane_rect(&h, PaneKind::Fusion);
    let at = on_pane(&h, [0, 1, 2].map(|a| cold[a] as f32 + 0.5)) - pane.min;
    let (x, y) = (at.x as u32, at.y as u32);
    assert_eq!(
        with_pet.get_pixel(x, y),
        without_pet.get_pixel(x, y),
        "SUV {cold_suv:.2} is below the threshold: the fused grey shows"
    );
}

/// Each pane's colour scales describe what it draws, top layer first (issue 35, defect 2: the
/// bar followed the layer whose W/L button was selected): the default fused PET–MR, the fused
/// image in the PET's colours, the PET overlay alone and a mixer map alone; the maps' ends
/// are named in words, and the bar drawn is the top layer's colour map.
#[test]
fn each_panes_colour_scales_describe_what_it_draws() {
    let (_dir, mut h) = fused_mr_and_pet();
    h.remove_cursor();
    h.run_steps(2);
    let lines = |h: &App<'_>| -> Vec<String> {
        let node = h.get_by(|n| {
            n.role() == Role::Image && n.label().is_some_and(|l| l.starts_with("fusion pane"))
        });
        let label = node.accesskit_node().label().unwrap_or_default();
        label.lines().skip(1).map(str::to_string).collect()
    };
    let default = lines(&h);
    assert_eq!(default.len(), 3, "{default:?}");
    assert!(
        default[0].starts_with("B · PT (SUVbw): 0.00 (hot iron) to "),
        "{default:?}"
    );
    assert!(default[0].contains("not drawn below"), "{default:?}");
    assert!(default[1].starts_with("fused (0 dark to 1 bright): 0.00 (gray) to 1.00"));
    assert!(default[2].starts_with("A · MR (signal)"), "{default:?}");
    // The fused image in the PET's colours: its grey scale, then the PET's scale in SUV.
    set_style(&mut h, LayerId::Study(Side::B), false, 1.0);
    h.state_mut()
        .session_mut()
        .and_then(|s| s.layer_mut(LayerId::Fused))
        .expect("fused")
        .style
        .chroma_from = Some(Side::B);
    h.run_steps(2);
    let coloured = lines(&h);
    assert!(coloured[0].starts_with("fused (0 dark"), "{coloured:?}");
    assert!(
        coloured[1].starts_with("fused colours: B · PT (SUVbw): 0.00 (hot iron)"),
        "{coloured:?}"
    );
    // The PET overlay alone (fused off, the MR hidden).
    set_style(&mut h, LayerId::Fused, false, 1.0);
    set_style(&mut h, LayerId::Study(Side::A), false, 1.0);
    set_style(&mut h, LayerId::Study(Side::B), true, 1.0);
    let overlay = lines(&h);
    assert_eq!(overlay.len(), 1, "{overlay:?}");
    assert!(overlay[0].starts_with("B · PT (SUVbw)"), "{overlay:?}");
    // A mixer map alone, its ends in words.
    set_style(&mut h, LayerId::Study(Side::B), false, 1.0);
    set_style(&mut h, LayerId::Alpha(0), true, 1.0);
    let map = lines(&h);
    assert_eq!(
        map,
        ["mixer α, scale 0: 0.00 spatial expert (rainbow) to 1.00 wavelet expert"]
    );
    set_style(&mut h, LayerId::Alpha(0), false, 1.0);
    set_style(&mut h, LayerId::Reliability(Side::A, 0), true, 1.0);
    assert_eq!(
        lines(&h),
        ["reliability of A · MR, scale 0: 0.00 B · PT trusted (rainbow) to 1.00 A · MR trusted"]
    );
    // The bar on screen is the map's colour map (rainbow), not the grey of the fused image.
    let image = h.render().expect("rendered");
    let bar = legend::bar_rects(pane_rect(&h, PaneKind::Fusion), &fusion_scales(&h))[0];
    for t in [0.1f32, 0.5, 0.9] {
        let x = bar.left() + t * bar.width();
        let pixel = image.get_pixel(x as u32, bar.center().y as u32);
        let expected = ColorMap::Rainbow.table()[ColorMap::index_of(t)];
        for c in 0..3 {
            let diff = (i32::from(pixel[c]) - i32::from(expected[c])).abs();
            assert!(diff <= 12, "t {t}: bar {pixel:?}, rainbow {expected:?}");
        }
    }
}

#[test]
fn opacity_is_linear_from_base_to_overlay() {
    let (_dir, mut h) = fused_mr_and_pet();
    h.remove_cursor();
    let base_id = LayerId::Study(Side::A); // MR: the reference (given first)
    let overlay = LayerId::Reliability(Side::A, 0);
    h.state_mut().settings.show_legend = false;
    set_style(&mut h, LayerId::Study(Side::B), false, 1.0);
    set_style(&mut h, LayerId::Fused, false, 1.0);
    set_style(&mut h, overlay, false, 1.0);
    let base = pane_image(&mut h, PaneKind::Fusion);
    set_style(&mut h, overlay, true, 0.0);
    assert_eq!(
        pane_image(&mut h, PaneKind::Fusion),
        base,
        "0 % is the base"
    );
    set_style(&mut h, overlay, true, 1.0);
    let full = pane_image(&mut h, PaneKind::Fusion);
    assert_ne!(full, base);
    set_style(&mut h, base_id, false, 1.0);
    assert_eq!(
        pane_image(&mut h, PaneKind::Fusion),
        full,
        "100 % is the overlay alone"
    );
    set_style(&mut h, base_id, true, 1.0);
    set_style(&mut h, overlay, true, 0.5);
    let half = pane_image(&mut h, PaneKind::Fusion);
    if std::env::var_os("DEBUG_VIEWER").is_some() {
        half.save("/tmp/half.png").ok();
        base.save("/tmp/base.png").ok();
        full.save("/tmp/full.png").ok();
    }
    let worst = half
        .pixels()
        .zip(base.pixels().zip(full.pixels()))
        .flat_map(|(h, (b, f))| {
            (0..3).map(move |c| (h[c] as f32 - (b[c] as f32 + f[c] as f32) / 2.0).abs())
        })
        .fold(0.0f32, f32::max);
    assert!(
        worst <= 1.5,
        "50 % is the mean of base and overlay (worst {worst})"
    );
}

#[test]
fn right_drag_sets_window_and_level() {
    let (_dir, studies) = demo(PhantomSize::SMALL);
    let mut h = harness(mr_and_pet(&studies), false);
    wait_until(&mut h, "the studies to load", |a| a.session().is_some());
    let window = |h: &App<'_>| {
        h.state()
            .session()
            .and_then(|s| s.layer(LayerId::Study(Side::B)))
            .expect("B")
            .style
            .window
    };
    let before = (window(&h), pane_image(&mut h, PaneKind::Study(Side::B)));
    let from = pane_rect(&h, PaneKind::Study(Side::B)).center();
    let button = |pos: Pos2, pressed| Event::PointerButton {
        pos,
        button: PointerButton::Secondary,
        pressed,
        modifiers: Modifiers::NONE,
    };
    h.event(Event::PointerMoved(from));
    h.event(button(from, true));
    for step in 1..=5 {
        h.event(Event::PointerMoved(
            from + egui::vec2(-12.0, 8.0) * step as f32,
        ));
        h.run_steps(1);
    }
    let to = from + egui::vec2(-60.0, 40.0);
    h.event(button(to, false));
    h.remove_cursor();
    h.run_steps(2);
    let after = window(&h);
    assert!(
        after.width < before.0.width,
        "dragging left narrows the window"
    );
    assert!(
        after.center < before.0.center,
        "dragging down lowers the level"
    );
    assert_ne!(pane_image(&mut h, PaneKind::Study(Side::B)), before.1);
}

/// Copies every file of `from` into `to`, prefixing the names with `prefix`.
fn copy_files(from: &Path, to: &Path, prefix: &str) {
    for entry in std::fs::read_dir(from).expect("readable") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("named").to_string_lossy();
        std::fs::copy(&path, to.join(format!("{prefix}_{name}"))).expect("copied");
    }
}

#[test]
fn a_folder_with_several_series_offers_a_picker() {
    let (dir, studies) = demo(PhantomSize::SMALL);
    let mixed: PathBuf = dir.path().join("mixed");
    std::fs::create_dir(&mixed).expect("folder");
    copy_files(&studies.ct, &mixed, "ct");
    copy_files(&studies.mr, &mixed, "mr");
    let mut h = harness(
        vec![Source::Path(mixed), Source::Path(studies.pet.clone())],
        false,
    );
    wait_until(&mut h, "the picker", |a| a.picker_series().is_some());
    let series = h.state().picker_series().expect("picker").to_vec();
    assert_eq!(series.len(), 2);
    let mr = series.iter().position(|s| s.modality == "MR").expect("MR") + 1;
    h.get_by_label(&format!("Open #{mr}")).click();
    wait_until(&mut h, "the chosen series to load", |a| {
        a.session().is_some()
    });
    let session = h.state().session().expect("open");
    assert_eq!(session.pair.a.modality.code(), "MR");
    assert!(h.state().picker_series().is_none());
}

/// The viewer on a T1 from another session (its own study and frame of reference) and the
/// phantom's PET; the phantom's studies are returned too.
fn other_session_and_pet() -> (tempfile::TempDir, phantom::DemoStudies, App<'static>) {
    let (dir, studies) = demo(PhantomSize::SMALL);
    let other = dir.path().join("MR_other_session");
    let grid = phantom::head_grid(48, 16, 4.0, 10.5);
    let options = SeriesOptions {
        series_description: "T1 from another session".into(),
        ..SeriesOptions::new_study("PHANTOM^HEAD", "DUALMINE-DEMO", "")
    };
    write_series(&phantom::mr_t1_volume(&grid), &other, &options).expect("written");
    let h = harness(
        vec![Source::Path(other), Source::Path(studies.pet.clone())],
        true,
    );
    (dir, studies, h)
}

#[test]
fn a_different_frame_of_reference_is_flagged_and_not_fused() {
    let (_dir, studies, mut h) = other_session_and_pet();
    wait_until(&mut h, "the studies to load", |a| a.session().is_some());
    assert!(
        h.state()
            .session()
            .expect("open")
            .pair
            .frame_warning
            .is_some()
    );
    h.get_by_label("Frame of reference differs");
    assert!(
        h.state().session().expect("open").job.is_none(),
        "studies in different frames of reference are not fused silently"
    );
    h.get_by_label("Fuse anyway").click();
    h.run_steps(2);
    assert!(h.state().session().expect("open").job.is_some());

    // Studies sharing a frame of reference get no banner.
    let mut h = harness(mr_and_pet(&studies), false);
    wait_until(&mut h, "the studies to load", |a| a.session().is_some());
    assert!(h.query_by_label("Frame of reference differs").is_none());
}

#[test]
fn scrolling_and_window_level_respond_while_fusion_runs() {
    // The demo size (128² × 48): fusion takes seconds, far longer than the steps below.
    let (_dir, studies) = demo(PhantomSize::DEMO);
    let mut h = harness(mr_and_pet(&studies), true);
    wait_until(&mut h, "fusion to start", |a| {
        a.session().is_some_and(|s| s.job.is_some())
    });
    // Hold the job after its current batch, so that the interaction below provably happens
    // while fusion is under way (not before it starts or after it ends).
    let job = |h: &App<'_>| {
        let j = fusion_job(h);
        (j.is_running(), j.done, j.total)
    };
    pause_fusion(&h, true);
    let start = slice(&h);
    h.key_press(egui::Key::ArrowDown);
    h.run_steps(2);
    assert_eq!(slice(&h), start - 1);
    let level = |h: &App<'_>| {
        h.state()
            .session()
            .and_then(|s| s.layer(LayerId::Study(Side::A)))
            .expect("A")
            .style
            .window
            .center
    };
    let before = level(&h);
    let from = pane_rect(&h, PaneKind::Study(Side::A)).center();
    h.event(Event::PointerMoved(from));
    h.event(Event::PointerButton {
        pos: from,
        button: PointerButton::Secondary,
        pressed: true,
        modifiers: Modifiers::NONE,
    });
    h.event(Event::PointerMoved(from + egui::vec2(0.0, -30.0)));
    h.run_steps(2);
    assert!(level(&h) > before, "dragging up raises the level");
    let (running, done, total) = job(&h);
    assert!(
        running && done < total,
        "fusion still under way ({done}/{total})"
    );
    pause_fusion(&h, false);
    wait_until(&mut h, "fusion to finish", fused);
    let session = h.state().session().expect("open");
    let fused = session.layer(LayerId::Fused).expect("fused");
    assert!(fused.volume.data.iter().all(|v| v.is_finite()));
}

/// Where slice `k` of the running fusion is, as the viewer received it.
fn slice_state(h: &App<'_>, k: usize) -> SliceState {
    fusion_job(h).slice_state(k).expect("a slice of the grid")
}

fn pause_fusion(h: &App<'_>, paused: bool) {
    fusion_job(h).set_paused(paused);
}

#[test]
fn fusion_follows_the_reader_the_slice_in_view_first_then_where_the_reader_goes() {
    // The demo size (128² × 48): fusion takes seconds, many batches after the first.
    let (_dir, studies) = demo(PhantomSize::DEMO);
    let mut h = harness(mr_and_pet(&studies), true);
    wait_until(&mut h, "fusion to start", |a| {
        a.session().is_some_and(|s| s.job.is_some())
    });
    let slices = h.state().session().expect("open").dims()[2];
    let in_view = h.state().session().expect("open").slice(Orientation::Axial);
    let shown = |k: usize| {
        move |a: &ViewerApp| {
            a.session()
                .and_then(|s| s.job.as_ref())
                .and_then(|j| j.slice_state(k))
                .is_some_and(|state| state != SliceState::Pending)
        }
    };
    wait_until(&mut h, "the slice in view to be fused", shown(in_view));
    pause_fusion(&h, true);
    let far = |from: &[usize]| -> Vec<usize> {
        (0..slices)
            .filter(|k| from.iter().all(|f| k.abs_diff(*f) > 12))
            .collect()
    };
    for k in far(&[in_view]) {
        assert_eq!(
            slice_state(&h, k),
            SliceState::Pending,
            "slice {k} before {in_view}"
        );
    }
    // The reader goes 20 slices away (a click in another plane moves the cursor the same way).
    let target = in_view.checked_sub(20).unwrap_or(in_view + 20);
    h.state_mut()
        .session_mut()
        .expect("open")
        .scroll(Orientation::Axial, target as i64 - in_view as i64);
    h.run_steps(2);
    pause_fusion(&h, false);
    wait_until(&mut h, "the slice gone to to be fused", shown(target));
    pause_fusion(&h, true);
    for k in far(&[in_view, target]) {
        assert_eq!(
            slice_state(&h, k),
            SliceState::Pending,
            "slice {k} before {target}"
        );
    }
    pause_fusion(&h, false);
    wait_until(&mut h, "fusion to finish", fused);
    for k in 0..slices {
        assert_eq!(slice_state(&h, k), SliceState::Done, "slice {k}");
    }
    let job = fusion_job(&h);
    assert_eq!((job.done, job.error.as_deref()), (slices, None));
}

#[test]
fn compare_modes_and_orientations_change_the_fusion_pane() {
    let (_dir, studies) = demo(PhantomSize::SMALL);
    let mut h = harness(mr_and_pet(&studies), false);
    wait_until(&mut h, "the studies to load", |a| a.session().is_some());
    h.remove_cursor();
    h.run_steps(2);
    let plain = pane_image(&mut h, PaneKind::Fusion);
    h.get_by_label("checkerboard").click();
    h.run_steps(2);
    h.remove_cursor();
    h.run_steps(1);
    let checkerboard = pane_image(&mut h, PaneKind::Fusion);
    assert_ne!(checkerboard, plain);
    h.get_by_label("curtain").click();
    h.run_steps(2);
    h.remove_cursor();
    h.run_steps(1);
    let curtain = pane_image(&mut h, PaneKind::Fusion);
    assert_ne!(curtain, checkerboard);
    assert_ne!(curtain, plain);
    // The sagittal plane of the same grid: another image, another number of slices.
    h.key_press(egui::Key::S);
    h.run_steps(2);
    assert_ne!(pane_image(&mut h, PaneKind::Fusion), curtain);
    let app = h.state();
    assert_eq!(app.settings.orientation, Orientation::Sagittal);
    let dims = app.session().expect("open").dims();
    assert_eq!(slice(&h), dims[0] / 2);
}

#[test]
fn three_planes_show_the_fusion_through_the_crosshair() {
    let (_dir, studies) = demo(PhantomSize::SMALL);
    let mut h = harness(mr_and_pet(&studies), false);
    wait_until(&mut h, "the studies to load", |a| a.session().is_some());
    h.key_press(egui::Key::M);
    h.run_steps(2);
    let panes: Vec<_> = h.state().pane_rects.clone();
    let planes: Vec<_> = panes.iter().map(|(k, o, _)| (*k, *o)).collect();
    assert_eq!(
        planes,
        Orientation::ALL.map(|o| (PaneKind::Fusion, o)).to_vec()
    );
    let pixels = |h: &mut App<'_>, plane: usize| rect_image(h, panes[plane].2);
    h.remove_cursor();
    h.run_steps(1);
    let before = [0, 1, 2].map(|plane| pixels(&mut h, plane));
    let cursor = h.state().session().expect("open").cursor;
    // A click in the axial pane, up and left of the crosshair, moves the crosshair there:
    // the coronal and sagittal panes show other slices, the axial pane the same one.
    let axial = panes[0].2;
    let at = axial.center() + egui::vec2(-axial.width() / 8.0, -axial.width() / 8.0);
    let button = |pressed| Event::PointerButton {
        pos: at,
        button: PointerButton::Primary,
        pressed,
        modifiers: Modifiers::NONE,
    };
    h.event(Event::PointerMoved(at));
    h.event(button(true));
    h.event(button(false));
    h.run_steps(2);
    h.remove_cursor();
    h.run_steps(1);
    let moved = h.state().session().expect("open").cursor;
    assert_eq!(moved[2], cursor[2], "the axial slice stays");
    assert!(
        moved[0] < cursor[0] && moved[1] < cursor[1],
        "{cursor:?} → {moved:?}"
    );
    let after = [0, 1, 2].map(|plane| pixels(&mut h, plane));
    for plane in 1..3 {
        assert_ne!(
            after[plane], before[plane],
            "plane {plane} follows the crosshair"
        );
    }
    // The mouse wheel over the sagittal pane scrolls the sagittal slice (x).
    h.hover_at(panes[2].2.center());
    h.event(Event::MouseWheel {
        unit: egui::MouseWheelUnit::Line,
        delta: egui::vec2(0.0, 1.0),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
        modifiers: Modifiers::NONE,
    });
    h.run_steps(2);
    let scrolled = h.state().session().expect("open").cursor;
    assert_eq!(scrolled[0], moved[0].floor() + 1.5);
    assert_eq!((scrolled[1], scrolled[2]), (moved[1], moved[2]));
    // M again: back to A | B | fusion.
    h.key_press(egui::Key::M);
    h.run_steps(2);
    assert_eq!(h.state().pane_rects.len(), 3);
    assert_eq!(h.state().pane_rects[0].0, PaneKind::Study(Side::A));
}

/// A file dropped on the window (egui's handle of it).
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        Err("a folder".into())
    }
}

#[test]
fn dropped_folders_are_opened() {
    let (_dir, studies) = demo(PhantomSize::SMALL);
    let mut h = harness(Vec::new(), false);
    h.run_steps(2);
    assert!(h.state().session().is_none());
    for folder in [&studies.ct, &studies.spect] {
        h.input_mut()
            .dropped_files
            .push(std::sync::Arc::new(Dropped(folder.clone())));
    }
    wait_until(&mut h, "the dropped studies to load", |a| {
        a.session().is_some()
    });
    let session = h.state().session().expect("open");
    assert_eq!(session.pair.a.modality.code(), "CT");
    assert_eq!(session.pair.b.as_ref().expect("two").modality.code(), "NM");
}

#[test]
fn values_under_the_pointer_are_in_physical_units_and_help_lists_shortcuts() {
    let (_dir, studies) = demo(PhantomSize::SMALL);
    let mut h = harness(mr_and_pet(&studies), false);
    wait_until(&mut h, "the studies to load", |a| a.session().is_some());
    let centre = pane_rect(&h, PaneKind::Study(Side::B)).center();
    h.hover_at(centre);
    h.run_steps(2);
    let session = h.state().session().expect("open");
    let voxel = session.hover.expect("a voxel under the pointer");
    let suv = session
        .layer(LayerId::Study(Side::B))
        .expect("PET")
        .value(voxel);
    // The read-out names the PET value in SUV, the MR value as MR signal.
    h.get_by_label(&format!("{suv:.2} SUV"));
    assert!(
        h.query_by(
            |n| n.role() == Role::Label && n.value().is_some_and(|l| l.contains("(MR signal)"))
        )
        .is_some()
    );
    h.key_press(egui::Key::F1);
    h.run_steps(2);
    h.get_by_label("Help: shortcuts");
    h.get_by_label("Page Up / Page Down");
    // Every widget has an accessible name (kittest checks at the end of `run`), with the
    // layer panel, help and export dialog all open.
    h.key_press(egui::Key::E);
    h.run();
}

#[test]
fn the_banner_registers_the_other_session_and_fusion_follows() {
    let (_dir, _studies, mut h) = other_session_and_pet();
    wait_until(&mut h, "the studies to load", |a| a.session().is_some());
    h.get_by_label("Register").click();
    h.run_steps(2);
    wait_until(&mut h, "the registration", |a| {
        a.session().is_some_and(|s| s.registration.is_some())
    });
    let session = h.state().session().expect("open");
    assert!(session.pair.frame_warning.is_none(), "banner lifted");
    assert!(session.job.is_some(), "fusion started after registration");
    let (transform, metric) = session.registration.expect("registered");
    assert!(metric.is_some_and(|m| m > 0.0));
    // The PET phantom shares the head: the transform is small.
    assert!(
        transform.translation_mm.iter().all(|t| t.abs() < 10.0),
        "{transform:?}"
    );
    h.get_by_label("Save transform…");
}
