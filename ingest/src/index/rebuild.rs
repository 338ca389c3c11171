//! Indexes rebuilt from the leaves while the ledger runs
//! ([`Indexes::rebuild_beside`]), for index files found damaged
//! (specs/storage.md, "Decision indexes").
//!
//! The built spans are made again, one at a time from their leaves, in a
//! second database beside the one in use ([`ledger::SpareIndexes`]),
//! while appends, span builds and lookups go on against the first. When
//! the rebuild is within a span of the live indexes, span builds are held
//! (`building`), the spans built meanwhile are made too, and the new
//! database is put in place ([`ledger::Log::replace_indexes`]). Retention
//! changes built spans only while holding `building` and by moving the
//! first kept leaf; erasures count each change (`Indexes::changed`),
//! also when their entries are gone. A moved first kept leaf or a counted
//! change during the rebuild, or an erasure under way when it would be
//! put in place, makes it start again, as the spans it had made may hold
//! what was since removed.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ledger::{LedgerError, SpareIndexes};

use crate::index::span::SpanIndex;
use crate::index::{mark_key, Facts, CF_DECISIONS, CF_POSTINGS, SPAN};
use crate::Indexes;

/// Why a rebuild stopped by [`Indexes::stop`] was not put in place.
pub const STOPPED: &str = "the ledger is stopping";

/// Rebuilds begun again at most, when retention or erasures keep changing
/// the indexes, before [`Indexes::rebuild_beside`] gives up.
const ATTEMPTS: u32 = 3;

/// What [`Indexes::rebuild_beside`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rebuilt {
    /// The built spans rebuilt: leaves `from..to`.
    pub from: u64,
    /// The end of the built spans when the new database was put in place.
    pub to: u64,
    /// How long it took.
    pub took: Duration,
}

/// A span index a rebuild holds, given back to the spares when it ends
/// however it ends.
struct Lent<'a> {
    indexes: &'a Indexes,
    index: SpanIndex,
    /// Leaves counted as held ([`Indexes::unbuilt_and_held`]) while it is.
    held: u64,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let index = std::mem::replace(&mut self.index, SpanIndex::new(0, 0));
        self.indexes.give_back_spare(index);
        self.indexes.held.fetch_sub(self.held, Ordering::AcqRel);
    }
}

impl Indexes {
    /// Builds the built spans' `decisions` map and postings again from
    /// the leaves, in a new database beside the one in use, and puts it
    /// in that one's place, while appends, lookups and searches go on:
    /// for index files found damaged while the ledger runs. The spans in
    /// memory are not touched. Lookups wait a moment while the databases
    /// are swapped. Fails, changing nothing, when the log's leaves cannot
    /// be read, or retention or erasures changed the indexes during each
    /// of a few attempts ([`LedgerError::RebuildNotPlaced`]), or
    /// [`Indexes::stop`] was called ([`STOPPED`]).
    pub fn rebuild_beside(&self) -> Result<Rebuilt, LedgerError> {
        let started = Instant::now();
        let rebuilt = self.rebuild_attempts(started);
        self.rebuilt_to.store(0, Ordering::Relaxed);
        rebuilt
    }

    /// The leaf up to which a rebuild running now has made the built
    /// spans again; 0 when none runs.
    pub fn rebuilt_to(&self) -> u64 {
        self.rebuilt_to.load(Ordering::Relaxed)
    }

    fn rebuild_attempts(&self, started: Instant) -> Result<Rebuilt, LedgerError> {
        for _ in 0..ATTEMPTS {
            if let Some((from, to)) = self.try_rebuild()? {
                return Ok(Rebuilt {
                    from,
                    to,
                    took: started.elapsed(),
                });
            }
        }
        Err(LedgerError::RebuildNotPlaced(format!(
            "retention or erasures changed the indexes during each of {ATTEMPTS} rebuilds"
        )))
    }

    /// One attempt of [`Indexes::rebuild_beside`]: `None` if the indexes
    /// changed meanwhile.
    fn try_rebuild(&self) -> Result<Option<(u64, u64)>, LedgerError> {
        let log = self.log();
        let (changes, kept) = (self.changes(), log.first_kept());
        let unchanged = || {
            self.changes() == changes
                && log.first_kept() == kept
                && self.erasing.load(Ordering::Acquire) == 0
        };
        let spare = log.spare_indexes()?;
        let span = self.span();
        // The spans below the first kept leaf's hold no leaf: marked built.
        let from = self.span_of(kept).min(self.built());
        if from > 0 {
            spare.put(CF_POSTINGS, &mark_key(from - span), &from.to_be_bytes())?;
        }
        // The spare span index when there is one: a rebuild holds one span
        // at a time, and its memory is then the budget's. Without one (all
        // in use under load), the span it holds counts as unbuilt leaves
        // until it is done, so that writes are refused a span sooner.
        let (index, held) = match self.borrow_spare() {
            Some(index) => (index, 0),
            None => (SpanIndex::new(from, span.min(SPAN) as usize), span),
        };
        self.held.fetch_add(held, Ordering::AcqRel);
        let mut lent = Lent {
            indexes: self,
            index,
            held,
        };
        let index = &mut lent.index;
        let mut at = from;
        // Up to the live indexes, without holding their builds, until
        // they are within a span, or the rebuild no longer gains on them
        // (appends at full speed): the rest is made with builds held, and
        // the leaves appended meanwhile wait in memory (past the memory
        // budget, writes are answered 503 until the builds go on).
        let mut behind = u64::MAX;
        loop {
            let built = self.built();
            let left = built.saturating_sub(at);
            if left <= span || left >= behind {
                break;
            }
            behind = left;
            while at < built {
                self.stop_point()?;
                self.build_spare_span(&spare, index, at, kept)?;
                at += span;
                if !unchanged() {
                    return Ok(None);
                }
            }
        }
        let _one = self.building.lock().unwrap_or_else(|p| p.into_inner());
        if !unchanged() {
            return Ok(None);
        }
        let built = self.built();
        while at < built {
            self.stop_point()?;
            self.build_spare_span(&spare, index, at, kept)?;
            at += span;
        }
        log.replace_indexes(spare)?;
        Ok(Some((from, built)))
    }

    /// Fails once [`Indexes::stop`] was called: the rebuild ends there,
    /// its spare database deleted.
    fn stop_point(&self) -> Result<(), LedgerError> {
        match self.stopping() {
            true => Err(LedgerError::RebuildNotPlaced(STOPPED.into())),
            false => Ok(()),
        }
    }

    /// Builds the span from `start` into `spare` from its leaves, those
    /// below `kept` left out, reusing `index`'s memory.
    fn build_spare_span(
        &self,
        spare: &SpareIndexes,
        index: &mut SpanIndex,
        start: u64,
        kept: u64,
    ) -> Result<(), LedgerError> {
        let log = self.log();
        let end = start + self.span();
        self.rebuilt_to.store(start, Ordering::Relaxed);
        *index = std::mem::replace(index, SpanIndex::new(start, 0)).restarted(start);
        let first = kept.clamp(start, end);
        for _ in start..first {
            index.add(Facts::unindexed());
        }
        log.scan_entries(first, end, |i, leaf| {
            index.add(Facts::of_entry(log, i, leaf).unwrap_or_else(Facts::unindexed));
            Ok::<(), LedgerError>(())
        })?;
        let _writing = self.span_writes.lock().unwrap_or_else(|p| p.into_inner());
        spare.ingest_sorted_with(CF_DECISIONS, |sink| {
            index.write_decisions(kept, |k, v| sink.put(k, v))
        })?;
        spare.ingest_sorted_with(CF_POSTINGS, |sink| {
            index.write_postings(end, kept, |k, v| sink.put(k, v))
        })?;
        Ok(())
    }

    /// How many times erasures have changed the built spans or erased
    /// entries since the indexes were opened.
    pub(crate) fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Counts a change of the built spans or of the leaves they are built
    /// from (erasures), so that a rebuild running meanwhile starts again.
    pub(crate) fn changed(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Pipeline, PipelineConfig, Submission};
    use std::sync::Arc;

    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn submission(id: &str) -> Submission {
        let v = crate::record::from_json(&serde_json::json!({
            "decision_id": id,
            "time": "2026-11-23T07:00:00.123Z",
            "enforcer": {"id": "gw", "kind": "gateway"},
            "subject": {"type": "user", "id": "alice", "identity_kind": "human"},
            "action": {"name": "GET /"},
            "resource": {"type": "api", "id": "r"},
            "policy": {"engine": "opa", "id": "p", "version": "1"},
            "decision": "allow"
        }));
        let sender = crate::input::Sender::relay("gw");
        Submission {
            record: crate::input::check_record(&v, 0, &sender).unwrap(),
            submitted_by: "gw".into(),
        }
    }

    /// A rebuild beside that finds no spare span index counts the one it
    /// holds as unbuilt leaves until it ends, so that writes are refused a
    /// span sooner; one that borrows a spare counts nothing more.
    #[test]
    fn a_span_held_outside_the_spares_counts_as_unbuilt_while_the_rebuild_runs() {
        let dir = tempfile::tempdir().unwrap();
        let key = verifier::SignerKey::from_seed("t.example/log", &[9; 32]).unwrap();
        let log = Arc::new(
            ledger::Log::open_with(dir.path(), &key.verifier(), crate::index::INGEST_CFS).unwrap(),
        );
        let indexes = Indexes::open_with_span(log.clone(), 4).unwrap();
        let leaves: Vec<[u8; 1]> = (0..10u8).map(|i| [i]).collect();
        log.append(&leaves).unwrap();
        indexes.apply(0, vec![Facts::unindexed(); 10], 10);
        indexes.build().unwrap();
        assert_eq!((indexes.built(), indexes.unbuilt_and_held()), (8, 2));
        let mut taken = Vec::new();
        while let Some(spare) = indexes.borrow_spare() {
            taken.push(spare);
        }
        let config = PipelineConfig {
            max_unbuilt: 4,
            ..PipelineConfig::default()
        };
        let pipeline = Pipeline::start(indexes.clone(), None, config);
        for spare in [false, true] {
            if spare {
                indexes.give_back_spare(taken.pop().unwrap());
            }
            // The rebuild makes the built spans, then waits for the span
            // builds held here before it puts its database in place.
            let builds = indexes.building.lock().unwrap();
            let rebuild = {
                let indexes = indexes.clone();
                std::thread::spawn(move || indexes.rebuild_beside())
            };
            wait_until("the rebuild reached the live indexes", || {
                indexes.rebuilt_to() == 4
            });
            let held = if spare { 0 } else { 4 };
            assert_eq!(indexes.unbuilt_and_held(), 2 + held);
            // 2 unbuilt leaves, and the held span: past `max_unbuilt`.
            match pipeline.submit(vec![submission(&format!("d-{spare}"))]) {
                Err(busy) => assert!(!spare && busy.unbuilt == 2, "{busy}"),
                Ok(rx) => {
                    assert!(spare);
                    drop(builds);
                    rx.blocking_recv().unwrap();
                    rebuild.join().unwrap().unwrap();
                    continue;
                }
            }
            drop(builds);
            rebuild.join().unwrap().unwrap();
            assert_eq!(indexes.unbuilt_and_held(), 2);
        }
        pipeline.shutdown();
    }
}
