//! C2SP tlog-cosignature: a witness's statement that a checkpoint is
//! consistent with every checkpoint of that log it has seen (and, with a
//! timestamp, that it is the largest one it had seen at that time). Logs
//! whose checkpoints carry a quorum of such cosignatures cannot show one
//! history to some readers and another to others (a split view).
//!
//! ```text
//! — <witness name> base64(key ID (4) || timestamp (8, big-endian) || signature)
//! ```
//!
//! Two signature types, told apart by the key's type byte:
//!
//! - **Ed25519, cosignature/v1** (`0x04`, 64-byte signature). It covers
//!
//!   ```text
//!   cosignature/v1\n
//!   time <timestamp, decimal>\n
//!   <the checkpoint's note text, final newline included>
//!   ```
//!
//! - **ML-DSA-44, subtree/v1** (`0x06`, 2420-byte signature), which the
//!   spec recommends for new witnesses: it covers a binary
//!   `cosigned_message` naming the witness, the origin, the size and the
//!   root ([`mldsa`]), not the extension lines.
//!
//! `key ID = SHA-256(name || 0x0A || type || public key)[:4]`. Key strings
//! are those of signed notes with the type byte: verifier
//! `<name>+<hex key ID>+base64(type || public key)`, signer
//! `PRIVATE+KEY+<name>+<hex key ID>+base64(type || 32-byte seed)`.
//! specs/witness.md.

pub(crate) mod error;
pub mod mldsa;

pub use error::CosignatureError;

use crate::b64;
use crate::checkpoint::{self, Checkpoint, CheckpointError};
use crate::note::{self, KeyError, Note, NoteError, SignerKey, VerifierKey, SIG_PREFIX};

/// The signature type byte of Ed25519 cosignature/v1 keys.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;

/// The signature type byte of ML-DSA-44 (subtree/v1) cosignature keys.
pub const ALG_ML_DSA_44: u8 = mldsa::ALG;

/// Bytes after the key ID in an Ed25519 cosignature line: timestamp and
/// signature.
pub(crate) const SIGNATURE_LEN: usize = 8 + 64;

/// Bytes after the key ID in an ML-DSA-44 cosignature line.
pub(crate) const ML_DSA_44_SIGNATURE_LEN: usize = 8 + mldsa::SIGNATURE_LEN;

/// A witness's signature algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// Ed25519, cosignature/v1 (type `0x04`).
    Ed25519,
    /// ML-DSA-44, subtree/v1 (type `0x06`).
    MlDsa44,
}

impl Algorithm {
    /// The algorithm of a witness key's signature type byte.
    fn of_type(alg: u8) -> Result<Algorithm, KeyError> {
        match alg {
            ALG_COSIGNATURE_V1 => Ok(Algorithm::Ed25519),
            ALG_ML_DSA_44 => Ok(Algorithm::MlDsa44),
            found => Err(KeyError::Algorithm {
                found,
                wanted: ALG_COSIGNATURE_V1,
            }),
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = String;

    /// `ed25519` or `ml-dsa-44`.
    fn from_str(s: &str) -> Result<Algorithm, String> {
        match s {
            "ed25519" => Ok(Algorithm::Ed25519),
            "ml-dsa-44" => Ok(Algorithm::MlDsa44),
            _ => Err(format!(
                "{s:?} is not a witness algorithm: ed25519 or ml-dsa-44"
            )),
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::MlDsa44 => "ml-dsa-44",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Key {
    Ed25519(VerifierKey),
    MlDsa44(mldsa::Key),
}

/// A witness's public key: a note verifier key of type `0x04` (Ed25519)
/// or `0x06` (ML-DSA-44).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessKey(Key);

impl WitnessKey {
    /// Parses `<name>+<hex key ID>+base64(type || public key)`.
    pub fn parse(s: &str) -> Result<WitnessKey, KeyError> {
        let (name, stated, alg, raw) = note::parse_key_parts(s.trim())?;
        match Algorithm::of_type(alg)? {
            Algorithm::Ed25519 => {
                VerifierKey::from_parts(alg, name, stated, &raw).map(Key::Ed25519)
            }
            Algorithm::MlDsa44 => mldsa::Key::new(name, stated, &raw).map(Key::MlDsa44),
        }
        .map(WitnessKey)
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        match &self.0 {
            Key::Ed25519(k) => k.name(),
            Key::MlDsa44(k) => k.name(),
        }
    }

    /// The 4-byte key ID.
    pub fn id(&self) -> u32 {
        match &self.0 {
            Key::Ed25519(k) => k.id(),
            Key::MlDsa44(k) => k.id(),
        }
    }

    /// The key's signature algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match &self.0 {
            Key::Ed25519(_) => Algorithm::Ed25519,
            Key::MlDsa44(_) => Algorithm::MlDsa44,
        }
    }

    /// The timestamp of `sig` (timestamp || signature) if it is this key's
    /// cosignature of the checkpoint note text `text`.
    fn verify(&self, text: &str, sig: &[u8]) -> Result<u64, CosignatureError> {
        let malformed = || CosignatureError::Malformed(self.name().to_string());
        let want = match self.0 {
            Key::Ed25519(_) => SIGNATURE_LEN,
            Key::MlDsa44(_) => ML_DSA_44_SIGNATURE_LEN,
        };
        if sig.len() != want {
            return Err(malformed());
        }
        let (time, sig) = sig.split_at(8);
        let time = u64::from_be_bytes(time.try_into().map_err(|_| malformed())?);
        if time > i64::MAX as u64 {
            return Err(malformed());
        }
        let verified = match &self.0 {
            Key::Ed25519(k) => k.verify(&message(text, time), sig),
            Key::MlDsa44(k) => k.verify(&mldsa_message(k.name(), text, time)?, sig),
        };
        if !verified {
            return Err(CosignatureError::Invalid(self.name().to_string()));
        }
        Ok(time)
    }
}

impl std::fmt::Display for WitnessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Key::Ed25519(k) => k.fmt(f),
            Key::MlDsa44(k) => k.fmt(f),
        }
    }
}

#[derive(Clone, Debug)]
enum Signer {
    Ed25519(Box<SignerKey>),
    MlDsa44(mldsa::Signer),
}

/// A witness's private key: a note signer key of type `0x04` (Ed25519) or
/// `0x06` (ML-DSA-44). Its `Debug` output never shows the key.
#[derive(Clone, Debug)]
pub struct WitnessSigner(Signer);

impl WitnessSigner {
    /// An Ed25519 witness named `name` from a 32-byte seed (the caller
    /// brings the randomness).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<WitnessSigner, KeyError> {
        WitnessSigner::from_seed_with(Algorithm::Ed25519, name, seed)
    }

    /// A witness of algorithm `alg` named `name` from a 32-byte seed (for
    /// ML-DSA-44, FIPS 204's key generation seed).
    pub fn from_seed_with(
        alg: Algorithm,
        name: &str,
        seed: &[u8; 32],
    ) -> Result<WitnessSigner, KeyError> {
        Ok(WitnessSigner(match alg {
            Algorithm::Ed25519 => Signer::Ed25519(Box::new(SignerKey::from_seed_typed(
                ALG_COSIGNATURE_V1,
                name,
                seed,
            )?)),
            Algorithm::MlDsa44 => Signer::MlDsa44(mldsa::Signer::from_seed(name, seed)?),
        }))
    }

    /// Parses `PRIVATE+KEY+<name>+<hex key ID>+base64(type || seed)`.
    pub fn parse(s: &str) -> Result<WitnessSigner, KeyError> {
        let shape = KeyError::Malformed("PRIVATE+KEY+<name>+<key id>+<base64 key>");
        let rest = s.trim().strip_prefix("PRIVATE+KEY+").ok_or(shape)?;
        let (name, stated, alg, seed) = note::parse_key_parts(rest)?;
        let alg = Algorithm::of_type(alg)?;
        let seed: [u8; 32] = seed.try_into().map_err(|_| KeyError::InvalidKey)?;
        let signer = WitnessSigner::from_seed_with(alg, &name, &seed)?;
        let computed = signer.verifier().id();
        if computed != stated {
            return Err(KeyError::IdMismatch { stated, computed });
        }
        Ok(signer)
    }

    /// The signer key string (secret: store with mode 0600, never log).
    pub fn to_secret_string(&self) -> String {
        match &self.0 {
            Signer::Ed25519(k) => k.to_secret_string(),
            Signer::MlDsa44(k) => k.to_secret_string(),
        }
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        match &self.0 {
            Signer::Ed25519(k) => k.name(),
            Signer::MlDsa44(k) => k.name(),
        }
    }

    /// The matching public key.
    pub fn verifier(&self) -> WitnessKey {
        WitnessKey(match &self.0 {
            Signer::Ed25519(k) => Key::Ed25519(k.verifier()),
            Signer::MlDsa44(k) => Key::MlDsa44(k.verifier()),
        })
    }

    /// The cosignature line (with its newline) of the checkpoint note text
    /// `text` at `time` (seconds since the epoch, at most 2^63-1).
    pub fn cosign(&self, text: &str, time: u64) -> Result<String, CosignatureError> {
        if text.lines().count() < 3 || !text.ends_with('\n') || time > i64::MAX as u64 {
            return Err(CosignatureError::NotCheckpoint);
        }
        let (id, sig) = match &self.0 {
            Signer::Ed25519(k) => (
                k.verifier().id(),
                k.sign_bytes(&message(text, time)).to_vec(),
            ),
            Signer::MlDsa44(k) => (
                k.id(),
                k.sign(&mldsa_message(k.name(), text, time)?)
                    .ok_or(CosignatureError::NotCheckpoint)?,
            ),
        };
        let mut raw = id.to_be_bytes().to_vec();
        raw.extend_from_slice(&time.to_be_bytes());
        raw.extend_from_slice(&sig);
        Ok(format!(
            "{SIG_PREFIX}{} {}\n",
            self.name(),
            b64::encode(raw)
        ))
    }
}

/// The `cosigned_message` an ML-DSA-44 witness `name` signs at `time` for
/// the checkpoint whose note text is `text` (start 0, end its size).
fn mldsa_message(name: &str, text: &str, time: u64) -> Result<Vec<u8>, CosignatureError> {
    let cp = Checkpoint::parse_body(text).map_err(|_| CosignatureError::NotCheckpoint)?;
    mldsa::cosigned_message(name, time, &cp.origin, 0, cp.size, &cp.root)
        .ok_or(CosignatureError::NotCheckpoint)
}

/// The message a cosignature signs: `cosignature/v1\ntime <time>\n<text>`.
pub fn message(text: &str, time: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {time}\n{text}").into_bytes()
}

/// One verified cosignature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cosignature {
    /// The witness's name.
    pub witness: String,
    /// When the witness cosigned, seconds since the epoch; 0 when it
    /// stated no time (an ML-DSA-44 cosignature may leave it out).
    pub time: u64,
}

/// The cosignatures on the signed note `signed` by any of `witnesses`, each
/// verified. Lines by other keys (the log's own signature among them) are
/// left alone; a line with a known witness's name and key ID that does not
/// verify, or a second one by the same witness, is an error.
pub fn verify(
    signed: &[u8],
    witnesses: &[WitnessKey],
) -> Result<Vec<Cosignature>, CosignatureError> {
    let note = Note::parse(signed)?;
    verify_note(&note, witnesses)
}

pub(crate) fn verify_note(
    note: &Note,
    witnesses: &[WitnessKey],
) -> Result<Vec<Cosignature>, CosignatureError> {
    let mut found: Vec<Cosignature> = Vec::new();
    for sig in &note.signatures {
        let Some(key) = witnesses
            .iter()
            .find(|k| k.name() == sig.name && k.id() == sig.id)
        else {
            continue;
        };
        if found.iter().any(|c| c.witness == key.name()) {
            return Err(CosignatureError::Duplicate(key.name().to_string()));
        }
        let time = key.verify(&note.text, &sig.signature)?;
        found.push(Cosignature {
            witness: key.name().to_string(),
            time,
        });
    }
    Ok(found)
}

/// Which witnesses a reader trusts, and how many of them must have cosigned
/// a checkpoint before it is believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// The witnesses' keys.
    pub witnesses: Vec<WitnessKey>,
    /// How many distinct witnesses must have cosigned (0: none).
    pub quorum: usize,
}

impl Policy {
    /// A policy asking for `quorum` of `witnesses`, or for all of them if
    /// `quorum` is `None`. A quorum larger than the witnesses is refused.
    pub fn new(witnesses: Vec<WitnessKey>, quorum: Option<usize>) -> Result<Policy, String> {
        let quorum = quorum.unwrap_or(witnesses.len());
        if quorum > witnesses.len() {
            return Err(format!(
                "a quorum of {quorum} needs at least {quorum} witness keys, not {}",
                witnesses.len()
            ));
        }
        Ok(Policy { witnesses, quorum })
    }

    /// The verified cosignatures on `signed`, if at least the quorum of them.
    pub fn check(&self, signed: &[u8]) -> Result<Vec<Cosignature>, CosignatureError> {
        self.check_note(&Note::parse(signed)?)
    }

    pub(crate) fn check_note(&self, note: &Note) -> Result<Vec<Cosignature>, CosignatureError> {
        let found = verify_note(note, &self.witnesses)?;
        if found.len() < self.quorum {
            let missing: Vec<&str> = self
                .witnesses
                .iter()
                .map(|w| w.name())
                .filter(|n| !found.iter().any(|c| c.witness == *n))
                .collect();
            return Err(CosignatureError::Quorum {
                have: found.len(),
                need: self.quorum,
                missing: missing.join(", "),
            });
        }
        Ok(found)
    }
}

/// The cosignatures on the signed checkpoint `signed` of the log whose key
/// is `log`: those by the witnesses of `policy` verified (reaching its
/// quorum), and the names on every other line that is not the log's.
pub fn witnessing(
    signed: &[u8],
    log: &VerifierKey,
    policy: &Policy,
) -> Result<Witnessing, CosignatureError> {
    witnessing_of(&Note::parse(signed)?, log, policy)
}

pub(crate) fn witnessing_of(
    note: &Note,
    log: &VerifierKey,
    policy: &Policy,
) -> Result<Witnessing, CosignatureError> {
    let cosigned = policy.check_note(note)?;
    let other_log_keys = note
        .signatures
        .iter()
        .filter(|s| s.name == log.name() && s.id != log.id())
        .map(|s| s.id)
        .collect();
    let unchecked = note
        .signatures
        .iter()
        .filter(|s| s.name != log.name())
        .filter(|s| {
            !policy
                .witnesses
                .iter()
                .any(|w| w.name() == s.name && w.id() == s.id)
        })
        .map(|s| s.name.clone())
        .collect();
    Ok(Witnessing {
        cosigned,
        unchecked,
        other_log_keys,
    })
}

/// What a checkpoint's cosignatures showed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Witnessing {
    /// Cosignatures by the witnesses given, verified.
    pub cosigned: Vec<Cosignature>,
    /// Cosigners whose keys were not given: their lines were not checked.
    pub unchecked: Vec<String>,
    /// Key IDs of the log's other keys that signed it too (a log rotating
    /// its key signs with both: specs/keys.md); not checked.
    pub other_log_keys: Vec<u32>,
}

impl Witnessing {
    /// One line for a reader, or `None` if the checkpoint carries no
    /// cosignature at all (nor a signature by another key of the log).
    pub fn summary(&self) -> Option<String> {
        if self.cosigned.is_empty() && self.unchecked.is_empty() && self.other_log_keys.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        if !self.cosigned.is_empty() {
            let who: Vec<String> = self
                .cosigned
                .iter()
                .map(|c| {
                    if c.time == 0 {
                        return format!("{} (no time stated)", c.witness);
                    }
                    let at = c
                        .time
                        .checked_mul(1_000_000_000)
                        .and_then(crate::timestamp::Timestamp::from_unix_nanos)
                        .map_or_else(|| c.time.to_string(), |t| t.canonical());
                    format!("{} at {at}", c.witness)
                })
                .collect();
            parts.push(format!("cosigned by {}", who.join(", ")));
        }
        if !self.unchecked.is_empty() {
            parts.push(format!(
                "not checked (give their keys with --witness): {}",
                self.unchecked.join(", ")
            ));
        }
        if !self.other_log_keys.is_empty() {
            let ids: Vec<String> = self
                .other_log_keys
                .iter()
                .map(|id| format!("{id:08x}"))
                .collect();
            parts.push(format!(
                "also signed by the log's other key {} (a key rotation; not checked)",
                ids.join(", ")
            ));
        }
        Some(format!("witnesses    {}", parts.join("; ")))
    }

    /// The same as JSON: `{"cosigned": [{"witness", "time"}], "unchecked":
    /// [..], "other_log_keys": ["<hex key ID>", ..]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "cosigned": self.cosigned.iter().map(|c| serde_json::json!({"witness": c.witness, "time": c.time})).collect::<Vec<_>>(),
            "unchecked": self.unchecked,
            "other_log_keys": self.other_log_keys.iter().map(|id| format!("{id:08x}")).collect::<Vec<_>>(),
        })
    }
}

/// `signed` with the signature lines of `lines` that it does not carry yet
/// appended (a log adding the cosignatures a witness returned). Lines that
/// do not parse as signature lines are an error; nothing is verified here.
pub fn append_lines(signed: &str, lines: &str) -> Result<String, NoteError> {
    let mut out = signed.to_string();
    for line in lines.lines() {
        note::parse_signature_line(line)?;
        if !out.lines().any(|l| l == line) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

/// [`checkpoint::open`], for files in which every byte must be accounted
/// for (evidence, chain bundles, exports): the log's signature once (a note
/// verifier refuses it twice), and besides it only cosignature lines (of
/// either type's length) and Ed25519 signatures by the log's other keys (a
/// key rotation). The cosignatures by the witnesses of `policy` are
/// verified and must reach its quorum; the other lines are named as not
/// checked (their keys were not given).
pub fn open_witnessed(
    signed: &[u8],
    key: &VerifierKey,
    policy: &Policy,
) -> Result<(Checkpoint, Witnessing), CheckpointError> {
    let cp = checkpoint::open(signed, key)?;
    let n = Note::parse(signed)?;
    let witnessing = witnessing_of(&n, key, policy)?;
    if let Some(sig) = n.signatures.iter().find(|s| {
        let other_log_key = s.name == key.name() && s.id != key.id();
        let cosignature_len = [SIGNATURE_LEN, ML_DSA_44_SIGNATURE_LEN].contains(&s.signature.len());
        (witnessing.unchecked.contains(&s.name) && !cosignature_len)
            || (other_log_key && s.signature.len() != note::ED25519_SIGNATURE_LEN)
    }) {
        return Err(CheckpointError::Foreign(sig.name.clone()));
    }
    Ok((cp, witnessing))
}
