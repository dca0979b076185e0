//! PACS networking against a real Orthanc on loopback (`.ci/run` starts it and stores the
//! phantom studies with dcmtk's storescu): echo, find by patient and by modality, retrieve
//! by C-GET, C-MOVE and WADO-RS (each file checked byte for byte against Orthanc's copy),
//! send a fused derived series back and find it, the same through DICOMweb; and the faults —
//! wrong port, wrong AE title, a silent server, a server killed mid-retrieve, a search
//! limited to fewer matches than the server holds.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use common::pacs::{PrivateOrthanc, SharedOrthanc, settings, shared_orthanc, text_in};
use common::{files_under, succeeded};
use dualmine::pacs::dimse::{DimseClient, Method};
use dualmine::pacs::{
    Cache, Fault, Level, Query, RetrieveProgress, RetrieveRequest, Transport, Watch, connect,
};

fn dataset_of(file: &[u8]) -> &[u8] {
    // Preamble, "DICM", then the meta group: (0002,0000) UL gives the group's length.
    assert_eq!(&file[128..132], b"DICM");
    let group_length = u32::from_le_bytes([file[140], file[141], file[142], file[143]]) as usize;
    &file[144 + group_length..]
}

fn study_uid_of(folder: &Path) -> String {
    let file = files_under(folder).into_iter().next().expect("a file");
    text_in(&file, dicom_dictionary_std::tags::STUDY_INSTANCE_UID)
}

/// The SOPInstanceUID a DICOM file holds.
fn sop_instance_of_file(path: &Path) -> String {
    text_in(path, dicom_dictionary_std::tags::SOP_INSTANCE_UID)
}

/// The SOPInstanceUID a cached file is named by.
fn sop_instance_of(path: &Path) -> String {
    path.file_stem()
        .expect("name")
        .to_string_lossy()
        .into_owned()
}

fn retrieve_into(
    cache_root: &Path,
    transport: &dyn Transport,
    request: &RetrieveRequest,
) -> Result<dualmine::pacs::CachedStudy, dualmine::pacs::PacsError> {
    let cancel = AtomicBool::new(false);
    Cache::new(cache_root).retrieve(
        transport,
        request,
        &mut Watch {
            progress: &mut |_| {},
            cancel: &cancel,
        },
    )
}

fn whole_study(orthanc: &SharedOrthanc) -> RetrieveRequest {
    RetrieveRequest {
        study_uid: study_uid_of(&orthanc.fixture),
        series_uid: None,
    }
}

#[test]
fn echo_answers_on_both_transports() {
    let Some(orthanc) = shared_orthanc() else {
        return;
    };
    for node in [orthanc.dimse_node(), orthanc.web_node()] {
        connect(&node, &settings(10)).echo().expect("echo");
    }
}

#[test]
fn find_by_patient_and_by_modality() {
    let Some(orthanc) = shared_orthanc() else {
        return;
    };
    let study = study_uid_of(&orthanc.fixture);
    for node in [orthanc.dimse_node(), orthanc.web_node()] {
        let transport = connect(&node, &settings(10));
        let by_patient = transport
            .find(&Query {
                patient_name: "PHANTOM*".into(),
                ..Query::default()
            })
            .expect("find by patient");
        let ours = by_patient
            .iter()
            .find(|m| m.study_uid == study)
            .unwrap_or_else(|| panic!("{}: the stored study was not found by patient", node.name));
        assert_eq!(ours.patient_name, "PHANTOM^HEAD");
        assert!(
            ours.modality.contains("PT") && ours.modality.contains("CT"),
            "{}",
            ours.modality
        );
        assert!(
            ours.instance_count.unwrap_or(0) >= 41,
            "{:?}",
            ours.instance_count
        );
        let nobody = transport
            .find(&Query {
                patient_name: "NOBODY^SUCH".into(),
                ..Query::default()
            })
            .expect("find nobody");
        assert!(nobody.is_empty());
        let pet = transport
            .find(&Query {
                level: Level::Series,
                study_uid: study.clone(),
                modality: "PT".into(),
                ..Query::default()
            })
            .expect("find series by modality");
        assert_eq!(pet.len(), 1, "{}: {pet:?}", node.name);
        assert_eq!(pet[0].modality, "PT");
        assert_eq!(pet[0].instance_count, Some(8));
        let by_modality = transport
            .find(&Query {
                modality: "NM".into(),
                ..Query::default()
            })
            .expect("find studies by modality");
        assert!(by_modality.iter().any(|m| m.study_uid == study));
        // The phantom's StudyDate is 20260101: inside one range, outside another.
        let date = |range: &str| {
            transport
                .find(&Query {
                    study_date: range.into(),
                    ..Query::default()
                })
                .expect("find by date")
                .iter()
                .any(|m| m.study_uid == study)
        };
        assert!(date("20251231-20260102"), "{}", node.name);
        assert!(!date("20270101-"), "{}", node.name);
    }
}

#[test]
fn a_search_stops_at_its_limit_and_the_server_stays_usable() {
    let Some(orthanc) = shared_orthanc() else {
        return;
    };
    let transport = connect(&orthanc.dimse_node(), &settings(10));
    let all = transport.find(&Query::default()).expect("find all");
    assert!(
        all.len() >= 3,
        ".ci/run stores three phantom studies; found {}",
        all.len()
    );
    let limited = transport
        .find(&Query {
            max_results: 2,
            ..Query::default()
        })
        .expect("limited find");
    assert_eq!(limited.len(), 2);
    transport
        .echo()
        .expect("the server answers after a cancelled search");
    let web = connect(&orthanc.web_node(), &settings(10));
    let limited = web
        .find(&Query {
            max_results: 2,
            ..Query::default()
        })
        .expect("limited QIDO-RS");
    assert_eq!(limited.len(), 2);
}

#[test]
fn c_get_retrieves_every_instance_byte_identical_to_orthancs_copy() {
    let Some(orthanc) = shared_orthanc() else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let transport = connect(&orthanc.dimse_node(), &settings(30));
    let request = whole_study(&orthanc);
    let cached = retrieve_into(cache.path(), transport.as_ref(), &request).expect("C-GET");
    assert!(!cached.reused);
    // Every instance .ci/run stored (with storescu) came back, its dataset byte for byte the
    // one Orthanc keeps: over DIMSE only the dataset travels and each side writes its own meta
    // group. (Other tests add series to this study meanwhile; those only have to parse — an
    // instance Orthanc took in by STOW-RS is re-encoded by its DCMTK on the way out.)
    let retrieved: std::collections::HashMap<String, PathBuf> = files_under(&cached.folder)
        .into_iter()
        .map(|path| (sop_instance_of(&path), path))
        .collect();
    let stored = files_under(&orthanc.fixture);
    assert_eq!(stored.len(), 41);
    for original in &stored {
        let uid = sop_instance_of_file(original);
        let path = retrieved
            .get(&uid)
            .unwrap_or_else(|| panic!("instance {uid} was not retrieved"));
        let ours = std::fs::read(path).unwrap();
        let theirs = orthanc.stored_file(&uid);
        assert!(
            dataset_of(&ours) == dataset_of(&theirs),
            "{} differs from Orthanc's copy",
            path.display()
        );
    }
    for path in retrieved.values() {
        dicom_object::open_file(path).expect("every retrieved file parses");
    }
    // The retrieved study loads, and a second retrieve comes from the cache.
    let again = retrieve_into(cache.path(), transport.as_ref(), &request).expect("again");
    assert!(again.reused);
    assert!(
        !files_under(cache.path())
            .iter()
            .any(|p| p.to_string_lossy().contains(".incoming"))
    );
}

#[test]
fn wado_rs_retrieves_orthancs_files_whole() {
    let Some(orthanc) = shared_orthanc() else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let transport = connect(&orthanc.web_node(), &settings(30));
    let cached =
        retrieve_into(cache.path(), transport.as_ref(), &whole_study(&orthanc)).expect("WADO-RS");
    let retrieved = files_under(&cached.folder);
    assert!(retrieved.len() >= 41);
    for path in &retrieved {
        let ours = std::fs::read(path).unwrap();
        assert!(
            ours == orthanc.stored_file(&sop_instance_of(path)),
            "{} differs",
            path.display()
        );
    }
}

#[test]
fn c_move_retrieves_a_series_through_our_storage_scp() {
    let Some(orthanc) = shared_orthanc() else {
        return;
    };
    let study = study_uid_of(&orthanc.fixture);
    let pet_series = study_uid_of(&orthanc.fixture.join("PET")); // same study
    assert_eq!(pet_series, study);
    let transport = connect(&orthanc.dimse_node(), &settings(10));
    let series = transport
        .find(&Query {
            level: Level::Series,
            study_uid: study.clone(),
            modality: "PT".into(),
            ..Query::default()
        })
        .expect("find PET series");
    let port: u16 = orthanc.dicom.rsplit(':').next().unwrap().parse().unwrap();
    // .ci/orthanc.sh tells Orthanc that DUALMINE listens one port above its own.
    let mut our_settings = settings(10);
    our_settings.move_port = port + 1;
    let mover = DimseClient::new(orthanc.dimse_node(), &our_settings).with_method(Method::Move);
    let cache = tempfile::tempdir().unwrap();
    let request = RetrieveRequest {
        study_uid: study,
        series_uid: Some(series[0].series_uid.clone()),
    };
    let cached = retrieve_into(cache.path(), &mover, &request).expect("C-MOVE");
    assert_eq!(cached.outcome.instances, 8);
    for path in files_under(&cached.folder) {
        let ours = std::fs::read(&path).unwrap();
        assert!(dataset_of(&ours) == dataset_of(&orthanc.stored_file(&sop_instance_of(&path))));
    }
}

/// `dualmine fuse … --dicom DIR --pacs NODE`, then the series is looked for in Orthanc.
fn fuse_and_send(orthanc: &SharedOrthanc, node: &str, out: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_dualmine"))
        .arg("fuse")
        .arg(orthanc.fixture.join("CT"))
        .arg(orthanc.fixture.join("MR_T1"))
        .arg("--dicom")
        .arg(out)
        .args(["--backend", "cpu", "--pacs", node])
        .env("DUALMINE_CONFIG_DIR", out.with_file_name("config"))
        .output()
        .expect("dualmine runs");
    succeeded(&output);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("sent 16 instance(s)"), "{text}");
    let fused = files_under(out).into_iter().next().expect("a fused file");
    text_in(&fused, dicom_dictionary_std::tags::SERIES_INSTANCE_UID)
}

#[test]
fn a_fused_series_sent_back_is_found_in_its_study() {
    let Some(orthanc) = shared_orthanc() else {
        return;
    };
    let study = study_uid_of(&orthanc.fixture);
    for (node, address) in [
        (orthanc.dimse_node(), orthanc.dicom.clone()),
        (orthanc.web_node(), format!("{}/dicom-web", orthanc.http)),
    ] {
        let out = tempfile::tempdir().unwrap();
        let series_uid = fuse_and_send(&orthanc, &address, &out.path().join("fused"));
        let found = connect(&node, &settings(10))
            .find(&Query {
                level: Level::Series,
                study_uid: study.clone(),
                ..Query::default()
            })
            .expect("find series");
        let fused = found
            .iter()
            .find(|m| m.series_uid == series_uid)
            .unwrap_or_else(|| panic!("{}: the sent series is not in the study", node.name));
        assert_eq!(fused.study_uid, study);
        assert_eq!(fused.instance_count, Some(16));
        assert!(
            fused.description.contains("W-DUALMINE"),
            "{}",
            fused.description
        );
    }
}

#[test]
fn unreachable_rejected_and_silent_nodes_fail_clearly() {
    let Some(orthanc) = shared_orthanc() else {
        return;
    };
    // Wrong port: nothing listens.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let wrong_port =
        dualmine::pacs::Node::parse("wrong-port", &format!("ORTHANC@127.0.0.1:{closed}")).unwrap();
    let error = connect(&wrong_port, &settings(5)).echo().unwrap_err();
    assert!(
        matches!(error.fault(), Some(Fault::Unreachable(_))),
        "{error}"
    );
    assert!(error.to_string().contains("wrong-port"), "{error}");
    // Wrong called AE title: Orthanc checks it and rejects the association.
    let host_port = orthanc.dicom.split_once('@').unwrap().1;
    let wrong_ae =
        dualmine::pacs::Node::parse("wrong-ae", &format!("NOT_ORTHANC@{host_port}")).unwrap();
    let error = connect(&wrong_ae, &settings(5))
        .find(&Query::default())
        .unwrap_err();
    assert!(matches!(error.fault(), Some(Fault::Rejected(_))), "{error}");
    assert!(error.to_string().contains("called AE title"), "{error}");
    // A server that accepts the connection and never answers: the timeout ends it.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let connection = silent.accept();
        std::thread::sleep(std::time::Duration::from_secs(4));
        drop(connection);
    });
    let mute = dualmine::pacs::Node::parse("mute", &format!("MUTE@127.0.0.1:{port}")).unwrap();
    let start = std::time::Instant::now();
    let error = connect(&mute, &settings(1)).echo().unwrap_err();
    assert!(start.elapsed().as_secs_f64() < 3.5, "{:?}", start.elapsed());
    assert!(matches!(error.fault(), Some(Fault::TimedOut(_))), "{error}");
    holder.join().unwrap();
    // DICOMweb on a closed port.
    let web = dualmine::pacs::Node::parse(
        "web-closed",
        &format!("http://127.0.0.1:{closed}/dicom-web"),
    )
    .unwrap();
    let error = connect(&web, &settings(5)).echo().unwrap_err();
    assert!(
        matches!(error.fault(), Some(Fault::Unreachable(_))),
        "{error}"
    );
}

#[test]
fn a_server_killed_mid_retrieve_leaves_nothing_in_the_cache() {
    let Some(server) = PrivateOrthanc::start(14342, 18142) else {
        return;
    };
    let phantom = tempfile::tempdir().unwrap();
    let studies =
        dualmine::phantom::write_demo(phantom.path(), dualmine::phantom::PhantomSize::SMALL)
            .unwrap();
    let transport = connect(&server.node(), &settings(10));
    let mut files = Vec::new();
    for folder in [&studies.ct, &studies.mr, &studies.pet] {
        files.extend(files_under(folder));
    }
    transport
        .store(&files, &mut |_| {})
        .expect("store into the private server");
    let cache = tempfile::tempdir().unwrap();
    let request = RetrieveRequest {
        study_uid: study_uid_of(&studies.ct),
        series_uid: None,
    };
    let cancel = AtomicBool::new(false);
    let mut killed = false;
    let mut progress = |p: RetrieveProgress| {
        if p.received == 5 && !killed {
            server.kill();
            killed = true;
        }
    };
    let error = Cache::new(cache.path())
        .retrieve(
            transport.as_ref(),
            &request,
            &mut Watch {
                progress: &mut progress,
                cancel: &cancel,
            },
        )
        .unwrap_err();
    // The instance in flight when the server died may still have arrived.
    assert!(
        matches!(error.fault(), Some(Fault::Interrupted { received, .. }) if (5..=6).contains(received)),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("private") && message.contains("nothing of this retrieve was kept"),
        "{message}"
    );
    assert!(
        files_under(cache.path()).is_empty(),
        "the cache holds {:?}",
        files_under(cache.path())
    );
}

#[test]
fn dicom_tls_with_a_private_ca_and_client_certificates() {
    let certificates = tempfile::tempdir().unwrap();
    if !common::pacs::make_certificates(certificates.path()) {
        return;
    }
    let Some(server) = PrivateOrthanc::start_with_tls(14642, 18642, Some(certificates.path()))
    else {
        return;
    };
    let file = |name: &str| Some(certificates.path().join(name));
    let trusted = dualmine::pacs::node::Tls {
        ca_file: file("ca.crt"),
        client_certificate: file("client.crt"),
        client_key: file("client.key"),
    };
    let node = server.node().with_tls(trusted.clone());
    let transport = connect(&node, &settings(10));
    transport.echo().expect("echo over TLS");
    // Store and find back over TLS.
    let phantom = tempfile::tempdir().unwrap();
    let studies =
        dualmine::phantom::write_demo(phantom.path(), dualmine::phantom::PhantomSize::SMALL)
            .unwrap();
    let files = files_under(&studies.pet);
    let stored = transport
        .store(&files, &mut |_| {})
        .expect("C-STORE over TLS");
    assert_eq!(stored.stored, files.len());
    let found = transport
        .find(&Query {
            modality: "PT".into(),
            ..Query::default()
        })
        .expect("C-FIND over TLS");
    assert_eq!(found.len(), 1);
    let cache = tempfile::tempdir().unwrap();
    let request = RetrieveRequest {
        study_uid: found[0].study_uid.clone(),
        series_uid: None,
    };
    let cached = retrieve_into(cache.path(), transport.as_ref(), &request).expect("C-GET over TLS");
    assert_eq!(cached.outcome.instances, files.len());
    // Each missing piece fails with a message that says what.
    let failures = [
        (server.node(), "plain DICOM to a TLS port"),
        (
            server.node().with_tls(dualmine::pacs::node::Tls::default()),
            "UnknownIssuer",
        ),
        (
            server.node().with_tls(dualmine::pacs::node::Tls {
                ca_file: file("ca.crt"),
                ..Default::default()
            }),
            "CertificateRequired",
        ),
    ];
    for (node, expected) in failures {
        let error = connect(&node, &settings(3)).echo().unwrap_err().to_string();
        assert!(error.contains("C-ECHO failed"), "{error}");
        let expected = if expected == "plain DICOM to a TLS port" {
            "configure the node with --tls"
        } else {
            expected
        };
        assert!(error.contains(expected), "{expected}: {error}");
    }
}

#[test]
fn a_cancelled_retrieve_leaves_nothing_in_the_cache() {
    let Some(orthanc) = shared_orthanc() else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let cancel = AtomicBool::new(false);
    for node in [orthanc.dimse_node(), orthanc.web_node()] {
        cancel.store(false, std::sync::atomic::Ordering::Relaxed);
        let mut progress = |p: RetrieveProgress| {
            if p.received == 3 {
                cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        };
        let error = Cache::new(cache.path())
            .retrieve(
                connect(&node, &settings(10)).as_ref(),
                &whole_study(&orthanc),
                &mut Watch {
                    progress: &mut progress,
                    cancel: &cancel,
                },
            )
            .unwrap_err();
        assert!(
            matches!(error.fault(), Some(Fault::Cancelled)),
            "{}: {error}",
            node.name
        );
        assert!(files_under(cache.path()).is_empty(), "{}", node.name);
    }
}
