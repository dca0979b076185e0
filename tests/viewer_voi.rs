//! Volumes of interest in the viewer, driven through egui_kittest on the phantom: a sphere
//! dragged out in the fusion pane and a 41 % threshold region clicked on the PET's hottest
//! voxel, each listed with statistics for every layer and drawn on the pane.

mod common;

use common::viewer::*;
use dualmine::app::layers::LayerId;
use dualmine::app::marks::VoiKind;
use dualmine::app::pane::{PaneKind, image_rect};
use dualmine::app::studies::Side;
use dualmine::app::vois::{self, THRESHOLD_FRACTION};
use dualmine::phantom::PhantomSize;
use dualmine::volume::plane::Orientation;
use dualmine::volume::voi::{self, Statistics, Threshold};
use egui::{Event, Modifiers, PointerButton, Pos2};
use egui_kittest::kittest::{NodeT, Queryable};

/// Where the centre of voxel (i, j) of the current axial slice is in the fusion pane.
fn voxel_on_pane(h: &App<'_>, i: usize, j: usize) -> Pos2 {
    let app = h.state();
    let session = app.session().expect("open");
    let pane = pane_rect(h, PaneKind::Fusion);
    let size_mm = app.settings.orientation.size_mm(&session.pair.a.geometry);
    let image = image_rect(pane, size_mm, app.settings.zoom, app.settings.pan);
    let [u, v] = app
        .settings
        .orientation
        .image_position(session.dims(), [i as f32 + 0.5, j as f32 + 0.5, 0.5]);
    image.min + egui::vec2(u, v) * image.size()
}

/// Drags the primary button from `from` to `to` in four moves, and lets the app settle.
fn drag(h: &mut App<'_>, from: Pos2, to: Pos2) {
    h.event(Event::PointerMoved(from));
    press(h, from, true);
    for step in 1..=4 {
        h.event(Event::PointerMoved(from + (to - from) * step as f32 / 4.0));
        h.run_steps(1);
    }
    press(h, to, false);
    h.run_steps(2);
}

/// Clicks the primary button at `at`, and lets the app settle.
fn click(h: &mut App<'_>, at: Pos2) {
    h.event(Event::PointerMoved(at));
    press(h, at, true);
    h.run_steps(1);
    press(h, at, false);
    h.run_steps(2);
}

fn press(h: &mut App<'_>, pos: Pos2, pressed: bool) {
    h.event(Event::PointerButton {
        pos,
        button: PointerButton::Primary,
        pressed,
        modifiers: Modifiers::NONE,
    });
}

#[test]
fn a_sphere_and_a_41_percent_region_get_statistics_for_every_layer() {
    let (_dir, mut h) = fused_mr_and_pet();
    h.remove_cursor();
    h.run_steps(2);
    let before = pane_image(&mut h, PaneKind::Fusion);

    // Sphere: drag 8 voxels to the right of the centre of the slice.
    h.get_by_label("sphere").click();
    h.run_steps(2);
    let dims = h.state().session().expect("open").dims();
    let (ci, cj) = (dims[0] / 2, dims[1] / 2);
    let from = voxel_on_pane(&h, ci, cj);
    let to = voxel_on_pane(&h, ci + 8, cj);
    drag(&mut h, from, to);
    h.remove_cursor();
    h.run_steps(2);
    {
        let session = h.state().session().expect("open");
        assert_eq!(session.vois.len(), 1, "{:?}", session.voi_message);
        let voi = &session.vois[0];
        let spacing = session.pair.a.geometry.spacing[0];
        let VoiKind::Sphere { radius_mm, .. } = voi.kind else {
            panic!("a sphere");
        };
        assert!(
            (radius_mm - 8.0 * spacing).abs() < spacing,
            "radius {radius_mm}"
        );
        let layers: Vec<LayerId> = voi.statistics.iter().map(|(l, _)| *l).collect();
        for wanted in [
            LayerId::Study(Side::A),
            LayerId::Study(Side::B),
            LayerId::Fused,
            LayerId::Reliability(Side::A, 0),
            LayerId::Alpha(0),
        ] {
            assert!(
                layers.contains(&wanted),
                "{wanted:?} missing from {layers:?}"
            );
        }
        let pet = &voi
            .statistics
            .iter()
            .find(|(l, _)| *l == LayerId::Study(Side::B));
        assert_eq!(pet.expect("PET").1.units, "SUV");
    }
    // The VOI table lists it: its name field and its statistics' columns.
    assert!(
        h.query_all_by_value("VOI 1").next().is_some(),
        "the table shows VOI 1"
    );
    assert!(
        h.query_by_label("peak").is_some(),
        "the table's peak column"
    );
    let with_sphere = pane_image(&mut h, PaneKind::Fusion);
    assert_ne!(with_sphere, before, "the sphere is drawn");

    // 41 %: click the PET's hottest voxel of the current slice.
    h.get_by_label("grow").click();
    h.run_steps(2);
    let (hot, slice) = {
        let session = h.state().session().expect("open");
        let pet = &session.layer(LayerId::Study(Side::B)).expect("PET").volume;
        let k = session.slice(h.state().settings.orientation);
        let hot = (0..dims[0] * dims[1])
            .max_by(|a, b| {
                let value = |n: usize| pet.value(n % dims[0], n / dims[0], k);
                value(*a).total_cmp(&value(*b))
            })
            .expect("voxels");
        (hot, k)
    };
    let at = voxel_on_pane(&h, hot % dims[0], hot / dims[0]);
    click(&mut h, at);
    let session = h.state().session().expect("open");
    assert_eq!(session.vois.len(), 2, "{:?}", session.voi_message);
    let voi = &session.vois[1];
    let VoiKind::Grown { seed, .. } = voi.kind else {
        panic!("a grown region");
    };
    assert_eq!(seed, [hot % dims[0], hot / dims[0], slice]);
    let pet = &session.layer(LayerId::Study(Side::B)).expect("PET").volume;
    let (_, stats) = voi
        .statistics
        .iter()
        .find(|(l, _)| *l == LayerId::Study(Side::B))
        .expect("PET statistics");
    // On the pair's grid the region holds every voxel at or above 41 % of its maximum; the
    // PET's statistics come from the same growth on its own grid, where the same holds.
    let grid_max = voi
        .region
        .voxels
        .iter()
        .map(|(n, _)| pet.data[*n])
        .fold(f32::MIN, f32::max);
    let level = grid_max * THRESHOLD_FRACTION;
    assert!(voi.region.voxels.len() > 1);
    assert!(
        voi.region.voxels.iter().all(|(n, _)| pet.data[*n] >= level),
        "every voxel at or above 41 % of the maximum"
    );
    assert!(stats.min >= stats.max * f64::from(THRESHOLD_FRACTION) - 1e-6);
    assert!(stats.max >= stats.mean);

    // A fixed threshold instead (the VOI panel's "value"): every voxel at or above it.
    let fixed = grid_max * 0.8;
    h.state_mut().settings.tool_options.grow = Threshold::Absolute(fixed);
    click(&mut h, at);
    let session = h.state().session().expect("open");
    assert_eq!(session.vois.len(), 3, "{:?}", session.voi_message);
    let pet = &session.layer(LayerId::Study(Side::B)).expect("PET").volume;
    let fixed_region = &session.vois[2].region;
    assert!(fixed_region.voxels.len() < session.vois[1].region.voxels.len());
    assert!(
        fixed_region
            .voxels
            .iter()
            .all(|(n, _)| pet.data[*n] >= fixed)
    );
    // Every toolbar button fits in the window (the last one is reachable).
    let help = h.get_by_label("Help").rect();
    assert!(
        help.right() <= 1280.0,
        "the toolbar overflows: Help ends at {}",
        help.right()
    );
    if std::env::var_os("DEBUG_VIEWER").is_some() {
        h.render().expect("rendered").save("/tmp/vois.png").ok();
    }
}

/// A grown region is drawn as its outline on every plane that cuts it (issue 35: only a cross
/// at its seed was drawn, so the region the table describes could not be checked): pixels at
/// the middle of its outline's edges, away from the seed, take the outline's colour in the
/// axial, coronal and sagittal planes through the seed.
#[test]
fn a_grown_region_is_outlined_on_every_plane_it_cuts() {
    let (_dir, mut h) = fused_mr_and_pet();
    h.remove_cursor();
    h.get_by_label("grow").click();
    h.run_steps(2);
    let dims = h.state().session().expect("open").dims();
    let (hot, _) = hottest_in_slice(&h);
    let seed_centre = hot.map(|v| v as f32 + 0.5);
    let at = on_pane(&h, seed_centre);
    click(&mut h, at);
    h.remove_cursor();
    let (region, seed) = {
        let session = h.state().session().expect("open");
        assert_eq!(session.vois.len(), 1, "{:?}", session.voi_message);
        let VoiKind::Grown { seed, .. } = session.vois[0].kind else {
            panic!("a grown region");
        };
        (session.vois[0].region.clone(), seed)
    };
    let outline_colour = [80u8, 255, 120];
    for orientation in Orientation::ALL {
        {
            let app = h.state_mut();
            app.settings.orientation = orientation;
            app.session_mut().expect("open").cursor = seed.map(|v| v as f32 + 0.5);
        }
        h.run_steps(3);
        let pane = pane_rect(&h, PaneKind::Fusion);
        let frame = h.render().expect("rendered");
        let axis = orientation.slice_axis();
        let segments = voi::outline(&region, dims, axis, seed[axis]);
        assert!(
            !segments.is_empty(),
            "the region cuts the {orientation:?} plane"
        );
        let seed_on_pane = on_pane(&h, seed.map(|v| v as f32 + 0.5));
        let (mut checked, mut drawn) = (0, 0);
        for [p, q] in &segments {
            let middle = on_pane(&h, [0, 1, 2].map(|d| (p[d] + q[d]) / 2.0));
            if middle.distance(seed_on_pane) < 10.0 || !pane.shrink(2.0).contains(middle) {
                continue;
            }
            checked += 1;
            let near = (-1..=1)
                .flat_map(|dy| (-1..=1).map(move |dx| (dx, dy)))
                .any(|(dx, dy)| {
                    let x = (middle.x.round() as i64 + dx) as u32;
                    let y = (middle.y.round() as i64 + dy) as u32;
                    let pixel = frame.get_pixel(x, y).0;
                    (0..3).all(|c| (i32::from(pixel[c]) - i32::from(outline_colour[c])).abs() <= 60)
                });
            drawn += usize::from(near);
        }
        assert!(
            checked >= 4,
            "{orientation:?}: only {checked} edges away from the seed"
        );
        assert!(
            drawn * 10 >= checked * 9,
            "{orientation:?}: {drawn} of {checked} outline edges drawn"
        );
    }
}

/// The side panel at 1280 × 720 with three VOIs (issue 35: its VOI table was cut on both
/// sides and the fusion pane reached under it): every widget in it lies within it across,
/// and no pane overlaps it, so a drag on the panel never reaches a pane.
#[test]
fn the_side_panel_holds_three_vois_without_clipping() {
    let (_dir, mut h) = fused_mr_and_pet();
    {
        let session = h.state_mut().session_mut().expect("open");
        let dims = session.dims();
        let centre = dims.map(|d| d as f32 / 2.0);
        assert_eq!(vois::add_sphere(session, centre, 12.0), None);
        let low = centre.map(|c| c - 3.0);
        let high = centre.map(|c| c + 3.0);
        assert_eq!(vois::add_box(session, low, high), None);
        let pet = &session.layer(LayerId::Study(Side::B)).expect("PET").volume;
        let hot = (0..pet.data.len())
            .max_by(|a, b| pet.data[*a].total_cmp(&pet.data[*b]))
            .expect("voxels");
        let seed = [
            hot % dims[0],
            hot / dims[0] % dims[1],
            hot / (dims[0] * dims[1]),
        ];
        let grown = vois::add_grown(
            session,
            seed,
            LayerId::Study(Side::B),
            Threshold::OfLocalMax(THRESHOLD_FRACTION),
        );
        assert_eq!(grown, None);
        assert_eq!(session.vois.len(), 3);
    }
    h.run_steps(4);
    let _ = h.render().expect("rendered");
    let panel = h.state().panel_rect.expect("the side panel is shown");
    for (kind, _, rect) in &h.state().pane_rects {
        assert!(
            rect.right() <= panel.left() + 0.5,
            "the {kind:?} pane ({rect:?}) reaches under the panel ({panel:?})"
        );
    }
    let mut inside = 0;
    let mut clipped = Vec::new();
    for node in h.query_all_by(|n| n.bounding_box().is_some()) {
        let rect = node.rect();
        // The resize handle sits on the panel's edge by design.
        let splitter = node.accesskit_node().role() == egui::accesskit::Role::Splitter;
        if rect.center().x < panel.left() || rect.width() <= 0.0 || splitter {
            continue;
        }
        inside += 1;
        if rect.left() < panel.left() - 0.5 || rect.right() > panel.right() + 0.5 {
            let what = node.accesskit_node();
            clipped.push(format!("{:?} {:?} {rect:?}", what.role(), what.label()));
        }
    }
    if std::env::var_os("DEBUG_VIEWER").is_some() {
        h.render().expect("rendered").save("/tmp/panel.png").ok();
    }
    assert!(inside > 40, "the panel's widgets were found ({inside})");
    assert!(
        clipped.is_empty(),
        "widgets cut by the panel ({panel:?}):\n{}",
        clipped.join("\n")
    );
}

/// A study resampled onto the pair's grid is measured on its own grid (issue 35: the
/// viewer's SUVmax of STS_001's PET on the MR grid was 0.65 % below `dualmine stats`'s):
/// with MR T1 + PET open, a 15 mm sphere and a 41 % region at the PET's hottest voxel give
/// the PET the statistics `dualmine stats` prints for the PET alone.
#[test]
fn the_pet_in_a_pair_is_measured_on_its_own_grid() {
    let (Some(mr), Some(pet)) = (
        common::shared_data("dicom/sts/STS_001/MR_T1"),
        common::shared_data("dicom/sts/STS_001/PET"),
    ) else {
        return;
    };
    let sources = vec![
        dualmine::app::Source::Path(mr),
        dualmine::app::Source::Path(pet.clone()),
    ];
    let mut h = harness(sources, false);
    wait_until(&mut h, "the studies to load", |a| a.session().is_some());
    let (hot_mm, sphere, grown) = {
        let session = h.state_mut().session_mut().expect("open");
        let original = session
            .pair
            .original_other
            .clone()
            .expect("the PET as loaded");
        assert_eq!(original.modality, dualmine::volume::Modality::Pet);
        let hot_mm = original
            .geometry
            .index_to_world(common::hottest_voxel(&original).map(|v| v as f64));
        let on_grid = session
            .pair
            .a
            .geometry
            .world_to_index(hot_mm)
            .expect("on the MR grid");
        let centre = on_grid.map(|v| v as f32 + 0.5);
        // The MR's grid may clip the sphere (it ends close to the tumour); the PET's does not.
        let _clipped = vois::add_sphere(session, centre, 15.0);
        assert_eq!(session.vois.len(), 1);
        let seed = on_grid.map(|v| v.round() as usize);
        let grown = vois::add_grown(
            session,
            seed,
            LayerId::Study(Side::B),
            Threshold::OfLocalMax(THRESHOLD_FRACTION),
        );
        assert_eq!(grown, None);
        let pet_stats = |voi: &dualmine::app::marks::Voi| {
            voi.statistics
                .iter()
                .find(|(l, _)| *l == LayerId::Study(Side::B))
                .expect("PET statistics")
                .1
                .clone()
        };
        let seed_mm = session
            .pair
            .a
            .geometry
            .index_to_world(seed.map(|v| v as f64));
        (
            hot_mm,
            pet_stats(&session.vois[0]),
            (seed_mm, pet_stats(&session.vois[1])),
        )
    };
    let arg = format!("--sphere={},{},{},15", hot_mm[0], hot_mm[1], hot_mm[2]);
    assert_same_statistics(
        &common::stats_json(&[pet.as_os_str(), arg.as_ref()])["statistics"],
        &sphere,
    );
    let (seed_mm, grown) = grown;
    let arg = format!("--grow={},{},{}", seed_mm[0], seed_mm[1], seed_mm[2]);
    let json = common::stats_json(&[pet.as_os_str(), arg.as_ref(), "--threshold=41%".as_ref()]);
    assert_same_statistics(&json["statistics"], &grown);
}

/// Deleting a VOI takes back what was said of it, and its name is not given again (issue
/// 35: a deleted VOI's "clipped" warning stayed and the next VOI took its name).
#[test]
fn a_deleted_vois_warning_goes_and_its_name_is_not_reused() {
    let (_dir, studies) = demo(PhantomSize::SMALL);
    let mut h = harness(mr_and_pet(&studies), false);
    wait_until(&mut h, "the studies to load", |a| a.session().is_some());
    {
        let session = h.state_mut().session_mut().expect("open");
        let dims = session.dims();
        let middle = dims.map(|d| d as f32 / 2.0);
        assert_eq!(vois::add_sphere(session, middle, 5.0), None);
        // A sphere at a corner of the grid is clipped, and says so.
        let message = vois::add_sphere(session, [1.0, 1.0, 1.0], 8.0);
        assert!(
            message.as_deref().is_some_and(|m| m.contains("clipped")),
            "{message:?}"
        );
        session.voi_message = message;
    }
    h.run_steps(2);
    assert!(h.query_by_label_contains("was clipped").is_some());
    let deletes: Vec<_> = h.get_all_by_label("delete").collect();
    assert_eq!(deletes.len(), 2);
    deletes[1].click();
    h.run_steps(2);
    assert!(
        h.query_by_label_contains("was clipped").is_none(),
        "the deleted VOI's warning stays"
    );
    let session = h.state_mut().session_mut().expect("open");
    assert_eq!(session.vois.len(), 1);
    let middle = session.dims().map(|d| d as f32 / 2.0);
    assert_eq!(vois::add_sphere(session, middle, 4.0), None);
    let names: Vec<&str> = session.vois.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["VOI 1", "VOI 3"], "a new VOI takes a new name");
}

#[test]
fn the_viewers_table_and_dualmine_stats_agree_on_a_real_pet() {
    let Some(folder) = common::shared_data("dicom/sts/STS_001/PET") else {
        return;
    };
    let mut h = harness(vec![dualmine::app::Source::Path(folder.clone())], false);
    wait_until(&mut h, "the PET to load", |a| a.session().is_some());
    // A 30 mm sphere on the hottest voxel, as the sphere tool makes it.
    let (centre_mm, stats) = {
        let session = h.state_mut().session_mut().expect("open");
        let pet = session.pair.a.clone();
        let voxel = common::hottest_voxel(&pet);
        let centre_mm = pet.geometry.index_to_world(voxel.map(|v| v as f64));
        dualmine::app::vois::add_sphere(session, voxel.map(|v| v as f32 + 0.5), 15.0);
        let voi = session.vois.last().expect("a VOI");
        let (_, stats) = voi
            .statistics
            .iter()
            .find(|(l, _)| *l == LayerId::Study(Side::A))
            .expect("PET statistics")
            .clone();
        (centre_mm, stats)
    };
    let sphere = format!(
        "--sphere={},{},{},15",
        centre_mm[0], centre_mm[1], centre_mm[2]
    );
    let json = common::stats_json(&[folder.as_os_str(), sphere.as_ref()]);
    let cli = &json["statistics"];
    assert_same_statistics(cli, &stats);
    common::assert_printed(cli, &[("peak", stats.peak.expect("a peak"))], 1e-6);
}

/// `dualmine stats`' printed statistics `cli` are the viewer's `stats`: voxels, max, mean,
/// min and volume.
fn assert_same_statistics(cli: &serde_json::Value, stats: &Statistics) {
    assert_eq!(cli["voxels"].as_u64(), Some(stats.voxels as u64));
    common::assert_printed(
        cli,
        &[
            ("max", stats.max),
            ("mean", stats.mean),
            ("min", stats.min),
            ("volume_ml", stats.volume_ml),
        ],
        1e-6,
    );
}

#[test]
fn the_ruler_measures_millimetres_in_patient_space() {
    let (_dir, studies) = demo(PhantomSize::SMALL);
    let mut h = harness(mr_and_pet(&studies), false);
    wait_until(&mut h, "the studies to load", |a| a.session().is_some());
    h.get_by_label("ruler").click();
    h.run_steps(2);
    let before = pane_image(&mut h, PaneKind::Fusion);
    let (from, to) = (voxel_on_pane(&h, 10, 20), voxel_on_pane(&h, 20, 20));
    drag(&mut h, from, to);
    h.remove_cursor();
    h.run_steps(2);
    let session = h.state().session().expect("open");
    assert_eq!(session.measurements.len(), 1);
    let spacing = session.pair.a.geometry.spacing[0];
    let mm = session.measurements[0].mm;
    assert!((mm - 10.0 * spacing).abs() < 0.1 * spacing, "{mm} mm");
    assert_ne!(
        pane_image(&mut h, PaneKind::Fusion),
        before,
        "the ruler is drawn"
    );
}

#[test]
fn the_mip_turns_and_a_click_on_its_hot_spot_moves_the_crosshair() {
    let (_dir, studies) = demo(PhantomSize::SMALL);
    let mut h = harness(mr_and_pet(&studies), false);
    wait_until(&mut h, "the studies to load", |a| a.session().is_some());
    h.get_by_label("MIP").click();
    h.run_steps(2);
    h.remove_cursor();
    h.run_steps(2);
    let mip = h.state().mip_rect.expect("the MIP pane is shown");
    let front = rect_image(&mut h, mip);
    h.key_press(egui::Key::ArrowRight);
    h.run_steps(2);
    assert_eq!(h.state().settings.mip_angle, 10.0);
    h.key_press(egui::Key::ArrowRight);
    h.key_press(egui::Key::ArrowRight);
    h.key_press(egui::Key::ArrowRight);
    h.run_steps(2);
    assert_ne!(rect_image(&mut h, mip), front, "the MIP turned");

    // The projection's hottest pixel, and where it is on the pane.
    let (target, at) = {
        let session = h.state().session().expect("open");
        let cache = session.mip.as_ref().expect("projected");
        let p = &cache.projection;
        let index = p.brightest().expect("pixels");
        let image = dualmine::app::mip_pane::image_rect(mip, p);
        let uv = egui::vec2(
            ((index % p.width) as f32 + 0.5) / p.width as f32,
            ((index / p.width) as f32 + 0.5) / p.height as f32,
        );
        (
            p.sources[index].expect("a voxel"),
            image.min + uv * image.size(),
        )
    };
    click(&mut h, at);
    let cursor = h.state().session().expect("open").cursor;
    assert_eq!(cursor, target.map(|v| v as f32 + 0.5));
    let session = h.state().session().expect("open");
    let pet = &session.layer(LayerId::Study(Side::B)).expect("PET").volume;
    let max = pet.data.iter().copied().fold(f32::MIN, f32::max);
    assert_eq!(
        pet.value(target[0], target[1], target[2]),
        max,
        "the hottest voxel"
    );
}

#[test]
fn a_box_dragged_in_a_pane_is_as_deep_as_the_panel_says_with_its_exact_volume() {
    let (_dir, studies) = demo(PhantomSize::SMALL);
    let mut h = harness(mr_and_pet(&studies), false);
    wait_until(&mut h, "the studies to load", |a| a.session().is_some());
    h.get_by_label("box").click();
    h.run_steps(2);
    // From the centre of voxel (10, 20) to that of (16, 24): 6 × 4 voxels of area.
    let (from, to) = (voxel_on_pane(&h, 10, 20), voxel_on_pane(&h, 16, 24));
    drag(&mut h, from, to);
    let session = h.state().session().expect("open");
    assert_eq!(session.vois.len(), 1, "{:?}", session.voi_message);
    let voi = &session.vois[0];
    let VoiKind::Box { low, high } = voi.kind else {
        panic!("a box");
    };
    assert_eq!(high[2] - low[2], 1.0, "one slice deep");
    let (_, stats) = &voi.statistics[0];
    let g = &session.pair.a.geometry;
    let voxel_ml = g.spacing.iter().product::<f64>() / 1000.0;
    assert!(
        (stats.volume_ml - 24.0 * voxel_ml).abs() < 0.05 * voxel_ml,
        "{} ml vs {}",
        stats.volume_ml,
        24.0 * voxel_ml
    );
    let one_slice = stats.volume_ml;

    // Three slices deep (the VOI panel's "box depth"), centred on the slice drawn on.
    h.state_mut().settings.tool_options.box_slices = 3;
    drag(&mut h, from, to);
    let session = h.state().session().expect("open");
    assert_eq!(session.vois.len(), 2, "{:?}", session.voi_message);
    let VoiKind::Box {
        low: deep_low,
        high: deep_high,
    } = session.vois[1].kind
    else {
        panic!("a box");
    };
    assert_eq!(deep_high[2] - deep_low[2], 3.0);
    assert_eq!(deep_low[2], low[2] - 1.0, "centred on the slice");
    let (_, deep) = &session.vois[1].statistics[0];
    assert!(
        (deep.volume_ml - 3.0 * one_slice).abs() < 1e-9,
        "{}",
        deep.volume_ml
    );
}
