//! The viewer's PACS panel against the real Orthanc `.ci/run` starts: P opens it, Search lists
//! the stored studies, a click lists a study's series, "Open series" retrieves one into the
//! cache and opens it; a second series becomes study B and the pair fuses. And the export
//! dialog's "Send to PACS": a DICOM export sent, then found in Orthanc.

#![cfg(feature = "app")]

mod common;

use common::files_under;
use common::pacs::{shared_orthanc, text_in};
use common::viewer::{App, demo, fused, harness_with, mr_and_pet, wait_until};
use dualmine::app::export_dialog::ExportKind;
use dualmine::pacs::{Cache, Settings};
use dualmine::pacs::{Level, Query, connect};
use dualmine::phantom::PhantomSize;
use dualmine::volume::Modality;
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;

fn harness(sources: Vec<dualmine::app::Source>, settings: Settings, cache: Cache) -> App<'static> {
    harness_with(sources, move |app| app.with_pacs(settings, cache))
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
    let first = files_under(&orthanc.fixture)
        .into_iter()
        .next()
        .expect("a file");
    let study_uid = text_in(&first, dicom_dictionary_std::tags::STUDY_INSTANCE_UID);
    let cache = tempfile::tempdir().unwrap();
    let settings = Settings {
        nodes: vec![orthanc.dimse_node()],
        ..Settings::default()
    };
    let mut h = harness(vec![], settings, Cache::new(cache.path()));
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
    // The study table scrolls; bring the row into view first (CI may list it below the fold).
    h.get_all_by_label("PHANTOM^HEAD")
        .nth(row)
        .expect("a row per study")
        .scroll_to_me();
    h.run_steps(3);
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
    if let Some(path) = std::env::var_os("DEBUG_VIEWER_PNG") {
        h.render().expect("rendered").save(path).ok();
    }
}

#[test]
fn the_export_dialog_sends_a_dicom_export_to_the_pacs() {
    let Some(orthanc) = shared_orthanc() else {
        return;
    };
    let (_dir, studies) = demo(PhantomSize::SMALL);
    let out = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let settings = Settings {
        nodes: vec![orthanc.dimse_node()],
        ..Settings::default()
    };
    let mut h = harness(mr_and_pet(&studies), settings, Cache::new(cache.path()));
    wait_until(&mut h, "fusion to finish", fused);
    h.key_press(egui::Key::E);
    h.run_steps(2);
    {
        let form = &mut h.state_mut().export_form;
        form.folder = out.path().display().to_string();
        form.kind = ExportKind::Dicom;
    }
    h.run_steps(2);
    h.get_by_role_and_label(Role::Button, "Export").click();
    h.run_steps(2);
    wait_until(&mut h, "the export", |app| {
        app.export_job.as_ref().is_some_and(|j| !j.is_running())
    });
    let written = h.state().export_job.as_ref().unwrap().files.clone();
    assert_eq!(
        written.len(),
        176,
        "fused + 9 maps and the pane as displayed, 16 slices each"
    );
    h.get_by_role_and_label(Role::Button, "Send to PACS")
        .click();
    h.run_steps(1);
    wait_for_pacs(&mut h, "the send");
    assert_eq!(
        h.state().pacs.message,
        Some(Ok("sent 176 instance(s)".to_string()))
    );
    // The fused series is in Orthanc, in the MR study (the reference).
    let fused_file = out.path().join("FUSED/IM000001.dcm");
    let study = text_in(&fused_file, dicom_dictionary_std::tags::STUDY_INSTANCE_UID);
    let series = text_in(&fused_file, dicom_dictionary_std::tags::SERIES_INSTANCE_UID);
    let found = connect(&orthanc.dimse_node(), &Settings::default())
        .find(&Query {
            level: Level::Series,
            study_uid: study,
            ..Query::default()
        })
        .expect("find");
    assert_eq!(found.len(), 11, "{found:?}");
    assert!(
        found
            .iter()
            .any(|m| m.series_uid == series && m.instance_count == Some(16))
    );
}
