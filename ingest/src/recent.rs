//! [`Recent`]: the batcher's own table of every `decision_id` the built
//! index does not hold yet — the leaves committed since the last span was
//! built, and those prepared but not yet durable — so that the batcher
//! answers retries from memory without sharing a lock with the
//! acknowledger (docs/design/ingest.md, "Who asks where").
//!
//! Entries are kept in leaf order; a span build drops a prefix and a failed
//! commit drops a suffix. The id table holds only sequence numbers into
//! that queue, hashed with a per-process seed (foldhash).

use std::collections::VecDeque;
use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use verifier::Hash;

/// A logged or prepared leaf's identity.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub(crate) decision_id: String,
    pub(crate) index: u64,
    /// Known for the leaves this batcher prepared; read from the log for
    /// those it found in memory when it started.
    pub(crate) leaf_hash: Option<Hash>,
    pub(crate) digest: [u8; 32],
}

#[derive(Default)]
pub(crate) struct Recent {
    /// In leaf order; `queue[0]` has sequence number `first_seq`.
    queue: VecDeque<Pending>,
    first_seq: u64,
    /// (hash, sequence number), found by `decision_id`; entries outside
    /// `first_seq..first_seq + queue.len()` are stale.
    by_id: HashTable<(u64, u64)>,
    hasher: RandomState,
}

impl Recent {
    fn at(&self, seq: u64) -> Option<&Pending> {
        let i = seq.checked_sub(self.first_seq)?;
        self.queue.get(usize::try_from(i).ok()?)
    }

    /// The leaf of `decision_id`, if it is here.
    pub(crate) fn get(&self, decision_id: &str) -> Option<&Pending> {
        let hash = self.hasher.hash_one(decision_id);
        let (_, seq) = self.by_id.find(hash, |&(h, s)| {
            h == hash && self.at(s).is_some_and(|p| p.decision_id == decision_id)
        })?;
        self.at(*seq)
    }

    /// Adds a leaf after every earlier one. An id already here keeps its
    /// first leaf.
    pub(crate) fn push(&mut self, p: Pending) {
        if self.get(&p.decision_id).is_some() {
            return;
        }
        let seq = self.first_seq + self.queue.len() as u64;
        let hash = self.hasher.hash_one(p.decision_id.as_str());
        self.queue.push_back(p);
        self.by_id.insert_unique(hash, (hash, seq), |&(h, _)| h);
    }

    /// Forgets the leaves below `end`: the built index holds them. Their
    /// table slots are stale from now on and swept once they outnumber
    /// the live ones (one linear pass instead of a removal per id).
    pub(crate) fn built_below(&mut self, end: u64) {
        while self.queue.front().is_some_and(|p| p.index < end) {
            self.queue.pop_front();
            self.first_seq += 1;
        }
        if self.by_id.len() > 2 * self.queue.len() + 1024 {
            self.sweep();
        }
    }

    /// Forgets the leaves from `size` on (a commit failed: they were not
    /// appended).
    pub(crate) fn truncate(&mut self, size: u64) {
        let before = self.queue.len();
        while self.queue.back().is_some_and(|p| p.index >= size) {
            self.queue.pop_back();
        }
        if self.queue.len() != before {
            // Their sequence numbers will be handed out again.
            self.sweep();
        }
    }

    fn sweep(&mut self) {
        let live = self.first_seq..self.first_seq + self.queue.len() as u64;
        self.by_id.retain(|&mut (_, s)| live.contains(&s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(id: &str, index: u64) -> Pending {
        Pending {
            decision_id: id.into(),
            index,
            leaf_hash: Some(Hash([index as u8; 32])),
            digest: [1; 32],
        }
    }

    #[test]
    fn ids_leave_once_built_or_when_their_commit_failed() {
        let mut r = Recent::default();
        // Sweeps stale slots on the way without losing live ones.
        for i in 100..5000 {
            r.push(pending(&format!("e-{i}"), i));
            r.built_below(i);
        }
        assert!(r.get("e-4998").is_none());
        assert_eq!(r.get("e-4999").map(|p| p.index), Some(4999));
        for i in 5000..5100 {
            r.push(pending(&format!("d-{i}"), i));
        }
        assert_eq!(r.get("d-5042").map(|p| p.index), Some(5042));
        // The first leaf of an id is kept.
        r.push(pending("d-5042", 5100));
        assert_eq!(r.get("d-5042").map(|p| p.index), Some(5042));
        r.built_below(5050);
        assert!(r.get("d-5042").is_none());
        assert_eq!(r.get("d-5050").map(|p| p.index), Some(5050));
        // A failed commit: leaves 5080.. were not appended.
        r.truncate(5080);
        assert!(r.get("d-5080").is_none());
        assert!(r.get("d-5099").is_none());
        assert_eq!(r.get("d-5079").map(|p| p.index), Some(5079));
        // Their sequence numbers go to other ids; the old ids stay gone.
        for i in 0..20 {
            r.push(pending(&format!("x-{i}"), 5080 + i));
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
