//! [`Indexes`]: the responder indexes and the idempotency key over a log,
//! as built spans in RocksDB plus the newest spans in memory.
//!
//! A group commit writes only the leaves: a record's [`Facts`] are a
//! function of its leaf, so after a crash the facts of exactly the
//! committed leaves can be had again. Term-ordered `postings` and the
//! `decisions` map are built a span ([`SPAN`] leaves) at a time and ingested
//! as sorted SST files, which costs far less than a random memtable insert
//! per term per record. Until its span is built, a leaf's facts are served
//! from memory; [`Indexes::open`] rebuilds that part from the leaves.
//!
//! Readers look in memory first and in RocksDB second: a span leaves memory
//! only after it was ingested, so every fact is always in one of the two.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use ledger::{LedgerError, Log};

use crate::index::derive::Deriver;
use crate::index::span::SpanIndex;
use crate::index::{
    built_mark, decode_decision, mark_key, Facts, Logged, RecordFacts, Term, CF_DECISIONS,
    CF_POSTINGS, SPAN,
};

/// The indexes of one log.
pub struct Indexes {
    log: Arc<Log>,
    span: u64,
    /// Span indexes kept paged in ahead of use.
    spares: usize,
    /// Spans not yet built, by first leaf index, and the leaves applied.
    tail: RwLock<Tail>,
    /// Serialises span builds, and a build with the moves of the first
    /// kept leaf ([`Indexes::prune`]).
    pub(crate) building: Mutex<()>,
    /// Held by searches while they read built postings, and taken alone
    /// while retention replaces a span's postings file
    /// ([`Indexes::prune`]), during which the span has none.
    pub(crate) postings: RwLock<()>,
    /// The leaves below it are in the built spans (RocksDB) and no longer
    /// in memory; it moves only after a span's build was ingested.
    built: AtomicU64,
    /// The first kept leaf and when it was received, as last read
    /// ([`Indexes::kept_from`]).
    pub(crate) kept_from: Mutex<Option<(u64, verifier::timestamp::Timestamp)>>,
    /// Changes erasures made to the built spans or their leaves
    /// ([`Indexes::changed`]).
    pub(crate) changes: AtomicU64,
    /// Erasures taking terms out and erasing entries now.
    pub(crate) erasing: AtomicU64,
    /// The leaf up to which a rebuild beside has made the built spans
    /// again (0: none runs).
    pub(crate) rebuilt_to: AtomicU64,
    /// Leaves' worth of span index a rebuild beside holds outside the
    /// spares (none was spare when it began): counted as unbuilt, so that
    /// the span indexes in memory stay within the budget.
    pub(crate) held: AtomicU64,
    /// Held while a span's sorted files are written, by a build and by a
    /// rebuild beside: the groups and sorted terms a write makes (about
    /// 30 MiB a span) are there for one span at a time.
    pub(crate) span_writes: Mutex<()>,
    /// Set by [`Indexes::stop`]: a rebuild beside or a prune running stops
    /// at its next step.
    stopping: AtomicBool,
}

/// What the built spans (RocksDB) said about some `decision_id`s, asked
/// before a submission was queued ([`Indexes::lookup_built`]), so that the
/// batcher need not ask again. It holds for every leaf below `built`: a
/// leaf appended later is in the batcher's memory when it looks.
#[derive(Clone, Debug)]
pub(crate) struct BuiltAnswer {
    /// [`Indexes::built`] before the lookup: the answer covers the leaves
    /// below it.
    pub(crate) built: u64,
    /// One answer per id, in order.
    pub(crate) found: Vec<Option<Logged>>,
}

#[derive(Default)]
struct Tail {
    /// Complete spans are shared (`Arc`) while being built, so building
    /// them never holds the lock; only the newest span is ever changed.
    spans: BTreeMap<u64, Arc<SpanIndex>>,
    /// Leaves whose facts are in `spans` or built: everything below it.
    applied: u64,
    /// Emptied indexes, paged in, for the next spans (`Indexes::spares`
    /// at most).
    spares: Vec<SpanIndex>,
}

/// Spare span indexes kept paged in (~37 MB each) by default, so that the
/// next span does not page in its memory on the acknowledgement path: the
/// default memory budget's ([`crate::budget`]; a larger budget keeps more,
/// [`Indexes::open_with_spares`]).
pub const SPARES: usize = 1;

impl Indexes {
    /// Opens the indexes of `log`: reads the facts of the leaves past the
    /// built spans into memory and builds every complete span.
    pub fn open(log: Arc<Log>) -> Result<Arc<Indexes>, LedgerError> {
        Indexes::open_with(log, SPAN, SPARES, None)
    }

    /// [`Indexes::open`] keeping `spares` span indexes paged in ahead, and
    /// storing in `progress` the leaf up to which the leaves past the
    /// built spans have been read (what ledgerd shows while it opens: all
    /// of them, after the indexes were deleted).
    pub fn open_with_spares(
        log: Arc<Log>,
        spares: usize,
        progress: &AtomicU64,
    ) -> Result<Arc<Indexes>, LedgerError> {
        Indexes::open_with(log, SPAN, spares, Some(progress))
    }

    /// [`Indexes::open`] with another span length (tests use short spans; a
    /// store must always be opened with the same one).
    pub fn open_with_span(log: Arc<Log>, span: u64) -> Result<Arc<Indexes>, LedgerError> {
        Indexes::open_with(log, span, SPARES, None)
    }

    fn open_with(
        log: Arc<Log>,
        span: u64,
        spares: usize,
        progress: Option<&AtomicU64>,
    ) -> Result<Arc<Indexes>, LedgerError> {
        let span = span.max(1);
        let last = log.index_last(CF_POSTINGS)?;
        let built = built_mark(last.as_ref().map(|(k, v)| (k.as_slice(), v.as_slice())))?;
        // The leaves past the built spans are the index's log: their facts
        // are read back from the records in them.
        let mut tail = Tail {
            // Paged in now rather than page by page on the acknowledgement
            // path as the first spans fill (docs/design/ingest.md).
            spares: (0..spares)
                .map(|_| {
                    let mut s = SpanIndex::new(built, span.min(SPAN) as usize);
                    s.page_in();
                    s
                })
                .collect(),
            ..Tail::default()
        };
        let size = log.size();
        // Entries pruned past the built spans (indexes rebuilt after a
        // prune): the spans below the first kept leaf's are marked built
        // with nothing in them, and the pruned leaves of its span are
        // held as leaves without facts.
        let kept = log.first_kept().clamp(built, size);
        let built = if kept - kept % span > built {
            let start = kept - kept % span;
            log.index_put(CF_POSTINGS, &mark_key(start - span), &start.to_be_bytes())?;
            start
        } else {
            built
        };
        tail.applied = built;
        let indexes = Arc::new(Indexes {
            log,
            span,
            spares,
            tail: RwLock::new(tail),
            building: Mutex::new(()),
            postings: RwLock::new(()),
            built: AtomicU64::new(built),
            kept_from: Mutex::new(None),
            changes: AtomicU64::new(0),
            erasing: AtomicU64::new(0),
            rebuilt_to: AtomicU64::new(0),
            held: AtomicU64::new(0),
            span_writes: Mutex::new(()),
            stopping: AtomicBool::new(false),
        });
        let log = indexes.log();
        indexes.apply(
            built,
            vec![Facts::unindexed(); (kept - built) as usize],
            kept,
        );
        // A span at a time, each built as soon as it is complete: the
        // facts of one span are in memory at once, however many leaves
        // are past the built spans (a deleted db/index/, a restore), and
        // derived on every core (nothing else runs yet).
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut unindexed = 0u64;
        let mut at = kept;
        std::thread::scope(|scope| {
            let mut deriver = Deriver::new(scope, log, workers);
            while at < size {
                let end = (indexes.span_of(at) + span).min(size);
                let mut facts = Vec::with_capacity((end - at) as usize);
                let mut take = |f: Option<Facts>| {
                    facts.push(f.unwrap_or_else(|| {
                        unindexed += 1;
                        Facts::unindexed()
                    }))
                };
                log.scan_entries(at, end, |i, leaf| {
                    deriver.push(i, leaf, &mut take);
                    Ok::<(), LedgerError>(())
                })?;
                deriver.flush(&mut take);
                if indexes.apply(at, facts, end) {
                    indexes.build()?;
                }
                at = end;
                if let Some(p) = progress {
                    p.store(at, Ordering::Relaxed);
                }
            }
            Ok::<(), LedgerError>(())
        })?;
        if unindexed > 0 {
            tracing::warn!(
                "{unindexed} of leaves {built}..{size} hold no decision record; they are not indexed"
            );
        }
        indexes.build()?;
        indexes.restore_spans()?;
        Ok(indexes)
    }

    /// The start of the span holding leaf `index`.
    pub(crate) fn span_of(&self, index: u64) -> u64 {
        index - index % self.span
    }

    /// The log.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    /// The span length.
    pub fn span(&self) -> u64 {
        self.span
    }

    /// Held while reading built postings (see `postings`).
    pub(crate) fn postings_read(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.postings.read().unwrap_or_else(|p| p.into_inner())
    }

    fn tail(&self) -> std::sync::RwLockReadGuard<'_, Tail> {
        self.tail.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the facts of leaves `first..` (just committed). Returns
    /// whether a span became complete (time to [`Indexes::build`]).
    pub(crate) fn apply<F: ToSpan>(&self, first: u64, facts: Vec<F>, end: u64) -> bool {
        let mut tail = self.tail.write().unwrap_or_else(|p| p.into_inner());
        add(&mut tail, self.span, first, facts);
        let before = tail.applied;
        tail.applied = tail.applied.max(end);
        before / self.span != tail.applied / self.span
    }

    /// Builds every complete span still in memory: its `decisions` and
    /// postings go into RocksDB as sorted files (postings last, carrying
    /// the new built mark), and only then it leaves memory. A crash in
    /// between repeats the same build on open. The postings file holds
    /// only keys of its span, so RocksDB puts it beside the built spans'
    /// files and never merges it with them.
    pub fn build(&self) -> Result<(), LedgerError> {
        let _one = self.building.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let next = {
                let tail = self.tail();
                tail.spans
                    .iter()
                    .next()
                    .filter(|(start, _)| *start + self.span <= tail.applied)
                    .map(|(start, s)| (*start, s.clone()))
            };
            let Some((start, span)) = next else {
                return Ok(());
            };
            // Straight into the files, item by item; without the leaves
            // retention removed meanwhile (it moves the first kept leaf
            // only while holding `building`).
            let first_kept = self.log.first_kept();
            let writing = self.span_writes.lock().unwrap_or_else(|p| p.into_inner());
            self.log.ingest_sorted_with(CF_DECISIONS, |sink| {
                span.write_decisions(first_kept, |k, v| sink.put(k, v))
            })?;
            self.log.ingest_sorted_with(CF_POSTINGS, |sink| {
                span.write_postings(start + self.span, first_kept, |k, v| sink.put(k, v))
            })?;
            drop(writing);
            let done = {
                let mut tail = self.tail.write().unwrap_or_else(|p| p.into_inner());
                let done = tail.spans.remove(&start);
                // Under the lock: a reader sees the span in memory, or the
                // mark that tells it to ask RocksDB again.
                self.built.store(start + self.span, Ordering::Release);
                done
            };
            // Emptied here, off the acknowledgement path, for the next span.
            drop(span);
            if let Some(mut spare) = done.and_then(|s| Arc::try_unwrap(s).ok()) {
                spare.clear();
                let mut tail = self.tail.write().unwrap_or_else(|p| p.into_inner());
                if tail.spares.len() < self.spares {
                    tail.spares.push(spare);
                }
            }
        }
    }

    /// A spare span index (paged in, empty) lent to a rebuild beside, so
    /// that its memory is the budget's ([`crate::budget`]); `None` if
    /// none is spare now.
    pub(crate) fn borrow_spare(&self) -> Option<SpanIndex> {
        let mut tail = self.tail.write().unwrap_or_else(|p| p.into_inner());
        tail.spares.pop()
    }

    /// Gives back a span index [`Indexes::borrow_spare`] lent, emptied,
    /// if the spares are short of one.
    pub(crate) fn give_back_spare(&self, mut spare: SpanIndex) {
        spare.clear();
        let mut tail = self.tail.write().unwrap_or_else(|p| p.into_inner());
        if tail.spares.len() < self.spares {
            tail.spares.push(spare);
        }
    }

    /// The leaves below it are in the built spans (RocksDB), not in
    /// memory: a multiple of [`Indexes::span`]. Complete spans past it are
    /// waiting for the indexer thread.
    pub fn built(&self) -> u64 {
        self.built.load(Ordering::Acquire)
    }

    /// The leaves below it are searchable: their index terms are in the
    /// built spans or in memory. The log may be longer by the leaves just
    /// written whose terms the acknowledger has not yet added (they are
    /// added before those leaves are acknowledged).
    pub fn searchable(&self) -> u64 {
        self.tail().applied.min(self.log.size())
    }

    /// Waits until the leaves below `size` are searchable, at most
    /// `timeout` (they are within a moment of being written); returns the
    /// searchable size if they are not by then.
    pub fn wait_searchable(&self, size: u64, timeout: std::time::Duration) -> Result<(), u64> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let searchable = self.searchable();
            if searchable >= size {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(searchable);
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Leaves of the log not yet in the built indexes (held in memory
    /// until their span is built).
    pub fn unbuilt(&self) -> u64 {
        self.log.size().saturating_sub(self.built())
    }

    /// Asks the long jobs on these indexes to stop at their next step, for
    /// good: a rebuild beside ([`Indexes::rebuild_beside`] fails, changing
    /// nothing) and a prune (it ends where it got, as one a legal hold cut
    /// short; what it leaves to do on disk is done by the next). What a
    /// server does when it stops, so that no job is inside the storage
    /// engine when the process exits.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Whether [`Indexes::stop`] was called.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// [`Indexes::unbuilt`], and the leaves' worth of span index a rebuild
    /// beside holds outside the spares: what the span indexes in memory
    /// take, in leaves ([`crate::PipelineConfig::max_unbuilt`] bounds it).
    pub fn unbuilt_and_held(&self) -> u64 {
        self.unbuilt() + self.held.load(Ordering::Acquire)
    }

    /// [`Indexes::built`], and the `decision_id`s of every leaf past it
    /// (in memory), in log order: (leaf index, id, digest).
    pub(crate) fn unbuilt_decisions(&self) -> (u64, Vec<(u64, String, [u8; 32])>) {
        let tail = self.tail();
        let ids = tail
            .spans
            .values()
            .flat_map(|s| s.decisions_in_order())
            .map(|(i, id, digest)| (i, id.to_string(), digest))
            .collect();
        (self.built(), ids)
    }

    /// Takes leaf `index`'s terms out of its span in memory, if it is
    /// there ([`Indexes::finish_erasure`]; the caller holds `building`).
    pub(crate) fn forget_in_memory(&self, index: u64) {
        let mut tail = self.tail.write().unwrap_or_else(|p| p.into_inner());
        if let Some(span) = tail.spans.get_mut(&self.span_of(index)) {
            Arc::make_mut(span).forget(index);
        }
    }

    /// Where a `decision_id` was appended, if it was.
    pub fn lookup_decision(&self, decision_id: &str) -> Result<Option<Logged>, LedgerError> {
        Ok(self.lookup_decisions(&[decision_id])?.pop().flatten())
    }

    /// [`Indexes::lookup_decision`] for many ids, in order: memory first,
    /// then one storage call for the rest.
    pub fn lookup_decisions(&self, ids: &[&str]) -> Result<Vec<Option<Logged>>, LedgerError> {
        // A span that leaves memory after this look was ingested before it
        // left, so the RocksDB look below sees it.
        // A leaf retention removed is not found (its span may still be in
        // memory, its id not yet gone with it).
        let first_kept = self.log.first_kept();
        let mut out: Vec<Option<Logged>> = {
            let tail = self.tail();
            ids.iter()
                .map(|id| {
                    tail.spans
                        .values()
                        .find_map(|s| s.decision(id))
                        .filter(|(i, _)| *i >= first_kept)
                })
                .collect()
        };
        let missing: Vec<usize> = (0..ids.len()).filter(|&i| out[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(out);
        }
        let asked: Vec<&str> = missing.iter().map(|&i| ids[i]).collect();
        let stored = self.lookup_built(&asked)?;
        for (&i, found) in missing.iter().zip(stored.found) {
            out[i] = found;
        }
        Ok(out)
    }

    /// The built spans' answer for `ids` (RocksDB only; memory is not
    /// asked).
    pub(crate) fn lookup_built(&self, ids: &[&str]) -> Result<BuiltAnswer, LedgerError> {
        // Read before RocksDB: a span released after the mark was read may
        // have been ingested after the lookup.
        let built = self.built();
        let keys: Vec<&[u8]> = ids.iter().map(|id| id.as_bytes()).collect();
        let found = self
            .log
            .index_multi_get(CF_DECISIONS, &keys)?
            .into_iter()
            .zip(ids)
            .map(|(v, id)| v.map(|v| decode_decision(id, &v)).transpose())
            .collect::<Result<_, _>>()?;
        Ok(BuiltAnswer { built, found })
    }

    /// The term's leaves still in memory, ascending.
    pub(crate) fn tail_postings(&self, kind: Term, term: &[u8]) -> Vec<u64> {
        let tail = self.tail();
        tail.spans
            .values()
            .flat_map(|s| s.postings(kind, term))
            .collect()
    }

    /// The leaves in memory whose record time is in `from..to`
    /// (nanoseconds), ascending.
    pub(crate) fn tail_times(&self, from: u64, to: u64) -> Vec<u64> {
        let tail = self.tail();
        tail.spans
            .values()
            .flat_map(|s| s.times(from, to))
            .collect()
    }

    /// Whether leaf `index` has the term, if its span is in memory.
    pub(crate) fn tail_has(&self, kind: Term, term: &[u8], index: u64) -> Option<bool> {
        let tail = self.tail();
        let span = tail.spans.get(&(index - index % self.span))?;
        (index < span.end()).then(|| span.has(kind, term, index))
    }
}

/// What a span index can be given for a leaf: its [`Facts`] (read back
/// from the leaves when the indexes open), or its record's facts as the
/// record holds them (the acknowledgement path).
pub(crate) trait ToSpan {
    fn add_to(self, span: &mut SpanIndex);
}

impl ToSpan for Facts {
    fn add_to(self, span: &mut SpanIndex) {
        span.add(self);
    }
}

impl ToSpan for RecordFacts {
    fn add_to(self, span: &mut SpanIndex) {
        span.add_record(self);
    }
}

fn add<F: ToSpan>(tail: &mut Tail, span: u64, first: u64, facts: Vec<F>) {
    let Tail { spans, spares, .. } = tail;
    for (index, f) in (first..).zip(facts) {
        let start = index - index % span;
        let s = spans.entry(start).or_insert_with(|| {
            Arc::new(match spares.pop() {
                Some(s) => s.restarted(start),
                None => SpanIndex::new(start, span.min(SPAN) as usize),
            })
        });
        // Never shared: only complete spans are handed to `build`.
        let s = Arc::make_mut(s);
        if index == s.end() {
            f.add_to(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_in_memory_until_built_and_in_rocksdb_after() {
        let dir = tempfile::tempdir().unwrap();
        let key = verifier::SignerKey::from_seed("t.example/log", &[9; 32]).unwrap();
        let log = Arc::new(
            Log::open_with(dir.path(), &key.verifier(), crate::index::INGEST_CFS).unwrap(),
        );
        let indexes = Indexes::open_with_span(log.clone(), 4).unwrap();
        log.append(&[b"a", b"b", b"c", b"d", b"e"]).unwrap();
        let facts = |id: &str| Facts {
            decision_id: id.into(),
            digest: [id.len() as u8; 32],
            terms: Vec::new(),
        };
        assert!(indexes.apply(0, ["id-0", "id-1", "id-2", "id-3"].map(facts).into(), 4));
        assert!(!indexes.apply(4, vec![facts("id-four")], 5));
        // In memory, not yet in RocksDB.
        assert_eq!(indexes.built(), 0);
        assert_eq!(indexes.lookup_built(&["id-2"]).unwrap().found, vec![None]);
        let (built, ids) = indexes.unbuilt_decisions();
        assert_eq!(built, 0);
        let ids: Vec<(u64, &str)> = ids.iter().map(|(i, id, _)| (*i, id.as_str())).collect();
        assert_eq!(
            ids,
            vec![
                (0, "id-0"),
                (1, "id-1"),
                (2, "id-2"),
                (3, "id-3"),
                (4, "id-four")
            ]
        );
        let both = indexes
            .lookup_decisions(&["id-2", "id-four", "nope"])
            .unwrap();
        assert_eq!(both, vec![Some((2, [4; 32])), Some((4, [7; 32])), None]);
        // Built: the mark moves past the span, which left memory.
        indexes.build().unwrap();
        assert_eq!(indexes.built(), 4);
        let answer = indexes.lookup_built(&["id-2", "id-four"]).unwrap();
        assert_eq!(answer.built, 4);
        assert_eq!(answer.found, vec![Some((2, [4; 32])), None]);
        let (built, ids) = indexes.unbuilt_decisions();
        assert_eq!((built, ids.len()), (4, 1));
        let both = indexes
            .lookup_decisions(&["id-2", "id-four", "nope"])
            .unwrap();
        assert_eq!(both, vec![Some((2, [4; 32])), Some((4, [7; 32])), None]);
        // Reopened: the mark is where the build left it.
        drop(indexes);
        let indexes = Indexes::open_with_span(log, 4).unwrap();
        assert_eq!(indexes.built(), 4);
    }
}
