//! RFC 9162 §2.1.1 hashing: `MTH({}) = SHA-256()`, leaf `SHA-256(0x00 || entry)`,
//! interior node `SHA-256(0x01 || left || right)`.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Length of a SHA-256 hash in bytes.
pub const HASH_SIZE: usize = 32;

/// A SHA-256 Merkle tree hash (a leaf hash, an interior node hash or a root).
///
/// Equality is constant-time, so comparing a computed root with an expected
/// one leaks nothing about where they differ.
#[derive(Clone, Copy, Default)]
pub struct Hash(pub [u8; HASH_SIZE]);

impl Hash {
    /// The root of the empty tree: `SHA-256("")`.
    pub fn empty() -> Hash {
        Hash(Sha256::digest([]).into())
    }

    /// Reads a hash from exactly 32 bytes; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        <[u8; HASH_SIZE]>::try_from(bytes).ok().map(Hash)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_SIZE] {
        &self.0
    }

    /// Lower-case hex, as in logs and test vectors.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Standard base64 with padding, as in checkpoints and tlog-proof files.
    pub fn to_base64(&self) -> String {
        crate::b64::encode(self.0)
    }

    /// Parses standard base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Option<Hash> {
        crate::b64::decode(text).and_then(|b| Hash::from_slice(&b))
    }
}

impl PartialEq for Hash {
    fn eq(&self, other: &Hash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Hash {}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// An entry and its leaf hash, always computed from its bytes (there is no
/// way to pair bytes with a hash given from outside).
#[derive(Clone, Debug)]
pub struct HashedEntry {
    bytes: Vec<u8>,
    leaf: Hash,
}

impl HashedEntry {
    /// Hashes `bytes` ([`leaf_hash`]).
    pub fn new(bytes: Vec<u8>) -> HashedEntry {
        let leaf = leaf_hash(&bytes);
        HashedEntry { bytes, leaf }
    }

    /// The entry.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `SHA-256(0x00 || entry)`.
    pub fn leaf_hash(&self) -> Hash {
        self.leaf
    }
}

/// An entry written piece by piece and hashed as it grows, so an entry whose
/// end is only known later (a leaf's `received_at`) costs only that end to
/// finish.
#[derive(Clone)]
pub struct EntryWriter {
    bytes: Vec<u8>,
    state: Sha256,
}

impl EntryWriter {
    /// An empty entry with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> EntryWriter {
        let mut state = Sha256::new();
        state.update([0x00]);
        EntryWriter {
            bytes: Vec::with_capacity(capacity),
            state,
        }
    }

    /// Appends what `write` pushes onto the bytes.
    pub fn append(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let from = self.bytes.len();
        write(&mut self.bytes);
        self.state.update(&self.bytes[from..]);
    }

    /// Appends what `write` pushes onto the bytes, unless it answers
    /// `None`: then the bytes it pushed are dropped and nothing is hashed.
    pub fn try_append(&mut self, write: impl FnOnce(&mut Vec<u8>) -> Option<()>) -> Option<()> {
        let from = self.bytes.len();
        if write(&mut self.bytes).is_none() {
            self.bytes.truncate(from);
            return None;
        }
        self.state.update(&self.bytes[from..]);
        Some(())
    }

    /// The bytes so far.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The entry with its leaf hash.
    pub fn finish(self) -> HashedEntry {
        HashedEntry {
            bytes: self.bytes,
            leaf: Hash(self.state.finalize().into()),
        }
    }
}

impl AsRef<[u8]> for HashedEntry {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::fmt::Debug for EntryWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EntryWriter({} bytes)", self.bytes.len())
    }
}

/// The leaf hash of an entry: `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    Hash(h.finalize().into())
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// Reads proof hashes, one standard-base64 hash per line (as tlog-proof and
/// consistency proof files carry them); `None` if any line is not one.
pub fn parse_hash_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Option<Vec<Hash>> {
    lines.map(Hash::from_base64).collect()
}

/// Appends proof hashes to `out`, one base64 hash and newline each.
pub fn write_hash_lines(out: &mut String, hashes: &[Hash]) {
    for h in hashes {
        out.push_str(&h.to_base64());
        out.push('\n');
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}
