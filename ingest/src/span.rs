//! [`SpanIndex`]: one span's `decisions` and `postings`, in memory until the
//! span is built (specs/storage.md, "index spans").
//!
//! Appending a leaf costs no allocation of its own: the leaf's [`Facts`]
//! are kept as they came, and the two hash tables hold only positions into
//! them. Each distinct term has a list of its leaves, chained through one
//! shared vector of links, in ascending order because leaves are added in
//! log order. Hashes are seeded per process (foldhash), so an enforcer
//! cannot pick `decision_id`s or terms that collide.

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use std::hash::BuildHasher;

use crate::index::{encode_list, posting_key, Facts, Logged, Term, INDEXED_KEY};

/// End of a chain of links.
const END: u32 = u32::MAX;

/// The leaves of one term: where the term is spelled, and its chain.
#[derive(Clone, Debug)]
struct TermList {
    /// The term's kind, and where its bytes are in [`SpanIndex::spellings`].
    kind: Term,
    spelled: usize,
    /// First and last link of the chain.
    head: u32,
    tail: u32,
}

/// One leaf in one term's chain.
#[derive(Clone, Copy, Debug)]
struct Link {
    /// The leaf's offset in the span.
    offset: u32,
    /// The next link of the same term, or [`END`].
    next: u32,
    /// The term's list (position in [`SpanIndex::lists`]), so that a build
    /// groups the links in one pass over them instead of walking chains.
    list: u32,
}

/// A span's index, grouped: what goes into `decisions` and `postings`.
#[derive(Clone, Debug)]
pub struct SpanIndex {
    /// Leaf index of `facts[0]`.
    start: u64,
    /// The facts of leaves `start..`, in order.
    facts: Vec<Facts>,
    /// (hash, offset into `facts`), found by `decision_id`.
    decisions: HashTable<(u64, u32)>,
    /// (hash, position in `lists`), found by term.
    terms: HashTable<(u64, u32)>,
    lists: Vec<TermList>,
    links: Vec<Link>,
    /// Each distinct term's bytes once, as length (u32 LE) ‖ bytes, so
    /// comparing a term is one read here rather than three pointer hops
    /// into the facts.
    spellings: Vec<u8>,
    hasher: RandomState,
}

/// Writes to every page of `table`'s allocation once, then empties it:
/// dummy entries up to its capacity (within which a table never grows, so
/// every insert lands in the allocation being paged in).
pub(crate) fn page_in_table(table: &mut HashTable<(u64, u32)>) {
    let (mut h, odd) = (0u64, 0x9e37_79b9_7f4a_7c15u64);
    for i in 0..table.capacity() as u32 {
        h = h.wrapping_add(odd);
        table.insert_unique(h, (h, i), |&(h, _)| h);
    }
    table.clear();
}

/// The term bytes spelled at `at` in `spellings`.
fn spelling(spellings: &[u8], at: usize) -> &[u8] {
    let len = spellings
        .get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_le_bytes) as usize;
    spellings.get(at + 4..at + 4 + len).unwrap_or_default()
}

impl SpanIndex {
    /// An empty index of the span starting at leaf `start`, with room for
    /// `leaves` leaves (a hint: it grows past it).
    pub fn new(start: u64, leaves: usize) -> SpanIndex {
        SpanIndex {
            start,
            facts: Vec::with_capacity(leaves),
            decisions: HashTable::with_capacity(leaves),
            terms: HashTable::with_capacity(leaves * 2),
            lists: Vec::with_capacity(leaves * 2),
            links: Vec::with_capacity(leaves * 8),
            // The bench's records spell ~36 bytes of distinct terms per
            // leaf (request and trace ids are new in every record): room
            // for 64, so that a span's spellings are not copied into a
            // fresh, unpaged allocation halfway through it.
            spellings: Vec::with_capacity(leaves * 64),
            hasher: RandomState::default(),
        }
    }

    /// Writes to every page of the index's tables, then empties them, so
    /// that filling them later costs no page faults: a fresh span's tables
    /// are tens of MB, and each page first written costs a fault that
    /// zeroes it, on the acknowledgement path. Spare indexes are paged in
    /// when the indexes are opened (docs/design/ingest.md).
    pub fn page_in(&mut self) {
        self.facts
            .resize_with(self.facts.capacity(), Facts::unindexed);
        page_in_table(&mut self.decisions);
        page_in_table(&mut self.terms);
        let list = TermList {
            kind: Term::Time,
            spelled: 0,
            head: END,
            tail: END,
        };
        self.lists.resize(self.lists.capacity(), list);
        let link = Link {
            offset: 0,
            next: END,
            list: 0,
        };
        self.links.resize(self.links.capacity(), link);
        self.spellings.resize(self.spellings.capacity(), 0);
        self.clear();
    }

    /// Empties the index, keeping its memory for another span
    /// ([`SpanIndex::restarted`]): a span's tables are tens of MB, and
    /// adding to fresh ones costs a page fault per page touched, on the
    /// acknowledgement path.
    pub fn clear(&mut self) {
        self.facts.clear();
        self.decisions.clear();
        self.terms.clear();
        self.lists.clear();
        self.links.clear();
        self.spellings.clear();
    }

    /// This index, emptied by [`SpanIndex::clear`], for the span starting
    /// at `start`.
    pub fn restarted(mut self, start: u64) -> SpanIndex {
        if !self.facts.is_empty() {
            self.clear();
        }
        self.start = start;
        self
    }

    /// The next leaf index to add.
    pub fn end(&self) -> u64 {
        self.start + self.facts.len() as u64
    }

    fn term_of(&self, list: &TermList) -> (Term, &[u8]) {
        (list.kind, spelling(&self.spellings, list.spelled))
    }

    fn find_list(&self, kind: Term, term: &[u8]) -> Option<&TermList> {
        let hash = self.hasher.hash_one((kind as u8, term));
        let (_, at) = self.terms.find(hash, |&(h, l)| {
            h == hash && self.term_of(&self.lists[l as usize]) == (kind, term)
        })?;
        Some(&self.lists[*at as usize])
    }

    /// Adds the facts of leaf [`SpanIndex::end`]. A `decision_id` already
    /// in the span keeps its first leaf (the pipeline never appends one
    /// twice); an empty one ([`Facts::unindexed`]) is not added.
    pub fn add(&mut self, facts: Facts) {
        let offset = self.facts.len() as u32;
        let SpanIndex {
            facts: all,
            decisions,
            terms,
            lists,
            links,
            spellings,
            hasher,
            ..
        } = self;
        let hash = hasher.hash_one(facts.decision_id.as_str());
        let id_at =
            |&(h, o): &(u64, u32)| h == hash && all[o as usize].decision_id == facts.decision_id;
        if !facts.decision_id.is_empty() && decisions.find(hash, id_at).is_none() {
            decisions.insert_unique(hash, (hash, offset), |&(h, _)| h);
        }
        for (kind, term) in &facts.terms {
            let (kind, term) = (*kind, term.as_slice());
            let hash = hasher.hash_one((kind as u8, term));
            let link = links.len() as u32;
            let found = terms.find(hash, |&(h, l)| {
                let list = &lists[l as usize];
                h == hash && list.kind == kind && spelling(spellings, list.spelled) == term
            });
            let list = found.map_or(lists.len() as u32, |&(_, l)| l);
            links.push(Link {
                offset,
                next: END,
                list,
            });
            match found {
                Some(&(_, l)) => {
                    let list = &mut lists[l as usize];
                    links[list.tail as usize].next = link;
                    list.tail = link;
                }
                None => {
                    let spelled = spellings.len();
                    spellings.extend_from_slice(&(term.len() as u32).to_le_bytes());
                    spellings.extend_from_slice(term);
                    lists.push(TermList {
                        kind,
                        spelled,
                        head: link,
                        tail: link,
                    });
                    let at = lists.len() as u32 - 1;
                    terms.insert_unique(hash, (hash, at), |&(h, _)| h);
                }
            }
        }
        all.push(facts);
    }

    /// Where `decision_id` was appended, if in this span.
    pub fn decision(&self, decision_id: &str) -> Option<Logged> {
        let hash = self.hasher.hash_one(decision_id);
        let (_, o) = *self.decisions.find(hash, |&(h, o)| {
            h == hash && self.facts[o as usize].decision_id == decision_id
        })?;
        Some((self.start + u64::from(o), self.facts[o as usize].digest))
    }

    /// Every leaf's `decision_id` and digest, in log order (the leaves
    /// without one are left out).
    pub fn decisions_in_order(&self) -> impl Iterator<Item = (u64, &str, [u8; 32])> + '_ {
        (self.start..)
            .zip(&self.facts)
            .filter(|(_, f)| !f.decision_id.is_empty())
            .map(|(i, f)| (i, f.decision_id.as_str(), f.digest))
    }

    fn chain(&self, list: &TermList) -> impl Iterator<Item = u64> + '_ {
        let mut at = list.head;
        std::iter::from_fn(move || {
            let link = self.links.get(at as usize)?;
            at = link.next;
            Some(self.start + u64::from(link.offset))
        })
    }

    /// The leaves with the term, ascending.
    pub fn postings(&self, kind: Term, term: &[u8]) -> Vec<u64> {
        self.find_list(kind, term)
            .map(|l| self.chain(l).collect())
            .unwrap_or_default()
    }

    /// Whether leaf `index` (in this span) has the term.
    pub fn has(&self, kind: Term, term: &[u8], index: u64) -> bool {
        index
            .checked_sub(self.start)
            .and_then(|o| self.facts.get(o as usize))
            .is_some_and(|f| f.terms.iter().any(|(k, t)| *k == kind && t == term))
    }

    /// The leaves whose record time is in `from..to` (nanoseconds), ascending.
    pub fn times(&self, from: u64, to: u64) -> Vec<u64> {
        (self.start..)
            .zip(&self.facts)
            .filter(|(_, f)| {
                f.terms.iter().any(|(k, t)| {
                    *k == Term::Time
                        && <[u8; 8]>::try_from(t.as_slice())
                            .map(u64::from_be_bytes)
                            .is_ok_and(|n| n >= from && n < to)
                })
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// The sorted `decisions` items.
    pub fn decision_items(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        // Offsets are sorted by id, and the items made in that order.
        let id = |o: u32| self.facts[o as usize].decision_id.as_bytes();
        let order = sorted_by_prefix(
            self.decisions.iter().map(|&(_, o)| o),
            |o| prefix_key(0, id(o)),
            |a, b| id(a).cmp(id(b)),
        );
        order
            .into_iter()
            .map(|o| {
                let mut v = Vec::with_capacity(8 + 32);
                v.extend_from_slice(&(self.start + u64::from(o)).to_be_bytes());
                v.extend_from_slice(&self.facts[o as usize].digest);
                (id(o).to_vec(), v)
            })
            .collect()
    }

    /// The sorted `postings` items, led by [`INDEXED_KEY`] → `indexed_upto`.
    pub fn posting_items(&self, indexed_upto: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
        // A key is kind ‖ term length (2 BE) ‖ term ‖ last leaf, and each
        // list has its own kind and term: ordering the lists by (kind,
        // length, term) orders their keys, so the items are made in order
        // rather than sorted as vectors. The mark's key starts with a zero
        // byte, below every kind.
        let key_order = |l: u32| {
            let (kind, term) = self.term_of(&self.lists[l as usize]);
            (kind as u8, term.len(), term)
        };
        let order = sorted_by_prefix(
            0..self.lists.len() as u32,
            |l| {
                let (kind, len, term) = key_order(l);
                let head = (u128::from(kind) << 16) | len.min(usize::from(u16::MAX)) as u128;
                prefix_key(head, term)
            },
            |a, b| key_order(a).cmp(&key_order(b)),
        );
        // Each list's leaves, grouped by one counting sort over the links
        // (in leaf order, so each group is ascending) into `grouped`, the
        // lists' groups in key order: two sequential passes instead of
        // following every chain link by link (a dependent memory read each).
        let mut rank = vec![0u32; self.lists.len()];
        for (r, &l) in order.iter().enumerate() {
            rank[l as usize] = r as u32;
        }
        let mut bounds = vec![0u32; self.lists.len() + 1];
        for link in &self.links {
            bounds[rank[link.list as usize] as usize + 1] += 1;
        }
        for r in 0..self.lists.len() {
            bounds[r + 1] += bounds[r];
        }
        let mut next = bounds.clone();
        let mut grouped = vec![0u32; self.links.len()];
        for link in &self.links {
            let at = &mut next[rank[link.list as usize] as usize];
            grouped[*at as usize] = link.offset;
            *at += 1;
        }
        let mut items: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(self.lists.len() + 1);
        items.push((INDEXED_KEY.to_vec(), indexed_upto.to_be_bytes().to_vec()));
        let mut leaves = Vec::new();
        for (r, list) in order
            .into_iter()
            .map(|l| &self.lists[l as usize])
            .enumerate()
        {
            leaves.clear();
            let group = grouped
                .get(bounds[r] as usize..bounds[r + 1] as usize)
                .unwrap_or_default();
            leaves.extend(group.iter().map(|&o| self.start + u64::from(o)));
            let (kind, term) = self.term_of(list);
            let last = leaves.last().copied().unwrap_or(self.start);
            items.push((posting_key(kind, term, last), encode_list(&leaves)));
        }
        items
    }
}

/// `head` in the top 24 bits, then the first 13 bytes of `bytes` (zero
/// padded), as one number: numbers compare as the byte strings do whenever
/// they differ, and equal numbers need the full comparison.
fn prefix_key(head: u128, bytes: &[u8]) -> u128 {
    let mut prefix = [0u8; 16];
    let n = bytes.len().min(13);
    prefix[3..3 + n].copy_from_slice(&bytes[..n]);
    (head << 104) | u128::from_be_bytes(prefix)
}

/// `items` in the order `full` defines, sorted by their [`prefix_key`]s
/// first: the comparisons read one array instead of following pointers to
/// the bytes (a span has ~140 k terms), and `full` breaks ties.
fn sorted_by_prefix(
    items: impl Iterator<Item = u32>,
    key: impl Fn(u32) -> u128,
    full: impl Fn(u32, u32) -> std::cmp::Ordering,
) -> Vec<u32> {
    let mut keyed: Vec<(u128, u32)> = items.map(|i| (key(i), i)).collect();
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| full(a.1, b.1)));
    keyed.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::decode_list;
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
    /// keys' order depends on their length as well as their bytes; actors
    /// share their first 13-15 bytes, past the sort's prefix.
    fn term_bytes(kind: u8, t: u8) -> Vec<u8> {
        match kind {
            2 => u64::from(t).to_be_bytes().to_vec(),
            1 => {
                let mut v = vec![b'x'; 13 + usize::from(t % 3)];
                v.push(t);
                v
            }
            _ => vec![t; 1 + usize::from(t % 3)],
        }
    }

    /// Ids short and long; the long ones share 18 bytes.
    fn id_of(n: u8) -> String {
        if n % 2 == 0 {
            format!("d-{n}")
        } else {
            format!("decision-00000000-{n}")
        }
    }

    #[test]
    fn a_paged_in_table_is_empty_and_keeps_its_room() {
        let mut table: HashTable<(u64, u32)> = HashTable::with_capacity(1000);
        let room = table.capacity();
        page_in_table(&mut table);
        assert_eq!(table.len(), 0);
        assert_eq!(table.capacity(), room);
    }

    proptest! {
        /// Answers equal those of a naive map built from the same facts.
        #[test]
        fn span_index_matches_a_naive_index(
            start in 0u64..1000,
            leaves in facts_strategy(),
            earlier in prop::option::of(facts_strategy()),
            paged in any::<bool>(),
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
            prop_assert_eq!(&items[0], &(INDEXED_KEY.to_vec(), 7u64.to_be_bytes().to_vec()));
            for ((k, t), list) in &postings {
                let key = posting_key(Term::from_byte(*k).unwrap_or(Term::Time), t, list[list.len() - 1]);
                let found = items.iter().find(|(ik, _)| *ik == key).map(|(_, v)| decode_list(v));
                prop_assert_eq!(found, Some(Some(list.clone())));
            }
        }
    }
}
