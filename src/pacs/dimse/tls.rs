//! DICOM TLS (PS3.15 B.1) for our associations: a rustls client configuration (ring) that
//! trusts the node's CA file, or the public web roots without one, and presents our
//! certificate when the node is configured with one.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::pacs::Fault;
use crate::pacs::node::Tls;

fn local(path: &std::path::Path, what: &str, e: impl std::fmt::Display) -> Fault {
    Fault::LocalFile {
        path: path.to_path_buf(),
        reason: format!("{what}: {e}"),
    }
}

/// The client configuration for `tls`.
pub fn client_config(tls: &Tls) -> Result<Arc<rustls::ClientConfig>, Fault> {
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca_file {
        Some(path) => {
            let certificates = CertificateDer::pem_file_iter(path)
                .map_err(|e| local(path, "cannot read the CA file", e))?;
            for certificate in certificates {
                let certificate = certificate.map_err(|e| local(path, "a bad certificate", e))?;
                roots
                    .add(certificate)
                    .map_err(|e| local(path, "a certificate rustls refuses", e))?;
            }
            if roots.is_empty() {
                return Err(local(path, "no certificate", "the file holds none"));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Fault::Protocol(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    let config = match (&tls.client_certificate, &tls.client_key) {
        (Some(certificate), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(certificate)
                .map_err(|e| local(certificate, "cannot read our certificate", e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| local(certificate, "a bad certificate", e))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| local(key, "cannot read our private key", e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| local(certificate, "our certificate and key do not match", e))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(Fault::Protocol(
                "TLS: give both a client certificate and its key, or neither".into(),
            ));
        }
    };
    Ok(Arc::new(config))
}
