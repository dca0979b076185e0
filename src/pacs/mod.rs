//! PACS networking: where studies come from and where derived series go back to. One
//! interface ([`Transport`]: echo, find, retrieve, store) over two transports — DICOM
//! networking (DIMSE over `dicom-ul`: C-ECHO, C-FIND, C-GET with C-MOVE as the fallback,
//! C-STORE) and DICOMweb (QIDO-RS, WADO-RS, STOW-RS over `ureq`) — plus the configured nodes
//! (`node`) and the local cache of retrieved studies (`cache`).
//!
//! Every failure names the node and the operation ([`PacsError::Node`]); log lines carry UIDs,
//! never patient names or IDs.

pub mod cache;
pub mod dicomweb;
pub mod dimse;
pub mod node;
pub mod query;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

pub use cache::{Cache, CachedStudy};
pub use node::{Endpoint, Node, Settings};
pub use query::{Level, Match, Query};

/// What went wrong talking to one node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("cannot connect ({0})")]
    Unreachable(String),
    #[error("the association was rejected: {0}")]
    Rejected(String),
    #[error("no answer within {0:?} (the timeout)")]
    TimedOut(Duration),
    #[error(
        "the connection broke after {received} instance(s) ({reason}); nothing of this retrieve was kept"
    )]
    Interrupted { received: usize, reason: String },
    #[error("the server answered status {status:#06x}{}", comment_suffix(.comment))]
    Status { status: u16, comment: String },
    #[error("the server does not accept {0}")]
    NotOffered(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("the server sent a bad dataset: {0}")]
    BadData(String),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("the peer released the association mid-operation")]
    Released,
    #[error("cancelled; nothing of this retrieve was kept")]
    Cancelled,
    #[error("local file {path}: {reason}")]
    LocalFile { path: PathBuf, reason: String },
}

fn comment_suffix(comment: &str) -> String {
    if comment.is_empty() {
        String::new()
    } else {
        format!(" ({comment})")
    }
}

/// The PACS layer's errors.
#[derive(Debug, thiserror::Error)]
pub enum PacsError {
    #[error("PACS node {node}: {operation} failed: {fault}")]
    Node {
        /// The node's name and address, e.g. `orthanc (ORTHANC@127.0.0.1:4242)`.
        node: String,
        operation: &'static str,
        fault: Fault,
    },
    #[error("PACS settings {path}: {reason}")]
    Settings { path: PathBuf, reason: String },
    #[error("no PACS node named '{name}' ({known})")]
    UnknownNode { name: String, known: String },
    #[error("PACS cache {path}: {reason}")]
    Cache { path: PathBuf, reason: String },
}

impl PacsError {
    /// The fault behind a node error, if this is one.
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            Self::Node { fault, .. } => Some(fault),
            _ => None,
        }
    }
}

/// What to retrieve: a whole study or one of its series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrieveRequest {
    pub study_uid: String,
    pub series_uid: Option<String>,
}

/// Progress of a retrieve, reported after each instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetrieveProgress {
    pub received: usize,
    /// Instances the server says the retrieve holds, when it says.
    pub expected: Option<usize>,
    pub bytes: u64,
}

/// What a retrieve brought into the staging folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetrieveOutcome {
    pub instances: usize,
    pub bytes: u64,
    /// Instances the server could not send or that were refused, one line each (UIDs only).
    pub warnings: Vec<String>,
}

/// What a store sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOutcome {
    pub stored: usize,
    pub warnings: Vec<String>,
}

/// Callbacks and the cancel flag of a long operation.
pub struct Watch<'a> {
    pub progress: &'a mut dyn FnMut(RetrieveProgress),
    pub cancel: &'a AtomicBool,
}

/// One transport's view of a node: the four operations every PACS offers.
pub trait Transport: Send + Sync {
    /// Round trip time of a verification (C-ECHO, or a QIDO-RS request that matches nothing).
    fn echo(&self) -> Result<Duration, PacsError>;
    /// Studies or series matching `query`, at most `query.max_results`.
    fn find(&self, query: &Query) -> Result<Vec<Match>, PacsError>;
    /// Retrieves into `staging` as `staging/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`, each file
    /// complete (written through a temporary name); on error the caller discards `staging`.
    fn retrieve(
        &self,
        request: &RetrieveRequest,
        staging: &Path,
        watch: &mut Watch<'_>,
    ) -> Result<RetrieveOutcome, PacsError>;
    /// Sends DICOM files (a derived series); stops at the first refused instance.
    fn store(
        &self,
        files: &[PathBuf],
        progress: &mut dyn FnMut(usize),
    ) -> Result<StoreOutcome, PacsError>;
}

/// The transport for `node`, with our settings (AE title, timeout).
pub fn connect(node: &Node, settings: &Settings) -> Box<dyn Transport> {
    match &node.endpoint {
        Endpoint::Dimse { .. } => Box::new(dimse::DimseClient::new(node.clone(), settings)),
        Endpoint::DicomWeb { .. } => {
            Box::new(dicomweb::DicomWebClient::new(node.clone(), settings))
        }
    }
}
