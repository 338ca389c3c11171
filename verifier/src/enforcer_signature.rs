//! Enforcer signatures (specs/signed-record.md): a decision record signed
//! by the enforcement point that made it, so that an auditor holding the
//! enforcer's public key can tell that the record is the enforcer's own
//! and not something the ledger's operator, or a relay, wrote.
//!
//! ```text
//! 18([                                     COSE_Sign1 (RFC 9052 §4.2), tagged
//!   << { 1: -8,                            alg: EdDSA
//!        3: "application/vnd.decision-ledger.record+cbor",   content type
//!        4: h'<key id>' } >>,              kid: the enforcer key's 4-byte
//!                                          note key ID (C2SP signed-note)
//!   { },                                   unprotected: nothing
//!   payload,                               the record's deterministic CBOR
//!                                          as sent; nil in the leaf, where
//!                                          the record sits beside it
//!   signature                              Ed25519 over the Sig_structure
//! ])
//! Sig_structure = ["Signature1", protected, h'', record]   (RFC 9052 §4.4)
//! ```
//!
//! The key is an Ed25519 note key named by the enforcer's `enforcer.id`
//! (`gw-eu-1+1a2b3c4d+AQ…`), so the ID in `kid` names one key of one
//! enforcer. The signed bytes are the record's canonical form
//! (specs/record.md), the bytes the leaf holds: a signature made over any
//! other spelling of the record would not verify, so the ledger refuses it.

use ciborium::Value;

use crate::cbor::{self, CborError};
use crate::note::{KeyError, SignerKey, VerifierKey};
pub use crate::receipt::TAG_COSE_SIGN1;
use crate::receipt::{int, sig_structure, ALG_EDDSA, LABEL_ALG};

/// The content type in the protected header.
pub const CONTENT_TYPE: &str = "application/vnd.decision-ledger.record+cbor";
/// Header label `content type`.
const LABEL_CONTENT_TYPE: i64 = 3;
/// Header label `kid`.
const LABEL_KID: i64 = 4;

/// Why an enforcer signature is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// Not one CBOR item.
    #[error("enforcer signature: {0}")]
    Cbor(#[from] CborError),
    /// Not a COSE_Sign1 of this profile.
    #[error("malformed enforcer signature: {0}")]
    Malformed(&'static str),
    /// No key is known for the enforcer the record names.
    #[error("no key is known for enforcer {enforcer:?}, so its signature cannot be checked")]
    UnknownEnforcer {
        /// The record's `enforcer.id`.
        enforcer: String,
    },
    /// The enforcer has keys, but none with the signature's key ID.
    #[error("signed with key {key_id:08x}, which is not a key of enforcer {enforcer:?}")]
    UnknownKey {
        /// The record's `enforcer.id`.
        enforcer: String,
        /// The `kid` of the signature.
        key_id: u32,
    },
    /// The signature does not verify over the record.
    #[error("the signature does not verify over the record with enforcer {enforcer:?}'s key {key_id:08x}")]
    Invalid {
        /// The record's `enforcer.id`.
        enforcer: String,
        /// The key it was checked with.
        key_id: u32,
    },
}

/// An enforcer's signature of one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnforcerSignature {
    /// The note key ID of the key that made it.
    pub key_id: u32,
    /// The Ed25519 signature.
    pub signature: [u8; 64],
}

fn protected_bytes(key_id: u32) -> Vec<u8> {
    cbor::encode(&Value::Map(vec![
        (int(LABEL_ALG), int(ALG_EDDSA)),
        (int(LABEL_CONTENT_TYPE), Value::Text(CONTENT_TYPE.into())),
        (int(LABEL_KID), Value::Bytes(key_id.to_be_bytes().to_vec())),
    ]))
}

impl EnforcerSignature {
    /// Signs a record given in its canonical form (deterministic CBOR,
    /// specs/record.md) with an enforcer's key.
    pub fn sign(signer: &SignerKey, record_cbor: &[u8]) -> EnforcerSignature {
        let key_id = signer.verifier().id();
        EnforcerSignature {
            key_id,
            signature: signer.sign_bytes(&sig_structure(&protected_bytes(key_id), record_cbor)),
        }
    }

    fn encode_with(&self, payload: Value) -> Vec<u8> {
        cbor::encode(&Value::Tag(
            TAG_COSE_SIGN1,
            Box::new(Value::Array(vec![
                Value::Bytes(protected_bytes(self.key_id)),
                Value::Map(vec![]),
                payload,
                Value::Bytes(self.signature.to_vec()),
            ])),
        ))
    }

    /// The signed record as an enforcer sends it: the COSE_Sign1 with the
    /// record as its payload.
    pub fn encode_attached(&self, record_cbor: &[u8]) -> Vec<u8> {
        self.encode_with(Value::Bytes(record_cbor.to_vec()))
    }

    /// The signature as the leaf keeps it: the COSE_Sign1 with a detached
    /// (nil) payload, the record being beside it in the leaf.
    pub fn encode_detached(&self) -> Vec<u8> {
        self.encode_with(Value::Null)
    }

    /// Reads a COSE_Sign1 of this profile: the signature and the payload
    /// (`None` when detached). The protected header must be exactly the
    /// one [`EnforcerSignature::sign`] writes; the unprotected header is not
    /// signed and is passed over.
    pub fn decode(value: &Value) -> Result<(EnforcerSignature, Option<&[u8]>), SignatureError> {
        decode_parts(value).map(|(sig, _, payload)| (sig, payload))
    }

    /// Reads the detached form a leaf keeps ([`EnforcerSignature::encode_detached`]).
    pub fn from_leaf_value(value: &Value) -> Result<EnforcerSignature, SignatureError> {
        match decode_parts(value)? {
            (sig, true, None) => Ok(sig),
            (_, false, _) => Err(SignatureError::Malformed(
                "a leaf's signature has an unprotected header",
            )),
            (_, _, Some(_)) => Err(SignatureError::Malformed(
                "a leaf's signature carries the record again as its payload",
            )),
        }
    }

    /// Whether `key` made this signature over `record_cbor` (the record's
    /// canonical bytes).
    pub fn verify_with(&self, record_cbor: &[u8], key: &VerifierKey) -> bool {
        key.id() == self.key_id
            && key.verify(
                &sig_structure(&protected_bytes(self.key_id), record_cbor),
                &self.signature,
            )
    }
}

/// A COSE_Sign1's signature, whether its unprotected header is empty, and
/// its payload (`None` when detached).
fn decode_parts(value: &Value) -> Result<(EnforcerSignature, bool, Option<&[u8]>), SignatureError> {
    use SignatureError::Malformed;
    let Value::Tag(TAG_COSE_SIGN1, inner) = value else {
        return Err(Malformed("not a tagged COSE_Sign1 (tag 18)"));
    };
    let Value::Array(parts) = inner.as_ref() else {
        return Err(Malformed("COSE_Sign1 is not an array"));
    };
    let [Value::Bytes(protected), Value::Map(unprotected), payload, Value::Bytes(signature)] =
        parts.as_slice()
    else {
        return Err(Malformed(
            "COSE_Sign1 is not [protected bytes, unprotected map, payload, signature bytes]",
        ));
    };
    let key_id = key_id_of(protected)?;
    let signature: [u8; 64] = signature
        .as_slice()
        .try_into()
        .map_err(|_| Malformed("the signature is not 64 bytes (Ed25519)"))?;
    let payload = match payload {
        Value::Bytes(b) => Some(b.as_slice()),
        Value::Null => None,
        _ => return Err(Malformed("the payload is neither bytes nor nil")),
    };
    Ok((
        EnforcerSignature { key_id, signature },
        unprotected.is_empty(),
        payload,
    ))
}

/// The key ID of a protected header, which must be exactly the bytes
/// [`protected_bytes`] writes for it.
fn key_id_of(protected: &[u8]) -> Result<u32, SignatureError> {
    let value = cbor::decode(protected)?;
    let kid = value
        .as_map()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.as_integer() == Some(LABEL_KID.into()))
        })
        .and_then(|(_, v)| v.as_bytes())
        .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
        .map(u32::from_be_bytes)
        .ok_or(SignatureError::Malformed(
            "the protected header has no 4-byte kid",
        ))?;
    if protected != protected_bytes(kid) {
        return Err(SignatureError::Malformed(
            "the protected header is not {1: -8 (EdDSA), 3: the record content type, 4: kid}",
        ));
    }
    Ok(kid)
}

/// What is known of a logged record's enforcer signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Signed {
    /// The record carries no enforcer signature.
    Unsigned,
    /// Signed with key `key_id`, which was not checked: no key of the
    /// enforcer was given.
    NotChecked {
        /// The signature's key ID.
        #[serde(serialize_with = "hex_id")]
        key_id: u32,
    },
    /// Signed with the enforcer's key `key_id`, and the signature verifies.
    Verified {
        /// The key ID.
        #[serde(serialize_with = "hex_id")]
        key_id: u32,
    },
}

fn hex_id<S: serde::Serializer>(id: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{id:08x}"))
}

impl Signed {
    /// What it is of a record whose `enforcer.id` is `enforcer`, said in a
    /// few words; `None` for an unsigned one.
    pub fn describe(&self, enforcer: &str) -> Option<String> {
        match self {
            Signed::Unsigned => None,
            Signed::NotChecked { key_id } => Some(format!(
                "signed by its enforcer with key {key_id:08x}, NOT CHECKED (no key of {enforcer} given)"
            )),
            Signed::Verified { key_id } => Some(format!(
                "signed by its enforcer {enforcer}, key {key_id:08x}: verified"
            )),
        }
    }
}

/// The keys of the enforcers whose signatures are checked: Ed25519 note
/// verifier keys named by `enforcer.id`, one a line (`#` starts a
/// comment). An enforcer may have more than one while it rotates keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnforcerKeys {
    keys: Vec<VerifierKey>,
    /// The enforcers that have a key: looked up for every record a ledger
    /// checks.
    names: std::collections::BTreeSet<String>,
}

/// A line of an enforcer key file that is not a key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {error}")]
pub struct KeyLineError {
    /// One-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub error: KeyError,
}

impl EnforcerKeys {
    /// A set of keys.
    pub fn new(keys: Vec<VerifierKey>) -> EnforcerKeys {
        let names = keys.iter().map(|k| k.name().to_string()).collect();
        EnforcerKeys { keys, names }
    }

    /// Reads a key file: one key a line; blank lines and `#` comments
    /// are passed over.
    pub fn parse(text: &str) -> Result<EnforcerKeys, KeyLineError> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let key =
                VerifierKey::parse(line).map_err(|error| KeyLineError { line: i + 1, error })?;
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        Ok(EnforcerKeys::new(keys))
    }

    /// Every key, in the order given.
    pub fn keys(&self) -> &[VerifierKey] {
        &self.keys
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `enforcer` has a key here (its records must then be signed
    /// where these keys are enforced).
    pub fn signs(&self, enforcer: &str) -> bool {
        self.names.contains(enforcer)
    }

    /// Checks `signature` over `record_cbor`, a record whose `enforcer.id`
    /// is `enforcer`: the key that verified it.
    pub fn check(
        &self,
        enforcer: &str,
        signature: &EnforcerSignature,
        record_cbor: &[u8],
    ) -> Result<&VerifierKey, SignatureError> {
        let mut of_enforcer = self.keys.iter().filter(|k| k.name() == enforcer).peekable();
        if of_enforcer.peek().is_none() {
            return Err(SignatureError::UnknownEnforcer {
                enforcer: enforcer.to_string(),
            });
        }
        let key = of_enforcer
            .find(|k| k.id() == signature.key_id)
            .ok_or_else(|| SignatureError::UnknownKey {
                enforcer: enforcer.to_string(),
                key_id: signature.key_id,
            })?;
        if signature.verify_with(record_cbor, key) {
            Ok(key)
        } else {
            Err(SignatureError::Invalid {
                enforcer: enforcer.to_string(),
                key_id: key.id(),
            })
        }
    }
}
