//! Who is on the other end of a mutual-TLS connection: the names in the
//! client certificate it presented, for tokens bound to a certificate
//! (specs/tokens.md, "Bound to a client certificate").
//!
//! The names are the certificate's subjectAltName entries (RFC 5280
//! §4.2.1.6) of two kinds:
//! - `uniformResourceIdentifier`: a SPIFFE ID
//!   (`spiffe://example.org/ns/prod/sa/gateway`) as service meshes issue,
//!   or any other URI;
//! - `dNSName`: `gw-eu-1.example.org`.
//!
//! Only a certificate that rustls has already checked against the
//! `--tls-client-ca` CA is read here (the handshake fails otherwise), so
//! the names are the CA's word. The subject's common name is not read:
//! RFC 6125 and the meshes name a machine in the SAN.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rustls::pki_types::CertificateDer;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;

/// The names in a connection's client certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerNames {
    /// URI and DNS names, in the certificate's order.
    pub names: Vec<String>,
}

impl PeerNames {
    /// The names of the end-entity certificate in `chain` (the first), or
    /// none if there is no chain or it cannot be read.
    pub fn of_chain(chain: Option<&[CertificateDer<'_>]>) -> PeerNames {
        match chain.and_then(|c| c.first()) {
            Some(cert) => PeerNames::of_der(cert.as_ref()),
            None => PeerNames::default(),
        }
    }

    /// The names of one DER certificate; none if it cannot be read.
    pub fn of_der(der: &[u8]) -> PeerNames {
        match names(der) {
            Ok(names) => PeerNames { names },
            Err(e) => {
                tracing::warn!("client certificate names unreadable: {e}");
                PeerNames::default()
            }
        }
    }

    /// Whether `name` is one of them (exact, byte for byte: a SPIFFE ID or
    /// a DNS name is matched as issued, with no wildcard).
    pub fn contains(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}

/// The URI and DNS subjectAltNames of a DER certificate.
fn names(der: &[u8]) -> Result<Vec<String>, x509_cert::der::Error> {
    let cert = x509_cert::Certificate::from_der(der)?;
    let mut out = Vec::new();
    for ext in cert.tbs_certificate.filter::<SubjectAltName>() {
        let (_, SubjectAltName(general)) = ext?;
        for name in general {
            match name {
                GeneralName::UniformResourceIdentifier(s) | GeneralName::DnsName(s) => {
                    out.push(s.to_string())
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// The peer of the connection a request came on, as the connection loop
/// ([`crate::listen`]) records it in the request's extensions: `None` on a
/// plain-HTTP connection or one without a client certificate.
#[derive(Clone, Debug, Default)]
pub struct Peer(pub Option<Arc<PeerNames>>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(parts.extensions.get::<Arc<PeerNames>>().cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_and_dns_names_are_read_in_order() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["gw-eu-1.example".into()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://example.org/ns/prod/sa/gw".try_into().unwrap(),
        ));
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "not-a-name.example");
        let cert = params.self_signed(&key).unwrap();
        let peer = PeerNames::of_chain(Some(&[cert.der().clone()]));
        assert_eq!(
            peer.names,
            ["gw-eu-1.example", "spiffe://example.org/ns/prod/sa/gw"]
        );
        assert!(peer.contains("spiffe://example.org/ns/prod/sa/gw"));
        assert!(!peer.contains("spiffe://example.org/ns/prod/sa/g"));
        assert!(!peer.contains("not-a-name.example"), "the CN is not a name");
    }

    #[test]
    fn no_chain_or_garbage_has_no_names() {
        assert_eq!(PeerNames::of_chain(None), PeerNames::default());
        assert_eq!(PeerNames::of_chain(Some(&[])), PeerNames::default());
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01]);
        assert_eq!(PeerNames::of_chain(Some(&[junk])), PeerNames::default());
    }
}
