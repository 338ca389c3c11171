//! The three threads behind [`crate::Pipeline`] (docs/design/ingest.md):
//!
//! - the **batcher** takes queued jobs, drops retries (`decision_id`s
//!   already logged or in flight: its own memory holds every id the built
//!   index lacks, so it never waits for the acknowledger), stamps the
//!   ledger clock, finishes the leaves (their heads were built and hashed where the records were
//!   checked, so only the `received_at` and `submitted_by` bytes are left
//!   to hash) and builds the group commit's WriteBatch on the tree's tip
//!   ([`ledger::Log::prepare_hashed`]);
//! - the **committer** writes each prepared batch with the WAL synced
//!   ([`ledger::Log::commit`]);
//! - the **acknowledger** adds the written records to the in-memory index
//!   ([`crate::Indexes`]) and only then acknowledges them.
//!
//! So batch N+1 is hashed and encoded while batch N is on its way to disk.
//! At most one prepared batch waits for the committer. If a commit fails,
//! every batch prepared on top of it fails too (its records were not
//! appended; the callers may retry), and the batcher starts again from the
//! committed tree.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::time::Instant;

use ledger::{Log, PreparedAppend, Tip};
use verifier::{Hash, HashedEntry};

use crate::index::RecordFacts;
use crate::pipeline::recent::{Pending, Recent};
use crate::pipeline::{Job, Outcome, PipelineConfig, Stats};
use crate::record::schema::Timestamp;
use crate::Indexes;

/// What the acknowledger tells the batcher when a write failed: the batch
/// of this epoch was not appended, nor anything prepared after it.
pub(crate) struct Failed(pub(crate) u64);

/// One group commit, built and waiting for the committer.
pub(crate) struct Batch {
    jobs: Vec<Job>,
    plans: Vec<Vec<Plan>>,
    append: Option<PreparedAppend>,
    /// Tree size the batch was prepared on.
    base: u64,
    epoch: u64,
    records: usize,
    /// The index facts of the appended leaves, in order.
    facts: Vec<RecordFacts>,
    /// The appended leaves, already copied into `append`: freed by the
    /// acknowledger after its acks, not by the batcher, which every
    /// record waits for (each was allocated by the thread that checked
    /// it, so each free is a cross-thread one).
    entries: Vec<HashedEntry>,
    error: Option<String>,
}

/// What a record will be answered once its batch is committed.
enum Plan {
    /// Known before the commit.
    Done(Outcome),
    /// Appended as the batch's entry `pos`.
    New(usize),
    /// A repeat of the batch's entry `pos`.
    SameBatch { pos: usize, duplicate: bool },
}

pub(crate) struct Batcher {
    stats: Arc<Stats>,
    log: Arc<Log>,
    indexes: Arc<Indexes>,
    config: PipelineConfig,
    /// The ledger clock: never goes backwards in log order.
    clock: Timestamp,
    tip: Tip,
    epoch: u64,
    /// Every `decision_id` logged or prepared past `floor`.
    recent: Recent,
    /// The built mark `recent` was last trimmed to: the leaves below it
    /// are in the built index.
    floor: u64,
    failed: Receiver<Failed>,
}

/// Raw entries (leaves without an envelope) passed over, at most, to find
/// the last `received_at`; the ledger writes none, tests and tools may.
const RESUME_SCAN: u64 = 4096;

/// Where the ledger clock resumes: the `received_at` of the log's last leaf
/// that has one. A host clock stepped back since (NTP, a restored VM, a
/// store restored on another machine) then gives the next leaves that same
/// time until it passes it, never an earlier one: time windows stay ranges
/// of leaves (specs/record.md, specs/export.md).
fn resumed_clock(log: &Log) -> Timestamp {
    let size = log.size();
    let last = (size.saturating_sub(RESUME_SCAN)..size)
        .rev()
        .find_map(|index| log.received_at(index).ok());
    let Some(last) = last else {
        return Timestamp(time::OffsetDateTime::UNIX_EPOCH);
    };
    let now = Timestamp(time::OffsetDateTime::now_utc());
    if now < last {
        tracing::warn!(
            "the host clock reads {}, before the last leaf's received_at {}: new leaves are \
             received at {} until the clock passes it",
            now.canonical(),
            last.canonical(),
            last.canonical()
        );
    }
    last
}

impl Batcher {
    pub(crate) fn new(
        indexes: Arc<Indexes>,
        stats: Arc<Stats>,
        config: PipelineConfig,
        failed: Receiver<Failed>,
    ) -> Batcher {
        let log = indexes.log().clone();
        let clock = resumed_clock(&log);
        // The ids already in memory (logged before this pipeline started).
        let (floor, known) = indexes.unbuilt_decisions();
        let mut recent = Recent::new(indexes.span());
        for (index, decision_id, digest) in known {
            // The span index keeps an id's first leaf; so does this.
            if recent.get(&decision_id).is_some() {
                continue;
            }
            recent.push(
                &decision_id,
                Pending {
                    index,
                    leaf_hash: None,
                    digest,
                },
            );
        }
        Batcher {
            stats,
            tip: log.tip(),
            log,
            indexes,
            config,
            clock,
            epoch: 0,
            recent,
            floor,
            failed,
        }
    }

    /// Gathers jobs into batches until the queue closes.
    pub(crate) fn run(mut self, rx: Receiver<Job>, out: SyncSender<Batch>) {
        while let Ok(first) = rx.recv() {
            let mut n = first.subs.len();
            let mut jobs = vec![first];
            let deadline = Instant::now() + self.config.max_delay;
            while n < self.config.max_batch {
                let next = match rx.try_recv() {
                    Ok(job) => Ok(job),
                    Err(_) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        rx.recv_timeout(left)
                    }
                };
                match next {
                    Ok(job) => {
                        n += job.subs.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            let started = Instant::now();
            let batch = self.prepare(jobs, n);
            self.stats
                .prepare_micros
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            if out.send(batch).is_err() {
                return;
            }
        }
    }

    fn tick(&mut self) -> String {
        let now = Timestamp(time::OffsetDateTime::now_utc());
        if now > self.clock {
            self.clock = now;
        } else if now < self.clock {
            self.stats.clock_held.fetch_add(1, Ordering::Relaxed);
        }
        self.clock.canonical()
    }

    /// Applies the failed writes reported so far, and forgets the ids the
    /// built index has taken over.
    fn catch_up(&mut self) {
        while let Ok(Failed(epoch)) = self.failed.try_recv() {
            if epoch == self.epoch {
                self.epoch += 1;
                self.tip = self.log.tip();
                self.recent.truncate(self.tip.size());
            }
        }
        let built = self.indexes.built();
        if built > self.floor {
            self.recent.built_below(built);
            self.floor = built;
        }
    }

    fn prepare(&mut self, jobs: Vec<Job>, records: usize) -> Batch {
        self.catch_up();
        let received_at = self.tick();
        let base = self.tip.size();
        // Records to append so far.
        let mut new = 0;
        // decision_id → (position in `entries`, digest), for repeats in the batch.
        let mut in_batch: HashMap<&str, (usize, [u8; 32]), foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(records, Default::default());
        let mut plans: Vec<Vec<Plan>> = Vec::with_capacity(jobs.len());
        // Where each id was logged or prepared, if it was: (leaf index,
        // digest, leaf hash if known). Memory holds every leaf past `floor`;
        // below it, what the built index said when the job was submitted,
        // if it already covered `floor`; RocksDB is asked again for the rest.
        type Found = Result<Option<(u64, [u8; 32], Option<Hash>)>, String>;
        let mut found: Vec<Option<Found>> = Vec::with_capacity(records);
        let mut ask: Vec<&str> = Vec::new();
        for job in &jobs {
            let answer = job.built.as_ref().filter(|a| a.built >= self.floor);
            for (k, s) in job.subs.iter().enumerate() {
                let id = s.record.decision_id.as_str();
                found.push(if let Some(p) = self.recent.get(id) {
                    Some(Ok(Some((p.index, p.digest, p.leaf_hash))))
                } else if let Some(a) = answer {
                    Some(Ok(a
                        .found
                        .get(k)
                        .copied()
                        .flatten()
                        .map(|(i, d)| (i, d, None))))
                } else {
                    ask.push(id);
                    None
                });
            }
        }
        if !ask.is_empty() {
            let mut stored = match self.indexes.lookup_built(&ask) {
                Ok(a) => a.found.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => ask.iter().map(|_| Err(e.to_string())).collect(),
            }
            .into_iter();
            for f in found.iter_mut().filter(|f| f.is_none()) {
                *f = Some(match stored.next() {
                    Some(Ok(l)) => Ok(l.map(|(i, d)| (i, d, None))),
                    Some(Err(e)) => Err(e),
                    None => Ok(None),
                });
            }
        }
        let mut found = found.into_iter();
        for job in &jobs {
            let mut plan = Vec::with_capacity(job.subs.len());
            for sub in &job.subs {
                let r = &sub.record;
                let logged = found.next().flatten().unwrap_or(Ok(None));
                if let Some(&(pos, digest)) = in_batch.get(r.decision_id.as_str()) {
                    plan.push(Plan::SameBatch {
                        pos,
                        duplicate: digest == r.digest,
                    });
                    continue;
                }
                plan.push(match logged {
                    Ok(Some((index, digest, known))) if digest == r.digest => Plan::Done(
                        known
                            .map_or_else(|| self.log.leaf_hash(index), Ok)
                            .map(|leaf_hash| Outcome::Duplicate { index, leaf_hash })
                            .unwrap_or_else(|e| Outcome::Failed(e.to_string())),
                    ),
                    Ok(Some((index, ..))) => Plan::Done(Outcome::Conflict { index }),
                    Ok(None) => {
                        in_batch.insert(&r.decision_id, (new, r.digest));
                        new += 1;
                        Plan::New(new - 1)
                    }
                    Err(e) => Plan::Done(Outcome::Failed(e)),
                });
            }
            plans.push(plan);
        }
        // The records are not needed past this point: the appended ones'
        // leaves are finished from the heads built when they were checked
        // (only the last bytes are left to hash), and their index facts
        // take their strings instead of copies.
        let mut jobs = jobs;
        let mut entries: Vec<HashedEntry> = Vec::with_capacity(new);
        let mut facts: Vec<RecordFacts> = Vec::with_capacity(new);
        for (job, plan) in jobs.iter_mut().zip(&plans) {
            for (sub, p) in std::mem::take(&mut job.subs).into_iter().zip(plan) {
                if matches!(p, Plan::New(_)) {
                    let (f, head) = RecordFacts::split(sub.record);
                    entries.push(head.finish(&received_at, &sub.submitted_by));
                    facts.push(f);
                }
            }
        }
        let (append, error) = if entries.is_empty() {
            (None, None)
        } else {
            match self.log.prepare_hashed(&mut self.tip, &entries) {
                Ok(p) => (Some(p), None),
                Err(e) => (None, Some(e.to_string())),
            }
        };
        if let Some(p) = &append {
            let first = p.range().start;
            for (i, f) in facts.iter().enumerate() {
                self.recent.push(
                    &f.decision_id,
                    Pending {
                        index: first + i as u64,
                        leaf_hash: Some(p.leaves()[i]),
                        digest: f.digest,
                    },
                );
            }
        }
        Batch {
            jobs,
            plans,
            append,
            base,
            epoch: self.epoch,
            records,
            facts,
            entries,
            error,
        }
    }
}

/// A batch after its write: what the acknowledger needs.
pub(crate) struct Written {
    jobs: Vec<Job>,
    plans: Vec<Vec<Plan>>,
    records: usize,
    facts: Vec<RecordFacts>,
    entries: Vec<HashedEntry>,
    epoch: u64,
    refused: bool,
    /// First leaf index and leaf hashes, or why nothing was written.
    result: Result<(u64, Vec<Hash>), String>,
}

/// Writes prepared batches in order (the synced write is all this thread
/// does, so the next one starts as soon as the disk is done).
pub(crate) fn commit_all(
    log: Arc<Log>,
    stats: Arc<Stats>,
    rx: Receiver<Batch>,
    out: SyncSender<Written>,
) {
    for batch in rx {
        let started = Instant::now();
        let Batch {
            jobs,
            plans,
            append,
            base,
            epoch,
            records,
            facts,
            entries,
            error,
        } = batch;
        let refused = error.is_some();
        let result = match (error, append) {
            (Some(e), _) => Err(e),
            // Prepared on a tree that is not the committed one: an earlier
            // batch it builds on (or answers duplicates from) failed.
            _ if base != log.size() => Err(format!(
                "an earlier group commit failed (prepared at size {base}, tree has {})",
                log.size()
            )),
            (None, None) => Ok((base, Vec::new())),
            (None, Some(p)) => log
                .commit(p)
                .map(|(range, leaves)| (range.start, leaves))
                .map_err(|e| e.to_string()),
        };
        stats
            .write_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        let written = Written {
            jobs,
            plans,
            records,
            facts,
            entries,
            epoch,
            refused,
            result,
        };
        if out.send(written).is_err() {
            return;
        }
    }
}

/// Counts the appended records by decision, and the break-glass ones, for
/// `/metrics` (an operator alerts on break-glass use).
fn count_decisions(stats: &Stats, facts: &[RecordFacts]) {
    let mut by_decision = [0usize; crate::record::DECISIONS.len()];
    let mut break_glass = 0usize;
    for f in facts {
        if let Some(i) = crate::record::DECISIONS
            .iter()
            .position(|d| *d == f.decision())
        {
            by_decision[i] += 1;
        }
        break_glass += usize::from(f.break_glass());
    }
    for (counter, n) in stats.decisions.iter().zip(by_decision) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
    stats.break_glass.fetch_add(break_glass, Ordering::Relaxed);
}

/// Records each written batch's index facts (so it is searchable), tells
/// the batcher of a failed write, and acknowledges the records; pokes
/// `build` when a span of the index is complete.
pub(crate) fn acknowledge_all(
    indexes: Arc<Indexes>,
    stats: Arc<Stats>,
    rx: Receiver<Written>,
    failed: Sender<Failed>,
    build: Sender<()>,
) {
    for w in rx {
        let started = Instant::now();
        let outcomes: Vec<Vec<Outcome>> = match w.result {
            Ok((first, leaves)) => {
                // Before the acks: a record acknowledged is found.
                let end = first + leaves.len() as u64;
                count_decisions(&stats, &w.facts);
                // Added term by term here, not in the batcher.
                if indexes.apply(first, w.facts, end) {
                    let _ = build.send(());
                }
                let leaf = |pos: usize| (first + pos as u64, leaves[pos]);
                let outcomes: Vec<Vec<Outcome>> = w
                    .plans
                    .into_iter()
                    .map(|plan| {
                        plan.into_iter()
                            .map(|p| match p {
                                Plan::Done(o) => o,
                                Plan::New(pos) => {
                                    let (index, leaf_hash) = leaf(pos);
                                    Outcome::Appended { index, leaf_hash }
                                }
                                Plan::SameBatch {
                                    pos,
                                    duplicate: true,
                                } => {
                                    let (index, leaf_hash) = leaf(pos);
                                    Outcome::Duplicate { index, leaf_hash }
                                }
                                Plan::SameBatch {
                                    pos,
                                    duplicate: false,
                                } => Outcome::Conflict { index: leaf(pos).0 },
                            })
                            .collect()
                    })
                    .collect();
                count(&stats, &outcomes, leaves.len());
                outcomes
            }
            Err(e) => {
                // A batch refused while being prepared left the tip as it
                // was; only a failed write invalidates what follows it.
                if !w.refused {
                    let _ = failed.send(Failed(w.epoch));
                }
                let why = format!("storage failure, nothing appended: {e}");
                stats.failed.fetch_add(w.records, Ordering::Relaxed);
                if crate::pipeline::is_disk_full(&why) {
                    stats
                        .failed_disk_full
                        .fetch_add(w.records, Ordering::Relaxed);
                    tracing::error!(
                        "group commit failed, the disk is full: {e}; writes are refused with 507 and resume when space is freed"
                    );
                } else {
                    tracing::error!("group commit failed: {e}");
                }
                w.plans
                    .iter()
                    .map(|p| vec![Outcome::Failed(why.clone()); p.len()])
                    .collect()
            }
        };
        stats
            .commit_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        stats.queued.fetch_sub(w.records, Ordering::AcqRel);
        for (job, out) in w.jobs.into_iter().zip(outcomes) {
            // The submitter may have gone away; the records are durable anyway.
            let _ = job.ack.send(out);
        }
        // Freed once every ack is out.
        drop(w.entries);
    }
}

fn count(stats: &Stats, outcomes: &[Vec<Outcome>], appended: usize) {
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats.appended.fetch_add(appended, Ordering::Relaxed);
    for o in outcomes.iter().flatten() {
        match o {
            Outcome::Duplicate { .. } => stats.duplicates.fetch_add(1, Ordering::Relaxed),
            Outcome::Conflict { .. } => stats.conflicts.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use serde_json::json;
    use tokio::sync::oneshot;

    use super::*;
    use crate::index::indexes::BuiltAnswer;
    use crate::pipeline::Submission;

    fn submission(id: &str) -> Submission {
        let v = json!({
            "decision_id": id,
            "time": "2026-11-23T07:00:00Z",
            "enforcer": {"id": "gw-1", "kind": "gateway"},
            "subject": {"type": "user", "id": "alice", "identity_kind": "human", "owner": "alice"},
            "delegation": [],
            "action": {"name": "read"},
            "resource": {"type": "doc", "id": "d-1"},
            "context": {},
            "policy": {"engine": "opa", "id": "p", "version": "1"},
            "decision": "allow",
            "reasons": [],
            "errors": [],
            "extensions": {}
        });
        Submission {
            record: crate::check(&crate::record::from_json(&v)).unwrap(),
            submitted_by: "gw-1".into(),
        }
    }

    /// The three stages, with the batcher driven by hand so that a test
    /// chooses what each job was told at submission and when spans build.
    struct Stages {
        indexes: Arc<Indexes>,
        batcher: Batcher,
        to_writer: Option<SyncSender<Batch>>,
    }

    impl Stages {
        fn start(dir: &std::path::Path) -> Stages {
            let key = verifier::SignerKey::from_seed("t.example/log", &[3; 32]).unwrap();
            let log =
                Arc::new(Log::open_with(dir, &key.verifier(), crate::index::INGEST_CFS).unwrap());
            let indexes = Indexes::open_with_span(log.clone(), 4).unwrap();
            let stats = Arc::new(Stats::default());
            let (failed_tx, failed_rx) = mpsc::channel();
            let (batch_tx, batch_rx) = mpsc::sync_channel(1);
            let (written_tx, written_rx) = mpsc::sync_channel(1);
            let (build_tx, _build_rx) = mpsc::channel();
            let s = stats.clone();
            std::thread::spawn(move || commit_all(log, s, batch_rx, written_tx));
            let (i, s) = (indexes.clone(), stats.clone());
            std::thread::spawn(move || acknowledge_all(i, s, written_rx, failed_tx, build_tx));
            let batcher =
                Batcher::new(indexes.clone(), stats, PipelineConfig::default(), failed_rx);
            Stages {
                indexes,
                batcher,
                to_writer: Some(batch_tx),
            }
        }

        /// One group commit of jobs, each `(ids, what the built index said)`;
        /// `spoil` breaks the batch so that its write fails.
        fn commit(
            &mut self,
            jobs: Vec<(&[&str], Option<BuiltAnswer>)>,
            spoil: bool,
        ) -> Vec<Vec<Outcome>> {
            let mut acks = Vec::new();
            let mut records = 0;
            let jobs = jobs
                .into_iter()
                .map(|(ids, built)| {
                    let (ack, rx) = oneshot::channel();
                    acks.push(rx);
                    records += ids.len();
                    let subs = ids.iter().map(|id| submission(id)).collect();
                    Job { subs, built, ack }
                })
                .collect();
            let mut batch = self.batcher.prepare(jobs, records);
            if spoil {
                batch.base += 1;
            }
            let tx = self.to_writer.as_ref().unwrap();
            tx.send(batch).unwrap();
            acks.into_iter()
                .map(|rx| rx.blocking_recv().unwrap())
                .collect()
        }

        fn answer(&self, ids: &[&str]) -> Option<BuiltAnswer> {
            Some(self.indexes.lookup_built(ids).unwrap())
        }
    }

    fn dup(o: &Outcome) -> (u64, Hash) {
        match o {
            Outcome::Duplicate { index, leaf_hash } => (*index, *leaf_hash),
            o => panic!("not a duplicate: {o:?}"),
        }
    }

    fn appended(o: &Outcome) -> (u64, Hash) {
        match o {
            Outcome::Appended { index, leaf_hash } => (*index, *leaf_hash),
            o => panic!("not appended: {o:?}"),
        }
    }

    #[test]
    fn retries_are_found_in_memory_or_asked_again_after_a_span_is_built() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = Stages::start(dir.path());
        // Asked before anything was built: the answer covers no leaf.
        let stale = st.answer(&["r-2"]);
        let ids = ["r-0", "r-1", "r-2", "r-3"];
        let first = st.commit(vec![(&ids, st.answer(&ids))], false);
        let leaves: Vec<(u64, Hash)> = first[0].iter().map(appended).collect();
        // Committed, not built: the batcher's memory answers, even where
        // the job was told "not logged".
        let out = st.commit(vec![(&["r-1"], st.answer(&["r-1"]))], false);
        assert_eq!(dup(&out[0][0]), leaves[1]);
        // The span is built and leaves memory: an answer given before the
        // build is stale and RocksDB is asked again; one given after holds.
        st.indexes.build().unwrap();
        assert_eq!(st.indexes.built(), 4);
        let out = st.commit(
            vec![
                (&["r-2"], stale),
                (&["r-3"], st.answer(&["r-3"])),
                (&["r-0"], None),
                (&["r-4"], st.answer(&["r-4"])),
            ],
            false,
        );
        assert_eq!(dup(&out[0][0]), leaves[2]);
        assert_eq!(dup(&out[1][0]), leaves[3]);
        assert_eq!(dup(&out[2][0]), leaves[0]);
        let r4 = appended(&out[3][0]);
        assert_eq!(r4.0, 4);
        // A failed write: its ids were not appended, and go in next time.
        let out = st.commit(vec![(&["r-5", "r-4"], None)], true);
        assert!(matches!(out[0][0], Outcome::Failed(_)), "{out:?}");
        let out = st.commit(vec![(&["r-4", "r-5"], st.answer(&["r-5"]))], false);
        assert_eq!(dup(&out[0][0]), r4);
        assert_eq!(appended(&out[0][1]).0, 5);
        // A new batcher (a restarted pipeline) knows the ids in memory.
        let indexes = st.indexes.clone();
        drop(st);
        let (_tx, rx) = mpsc::channel();
        let mut b = Batcher::new(
            indexes,
            Arc::new(Stats::default()),
            PipelineConfig::default(),
            rx,
        );
        b.catch_up();
        let p = b.recent.get("r-5").map(|p| (p.index, p.leaf_hash));
        assert_eq!(p, Some((5, None)));
        assert!(b.recent.get("r-3").is_none());
    }
}
