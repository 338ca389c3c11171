//! Retention over the indexes: what a pruned leaf leaves behind
//! (specs/storage.md, "Retention").
//!
//! [`Indexes::prune`] removes, before the log removes the entries
//! ([`ledger::Log::prune_entries`]), the `decisions` keys of the pruned
//! leaves in built spans (their ids read off the entries' bytes while they
//! are there) and the postings of the built spans that lie wholly below
//! the new first kept leaf. Then it takes the removed leaves out of the
//! postings files: those of the spans wholly below are deleted, and the
//! newest built span (if wholly below) and the built span that holds the
//! first kept leaf are rewritten without them. A pruned leaf whose span is
//! still in memory is left out when the span is built ([`Indexes::build`]
//! reads the first kept leaf, which a prune moves only while span builds
//! wait), and is not found meanwhile. Searches never return a leaf below
//! the first kept one. Every step is found again from what a crash leaves,
//! and the next prune (or, for a span cut short while rewritten, the next
//! open) completes it.

use std::path::Path;

use ledger::holds::Hold;
use ledger::LedgerError;
use verifier::timestamp::Timestamp;

use crate::index::span::SpanIndex;
use crate::index::{decode_decision, mark_key, Facts, CF_DECISIONS, CF_POSTINGS, SPAN};
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
    /// Postings rewritten without the leaves below the first kept one,
    /// or left out (of the built span that holds it, and of the newest
    /// built span if it lies wholly below it).
    pub trimmed: u64,
    /// Whether a legal hold stopped it short of where it was asked to go.
    pub held: bool,
}

/// A retention period as settings spell it: a whole number of days,
/// hours, minutes or seconds (`400d`, `12h`, `30m`, `45s`), at least 1s.
/// `ledgerctl` reads spans of time (`--expires 90d`, `--from 2h`) with it.
pub fn parse_period(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{text:?} is not a period such as 400d, 12h, 30m or 45s");
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
        self.prune_within(before, &mut || Ok(None))
    }

    /// [`Indexes::prune`] that asks `held`, before each step, for the
    /// first leaf it must keep (a legal hold's): holds read again each
    /// step, so one placed during a prune stops it at the next step.
    pub fn prune_within(
        &self,
        before: u64,
        held: &mut dyn FnMut() -> Result<Option<u64>, LedgerError>,
    ) -> Result<Pruned, LedgerError> {
        let log = self.log();
        let from = log.first_kept();
        let to = log.prunable(before);
        let mut pruned = Pruned {
            from,
            to: from,
            ids: 0,
            postings_below: 0,
            trimmed: 0,
            held: false,
        };
        let span = self.span();
        while pruned.to < to {
            if self.stopping() {
                return Ok(pruned);
            }
            let (at, mut next) = (pruned.to, to.min(pruned.to + STEP));
            if let Some(keep) = held()? {
                let cap = log.prunable(keep);
                if cap < next {
                    (next, pruned.held) = (cap, true);
                }
                if next <= at {
                    break;
                }
            }
            // The ids of the leaves to remove, read while they are there.
            let mut ids = Vec::new();
            // Read off the bytes, not checked: below, only an id whose
            // index entry names this very leaf is deleted.
            log.scan_entries(at, next, |i, leaf| {
                if let Some(id) = verifier::envelope::decision_id(leaf) {
                    ids.push((i, id.as_bytes().to_vec()));
                }
                Ok::<(), LedgerError>(())
            })?;
            // Span builds wait: a span built from here on leaves out the
            // leaves below the first kept one, which this moves; the ids
            // and postings of the spans built before go from RocksDB.
            let _building = self.building.lock().unwrap_or_else(|p| p.into_inner());
            let built = self.built();
            ids.retain(|(i, _)| *i < built);
            let keys: Vec<&[u8]> = ids.iter().map(|(_, id)| id.as_slice()).collect();
            let found = log.index_multi_get(CF_DECISIONS, &keys)?;
            let mut stored = Vec::with_capacity(ids.len());
            for ((i, id), value) in ids.into_iter().zip(found) {
                let here = value
                    .map(|v| decode_decision(&String::from_utf8_lossy(&id), &v))
                    .transpose()?
                    .is_some_and(|(leaf, _)| leaf == i);
                if here {
                    stored.push(id);
                }
            }
            pruned.ids += stored.len() as u64;
            log.index_delete(CF_DECISIONS, &stored, &[])?;
            // The postings of the built spans wholly below, but the
            // newest built span's: it is rewritten at the end, keeping its
            // mark (it says how far the indexes reach).
            let below = (next / span * span).min(built);
            let whole = match below == built {
                true => below.saturating_sub(span),
                false => below,
            };
            if whole > pruned.postings_below {
                let range = (0u64.to_be_bytes().to_vec(), whole.to_be_bytes().to_vec());
                log.index_delete(CF_POSTINGS, &[], &[range])?;
                pruned.postings_below = whole;
            }
            let done = log.prune_entries(next)?;
            if done <= at {
                break;
            }
            pruned.to = done;
        }
        let (trimmed, newest) = self.clear_postings()?;
        pruned.trimmed = trimmed;
        if let Some(end) = newest {
            pruned.postings_below = pruned.postings_below.max(end);
        }
        // The removed entries' bytes leave the files, also those a prune
        // cut short left there. The ids are scattered over the whole
        // `decisions` family; RocksDB's own compactions drop them.
        log.compact_pruned()?;
        Ok(pruned)
    }

    /// Takes the leaves below the first kept one out of the built spans'
    /// postings on disk, also what a prune cut short left there: the
    /// files of the spans wholly below it are deleted (their keys were),
    /// and the newest built span, if wholly below it, and the built span
    /// that holds it are rewritten without them. Returns the postings
    /// rewritten or left out, and the newest built span's end if its
    /// postings were.
    fn clear_postings(&self) -> Result<(u64, Option<u64>), LedgerError> {
        let log = self.log();
        let _building = self.building.lock().unwrap_or_else(|p| p.into_inner());
        let (kept, built, span) = (log.first_kept(), self.built(), self.span());
        let below = self.span_of(kept).min(built);
        // Every span file below the newest built span's (its mark says how
        // far the indexes reach, and stays).
        let files_below = if below == built {
            below.saturating_sub(span)
        } else {
            below
        };
        if files_below > 0 {
            log.index_delete_files(CF_POSTINGS, &0u64.to_be_bytes(), &files_below.to_be_bytes())?;
        }
        let (mut changed, mut newest) = (0, None);
        if below == built && built > 0 {
            changed += self.trim_span(built - span, kept)?;
            newest = (changed > 0).then_some(built);
        }
        if kept % span != 0 && self.span_of(kept) + span <= built {
            changed += self.trim_span(self.span_of(kept), kept)?;
        }
        Ok((changed, newest))
    }

    /// Rewrites the postings of the built span from `start` without the
    /// leaves below `kept`, if any of its lists holds one: a list left
    /// with kept leaves is written again, an emptied one left out
    /// ([`Indexes::rewrite_span`]). Returns the postings changed.
    fn trim_span(&self, start: u64, kept: u64) -> Result<u64, LedgerError> {
        self.rewrite_span(
            start,
            &mut |leaves| match leaves.partition_point(|&i| i < kept) {
                0 => None,
                n => Some(leaves[n..].to_vec()),
            },
        )
    }

    /// Rebuilds, from their leaves, the postings of the built spans from
    /// the one holding the first kept leaf that are missing (a crash while
    /// [`Indexes::rewrite_span`] replaced them: a prune's trim or an
    /// erasure). Leaves below the first kept one and erased leaves have no
    /// terms. Called on open: one read per built span.
    pub(crate) fn restore_spans(&self) -> Result<(), LedgerError> {
        let log = self.log();
        let (kept, span) = (log.first_kept(), self.span());
        let mut start = self.span_of(kept);
        while start + span <= self.built() {
            if log.index_get(CF_POSTINGS, &mark_key(start))?.is_none() {
                self.restore_span(start, kept.max(start))?;
            }
            start += span;
        }
        Ok(())
    }

    /// [`Indexes::restore_spans`] of the span from `start`, whose leaves
    /// below `kept` were pruned.
    fn restore_span(&self, start: u64, kept: u64) -> Result<(), LedgerError> {
        let log = self.log();
        let span = self.span();
        let mut index = SpanIndex::new(start, span.min(SPAN) as usize);
        for _ in start..kept {
            index.add(Facts::unindexed());
        }
        log.scan_entries(kept, start + span, |_, leaf| {
            index.add(Facts::of_leaf(leaf).unwrap_or_else(Facts::unindexed));
            Ok::<(), LedgerError>(())
        })?;
        tracing::warn!(
            "rebuilding the postings of span {start} from its leaves (a prune or an erasure was cut short)"
        );
        log.ingest_sorted_with(CF_POSTINGS, |sink| {
            index.write_postings(start + span, kept, |k, v| sink.put(k, v))
        })
    }

    /// When the first decision the ledger keeps was received, once
    /// retention removed older ones: `None` before any prune (or when every
    /// entry is gone). A record decided before it is refused
    /// ([`crate::input::Sender::keeping_from`]): its `decision_id` may be a
    /// removed decision's, which the idempotency index no longer holds, so
    /// a retry of a removed decision would be appended again. Read from
    /// the first kept leaf once each time it moves.
    pub fn kept_from(&self) -> Result<Option<Timestamp>, LedgerError> {
        let kept = self.log().first_kept();
        if kept == 0 || kept >= self.log().size() {
            return Ok(None);
        }
        let mut cached = self.kept_from.lock().unwrap_or_else(|p| p.into_inner());
        match *cached {
            Some((leaf, from)) if leaf == kept => Ok(Some(from)),
            _ => {
                let from = self.log().received_at(kept)?;
                *cached = Some((kept, from));
                Ok(Some(from))
            }
        }
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

    /// [`Indexes::prune_received_before`] that keeps every decision a
    /// legal hold of the data dir `dir` covers ([`ledger::holds`]): no
    /// leaf received at or after the earliest hold's `since` is removed.
    /// The holds are read first and again before each step; if they
    /// cannot be read, nothing more is removed. Returns the hold that
    /// stopped it, if one did.
    pub fn prune_received_before_held(
        &self,
        t: Timestamp,
        dir: &Path,
    ) -> Result<(Pruned, Option<Hold>), LedgerError> {
        let log = self.log();
        let before = log.first_received_at_or_after(t, log.size())?;
        // Read now, also when there is nothing to remove, so that a file
        // that cannot be read is reported at once.
        let mut hold = ledger::holds::earliest(dir)?;
        let pruned = self.prune_within(before, &mut || {
            hold = ledger::holds::earliest(dir)?;
            hold.as_ref()
                .map(|h| log.first_received_at_or_after(h.since, log.size()))
                .transpose()
        })?;
        Ok((pruned, hold.filter(|_| pruned.held)))
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
