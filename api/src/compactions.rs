//! Compactions a stop or a crash cut short (a prune's, an erasure's, an
//! index family's whole one: [`ledger::Log::compactions_owed`]), finished
//! in the background once ledgerd has started, so that the bytes they
//! were to take off the disk do not wait for the next prune or erasure.

use std::sync::Arc;

use ledger::Log;

/// Starts the thread that finishes what [`Log::compactions_owed`] names,
/// if anything; a stop ([`Log::stop_compactions`]) ends it at once and
/// leaves the rest owed.
pub fn start_owed_compactions(
    log: &Arc<Log>,
) -> std::io::Result<Option<std::thread::JoinHandle<()>>> {
    let owed = match log.compactions_owed() {
        Ok(owed) if owed.is_empty() => return Ok(None),
        Ok(owed) => owed,
        Err(e) => {
            tracing::warn!("cannot read which compactions are owed: {e}");
            return Ok(None);
        }
    };
    let log = log.clone();
    std::thread::Builder::new()
        .name("ledger-owed-compactions".into())
        .spawn(move || {
            tracing::info!("finishing the compactions a stop or a crash cut short: {owed}");
            match log.compact_owed() {
                Ok(()) if log.compactions_stopped() => {}
                Ok(()) => tracing::info!("the compactions owed are done"),
                Err(e) => tracing::warn!("finishing the compactions owed failed: {e}"),
            }
        })
        .map(Some)
}
