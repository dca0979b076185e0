//! DICOM networking (DIMSE over `dicom-ul`): C-ECHO, C-FIND (study and series level), C-GET
//! into a staging folder (incoming C-STOREs on the same association; C-MOVE to our own storage
//! SCP when a server offers no C-GET), and C-STORE of files. Each operation opens its own
//! association with the presentation contexts it needs and releases it when done.

pub mod command;
mod link;
mod retrieve;
pub mod sop;
mod tls;

pub use retrieve::Method;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use dicom_core::{DataElement, PrimitiveValue};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_ul::association::client::ClientAssociationOptions;

use self::command::{Command, StatusKind, field, status_kind};
use self::link::{Channel, Link, Over};
use super::query::{Match, Query};
use super::{
    Endpoint, Fault, Node, PacsError, RetrieveOutcome, RetrieveRequest, Settings, StoreOutcome,
    Transport, Watch,
};

/// The largest PDU we accept (the peer splits its messages to fit).
const MAX_PDU: u32 = 1 << 20;
/// Matches drained after a C-CANCEL before the association is aborted instead.
const DRAIN_AFTER_CANCEL: usize = 1000;

/// A DIMSE connection description: no socket is held between operations.
pub struct DimseClient {
    node: Node,
    called_ae: String,
    address: String,
    own_ae: String,
    timeout: Duration,
    move_port: u16,
    method: Method,
    /// DICOM TLS settings and the name the server's certificate must carry (its host).
    tls: Option<(super::node::Tls, String)>,
}

impl DimseClient {
    pub fn new(node: Node, settings: &Settings) -> Self {
        let (called_ae, address, tls) = match &node.endpoint {
            Endpoint::Dimse {
                ae_title,
                host,
                port,
                tls,
            } => (
                ae_title.clone(),
                format!("{host}:{port}"),
                tls.clone().map(|settings| (settings, host.clone())),
            ),
            Endpoint::DicomWeb { url } => (String::new(), url.clone(), None),
        };
        Self {
            node,
            called_ae,
            address,
            own_ae: settings.ae_title.clone(),
            timeout: settings.timeout(),
            move_port: settings.move_port,
            method: Method::Get,
            tls,
        }
    }

    /// Retrieves with `method` (C-GET with C-MOVE fallback, or C-MOVE only).
    pub fn with_method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    fn error(&self, operation: &'static str, fault: Fault) -> PacsError {
        PacsError::Node {
            node: self.node.label(),
            operation,
            fault,
        }
    }

    /// Opens an association proposing `contexts` (abstract syntax, transfer syntaxes); the
    /// storage classes in `scp_roles` are negotiated with us as their SCP (for C-GET).
    fn associate(
        &self,
        operation: &'static str,
        contexts: &[(&str, Vec<&str>)],
        scp_roles: &[&str],
    ) -> Result<Link, PacsError> {
        let mut options = ClientAssociationOptions::new()
            .calling_ae_title(self.own_ae.as_str())
            .called_ae_title(self.called_ae.as_str())
            .max_pdu_length(MAX_PDU)
            .connection_timeout(self.timeout)
            .read_timeout(self.timeout)
            .write_timeout(self.timeout);
        for (abstract_syntax, transfer_syntaxes) in contexts {
            options =
                options.with_presentation_context(*abstract_syntax, transfer_syntaxes.clone());
        }
        for sop_class in scp_roles {
            options = options.with_role_selection(*sop_class, false, true);
        }
        let started = Instant::now();
        let fail = |e: dicom_ul::association::Error| {
            self.error(
                operation,
                link::establish_fault(&e, started.elapsed(), self.timeout),
            )
        };
        // Small messages (C-STORE responses, commands) go out at once: with Nagle's algorithm
        // each one would wait for the peer's delayed ACK (about 40 ms per instance).
        let channel: Box<dyn Channel> = match &self.tls {
            None => {
                let mut association = options.establish(self.address.as_str()).map_err(fail)?;
                let _ = association.inner_stream().set_nodelay(true);
                Over::boxed(association)
            }
            Some((settings, server_name)) => {
                let config = tls::client_config(settings).map_err(|f| self.error(operation, f))?;
                let mut association = options
                    .tls_config(config)
                    .server_name(server_name)
                    .establish_tls(self.address.as_str())
                    .map_err(fail)?;
                let _ = association.inner_stream().sock.set_nodelay(true);
                Over::boxed(association)
            }
        };
        log::debug!(
            "associated with {} for {operation}: {} context(s) accepted",
            self.node.name,
            channel
                .contexts()
                .iter()
                .filter(|pc| pc.reason == dicom_ul::pdu::PresentationContextResultReason::Acceptance)
                .count()
        );
        Ok(Link::new(channel, self.timeout))
    }

    fn find_in(&self, link: &mut Link, query: &Query) -> Result<Vec<Match>, Fault> {
        let (context, ts) = link.accepted(sop::STUDY_ROOT_FIND)?;
        let mut identifier = InMemDicomObject::new_empty();
        identifier.put(DataElement::new(
            tags::QUERY_RETRIEVE_LEVEL,
            dicom_core::VR::CS,
            PrimitiveValue::from(query.level.keyword()),
        ));
        for (tag, vr, value) in query.keys() {
            identifier.put(DataElement::new(
                tag,
                vr,
                PrimitiveValue::from(value.as_str()),
            ));
        }
        let request = Command::request(field::C_FIND_RQ, sop::STUDY_ROOT_FIND, 1, true);
        link.send(context, &request, Some(&link::encode(&identifier, ts)?))?;
        let mut found = Vec::new();
        let mut cancelled_after = None;
        loop {
            let message = link.receive_response(field::C_FIND_RSP, "C-FIND")?;
            match status_kind(message.command.status) {
                StatusKind::Pending => {
                    if let Some(drained) = cancelled_after.as_mut() {
                        *drained += 1;
                        if *drained > DRAIN_AFTER_CANCEL {
                            return Ok(found); // the server ignores C-CANCEL: the caller aborts
                        }
                        continue;
                    }
                    let data = message.data.ok_or_else(|| {
                        Fault::Protocol("a pending C-FIND response without identifier".into())
                    })?;
                    let object = link::decode(&data, ts)?;
                    let matched = Match::read(query.level, |tag| {
                        object
                            .element(tag)
                            .ok()
                            .and_then(|e| e.to_str().ok())
                            .map(|text| text.to_string())
                    })
                    .map_err(Fault::BadData)?;
                    found.push(matched);
                    if found.len() == query.max_results {
                        let cancel = Command {
                            field: field::C_CANCEL_RQ,
                            responding_to: 1,
                            ..Command::default()
                        };
                        link.send(context, &cancel, None)?;
                        cancelled_after = Some(0);
                    }
                }
                StatusKind::Success | StatusKind::Cancelled | StatusKind::Warning => {
                    return Ok(found);
                }
                StatusKind::Failure => {
                    return Err(Fault::Status {
                        status: message.command.status,
                        comment: message.command.error_comment,
                    });
                }
            }
        }
    }

    fn store_in(
        &self,
        link: &mut Link,
        files: &[(PathBuf, dicom_object::DefaultDicomObject)],
        progress: &mut dyn FnMut(usize),
    ) -> Result<StoreOutcome, Fault> {
        let mut outcome = StoreOutcome::default();
        for (index, (path, file)) in files.iter().enumerate() {
            let meta = file.meta();
            let sop_class = meta.media_storage_sop_class_uid().trim_end_matches('\0');
            let instance = meta.media_storage_sop_instance_uid().trim_end_matches('\0');
            let file_ts = meta.transfer_syntax().trim_end_matches('\0');
            let (context, ts) = link.accepted_for_store(sop_class, file_ts)?;
            let mut data = Vec::new();
            file.write_dataset_with_ts(&mut data, ts)
                .map_err(|e| Fault::LocalFile {
                    path: path.clone(),
                    reason: format!("cannot encode in {}: {e}", ts.uid()),
                })?;
            let mut request = Command::request(
                field::C_STORE_RQ,
                sop_class,
                (index % 0xFFFF) as u16 + 1,
                true,
            );
            request.sop_instance = instance.to_string();
            link.send(context, &request, Some(&data))?;
            let response = link.receive_response(field::C_STORE_RSP, "C-STORE")?;
            match status_kind(response.command.status) {
                StatusKind::Success => {}
                StatusKind::Warning => outcome.warnings.push(format!(
                    "instance {instance}: stored with warning {:#06x}",
                    response.command.status
                )),
                _ => {
                    return Err(Fault::Status {
                        status: response.command.status,
                        comment: format!(
                            "instance {instance} refused{}",
                            if response.command.error_comment.is_empty() {
                                String::new()
                            } else {
                                format!(": {}", response.command.error_comment)
                            }
                        ),
                    });
                }
            }
            outcome.stored += 1;
            progress(outcome.stored);
        }
        Ok(outcome)
    }
}

impl Transport for DimseClient {
    fn echo(&self) -> Result<Duration, PacsError> {
        let start = Instant::now();
        let mut link = self.associate(
            "C-ECHO",
            &[(sop::VERIFICATION, vec![sop::IMPLICIT_VR_LE])],
            &[],
        )?;
        let result = (|| {
            let (context, _) = link.accepted(sop::VERIFICATION)?;
            let request = Command::request(field::C_ECHO_RQ, sop::VERIFICATION, 1, false);
            link.send(context, &request, None)?;
            let response = link.receive_response(field::C_ECHO_RSP, "C-ECHO")?;
            match status_kind(response.command.status) {
                StatusKind::Success => Ok(()),
                _ => Err(Fault::Status {
                    status: response.command.status,
                    comment: response.command.error_comment,
                }),
            }
        })();
        link.finish(result.is_ok());
        result.map_err(|fault| self.error("C-ECHO", fault))?;
        Ok(start.elapsed())
    }

    fn find(&self, query: &Query) -> Result<Vec<Match>, PacsError> {
        query
            .check()
            .map_err(|reason| self.error("C-FIND", Fault::Protocol(reason)))?;
        let mut link = self.associate(
            "C-FIND",
            &[(sop::STUDY_ROOT_FIND, sop::native_syntaxes())],
            &[],
        )?;
        let result = self.find_in(&mut link, query);
        // A search that hit its limit may leave the server sending: abort rather than wait.
        let clean = matches!(&result, Ok(found) if found.len() < query.max_results);
        link.finish(clean);
        let found = result.map_err(|fault| self.error("C-FIND", fault))?;
        log::info!(
            "C-FIND {} on {}: {} match(es)",
            query.level.keyword(),
            self.node.name,
            found.len()
        );
        Ok(found)
    }

    fn retrieve(
        &self,
        request: &RetrieveRequest,
        staging: &std::path::Path,
        watch: &mut Watch<'_>,
    ) -> Result<RetrieveOutcome, PacsError> {
        retrieve::retrieve(self, request, staging, watch, self.method)
    }

    fn store(
        &self,
        files: &[PathBuf],
        progress: &mut dyn FnMut(usize),
    ) -> Result<StoreOutcome, PacsError> {
        let opened = files
            .iter()
            .map(|path| {
                dicom_object::open_file(path)
                    .map(|file| (path.clone(), file))
                    .map_err(|e| {
                        self.error(
                            "C-STORE",
                            Fault::LocalFile {
                                path: path.clone(),
                                reason: e.to_string(),
                            },
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let contexts = sop::store_contexts(opened.iter().map(|(_, file)| {
            let meta = file.meta();
            (
                meta.media_storage_sop_class_uid()
                    .trim_end_matches('\0')
                    .to_string(),
                meta.transfer_syntax().trim_end_matches('\0').to_string(),
            )
        }));
        let borrowed: Vec<(&str, Vec<&str>)> = contexts
            .iter()
            .map(|(class, syntaxes)| {
                (
                    class.as_str(),
                    syntaxes.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        let mut link = self.associate("C-STORE", &borrowed, &[])?;
        let result = self.store_in(&mut link, &opened, progress);
        link.finish(result.is_ok());
        let outcome = result.map_err(|fault| self.error("C-STORE", fault))?;
        log::info!(
            "C-STORE to {}: {} instance(s)",
            self.node.name,
            outcome.stored
        );
        Ok(outcome)
    }
}
