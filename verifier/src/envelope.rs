//! The ledger envelope: the exact leaf bytes of a decision (specs/record.md).
//!
//! ```text
//! {                               deterministic CBOR map, keys in this order
//!   "v": 1,
//!   "record": { … },             the decision record, deterministic CBOR
//!   "received_at": 0("…Z"),      ledger clock, RFC 3339 UTC (tag 0)
//!   "submitted_by": "…",         the authenticated enforcer id
//!   "enforcer_signature": 18([…]) only for a record its enforcer signed:
//!                                 COSE_Sign1, payload detached (the record)
//! }
//! ```
//!
//! The keys sort in that order (shorter encodings first), so a signed
//! leaf is an unsigned one with a map of five and the signature appended.

use std::ops::Range;

use ciborium::Value;

use crate::cbor::{self, head, text_into, CborError};
use crate::enforcer_signature::{EnforcerSignature, SignatureError};
use crate::hash::{EntryWriter, HashedEntry};

/// The envelope version this code writes and reads.
pub const VERSION: u64 = 1;

/// Why leaf bytes are not a valid envelope.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not one CBOR item.
    #[error(transparent)]
    Cbor(#[from] CborError),
    /// Valid CBOR, but not in deterministic encoding.
    #[error("leaf is not in deterministic CBOR encoding")]
    NotDeterministic,
    /// A field is missing or of the wrong type.
    #[error("envelope field {0}: missing or wrong type")]
    Field(&'static str),
    /// A version this code does not know.
    #[error("envelope version {0} is not supported")]
    Version(u64),
    /// The enforcer signature is not one of this profile.
    #[error("envelope field enforcer_signature: {0}")]
    Signature(SignatureError),
}

/// A decoded leaf envelope.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// The decision record (a CBOR map).
    pub record: Value,
    /// When the ledger received it (RFC 3339 UTC text).
    pub received_at: String,
    /// The authenticated enforcer that submitted it.
    pub submitted_by: String,
    /// The enforcer's signature of the record, if it signed it.
    pub enforcer_signature: Option<EnforcerSignature>,
}

/// The leaf bytes from a record already in deterministic CBOR, without
/// decoding it again: the four keys sort as `v`, `record`, `received_at`,
/// `submitted_by` (shorter encodings first), so the pieces are concatenated
/// in that order.
pub fn encode_parts(record_cbor: &[u8], received_at: &str, submitted_by: &str) -> Vec<u8> {
    encode_signed_parts(record_cbor, received_at, submitted_by, None)
}

/// [`encode_parts`] for a record its enforcer may have signed.
pub fn encode_signed_parts(
    record_cbor: &[u8],
    received_at: &str,
    submitted_by: &str,
    signature: Option<&EnforcerSignature>,
) -> Vec<u8> {
    let signature = signature.map(EnforcerSignature::encode_detached);
    let mut out = Vec::with_capacity(
        record_cbor.len() + TAIL_ROOM + submitted_by.len() + signature.as_ref().map_or(0, Vec::len),
    );
    write_head(&mut out, signature.is_some(), |out| {
        out.extend_from_slice(record_cbor);
        Some(())
    });
    write_tail(received_at, submitted_by, signature.as_deref(), &mut out);
    out
}

/// What [`write_head`] writes before the record, after the map's head:
/// `"v": 1`, the `"record"` key.
const BEFORE_RECORD: &[u8] = b"\x61v\x01\x66record";
/// The map's head: four entries, or five with an enforcer signature.
const MAP_OF_4: u8 = 0xa4;
const MAP_OF_5: u8 = 0xa5;
/// The key of the enforcer signature.
const SIGNATURE_KEY: &str = "enforcer_signature";
/// What it writes after the record: the `"received_at"` key and tag 0.
const AFTER_RECORD: &[u8] = b"\x6breceived_at\xc0";

/// The `received_at` text of leaf bytes laid out as this module writes
/// them, read off the bytes without decoding the record (an audit reads it
/// from every leaf); `None` for anything else. It agrees with
/// [`Envelope::decode`] on every valid envelope.
pub fn received_at(leaf: &[u8]) -> Option<&str> {
    let (from, to) = received_at_span(leaf)?;
    std::str::from_utf8(leaf.get(from..to)?).ok()
}

/// Where the `received_at` text lies in `leaf` ([`received_at`]).
fn received_at_span(leaf: &[u8]) -> Option<(usize, usize)> {
    let (&map, rest) = leaf.split_first()?;
    if map != MAP_OF_4 && map != MAP_OF_5 {
        return None;
    }
    let rest = rest.strip_prefix(BEFORE_RECORD)?;
    let rest = rest
        .get(cbor::item_len(rest)?..)?
        .strip_prefix(AFTER_RECORD)?;
    let (len, at) = match *rest.first()? {
        b @ 0x60..=0x77 => (usize::from(b - 0x60), 1),
        0x78 => (usize::from(*rest.get(1)?), 2),
        _ => return None,
    };
    let from = leaf.len() - rest.len() + at;
    Some((from, from.checked_add(len)?))
}

/// The record's bytes (its CBOR item, as stored) in leaf bytes laid out as
/// this module writes them, found without decoding it; `None` for anything
/// else. Says nothing of the rest of the leaf.
pub fn record_bytes(leaf: &[u8]) -> Option<&[u8]> {
    let (&map, rest) = leaf.split_first()?;
    if map != MAP_OF_4 && map != MAP_OF_5 {
        return None;
    }
    let rest = rest.strip_prefix(BEFORE_RECORD)?;
    rest.get(..cbor::item_len(rest)?)
}

/// The `submitted_by` text of leaf bytes laid out as this module writes
/// them, read off the bytes without decoding the record (an audit looks
/// for the ledger's own records in every leaf); `None` for anything else.
/// It agrees with [`Envelope::decode`] on every valid envelope.
pub fn submitted_by(leaf: &[u8]) -> Option<&str> {
    let (_, end) = received_at_span(leaf)?;
    let rest = leaf.get(end..)?.strip_prefix(b"\x6csubmitted_by")?;
    match cbor::read_head(rest)? {
        (3, len, from) => {
            std::str::from_utf8(rest.get(from..from.checked_add(usize::try_from(len).ok()?)?)?).ok()
        }
        _ => None,
    }
}

/// The record's `decision_id` in leaf bytes laid out as this module writes
/// them, read off the bytes without decoding or checking the record (a
/// prune reads it from every leaf it removes); `None` where there is no
/// such text at the record's top level. It agrees with the id a checked
/// record gives on every valid envelope, and says nothing about others.
pub fn decision_id(leaf: &[u8]) -> Option<&str> {
    let (&map, rest) = leaf.split_first()?;
    if map != MAP_OF_4 && map != MAP_OF_5 {
        return None;
    }
    let rest = rest.strip_prefix(BEFORE_RECORD)?;
    let text = |bytes: &[u8]| match cbor::read_head(bytes)? {
        (3, len, at) => Some((at, at.checked_add(usize::try_from(len).ok()?)?)),
        _ => None,
    };
    let (major, fields, at) = cbor::read_head(rest)?;
    if major != 5 {
        return None;
    }
    let mut rest = rest.get(at..)?;
    for _ in 0..fields {
        let (from, to) = text(rest)?;
        let key = rest.get(from..to)?;
        rest = rest.get(to..)?;
        if key == b"decision_id" {
            let (from, to) = text(rest)?;
            return std::str::from_utf8(rest.get(from..to)?).ok();
        }
        rest = rest.get(cbor::item_len(rest)?..)?;
    }
    None
}

/// Follows `received_at` along a log's leaves in order, and counts the
/// leaves received before the leaf ahead of them: a ledger clock that went
/// back. Time windows are runs of leaves only where it never does
/// (specs/record.md, specs/export.md), so audits report it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceivedOrder {
    last: Option<crate::timestamp::Timestamp>,
    /// `last` as written: the leaves of one commit share it, and are not
    /// parsed again.
    last_text: String,
    /// Leaves received before the leaf ahead of them.
    pub back: u64,
    /// The first of them.
    pub first_back: Option<u64>,
}

impl ReceivedOrder {
    /// Leaf `index`, the next in log order; a leaf that is no envelope is
    /// passed over.
    pub fn push(&mut self, index: u64, leaf: &[u8]) {
        let Some(text) = received_at(leaf) else {
            return;
        };
        if self.last.is_some() && text == self.last_text {
            return;
        }
        let Some(t) = crate::timestamp::Timestamp::parse_text(text) else {
            return;
        };
        self.last_text.clear();
        self.last_text.push_str(text);
        if self.last.is_some_and(|last| t < last) {
            self.back += 1;
            self.first_back.get_or_insert(index);
        }
        self.last = Some(t);
    }

    /// What an audit says when the clock went back, if it did.
    pub fn warning(&self) -> Option<String> {
        let first = self.first_back?;
        Some(format!(
            "warning: leaf {first} was received before the leaf ahead of it ({} such leaves \
             in all): the ledger clock went back there. A time window across such a leaf is \
             not one run of leaves: exports across it are refused, and received_from / \
             received_to searches across it may miss decisions",
            self.back
        ))
    }
}

/// Bytes after the record besides `submitted_by`: its key, the
/// `received_at` key, tag and time, and text heads.
const TAIL_ROOM: usize = 64;

/// Writes the envelope up to the `received_at` text, the record being
/// what `record` appends; returns where the record is in `out`, or `None`
/// if `record` did. `signed`: the envelope will end with an enforcer
/// signature.
fn write_head(
    out: &mut Vec<u8>,
    signed: bool,
    record: impl FnOnce(&mut Vec<u8>) -> Option<()>,
) -> Option<Range<usize>> {
    out.push(if signed { MAP_OF_5 } else { MAP_OF_4 });
    out.extend_from_slice(BEFORE_RECORD);
    let start = out.len();
    record(out)?;
    let record = start..out.len();
    text_into("received_at", out);
    head(6, 0, out);
    Some(record)
}

/// `signature`: the detached COSE_Sign1, if the envelope has one.
fn write_tail(received_at: &str, submitted_by: &str, signature: Option<&[u8]>, out: &mut Vec<u8>) {
    text_into(received_at, out);
    text_into("submitted_by", out);
    text_into(submitted_by, out);
    if let Some(signature) = signature {
        text_into(SIGNATURE_KEY, out);
        out.extend_from_slice(signature);
    }
}

/// A leaf whose `received_at` is not known yet: the envelope up to it,
/// hashed so far. It is built where a record is checked, and finished by
/// whoever owns the ledger clock, which then hashes only the last bytes.
#[derive(Clone, Debug)]
pub struct LeafHead {
    entry: EntryWriter,
    record: Range<usize>,
    /// The enforcer signature to end the envelope with (detached form).
    signature: Option<Box<[u8]>>,
}

/// Equal heads have equal bytes (the hash state follows from them).
impl PartialEq for LeafHead {
    fn eq(&self, other: &LeafHead) -> bool {
        self.entry.bytes() == other.entry.bytes() && self.signature == other.signature
    }
}

impl LeafHead {
    /// The envelope of a record in deterministic CBOR, up to `received_at`.
    pub fn new(record_cbor: &[u8]) -> LeafHead {
        LeafHead::with_signature(record_cbor, None)
    }

    /// The envelope of a record its enforcer signed (the signature having
    /// been checked), up to `received_at`.
    pub fn signed(record_cbor: &[u8], signature: &EnforcerSignature) -> LeafHead {
        LeafHead::with_signature(record_cbor, Some(signature))
    }

    fn with_signature(record_cbor: &[u8], signature: Option<&EnforcerSignature>) -> LeafHead {
        let signature = signature.map(|s| s.encode_detached().into_boxed_slice());
        let mut entry = EntryWriter::with_capacity(record_cbor.len() + 2 * TAIL_ROOM);
        let mut record = 0..0;
        entry.append(|out| {
            // Copying never fails, so the range is always there.
            record = write_head(out, signature.is_some(), |out| {
                out.extend_from_slice(record_cbor);
                Some(())
            })
            .unwrap_or_default()
        });
        LeafHead {
            entry,
            record,
            signature,
        }
    }

    /// The envelope of the record that `record` appends in deterministic
    /// CBOR (about `size` bytes), written in place, with `signature` if its
    /// enforcer signed it (the caller verifies it and refuses the record
    /// if it does not verify): `None` if `record` answers `None` (it found
    /// the record invalid).
    pub fn write(
        size: usize,
        signature: Option<&EnforcerSignature>,
        record: impl FnOnce(&mut Vec<u8>) -> Option<()>,
    ) -> Option<LeafHead> {
        let mut entry = EntryWriter::with_capacity(size + 2 * TAIL_ROOM);
        let mut written = None;
        entry.try_append(|out| {
            written = write_head(out, signature.is_some(), record);
            written.as_ref().map(|_| ())
        })?;
        Some(LeafHead {
            entry,
            record: written?,
            signature: signature.map(|s| s.encode_detached().into_boxed_slice()),
        })
    }

    /// Whether the leaf will carry an enforcer signature.
    pub fn is_signed(&self) -> bool {
        self.signature.is_some()
    }

    /// Bytes the enforcer signature adds to the leaf (0 without one).
    pub fn signature_len(&self) -> usize {
        self.signature
            .as_ref()
            .map_or(0, |s| 1 + SIGNATURE_KEY.len() + s.len())
    }

    /// The record's deterministic CBOR.
    pub fn record_cbor(&self) -> &[u8] {
        &self.entry.bytes()[self.record.clone()]
    }

    /// The leaf bytes once the record was received at `received_at` (RFC
    /// 3339 UTC) from `submitted_by`, and their leaf hash: the same bytes as
    /// [`encode_signed_parts`].
    pub fn finish(mut self, received_at: &str, submitted_by: &str) -> HashedEntry {
        let signature = self.signature.take();
        self.entry
            .append(|out| write_tail(received_at, submitted_by, signature.as_deref(), out));
        self.entry.finish()
    }
}

impl Envelope {
    /// The leaf bytes: the envelope in deterministic CBOR.
    pub fn encode(&self) -> Vec<u8> {
        encode_signed_parts(
            &cbor::encode(&self.record),
            &self.received_at,
            &self.submitted_by,
            self.enforcer_signature.as_ref(),
        )
    }

    /// Decodes and checks leaf bytes.
    pub fn decode(leaf: &[u8]) -> Result<Envelope, EnvelopeError> {
        let value = match cbor::decode_canonical(leaf) {
            Some(v) => v,
            None => {
                let v = cbor::decode(leaf)?;
                if !cbor::is_encoding_of(leaf, &v) {
                    return Err(EnvelopeError::NotDeterministic);
                }
                v
            }
        };
        let Value::Map(entries) = value else {
            return Err(EnvelopeError::Field("(top level map)"));
        };
        let count = entries.len();
        let (mut version, mut record, mut received_at, mut submitted_by) = (None, None, None, None);
        let mut signature = None;
        for (k, v) in entries {
            match k.as_text() {
                Some("v") => version = v.as_integer().and_then(|i| u64::try_from(i).ok()),
                Some("record") => record = Some(v).filter(Value::is_map),
                Some("received_at") => {
                    received_at = match v {
                        Value::Tag(0, t) => t.into_text().ok(),
                        _ => None,
                    }
                }
                Some("submitted_by") => submitted_by = v.into_text().ok(),
                Some(SIGNATURE_KEY) => {
                    signature = Some(
                        EnforcerSignature::from_leaf_value(&v).map_err(EnvelopeError::Signature)?,
                    )
                }
                _ => {}
            }
        }
        let version = version.ok_or(EnvelopeError::Field("v"))?;
        if version != VERSION {
            return Err(EnvelopeError::Version(version));
        }
        if count != 4 + usize::from(signature.is_some()) {
            return Err(EnvelopeError::Field(
                "(exactly v, record, received_at, submitted_by, and enforcer_signature if signed)",
            ));
        }
        Ok(Envelope {
            record: record.ok_or(EnvelopeError::Field("record"))?,
            received_at: received_at.ok_or(EnvelopeError::Field("received_at"))?,
            submitted_by: submitted_by.ok_or(EnvelopeError::Field("submitted_by"))?,
            enforcer_signature: signature,
        })
    }
}
