//! The facts of many leaves, derived on several threads at once: what
//! opening the indexes does for the leaves past the built spans (every
//! leaf, once the indexes were deleted or lost), while nothing else runs.
//!
//! The caller reads the leaves in order and hands each to a [`Deriver`],
//! which keeps a copy until it holds a chunk; then each of `workers`
//! threads (the caller's, and helpers that live as long as the
//! [`std::thread::Scope`] they were started in) derives the facts of a
//! part of the chunk, and the caller gets them back in leaf order. The
//! parts' buffers go back and forth with the work, so a chunk's memory
//! is allocated once.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

use ledger::Log;

use crate::index::Facts;

/// Leaves held before their facts are derived.
const CHUNK: usize = 4096;

/// Leaves, with their indices; the buffers are kept when it is emptied.
#[derive(Default)]
struct Part {
    leaves: Vec<(u64, Vec<u8>)>,
    len: usize,
}

impl Part {
    fn push(&mut self, index: u64, leaf: &[u8]) {
        match self.leaves.get_mut(self.len) {
            Some((i, bytes)) => {
                *i = index;
                bytes.clear();
                bytes.extend_from_slice(leaf);
            }
            None => self.leaves.push((index, leaf.to_vec())),
        }
        self.len += 1;
    }

    /// The facts of the leaves held ([`Facts::of_entry`]), in order; empties it.
    fn facts(&mut self, log: &Log) -> Vec<Option<Facts>> {
        let len = std::mem::take(&mut self.len);
        self.leaves[..len]
            .iter()
            .map(|(i, leaf)| Facts::of_entry(log, *i, leaf))
            .collect()
    }
}

/// A helper thread: the part it fills next, and the way to it and back.
struct Helper<'scope> {
    part: Part,
    to: SyncSender<Part>,
    back: Receiver<(Part, Vec<Option<Facts>>)>,
    thread: Option<ScopedJoinHandle<'scope, ()>>,
}

/// Derives the facts of leaves on `workers` threads (see the module docs).
pub(crate) struct Deriver<'scope, 'log> {
    log: &'log Log,
    /// The first part of each chunk, which the caller's thread derives.
    own: Part,
    helpers: Vec<Helper<'scope>>,
    /// Leaves held, in all parts.
    held: usize,
    /// Leaves a part holds of a whole chunk.
    per_part: usize,
}

impl<'scope, 'log: 'scope> Deriver<'scope, 'log> {
    /// A deriver of the facts of `log`'s leaves on `workers` threads, the
    /// helpers started in `scope`.
    pub(crate) fn new<'env>(
        scope: &'scope Scope<'scope, 'env>,
        log: &'log Log,
        workers: usize,
    ) -> Deriver<'scope, 'log> {
        let workers = workers.clamp(1, CHUNK);
        let helpers = (1..workers)
            .map(|_| {
                let (to, jobs) = sync_channel::<Part>(1);
                let (done, back) = sync_channel(1);
                let thread = scope.spawn(move || {
                    for mut part in jobs {
                        let facts = part.facts(log);
                        if done.send((part, facts)).is_err() {
                            return;
                        }
                    }
                });
                Helper {
                    part: Part::default(),
                    to,
                    back,
                    thread: Some(thread),
                }
            })
            .collect();
        Deriver {
            log,
            own: Part::default(),
            helpers,
            held: 0,
            per_part: CHUNK.div_ceil(workers),
        }
    }

    /// Adds leaf `index`, whose entry is `leaf`; once a chunk is held,
    /// hands `out` the facts of every leaf held ([`Deriver::flush`]).
    pub(crate) fn push(&mut self, index: u64, leaf: &[u8], out: &mut impl FnMut(Option<Facts>)) {
        match self.held / self.per_part {
            0 => self.own.push(index, leaf),
            n => self.helpers[n - 1].part.push(index, leaf),
        }
        self.held += 1;
        if self.held == self.per_part * (self.helpers.len() + 1) {
            self.flush(out);
        }
    }

    /// Hands `out` the facts of every leaf held, in the order they were
    /// added, and empties it.
    pub(crate) fn flush(&mut self, out: &mut impl FnMut(Option<Facts>)) {
        self.held = 0;
        let mut sent = Vec::with_capacity(self.helpers.len());
        for h in &mut self.helpers {
            if h.part.len == 0 {
                sent.push(false);
                continue;
            }
            // A helper that ended leaves its part to this thread.
            match h.to.send(std::mem::take(&mut h.part)) {
                Ok(()) => sent.push(true),
                Err(e) => {
                    h.part = e.0;
                    sent.push(false);
                }
            }
        }
        self.own.facts(self.log).into_iter().for_each(&mut *out);
        for (h, sent) in self.helpers.iter_mut().zip(sent) {
            let facts = if sent {
                match h.back.recv() {
                    Ok((part, facts)) => {
                        h.part = part;
                        facts
                    }
                    // It took the part and ended (it ends only when it
                    // panics): its panic, passed on.
                    Err(_) => {
                        let panic = h.thread.take().and_then(|t| t.join().err());
                        std::panic::resume_unwind(
                            panic.unwrap_or_else(|| Box::new("a thread deriving facts ended")),
                        )
                    }
                }
            } else {
                h.part.facts(self.log)
            };
            facts.into_iter().for_each(&mut *out);
        }
    }
}
