//! Retention in a running ledgerd (`--retention`): the entries of
//! decisions received longer ago than the period are removed now and
//! then, keeping their hashes, and the ledger logs a retention record
//! naming the first kept leaf (docs/operations.md, "Retention").

use std::sync::atomic::Ordering;
use std::time::Duration;

/// A line on stdout, where ledgerd says what it did (a closed pipe is no
/// error).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Removes the entries older than `keep`, now and then every eighth of
/// `keep` (between a second and an hour): a prune takes whole entry
/// bundles ([`ingest::Indexes::prune`]); then logs the retention record of
/// the new first kept leaf ([`ingest::Indexes::log_retention`]). Stops
/// when the server does.
pub fn retain(
    state: &std::sync::Weak<crate::state::AppState>,
    data: &std::path::Path,
    keep: Duration,
) {
    let every = (keep / 8).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    // The hold said once while it stops retention, not every pass.
    let mut told = None;
    loop {
        let Some(indexes) = state.upgrade().map(|s| s.indexes.clone()) else {
            return;
        };
        let horizon = ingest::index::retention::horizon(std::time::SystemTime::now(), keep);
        let pruned = horizon
            .map(|t| indexes.prune_received_before_held(t, data))
            .transpose();
        // The rule's time goes into the record only when this pass moved
        // the first kept leaf.
        let moved_before = match (&pruned, horizon) {
            (Ok(Some((p, _))), Some(t)) if p.to > p.from => Some(t),
            _ => None,
        };
        let failed = pruned.is_err();
        crate::state::RETENTION_FAILING.store(u64::from(failed), Ordering::Relaxed);
        if failed {
            crate::state::RETENTION_FAILED_PASSES.fetch_add(1, Ordering::Relaxed);
        } else {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            crate::state::RETENTION_LAST_PASS.store(now, Ordering::Relaxed);
        }
        match pruned {
            Ok(Some((p, hold))) => {
                if p.to > p.from {
                    say!(
                        "retention: removed the entries of leaves {}..{} ({} decision ids); their hashes stay",
                        p.from,
                        p.to,
                        p.ids
                    );
                }
                crate::state::RETENTION_HELD_SINCE.store(
                    hold.as_ref()
                        .map_or(0, |h| h.since.unix_nanos() / 1_000_000_000),
                    Ordering::Relaxed,
                );
                let id = hold.as_ref().map(|h| h.id.clone());
                if let Some(h) = hold.filter(|_| told != id) {
                    say!(
                        "retention: decisions received since {} are kept: legal hold {} ({})",
                        h.since.canonical(),
                        h.id,
                        h.reason
                    );
                }
                told = id;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("retention: {e}"),
        }
        if !failed {
            log_retention_record(state, &indexes, keep, moved_before);
        }
        drop(indexes);
        if !crate::state::pause_while_serving(state, every) {
            return;
        }
    }
}

/// Logs the retention record of the first kept leaf, if none names it
/// yet ([`ingest::Indexes::log_retention`]); `moved_before` is the time
/// before which this pass removed entries, if it did. A record not logged
/// now (the pipeline busy, the server stopping) is logged at a later pass,
/// so it does not count as a failed pass.
fn log_retention_record(
    state: &std::sync::Weak<crate::state::AppState>,
    indexes: &ingest::Indexes,
    keep: Duration,
    moved_before: Option<verifier::timestamp::Timestamp>,
) {
    let log = indexes.log();
    let reason = verifier::retention::reason(
        &format!("retention of {}s", keep.as_secs()),
        log.first_kept(),
        moved_before.as_ref(),
    );
    let now = verifier::timestamp::Timestamp(time::OffsetDateTime::now_utc());
    // The server's state is held only while the record is queued.
    let submit = |record| {
        let queued = state
            .upgrade()
            .ok_or("the server is stopping")?
            .pipeline
            .submit(vec![record]);
        ingest::pipeline::wait_one(queued)
    };
    match indexes.log_retention("ledgerd", &reason, &now, submit) {
        Ok(Some(by)) => say!(
            "retention: logged the retention record of first kept leaf {} at leaf {by}",
            log.first_kept()
        ),
        Ok(None) => {}
        Err(e) => tracing::warn!("retention: {e}; the next pass logs it"),
    }
}
