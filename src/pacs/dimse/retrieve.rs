//! Retrieving a study or series: C-GET (the server sends C-STOREs back on our association; no
//! listening port), or C-MOVE to our own storage SCP, for servers that offer no C-GET. Either
//! way every instance goes through `cache::stage_dataset` into the staging folder.

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_ul::association::server::ServerAssociationOptions;

use super::command::{Command, StatusKind, field, status_kind};
use super::link::{self, Link, Message, Over};
use super::{DimseClient, sop};
use crate::pacs::cache::{StageError, stage_dataset};
use crate::pacs::{Fault, PacsError, RetrieveOutcome, RetrieveProgress, RetrieveRequest, Watch};

/// How a retrieve asks for its instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// C-GET, falling back to C-MOVE when the server does not offer C-GET.
    Get,
    /// C-MOVE to our storage SCP only.
    Move,
}

pub fn retrieve(
    client: &DimseClient,
    request: &RetrieveRequest,
    staging: &Path,
    watch: &mut Watch<'_>,
    method: Method,
) -> Result<RetrieveOutcome, PacsError> {
    if method == Method::Get {
        let contexts = sop::retrieve_contexts(sop::STUDY_ROOT_GET, true);
        let mut link = client.associate("C-GET", &contexts, &sop::STORAGE_CLASSES)?;
        match link.accepted(sop::STUDY_ROOT_GET) {
            Ok(_) => {
                let result = get_in(&mut link, request, staging, watch);
                link.finish(result.is_ok());
                return result.map_err(|fault| client.error("C-GET", fault));
            }
            Err(_) => {
                log::info!("{} offers no C-GET; retrieving by C-MOVE", client.node.name);
                link.finish(true);
            }
        }
    }
    move_to_us(client, request, staging, watch).map_err(|fault| client.error("C-MOVE", fault))
}

/// The retrieve identifier: level, study and (optionally) series UID.
fn identifier(request: &RetrieveRequest) -> InMemDicomObject {
    let mut object = InMemDicomObject::new_empty();
    let level = if request.series_uid.is_some() {
        "SERIES"
    } else {
        "STUDY"
    };
    object.put(DataElement::new(
        tags::QUERY_RETRIEVE_LEVEL,
        VR::CS,
        PrimitiveValue::from(level),
    ));
    object.put(DataElement::new(
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(request.study_uid.as_str()),
    ));
    if let Some(series) = &request.series_uid {
        object.put(DataElement::new(
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(series.as_str()),
        ));
    }
    object
}

/// A fault while receiving: the connection broke (or stalled) part-way.
fn interrupted(fault: Fault, received: usize) -> Fault {
    match fault {
        Fault::Status { .. } | Fault::Cancelled | Fault::LocalFile { .. } => fault,
        other => Fault::Interrupted {
            received,
            reason: other.to_string(),
        },
    }
}

/// Stages one incoming C-STORE and answers it. A refused instance is answered with a failure
/// status and noted; a local write failure stops everything.
fn store_incoming(
    link: &mut Link,
    message: Message,
    request: &RetrieveRequest,
    staging: &Path,
    outcome: &mut RetrieveOutcome,
) -> Result<(), Fault> {
    let ts = link.syntax_of(message.context)?;
    let data = message
        .data
        .ok_or_else(|| Fault::Protocol("a C-STORE request without dataset".into()))?;
    let status = match stage_dataset(
        staging,
        request,
        ts,
        &message.command.sop_class,
        &message.command.sop_instance,
        &data,
    ) {
        Ok(bytes) => {
            outcome.instances += 1;
            outcome.bytes += bytes;
            0x0000
        }
        Err(StageError::Refused(reason)) => {
            log::warn!("refused an incoming instance: {reason}");
            outcome.warnings.push(reason);
            0xC000 // cannot understand
        }
        Err(StageError::Local(fault)) => {
            let response = Command::response_to(&message.command, field::C_STORE_RSP, 0xA700);
            let _ = link.send(message.context, &response, None);
            return Err(fault);
        }
    };
    let response = Command::response_to(&message.command, field::C_STORE_RSP, status);
    link.send(message.context, &response, None)
}

/// Sub-operation counts of a C-GET/C-MOVE response: (expected total, failed).
fn sub_operations(command: &Command) -> (Option<usize>, u16) {
    let parts = [
        command.remaining,
        command.completed,
        command.failed,
        command.warning,
    ];
    let expected = if parts.iter().any(Option::is_some) {
        Some(parts.iter().map(|p| p.unwrap_or(0) as usize).sum())
    } else {
        None
    };
    (expected, command.failed.unwrap_or(0))
}

/// What a final C-GET/C-MOVE response means for the retrieve.
fn conclude(command: &Command, outcome: &mut RetrieveOutcome) -> Result<(), Fault> {
    let (_, failed) = sub_operations(command);
    if failed > 0 {
        outcome
            .warnings
            .push(format!("the server could not send {failed} instance(s)"));
    }
    match status_kind(command.status) {
        StatusKind::Success | StatusKind::Warning => Ok(()),
        StatusKind::Cancelled => Err(Fault::Cancelled),
        _ => Err(Fault::Status {
            status: command.status,
            comment: command.error_comment.clone(),
        }),
    }
}

fn cancel_request() -> Command {
    Command {
        field: field::C_CANCEL_RQ,
        responding_to: 1,
        ..Command::default()
    }
}

fn get_in(
    link: &mut Link,
    request: &RetrieveRequest,
    staging: &Path,
    watch: &mut Watch<'_>,
) -> Result<RetrieveOutcome, Fault> {
    let (context, ts) = link.accepted(sop::STUDY_ROOT_GET)?;
    let command = Command::request(field::C_GET_RQ, sop::STUDY_ROOT_GET, 1, true);
    link.send(
        context,
        &command,
        Some(&link::encode(&identifier(request), ts)?),
    )?;
    let mut outcome = RetrieveOutcome::default();
    let mut expected = None;
    loop {
        if watch.cancel.load(Ordering::Relaxed) {
            let _ = link.send(context, &cancel_request(), None);
            return Err(Fault::Cancelled);
        }
        let message = link
            .receive()
            .map_err(|fault| interrupted(fault, outcome.instances))?;
        match message.command.field {
            field::C_STORE_RQ => {
                store_incoming(link, message, request, staging, &mut outcome)
                    .map_err(|fault| interrupted(fault, outcome.instances))?;
                (watch.progress)(RetrieveProgress {
                    received: outcome.instances,
                    expected,
                    bytes: outcome.bytes,
                });
            }
            field::C_GET_RSP => {
                if status_kind(message.command.status) == StatusKind::Pending {
                    expected = sub_operations(&message.command).0.or(expected);
                    continue;
                }
                conclude(&message.command, &mut outcome)?;
                return Ok(outcome);
            }
            other => {
                return Err(Fault::Protocol(format!(
                    "unexpected command {other:#06x} during a C-GET"
                )));
            }
        }
    }
}

/// C-MOVE to our own AE title: a storage SCP listens on `move_port` for the server's
/// association(s) while the move runs.
fn move_to_us(
    client: &DimseClient,
    request: &RetrieveRequest,
    staging: &Path,
    watch: &mut Watch<'_>,
) -> Result<RetrieveOutcome, Fault> {
    let listener =
        TcpListener::bind(("0.0.0.0", client.move_port)).map_err(|e| Fault::LocalFile {
            path: format!("port {}", client.move_port).into(),
            reason: format!("cannot listen for the C-MOVE: {e}"),
        })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Fault::Protocol(e.to_string()))?;
    let received = Arc::new(Mutex::new((RetrieveOutcome::default(), None::<Fault>)));
    let stop = Arc::new(AtomicBool::new(false));
    let scp = {
        let (received, stop) = (received.clone(), stop.clone());
        let (request, staging) = (request.clone(), staging.to_path_buf());
        let (own_ae, timeout) = (client.own_ae.clone(), client.timeout);
        std::thread::spawn(move || {
            serve_storage(
                listener, &own_ae, timeout, &request, &staging, &received, &stop,
            )
        })
    };
    let result = (|| -> Result<(), Fault> {
        let mut link = client
            .associate(
                "C-MOVE",
                &sop::retrieve_contexts(sop::STUDY_ROOT_MOVE, false),
                &[],
            )
            .map_err(|e| match e {
                PacsError::Node { fault, .. } => fault,
                other => Fault::Protocol(other.to_string()),
            })?;
        let outcome = move_in(&mut link, client, request, watch, &received);
        link.finish(outcome.is_ok());
        outcome
    })();
    stop.store(true, Ordering::Relaxed);
    let _ = scp.join();
    let (outcome, scp_fault) =
        std::mem::take(&mut *received.lock().unwrap_or_else(|p| p.into_inner()));
    result?;
    if let Some(fault) = scp_fault {
        return Err(interrupted(fault, outcome.instances));
    }
    Ok(outcome)
}

fn move_in(
    link: &mut Link,
    client: &DimseClient,
    request: &RetrieveRequest,
    watch: &mut Watch<'_>,
    received: &Mutex<(RetrieveOutcome, Option<Fault>)>,
) -> Result<(), Fault> {
    let (context, ts) = link.accepted(sop::STUDY_ROOT_MOVE)?;
    let mut command = Command::request(field::C_MOVE_RQ, sop::STUDY_ROOT_MOVE, 1, true);
    command.move_destination = client.own_ae.clone();
    link.send(
        context,
        &command,
        Some(&link::encode(&identifier(request), ts)?),
    )?;
    loop {
        if watch.cancel.load(Ordering::Relaxed) {
            let _ = link.send(context, &cancel_request(), None);
            return Err(Fault::Cancelled);
        }
        let message = link
            .receive_response(field::C_MOVE_RSP, "C-MOVE")
            .map_err(|fault| {
                let count = received.lock().map(|r| r.0.instances).unwrap_or(0);
                interrupted(fault, count)
            })?;
        let (expected, _) = sub_operations(&message.command);
        let mut guard = received.lock().unwrap_or_else(|p| p.into_inner());
        (watch.progress)(RetrieveProgress {
            received: guard.0.instances,
            expected,
            bytes: guard.0.bytes,
        });
        if status_kind(message.command.status) != StatusKind::Pending {
            return conclude(&message.command, &mut guard.0);
        }
    }
}

/// Our storage SCP for a C-MOVE: accepts associations until `stop`, stages every C-STORE.
fn serve_storage(
    listener: TcpListener,
    own_ae: &str,
    timeout: Duration,
    request: &RetrieveRequest,
    staging: &Path,
    received: &Mutex<(RetrieveOutcome, Option<Fault>)>,
    stop: &AtomicBool,
) {
    let mut options = ServerAssociationOptions::new()
        .accept_called_ae_title()
        .ae_title(own_ae)
        .max_pdu_length(super::MAX_PDU)
        .read_timeout(timeout)
        .write_timeout(timeout);
    for class in sop::STORAGE_CLASSES {
        options = options.with_abstract_syntax(class);
    }
    for syntax in sop::receive_syntaxes() {
        options = options.with_transfer_syntax(syntax);
    }
    while !stop.load(Ordering::Relaxed) {
        let socket = match listener.accept() {
            Ok((socket, _)) => socket,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => {
                log::warn!("storage SCP: {e}");
                continue;
            }
        };
        if socket.set_nonblocking(false).is_err() {
            continue;
        }
        let association = match options.establish(socket) {
            Ok(association) => association,
            Err(e) => {
                log::warn!("storage SCP: refused an association: {e}");
                continue;
            }
        };
        let mut association = association;
        let _ = association.inner_stream().set_nodelay(true);
        let mut link = Link::new(Over::boxed(association), timeout);
        loop {
            let message = match link.receive() {
                Ok(message) => message,
                Err(Fault::Released) => break,
                Err(fault) => {
                    let mut guard = received.lock().unwrap_or_else(|p| p.into_inner());
                    guard.1.get_or_insert(fault);
                    break;
                }
            };
            if message.command.field != field::C_STORE_RQ {
                break;
            }
            let mut guard = received.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(fault) = store_incoming(&mut link, message, request, staging, &mut guard.0) {
                guard.1.get_or_insert(fault);
                break;
            }
        }
    }
}
