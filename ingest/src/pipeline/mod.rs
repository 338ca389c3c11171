//! The durable ingest pipeline: bounded queue → batcher → one writer doing
//! group commit (one synced WriteBatch for many records) → acknowledgements
//! after that commit; and a checkpoint publisher.

mod recent;
pub mod sched;
pub(crate) mod stages;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ledger::keys::SharedSigners;
use ledger::Log;
use tokio::sync::oneshot;
use verifier::Hash;

use crate::index::indexes::BuiltAnswer;
use crate::record::CheckedRecord;
use crate::Indexes;

/// How many threads of a process should call [`Pipeline::submit`] at
/// once, at most (the size of `ledgerd`'s and `ledgerctl bench`'s blocking
/// pools). Each submission of 64 concurrent submitters on a thread of its
/// own contended for the two cores with the pipeline's threads, and each
/// new thread paged in its own stack and allocator pages: with 16, the
/// bench's peak rose by about a quarter.
/// Enough remain for submissions whose `decision_id` lookups wait for the
/// disk.
pub const BLOCKING_THREADS: usize = 16;

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
    /// Leaves not yet in the built indexes (held in memory) at most;
    /// beyond it, submit says busy until the indexer thread catches up.
    /// Span builds run behind the acks: a burst leaves them behind for a
    /// while, but under sustained load they must keep up, or the spans held
    /// in memory would grow without bound.
    pub max_unbuilt: u64,
    /// Raise the stages' CPU priority ([`COMMITTER_NICE`], [`STAGE_NICE`])
    /// and shorten their time slice ([`sched`]), so that an
    /// acknowledgement does not wait for a CPU behind a RocksDB flush.
    /// Off by default: it changes how the host schedules this process
    /// against others, and raising a priority needs `CAP_SYS_NICE`. With
    /// it, span builds run at [`INDEXER_NICE`]. Without it every thread
    /// keeps the process's priority, and under a load that fills every
    /// core span builds get their fair share: at a lower one they fell so
    /// far behind that writes were refused until they caught up.
    pub thread_priorities: bool,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            queue_capacity: 100_000,
            max_batch: 1_000,
            max_delay: Duration::from_micros(500),
            checkpoint_interval: Duration::from_secs(1),
            // Three spans: ~140 MiB of span indexes and id tables.
            max_unbuilt: 3 * crate::index::SPAN,
            thread_priorities: false,
        }
    }
}

/// A checked record and who sent it.
#[derive(Clone, Debug)]
pub struct Submission {
    /// The record.
    pub record: CheckedRecord,
    /// The authenticated enforcer id (the leaf's `submitted_by`): one
    /// per request, shared by its records, so that a record costs no
    /// copy of it to make nor to free.
    pub submitted_by: Arc<str>,
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

/// Waits on this thread for the outcome of one record queued with
/// [`Pipeline::submit`].
pub fn wait_one(queued: Result<oneshot::Receiver<Vec<Outcome>>, Busy>) -> Result<Outcome, String> {
    queued
        .map_err(|busy| busy.to_string())?
        .blocking_recv()
        .map_err(|_| "the pipeline stopped before acknowledging".to_string())?
        .pop()
        .ok_or_else(|| "no answer for the record".to_string())
}

/// Whether a storage failure's message says the disk is full (RocksDB and
/// the OS say "No space left on device", ENOSPC).
pub fn is_disk_full(why: &str) -> bool {
    why.contains("No space left") || why.contains("ENOSPC") || why.contains("os error 28")
}

/// The ledger takes no more records for now: back off and retry. Carries
/// the submissions back.
#[derive(Debug)]
pub struct Busy {
    /// Records waiting when refused.
    pub queued: usize,
    /// Leaves not yet in the built indexes when refused, if that was the
    /// reason ([`PipelineConfig::max_unbuilt`]); 0 if the queue was full.
    pub unbuilt: u64,
    /// The refused submissions, untouched.
    pub subs: Vec<Submission>,
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.unbuilt > 0 {
            write!(
                f,
                "the responder indexes are {} records behind the log; retry later",
                self.unbuilt
            )
        } else {
            write!(
                f,
                "ingest queue is full ({} records queued); retry later",
                self.queued
            )
        }
    }
}

impl std::error::Error for Busy {}

pub(crate) struct Job {
    pub(crate) subs: Vec<Submission>,
    /// What the built indexes said about the subs' `decision_id`s when they
    /// were submitted (`None` if that lookup failed).
    pub(crate) built: Option<BuiltAnswer>,
    pub(crate) ack: oneshot::Sender<Vec<Outcome>>,
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
    /// Records whose group commit failed (nothing of it appended).
    pub failed: AtomicUsize,
    /// Of those, records whose commit failed for want of disk space.
    pub failed_disk_full: AtomicUsize,
    /// Time spent acknowledging group commits (index in memory, acks), microseconds.
    pub commit_micros: std::sync::atomic::AtomicU64,
    /// Time the batcher spent preparing group commits, microseconds.
    pub prepare_micros: std::sync::atomic::AtomicU64,
    /// Time spent in the synced RocksDB writes, microseconds.
    pub write_micros: std::sync::atomic::AtomicU64,
    /// When the publisher last signed a checkpoint (Unix ms; 0 = never).
    pub last_checkpoint_unix_ms: std::sync::atomic::AtomicU64,
    /// Group commits received while the host clock read earlier than the
    /// ledger clock: their leaves took the ledger clock's time instead
    /// (`received_at` never goes back).
    pub clock_held: AtomicUsize,
    /// Records appended, by `decision`, in the order of
    /// [`crate::record::DECISIONS`] (`allow`, `deny`).
    pub decisions: [AtomicUsize; crate::record::DECISIONS.len()],
    /// Break-glass records appended (`break_glass.used`).
    pub break_glass: AtomicUsize,
}

/// A running pipeline. Dropping it (or [`Pipeline::shutdown`]) drains the
/// queue, commits and acknowledges everything in flight, and stops.
pub struct Pipeline {
    tx: Option<Sender<Job>>,
    indexes: Arc<Indexes>,
    stats: Arc<Stats>,
    capacity: usize,
    max_unbuilt: u64,
    /// The batcher, the committer, the acknowledger and the indexer.
    threads: [Option<JoinHandle<()>>; 4],
    publisher: Option<(Sender<()>, JoinHandle<()>)>,
}

impl Pipeline {
    /// Starts the writer, and a checkpoint publisher if `signer` is given
    /// (the log's key, or its current and next keys while it rotates keys;
    /// read at each signing, so a rotation step made meanwhile applies).
    pub fn start(
        indexes: Arc<Indexes>,
        signer: Option<SharedSigners>,
        config: PipelineConfig,
    ) -> Pipeline {
        let log = indexes.log().clone();
        let raise = config.thread_priorities;
        let (tx, rx) = mpsc::channel::<Job>();
        let stats = Arc::new(Stats::default());
        // Batcher → (one prepared batch at most) → committer → acknowledger,
        // which tells the batcher of a failed write so that it starts again
        // from the committed tree.
        let (batch_tx, batch_rx) = mpsc::sync_channel::<stages::Batch>(1);
        let (failed_tx, failed_rx) = mpsc::channel::<stages::Failed>();
        let (build_tx, build_rx) = mpsc::channel::<()>();
        let batcher = {
            let batcher =
                stages::Batcher::new(indexes.clone(), stats.clone(), config.clone(), failed_rx);
            std::thread::Builder::new()
                .name("ledger-batcher".into())
                .spawn(move || {
                    if raise {
                        set_priority(STAGE_NICE, Some(sched::LATENCY_SLICE));
                    }
                    batcher.run(rx, batch_tx)
                })
                .ok()
        };
        let (written_tx, written_rx) = mpsc::sync_channel::<stages::Written>(2);
        let committer = {
            let (log, stats) = (log.clone(), stats.clone());
            std::thread::Builder::new()
                .name("ledger-writer".into())
                .spawn(move || {
                    if raise {
                        set_priority(COMMITTER_NICE, Some(sched::LATENCY_SLICE));
                    }
                    stages::commit_all(log, stats, batch_rx, written_tx)
                })
                .ok()
        };
        let acknowledger = {
            let (indexes, stats) = (indexes.clone(), stats.clone());
            std::thread::Builder::new()
                .name("ledger-acks".into())
                .spawn(move || {
                    if raise {
                        set_priority(STAGE_NICE, Some(sched::LATENCY_SLICE));
                    }
                    stages::acknowledge_all(indexes, stats, written_rx, failed_tx, build_tx)
                })
                .ok()
        };
        // Builds complete index spans off the acknowledgement path.
        let indexer = {
            let indexes = indexes.clone();
            std::thread::Builder::new()
                .name("ledger-indexer".into())
                .spawn(move || {
                    if raise {
                        set_priority(INDEXER_NICE, None);
                    }
                    for () in build_rx {
                        if let Err(e) = indexes.build() {
                            tracing::error!("building an index span: {e}");
                        }
                    }
                })
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
            indexes,
            stats,
            capacity: config.queue_capacity,
            max_unbuilt: config.max_unbuilt,
            threads: [batcher, committer, acknowledger, indexer],
            publisher,
        }
    }

    /// Counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Why [`Pipeline::submit`] would refuse records now, if it would: for
    /// request handlers, to answer before reading (and checking) a body
    /// whose records would only be refused.
    pub fn refusing(&self) -> Option<Busy> {
        let queued = self.stats.queued.load(Ordering::Acquire);
        let busy = |unbuilt| Busy {
            queued,
            unbuilt,
            subs: Vec::new(),
        };
        match self.too_far_behind() {
            Some(unbuilt) => Some(busy(unbuilt)),
            None => (queued >= self.capacity).then(|| busy(0)),
        }
    }

    /// The leaves waiting for their span build, if more than
    /// [`PipelineConfig::max_unbuilt`] with the span a rebuild beside
    /// holds outside the spares ([`Indexes::unbuilt_and_held`]).
    fn too_far_behind(&self) -> Option<u64> {
        let unbuilt = self.indexes.unbuilt();
        (self.indexes.unbuilt_and_held() > self.max_unbuilt).then_some(unbuilt)
    }

    /// Queues records; the receiver yields one outcome per record, in order,
    /// once they are durable. Refuses with [`Busy`] when the queue is full,
    /// or when more than [`PipelineConfig::max_unbuilt`] leaves wait for
    /// their index span to be built.
    ///
    /// Looks the `decision_id`s up in the built indexes first, on the
    /// caller's thread (request handlers run on every core; the batcher
    /// is one thread that every record passes through).
    pub fn submit(&self, subs: Vec<Submission>) -> Result<oneshot::Receiver<Vec<Outcome>>, Busy> {
        let n = subs.len();
        if let Some(unbuilt) = self.too_far_behind() {
            let queued = self.stats.queued.load(Ordering::Acquire);
            return Err(Busy {
                queued,
                unbuilt,
                subs,
            });
        }
        let queued = self.stats.queued.fetch_add(n, Ordering::AcqRel);
        if queued + n > self.capacity && queued > 0 {
            self.stats.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(Busy {
                queued,
                unbuilt: 0,
                subs,
            });
        }
        let ids: Vec<&str> = subs.iter().map(|s| s.record.decision_id.as_str()).collect();
        let built = self.indexes.lookup_built(&ids).ok();
        let (ack, rx) = oneshot::channel();
        let Some(tx) = self.tx.as_ref() else {
            self.stats.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(Busy {
                queued,
                unbuilt: 0,
                subs,
            });
        };
        if let Err(mpsc::SendError(job)) = tx.send(Job { subs, built, ack }) {
            self.stats.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(Busy {
                queued,
                unbuilt: 0,
                subs: job.subs,
            });
        }
        Ok(rx)
    }

    /// Queues one record of the ledger's own (an erasure or retention
    /// record) and waits on this thread until it is durable: its outcome,
    /// or why it was not taken.
    pub fn submit_one(&self, sub: Submission) -> Result<Outcome, String> {
        wait_one(self.submit(vec![sub]))
    }

    /// Stops accepting, commits and acknowledges everything queued, signs a
    /// last checkpoint, and waits for the threads.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.tx.take();
        for t in &mut self.threads {
            if let Some(t) = t.take() {
                let _ = t.join();
            }
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

/// CPU priority (nice) of the committer with
/// [`PipelineConfig::thread_priorities`]: the highest. It sleeps in
/// `fdatasync` for most of each group commit, and what it does when that
/// returns (write the next batch to the WAL and memtables) is what every
/// acknowledgement waits for; at the others' priority it can wake to find
/// a core taken by a flush, a lookup or a span build.
pub const COMMITTER_NICE: i32 = -20;
/// CPU priority of the batcher and the acknowledger: above the request
/// handlers, flushes and lookups, below the committer, which must not wait
/// behind the next batch being prepared.
pub const STAGE_NICE: i32 = -10;
/// CPU priority of span builds: background work, below everything an
/// acknowledgement waits for.
pub const INDEXER_NICE: i32 = 10;

/// Sets the calling thread's CPU priority (on Linux each thread has its
/// own nice value) and, for a thread an acknowledgement waits for, a short
/// time slice so that it takes a CPU as soon as it wakes ([`sched`]).
/// Raising the priority (below 0) needs `CAP_SYS_NICE` (root, or a service
/// given the capability or a `RLIMIT_NICE`); without it the thread keeps
/// its nice value but still gets the slice, which costs throughput, not
/// correctness, and is logged once per thread.
fn set_priority(nice: i32, slice: Option<Duration>) {
    if let Err(e) = sched::set_current(nice, slice) {
        let name = std::thread::current().name().unwrap_or("?").to_string();
        tracing::warn!(
            "could not set the CPU priority of {name} to nice {nice} ({e}); \
             raising it needs CAP_SYS_NICE: appends work, with less throughput under load"
        );
        if slice.is_some() {
            sched::latency_sensitive();
        }
    }
}

fn publish(
    log: Arc<Log>,
    signer: SharedSigners,
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
            match log.sign_checkpoint(&signer.get()) {
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
