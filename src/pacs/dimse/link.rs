//! One open association seen as a stream of DIMSE messages: command set plus optional
//! dataset, split into and reassembled from P-DATA fragments; the negotiated contexts looked
//! up by SOP class; `dicom-ul`'s errors turned into [`Fault`]s (refused, timed out, broken).
//! Whether the association is ours over TCP or TLS, or one a server opened to our storage
//! SCP, is hidden behind [`Channel`].

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::marker::PhantomData;
use std::time::Duration;

use dicom_encoding::TransferSyntax;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_ul::association::{CloseSocket, SyncAssociation};
use dicom_ul::pdu::{
    PDataValue, PDataValueType, Pdu, PresentationContextNegotiated, PresentationContextResultReason,
};

use super::command::Command;
use super::sop;
use crate::pacs::Fault;

/// One received message.
pub struct Message {
    pub context: u8,
    pub command: Command,
    pub data: Option<Vec<u8>>,
}

/// What a [`Link`] needs of an association, whatever its stream.
pub trait Channel {
    fn send_pdu(&mut self, pdu: &Pdu) -> Result<(), dicom_ul::association::Error>;
    fn receive_pdu(&mut self) -> Result<Pdu, dicom_ul::association::Error>;
    /// Sends `data` as P-DATA fragments on `context`, split to the peer's PDU size.
    fn send_data(&mut self, context: u8, data: &[u8]) -> std::io::Result<()>;
    fn contexts(&self) -> &[PresentationContextNegotiated];
    /// Releases (`clean`) or aborts the association.
    fn close(self: Box<Self>, clean: bool) -> Result<(), dicom_ul::association::Error>;
}

/// An association `A` over stream `S` as a [`Channel`].
pub struct Over<A, S>(pub A, pub PhantomData<fn() -> S>);

impl<A, S> Over<A, S> {
    pub fn boxed(association: A) -> Box<Self> {
        Box::new(Self(association, PhantomData))
    }
}

impl<A: SyncAssociation<S>, S: Read + Write + CloseSocket> Channel for Over<A, S> {
    fn send_pdu(&mut self, pdu: &Pdu) -> Result<(), dicom_ul::association::Error> {
        SyncAssociation::send(&mut self.0, pdu)
    }

    fn receive_pdu(&mut self) -> Result<Pdu, dicom_ul::association::Error> {
        SyncAssociation::receive(&mut self.0)
    }

    fn send_data(&mut self, context: u8, data: &[u8]) -> std::io::Result<()> {
        let mut writer = self.0.send_pdata(context);
        writer.write_all(data)?;
        writer.finish()
    }

    fn contexts(&self) -> &[PresentationContextNegotiated] {
        self.0.presentation_contexts()
    }

    fn close(self: Box<Self>, clean: bool) -> Result<(), dicom_ul::association::Error> {
        if clean {
            self.0.release()
        } else {
            self.0.abort()
        }
    }
}

/// An association (ours as client, or one a peer opened to our storage SCP) and the
/// fragments of the last PDU not yet consumed.
pub struct Link {
    association: Option<Box<dyn Channel>>,
    pending: VecDeque<PDataValue>,
    timeout: Duration,
}

impl Link {
    pub fn new(association: Box<dyn Channel>, timeout: Duration) -> Self {
        Self {
            association: Some(association),
            pending: VecDeque::new(),
            timeout,
        }
    }

    fn association(&mut self) -> Result<&mut Box<dyn Channel>, Fault> {
        self.association
            .as_mut()
            .ok_or_else(|| Fault::Protocol("the association is closed".into()))
    }

    /// The first accepted context for `abstract_syntax`, with its transfer syntax.
    pub fn accepted(
        &mut self,
        abstract_syntax: &str,
    ) -> Result<(u8, &'static TransferSyntax), Fault> {
        let association = self.association()?;
        let context = association
            .contexts()
            .iter()
            .find(|pc| {
                pc.reason == PresentationContextResultReason::Acceptance
                    && pc.abstract_syntax.trim_end_matches('\0') == abstract_syntax
            })
            .ok_or_else(|| Fault::NotOffered(format!("SOP class {abstract_syntax}")))?;
        Ok((context.id, transfer_syntax(&context.transfer_syntax)?))
    }

    /// The context to send a `sop_class` instance stored in `file_syntax`: one accepted in
    /// that syntax, else (for a native file) any native one.
    pub fn accepted_for_store(
        &mut self,
        sop_class: &str,
        file_syntax: &str,
    ) -> Result<(u8, &'static TransferSyntax), Fault> {
        let association = self.association()?;
        let candidates: Vec<(u8, String)> = association
            .contexts()
            .iter()
            .filter(|pc| {
                pc.reason == PresentationContextResultReason::Acceptance
                    && pc.abstract_syntax.trim_end_matches('\0') == sop_class
            })
            .map(|pc| (pc.id, pc.transfer_syntax.trim_end_matches('\0').to_string()))
            .collect();
        let chosen = candidates
            .iter()
            .find(|(_, syntax)| syntax == file_syntax)
            .or_else(|| {
                candidates
                    .iter()
                    .find(|(_, syntax)| sop::is_native(file_syntax) && sop::is_native(syntax))
            })
            .ok_or_else(|| {
                Fault::NotOffered(format!(
                    "SOP class {sop_class} in transfer syntax {file_syntax}"
                ))
            })?;
        Ok((chosen.0, transfer_syntax(&chosen.1)?))
    }

    /// The transfer syntax negotiated for context `id`.
    pub fn syntax_of(&mut self, id: u8) -> Result<&'static TransferSyntax, Fault> {
        let association = self.association()?;
        let context = association
            .contexts()
            .iter()
            .find(|pc| pc.id == id && pc.reason == PresentationContextResultReason::Acceptance)
            .ok_or_else(|| Fault::Protocol(format!("a message on unnegotiated context {id}")))?;
        transfer_syntax(&context.transfer_syntax)
    }

    /// Sends a command and, when given, its dataset (split to the peer's PDU size).
    pub fn send(
        &mut self,
        context: u8,
        command: &Command,
        data: Option<&[u8]>,
    ) -> Result<(), Fault> {
        let timeout = self.timeout;
        let association = self.association()?;
        let pdu = Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: context,
                value_type: PDataValueType::Command,
                is_last: true,
                data: command.encode(),
            }],
        };
        association
            .send_pdu(&pdu)
            .map_err(|e| association_fault(&e, timeout))?;
        if let Some(data) = data {
            association
                .send_data(context, data)
                .map_err(|e| io_fault(&e, timeout))?;
        }
        Ok(())
    }

    /// The next fragment, from what the last PDU left or from the wire.
    fn next_value(&mut self) -> Result<PDataValue, Fault> {
        loop {
            if let Some(value) = self.pending.pop_front() {
                return Ok(value);
            }
            let timeout = self.timeout;
            let pdu = self
                .association()?
                .receive_pdu()
                .map_err(|e| association_fault(&e, timeout))?;
            match pdu {
                Pdu::PData { data } => self.pending.extend(data),
                Pdu::AbortRQ { source } => {
                    self.association = None;
                    return Err(Fault::Protocol(format!(
                        "the peer aborted the association ({source:?})"
                    )));
                }
                Pdu::ReleaseRQ => {
                    let _ = self.association()?.send_pdu(&Pdu::ReleaseRP);
                    self.association = None;
                    return Err(Fault::Released);
                }
                other => {
                    return Err(Fault::Protocol(format!(
                        "unexpected {} during an operation",
                        other.short_description()
                    )));
                }
            }
        }
    }

    /// Reads one whole message (command, then its dataset if the command announces one).
    pub fn receive(&mut self) -> Result<Message, Fault> {
        let mut command_bytes = Vec::new();
        let context;
        loop {
            let value = self.next_value()?;
            if value.value_type != PDataValueType::Command {
                return Err(Fault::Protocol(
                    "a dataset fragment where a command was due".into(),
                ));
            }
            command_bytes.extend_from_slice(&value.data);
            if value.is_last {
                context = value.presentation_context_id;
                break;
            }
        }
        let command = Command::decode(&command_bytes)?;
        if !command.has_data_set {
            return Ok(Message {
                context,
                command,
                data: None,
            });
        }
        let mut data = Vec::new();
        loop {
            let value = self.next_value()?;
            if value.value_type != PDataValueType::Data {
                return Err(Fault::Protocol(
                    "a command fragment inside a dataset".into(),
                ));
            }
            if value.presentation_context_id != context {
                return Err(Fault::Protocol(
                    "a dataset on another context than its command".into(),
                ));
            }
            data.extend_from_slice(&value.data);
            if value.is_last {
                break;
            }
        }
        Ok(Message {
            context,
            command,
            data: Some(data),
        })
    }

    /// Reads one message that must be a `name` response (command field `field`).
    pub fn receive_response(&mut self, field: u16, name: &str) -> Result<Message, Fault> {
        let message = self.receive()?;
        if message.command.field != field {
            return Err(Fault::Protocol(format!(
                "expected a {name} response, got command {:#06x}",
                message.command.field
            )));
        }
        Ok(message)
    }

    /// Ends the association: a graceful release when `clean`, else an abort.
    pub fn finish(mut self, clean: bool) {
        if let Some(association) = self.association.take()
            && let Err(e) = association.close(clean)
        {
            log::debug!("closing an association: {e}");
        }
    }
}

fn transfer_syntax(uid: &str) -> Result<&'static TransferSyntax, Fault> {
    let uid = uid.trim_end_matches('\0');
    TransferSyntaxRegistry
        .get(uid)
        .ok_or_else(|| Fault::Protocol(format!("unknown transfer syntax {uid}")))
}

/// A dataset's bytes in `ts`.
pub fn encode(object: &InMemDicomObject, ts: &TransferSyntax) -> Result<Vec<u8>, Fault> {
    let mut out = Vec::new();
    object
        .write_dataset_with_ts(&mut out, ts)
        .map_err(|e| Fault::Protocol(format!("cannot encode a dataset: {e}")))?;
    Ok(out)
}

/// A dataset read from `bytes` in `ts`.
pub fn decode(bytes: &[u8], ts: &TransferSyntax) -> Result<InMemDicomObject, Fault> {
    InMemDicomObject::read_dataset_with_ts(bytes, ts)
        .map_err(|e| Fault::BadData(format!("unreadable dataset: {e}")))
}

/// The I/O error kind somewhere in `error`'s chain of causes.
fn io_kind(error: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cause = current.source();
    }
    None
}

fn is_timeout(kind: Option<std::io::ErrorKind>) -> bool {
    matches!(
        kind,
        Some(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
    )
}

fn io_fault(error: &std::io::Error, timeout: Duration) -> Fault {
    if is_timeout(Some(error.kind())) {
        Fault::TimedOut(timeout)
    } else {
        Fault::Protocol(format!("connection: {error}"))
    }
}

/// A failed association request as a [`Fault`], `elapsed` after it was sent. dicom-ul
/// reports a plain association that got no answer as "TLS not enabled, but peer seems to be
/// sending TLS data" (its TLS sniffing runs on an empty buffer): a silence is told by the
/// clock, a real TLS answer named as such; everything else as [`association_fault`].
pub fn establish_fault(
    error: &dicom_ul::association::Error,
    elapsed: Duration,
    timeout: Duration,
) -> Fault {
    match error {
        dicom_ul::association::Error::TlsNotSupported if elapsed >= timeout => {
            Fault::TimedOut(timeout)
        }
        dicom_ul::association::Error::TlsNotSupported => {
            Fault::Protocol("the server answered in TLS: configure the node with --tls".into())
        }
        other => association_fault(other, timeout),
    }
}

/// A `dicom-ul` error as a fault: unreachable, rejected, timed out or a broken connection.
pub fn association_fault(error: &dicom_ul::association::Error, timeout: Duration) -> Fault {
    use dicom_ul::association::Error as E;
    let kind = io_kind(error);
    match error {
        E::ToAddress { source, .. } | E::Connect { source, .. } => {
            if is_timeout(Some(source.kind())) {
                Fault::TimedOut(timeout)
            } else {
                Fault::Unreachable(source.to_string())
            }
        }
        E::Rejected { association_rj, .. } => Fault::Rejected(association_rj.source.to_string()),
        E::NoAcceptedPresentationContexts { .. } => {
            Fault::NotOffered("any of the proposed services".into())
        }
        _ if is_timeout(kind) => Fault::TimedOut(timeout),
        _ => Fault::Protocol(chain(error)),
    }
}

/// `error` and its causes, joined with ": ".
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut cause = error.source();
    while let Some(current) = cause {
        let text = current.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        cause = current.source();
    }
    parts.join(": ")
}
