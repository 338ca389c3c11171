//! HTTPS: ledgerd serves TLS itself when given a certificate chain and its
//! private key (`--tls-cert`, `--tls-key`, PEM), with rustls (TLS 1.2 and
//! 1.3, the ring provider's safe defaults; it offers no post-quantum key
//! exchange). Without them it serves plain HTTP, for a loopback address or
//! behind a proxy that terminates TLS.
//!
//! With `--tls-client-ca`, every client must present a certificate that
//! chains to that CA (mutual TLS, as service meshes and zero-trust networks
//! ask): a connection without one fails its handshake, before any request
//! is read. Bearer tokens are still required on top: the certificate says
//! which machine connects, the token what it may do. ledgerctl presents a
//! certificate with `--client-cert` and `--client-key`.
//!
//! Certificates are renewed while ledgerd runs (ACME, cert-manager): the
//! pair is read again when either file changes (its modification time,
//! inode or length), at the next handshake. A pair that does not load (half
//! written, a key of another certificate) is logged and the one before it
//! is served until a good pair is in place.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
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
    /// A CA file to trust is unreadable or holds no PEM certificate.
    #[error("CA certificate {path}: {why}")]
    Ca {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// A client certificate or its key (mutual TLS) is unreadable or holds
    /// no PEM certificate or private key.
    #[error("client certificate {path}: {why}")]
    ClientCert {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

/// The PEM certificates in the file `path`; `bad` names what it is for.
fn pem_certs(
    path: &Path,
    bad: impl Fn(String) -> TlsError,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// A client certificate chain (leaf first) and its private key, PEM files,
/// presented to a server that asks for one (mutual TLS).
#[derive(Clone, Copy, Debug)]
pub struct ClientIdentity<'a> {
    /// The certificate chain.
    pub cert: &'a Path,
    /// Its private key.
    pub key: &'a Path,
}

impl ClientIdentity<'_> {
    fn load(&self) -> Result<ureq::tls::ClientCert, TlsError> {
        let certs = pem_certs(self.cert, |why| TlsError::ClientCert {
            path: self.cert.display().to_string(),
            why,
        })?;
        let chain: Vec<ureq::tls::Certificate<'static>> = certs
            .iter()
            .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        let bad_key = |why: String| TlsError::ClientCert {
            path: self.key.display().to_string(),
            why,
        };
        let pem = std::fs::read(self.key).map_err(|e| bad_key(e.to_string()))?;
        let key = ureq::tls::PrivateKey::from_pem(&pem).map_err(|e| bad_key(e.to_string()))?;
        Ok(ureq::tls::ClientCert::new_with_certs(&chain, key))
    }
}

/// An HTTP(S) client that reports every status as an answer (not an
/// error), with a deadline for each request. `https` servers' certificates
/// must chain to Mozilla's roots, or to a certificate in the PEM file `ca`
/// when given (a private CA). ledgerctl uses it for `--url`, ledgerd for
/// its witnesses.
pub fn client(
    ca: Option<&Path>,
    identity: Option<ClientIdentity<'_>>,
    timeout: std::time::Duration,
) -> Result<ureq::Agent, TlsError> {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout));
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(ca) = ca {
        let roots: Vec<ureq::tls::Certificate<'static>> = pem_certs(ca, |why| TlsError::Ca {
            path: ca.display().to_string(),
            why,
        })?
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect();
        tls = tls.root_certs(ureq::tls::RootCerts::from(roots));
    }
    if let Some(identity) = identity {
        tls = tls.client_cert(Some(identity.load()?));
    }
    if ca.is_some() || identity.is_some() {
        config = config.tls_config(tls.build());
    }
    Ok(config.build().into())
}

/// An acceptor serving the chain in `cert` (leaf first) with the key in
/// `key` (PKCS #8, PKCS #1 or SEC1), read again when they change. With
/// `client_ca`, a PEM file of CA certificates, every client must present a
/// certificate that chains to one of them (mutual TLS).
pub fn acceptor(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<TlsAcceptor, TlsError> {
    // ring, the provider ureq (ledgerctl) uses too: one C library less to
    // build than aws-lc-rs. It lacks post-quantum key exchange, which rustls
    // marks by deprecating it.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let pair = Pair {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        provider: provider.clone(),
    };
    let loaded = pair.load()?;
    let resolver = Reloading {
        current: RwLock::new((pair.stamp(), Arc::new(loaded))),
        pair,
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Pair(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let bad = |why: String| TlsError::Ca {
                path: ca.display().to_string(),
                why,
            };
            let mut roots = rustls::RootCertStore::empty();
            for c in pem_certs(ca, bad)? {
                roots.add(c).map_err(|e| bad(e.to_string()))?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| bad(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_cert_resolver(Arc::new(resolver));
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Which version of the two files was read ([`ledger::stamp`]).
type Stamp = [ledger::stamp::Stamp; 2];

/// The certificate and key files, and how to load them.
#[derive(Debug)]
struct Pair {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
}

impl Pair {
    fn stamp(&self) -> Stamp {
        [&self.cert, &self.key].map(|p| ledger::stamp::stamp(p))
    }

    fn load(&self) -> Result<CertifiedKey, TlsError> {
        let cert_err = |why: String| TlsError::Cert {
            path: self.cert.display().to_string(),
            why,
        };
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .map_err(|e| cert_err(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cert_err(e.to_string()))?;
        if chain.is_empty() {
            return Err(cert_err("holds no PEM certificate".into()));
        }
        let private = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| TlsError::Key {
            path: self.key.display().to_string(),
            why: e.to_string(),
        })?;
        CertifiedKey::from_der(chain, private, &self.provider)
            .map_err(|e| TlsError::Pair(e.to_string()))
    }
}

/// The pair in use, read again when its files change.
#[derive(Debug)]
struct Reloading {
    pair: Pair,
    current: RwLock<(Stamp, Arc<CertifiedKey>)>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let stamp = self.pair.stamp();
        let (seen, key) = {
            let current = self.current.read().ok()?;
            (current.0 == stamp, current.1.clone())
        };
        if seen {
            return Some(key);
        }
        let mut current = self.current.write().ok()?;
        if current.0 != stamp {
            // Whatever the outcome, this version of the files is dealt with.
            current.0 = stamp;
            match self.pair.load() {
                Ok(loaded) => {
                    tracing::info!("TLS certificate {} loaded", self.pair.cert.display());
                    current.1 = Arc::new(loaded);
                }
                Err(e) => tracing::error!("{e}; serving the certificate loaded before"),
            }
        }
        Some(current.1.clone())
    }
}
