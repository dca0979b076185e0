//! The viewer's PACS panel against the real Orthanc `.ci/run` starts: P opens it, Search lists
//! the stored studies, a click lists a study's series, "Open series" retrieves one into the
//! cache and opens it; a second series becomes study B and the pair fuses.

#![cfg(feature = "app")]

mod common;

use burn::tensor::Device;
use common::files_under;
use common::pacs::shared_orthanc;
use common::viewer::{App, fused, wait_until};
use dualmine::app::ViewerApp;
use dualmine::pacs::{Cache, Settings};
use dualmine::volume::Modality;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

fn harness(settings: Settings, cache: Cache) -> App<'static> {
    Harness::builder()
        .with_size([1280.0, 720.0])
        .wgpu()
        .build_eframe(move |cc| {
            ViewerApp::new(cc, vec![])
                .with_compute(Device::flex(), "CPU (burn flex)".into())
                .with_pacs(settings, cache)
        })
}

/// Steps until the panel's network job is done (it runs on a thread).
fn wait_for_pacs(h: &mut App<'_>, what: &str) {
    wait_until(h, what, |app| !app.pacs.is_busy());
    if let Some(Err(e)) = &h.state().pacs.message {
        panic!("{what}: {e}");
    }
}

#[test]
fn search_retrieve_open_and_fuse_from_the_pacs_panel() {
    let Some(orthanc) = shared_orthanc() else {
        return;
    };
    let study_uid = {
        let file = files_under(&orthanc.fixture)
            .into_iter()
            .next()
            .expect("a file");
        let object = dicom_object::open_file(file).expect("DICOM");
        object
            .element(dicom_dictionary_std::tags::STUDY_INSTANCE_UID)
            .expect("study")
            .to_str()
            .expect("text")
            .trim_end_matches('\0')
            .to_string()
    };
    let cache = tempfile::tempdir().unwrap();
    let settings = Settings {
        nodes: vec![orthanc.dimse_node()],
        ..Settings::default()
    };
    let mut h = harness(settings, Cache::new(cache.path()));
    h.run_steps(2);
    h.key_press(egui::Key::P);
    h.run_steps(2);
    assert!(h.state().pacs.open, "P opens the PACS panel");

    h.get_by_label("Search").click();
    h.run_steps(1);
    wait_for_pacs(&mut h, "the search");
    let studies = &h.state().pacs.studies;
    let row = studies
        .iter()
        .position(|s| s.study_uid == study_uid)
        .expect("the stored study is listed");
    assert!(studies.len() >= 3, "{} studies", studies.len());

    // Every phantom study shows the same patient: click the row of the one .ci/run stored first.
    h.get_all_by_label("PHANTOM^HEAD")
        .nth(row)
        .expect("a row per study")
        .click();
    h.run_steps(1);
    wait_for_pacs(&mut h, "the series search");
    assert!(h.state().pacs.series.len() >= 4);

    // CT (series 1) opens alone, like one dropped folder.
    h.get_by_label("Open series 1").click();
    h.run_steps(1);
    wait_for_pacs(&mut h, "the CT retrieve");
    wait_until(&mut h, "the CT to load", |app| {
        app.session().is_some() && !app.is_loading()
    });
    assert_eq!(h.state().session().unwrap().pair.a.modality, Modality::Ct);

    // MR (series 2) becomes the second study; the pair fuses.
    h.get_by_label("Open series 2").click();
    h.run_steps(1);
    wait_for_pacs(&mut h, "the MR retrieve");
    wait_until(&mut h, "the pair to load", |app| {
        app.session().is_some_and(|s| s.pair.b.is_some()) && !app.is_loading()
    });
    wait_until(&mut h, "fusion", fused);
    let session = h.state().session().unwrap();
    assert_eq!(session.pair.b.as_ref().unwrap().modality, Modality::Mr);
    assert!(h.state().error().is_none(), "{:?}", h.state().error());
    // Both series sit in the cache, under the study's UID.
    let cached = files_under(&cache.path().join(&study_uid));
    assert_eq!(cached.len(), 32, "16 CT + 16 MR instances");
}
