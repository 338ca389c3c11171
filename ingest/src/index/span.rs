//! [`SpanIndex`]: one span's `decisions` and `postings`, in memory until the
//! span is built (specs/storage.md, "index spans").
//!
//! Adding a leaf is appending: its `decision_id` and digest are kept, the
//! hash of its `decision_id` and of each of its terms go into two vectors
//! in log order, and its terms' bytes into one more. What it was given is
//! dropped there, on the thread that made it, not a span later.
//! Nothing is looked up when a leaf is added (that is the acknowledgement
//! path); a query scans the hashes, and a build groups the terms by
//! sorting them by hash. Hashes are seeded per process (foldhash), so an
//! enforcer cannot pick `decision_id`s or terms that collide; every match
//! of a hash is still checked against the term itself.

use foldhash::fast::RandomState;
use std::hash::BuildHasher;

use crate::index::{
    encode_list_into, mark_key, posting_key_into, Facts, Logged, RecordFacts, Term,
};
use crate::record::terms::{push_spelled, spelled_at};

/// One term of one leaf.
#[derive(Clone, Copy, Debug)]
struct TermAt {
    /// Hash of (kind, term).
    hash: u64,
    /// Where the term is spelled in [`SpanIndex::spellings`].
    spelled: usize,
    /// The leaf's offset in the span.
    offset: u32,
    kind: Term,
}

/// A placeholder term, to fill vectors with.
const NO_TERM: TermAt = TermAt {
    hash: 0,
    spelled: 0,
    offset: 0,
    kind: Term::Time,
};

/// What a span keeps of a leaf besides its terms.
#[derive(Clone, Debug)]
struct Leaf {
    /// Empty for a leaf that is not a decision record.
    decision_id: String,
    digest: [u8; 32],
}

/// A span's index: what goes into `decisions` and `postings`.
#[derive(Clone, Debug)]
pub struct SpanIndex {
    /// Leaf index of `leaves[0]`.
    start: u64,
    /// Leaves `start..`, in order.
    leaves: Vec<Leaf>,
    /// (hash of the `decision_id`, offset into `leaves`) of every leaf
    /// that has one, in log order.
    decisions: Vec<(u64, u32)>,
    /// Every leaf's terms, in log order.
    terms: Vec<TermAt>,
    /// Each term of `terms`, spelled ([`push_spelled`]), one after another.
    spellings: Vec<u8>,
    hasher: RandomState,
    /// Tests: hashes cut to 3 bits, so that distinct terms collide.
    #[cfg(test)]
    weak: bool,
}

/// The leaves of one term, as a build groups them.
struct Group {
    /// The term's [`term_key`]: groups sort by it as their postings' keys
    /// do, and a term of up to [`PREFIX`] bytes is read back from it.
    key: (u128, u128),
    kind: Term,
    /// Where the term is spelled.
    spelled: usize,
    /// Its leaves' offsets, ascending: `grouped[from..to]`.
    from: u32,
    to: u32,
}

impl SpanIndex {
    /// An empty index of the span starting at leaf `start`, with room for
    /// `leaves` leaves (a hint: it grows past it).
    pub fn new(start: u64, leaves: usize) -> SpanIndex {
        SpanIndex {
            start,
            leaves: Vec::with_capacity(leaves),
            decisions: Vec::with_capacity(leaves),
            // The bench's records have 7-10 terms, of ~25 bytes each.
            terms: Vec::with_capacity(leaves * 10),
            spellings: Vec::with_capacity(leaves * 256),
            hasher: RandomState::default(),
            #[cfg(test)]
            weak: false,
        }
    }

    /// Writes to every page of the index's vectors, then empties them, so
    /// that filling them later costs no page faults: a fresh span's vectors
    /// are tens of MB, and each page first written costs a fault that
    /// zeroes it, on the acknowledgement path. Spare indexes are paged in
    /// when the indexes are opened (docs/design/ingest.md).
    pub fn page_in(&mut self) {
        let leaf = Leaf {
            decision_id: String::new(),
            digest: [0; 32],
        };
        self.leaves.resize(self.leaves.capacity(), leaf);
        self.decisions.resize(self.decisions.capacity(), (0, 0));
        self.terms.resize(self.terms.capacity(), NO_TERM);
        self.spellings.resize(self.spellings.capacity(), 0);
        self.clear();
    }

    /// Empties the index, keeping its memory for another span
    /// ([`SpanIndex::restarted`]): a span's vectors are tens of MB, and
    /// adding to fresh ones costs a page fault per page touched, on the
    /// acknowledgement path.
    pub fn clear(&mut self) {
        self.leaves.clear();
        self.decisions.clear();
        self.terms.clear();
        self.spellings.clear();
    }

    /// This index, emptied by [`SpanIndex::clear`], for the span starting
    /// at `start`.
    pub fn restarted(mut self, start: u64) -> SpanIndex {
        if !self.leaves.is_empty() {
            self.clear();
        }
        self.start = start;
        self
    }

    /// The next leaf index to add.
    pub fn end(&self) -> u64 {
        self.start + self.leaves.len() as u64
    }

    #[cfg(test)]
    fn cut(&self, hash: u64) -> u64 {
        if self.weak {
            hash & 7
        } else {
            hash
        }
    }

    #[cfg(not(test))]
    fn cut(&self, hash: u64) -> u64 {
        hash
    }

    fn id_hash(&self, decision_id: &str) -> u64 {
        self.cut(self.hasher.hash_one(decision_id))
    }

    fn term_hash(&self, kind: Term, term: &[u8]) -> u64 {
        self.cut(self.hasher.hash_one((kind as u8, term)))
    }

    /// The kind and bytes of a term of a leaf.
    fn term(&self, t: &TermAt) -> (Term, &[u8]) {
        (t.kind, self.spelling(t.spelled))
    }

    /// The bytes of the term spelled at `at`.
    fn spelling(&self, at: usize) -> &[u8] {
        spelled_at(&self.spellings, at).unwrap_or_default()
    }

    /// Adds the facts of leaf [`SpanIndex::end`]. An empty `decision_id`
    /// ([`Facts::unindexed`]) is not added.
    pub fn add(&mut self, facts: Facts) {
        let offset = self.leaves.len() as u32;
        for (kind, term) in &facts.terms {
            self.push_term(offset, *kind, term);
        }
        self.push_leaf(facts.decision_id, facts.digest);
    }

    /// [`SpanIndex::add`] of a record's facts as the record holds them:
    /// the acknowledgement path, where no [`Facts`] are built in between.
    pub(crate) fn add_record(&mut self, record: RecordFacts) {
        let offset = self.leaves.len() as u32;
        record.each_term(|kind, term| self.push_term(offset, kind, term));
        self.push_leaf(record.decision_id, record.digest);
    }

    fn push_term(&mut self, offset: u32, kind: Term, term: &[u8]) {
        let hash = self.term_hash(kind, term);
        self.terms.push(TermAt {
            hash,
            spelled: self.spellings.len(),
            offset,
            kind,
        });
        push_spelled(&mut self.spellings, term);
    }

    /// Ends leaf [`SpanIndex::end`], whose terms were pushed.
    fn push_leaf(&mut self, decision_id: String, digest: [u8; 32]) {
        if !decision_id.is_empty() {
            let hash = self.id_hash(&decision_id);
            self.decisions.push((hash, self.leaves.len() as u32));
        }
        self.leaves.push(Leaf {
            decision_id,
            digest,
        });
    }

    /// Leaf `index` (in this span) is found by no term from now on: its
    /// entry is erased. Its `decision_id` stays.
    pub fn forget(&mut self, index: u64) {
        if let Some(offset) = index
            .checked_sub(self.start)
            .and_then(|o| u32::try_from(o).ok())
        {
            self.terms.retain(|t| t.offset != offset);
        }
    }

    /// Where `decision_id` was appended, if in this span: its first leaf
    /// (the pipeline never appends one twice).
    pub fn decision(&self, decision_id: &str) -> Option<Logged> {
        let hash = self.id_hash(decision_id);
        let &(_, o) = self
            .decisions
            .iter()
            .find(|&&(h, o)| h == hash && self.leaves[o as usize].decision_id == decision_id)?;
        Some((self.start + u64::from(o), self.leaves[o as usize].digest))
    }

    /// Every leaf's `decision_id` and digest, in log order (the leaves
    /// without one are left out).
    pub fn decisions_in_order(&self) -> impl Iterator<Item = (u64, &str, [u8; 32])> + '_ {
        (self.start..)
            .zip(&self.leaves)
            .filter(|(_, f)| !f.decision_id.is_empty())
            .map(|(i, f)| (i, f.decision_id.as_str(), f.digest))
    }

    /// The leaves with the term, ascending.
    pub fn postings(&self, kind: Term, term: &[u8]) -> Vec<u64> {
        let hash = self.term_hash(kind, term);
        self.terms
            .iter()
            .filter(|t| t.hash == hash && self.term(t) == (kind, term))
            .map(|t| self.start + u64::from(t.offset))
            .collect()
    }

    /// Whether leaf `index` (in this span) has the term.
    pub fn has(&self, kind: Term, term: &[u8], index: u64) -> bool {
        let Some(offset) = index
            .checked_sub(self.start)
            .and_then(|o| u32::try_from(o).ok())
        else {
            return false;
        };
        // The terms are in leaf order.
        let first = self.terms.partition_point(|t| t.offset < offset);
        self.terms[first..]
            .iter()
            .take_while(|t| t.offset == offset)
            .any(|t| self.term(t) == (kind, term))
    }

    /// The leaves whose record time is in `from..to` (nanoseconds), ascending.
    pub fn times(&self, from: u64, to: u64) -> Vec<u64> {
        let mut leaves: Vec<u64> = (self.terms.iter())
            .filter(|t| t.kind == Term::Time)
            .filter(|t| {
                <[u8; 8]>::try_from(self.term(t).1)
                    .map(u64::from_be_bytes)
                    .is_ok_and(|n| n >= from && n < to)
            })
            .map(|t| self.start + u64::from(t.offset))
            .collect();
        // A leaf has one time; this keeps the answer a set all the same.
        leaves.dedup();
        leaves
    }

    /// The sorted `decisions` items, one per id (its first leaf), given
    /// to `put` in key order; leaves below `first_kept` (removed by
    /// retention while the span was in memory) are left out.
    pub fn write_decisions<E>(
        &self,
        first_kept: u64,
        mut put: impl FnMut(&[u8], &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        // Offsets are sorted by id, then leaf, and the items made in that
        // order.
        let id = |o: u32| self.leaves[o as usize].decision_id.as_bytes();
        let mut order = sorted_by_prefix(
            self.decisions.iter().map(|&(_, o)| o),
            |o| prefix_key(0, id(o)),
            |a, b| id(a).cmp(id(b)).then(a.cmp(&b)),
        );
        order.dedup_by(|later, first| id(*later) == id(*first));
        let mut value = [0u8; 40];
        for o in order {
            if self.start + u64::from(o) < first_kept {
                continue;
            }
            value[..8].copy_from_slice(&(self.start + u64::from(o)).to_be_bytes());
            value[8..].copy_from_slice(&self.leaves[o as usize].digest);
            put(id(o), &value)?;
        }
        Ok(())
    }

    /// [`SpanIndex::write_decisions`], collected (tests).
    #[cfg(test)]
    pub fn decision_items(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        collect(|put| self.write_decisions(0, put))
    }

    /// Each distinct term once, with its leaves' offsets (ascending) in
    /// `grouped`. The terms are sorted by hash, then by leaf: a run of one
    /// hash is one term's leaves, unless distinct terms share the hash,
    /// when the run is split by term. A term is read once here, for its
    /// key, and the members of a longer run once more, to check them
    /// against it.
    fn groups(&self) -> (Vec<Group>, Vec<u32>) {
        let by_hash = sorted_by_hash(&self.terms);
        let mut grouped: Vec<u32> = Vec::with_capacity(by_hash.len());
        // Room for a group per term: pages never written are never faulted
        // in, and growing by doubling would copy the groups over and over.
        let mut groups: Vec<Group> = Vec::with_capacity(by_hash.len());
        // One term's group: its leaves are grouped[from..to].
        let mut group = |first: &TermAt, term: &[u8], from: usize, to: usize| {
            groups.push(Group {
                key: term_key(first.kind, term),
                kind: first.kind,
                spelled: first.spelled,
                from: from as u32,
                to: to as u32,
            });
        };
        for run in by_hash.chunk_by(|a, b| a.hash == b.hash) {
            let (kind, term) = self.term(&run[0]);
            if run[1..].iter().all(|t| self.term(t) == (kind, term)) {
                let from = grouped.len();
                grouped.extend(run.iter().map(|t| t.offset));
                group(&run[0], term, from, grouped.len());
                continue;
            }
            // Distinct terms with one hash: each in the order first seen.
            let mut taken = vec![false; run.len()];
            for a in 0..run.len() {
                if taken[a] {
                    continue;
                }
                let (kind, term) = self.term(&run[a]);
                let from = grouped.len();
                for (b, t) in run.iter().enumerate().skip(a) {
                    if !taken[b] && self.term(t) == (kind, term) {
                        taken[b] = true;
                        grouped.push(t.offset);
                    }
                }
                group(&run[a], term, from, grouped.len());
            }
        }
        (groups, grouped)
    }

    /// The sorted postings items, closed by the span's [`mark_key`] →
    /// `indexed_upto`, given to `put` in key order; leaves below
    /// `first_kept` (removed by retention while the span was in memory)
    /// are left out, and a term with no other leaf.
    pub fn write_postings<E>(
        &self,
        indexed_upto: u64,
        first_kept: u64,
        mut put: impl FnMut(&[u8], &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let (mut groups, grouped) = self.groups();
        // A key is span ‖ kind ‖ term length (2 BE) ‖ term, and each
        // group has its own kind and term: ordering the groups by (kind,
        // length, term) orders their keys, so the items are made in order
        // rather than sorted. The groups carry their term keys, so the
        // sort compares numbers, and reads a term only when two share
        // their first [`PREFIX`] bytes. The mark's key ends in 0xff, above
        // every kind.
        let full = |g: &Group| {
            let term = self.spelling(g.spelled);
            (g.kind as u8, term.len(), term)
        };
        groups.sort_unstable_by(|a, b| a.key.cmp(&b.key).then_with(|| full(a).cmp(&full(b))));
        let (mut leaves, mut key, mut value) = (Vec::new(), Vec::new(), Vec::new());
        for group in &groups {
            leaves.clear();
            let offsets = grouped
                .get(group.from as usize..group.to as usize)
                .unwrap_or_default();
            leaves.extend(
                offsets
                    .iter()
                    .map(|&o| self.start + u64::from(o))
                    .filter(|&i| i >= first_kept),
            );
            if leaves.is_empty() {
                continue;
            }
            // A short term is read back from its key, not from the
            // spellings (one random read fewer per group).
            let (len, in_key) = (key_len(group.key), key_bytes(group.key));
            let term = match in_key.get(3..3 + len) {
                Some(term) if len <= PREFIX => term,
                _ => self.spelling(group.spelled),
            };
            posting_key_into(&mut key, self.start, group.kind, term);
            encode_list_into(&mut value, &leaves);
            put(&key, &value)?;
        }
        put(&mark_key(self.start), &indexed_upto.to_be_bytes())
    }

    /// [`SpanIndex::write_postings`], collected (tests).
    #[cfg(test)]
    pub fn posting_items(&self, indexed_upto: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
        collect(|put| self.write_postings(indexed_upto, 0, put))
    }
}

/// The items a `write_*` method gives, as owned pairs.
#[cfg(test)]
fn collect(
    write: impl FnOnce(&mut dyn FnMut(&[u8], &[u8]) -> Result<(), ()>) -> Result<(), ()>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut items = Vec::new();
    let _ = write(&mut |k, v| {
        items.push((k.to_vec(), v.to_vec()));
        Ok(())
    });
    items
}

/// `terms` sorted by (hash, leaf): spread into buckets by the hash's top
/// bits in two sequential passes (a span's terms are mostly distinct, and
/// a comparison sort of them took a fifth of a build), then each bucket
/// sorted. Ties (one hash, one leaf) are distinct terms of a leaf, which go
/// to distinct groups: their order does not show.
fn sorted_by_hash(terms: &[TermAt]) -> Vec<TermAt> {
    const BITS: u32 = 16;
    let bucket = |t: &TermAt| (t.hash >> (64 - BITS)) as usize;
    let mut bounds = vec![0usize; (1 << BITS) + 1];
    for t in terms {
        bounds[bucket(t) + 1] += 1;
    }
    for b in 0..1 << BITS {
        bounds[b + 1] += bounds[b];
    }
    let mut next = bounds.clone();
    let mut out = vec![NO_TERM; terms.len()];
    for t in terms {
        let at = &mut next[bucket(t)];
        out[*at] = *t;
        *at += 1;
    }
    for b in bounds.windows(2) {
        out[b[0]..b[1]].sort_unstable_by_key(|t| (u128::from(t.hash) << 32) | u128::from(t.offset));
    }
    out
}

/// Bytes of a term or id that [`prefix_key`] holds.
const PREFIX: usize = 29;

/// `head` in the top 24 bits, then the first [`PREFIX`] bytes of `bytes`
/// (zero padded), as two numbers: they compare as the byte strings do
/// whenever they differ, and equal ones need the full comparison. Ids and
/// terms of one kind often share their first bytes (`req-…`, UUIDs of one
/// source): 29 of them spare most comparisons a read of the bytes
/// themselves.
fn prefix_key(head: u128, bytes: &[u8]) -> (u128, u128) {
    let mut prefix = [0u8; 32];
    let n = bytes.len().min(PREFIX);
    prefix[3..3 + n].copy_from_slice(&bytes[..n]);
    let (first, second) = prefix.split_at(16);
    let number = |b: &[u8]| <[u8; 16]>::try_from(b).map_or(0, u128::from_be_bytes);
    ((head << 104) | number(first), number(second))
}

/// The [`prefix_key`] of a term: kind, then length (at most 65,535, as
/// [`posting_key_into`] spells it), then its first bytes. Keys of distinct
/// terms order as their postings' keys do, or are equal.
fn term_key(kind: Term, term: &[u8]) -> (u128, u128) {
    let len = term.len().min(usize::from(u16::MAX)) as u128;
    prefix_key((u128::from(kind as u8) << 16) | len, term)
}

/// The 32 bytes a [`prefix_key`] packs: 3 of head, then the prefix.
fn key_bytes(key: (u128, u128)) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(&key.0.to_be_bytes());
    out[16..].copy_from_slice(&key.1.to_be_bytes());
    out
}

/// The term length a [`term_key`] holds. When it is at most [`PREFIX`],
/// the term is the bytes from 3 on of [`key_bytes`].
fn key_len(key: (u128, u128)) -> usize {
    ((key.0 >> 104) & 0xffff) as usize
}

/// `items` in the order `full` defines, sorted by their [`prefix_key`]s
/// first: the comparisons read one array instead of following pointers to
/// the bytes (a span has 65,536 `decision_id`s), and `full` breaks ties.
fn sorted_by_prefix(
    items: impl Iterator<Item = u32>,
    key: impl Fn(u32) -> (u128, u128),
    full: impl Fn(u32, u32) -> std::cmp::Ordering,
) -> Vec<u32> {
    let mut keyed: Vec<((u128, u128), u32)> = items.map(|i| (key(i), i)).collect();
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| full(a.1, b.1)));
    keyed.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{decode_list, posting_key};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const KINDS: [Term; 3] = [Term::Subject, Term::Actor, Term::Time];

    fn facts_strategy() -> impl Strategy<Value = Vec<(u8, Vec<(u8, u8)>)>> {
        // (decision id, [(kind, term)]) with small alphabets so ids and
        // terms repeat and hash tables grow past their first sizes.
        prop::collection::vec(
            (0u8..200, prop::collection::vec((0u8..3, 0u8..40), 0..6)),
            0..300,
        )
    }

    /// A time term is 8 bytes; subjects are 1-3 bytes long, so the built
    /// keys' order depends on their length as well as their bytes, or
    /// spelled as a time is (which neither a time query nor a posting may
    /// take for one); actors
    /// share their first 29-31 bytes, past the sort's prefix.
    fn term_bytes(kind: u8, t: u8) -> Vec<u8> {
        match kind {
            2 => u64::from(t).to_be_bytes().to_vec(),
            1 => {
                let mut v = vec![b'x'; 29 + usize::from(t % 3)];
                v.push(t);
                v
            }
            _ if t.is_multiple_of(4) => u64::from(t).to_be_bytes().to_vec(),
            _ => vec![t; 1 + usize::from(t % 3)],
        }
    }

    /// Ids short and long; the long ones share 32 bytes, past the sort's
    /// prefix.
    fn id_of(n: u8) -> String {
        if n.is_multiple_of(2) {
            format!("d-{n}")
        } else {
            format!("decision-0000000000000000000000-{n}")
        }
    }

    proptest! {
        /// Answers equal those of a naive map built from the same facts.
        #[test]
        fn span_index_matches_a_naive_index(
            start in 0u64..1000,
            leaves in facts_strategy(),
            earlier in prop::option::of(facts_strategy()),
            paged in any::<bool>(),
            weak in any::<bool>(),
        ) {
            let mut span = SpanIndex::new(start, leaves.len() / 4);
            // Paged in: the dummy entries written may not show either.
            if paged {
                span.page_in();
            }
            // Or an index used for an earlier span, emptied: nothing of it
            // may show.
            if let Some(earlier) = earlier {
                let mut used = SpanIndex::new(start + 5000, 8);
                for (i, (id, terms)) in earlier.iter().enumerate() {
                    let terms = terms.iter().map(|&(k, t)| (KINDS[k as usize], term_bytes(k, t)));
                    used.add(Facts { decision_id: id_of(*id), digest: [!(i as u8); 32], terms: terms.collect() });
                }
                used.clear();
                span = used.restarted(start);
            }
            // Hashes cut to 3 bits: distinct ids and terms share them, and
            // every answer must still be exact.
            span.weak = weak;
            let mut ids: BTreeMap<String, (u64, [u8; 32])> = BTreeMap::new();
            let mut postings: BTreeMap<(u8, Vec<u8>), Vec<u64>> = BTreeMap::new();
            for (i, (id, terms)) in leaves.iter().enumerate() {
                let index = start + i as u64;
                let mut terms: Vec<(Term, Vec<u8>)> = terms
                    .iter()
                    .map(|&(k, t)| (KINDS[k as usize], term_bytes(k, t)))
                    .collect();
                terms.sort_by_key(|(k, t)| (*k as u8, t.clone()));
                terms.dedup();
                let id = id_of(*id);
                ids.entry(id.clone()).or_insert((index, [i as u8; 32]));
                for (k, t) in &terms {
                    postings.entry((*k as u8, t.clone())).or_default().push(index);
                }
                span.add(Facts { decision_id: id, digest: [i as u8; 32], terms });
            }
            prop_assert_eq!(span.end(), start + leaves.len() as u64);
            for n in 0..200u8 {
                let id = id_of(n);
                prop_assert_eq!(span.decision(&id), ids.get(&id).copied());
            }
            for k in 0..3u8 {
                for t in 0..40u8 {
                    let kind = KINDS[k as usize];
                    let term = term_bytes(k, t);
                    let want = postings.get(&(kind as u8, term.clone())).cloned().unwrap_or_default();
                    prop_assert_eq!(&span.postings(kind, &term), &want);
                    for index in start..span.end() {
                        prop_assert_eq!(span.has(kind, &term, index), want.contains(&index));
                    }
                }
            }
            let times: Vec<u64> = (start..span.end())
                .filter(|i| postings.iter().any(|((k, t), l)| *k == b'T' && t[7] >= 10 && t[7] < 20 && l.contains(i)))
                .collect();
            prop_assert_eq!(span.times(10, 20), times);
            // The built items: sorted, one per id and per term.
            let items = span.decision_items();
            prop_assert_eq!(items.len(), ids.len());
            prop_assert!(items.windows(2).all(|w| w[0].0 < w[1].0));
            for (key, value) in &items {
                let (index, digest) = ids[std::str::from_utf8(key).unwrap_or_default()];
                prop_assert_eq!(&value[..8], &index.to_be_bytes()[..]);
                prop_assert_eq!(&value[8..], &digest[..]);
            }
            let items = span.posting_items(7);
            prop_assert_eq!(items.len(), postings.len() + 1);
            prop_assert!(items.windows(2).all(|w| w[0].0 < w[1].0));
            // Every key starts with the span, so spans' files never
            // overlap; the mark closes the span's items.
            prop_assert!(items.iter().all(|(k, _)| k.starts_with(&start.to_be_bytes())));
            prop_assert_eq!(items.last(), Some(&(mark_key(start).to_vec(), 7u64.to_be_bytes().to_vec())));
            for ((k, t), list) in &postings {
                let key = posting_key(start, Term::from_byte(*k).unwrap_or(Term::Time), t);
                let found = items.iter().find(|(ik, _)| *ik == key).map(|(_, v)| decode_list(v));
                prop_assert_eq!(found, Some(Some(list.clone())));
            }
        }
    }
}
