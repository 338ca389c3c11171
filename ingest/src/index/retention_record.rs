//! The ledger's retention record (specs/storage.md, "Retention"): once
//! retention has moved the first kept leaf K, the ledger logs a record
//! saying that the entries below K are removed, and names K by its hash
//! ([`verifier::retention`]). An export whose window reaches below K
//! carries it in place of leaf K − 1, which is gone.
//!
//! Logged after the prune, through the pipeline, as the ledger's own
//! ([`verifier::erasure::SUBMITTED_BY`]); then its leaf is stored beside
//! K ([`ledger::Log::record_retention`]). A crash between them, or a store
//! pruned before the ledger logged these records, has one logged at the
//! next retention pass: the `decision_id` is one per K, so a record logged
//! twice is answered as a duplicate.

use std::sync::Arc;

use ledger::LedgerError;
use verifier::retention::{self, FirstKept};
use verifier::timestamp::Timestamp;

use crate::pipeline::{Outcome, Submission};
use crate::record::{check, from_json};
use crate::Indexes;

/// Why the retention record was not logged.
#[derive(Debug, thiserror::Error)]
pub enum RetentionRecordError {
    /// The record could not be made or appended.
    #[error("the retention record could not be logged: {0}")]
    NotLogged(String),
    /// Storage failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl Indexes {
    /// The retention record to log now, if the first kept leaf is above 0
    /// and no stored record names it: pruned by `pruned_by` at `now`, for
    /// `reason`.
    pub fn retention_record(
        &self,
        pruned_by: &str,
        reason: &str,
        now: &Timestamp,
    ) -> Result<Option<Submission>, RetentionRecordError> {
        let log = self.log();
        let kept = log.first_kept();
        if kept == 0 || kept >= log.size() {
            return Ok(None);
        }
        if log.retention_record()?.is_some_and(|(k, _)| k == kept) {
            return Ok(None);
        }
        let leaf_hash = log.leaf_hash(kept)?;
        let received_at = log.received_at(kept)?;
        let json = retention::record(
            &FirstKept {
                index: kept,
                leaf_hash: &leaf_hash,
                received_at: &received_at,
            },
            pruned_by,
            reason,
            now,
        );
        let record =
            check(&from_json(&json)).map_err(|e| RetentionRecordError::NotLogged(e.to_string()))?;
        Ok(Some(Submission {
            record,
            submitted_by: Arc::from(verifier::erasure::SUBMITTED_BY),
        }))
    }

    /// Logs the retention record if one is due ([`Indexes::retention_record`])
    /// with `submit`, which queues it and answers its outcome once it is
    /// durable, then stores its leaf. Returns that leaf, `None` when none
    /// was due.
    pub fn log_retention(
        &self,
        pruned_by: &str,
        reason: &str,
        now: &Timestamp,
        submit: impl FnOnce(Submission) -> Result<Outcome, String>,
    ) -> Result<Option<u64>, RetentionRecordError> {
        let Some(record) = self.retention_record(pruned_by, reason, now)? else {
            return Ok(None);
        };
        let by = match submit(record).map_err(RetentionRecordError::NotLogged)? {
            Outcome::Appended { index, .. }
            | Outcome::Duplicate { index, .. }
            // Logged before with another reason or time: that one stands.
            | Outcome::Conflict { index } => index,
            Outcome::Failed(why) => return Err(RetentionRecordError::NotLogged(why)),
        };
        self.log().record_retention(by)?;
        Ok(Some(by))
    }
}
