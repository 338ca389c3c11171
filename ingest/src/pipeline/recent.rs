//! [`Recent`]: the batcher's own table of every `decision_id` the built
//! index does not hold yet — the leaves committed since the last span was
//! built, and those prepared but not yet durable — so that the batcher
//! answers retries from memory without sharing a lock with the
//! acknowledger (docs/design/ingest.md, "Who asks where").
//!
//! Entries are kept in leaf order, a table per span; a span build drops the
//! span's table and a failed commit drops a suffix. Ids are hashed with a
//! per-process seed (foldhash).

use std::collections::VecDeque;
use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use verifier::Hash;

/// Where a logged or prepared `decision_id` is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending {
    pub(crate) index: u64,
    /// Known for the leaves this batcher prepared; read from the log for
    /// those it found in memory when it started.
    pub(crate) leaf_hash: Option<Hash>,
    pub(crate) digest: [u8; 32],
}

/// One leaf's entry: where its id is spelled in [`SpanIds::ids`].
#[derive(Clone, Copy, Debug)]
struct Entry {
    id_at: u32,
    id_len: u32,
    pending: Pending,
}

/// The ids of one span's leaves.
struct SpanIds {
    start: u64,
    /// In leaf order.
    entries: Vec<Entry>,
    /// The entries' ids, one after another: copied here rather than each
    /// cloned into an allocation of its own, which every record cost, and
    /// which the batcher freed one by one when a span was built.
    ids: Vec<u8>,
    /// (hash, position in `entries`), found by `decision_id`.
    by_id: HashTable<(u64, u32)>,
}

/// Writes to every page of `table`'s allocation once, then empties it:
/// dummy entries up to its capacity (within which a table never grows, so
/// every insert lands in the allocation being paged in).
fn page_in_table(table: &mut HashTable<(u64, u32)>) {
    let (mut h, odd) = (0u64, 0x9e37_79b9_7f4a_7c15u64);
    for i in 0..table.capacity() as u32 {
        h = h.wrapping_add(odd);
        table.insert_unique(h, (h, i), |&(h, _)| h);
    }
    table.clear();
}

impl SpanIds {
    fn new(room: usize) -> SpanIds {
        SpanIds {
            start: 0,
            entries: Vec::with_capacity(room),
            // Room for ids of 48 bytes on average (a UUID is 36).
            ids: Vec::with_capacity(room * 48),
            by_id: HashTable::with_capacity(room),
        }
    }

    /// Empty, with every page of its tables written to once.
    fn paged_in(room: usize) -> SpanIds {
        let mut ids = SpanIds::new(room);
        let entry = Entry {
            id_at: 0,
            id_len: 0,
            pending: Pending {
                index: 0,
                leaf_hash: None,
                digest: [0; 32],
            },
        };
        ids.entries.resize(room, entry);
        ids.ids.resize(ids.ids.capacity(), 0);
        ids.clear();
        page_in_table(&mut ids.by_id);
        ids
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.ids.clear();
        self.by_id.clear();
    }

    fn id(&self, e: &Entry) -> &[u8] {
        let at = e.id_at as usize;
        self.ids.get(at..at + e.id_len as usize).unwrap_or_default()
    }
}

/// Spare tables kept paged in.
const SPARES: usize = 2;

pub(crate) struct Recent {
    span: u64,
    /// Entries a span's table is sized for.
    room: usize,
    /// In leaf order, a table per span: a built span leaves as a whole, and
    /// no table grows (and rehashes) past a span.
    spans: VecDeque<SpanIds>,
    /// Emptied tables, paged in, for the next spans (two at most: the
    /// next span's, and the one after, which starts before the span
    /// before it is built).
    spares: Vec<SpanIds>,
    hasher: RandomState,
}

impl Recent {
    /// Empty, for spans of `span` leaves, with the tables of the next two
    /// spans paged in: each page first written costs a fault that zeroes
    /// it, and the batcher would pay for those as the first spans fill.
    pub(crate) fn new(span: u64) -> Recent {
        let span = span.max(1);
        let room = usize::try_from(span.min(crate::index::SPAN)).unwrap_or(0);
        Recent {
            span,
            room,
            spans: VecDeque::new(),
            spares: (0..SPARES).map(|_| SpanIds::paged_in(room)).collect(),
            hasher: RandomState::default(),
        }
    }

    /// The leaf of `decision_id`, if it is here.
    pub(crate) fn get(&self, decision_id: &str) -> Option<&Pending> {
        let hash = self.hasher.hash_one(decision_id);
        self.spans.iter().find_map(|s| {
            let (_, at) = s.by_id.find(hash, |&(h, at)| {
                h == hash && s.id(&s.entries[at as usize]) == decision_id.as_bytes()
            })?;
            Some(&s.entries[*at as usize].pending)
        })
    }

    /// Adds a leaf after every earlier one, whose id is not here (the
    /// batcher appends an id only after [`Recent::get`] did not find it).
    pub(crate) fn push(&mut self, decision_id: &str, p: Pending) {
        let start = p.index - p.index % self.span;
        if self.spans.back().is_none_or(|s| s.start != start) {
            let mut ids = self.spares.pop().unwrap_or_else(|| SpanIds::new(self.room));
            ids.start = start;
            self.spans.push_back(ids);
        }
        let Some(s) = self.spans.back_mut() else {
            return;
        };
        let hash = self.hasher.hash_one(decision_id);
        let at = s.entries.len() as u32;
        s.entries.push(Entry {
            id_at: s.ids.len() as u32,
            id_len: decision_id.len() as u32,
            pending: p,
        });
        s.ids.extend_from_slice(decision_id.as_bytes());
        s.by_id.insert_unique(hash, (hash, at), |&(h, _)| h);
    }

    /// Forgets the spans wholly below `end`: the built index holds them.
    pub(crate) fn built_below(&mut self, end: u64) {
        while self
            .spans
            .front()
            .is_some_and(|s| s.start + self.span <= end)
        {
            if let Some(mut s) = self.spans.pop_front() {
                s.clear();
                if self.spares.len() < SPARES {
                    self.spares.push(s);
                }
            }
        }
    }

    /// Forgets the leaves from `size` on (a commit failed: they were not
    /// appended).
    pub(crate) fn truncate(&mut self, size: u64) {
        while self.spans.back().is_some_and(|s| s.start >= size) {
            self.spans.pop_back();
        }
        if let Some(s) = self.spans.back_mut() {
            let keep = s.entries.partition_point(|e| e.pending.index < size);
            if let Some(first_gone) = s.entries.get(keep).copied() {
                s.entries.truncate(keep);
                s.ids.truncate(first_gone.id_at as usize);
                s.by_id.retain(|&mut (_, at)| (at as usize) < keep);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(index: u64) -> Pending {
        Pending {
            index,
            leaf_hash: Some(Hash([index as u8; 32])),
            digest: [1; 32],
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

    #[test]
    fn ids_leave_once_built_or_when_their_commit_failed() {
        // Spans of 10 leaves.
        let mut r = Recent::new(10);
        for i in 100..5000 {
            r.push(&format!("e-{i}"), pending(i));
            r.built_below(i - i % 10);
        }
        assert!(r.get("e-4989").is_none());
        assert_eq!(r.get("e-4990").map(|p| p.index), Some(4990));
        assert_eq!(r.get("e-4999").map(|p| p.index), Some(4999));
        for i in 5000..5100 {
            r.push(&format!("d-{i}"), pending(i));
        }
        assert_eq!(r.get("d-5042").map(|p| p.index), Some(5042));
        // Only whole spans leave.
        r.built_below(5055);
        assert!(r.get("d-5042").is_none());
        assert_eq!(r.get("d-5050").map(|p| p.index), Some(5050));
        // A failed commit: leaves 5075.. were not appended.
        r.truncate(5075);
        assert!(r.get("d-5075").is_none());
        assert!(r.get("d-5080").is_none());
        assert!(r.get("d-5099").is_none());
        assert_eq!(r.get("d-5074").map(|p| p.index), Some(5074));
        r.push("y-5075", pending(5075));
        r.push("y-5076", pending(5076));
        r.push("y-5077", pending(5077));
        r.push("y-5078", pending(5078));
        r.push("y-5079", pending(5079));
        // Their places go to other ids; the old ids stay gone.
        for i in 0..20 {
            r.push(&format!("x-{i}"), pending(5080 + i));
        }
        assert!(r.get("d-5085").is_none());
        assert_eq!(r.get("x-5").map(|p| p.index), Some(5085));
        assert_eq!(
            r.get("x-5").and_then(|p| p.leaf_hash),
            Some(Hash([5085u64 as u8; 32]))
        );
        r.built_below(u64::MAX);
        assert!(r.get("x-19").is_none());
    }
}
