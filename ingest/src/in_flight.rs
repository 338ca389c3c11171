//! [`InFlight`]: the `decision_id`s the batcher prepared that are not yet
//! known to be durable, so a retry racing its original is answered from
//! memory instead of being appended again.
//!
//! Entries are kept in the order they were prepared (ascending leaf index);
//! a commit report drops a prefix. The id table holds only sequence numbers
//! into that queue, hashed with a per-process seed (foldhash).

use std::collections::VecDeque;
use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use verifier::Hash;

/// A prepared leaf's identity.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub(crate) decision_id: String,
    pub(crate) index: u64,
    pub(crate) leaf_hash: Hash,
    pub(crate) digest: [u8; 32],
}

#[derive(Default)]
pub(crate) struct InFlight {
    /// In preparation order; `queue[0]` has sequence number `first_seq`.
    queue: VecDeque<Pending>,
    first_seq: u64,
    /// (hash, sequence number), found by `decision_id`; entries below
    /// `first_seq` are stale.
    by_id: HashTable<(u64, u64)>,
    hasher: RandomState,
}

impl InFlight {
    fn at(&self, seq: u64) -> &Pending {
        &self.queue[(seq - self.first_seq) as usize]
    }

    /// The in-flight leaf of `decision_id`, if any.
    pub(crate) fn get(&self, decision_id: &str) -> Option<&Pending> {
        let hash = self.hasher.hash_one(decision_id);
        let (_, seq) = self.by_id.find(hash, |&(h, s)| {
            h == hash && s >= self.first_seq && self.at(s).decision_id == decision_id
        })?;
        Some(self.at(*seq))
    }

    /// Adds a prepared leaf (after every earlier one).
    pub(crate) fn push(&mut self, p: Pending) {
        let seq = self.first_seq + self.queue.len() as u64;
        let hash = self.hasher.hash_one(p.decision_id.as_str());
        self.queue.push_back(p);
        self.by_id.insert_unique(hash, (hash, seq), |&(h, _)| h);
    }

    /// Forgets the leaves below `end`: they are durable and indexed. Their
    /// table slots are stale from now on and swept once they outnumber
    /// the live ones (one linear pass instead of a removal per id).
    pub(crate) fn committed_below(&mut self, end: u64) {
        while self.queue.front().is_some_and(|p| p.index < end) {
            self.queue.pop_front();
            self.first_seq += 1;
        }
        if self.by_id.len() > 2 * self.queue.len() + 1024 {
            let live = self.first_seq;
            self.by_id.retain(|&mut (_, s)| s >= live);
        }
    }

    /// Forgets everything (a commit failed; nothing prepared is durable).
    pub(crate) fn clear(&mut self) {
        self.first_seq += self.queue.len() as u64;
        self.queue.clear();
        self.by_id.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(id: &str, index: u64) -> Pending {
        Pending {
            decision_id: id.into(),
            index,
            leaf_hash: Hash([index as u8; 32]),
            digest: [1; 32],
        }
    }

    #[test]
    fn ids_leave_once_committed_and_all_leave_on_clear() {
        let mut f = InFlight::default();
        // Sweeps stale slots on the way without losing live ones.
        for i in 100..5000 {
            f.push(pending(&format!("e-{i}"), i));
            f.committed_below(i);
        }
        assert!(f.get("e-4998").is_none());
        assert_eq!(f.get("e-4999").map(|p| p.index), Some(4999));
        f.clear();
        for i in 0..100 {
            f.push(pending(&format!("d-{i}"), i));
        }
        assert_eq!(f.get("d-42").map(|p| p.index), Some(42));
        f.committed_below(50);
        assert!(f.get("d-42").is_none());
        assert_eq!(f.get("d-50").map(|p| p.index), Some(50));
        assert_eq!(f.get("d-99").map(|p| p.leaf_hash), Some(Hash([99; 32])));
        f.clear();
        assert!(f.get("d-99").is_none());
        f.push(pending("d-99", 50));
        assert_eq!(f.get("d-99").map(|p| p.index), Some(50));
        f.committed_below(51);
        assert!(f.get("d-99").is_none());
    }
}
