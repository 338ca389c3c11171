//! HTTPS: ledgerd serves TLS itself when given a certificate chain and its
//! private key (`--tls-cert`, `--tls-key`, PEM), with rustls (TLS 1.2 and
//! 1.3, the ring provider's safe defaults). Without them it serves plain
//! HTTP, for a loopback address or behind a proxy that terminates TLS.
//! The ring provider offers no post-quantum key exchange.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Why the certificate or key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is unreadable or holds no PEM certificate.
    #[error("--tls-cert {path}: {why}")]
    Cert {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// The key file is unreadable or holds no PEM private key.
    #[error("--tls-key {path}: {why}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// rustls refused the pair (a key that is not the certificate's).
    #[error("--tls-cert and --tls-key: {0}")]
    Pair(String),
}

/// An acceptor serving the chain in `cert` (leaf first) with the key in
/// `key` (PKCS #8, PKCS #1 or SEC1).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let cert_err = |why: String| TlsError::Cert {
        path: cert.display().to_string(),
        why,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("holds no PEM certificate".into()));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        why: e.to_string(),
    })?;
    // ring, the provider ureq (ledgerctl) uses too: one C library less to
    // build than aws-lc-rs. It lacks post-quantum key exchange, which rustls
    // marks by deprecating it.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Pair(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| TlsError::Pair(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
