//! DICOMweb (PS3.18) over `ureq`: QIDO-RS search (DICOM JSON), WADO-RS retrieve (a
//! multipart/related stream of Part-10 files, split as it arrives so a study never sits
//! whole in memory) and STOW-RS store — the same [`Transport`] as DIMSE.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dicom_core::Tag;
use serde_json::Value;

use super::cache::{StageError, stage_file};
use super::query::{Match, Query};
use super::{
    Endpoint, Fault, Node, PacsError, RetrieveOutcome, RetrieveProgress, RetrieveRequest, Settings,
    StoreOutcome, Transport, Watch,
};

/// The biggest single response we read whole (a search result or a STOW-RS answer).
const JSON_LIMIT: u64 = 64 << 20;
/// How long a whole retrieve body may take, as a multiple of the timeout.
const BODY_TIMEOUTS: u32 = 60;

pub struct DicomWebClient {
    node: Node,
    base: String,
    agent: ureq::Agent,
    timeout: Duration,
}

impl DicomWebClient {
    pub fn new(node: Node, settings: &Settings) -> Self {
        let base = match &node.endpoint {
            Endpoint::DicomWeb { url } => url.trim_end_matches('/').to_string(),
            Endpoint::Dimse { host, port, .. } => format!("http://{host}:{port}"),
        };
        let timeout = settings.timeout();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_recv_body(Some(timeout * BODY_TIMEOUTS))
            .timeout_send_body(Some(timeout * BODY_TIMEOUTS))
            .build()
            .into();
        Self {
            node,
            base,
            agent,
            timeout,
        }
    }

    fn error(&self, operation: &'static str, fault: Fault) -> PacsError {
        PacsError::Node {
            node: self.node.label(),
            operation,
            fault,
        }
    }

    fn http_fault(&self, error: ureq::Error) -> Fault {
        match error {
            ureq::Error::Timeout(_) => Fault::TimedOut(self.timeout),
            ureq::Error::HostNotFound => Fault::Unreachable("host not found".into()),
            ureq::Error::ConnectionFailed => Fault::Unreachable("connection failed".into()),
            ureq::Error::Io(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                Fault::Unreachable(e.to_string())
            }
            other => Fault::Http(other.to_string()),
        }
    }

    /// Refuses a non-2xx answer, quoting the start of its body.
    fn check_status(response: &mut ureq::http::Response<ureq::Body>) -> Result<(), Fault> {
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = body_text(response, 4096).unwrap_or_default();
        Err(Fault::Http(format!(
            "status {status}{}",
            if body.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", body.trim().chars().take(200).collect::<String>())
            }
        )))
    }

    fn search(&self, query: &Query) -> Result<Vec<Match>, Fault> {
        let path = match query.level {
            super::Level::Study => format!("{}/studies", self.base),
            super::Level::Series => format!("{}/studies/{}/series", self.base, query.study_uid),
        };
        let mut request = self
            .agent
            .get(&path)
            .header("Accept", "application/dicom+json")
            .query("limit", query.max_results.to_string());
        for (tag, _, value) in query.keys() {
            let key = tag_key(tag);
            if value.is_empty() {
                request = request.query("includefield", key);
            } else if !(query.level == super::Level::Series
                && tag == dicom_dictionary_std::tags::STUDY_INSTANCE_UID)
            {
                request = request.query(key, value);
            }
        }
        let mut response = request.call().map_err(|e| self.http_fault(e))?;
        Self::check_status(&mut response)?;
        if response.status().as_u16() == 204 {
            return Ok(Vec::new());
        }
        let text = body_text(&mut response, JSON_LIMIT).map_err(|e| self.http_fault(e))?;
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| Fault::BadData(format!("the search answer is not JSON: {e}")))?;
        let objects = json
            .as_array()
            .ok_or_else(|| Fault::BadData("the search answer is not a JSON array".into()))?;
        let mut found = Vec::new();
        for object in objects.iter().take(query.max_results) {
            found.push(
                Match::read(query.level, |tag| json_text(object, tag)).map_err(Fault::BadData)?,
            );
        }
        Ok(found)
    }

    fn fetch(
        &self,
        request: &RetrieveRequest,
        staging: &Path,
        watch: &mut Watch<'_>,
    ) -> Result<RetrieveOutcome, Fault> {
        let mut url = format!("{}/studies/{}", self.base, request.study_uid);
        if let Some(series) = &request.series_uid {
            url.push_str(&format!("/series/{series}"));
        }
        let mut response = self
            .agent
            .get(&url)
            .header(
                "Accept",
                "multipart/related; type=\"application/dicom\"; transfer-syntax=*",
            )
            .call()
            .map_err(|e| self.http_fault(e))?;
        Self::check_status(&mut response)?;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let boundary = boundary_of(&content_type).ok_or_else(|| {
            Fault::BadData(format!(
                "the answer is not multipart/related ({content_type})"
            ))
        })?;
        let mut outcome = RetrieveOutcome::default();
        let reader = response.into_body().into_reader();
        let result = split_multipart(reader, &boundary, watch.cancel, |part| {
            match stage_file(staging, request, part) {
                Ok(bytes) => {
                    outcome.instances += 1;
                    outcome.bytes += bytes;
                }
                Err(StageError::Refused(reason)) => {
                    log::warn!("refused a retrieved part: {reason}");
                    outcome.warnings.push(reason);
                }
                Err(StageError::Local(fault)) => return Err(fault),
            }
            (watch.progress)(RetrieveProgress {
                received: outcome.instances,
                expected: None,
                bytes: outcome.bytes,
            });
            Ok(())
        });
        match result {
            Ok(()) => Ok(outcome),
            Err(fault @ (Fault::Cancelled | Fault::LocalFile { .. })) => Err(fault),
            Err(other) => Err(Fault::Interrupted {
                received: outcome.instances,
                reason: other.to_string(),
            }),
        }
    }

    fn stow(
        &self,
        files: &[PathBuf],
        progress: &mut dyn FnMut(usize),
    ) -> Result<StoreOutcome, Fault> {
        let boundary = format!("dualmine-{:x}", std::process::id() as u64 ^ 0x5eed_d1c0);
        let mut body = Vec::new();
        for path in files {
            let bytes = std::fs::read(path).map_err(|e| Fault::LocalFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes(),
            );
            body.extend_from_slice(&bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let mut response = self
            .agent
            .post(format!("{}/studies", self.base))
            .header(
                "Content-Type",
                format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
            )
            .header("Accept", "application/dicom+json")
            .send(&body[..])
            .map_err(|e| self.http_fault(e))?;
        let status = response.status().as_u16();
        let text = body_text(&mut response, JSON_LIMIT).unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let failed = sequence_len(&json, "00081198");
        let stored = sequence_len(&json, "00081199");
        if !(200..300).contains(&status) || failed > 0 {
            return Err(Fault::Status {
                status,
                comment: format!("{failed} instance(s) refused, {stored} stored"),
            });
        }
        progress(stored);
        Ok(StoreOutcome {
            stored,
            warnings: Vec::new(),
        })
    }
}

impl Transport for DicomWebClient {
    fn echo(&self) -> Result<Duration, PacsError> {
        let start = Instant::now();
        let query = Query {
            study_uid: "1.2.826.0.1.3680043.10.1.0.0.1".into(),
            max_results: 1,
            ..Query::default()
        };
        self.search(&query)
            .map_err(|fault| self.error("QIDO-RS echo", fault))?;
        Ok(start.elapsed())
    }

    fn find(&self, query: &Query) -> Result<Vec<Match>, PacsError> {
        query
            .check()
            .map_err(|reason| self.error("QIDO-RS", Fault::Protocol(reason)))?;
        let found = self
            .search(query)
            .map_err(|fault| self.error("QIDO-RS", fault))?;
        log::info!("QIDO-RS on {}: {} match(es)", self.node.name, found.len());
        Ok(found)
    }

    fn retrieve(
        &self,
        request: &RetrieveRequest,
        staging: &Path,
        watch: &mut Watch<'_>,
    ) -> Result<RetrieveOutcome, PacsError> {
        self.fetch(request, staging, watch)
            .map_err(|fault| self.error("WADO-RS", fault))
    }

    fn store(
        &self,
        files: &[PathBuf],
        progress: &mut dyn FnMut(usize),
    ) -> Result<StoreOutcome, PacsError> {
        self.stow(files, progress)
            .map_err(|fault| self.error("STOW-RS", fault))
    }
}

/// A response body read as text, at most `limit` bytes.
fn body_text(
    response: &mut ureq::http::Response<ureq::Body>,
    limit: u64,
) -> Result<String, ureq::Error> {
    response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_string()
}

/// `GGGGEEEE`, as QIDO-RS names attributes.
fn tag_key(tag: Tag) -> String {
    format!("{:04X}{:04X}", tag.group(), tag.element())
}

/// A DICOM JSON attribute's values as text, multi-values joined with `\`.
fn json_text(object: &Value, tag: Tag) -> Option<String> {
    let values = object.get(tag_key(tag))?.get("Value")?.as_array()?;
    let texts: Vec<String> = values
        .iter()
        .map(|value| match value {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            Value::Object(name) => name
                .get("Alphabetic")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        })
        .collect();
    Some(texts.join("\\"))
}

fn sequence_len(json: &Value, key: &str) -> usize {
    json.get(key)
        .and_then(|a| a.get("Value"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

/// The boundary parameter of a multipart Content-Type.
fn boundary_of(content_type: &str) -> Option<String> {
    if !content_type.to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    content_type.split(';').find_map(|param| {
        let (key, value) = param.trim().split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_string())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Splits a multipart body as it streams in, calling `part` with each part's content (its
/// headers dropped). Fails on a body that ends before its closing delimiter.
fn split_multipart(
    mut reader: impl Read,
    boundary: &str,
    cancel: &std::sync::atomic::AtomicBool,
    mut part: impl FnMut(&[u8]) -> Result<(), Fault>,
) -> Result<(), Fault> {
    let delimiter = format!("\r\n--{boundary}").into_bytes();
    // A leading CRLF lets the first delimiter look like every other.
    let mut buffer = b"\r\n".to_vec();
    let mut chunk = vec![0u8; 1 << 20];
    let mut search_from = 0;
    let mut in_part = false;
    loop {
        if let Some(found) = find(&buffer[search_from..], &delimiter) {
            let at = search_from + found;
            if in_part {
                let segment = &buffer[..at];
                let content = match find(segment, b"\r\n\r\n") {
                    Some(end) => &segment[end + 4..],
                    None => segment,
                };
                part(content)?;
            }
            let after = at + delimiter.len();
            // The delimiter line ends with "--" (the last) or CRLF.
            while buffer.len() < after + 2
                || find(&buffer[after..], b"\r\n").is_none() && &buffer[after..after + 2] != b"--"
            {
                if !fill(&mut reader, &mut buffer, &mut chunk, cancel)? {
                    return Err(Fault::Protocol(
                        "the multipart body ended inside a delimiter".into(),
                    ));
                }
            }
            if &buffer[after..after + 2] == b"--" {
                return Ok(());
            }
            let line_end = after
                + find(&buffer[after..], b"\r\n")
                    .ok_or_else(|| Fault::Protocol("a bad delimiter line".into()))?;
            buffer.drain(..line_end + 2);
            // Headers of the next part start here; keep "\r\n" so an empty header block parses.
            buffer.splice(0..0, b"\r\n".iter().copied());
            in_part = true;
            search_from = 0;
        } else {
            search_from = buffer.len().saturating_sub(delimiter.len());
            if !fill(&mut reader, &mut buffer, &mut chunk, cancel)? {
                return Err(Fault::Protocol(format!(
                    "the multipart body ended before its closing delimiter ({} bytes pending)",
                    buffer.len()
                )));
            }
        }
    }
}

/// Reads one more chunk into `buffer`; false at the end of the body.
fn fill(
    reader: &mut impl Read,
    buffer: &mut Vec<u8>,
    chunk: &mut [u8],
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<bool, Fault> {
    if cancel.load(Ordering::Relaxed) {
        return Err(Fault::Cancelled);
    }
    let read = reader
        .read(chunk)
        .map_err(|e| Fault::Protocol(format!("reading the body: {e}")))?;
    buffer.extend_from_slice(&chunk[..read]);
    Ok(read > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn parts_of(body: &[u8], chunk: usize) -> Result<Vec<Vec<u8>>, Fault> {
        struct Slow<'a>(&'a [u8], usize);
        impl Read for Slow<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(self.1).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut parts = Vec::new();
        split_multipart(Slow(body, chunk), "XyZ", &AtomicBool::new(false), |p| {
            parts.push(p.to_vec());
            Ok(())
        })?;
        Ok(parts)
    }

    #[test]
    fn multipart_bodies_split_whatever_the_chunking() {
        let body = b"--XyZ\r\nContent-Type: application/dicom\r\n\r\nfirst\r\n--\r\nXy\r\n--XyZ\r\nContent-Type: application/dicom\r\n\r\nsecond\r\n--XyZ--\r\n";
        for chunk in [1, 3, 7, 1000] {
            let parts = parts_of(body, chunk).unwrap();
            assert_eq!(
                parts,
                vec![b"first\r\n--\r\nXy".to_vec(), b"second".to_vec()],
                "chunk {chunk}"
            );
        }
        assert!(
            parts_of(&body[..body.len() - 20], 5).is_err(),
            "a truncated body is an error"
        );
    }

    #[test]
    fn boundaries_and_json_values_are_read() {
        assert_eq!(
            boundary_of("multipart/related; type=\"application/dicom\"; boundary=\"abc\"")
                .as_deref(),
            Some("abc")
        );
        assert_eq!(boundary_of("application/json"), None);
        let object: Value = serde_json::from_str(
            r#"{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
                "00201206": {"vr": "IS", "Value": [3]},
                "00080061": {"vr": "CS", "Value": ["CT", "PT"]}}"#,
        )
        .unwrap();
        use dicom_dictionary_std::tags;
        assert_eq!(
            json_text(&object, tags::PATIENT_NAME).as_deref(),
            Some("Doe^Jane")
        );
        assert_eq!(
            json_text(&object, tags::NUMBER_OF_STUDY_RELATED_SERIES).as_deref(),
            Some("3")
        );
        assert_eq!(
            json_text(&object, tags::MODALITIES_IN_STUDY).as_deref(),
            Some("CT\\PT")
        );
        assert_eq!(json_text(&object, tags::STUDY_DATE), None);
    }
}
