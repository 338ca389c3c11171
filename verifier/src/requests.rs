//! The findings that need two decisions of one request, over a stream of
//! decisions in log order and in bounded memory (specs/export.md, "The
//! report"): a policy engine and a gate that decided differently
//! (`engine_gate_disagree`), a token issuer that denied what a gate allowed
//! (`issuer_gate_disagree`), and one policy applied in two versions
//! (`policy_version_mismatch`). The first two carry the same text as in a
//! chain bundle ([`crate::findings::across`]).
//!
//! Decisions are grouped into requests as the agreement table groups them
//! ([`crate::findings::agreement`]: by `context.request_id`, else by
//! `trace_id`). Each decision is compared with the decisions held of its
//! request when it arrives, so each pair is found once, by its later
//! decision. What is held is bounded: the [`OPEN_REQUESTS`] requests first
//! seen most recently (the one first seen longest ago is dropped to make
//! room, however recent its last decision) and the first [`HOPS_HELD`]
//! decisions of each. Two decisions of one request with more than
//! [`OPEN_REQUESTS`] other requests first seen between them in the log are
//! therefore not compared. The bound is what lets a verifier rebuild the
//! report of a 10^7-decision window on a small machine, and it is the same
//! for the maker and the verifier, so both find exactly the same.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use crate::decision::Decision;
use crate::findings::{
    engine_gate_disagree, issuer_gate_disagree, write_request, Finding, Role, Side,
};

/// Requests held at once.
pub const OPEN_REQUESTS: usize = 65_536;

/// Decisions held of one request; later ones are still compared with them.
pub const HOPS_HELD: usize = 16;

/// Slots made when the first request is seen; then as many again each
/// time they are all taken.
const SLOTS_FIRST: usize = 1024;

/// Positions of the index: twice the requests held, so a probe always
/// ends at an empty position.
const INDEX_LEN: usize = 2 * OPEN_REQUESTS;

/// One decision, as much of it as the findings name: in the text of its
/// request's slot, the decision id, then `enforcer.kind enforcer.id`, then
/// `policy.id@policy.version`, from `start` to `end`.
#[derive(Clone, Copy, Debug)]
struct Hop {
    start: u32,
    enforcer_at: u32,
    policy_at: u32,
    id_len: u32,
    end: u32,
    role: Role,
    deny: bool,
}

impl Hop {
    /// Appends `d`'s text to `text`; `None` (and `text` as it was) when
    /// `text` would outgrow `u32` offsets, which no record reaches.
    fn write(d: &Decision, text: &mut String) -> Option<Hop> {
        let (e, p) = (&d.enforcer, &d.policy);
        let at = |t: &String| u32::try_from(t.len()).ok();
        let start = at(text)?;
        let hop = (|| {
            text.push_str(&d.decision_id);
            let enforcer_at = at(text)?;
            text.push_str(&e.kind);
            text.push(' ');
            text.push_str(&e.id);
            let policy_at = at(text)?;
            text.push_str(&p.id);
            text.push('@');
            text.push_str(&p.version);
            Some(Hop {
                start,
                enforcer_at,
                policy_at,
                id_len: u32::try_from(p.id.len()).ok()?,
                end: at(text)?,
                role: Role::of(&e.kind),
                deny: d.decision == "deny",
            })
        })();
        if hop.is_none() {
            text.truncate(start as usize);
        }
        hop
    }

    /// The hop read in the text it was written to.
    fn in_text<'a>(&self, text: &'a str) -> HopText<'a> {
        let at = |i: u32| i as usize;
        HopText {
            decision_id: &text[at(self.start)..at(self.enforcer_at)],
            enforcer: &text[at(self.enforcer_at)..at(self.policy_at)],
            policy: &text[at(self.policy_at)..at(self.end)],
            id_len: at(self.id_len),
            role: self.role,
            deny: self.deny,
        }
    }
}

/// A [`Hop`] with its text.
#[derive(Clone, Copy)]
struct HopText<'a> {
    decision_id: &'a str,
    enforcer: &'a str,
    /// `policy.id@policy.version`.
    policy: &'a str,
    id_len: usize,
    role: Role,
    deny: bool,
}

impl<'a> HopText<'a> {
    fn policy_id(&self) -> &'a str {
        &self.policy[..self.id_len]
    }

    fn side(&self) -> Side<'a> {
        Side {
            enforcer: self.enforcer,
            decision_id: self.decision_id,
            decision: if self.deny { "deny" } else { "allow" },
        }
    }
}

/// A request held: its key, and its first decisions. Slots are made in
/// bursts ([`Requests::grow`]) and reused, buffers and all, so holding
/// requests allocates next to nothing once they are made.
#[derive(Debug, Default)]
struct Slot {
    key: String,
    hash: u64,
    text: String,
    hops: Vec<Hop>,
}

/// The requests seen so far, and the findings between their decisions.
#[derive(Debug, Default)]
pub struct Requests {
    /// Up to [`OPEN_REQUESTS`], taken in the order requests are first
    /// seen, then reused from the oldest on.
    slots: Vec<Slot>,
    /// The slots taken so far.
    taken: usize,
    /// The slot to reuse next once all are taken: the oldest request.
    oldest: usize,
    /// Open addressing over the keys: a slot's number plus one, or 0 for
    /// an empty position; [`INDEX_LEN`] positions once the first request
    /// is seen. Keys are compared whole, so the hash only decides where
    /// to look; it is keyed at random so that no records can be made to
    /// pile up in one place.
    index: Vec<u32>,
    state: RandomState,
    /// The request of the decision being added.
    key: String,
    /// The text of the decision being added.
    text: String,
}

impl Requests {
    /// Takes the next decision of the log; returns what it shows with the
    /// decisions held of its request. A decision with neither request id
    /// nor trace id is a request of its own and shows nothing.
    pub fn add(&mut self, d: &Decision) -> Vec<Finding> {
        let mut key = std::mem::take(&mut self.key);
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        let out = match Hop::write(d, &mut text) {
            Some(hop) if write_request(d, &mut key) => self.add_hop(&key, hop, &text),
            _ => Vec::new(),
        };
        self.key = key;
        self.text = text;
        out
    }

    fn add_hop(&mut self, key: &str, hop: Hop, text: &str) -> Vec<Finding> {
        let slot = self.slot_of(key);
        let slot = &mut self.slots[slot];
        let new = hop.in_text(text);
        let held = || slot.hops.iter().map(|h| h.in_text(&slot.text));
        let mut out = Vec::new();
        for other in held() {
            match (other.role, new.role) {
                (Role::PolicyEngine, Role::Gate) if other.deny != new.deny => {
                    out.push(engine_gate_disagree(key, other.side(), new.side()))
                }
                (Role::Gate, Role::PolicyEngine) if other.deny != new.deny => {
                    out.push(engine_gate_disagree(key, new.side(), other.side()))
                }
                (Role::TokenIssuer, Role::Gate) if other.deny && !new.deny => {
                    out.push(issuer_gate_disagree(key, other.side(), new.side()))
                }
                (Role::Gate, Role::TokenIssuer) if new.deny && !other.deny => {
                    out.push(issuer_gate_disagree(key, new.side(), other.side()))
                }
                _ => {}
            }
        }
        let same_policy = |h: &HopText| h.policy_id() == new.policy_id();
        if !held().filter(same_policy).any(|h| h.policy == new.policy) {
            if let Some(other) = held().find(same_policy) {
                out.push(Finding {
                    code: "policy_version_mismatch",
                    decisions: vec![other.decision_id.to_string(), new.decision_id.to_string()],
                    message: format!(
                        "{key}: policy {} was applied in another version: {} in {}, {} in {}",
                        new.policy_id(),
                        other.policy,
                        other.decision_id,
                        new.policy,
                        new.decision_id
                    ),
                });
            }
        }
        if slot.hops.len() < HOPS_HELD {
            if let Ok(shift) = u32::try_from(slot.text.len()) {
                let moved = [hop.start, hop.enforcer_at, hop.policy_at, hop.end]
                    .map(|at| at.checked_add(shift));
                if let [Some(start), Some(enforcer_at), Some(policy_at), Some(end)] = moved {
                    slot.text.push_str(text);
                    slot.hops.push(Hop {
                        start,
                        enforcer_at,
                        policy_at,
                        end,
                        ..hop
                    });
                }
            }
        }
        out
    }

    /// The slot of request `key`, taken (from the oldest request, once
    /// all are taken) if the request is not held.
    fn slot_of(&mut self, key: &str) -> usize {
        if self.index.is_empty() {
            self.index = vec![0; INDEX_LEN];
        }
        let hash = self.state.hash_one(key);
        if let Ok(at) = self.find(key, hash) {
            return self.index[at] as usize - 1;
        }
        let slot = if self.taken < OPEN_REQUESTS {
            if self.taken == self.slots.len() {
                self.grow();
            }
            self.taken += 1;
            self.taken - 1
        } else {
            let slot = self.oldest;
            self.oldest = (slot + 1) % OPEN_REQUESTS;
            self.forget(slot);
            slot
        };
        // Where the probe ends now that the oldest request is forgotten.
        let (Ok(at) | Err(at)) = self.find(key, hash);
        self.index[at] = slot as u32 + 1;
        let s = &mut self.slots[slot];
        s.key.clear();
        s.key.push_str(key);
        s.hash = hash;
        s.text.clear();
        s.hops.clear();
        slot
    }

    /// Makes room for more requests: as many again as there are (at least
    /// [`SLOTS_FIRST`], at most up to [`OPEN_REQUESTS`]), all at once.
    /// Slots made one by one, between the allocations each decision makes
    /// and frees, would scatter long-lived blocks through the heap and
    /// leave it fragmented: measured, that made every allocation of the
    /// rest of an export slower, a verification ~20% slower in all.
    fn grow(&mut self) {
        let more = self
            .slots
            .len()
            .max(SLOTS_FIRST)
            .min(OPEN_REQUESTS - self.slots.len());
        self.slots.reserve_exact(more);
        self.slots.extend((0..more).map(|_| Slot {
            key: String::with_capacity(64),
            hash: 0,
            text: String::with_capacity(256),
            hops: Vec::with_capacity(4),
        }));
    }

    /// The position of `key` in the index, or the empty position where
    /// its probe ends.
    fn find(&self, key: &str, hash: u64) -> Result<usize, usize> {
        let mask = INDEX_LEN - 1;
        let mut at = hash as usize & mask;
        loop {
            match self.index[at] {
                0 => return Err(at),
                n if self.slots[n as usize - 1].key == key => return Ok(at),
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// Takes `slot`'s request out of the index, shifting back the keys
    /// after it so that every probe still finds them (linear probing
    /// deletion, Knuth vol. 3, §6.4, Algorithm R).
    fn forget(&mut self, slot: usize) {
        let mask = INDEX_LEN - 1;
        let mut at = self.slots[slot].hash as usize & mask;
        while self.index[at] as usize != slot + 1 {
            at = (at + 1) & mask;
        }
        let mut empty = at;
        self.index[empty] = 0;
        let mut next = empty;
        loop {
            next = (next + 1) & mask;
            let n = self.index[next];
            if n == 0 {
                return;
            }
            let home = self.slots[n as usize - 1].hash as usize & mask;
            // The key at `next` may move to `empty` unless its home lies
            // cyclically in (empty, next].
            let stays = if empty <= next {
                empty < home && home <= next
            } else {
                empty < home || home <= next
            };
            if !stays {
                self.index[empty] = n;
                self.index[next] = 0;
                empty = next;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, VecDeque};

    use super::*;

    /// The index against the plainest model of it: a map of the held keys
    /// to their slots, and the keys in the order first seen. Keys are
    /// drawn from a pool larger than [`OPEN_REQUESTS`], so requests are
    /// found again, forgotten and seen anew, and the index is filled to
    /// its bound, where probes are longest and forgetting shifts keys.
    #[test]
    fn slots_follow_a_first_in_first_out_model() {
        let mut requests = Requests::default();
        let mut held: HashMap<String, usize> = HashMap::new();
        let mut order: VecDeque<String> = VecDeque::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..4 * OPEN_REQUESTS {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = format!("request_id r{}", x % (3 * OPEN_REQUESTS as u64 / 2));
            let expected = match held.get(&key) {
                Some(&slot) => slot,
                None => {
                    let slot = if order.len() < OPEN_REQUESTS {
                        order.len()
                    } else {
                        let oldest = order.pop_front().unwrap();
                        held.remove(&oldest).unwrap()
                    };
                    order.push_back(key.clone());
                    held.insert(key.clone(), slot);
                    slot
                }
            };
            assert_eq!(requests.slot_of(&key), expected, "{key}");
        }
        assert_eq!(
            requests.index.iter().filter(|&&n| n != 0).count(),
            OPEN_REQUESTS
        );
        for (key, slot) in &held {
            let at = requests.find(key, requests.state.hash_one(key.as_str()));
            assert_eq!(at.map(|at| requests.index[at] as usize - 1), Ok(*slot));
        }
    }
}
