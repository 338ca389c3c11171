//! The durable ingest pipeline: bounded queue → batcher → one writer doing
//! group commit (one synced WriteBatch for many records) → acknowledgements
//! after that commit; and a checkpoint publisher.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ledger::Log;
use tokio::sync::oneshot;
use verifier::{Hash, SignerKey};

use crate::index::{lookup_decisions, puts_for_batch};
use crate::record::CheckedRecord;
use crate::schema::Timestamp;

/// Tuning of the pipeline.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Records queued (not yet committed) at most; beyond it, submit says busy.
    pub queue_capacity: usize,
    /// Records in one group commit at most.
    pub max_batch: usize,
    /// How long the writer waits for more records before committing a
    /// batch that is not full (0: commit whatever is queued at once).
    pub max_delay: Duration,
    /// How often the publisher signs a checkpoint when the tree has grown.
    pub checkpoint_interval: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            queue_capacity: 100_000,
            max_batch: 10_000,
            max_delay: Duration::from_micros(500),
            checkpoint_interval: Duration::from_secs(1),
        }
    }
}

/// A checked record and who sent it.
#[derive(Clone, Debug)]
pub struct Submission {
    /// The record.
    pub record: CheckedRecord,
    /// The authenticated enforcer id (the leaf's `submitted_by`).
    pub submitted_by: String,
}

/// What became of one submitted record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Appended now, durably.
    Appended {
        /// Leaf index.
        index: u64,
        /// Leaf hash.
        leaf_hash: Hash,
    },
    /// The same record was appended before (a retry); nothing new appended.
    Duplicate {
        /// The original leaf index.
        index: u64,
        /// The original leaf hash.
        leaf_hash: Hash,
    },
    /// The `decision_id` was appended before with different content.
    Conflict {
        /// The original leaf index.
        index: u64,
    },
    /// Storage failed; nothing of this batch was appended.
    Failed(String),
}

/// The queue is full: back off and retry. Carries the submissions back.
#[derive(Debug, thiserror::Error)]
#[error("ingest queue is full ({queued} records queued); retry later")]
pub struct Busy {
    /// Records waiting when refused.
    pub queued: usize,
    /// The refused submissions, untouched.
    pub subs: Vec<Submission>,
}

struct Job {
    subs: Vec<Submission>,
    ack: oneshot::Sender<Vec<Outcome>>,
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Records appended.
    pub appended: AtomicUsize,
    /// Retries answered as duplicates.
    pub duplicates: AtomicUsize,
    /// Conflicting `decision_id`s refused.
    pub conflicts: AtomicUsize,
    /// Group commits done.
    pub commits: AtomicUsize,
    /// Records currently queued.
    pub queued: AtomicUsize,
    /// Time spent in group commits, microseconds.
    pub commit_micros: std::sync::atomic::AtomicU64,
    /// When the publisher last signed a checkpoint (Unix ms; 0 = never).
    pub last_checkpoint_unix_ms: std::sync::atomic::AtomicU64,
}

/// A running pipeline. Dropping it (or [`Pipeline::shutdown`]) drains the
/// queue, commits and acknowledges everything in flight, and stops.
pub struct Pipeline {
    tx: Option<Sender<Job>>,
    stats: Arc<Stats>,
    capacity: usize,
    writer: Option<JoinHandle<()>>,
    publisher: Option<(Sender<()>, JoinHandle<()>)>,
}

impl Pipeline {
    /// Starts the writer, and a checkpoint publisher if `signer` is given.
    pub fn start(log: Arc<Log>, signer: Option<SignerKey>, config: PipelineConfig) -> Pipeline {
        let (tx, rx) = mpsc::channel::<Job>();
        let stats = Arc::new(Stats::default());
        let writer = {
            let (log, stats, config) = (log.clone(), stats.clone(), config.clone());
            std::thread::Builder::new()
                .name("ledger-writer".into())
                .spawn(move || Writer::new(log, stats, config).run(rx))
                .ok()
        };
        let publisher = signer.and_then(|signer| {
            let (stop_tx, stop_rx) = mpsc::channel::<()>();
            let interval = config.checkpoint_interval;
            let stats = stats.clone();
            std::thread::Builder::new()
                .name("ledger-checkpoints".into())
                .spawn(move || publish(log, signer, interval, stop_rx, stats))
                .ok()
                .map(|h| (stop_tx, h))
        });
        Pipeline {
            tx: Some(tx),
            stats,
            capacity: config.queue_capacity,
            writer,
            publisher,
        }
    }

    /// Counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Queues records; the receiver yields one outcome per record, in order,
    /// once they are durable. Refuses with [`Busy`] when the queue is full.
    pub fn submit(&self, subs: Vec<Submission>) -> Result<oneshot::Receiver<Vec<Outcome>>, Busy> {
        let n = subs.len();
        let queued = self.stats.queued.fetch_add(n, Ordering::AcqRel);
        if queued + n > self.capacity && queued > 0 {
            self.stats.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(Busy { queued, subs });
        }
        let (ack, rx) = oneshot::channel();
        let Some(tx) = self.tx.as_ref() else {
            self.stats.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(Busy { queued, subs });
        };
        if let Err(mpsc::SendError(job)) = tx.send(Job { subs, ack }) {
            self.stats.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(Busy {
                queued,
                subs: job.subs,
            });
        }
        Ok(rx)
    }

    /// Stops accepting, commits and acknowledges everything queued, signs a
    /// last checkpoint, and waits for the threads.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.tx.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        if let Some((stop, h)) = self.publisher.take() {
            let _ = stop.send(());
            let _ = h.join();
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.stop();
    }
}

fn publish(
    log: Arc<Log>,
    signer: SignerKey,
    interval: Duration,
    stop: Receiver<()>,
    stats: Arc<Stats>,
) {
    loop {
        let stopping = !matches!(stop.recv_timeout(interval), Err(RecvTimeoutError::Timeout));
        let grown = log
            .latest_checkpoint()
            .is_none_or(|cp| cp.checkpoint.size < log.size());
        if grown {
            match log.sign_checkpoint(&signer) {
                Ok(_) => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64);
                    stats.last_checkpoint_unix_ms.store(now, Ordering::Relaxed);
                }
                Err(e) => tracing::error!("signing checkpoint: {e}"),
            }
        }
        if stopping {
            return;
        }
    }
}

struct Writer {
    log: Arc<Log>,
    stats: Arc<Stats>,
    config: PipelineConfig,
    /// The ledger clock: never goes backwards in log order.
    clock: Timestamp,
}

impl Writer {
    fn new(log: Arc<Log>, stats: Arc<Stats>, config: PipelineConfig) -> Writer {
        Writer {
            log,
            stats,
            config,
            clock: Timestamp(time::OffsetDateTime::UNIX_EPOCH),
        }
    }

    fn run(mut self, rx: Receiver<Job>) {
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
            self.commit(jobs, n);
        }
    }

    fn tick(&mut self) -> String {
        let now = Timestamp(time::OffsetDateTime::now_utc());
        if now > self.clock {
            self.clock = now;
        }
        self.clock.canonical()
    }

    fn commit(&mut self, jobs: Vec<Job>, n: usize) {
        let started = Instant::now();
        let received_at = self.tick();
        let mut entries: Vec<Vec<u8>> = Vec::with_capacity(n);
        let mut fresh: Vec<&CheckedRecord> = Vec::with_capacity(n);
        // decision_id → (position in `entries`, digest), for retries inside one batch.
        let mut in_batch: HashMap<&str, (usize, [u8; 32])> = HashMap::new();
        let mut plans: Vec<Vec<Plan>> = Vec::with_capacity(jobs.len());
        // One storage call for every id of the batch.
        let ids: Vec<&str> = jobs
            .iter()
            .flat_map(|j| j.subs.iter().map(|s| s.record.decision_id.as_str()))
            .collect();
        let mut known = match lookup_decisions(&self.log, &ids) {
            Ok(found) => found.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => ids.iter().map(|_| Err(e.to_string())).collect(),
        }
        .into_iter();
        for job in &jobs {
            let mut plan = Vec::with_capacity(job.subs.len());
            for sub in &job.subs {
                let r = &sub.record;
                let stored = known.next().unwrap_or(Ok(None));
                if let Some(&(pos, digest)) = in_batch.get(r.decision_id.as_str()) {
                    plan.push(Plan::SameBatch {
                        pos,
                        duplicate: digest == r.digest,
                    });
                    continue;
                }
                plan.push(match stored {
                    Ok(Some((index, digest))) if digest == r.digest => Plan::Done(
                        self.log
                            .leaf_hash(index)
                            .map(|leaf_hash| Outcome::Duplicate { index, leaf_hash })
                            .unwrap_or_else(|e| Outcome::Failed(e.to_string())),
                    ),
                    Ok(Some((index, _))) => Plan::Done(Outcome::Conflict { index }),
                    Ok(None) => {
                        in_batch.insert(&r.decision_id, (entries.len(), r.digest));
                        fresh.push(r);
                        entries.push(verifier::envelope::encode_parts(
                            &r.cbor,
                            &received_at,
                            &sub.submitted_by,
                        ));
                        Plan::New(entries.len() - 1)
                    }
                    Err(e) => Plan::Done(Outcome::Failed(e)),
                });
            }
            plans.push(plan);
        }
        let result = if entries.is_empty() {
            Ok((self.log.size(), Vec::new()))
        } else {
            self.log
                .append_with(&entries, |first| puts_for_batch(&fresh, first))
                .map(|(range, leaves)| (range.start, leaves))
        };
        let outcomes: Vec<Vec<Outcome>> = match result {
            Ok((first, leaves)) => {
                let leaf = |pos: usize| (first + pos as u64, leaves[pos]);
                let outcomes: Vec<Vec<Outcome>> = plans
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
                self.count(&outcomes, entries.len());
                outcomes
            }
            Err(e) => {
                tracing::error!("group commit failed: {e}");
                let why = format!("storage failure, nothing appended: {e}");
                plans
                    .iter()
                    .map(|p| vec![Outcome::Failed(why.clone()); p.len()])
                    .collect()
            }
        };
        self.stats
            .commit_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        self.stats.queued.fetch_sub(n, Ordering::AcqRel);
        for (job, out) in jobs.into_iter().zip(outcomes) {
            // The submitter may have gone away; the records are durable anyway.
            let _ = job.ack.send(out);
        }
    }

    fn count(&self, outcomes: &[Vec<Outcome>], appended: usize) {
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        self.stats.appended.fetch_add(appended, Ordering::Relaxed);
        for o in outcomes.iter().flatten() {
            match o {
                Outcome::Duplicate { .. } => self.stats.duplicates.fetch_add(1, Ordering::Relaxed),
                Outcome::Conflict { .. } => self.stats.conflicts.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
        }
    }
}

/// What the writer will answer for one record once the batch is committed.
enum Plan {
    /// Known before the commit.
    Done(Outcome),
    /// Appended as `entries[pos]`.
    New(usize),
    /// A repeat of `entries[pos]` in the same batch.
    SameBatch { pos: usize, duplicate: bool },
}
