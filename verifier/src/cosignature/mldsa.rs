//! ML-DSA-44 cosignatures: C2SP tlog-cosignature, signature type `0x06`.
//!
//! The signature (FIPS 204 ML-DSA-44, pure mode, empty context string)
//! covers a `cosigned_message` (RFC 8446 §3 presentation language):
//!
//! ```text
//! struct {
//!     uint8 label[12] = "subtree/v1\n\0";
//!     opaque cosigner_name<1..2^8-1>;
//!     uint64 timestamp;
//!     opaque log_origin<1..2^8-1>;
//!     uint64 start;
//!     uint64 end;
//!     uint8 hash[32];
//! } cosigned_message;
//! ```
//!
//! For a checkpoint, `start` is 0, `end` its size and `hash` its root;
//! extension lines are not signed. `timestamp` may be 0: the cosigner then
//! makes no statement that the tree is the largest it has seen (it still
//! states that the tree is consistent with every view it has seen).
//!
//! Keys: verifier `<name>+<hex key ID>+base64(0x06 || 1312-byte public
//! key)`, key ID `SHA-256(name || 0x0A || 0x06 || public key)[:4]`; signer
//! `PRIVATE+KEY+<name>+<hex key ID>+base64(0x06 || 32-byte seed)` (the
//! FIPS 204 key generation seed ξ). Signing is FIPS 204's deterministic
//! variant, so the caller brings no randomness. specs/witness.md.

use ml_dsa::{
    EncodedVerifyingKey, Keypair as _, MlDsa44, Signature, Signer as _, SigningKey, VerifyingKey,
};

use crate::b64;
use crate::hash::Hash;
use crate::note::{typed_key_id, valid_name, KeyError};

/// The signature type byte of ML-DSA-44 cosignature keys.
pub const ALG: u8 = 0x06;

/// Bytes of an ML-DSA-44 public key.
pub const KEY_LEN: usize = 1312;

/// Bytes of an ML-DSA-44 signature.
pub const SIGNATURE_LEN: usize = 2420;

/// The first 12 bytes of every `cosigned_message`.
pub const LABEL: &[u8; 12] = b"subtree/v1\n\0";

/// The `cosigned_message` by `cosigner` of the subtree `[start, end)` of
/// the log `origin` whose root is `hash`, at `timestamp`. `None` if a name
/// is empty or over 255 bytes, or if `start` and `timestamp` are both
/// non-zero (which the spec forbids).
pub fn cosigned_message(
    cosigner: &str,
    timestamp: u64,
    origin: &str,
    start: u64,
    end: u64,
    hash: &Hash,
) -> Option<Vec<u8>> {
    let short = |s: &str| (1..=255).contains(&s.len());
    if !short(cosigner) || !short(origin) || (start != 0 && timestamp != 0) {
        return None;
    }
    let mut m = Vec::with_capacity(12 + 1 + cosigner.len() + 8 + 1 + origin.len() + 16 + 32);
    m.extend_from_slice(LABEL);
    m.push(cosigner.len() as u8);
    m.extend_from_slice(cosigner.as_bytes());
    m.extend_from_slice(&timestamp.to_be_bytes());
    m.push(origin.len() as u8);
    m.extend_from_slice(origin.as_bytes());
    m.extend_from_slice(&start.to_be_bytes());
    m.extend_from_slice(&end.to_be_bytes());
    m.extend_from_slice(hash.as_bytes());
    Some(m)
}

/// An ML-DSA-44 cosigner's public key.
#[derive(Clone)]
pub(crate) struct Key {
    name: String,
    id: u32,
    key: Box<VerifyingKey<MlDsa44>>,
}

impl Key {
    /// The key named `name` with the raw public key `raw`, whose key ID the
    /// key string states as `stated`.
    pub(crate) fn new(name: String, stated: u32, raw: &[u8]) -> Result<Key, KeyError> {
        if name.len() > 255 {
            return Err(KeyError::InvalidName(name));
        }
        let encoded =
            EncodedVerifyingKey::<MlDsa44>::try_from(raw).map_err(|_| KeyError::InvalidKey)?;
        let computed = typed_key_id(ALG, &name, raw);
        if stated != computed {
            return Err(KeyError::IdMismatch { stated, computed });
        }
        Ok(Key {
            name,
            id: computed,
            key: Box::new(VerifyingKey::decode(&encoded)),
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// Whether `sig` is this key's signature of `message`.
    pub(crate) fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        Signature::<MlDsa44>::try_from(sig)
            .is_ok_and(|s| self.key.verify_with_context(message, &[], &s))
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.name == other.name && self.id == other.id && self.key == other.key
    }
}

impl Eq for Key {}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MlDsa44Key({}+{:08x})", self.name, self.id)
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = vec![ALG];
        raw.extend_from_slice(&self.key.encode());
        write!(f, "{}+{:08x}+{}", self.name, self.id, b64::encode(raw))
    }
}

/// An ML-DSA-44 cosigner's private key. Its `Debug` output never shows it.
#[derive(Clone)]
pub(crate) struct Signer {
    name: String,
    id: u32,
    key: Box<SigningKey<MlDsa44>>,
}

impl Signer {
    /// The cosigner `name` from the 32-byte key generation seed `seed`.
    pub(crate) fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Signer, KeyError> {
        if !valid_name(name) || name.len() > 255 {
            return Err(KeyError::InvalidName(name.to_string()));
        }
        let key = Box::new(SigningKey::<MlDsa44>::from_seed(&(*seed).into()));
        let public = key.verifying_key().encode();
        Ok(Signer {
            name: name.to_string(),
            id: typed_key_id(ALG, name, &public),
            key,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// The signature of `message`, or `None` in the (vanishingly rare)
    /// case that FIPS 204's rejection sampling gives up.
    pub(crate) fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        let sig: Signature<MlDsa44> = self.key.try_sign(message).ok()?;
        Some(sig.encode().to_vec())
    }

    /// The matching public key.
    pub(crate) fn verifier(&self) -> Key {
        Key {
            name: self.name.clone(),
            id: self.id,
            key: Box::new(self.key.verifying_key()),
        }
    }

    /// `PRIVATE+KEY+<name>+<hex key ID>+base64(0x06 || seed)`.
    pub(crate) fn to_secret_string(&self) -> String {
        let mut raw = vec![ALG];
        raw.extend_from_slice(self.key.as_seed());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.id,
            b64::encode(raw)
        )
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MlDsa44Signer({}+{:08x}, secret hidden)",
            self.name, self.id
        )
    }
}
