//! Damage found and repaired while ledgerd runs: [`start_scrubs`] reads
//! every block of the store now and then, so that damage is found before
//! a request meets it, and indexes found damaged are rebuilt from the
//! leaves beside the ones in use, and put in their place, without a
//! restart ([`ingest::Indexes::rebuild_beside`]).
//!
//! Damage met in the index database marks the store
//! (`ledger_indexes_marked_damaged`); [`watch_indexes`] sees the mark
//! within a second and rebuilds. Until the new indexes are in place,
//! lookups and searches that meet the damaged blocks fail as before. A
//! rebuild that fails is tried again a minute later. A ledgerd started on
//! indexes marked before serves with them and rebuilds them the same way
//! (`ledger::Log::open_keeping_marked`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Weak;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::state::{pause_while_serving, AppState};

/// 1 while a rebuild runs (`ledger_indexes_rebuilding`).
pub static REBUILDING: AtomicU64 = AtomicU64::new(0);
/// Rebuilds put in place since ledgerd started (`ledger_index_rebuilds_total`).
pub static REBUILDS: AtomicU64 = AtomicU64::new(0);
/// Rebuilds that failed (`ledger_index_rebuilds_failed_total`).
pub static REBUILDS_FAILED: AtomicU64 = AtomicU64::new(0);

/// How often the mark is looked at.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// How long after a failed rebuild the next begins.
const AFTER_FAILURE: Duration = Duration::from_secs(60);

/// Starts the thread that rebuilds the indexes of `state` whenever they
/// are marked damaged ([`watch_indexes`]); it stops when the server does.
pub fn start_index_repair(state: Weak<AppState>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ledger-index-repair".into())
        .spawn(move || watch_indexes(state))
}

/// Rebuilds the indexes of `state` whenever they are marked damaged, for
/// as long as the server runs.
pub fn watch_indexes(state: Weak<AppState>) {
    loop {
        if !pause_while_serving(&state, LOOK_EVERY) {
            return;
        }
        let Some(indexes) = state.upgrade().map(|s| s.indexes.clone()) else {
            return;
        };
        if !indexes.log().indexes_marked_damaged() {
            continue;
        }
        tracing::warn!(
            "the indexes are damaged: rebuilding them from the log's leaves beside the ones in use"
        );
        REBUILDING.store(1, Ordering::Relaxed);
        let rebuilt = indexes.rebuild_beside();
        REBUILDING.store(0, Ordering::Relaxed);
        match rebuilt {
            Ok(r) => {
                REBUILDS.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "rebuilt the indexes of leaves {}..{} from the log and put them in place in {:.1} s; \
                     check the disk that damaged them",
                    r.from,
                    r.to,
                    r.took.as_secs_f64()
                );
            }
            Err(_) if indexes.stopping() => {
                tracing::warn!(
                    "the index rebuild stopped with the server; the next start rebuilds the indexes"
                );
                return;
            }
            Err(e) => {
                REBUILDS_FAILED.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    "rebuilding the damaged indexes failed ({e}); trying again in {} s",
                    AFTER_FAILURE.as_secs()
                );
                drop(indexes);
                if !pause_while_serving(&state, AFTER_FAILURE) {
                    return;
                }
            }
        }
    }
}

/// 1 while a scrub runs (`ledger_scrub_running`).
pub static SCRUBBING: AtomicU64 = AtomicU64::new(0);
/// When the last scrub read the whole store, Unix seconds; 0: never
/// (`ledger_scrub_last_completed_timestamp_seconds`).
pub static SCRUB_LAST: AtomicU64 = AtomicU64::new(0);
/// Seconds between scrubs; 0: off (`ledger_scrub_interval_seconds`).
pub static SCRUB_EVERY: AtomicU64 = AtomicU64::new(0);
/// Bytes the running scrub has read (`ledger_scrub_read_bytes`).
pub static SCRUB_READ: AtomicU64 = AtomicU64::new(0);

/// Bytes a second a scrub reads at most: a 50 GB store in about half an
/// hour, leaving the disk to the appends.
const SCRUB_RATE: u64 = 32 << 20;
/// How long after the start a store never scrubbed is scrubbed first.
const FIRST_SCRUB_AFTER: Duration = Duration::from_secs(600);
/// The file in the data dir that keeps when the last scrub completed.
const SCRUBBED: &str = "scrubbed";

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// When the store in `data` was last scrubbed whole, if ever.
fn last_scrub(data: &Path) -> Option<u64> {
    std::fs::read_to_string(data.join(SCRUBBED))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Starts scrubbing the store of `state` every `every` on a thread of
/// its own ([`ledger::Log::scrub`]): the first scrub `every` after the
/// last one completed (kept in `<data>/scrubbed`), or 10 minutes after the
/// start if it never was (or `every`, if shorter); at most 32 MiB a
/// second. Damage found is logged and counted like damage a request meets
/// (`ledger_storage_damaged_total`); damaged indexes are marked, and
/// [`watch_indexes`] rebuilds them. The thread stops when the server does.
pub fn start_scrubs(
    state: Weak<AppState>,
    data: PathBuf,
    every: Duration,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    SCRUB_EVERY.store(every.as_secs(), Ordering::Relaxed);
    let last = last_scrub(&data);
    SCRUB_LAST.store(last.unwrap_or(0), Ordering::Relaxed);
    let next = match last {
        Some(at) => at.saturating_add(every.as_secs()),
        None => unix_now() + every.min(FIRST_SCRUB_AFTER).as_secs(),
    };
    std::thread::Builder::new()
        .name("ledger-scrub".into())
        .spawn(move || scrubs(&state, &data, every, next))
}

/// [`start_scrubs`]'s thread: a scrub at `next` (Unix seconds), then
/// every `every`.
fn scrubs(state: &Weak<AppState>, data: &Path, every: Duration, mut next: u64) {
    loop {
        while unix_now() < next {
            if !pause_while_serving(state, LOOK_EVERY.min(every)) {
                return;
            }
        }
        let Some(log) = state.upgrade().map(|s| s.log.clone()) else {
            return;
        };
        SCRUBBING.store(1, Ordering::Relaxed);
        let started = Instant::now();
        let scrubbed = log.scrub(ledger::SCRUB_RUN, SCRUB_RATE, |read| {
            SCRUB_READ.store(read, Ordering::Relaxed);
            state.strong_count() > 0
        });
        SCRUBBING.store(0, Ordering::Relaxed);
        SCRUB_READ.store(0, Ordering::Relaxed);
        drop(log);
        match scrubbed {
            Ok(s) if s.complete => {
                let now = unix_now();
                SCRUB_LAST.store(now, Ordering::Relaxed);
                if let Err((path, e)) =
                    ledger::stamp::replace(data, SCRUBBED, now.to_string().as_bytes(), None)
                {
                    tracing::warn!("scrub: keeping when it ran in {}: {e}", path.display());
                }
                tracing::info!(
                    "scrub: read {} keys ({} MiB) of the store in {:.0} s, every checksum matching",
                    s.keys,
                    s.bytes >> 20,
                    started.elapsed().as_secs_f64()
                );
            }
            // Stopped: the server is stopping.
            Ok(_) => return,
            Err(e) => tracing::error!("scrub: {e}"),
        }
        next = unix_now() + every.as_secs();
    }
}
