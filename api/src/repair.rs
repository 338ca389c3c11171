//! Indexes found damaged while ledgerd runs are rebuilt from the leaves
//! beside the ones in use, and put in their place, without a restart
//! ([`ingest::Indexes::rebuild_beside`]).
//!
//! Damage met in the index database marks the store
//! (`ledger_indexes_marked_damaged`); [`watch_indexes`] sees the mark
//! within a second and rebuilds. Until the new indexes are in place,
//! lookups and searches that meet the damaged blocks fail as before. A
//! rebuild that fails is tried again a minute later. A ledgerd started on
//! indexes marked before serves with them and rebuilds them the same way
//! (`ledger::Log::open_keeping_marked`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Weak;
use std::time::Duration;

use crate::state::AppState;

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

/// Rebuilds the indexes of `state` whenever they are marked damaged, for
/// as long as the server runs.
pub fn watch_indexes(state: Weak<AppState>) {
    loop {
        std::thread::sleep(LOOK_EVERY);
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
            Err(e) => {
                REBUILDS_FAILED.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    "rebuilding the damaged indexes failed ({e}); trying again in {} s",
                    AFTER_FAILURE.as_secs()
                );
                drop(indexes);
                std::thread::sleep(AFTER_FAILURE);
            }
        }
    }
}
