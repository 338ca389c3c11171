//! The two threads behind [`crate::Pipeline`] (docs/design/ingest.md):
//!
//! - the **batcher** takes queued jobs, drops retries (`decision_id`s
//!   already logged or in flight), stamps the ledger clock, finishes the
//!   leaves (their heads were built and hashed where the records were
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

use crate::in_flight::{InFlight, Pending};
use crate::index::Facts;
use crate::indexes::BuiltAnswer;
use crate::pipeline::{Job, Outcome, PipelineConfig, Stats};
use crate::schema::Timestamp;
use crate::Indexes;

/// What the committer tells the batcher after each batch.
pub(crate) enum Done {
    /// The leaves below this index are durable and in the indexes.
    Committed(u64),
    /// The batch of this epoch failed; everything prepared after it fails.
    Failed(u64),
}

/// One group commit, built and waiting for the committer.
pub(crate) struct Batch {
    jobs: Vec<Job>,
    plans: Vec<Vec<Plan>>,
    append: Option<PreparedAppend>,
    /// Tree size the batch was prepared on.
    base: u64,
    epoch: u64,
    records: usize,
    /// The index facts of the appended leaves, in order (their
    /// `decision_id`s are what the batcher holds in flight).
    facts: Vec<Facts>,
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
    in_flight: InFlight,
    done: Receiver<Done>,
}

impl Batcher {
    pub(crate) fn new(
        indexes: Arc<Indexes>,
        stats: Arc<Stats>,
        config: PipelineConfig,
        done: Receiver<Done>,
    ) -> Batcher {
        let log = indexes.log().clone();
        Batcher {
            stats,
            tip: log.tip(),
            log,
            indexes,
            config,
            clock: Timestamp(time::OffsetDateTime::UNIX_EPOCH),
            epoch: 0,
            in_flight: InFlight::default(),
            done,
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
        }
        self.clock.canonical()
    }

    /// Applies what the committer reported so far. Must run before storage
    /// is asked about ids: an id leaves `in_flight` only once it is durable.
    fn catch_up(&mut self) {
        while let Ok(done) = self.done.try_recv() {
            match done {
                Done::Committed(end) => self.in_flight.committed_below(end),
                Done::Failed(epoch) if epoch == self.epoch => {
                    self.epoch += 1;
                    self.tip = self.log.tip();
                    self.in_flight.clear();
                }
                Done::Failed(_) => {}
            }
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
        // Ids in flight are answered from memory.
        let flying: Vec<Option<Outcome>> = jobs
            .iter()
            .flat_map(|j| &j.subs)
            .map(|s| {
                let f = self.in_flight.get(&s.record.decision_id)?;
                Some(if f.digest == s.record.digest {
                    Outcome::Duplicate {
                        index: f.index,
                        leaf_hash: f.leaf_hash,
                    }
                } else {
                    Outcome::Conflict { index: f.index }
                })
            })
            .collect();
        // The rest: memory first, then what the built indexes said when the
        // job was submitted, unless a span left memory since.
        let mut unknown: Vec<&str> = Vec::new();
        let mut asked: Vec<Option<(&BuiltAnswer, usize)>> = Vec::new();
        let mut at = 0;
        for job in &jobs {
            for (k, s) in job.subs.iter().enumerate() {
                if flying[at].is_none() {
                    unknown.push(&s.record.decision_id);
                    asked.push(job.built.as_ref().map(|b| (b, k)));
                }
                at += 1;
            }
        }
        let mut stored = match self
            .indexes
            .lookup_decisions_given(&unknown, |i| asked.get(i).copied().flatten())
        {
            Ok(found) => found.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => unknown.iter().map(|_| Err(e.to_string())).collect(),
        }
        .into_iter();
        let mut flying = flying.into_iter();
        for job in &jobs {
            let mut plan = Vec::with_capacity(job.subs.len());
            for sub in &job.subs {
                let r = &sub.record;
                if let Some(outcome) = flying.next().flatten() {
                    plan.push(Plan::Done(outcome));
                    continue;
                }
                let logged = stored.next().unwrap_or(Ok(None));
                if let Some(&(pos, digest)) = in_batch.get(r.decision_id.as_str()) {
                    plan.push(Plan::SameBatch {
                        pos,
                        duplicate: digest == r.digest,
                    });
                    continue;
                }
                plan.push(match logged {
                    Ok(Some((index, digest))) if digest == r.digest => Plan::Done(
                        self.log
                            .leaf_hash(index)
                            .map(|leaf_hash| Outcome::Duplicate { index, leaf_hash })
                            .unwrap_or_else(|e| Outcome::Failed(e.to_string())),
                    ),
                    Ok(Some((index, _))) => Plan::Done(Outcome::Conflict { index }),
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
        let mut facts: Vec<Facts> = Vec::with_capacity(new);
        for (job, plan) in jobs.iter_mut().zip(&plans) {
            for (sub, p) in std::mem::take(&mut job.subs).into_iter().zip(plan) {
                if matches!(p, Plan::New(_)) {
                    let (f, head) = Facts::from_record(sub.record);
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
                self.in_flight.push(Pending {
                    decision_id: f.decision_id.clone(),
                    index: first + i as u64,
                    leaf_hash: p.leaves()[i],
                    digest: f.digest,
                });
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
            error,
        }
    }
}

/// A batch after its write: what the acknowledger needs.
pub(crate) struct Written {
    jobs: Vec<Job>,
    plans: Vec<Vec<Plan>>,
    records: usize,
    facts: Vec<Facts>,
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
            epoch,
            refused,
            result,
        };
        if out.send(written).is_err() {
            return;
        }
    }
}

/// Records each written batch's index facts (so it is searchable and
/// deduplicated), tells the batcher, and acknowledges its records; pokes
/// `build` when a span of the index is complete.
pub(crate) fn acknowledge_all(
    indexes: Arc<Indexes>,
    stats: Arc<Stats>,
    rx: Receiver<Written>,
    done: Sender<Done>,
    build: Sender<()>,
) {
    for w in rx {
        let started = Instant::now();
        let outcomes: Vec<Vec<Outcome>> = match w.result {
            Ok((first, leaves)) => {
                // Before the acks: a record acknowledged is found.
                let end = first + leaves.len() as u64;
                if indexes.apply(first, w.facts, end) {
                    let _ = build.send(());
                }
                let _ = done.send(Done::Committed(end));
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
                    let _ = done.send(Done::Failed(w.epoch));
                }
                tracing::error!("group commit failed: {e}");
                let why = format!("storage failure, nothing appended: {e}");
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
