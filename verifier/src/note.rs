//! C2SP signed-note with Ed25519 keys (signature type `0x01`).
//!
//! ```text
//! <text, one or more lines, each ending in \n>
//! \n
//! — <key name> base64(key ID (4 bytes, big-endian) || Ed25519 signature)\n
//! ```
//!
//! The signature covers the text including its final newline.
//! `key ID = SHA-256(key name || 0x0A || 0x01 || public key)[:4]`.
//! Key strings follow golang.org/x/mod/sumdb/note:
//! verifier `<name>+<hex key ID>+base64(0x01 || public key)`,
//! signer `PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 || 32-byte seed)`.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::b64;

/// The signature type byte of Ed25519 note signatures.
pub const ALG_ED25519: u8 = 0x01;

/// Bytes of an Ed25519 signature, after the key ID on a signature line.
pub const ED25519_SIGNATURE_LEN: usize = 64;

/// Most signature lines a note may carry (the spec asks for at least 16).
pub const MAX_SIGNATURES: usize = 100;

pub(crate) const SIG_PREFIX: &str = "\u{2014} ";

/// Why a key string was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The string does not have the `name+id+key` shape.
    #[error("malformed key string: expected {0}")]
    Malformed(&'static str),
    /// The key name is empty or has a space or '+'.
    #[error("invalid key name {0:?}: must be non-empty with no spaces or '+'")]
    InvalidName(String),
    /// The signature type byte is not the one this kind of key has
    /// (0x01: a log's Ed25519 key; 0x04 or 0x06: a witness's
    /// cosignature key, Ed25519 or ML-DSA-44).
    #[error("key of signature type 0x{found:02x} where one of type 0x{wanted:02x} was wanted (0x01: a log's key; 0x04 or 0x06: a witness's)")]
    Algorithm {
        /// The type byte the key string has.
        found: u8,
        /// The type byte wanted here.
        wanted: u8,
    },
    /// The key bytes are not a valid key of the key's signature type (an
    /// Ed25519 key of 32 bytes, an ML-DSA-44 key of 1312).
    #[error("invalid key bytes for the key's signature type")]
    InvalidKey,
    /// The key ID in the string is not the one the name and key give.
    #[error("key ID {stated:08x} does not match the key (computed {computed:08x})")]
    IdMismatch {
        /// The ID written in the string.
        stated: u32,
        /// The ID computed from name and key.
        computed: u32,
    },
}

/// Why a signed note was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    /// Not UTF-8.
    #[error("note is not valid UTF-8")]
    NotUtf8,
    /// A control character other than newline.
    #[error("note contains control character 0x{0:02x}")]
    ControlCharacter(u8),
    /// No blank line separating text and signatures, or no final newline.
    #[error("note has no text, blank line and signature lines")]
    Malformed,
    /// A signature line that does not parse.
    #[error("malformed signature line {0:?}")]
    BadSignatureLine(String),
    /// More signature lines than [`MAX_SIGNATURES`].
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// A signature by a known key (name and ID match) that does not verify.
    #[error("signature by {0} does not verify")]
    InvalidSignature(String),
    /// The same known key signed twice.
    #[error("note has two signatures by {0}")]
    DuplicateSignature(String),
    /// No signature by any of the given keys.
    #[error("note has no signature by a known key (wanted {0})")]
    NoKnownSignature(String),
    /// Text to be signed is not a valid note text.
    #[error(
        "cannot sign: text must be non-empty, end in a newline and have no control characters"
    )]
    UnsignableText,
    /// No signer key was given, or one key was given twice.
    #[error("cannot sign: no signer key was given, or one key was given twice")]
    Signers,
}

pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// `SHA-256(name || 0x0A || 0x01 || public key)[:4]`, big-endian.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    typed_key_id(ALG_ED25519, name, public_key)
}

/// `SHA-256(name || 0x0A || alg || public key)[:4]`, big-endian: the key
/// ID of a key of signature type `alg`.
pub(crate) fn typed_key_id(alg: u8, name: &str, public_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', alg]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Splits `name+hexid+base64(type || key)` (after any prefix) and checks
/// the name and the ID's form: the name, the stated key ID, the signature
/// type byte and the key bytes, of any length.
pub(crate) fn parse_key_parts(s: &str) -> Result<(String, u32, u8, Vec<u8>), KeyError> {
    // The base64 key may itself contain '+', so split off two fields only.
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(KeyError::Malformed("<name>+<key id>+<base64 key>"));
    };
    if !valid_name(name) {
        return Err(KeyError::InvalidName(name.to_string()));
    }
    if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyError::Malformed("an 8-digit hex key id"));
    }
    let stated = u32::from_str_radix(id_hex, 16).map_err(|_| KeyError::Malformed("hex key id"))?;
    let mut raw = b64::decode(key_b64).ok_or(KeyError::Malformed("base64 key"))?;
    if raw.is_empty() {
        return Err(KeyError::InvalidKey);
    }
    let alg = raw.remove(0);
    Ok((name.to_string(), stated, alg, raw))
}

/// [`parse_key_parts`] for a 32-byte key of signature type `alg`.
fn parse_typed_key_parts(s: &str, alg: u8) -> Result<(String, u32, [u8; 32]), KeyError> {
    let (name, stated, found, key) = parse_key_parts(s)?;
    if found != alg {
        return Err(KeyError::Algorithm { found, wanted: alg });
    }
    let key: [u8; 32] = key.try_into().map_err(|_| KeyError::InvalidKey)?;
    Ok((name, stated, key))
}

/// A public key that checks note signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    alg: u8,
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl VerifierKey {
    /// Parses `<name>+<hex key ID>+base64(0x01 || public key)`.
    pub fn parse(s: &str) -> Result<VerifierKey, KeyError> {
        VerifierKey::parse_typed(s, ALG_ED25519)
    }

    /// Parses a key string of signature type `alg`.
    pub(crate) fn parse_typed(s: &str, alg: u8) -> Result<VerifierKey, KeyError> {
        let (name, stated, raw) = parse_typed_key_parts(s.trim(), alg)?;
        VerifierKey::from_parts(alg, name, stated, &raw)
    }

    /// The Ed25519 key of signature type `alg` named `name` with the raw
    /// public key `raw`, whose key string states the key ID `stated`
    /// ([`parse_key_parts`]).
    pub(crate) fn from_parts(
        alg: u8,
        name: String,
        stated: u32,
        raw: &[u8],
    ) -> Result<VerifierKey, KeyError> {
        let raw: &[u8; 32] = raw.try_into().map_err(|_| KeyError::InvalidKey)?;
        let key = VerifyingKey::from_bytes(raw).map_err(|_| KeyError::InvalidKey)?;
        let computed = typed_key_id(alg, &name, raw);
        if stated != computed {
            return Err(KeyError::IdMismatch { stated, computed });
        }
        Ok(VerifierKey {
            alg,
            name,
            id: computed,
            key,
        })
    }

    /// The key name (for a log, its origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key ID.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Whether `sig` is this key's Ed25519 signature of `text`.
    pub(crate) fn verify(&self, text: &[u8], sig: &[u8]) -> bool {
        Signature::from_slice(sig).is_ok_and(|s| self.key.verify(text, &s).is_ok())
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = vec![self.alg];
        raw.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, b64::encode(raw))
    }
}

/// A private key that signs notes. Its `Debug` output never shows the key.
#[derive(Clone)]
pub struct SignerKey {
    alg: u8,
    name: String,
    id: u32,
    key: SigningKey,
}

impl SignerKey {
    /// A signer named `name` from a 32-byte Ed25519 seed (the caller brings
    /// the randomness).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<SignerKey, KeyError> {
        SignerKey::from_seed_typed(ALG_ED25519, name, seed)
    }

    /// [`SignerKey::from_seed`] for a key of signature type `alg`.
    pub(crate) fn from_seed_typed(
        alg: u8,
        name: &str,
        seed: &[u8; 32],
    ) -> Result<SignerKey, KeyError> {
        if !valid_name(name) {
            return Err(KeyError::InvalidName(name.to_string()));
        }
        let key = SigningKey::from_bytes(seed);
        let id = typed_key_id(alg, name, key.verifying_key().as_bytes());
        Ok(SignerKey {
            alg,
            name: name.to_string(),
            id,
            key,
        })
    }

    /// Parses `PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 || seed)`.
    pub fn parse(s: &str) -> Result<SignerKey, KeyError> {
        SignerKey::parse_typed(s, ALG_ED25519)
    }

    /// Parses a signer key string of signature type `alg`.
    pub(crate) fn parse_typed(s: &str, alg: u8) -> Result<SignerKey, KeyError> {
        let rest = s
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(KeyError::Malformed(
                "PRIVATE+KEY+<name>+<key id>+<base64 key>",
            ))?;
        let (name, stated, seed) = parse_typed_key_parts(rest, alg)?;
        let signer = SignerKey::from_seed_typed(alg, &name, &seed)?;
        if signer.id != stated {
            return Err(KeyError::IdMismatch {
                stated,
                computed: signer.id,
            });
        }
        Ok(signer)
    }

    /// The signer key string (secret: store with mode 0600, never log).
    pub fn to_secret_string(&self) -> String {
        let mut raw = vec![self.alg];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.id,
            b64::encode(raw)
        )
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Ed25519 signature of `message` (for formats other than notes
    /// that the log signs: COSE receipts).
    pub(crate) fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// The matching public key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            alg: self.alg,
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }
}

impl std::fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignerKey({}+{:08x}, secret hidden)", self.name, self.id)
    }
}

/// One signature line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name on the line.
    pub name: String,
    /// The key ID (first 4 bytes of the decoded signature).
    pub id: u32,
    /// The signature bytes after the key ID.
    pub signature: Vec<u8>,
}

/// A note split into its text and signature lines (not yet verified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The signed text, with its final newline.
    pub text: String,
    /// The signature lines in order.
    pub signatures: Vec<NoteSignature>,
}

fn check_chars(text: &str) -> Result<(), NoteError> {
    match text.bytes().find(|&b| b < 0x20 && b != b'\n') {
        Some(b) => Err(NoteError::ControlCharacter(b)),
        None => Ok(()),
    }
}

impl Note {
    /// Splits a signed note at its last blank line and parses the signatures.
    pub fn parse(msg: &[u8]) -> Result<Note, NoteError> {
        let msg = std::str::from_utf8(msg).map_err(|_| NoteError::NotUtf8)?;
        check_chars(msg)?;
        if !msg.ends_with('\n') {
            return Err(NoteError::Malformed);
        }
        let split = msg.rfind("\n\n").ok_or(NoteError::Malformed)?;
        let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
        let mut signatures = Vec::new();
        for line in sigs.lines() {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            signatures.push(parse_signature_line(line)?);
        }
        if signatures.is_empty() {
            return Err(NoteError::Malformed);
        }
        Ok(Note {
            text: text.to_string(),
            signatures,
        })
    }
}

/// Parses one signature line (`— <name> <base64>`, without its newline):
/// its key name, key ID and signature bytes, not verified.
pub fn parse_signature_line(line: &str) -> Result<NoteSignature, NoteError> {
    let bad = || NoteError::BadSignatureLine(line.to_string());
    let rest = line.strip_prefix(SIG_PREFIX).ok_or_else(bad)?;
    let (name, sig_b64) = rest.split_once(' ').ok_or_else(bad)?;
    if !valid_name(name) {
        return Err(bad());
    }
    let raw = b64::decode(sig_b64).ok_or_else(bad)?;
    if raw.len() < 5 {
        return Err(bad());
    }
    Ok(NoteSignature {
        name: name.to_string(),
        id: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
        signature: raw[4..].to_vec(),
    })
}

/// Parses a signed note and verifies it against `keys`: every signature by a
/// known key must verify, at least one must be present, and signatures by
/// unknown keys are ignored. Returns the note.
pub fn open(msg: &[u8], keys: &[&VerifierKey]) -> Result<Note, NoteError> {
    let note = Note::parse(msg)?;
    let mut seen: Vec<&VerifierKey> = Vec::new();
    for sig in &note.signatures {
        let Some(key) = keys.iter().find(|k| k.name == sig.name && k.id == sig.id) else {
            continue;
        };
        if seen.contains(key) {
            return Err(NoteError::DuplicateSignature(key.name.clone()));
        }
        if !key.verify(note.text.as_bytes(), &sig.signature) {
            return Err(NoteError::InvalidSignature(key.name.clone()));
        }
        seen.push(key);
    }
    if seen.is_empty() {
        let wanted: Vec<String> = keys
            .iter()
            .map(|k| format!("{}+{:08x}", k.name, k.id))
            .collect();
        return Err(NoteError::NoKnownSignature(wanted.join(", ")));
    }
    Ok(note)
}

/// Signs `text` (which must end in a newline) and returns the signed note.
pub fn sign(text: &str, signer: &SignerKey) -> Result<String, NoteError> {
    sign_by(text, std::slice::from_ref(signer))
}

/// Signs `text` with each of `signers`, one signature line each in that
/// order (a log signing with its current and its next key while it rotates
/// keys: specs/keys.md).
pub fn sign_by(text: &str, signers: &[SignerKey]) -> Result<String, NoteError> {
    if text.is_empty() || !text.ends_with('\n') || check_chars(text).is_err() {
        return Err(NoteError::UnsignableText);
    }
    let twice = |i: usize| {
        signers[..i]
            .iter()
            .any(|s| s.id == signers[i].id && s.name == signers[i].name)
    };
    if signers.is_empty() || (0..signers.len()).any(twice) {
        return Err(NoteError::Signers);
    }
    let mut out = format!("{text}\n");
    for signer in signers {
        let mut raw = signer.id.to_be_bytes().to_vec();
        raw.extend_from_slice(&signer.key.sign(text.as_bytes()).to_bytes());
        out.push_str(&format!(
            "{SIG_PREFIX}{} {}\n",
            signer.name,
            b64::encode(raw)
        ));
    }
    Ok(out)
}

/// Verifier keys one a line (keys.md), blank lines skipped; the first
/// line that is not one is the error, from 1.
pub fn parse_key_lines(data: &[u8]) -> Result<Vec<VerifierKey>, usize> {
    let text = std::str::from_utf8(data).map_err(|_| 1usize)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| VerifierKey::parse(l).map_err(|_| i + 1))
        .collect()
}
