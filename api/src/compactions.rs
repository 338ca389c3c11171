//! Compactions owed ([`ledger::Log::compactions_owed`]: a prune's, an
//! erasure's, an index family's whole one), finished in the background:
//! once ledgerd has started, what a stop or a crash cut short; and while
//! it runs, what failed (a full disk; RocksDB resumes by itself once
//! there is room), so that the bytes they were to take off the disk do
//! not wait for the next prune, erasure or start.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger::Log;

/// How often ledgerd asks whether a compaction failed, and if one did
/// does what is owed again; at least four times as long as that
/// took when it failed again.
pub const RETRY_EVERY: Duration = Duration::from_secs(10);

/// A compaction that keeps failing (a disk too full for it, however long
/// ledgerd waits) is tried again only after this many times the time the
/// last try took: it takes at most a fifth of the disk's time. One that
/// fails at once (RocksDB stopped until there is room) is tried again
/// every [`RETRY_EVERY`].
const BUSY_SHARE: u32 = 4;

/// Starts the thread that finishes what [`Log::compactions_owed`] names
/// now, then again each time a compaction failed
/// ([`Log::take_failed_compaction`]), looking every `every`; a stop
/// ([`Log::stop_compactions`]) ends it at once and leaves the rest owed.
pub fn start_owed_compactions(
    log: &Arc<Log>,
    every: Duration,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let log = log.clone();
    std::thread::Builder::new()
        .name("ledger-owed-compactions".into())
        .spawn(move || {
            let mut failed = finish_owed(&log, "a stop or a crash cut short");
            loop {
                let pause = failed.map_or(every, |took| every.max(took * BUSY_SHARE));
                if !wait(&log, pause) {
                    return;
                }
                // A failure since (a prune's, an erasure's), or the last
                // try's own.
                let again = log.take_failed_compaction() || failed.is_some();
                failed = None;
                if again {
                    failed = finish_owed(&log, "that failed");
                }
            }
        })
}

/// Waits `every`; false if the compactions were stopped meanwhile.
fn wait(log: &Log, every: Duration) -> bool {
    let until = Instant::now() + every;
    while !log.compactions_stopped() {
        match until.checked_duration_since(Instant::now()) {
            Some(left) => std::thread::sleep(left.min(Duration::from_millis(100))),
            None => return true,
        }
    }
    false
}

/// Does what is owed, if anything; `why` it is owed, for the log. Returns
/// how long it took if some of it failed again.
fn finish_owed(log: &Log, why: &str) -> Option<Duration> {
    let owed = match log.compactions_owed() {
        Ok(owed) if owed.is_empty() => return None,
        Ok(owed) => owed,
        Err(e) => {
            tracing::warn!("cannot read which compactions are owed: {e}");
            return None;
        }
    };
    tracing::info!("finishing the compactions {why}: {owed}");
    let started = Instant::now();
    let done = log.compact_owed();
    let failed = log.take_failed_compaction();
    match &done {
        Err(e) => tracing::warn!("finishing the compactions owed failed: {e}"),
        Ok(()) if failed || log.compactions_stopped() => {}
        Ok(()) => tracing::info!("the compactions owed are done"),
    }
    (failed || done.is_err()).then(|| started.elapsed())
}
