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
/// does what is owed again.
pub const RETRY_EVERY: Duration = Duration::from_secs(10);

/// Starts the thread that finishes what [`Log::compactions_owed`] names
/// now, then every `every` after a compaction failed
/// ([`Log::take_failed_compaction`]); a stop ([`Log::stop_compactions`])
/// ends it at once and leaves the rest owed.
pub fn start_owed_compactions(
    log: &Arc<Log>,
    every: Duration,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let log = log.clone();
    std::thread::Builder::new()
        .name("ledger-owed-compactions".into())
        .spawn(move || {
            finish_owed(&log, "a stop or a crash cut short");
            while wait(&log, every) {
                if log.take_failed_compaction() {
                    finish_owed(&log, "that failed");
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

/// Does what is owed, if anything; `why` it is owed, for the log.
fn finish_owed(log: &Log, why: &str) {
    let owed = match log.compactions_owed() {
        Ok(owed) if owed.is_empty() => return,
        Ok(owed) => owed,
        Err(e) => {
            tracing::warn!("cannot read which compactions are owed: {e}");
            return;
        }
    };
    tracing::info!("finishing the compactions {why}: {owed}");
    if let Err(e) = log.compact_owed() {
        tracing::warn!("finishing the compactions owed failed: {e}");
    } else if !log.compactions_stopped() && log.compactions_owed().is_ok_and(|o| o.is_empty()) {
        tracing::info!("the compactions owed are done");
    }
}
