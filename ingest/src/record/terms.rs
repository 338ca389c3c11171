//! [`IndexTerms`]: the values a checked record is found by, spelled one
//! after another in one buffer.
//!
//! A record's terms are made where it is checked (a request handler) and
//! dropped where they are added to the span index (the acknowledger, one
//! thread for every record). Held as a string each, they were about ten
//! allocations per record, each freed on another thread than the one that
//! made it: some 40% of the acknowledger's time at peak. In one buffer
//! they are one.

use std::ops::Range;

/// A term of [`IndexTerms`] that has at most one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Subject,
    Resource,
    Policy,
    PolicyVersion,
    Decision,
    RequestId,
    TraceId,
    Parent,
    Credential,
    Owner,
    BreakGlass,
}

/// How many [`Field`]s there are.
const FIELDS: usize = 11;

/// The values of a record's terms, borrowed, to build [`IndexTerms`] from.
#[derive(Clone, Copy, Debug, Default)]
pub struct TermValues<'a> {
    /// `subject.id`.
    pub subject: &'a str,
    /// Every `delegation[].id`, in chain order, repeats and all.
    pub actors: &'a [&'a str],
    /// `resource.id`.
    pub resource: &'a str,
    /// `policy.id`.
    pub policy: &'a str,
    /// `policy.version`.
    pub policy_version: &'a str,
    /// `allow` or `deny`.
    pub decision: &'a str,
    /// `context.request_id`.
    pub request_id: Option<&'a str>,
    /// `context.trace_id`.
    pub trace_id: Option<&'a str>,
    /// `context.parent_decision_id`.
    pub parent_decision_id: Option<&'a str>,
    /// [`credential_term`] of `credential.id_hash`.
    pub credential: Option<&'a str>,
    /// `subject.owner`.
    pub owner: Option<&'a str>,
    /// `emergency.break_glass` is true.
    pub break_glass: bool,
}

/// The term a credential is indexed by: the first 8 bytes of the SHA-256
/// of its `id_hash`, in hex. Credentials are often one a decision, so the
/// term is short and of one length; a query's candidates are checked
/// against the whole `id_hash` on the leaf.
pub fn credential_term(id_hash: &str) -> String {
    use sha2::{Digest, Sha256};
    verifier::hash::hex(&Sha256::digest(id_hash.as_bytes())[..8])
}

/// The term a break-glass record has ([`IndexTerms::break_glass`]).
pub const BREAK_GLASS: &[u8] = b"1";

/// The values a record is indexed by, for responders' queries: one
/// allocation, however many terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexTerms {
    /// The [`Field`]s' values in order, then each distinct actor id
    /// (sorted), spelled ([`push_spelled`]).
    bytes: Vec<u8>,
    /// Where each [`Field`]'s value ends in `bytes`.
    ends: [u32; FIELDS],
    /// Bit `f` set: [`Field`] `f` has a value (the optional ones may not).
    present: u16,
}

impl IndexTerms {
    /// The terms of a record with these values. Actor ids are kept once
    /// each, sorted: a term finds a record, however often it occurs in it.
    pub fn new(v: TermValues<'_>) -> IndexTerms {
        let fields = [
            Some(v.subject),
            Some(v.resource),
            Some(v.policy),
            Some(v.policy_version),
            Some(v.decision),
            v.request_id,
            v.trace_id,
            v.parent_decision_id,
            v.credential,
            v.owner,
            v.break_glass.then_some("1"),
        ];
        let mut actors: Vec<&str> = v.actors.to_vec();
        actors.sort_unstable();
        actors.dedup();
        let len = fields.iter().flatten().map(|s| s.len()).sum::<usize>()
            + actors.iter().map(|a| 4 + a.len()).sum::<usize>();
        let mut t = IndexTerms {
            bytes: Vec::with_capacity(len),
            ..IndexTerms::default()
        };
        for (f, value) in fields.iter().enumerate() {
            if let Some(value) = value {
                t.bytes.extend_from_slice(value.as_bytes());
                t.present |= 1 << f;
            }
            t.ends[f] = offset(t.bytes.len());
        }
        for a in actors {
            push_spelled(&mut t.bytes, a.as_bytes());
        }
        t
    }

    fn range(&self, f: Field) -> Range<usize> {
        let i = f as usize;
        let start = i.checked_sub(1).map_or(0, |p| self.ends[p] as usize);
        start..self.ends[i] as usize
    }

    /// The bytes of field `f`, if it has a value.
    fn bytes_of(&self, f: Field) -> Option<&[u8]> {
        (self.present & (1 << f as usize) != 0)
            .then(|| self.bytes.get(self.range(f)))
            .flatten()
    }

    /// The text of field `f`, if it has a value (it was made from text).
    fn text(&self, f: Field) -> Option<&str> {
        self.bytes_of(f).and_then(|b| std::str::from_utf8(b).ok())
    }

    /// `subject.id`.
    pub fn subject(&self) -> &[u8] {
        self.bytes_of(Field::Subject).unwrap_or_default()
    }

    /// `resource.id`.
    pub fn resource(&self) -> &[u8] {
        self.bytes_of(Field::Resource).unwrap_or_default()
    }

    /// `policy.id`.
    pub fn policy(&self) -> &[u8] {
        self.bytes_of(Field::Policy).unwrap_or_default()
    }

    /// `policy.version`.
    pub fn policy_version(&self) -> &str {
        self.text(Field::PolicyVersion).unwrap_or_default()
    }

    /// `allow` or `deny`.
    pub fn decision(&self) -> &str {
        self.text(Field::Decision).unwrap_or_default()
    }

    /// `context.request_id`.
    pub fn request_id(&self) -> Option<&[u8]> {
        self.bytes_of(Field::RequestId)
    }

    /// `context.trace_id`.
    pub fn trace_id(&self) -> Option<&[u8]> {
        self.bytes_of(Field::TraceId)
    }

    /// `context.parent_decision_id`.
    pub fn parent_decision_id(&self) -> Option<&[u8]> {
        self.bytes_of(Field::Parent)
    }

    /// [`credential_term`] of `credential.id_hash`.
    pub fn credential(&self) -> Option<&[u8]> {
        self.bytes_of(Field::Credential)
    }

    /// `subject.owner`.
    pub fn owner(&self) -> Option<&[u8]> {
        self.bytes_of(Field::Owner)
    }

    /// [`BREAK_GLASS`] if the record is a break-glass one.
    pub fn break_glass(&self) -> Option<&[u8]> {
        self.bytes_of(Field::BreakGlass)
    }

    /// Each distinct `delegation[].id`, sorted by its bytes.
    pub fn actors(&self) -> Actors<'_> {
        let start = self.ends[FIELDS - 1] as usize;
        Actors {
            rest: self.bytes.get(start..).unwrap_or_default(),
        }
    }
}

/// [`IndexTerms::actors`].
pub struct Actors<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Actors<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let actor = spelled_at(self.rest, 0)?;
        self.rest = self.rest.get(4 + actor.len()..).unwrap_or_default();
        Some(actor)
    }
}

/// Appends `bytes` to `out` spelled as length (4, LE) ‖ bytes: how
/// [`IndexTerms`] keeps its actors and a span index its terms, one after
/// another.
pub(crate) fn push_spelled(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&offset(bytes.len()).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// The bytes spelled at `at` in `buf` by [`push_spelled`], if `buf` holds
/// a whole spelling there.
pub(crate) fn spelled_at(buf: &[u8], at: usize) -> Option<&[u8]> {
    let len = buf.get(at..)?.first_chunk::<4>()?;
    let start = at + 4;
    buf.get(start..start + u32::from_le_bytes(*len) as usize)
}

/// A position in the buffer: records are far smaller than 4 GiB (a leaf
/// is at most 65,535 bytes), so this never saturates for a real one.
fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn values<'a>(ids: &'a [String; 10], actors: &'a [&'a str], mask: u8) -> TermValues<'a> {
        let opt = |bit: u8, s: &'a String| (mask & bit != 0).then_some(s.as_str());
        TermValues {
            subject: &ids[0],
            actors,
            resource: &ids[1],
            policy: &ids[2],
            policy_version: &ids[3],
            decision: &ids[4],
            request_id: opt(1, &ids[5]),
            trace_id: opt(2, &ids[6]),
            parent_decision_id: opt(4, &ids[7]),
            credential: opt(8, &ids[8]),
            owner: opt(16, &ids[9]),
            break_glass: mask & 32 != 0,
        }
    }

    proptest! {
        /// Every value comes back as given (empty ones too), absent ones
        /// stay absent, and the actors come back sorted, once each.
        #[test]
        fn terms_come_back_as_given(
            ids in prop::array::uniform10(".{0,12}"),
            actors in prop::collection::vec("[a-c]{0,3}", 0..8),
            mask in 0u8..64,
        ) {
            let refs: Vec<&str> = actors.iter().map(String::as_str).collect();
            let t = IndexTerms::new(values(&ids, &refs, mask));
            prop_assert_eq!(t.subject(), ids[0].as_bytes());
            prop_assert_eq!(t.resource(), ids[1].as_bytes());
            prop_assert_eq!(t.policy(), ids[2].as_bytes());
            prop_assert_eq!(t.policy_version(), ids[3].as_str());
            prop_assert_eq!(t.decision(), ids[4].as_str());
            prop_assert_eq!(t.request_id(), (mask & 1 != 0).then_some(ids[5].as_bytes()));
            prop_assert_eq!(t.trace_id(), (mask & 2 != 0).then_some(ids[6].as_bytes()));
            prop_assert_eq!(t.parent_decision_id(), (mask & 4 != 0).then_some(ids[7].as_bytes()));
            prop_assert_eq!(t.credential(), (mask & 8 != 0).then_some(ids[8].as_bytes()));
            prop_assert_eq!(t.owner(), (mask & 16 != 0).then_some(ids[9].as_bytes()));
            prop_assert_eq!(t.break_glass(), (mask & 32 != 0).then_some(BREAK_GLASS));
            let mut want: Vec<&[u8]> = actors.iter().map(|a| a.as_bytes()).collect();
            want.sort();
            want.dedup();
            prop_assert_eq!(t.actors().collect::<Vec<_>>(), want);
        }
    }
}
