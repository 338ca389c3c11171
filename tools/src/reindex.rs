//! `ledgerctl reindex`: the responder indexes and the `decision_id` map
//! (`db/index/`) made again from the log's leaves, for a store whose
//! index database is damaged or lost (specs/storage.md, "Decision
//! indexes"; docs/operations.md, "When the store is damaged").

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::datadir::DataDir;

/// Deletes `<data>/db/index` and builds it again from the leaves, a span
/// at a time. Only on a stopped store: the log is opened first, which
/// RocksDB refuses while ledgerd holds it.
pub fn run(dir: &DataDir) -> Result<()> {
    let log = dir
        .open_log()
        .context("reindex works on a stopped store: stop ledgerd first")?;
    let (kept, size) = (log.first_kept(), log.size());
    drop(log);
    let path = dir.index_path();
    ledger::discard_indexes(dir.db_path().as_path())
        .with_context(|| format!("deleting the indexes in {}", path.display()))?;
    let started = Instant::now();
    let log = Arc::new(dir.open()?);
    let indexes = ingest::Indexes::open(log)
        .with_context(|| format!("rebuilding the indexes in {}", path.display()))?;
    let built = indexes.built().max(kept);
    println!(
        "rebuilt the indexes of leaves {kept}..{size} from the log in {:.1} s: {} in built spans, \
         {} held in memory until their span fills (read again from the leaves at each start)",
        started.elapsed().as_secs_f64(),
        built - kept,
        size - built
    );
    Ok(())
}
