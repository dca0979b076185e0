//! Saved sessions, driven through egui_kittest on the phantom: a session saved with a
//! changed view (slice, window, colour map, overlay, VOI, distance, layout) reopens in a
//! fresh app to the same pixels, and one whose second study moved opens the first and says
//! which is missing.

mod common;

use common::viewer::*;
use dualmine::app::layers::LayerId;
use std::collections::HashMap;
use std::sync::Arc;

use dualmine::app::compose::compose;
use dualmine::app::pane::{self, PaneKind};
use dualmine::app::studies::Side;
use dualmine::app::vois;
use dualmine::phantom::PhantomSize;
use dualmine::volume::Volume;
use dualmine::volume::colormap::ColorMap;
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;

#[test]
fn a_saved_session_reopens_to_the_same_pixels_in_a_fresh_app() {
    let (dir, studies) = demo(PhantomSize::SMALL);
    let mut first = harness(mr_and_pet(&studies), true);
    wait_until(&mut first, "fusion to finish", fused);
    {
        let app = first.state_mut();
        let session = app.session_mut().expect("open");
        session.cursor[2] += 3.0;
        let pet = session.layer_mut(LayerId::Study(Side::B)).expect("PET");
        pet.style.window.width *= 0.6;
        let fused = session.layer_mut(LayerId::Fused).expect("fused");
        fused.style.colormap = ColorMap::Rainbow;
        fused.style.chroma_from = None;
        fused.style.opacity = 0.7;
        let reliability = session
            .layer_mut(LayerId::Reliability(Side::A, 0))
            .expect("map");
        reliability.style.visible = true;
        let centre = session.cursor;
        vois::add_sphere(session, centre, 12.0);
        let m = vois::measurement(session, [5.5, 5.5, centre[2]], [30.5, 20.5, centre[2]]);
        session.measurements.push(m);
        session.vois[0].name = "lesion".into();
        app.settings.zoom = 1.3;
    }
    first.run_steps(3);
    first.remove_cursor();
    first.run_steps(2);
    let path = dir.path().join("session.json");
    first.state().save_session(&path).expect("saved");
    let text = std::fs::read_to_string(&path).expect("a text file");
    assert!(
        text.contains("\"lesion\"") && text.contains("rainbow"),
        "{text}"
    );

    // The same VOI headless: on study A (the viewer's grid is A's own) the numbers agree.
    let rows = common::stats_json(&[std::ffi::OsStr::new("--session"), path.as_os_str()]);
    let row = rows
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["voi"] == "lesion" && r["study"] == "A")
        .expect("the lesion on A")
        .clone();
    let viewer = {
        let session = first.state().session().expect("open");
        let (_, stats) = session.vois[0]
            .statistics
            .iter()
            .find(|(l, _)| *l == LayerId::Study(Side::A))
            .expect("A's statistics")
            .clone();
        stats
    };
    common::assert_printed(
        &row["statistics"],
        &[
            ("mean", viewer.mean),
            ("max", viewer.max),
            ("volume_ml", viewer.volume_ml),
        ],
        1e-6,
    );

    let mut second = harness(vec![], false);
    second.state_mut().open_session(&path).expect("opens");
    wait_until(&mut second, "the session to load and fuse", fused);
    second.run_steps(3);
    second.remove_cursor();
    second.run_steps(2);
    {
        let session = second.state().session().expect("open");
        assert_eq!(session.vois.len(), 1);
        assert_eq!(session.vois[0].name, "lesion");
        assert_eq!(session.measurements.len(), 1);
    }
    // Each pane as displayed, composed at one pixel per voxel by the export's CPU twin of
    // the shader (independent of the window's layout), must be identical...
    for kind in [
        PaneKind::Study(Side::A),
        PaneKind::Study(Side::B),
        PaneKind::Fusion,
    ] {
        assert!(
            composed(&first, kind) == composed(&second, kind),
            "{kind:?} differs after reopening"
        );
    }
    let (a, b) = (&first.state().settings, &second.state().settings);
    assert_eq!(
        (a.zoom, a.pan, a.layout, a.orientation),
        (b.zoom, b.pan, b.layout, b.orientation)
    );
    // ...and so must the screen, outlines and crosshair included, when the two windows are
    // laid out alike (a status line of another length can shift them by a pixel).
    for kind in [PaneKind::Study(Side::A), PaneKind::Fusion] {
        if pane_rect(&first, kind) != pane_rect(&second, kind) {
            println!("{kind:?}: the windows are laid out differently; screen not compared");
            continue;
        }
        let (before, after) = (pane_image(&mut first, kind), pane_image(&mut second, kind));
        let differing = differing_pixels(&before, &after);
        assert_eq!(
            differing, 0,
            "{kind:?}: {differing} pixels differ on screen"
        );
    }
}

/// Pane `kind` at the current slice as the PNG export composes it.
fn composed(h: &App<'_>, kind: PaneKind) -> Vec<u8> {
    let app = h.state();
    let session = app.session().expect("open");
    let orientation = app.settings.orientation;
    let draws = pane::draws_at(
        session,
        kind,
        &app.settings,
        session.slice(orientation),
        [0.0, 0.0, 1.0, 1.0],
        false,
    );
    let volumes: HashMap<u64, Arc<Volume>> = session
        .layers
        .iter()
        .map(|l| (l.id.key(), l.volume.clone()))
        .collect();
    compose(&draws, &volumes, orientation.size_voxels(session.dims()))
}

#[test]
fn a_session_whose_study_moved_opens_the_rest_and_names_it() {
    let (dir, studies) = demo(PhantomSize::SMALL);
    let mut first = harness(mr_and_pet(&studies), false);
    wait_until(&mut first, "the studies to load", |a| a.session().is_some());
    let path = dir.path().join("session.json");
    first.state().save_session(&path).expect("saved");
    let moved = studies.pet.with_extension("moved");
    std::fs::rename(&studies.pet, &moved).expect("move the PET");
    let mut second = harness(vec![], false);
    second
        .state_mut()
        .open_session(&path)
        .expect("opens the rest");
    wait_until(&mut second, "the MR to load", |a| a.session().is_some());
    let error = second.state().error().expect("a message").to_string();
    assert!(
        error.contains(&studies.pet.display().to_string()),
        "{error}"
    );
    let session = second.state().session().expect("open");
    assert!(session.pair.b.is_none(), "only the MR opened");
    // A file that is no session is refused with its name.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"version\": 1}").expect("write");
    let refused = second.state_mut().open_session(&bad).expect_err("refused");
    assert!(refused.contains("bad.json"), "{refused}");
}

/// Without a desktop file dialog (no XDG portal, no zenity) "Open…" and "Save session…" say
/// so in the window and take a typed path (issue 35: nothing visible happened, the error went
/// to stderr).
#[test]
fn without_a_desktop_dialog_the_window_says_so_and_takes_a_typed_path() {
    let (_dir, studies) = demo(PhantomSize::SMALL);
    let mut h = harness_with(Vec::new(), |app| {
        app.with_desktop_dialogs(false).with_auto_fuse(false)
    });
    h.run_steps(2);
    h.get_by_label("Open…").click();
    h.run_steps(4);
    assert!(
        h.query_by_label_contains("No file dialog could open")
            .is_some(),
        "the window says why no dialog opened"
    );
    let field = h.get_by_label("Study folders to open (one or two, separated by ';')");
    field.focus();
    field.type_text(&format!(
        "{}; {}",
        studies.mr.display(),
        studies.pet.display()
    ));
    h.run_steps(1);
    h.get_by_label("OK").click();
    wait_until(&mut h, "both studies to load", |a| {
        a.session().is_some_and(|s| s.pair.b.is_some())
    });
    assert!(h.query_by_label_contains("No file dialog").is_none());

    let saved = tempfile::tempdir().expect("temp dir");
    let path = saved.path().join("typed.json");
    h.get_by_label("File").click();
    h.run_steps(3);
    h.get_by_label("Save session…").click();
    h.run_steps(4);
    let field = h.get_by_label("File to save the session to (.json)");
    field.focus();
    field.type_text(&path.display().to_string());
    h.run_steps(1);
    h.get_by_label("OK").click();
    h.run_steps(2);
    assert!(path.is_file(), "the session was saved where typed");
    assert_eq!(h.state().error(), None);
}

/// Issue 36, line 6: on STS_001 MR T1 + PET and CT + PET, the fused layer's detail slider
/// fuses again at the chosen d (the pane changes), and a saved session reopens at that d.
#[test]
fn the_detail_slider_refuses_the_pane_and_the_session_keeps_it() {
    let studies =
        ["MR_T1", "CT", "PET"].map(|m| common::shared_data(&format!("dicom/sts/STS_001/{m}")));
    let [Some(mr), Some(ct), Some(pet)] = studies else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    for anatomy in [mr, ct] {
        let sources = vec![
            dualmine::app::Source::Path(anatomy.clone()),
            dualmine::app::Source::Path(pet.clone()),
        ];
        let mut first = harness(sources, true);
        wait_until(&mut first, "fusion to finish", fused);
        let before = first.state().session().expect("open").detail_or_default();
        let chosen = if before < 0.5 { 1.0 } else { 0.0 };
        let fused_slice = |h: &App<'_>| {
            let session = h.state().session().expect("open");
            let layer = session.layer(LayerId::Fused).expect("fused layer");
            let [nx, ny, _] = session.dims();
            let z = session.slice(dualmine::volume::plane::Orientation::Axial);
            layer.volume.data[z * nx * ny..(z + 1) * nx * ny].to_vec()
        };
        let (values_before, pane_before) = (
            fused_slice(&first),
            pane_image(&mut first, PaneKind::Fusion),
        );
        first
            .get_by_role_and_label(Role::Slider, "detail")
            .set_value_accesskit(f64::from(chosen));
        first.run_steps(2);
        let job_detail = |h: &App<'_>| {
            let session = h.state().session().expect("open");
            session.job.as_ref().map(|j| j.detail)
        };
        assert_eq!(job_detail(&first), Some(chosen), "{}", anatomy.display());
        wait_until(&mut first, "fusion at the new detail", fused);
        let values_after = fused_slice(&first);
        let moved = values_before
            .iter()
            .zip(&values_after)
            // The fused layer holds 0 … 1.
            .filter(|(x, y)| (*x - *y).abs() > 2.0 / 255.0)
            .count();
        let pane_after = pane_image(&mut first, PaneKind::Fusion);
        let changed_pixels = differing_pixels(&pane_before, &pane_after);
        println!(
            "{}: d {before} → {chosen}: {moved} voxels of the slice moved over 2 grey levels, \
             {changed_pixels} pane pixels changed",
            anatomy.display()
        );
        assert!(moved > values_before.len() / 100, "{moved} voxels moved");
        assert!(changed_pixels > 0);

        let path = dir.path().join("detail.json");
        first.state().save_session(&path).expect("saved");
        let mut second = harness(vec![], false);
        second.state_mut().open_session(&path).expect("opens");
        wait_until(&mut second, "the session to load and fuse", |app| {
            fused(app) && app.session().is_some_and(|s| s.detail == Some(chosen))
        });
        assert_eq!(job_detail(&second), Some(chosen));
        assert_eq!(fused_slice(&second), values_after);
    }
}
