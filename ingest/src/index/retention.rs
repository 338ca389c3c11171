//! Retention over the indexes: what a pruned leaf leaves behind
//! (specs/storage.md, "Retention").
//!
//! [`Indexes::prune`] removes, before the log removes the entries
//! ([`ledger::Log::prune_entries`]), the `decisions` keys of the pruned
//! leaves in built spans (read from the entries, which are still there) and
//! the postings of every built span that lies wholly below the new first
//! kept leaf. A pruned leaf whose span is still in memory is left out when
//! the span is built ([`Indexes::build`] reads the first kept leaf, which a
//! prune moves only while span builds wait), and is not found meanwhile.
//! A built span that holds the first kept leaf keeps its postings until a
//! later prune passes its end; searches never return a leaf below the
//! first kept one. A crash between the steps leaves the entries in place,
//! and the next prune removes the same keys again.

use ledger::LedgerError;
use verifier::timestamp::Timestamp;

use crate::index::{mark_key, Facts, CF_DECISIONS, CF_POSTINGS};
use crate::Indexes;

/// What a prune removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pruned {
    /// The first kept leaf before the prune.
    pub from: u64,
    /// The first kept leaf after it: the entries of `from..to` are gone.
    pub to: u64,
    /// `decision_id`s removed from the idempotency index.
    pub ids: u64,
    /// Spans whose postings were removed, up to this leaf (0: none).
    pub postings_below: u64,
}

/// A retention period as settings spell it: a whole number of days,
/// hours, minutes or seconds (`400d`, `12h`, `30m`, `45s`), at least 1s.
/// `ledgerctl` reads spans of time (`--expires 90d`, `--from 2h`) with it.
pub fn parse_period(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("retention {text:?} is not a period such as 400d, 12h, 30m or 45s");
    let t = text.trim();
    let (n, unit) = t.split_at(t.len().checked_sub(1).ok_or_else(bad)?);
    let unit: u64 = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(bad()),
    };
    if n.is_empty() || n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs = n
        .parse::<u64>()
        .map_err(|_| bad())?
        .checked_mul(unit)
        .ok_or_else(bad)?;
    Ok(std::time::Duration::from_secs(secs))
}

/// The retention horizon: `keep` before `now` (`None` before 1970).
pub fn horizon(now: std::time::SystemTime, keep: std::time::Duration) -> Option<Timestamp> {
    let since = now
        .checked_sub(keep)?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Timestamp::from_unix_nanos(u64::try_from(since.as_nanos()).ok()?)
}

/// Leaves removed per step at most: a step holds span builds back while
/// it deletes what the indexes hold of its leaves.
const STEP: u64 = 1 << 16;

impl Indexes {
    /// Removes the entries of the leaves below `before`, rounded down to a
    /// whole entry bundle ([`ledger::Log::prunable`]), with what the
    /// indexes hold of them, in steps. A retried `decision_id` of a pruned
    /// leaf may be appended anew: its record is no longer kept.
    pub fn prune(&self, before: u64) -> Result<Pruned, LedgerError> {
        let log = self.log();
        let from = log.first_kept();
        let to = log.prunable(before);
        let mut pruned = Pruned {
            from,
            to: from,
            ids: 0,
            postings_below: 0,
        };
        let span = self.span();
        let mut postings_end = Vec::new();
        while pruned.to < to {
            let (at, next) = (pruned.to, to.min(pruned.to + STEP));
            // The ids of the leaves to remove, read while they are there.
            let mut ids = Vec::new();
            log.scan_entries(at, next, |i, leaf| {
                if let Some(facts) = Facts::of_leaf(leaf) {
                    ids.push((i, facts.decision_id.into_bytes()));
                }
                Ok::<(), LedgerError>(())
            })?;
            // Span builds wait: a span built from here on leaves out the
            // leaves below the first kept one, which this moves; the ids
            // and postings of the spans built before go from RocksDB.
            let _building = self.building.lock().unwrap_or_else(|p| p.into_inner());
            let built = self.built();
            let stored: Vec<Vec<u8>> = ids
                .into_iter()
                .filter(|(i, _)| *i < built)
                .map(|(_, id)| id)
                .collect();
            pruned.ids += stored.len() as u64;
            log.index_delete(CF_DECISIONS, &stored, &[])?;
            // The postings of the built spans wholly below; the newest
            // built span's mark stays (it says how far the indexes reach).
            let below = (next / span * span).min(built);
            if below > pruned.postings_below {
                postings_end = match below == built {
                    true => mark_key(built - span).to_vec(),
                    false => below.to_be_bytes().to_vec(),
                };
                let range = (0u64.to_be_bytes().to_vec(), postings_end.clone());
                log.index_delete(CF_POSTINGS, &[], &[range])?;
                pruned.postings_below = below;
            }
            let done = log.prune_entries(next)?;
            if done <= at {
                break;
            }
            pruned.to = done;
        }
        // The removed bytes leave the files. (The ids are scattered over
        // the whole `decisions` family; RocksDB's own compactions drop
        // them.)
        log.compact_pruned(from, pruned.to);
        if !postings_end.is_empty() {
            log.index_compact(CF_POSTINGS, None, Some(&postings_end))?;
        }
        Ok(pruned)
    }

    /// Why `decision_id` is not found: it is in no kept leaf (retention
    /// removes ids with their entries, so a pruned one is not told apart
    /// from one never logged).
    pub fn not_found(&self, decision_id: &str) -> String {
        match self.log().first_kept() {
            0 => format!("no decision with id {decision_id:?} in this log"),
            kept => format!("no decision with id {decision_id:?} among the kept leaves (the entries of leaves below {kept} were removed by retention, with their ids)"),
        }
    }

    /// [`Indexes::prune`] of the leaves received before `t`
    /// (`received_at` never decreases in log order).
    pub fn prune_received_before(&self, t: Timestamp) -> Result<Pruned, LedgerError> {
        let log = self.log();
        self.prune(log.first_received_at_or_after(t, log.size())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        assert_eq!(
            parse_period("400d"),
            Ok(std::time::Duration::from_secs(400 * 86_400))
        );
        assert_eq!(parse_period(" 2s"), Ok(std::time::Duration::from_secs(2)));
        for bad in [
            "",
            "d",
            "0d",
            "01d",
            "-1d",
            "1w",
            "1.5h",
            "12",
            "99999999999999999999d",
        ] {
            assert!(
                parse_period(bad).unwrap_err().contains("not a period"),
                "{bad}"
            );
        }
        let t = horizon(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(90),
            std::time::Duration::from_secs(30),
        );
        assert_eq!(t.map(|t| t.unix_nanos()), Some(60_000_000_000));
        assert_eq!(
            horizon(std::time::UNIX_EPOCH, std::time::Duration::from_secs(1)),
            None
        );
    }
}
