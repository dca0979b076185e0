//! The configured PACS nodes and our own network identity, kept in a small JSON file in the
//! user's config folder (`$DUALMINE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/dualmine`, else
//! `~/.config/dualmine`), written atomically.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::PacsError;
use crate::io::atomic::write_atomically;

/// How a node is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "transport", rename_all = "lowercase")]
pub enum Endpoint {
    /// DICOM networking: the node's AE title, host and port; over TLS when `tls` is set.
    Dimse {
        ae_title: String,
        host: String,
        port: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tls: Option<Tls>,
    },
    /// DICOMweb: the service's base URL (the part before `/studies`).
    #[serde(rename = "dicomweb")]
    DicomWeb { url: String },
}

/// DICOM TLS (PS3.15 B.1): whom to trust and, for servers that ask, our certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tls {
    /// PEM file of the certificate authorities to trust; without it, the public web roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain and private key we present when the server requires one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
}

/// One PACS node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    #[serde(flatten)]
    pub endpoint: Endpoint,
}

impl Node {
    /// Parses `AE@host:port` (DICOM networking) or an `http(s)://` base URL (DICOMweb).
    pub fn parse(name: &str, address: &str) -> Result<Self, String> {
        let endpoint = if address.starts_with("http://") || address.starts_with("https://") {
            Endpoint::DicomWeb {
                url: address.trim_end_matches('/').to_string(),
            }
        } else {
            let (ae_title, host_port) = address
                .split_once('@')
                .ok_or_else(|| format!("'{address}' is neither AE@host:port nor an http(s) URL"))?;
            let (host, port) = host_port
                .rsplit_once(':')
                .ok_or_else(|| format!("'{address}' has no :port"))?;
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("'{port}' is not a port number"))?;
            check_ae_title(ae_title)?;
            if host.is_empty() {
                return Err(format!("'{address}' has no host"));
            }
            Endpoint::Dimse {
                ae_title: ae_title.to_string(),
                host: host.to_string(),
                port,
                tls: None,
            }
        };
        Ok(Self {
            name: name.to_string(),
            endpoint,
        })
    }

    /// The same node over DICOM TLS (no change for a DICOMweb node: its URL says https).
    pub fn with_tls(mut self, settings: Tls) -> Self {
        if let Endpoint::Dimse { tls, .. } = &mut self.endpoint {
            *tls = Some(settings);
        }
        self
    }

    /// `name (AE@host:port)` or `name (url)`: how errors and tables name the node.
    pub fn label(&self) -> String {
        let address = self.address();
        let tls = if matches!(self.endpoint, Endpoint::Dimse { tls: Some(_), .. }) {
            ", TLS"
        } else {
            ""
        };
        if self.name == address {
            format!("{address}{tls}")
        } else {
            format!("{} ({address}{tls})", self.name)
        }
    }

    /// The node's address as [`Node::parse`] reads it.
    pub fn address(&self) -> String {
        match &self.endpoint {
            Endpoint::Dimse {
                ae_title,
                host,
                port,
                ..
            } => format!("{ae_title}@{host}:{port}"),
            Endpoint::DicomWeb { url } => url.clone(),
        }
    }
}

/// An AE title: 1–16 characters of printable ASCII, no backslash, not all spaces.
pub fn check_ae_title(title: &str) -> Result<(), String> {
    let ok = !title.trim().is_empty()
        && title.len() <= 16
        && title.chars().all(|c| c.is_ascii_graphic() || c == ' ')
        && !title.contains('\\');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{title}' is not an AE title (1 to 16 printable ASCII characters, no backslash)"
        ))
    }
}

fn default_ae_title() -> String {
    "DUALMINE".into()
}

fn default_timeout_s() -> u64 {
    30
}

fn default_move_port() -> u16 {
    11113
}

/// Our network identity and the known nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Our own AE title (calling AE title; the C-MOVE destination).
    #[serde(default = "default_ae_title")]
    pub ae_title: String,
    /// Seconds to wait for a connection or for the next message before giving up.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u64,
    /// Port our storage SCP listens on during a C-MOVE (the fallback for servers without C-GET).
    #[serde(default = "default_move_port")]
    pub move_port: u16,
    #[serde(default)]
    pub nodes: Vec<Node>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            ae_title: default_ae_title(),
            timeout_s: default_timeout_s(),
            move_port: default_move_port(),
            nodes: Vec::new(),
        }
    }
}

impl Settings {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_s.max(1))
    }

    /// The settings file's path (see the module doc).
    pub fn default_path() -> PathBuf {
        config_folder().join("pacs.json")
    }

    /// Reads the settings; a missing file gives the defaults (no nodes).
    pub fn load(path: &Path) -> Result<Self, PacsError> {
        let bad = |reason: String| PacsError::Settings {
            path: path.to_path_buf(),
            reason,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(bad(e.to_string())),
        };
        let settings: Self = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        check_ae_title(&settings.ae_title).map_err(bad)?;
        Ok(settings)
    }

    /// Writes the settings (folder created, file replaced atomically).
    pub fn save(&self, path: &Path) -> Result<(), PacsError> {
        let bad = |reason: String| PacsError::Settings {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|e| bad(e.to_string()))?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| bad(e.to_string()))?;
        write_atomically(path, true, |out| out.write_all(text.as_bytes()))
            .map_err(|e| bad(e.to_string()))
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Result<&Node, PacsError> {
        self.nodes
            .iter()
            .find(|node| node.name == name)
            .ok_or_else(|| PacsError::UnknownNode {
                name: name.to_string(),
                known: if self.nodes.is_empty() {
                    "none configured: dualmine pacs node add NAME AE@HOST:PORT".into()
                } else {
                    let names: Vec<_> = self.nodes.iter().map(|n| n.name.as_str()).collect();
                    format!("known: {}", names.join(", "))
                },
            })
    }

    /// Adds `node`, replacing one of the same name.
    pub fn upsert(&mut self, node: Node) {
        self.nodes.retain(|n| n.name != node.name);
        self.nodes.push(node);
    }
}

/// `$DUALMINE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/dualmine`, else `~/.config/dualmine`.
pub fn config_folder() -> PathBuf {
    user_folder("DUALMINE_CONFIG_DIR", "XDG_CONFIG_HOME", ".config")
}

/// `$DUALMINE_CACHE_DIR`, else `$XDG_CACHE_HOME/dualmine/pacs`, else `~/.cache/dualmine/pacs`.
pub fn cache_folder() -> PathBuf {
    if let Some(dir) = std::env::var_os("DUALMINE_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    user_folder("", "XDG_CACHE_HOME", ".cache").join("pacs")
}

fn user_folder(own: &str, xdg: &str, fallback: &str) -> PathBuf {
    if !own.is_empty()
        && let Some(dir) = std::env::var_os(own)
    {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os(xdg).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("dualmine");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(fallback).join("dualmine")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_both_ways() {
        let node = Node::parse("pacs", "ORTHANC@127.0.0.1:4242").unwrap();
        assert_eq!(node.address(), "ORTHANC@127.0.0.1:4242");
        let web = Node::parse("web", "http://127.0.0.1:8042/dicom-web/").unwrap();
        assert_eq!(web.address(), "http://127.0.0.1:8042/dicom-web");
        assert!(Node::parse("x", "127.0.0.1:4242").is_err());
        assert!(Node::parse("x", "A@host:99999").is_err());
        assert!(Node::parse("x", "A_TITLE_LONGER_THAN_16@h:1").is_err());
    }

    #[test]
    fn settings_round_trip_and_name_unknown_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/pacs.json");
        assert_eq!(Settings::load(&path).unwrap(), Settings::default());
        let mut settings = Settings::default();
        settings.upsert(Node::parse("orthanc", "ORTHANC@127.0.0.1:4242").unwrap());
        settings.upsert(
            Node::parse("secure", "PACS@pacs.example:2762")
                .unwrap()
                .with_tls(Tls {
                    ca_file: Some("/etc/pacs/ca.pem".into()),
                    ..Tls::default()
                }),
        );
        settings.save(&path).unwrap();
        let back = Settings::load(&path).unwrap();
        assert_eq!(back, settings);
        let err = back.node("nope").unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("orthanc"), "{err}");
        std::fs::write(&path, "{\"ae_title\": \"bad\\\\title\"}").unwrap();
        assert!(Settings::load(&path).is_err());
    }
}
