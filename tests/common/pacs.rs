//! The Orthanc PACS the PACS tests talk to: the shared one `.ci/run` starts on loopback (its
//! addresses in `DUALMINE_PACS_*`), and private ones a fault test starts and stops itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use dualmine::pacs::{Node, Settings};

/// The text of `tag` in the DICOM file at `path` (a UID, trailing padding dropped).
pub fn text_in(path: &Path, tag: dicom_core::Tag) -> String {
    dicom_object::open_file(path)
        .expect("DICOM")
        .element(tag)
        .expect("the element")
        .to_str()
        .expect("text")
        .trim_end_matches('\0')
        .to_string()
}

/// The shared server `.ci/run` started, with the phantom studies it stored.
pub struct SharedOrthanc {
    /// `ORTHANC@127.0.0.1:PORT`.
    pub dicom: String,
    /// `http://127.0.0.1:PORT` (Orthanc's REST API; DICOMweb under `/dicom-web`).
    pub http: String,
    /// The phantom study stored with dcmtk's storescu (CT, MR_T1, PET, SPECT folders).
    pub fixture: PathBuf,
}

impl SharedOrthanc {
    pub fn dimse_node(&self) -> Node {
        Node::parse("orthanc", &self.dicom).expect("address")
    }

    pub fn web_node(&self) -> Node {
        Node::parse("orthanc-web", &format!("{}/dicom-web", self.http)).expect("url")
    }

    /// The file Orthanc keeps for the instance `sop_instance_uid` (REST: lookup, then /file).
    pub fn stored_file(&self, sop_instance_uid: &str) -> Vec<u8> {
        let agent = ureq::Agent::new_with_defaults();
        let answer = agent
            .post(format!("{}/tools/lookup", self.http))
            .send(sop_instance_uid)
            .expect("lookup")
            .body_mut()
            .read_to_string()
            .expect("text");
        let found: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
        let id = found
            .as_array()
            .and_then(|all| all.iter().find(|f| f["Type"] == "Instance"))
            .and_then(|f| f["ID"].as_str())
            .unwrap_or_else(|| panic!("Orthanc holds no instance {sop_instance_uid}"))
            .to_string();
        agent
            .get(format!("{}/instances/{id}/file", self.http))
            .call()
            .expect("file")
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .expect("bytes")
    }
}

/// Whether CI promised a server (`DUALMINE_REQUIRE_PACS=1`): then its absence fails the test.
fn required() -> bool {
    std::env::var_os("DUALMINE_REQUIRE_PACS").is_some_and(|v| v == "1")
}

/// The shared server, or `None` with a printed reason (a failure when CI promised one).
pub fn shared_orthanc() -> Option<SharedOrthanc> {
    let vars = [
        "DUALMINE_PACS_DICOM",
        "DUALMINE_PACS_HTTP",
        "DUALMINE_PACS_FIXTURE",
    ];
    let values: Vec<Option<String>> = vars.iter().map(|v| std::env::var(v).ok()).collect();
    match values.as_slice() {
        [Some(dicom), Some(http), Some(fixture)] => Some(SharedOrthanc {
            dicom: dicom.clone(),
            http: http.clone(),
            fixture: PathBuf::from(fixture),
        }),
        _ => {
            let reason = "no Orthanc to test against (bash .ci/run starts one and sets DUALMINE_PACS_DICOM, _HTTP, _FIXTURE)";
            assert!(!required(), "{reason}");
            eprintln!("skipped: {reason}");
            None
        }
    }
}

/// An Orthanc of the test's own, started through `.ci/orthanc.sh`, stopped when dropped.
pub struct PrivateOrthanc {
    folder: tempfile::TempDir,
    pub dicom_port: u16,
    pub http_port: u16,
}

impl PrivateOrthanc {
    /// Starts one on the given ports, or `None` (with a printed reason) without Orthanc.
    pub fn start(dicom_port: u16, http_port: u16) -> Option<Self> {
        Self::start_with_tls(dicom_port, http_port, None)
    }

    /// Like [`Self::start`]; with `tls`, a folder holding server.crt, server.key and ca.crt,
    /// the DICOM port speaks TLS only and wants a client certificate from that CA.
    pub fn start_with_tls(dicom_port: u16, http_port: u16, tls: Option<&Path>) -> Option<Self> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/orthanc.sh");
        let installed = Command::new("sh")
            .args(["-c", "command -v Orthanc"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed {
            let reason = "Orthanc is not installed (Debian package orthanc)";
            assert!(!required(), "{reason}");
            eprintln!("skipped: {reason}");
            return None;
        }
        let folder = tempfile::tempdir().expect("temp");
        let mut command = Command::new("bash");
        if let Some(folder) = tls {
            command.env("ORTHANC_TLS", folder);
        }
        let status = command
            .arg(&script)
            .arg("start")
            .arg(folder.path())
            .arg(dicom_port.to_string())
            .arg(http_port.to_string())
            .status()
            .expect("orthanc.sh runs");
        assert!(status.success(), "a private Orthanc did not start");
        Some(Self {
            folder,
            dicom_port,
            http_port,
        })
    }

    pub fn node(&self) -> Node {
        Node::parse("private", &format!("ORTHANC@127.0.0.1:{}", self.dicom_port)).expect("address")
    }

    /// Kills the server at once (SIGKILL: a crash, not a shutdown).
    pub fn kill(&self) {
        let pid = std::fs::read_to_string(self.folder.path().join("pid")).expect("pid");
        let _ = Command::new("kill").args(["-9", pid.trim()]).status();
    }
}

impl Drop for PrivateOrthanc {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/orthanc.sh"))
            .arg("stop")
            .arg(self.folder.path())
            .status();
    }
}

/// A test CA and, signed by it, a server and a client certificate for 127.0.0.1 (openssl),
/// in `folder`: ca.crt, server.crt/.key, client.crt/.key. False (with a printed reason)
/// without openssl.
pub fn make_certificates(folder: &Path) -> bool {
    let script = r#"set -e
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=dualmine test CA"
printf "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n" > ext
for who in server client; do
  openssl req -newkey rsa:2048 -nodes -keyout $who.key -out $who.csr -subj "/CN=$who"
  openssl x509 -req -in $who.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out $who.crt -days 2 -extfile ext
done"#;
    let made = Command::new("sh")
        .args(["-c", script])
        .current_dir(folder)
        .output()
        .is_ok_and(|o| o.status.success());
    if !made {
        let reason = "openssl could not make test certificates (Debian package openssl)";
        assert!(!required(), "{reason}");
        eprintln!("skipped: {reason}");
    }
    made
}

/// Settings with our AE title and a short timeout.
pub fn settings(timeout_s: u64) -> Settings {
    Settings {
        timeout_s,
        ..Settings::default()
    }
}
