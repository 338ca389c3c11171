//! Erasing one decision inside the retention window (specs/erasure.md):
//! its entry goes, its hash stays, and a record the ledger logs says who
//! asked for it and why.
//!
//! Three steps, each safe to repeat: [`Indexes::plan_erasure`] finds the
//! leaf and makes the erasure record; the caller appends that record
//! through the pipeline, durably, as the ledger's own
//! ([`verifier::erasure::SUBMITTED_BY`]), and has a checkpoint signed that
//! covers it; [`Indexes::finish_erasure`]
//! takes the leaf's terms out of the indexes and then erases its entry
//! ([`ledger::Log::erase_entry`]). A crash between them leaves the record
//! logged and the entry there; asking again finishes it (the record is
//! found by its `decision_id`).

use std::path::Path;
use std::sync::Arc;

use ledger::holds::Hold;
use ledger::{Erased, LedgerError};
use verifier::erasure::{self, ErasedLeaf, Request, SUBMITTED_BY};
use verifier::timestamp::Timestamp;
use verifier::Hash;

use crate::index::{decode_list, encode_list, CF_POSTINGS};
use crate::pipeline::{Outcome, Submission};
use crate::record::schema::check_text;
use crate::record::{check, from_json};
use crate::Indexes;

/// Why a decision cannot be erased.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    /// No kept leaf holds the decision.
    #[error("{0}")]
    NotFound(String),
    /// The request is not one the ledger can log (a field empty or too
    /// long).
    #[error("erasure request: {0}")]
    Request(String),
    /// A legal hold keeps the decision.
    #[error("decision {decision_id:?} (leaf {index}) was received at {received_at}, under legal hold {} since {} ({}): release the hold first", .hold.id, .hold.since.canonical(), .hold.reason)]
    Held {
        /// The decision.
        decision_id: String,
        /// Its leaf.
        index: u64,
        /// When it was received.
        received_at: String,
        /// The hold that keeps it.
        hold: Box<Hold>,
    },
    /// The decision is the ledger's own record (an erasure): it says what
    /// happened to another, and stays.
    #[error("decision {0:?} is the ledger's own record of an erasure; it is not erased")]
    OwnRecord(String),
    /// The erasure record could not be logged.
    #[error("the erasure record could not be logged: {0}")]
    NotLogged(String),
    /// The erasure record is logged but in no signed checkpoint yet, so
    /// nothing was removed: an audit of the newest checkpoint must find
    /// the record of every entry missing in it. Asking again finishes it.
    #[error("the erasure record (leaf {0}) is logged but not yet in a signed checkpoint; nothing was removed yet: ask again in a moment")]
    NotCheckpointed(u64),
    /// Storage failed or holds could not be read.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Removing the entries of a batch of erasures failed (storage): no
    /// entry of the batch was removed; asking again finishes it.
    #[error("the entries were not removed: {0}; asking again finishes the erasure")]
    Failed(String),
}

/// An erasure planned: the leaf, and the record to log before it goes.
#[derive(Debug)]
pub struct Planned {
    /// The decision's leaf.
    pub index: u64,
    /// Its hash, which stays.
    pub leaf_hash: Hash,
    /// The erasure record, to append as the ledger's own.
    pub record: Submission,
}

/// What [`Indexes::plan_erasure`] found.
#[derive(Debug)]
pub enum Plan {
    /// Log this record, then [`Indexes::finish_erasure`].
    Erase(Box<Planned>),
    /// The decision's entry was erased before.
    Done(Erased),
}

/// Erasures planned together ([`Indexes::plan_erasures`]): one plan per
/// decision, in order. Log [`Batch::records`] in one commit, have a
/// checkpoint signed that holds them, then [`Indexes::finish_batch`].
#[derive(Debug)]
pub struct Batch(Vec<Result<Plan, EraseError>>);

impl Batch {
    /// The erasure records to log, in order.
    pub fn records(&self) -> Vec<Submission> {
        self.planned().map(|p| p.record.clone()).collect()
    }

    fn planned(&self) -> impl Iterator<Item = &Planned> {
        self.0.iter().filter_map(|p| match p {
            Ok(Plan::Erase(planned)) => Some(&**planned),
            _ => None,
        })
    }
}

/// What became of one erasure of a batch: its leaf as stored, and whether
/// it was erased now (or before).
pub type Erasure = Result<(Erased, bool), EraseError>;

/// Checks that the erasure record can hold what `req` says: who asks, the
/// reason and the ticket are each a text field (1 to 1,024 bytes), as
/// every text of a record (specs/record.md). [`Indexes::plan_erasure`]
/// checks it too; a caller with many ids checks it once first.
pub fn check_request(req: &Request<'_>) -> Result<(), EraseError> {
    let fields = [
        ("requested by", Some(req.requested_by)),
        ("reason", Some(req.reason)),
        ("ticket", req.ticket),
    ];
    for (field, text) in fields {
        if let Some(text) = text {
            check_text(&ciborium::Value::Text(text.into()), field)
                .map_err(|e| EraseError::Request(format!("{field} {}", e.problem)))?;
        }
    }
    Ok(())
}

impl Indexes {
    /// Plans the erasure of each of `decision_ids` as
    /// [`Indexes::plan_erasure`] does.
    pub fn plan_erasures(
        &self,
        decision_ids: &[String],
        req: &Request<'_>,
        now: &Timestamp,
        holds: Option<&Path>,
    ) -> Batch {
        Batch(
            decision_ids
                .iter()
                .map(|id| self.plan_erasure(id, req, now, holds))
                .collect(),
        )
    }

    /// Finishes `batch`, whose [`Batch::records`] were submitted with
    /// `outcomes` ([`Indexes::finish_erasures`]): what became of each
    /// decision, in order.
    pub fn finish_batch(&self, batch: Batch, outcomes: &[Outcome]) -> Vec<Erasure> {
        let pairs: Vec<(&Planned, &Outcome)> = batch.planned().zip(outcomes).collect();
        let mut finished = self.finish_erasures(&pairs).into_iter();
        batch
            .0
            .into_iter()
            .map(|plan| match plan? {
                Plan::Done(erased) => Ok((erased, false)),
                Plan::Erase(_) => finished
                    .next()
                    .unwrap_or_else(|| Err(EraseError::Failed("no outcome for its record".into())))
                    .map(|erased| (erased, true)),
            })
            .collect()
    }

    /// Finds the leaf of `decision_id` and makes the record that erases
    /// it as `req` asks, dated `now`; refuses a decision no kept leaf
    /// holds, one a legal hold of the data dir `holds` keeps, and the
    /// ledger's own records.
    pub fn plan_erasure(
        &self,
        decision_id: &str,
        req: &Request<'_>,
        now: &Timestamp,
        holds: Option<&Path>,
    ) -> Result<Plan, EraseError> {
        check_request(req)?;
        let log = self.log();
        let not_found = || EraseError::NotFound(self.not_found(decision_id));
        let (index, digest) = self.lookup_decision(decision_id)?.ok_or_else(not_found)?;
        if index < log.first_kept() {
            return Err(not_found());
        }
        if let Some(done) = log.erased(index)? {
            return Ok(Plan::Done(done));
        }
        let leaf = log.entry(index)?;
        if verifier::envelope::submitted_by(&leaf) == Some(SUBMITTED_BY) {
            return Err(EraseError::OwnRecord(decision_id.to_string()));
        }
        let received = verifier::envelope::received_at(&leaf).unwrap_or_default();
        let at = Timestamp::parse_text(received).ok_or_else(|| {
            EraseError::NotFound(format!(
                "leaf {index} of decision {:?} is not a decision record",
                decision_id
            ))
        })?;
        if let Some(dir) = holds {
            if let Some(hold) = ledger::holds::earliest(dir).map_err(LedgerError::from)? {
                if at >= hold.since {
                    return Err(EraseError::Held {
                        decision_id: decision_id.to_string(),
                        index,
                        received_at: received.to_string(),
                        hold: Box::new(hold),
                    });
                }
            }
        }
        let leaf_hash = verifier::leaf_hash(&leaf);
        let leaf = ErasedLeaf {
            index,
            leaf_hash: &leaf_hash,
            received_at: &at,
            decision_id,
            digest: &digest,
        };
        let json = erasure::record(&leaf, req, now);
        let record = check(&from_json(&json)).map_err(|e| {
            let field = match e.path.as_str() {
                "subject.id" => "requested by",
                "reasons[0]" => "reason",
                other => other,
            };
            EraseError::Request(format!("{field} {}", e.problem))
        })?;
        Ok(Plan::Erase(Box::new(Planned {
            index,
            leaf_hash,
            record: Submission {
                record,
                submitted_by: Arc::from(SUBMITTED_BY),
            },
        })))
    }

    /// After the erasure record of `planned` was submitted with `outcome`
    /// and a checkpoint covering it was signed: [`Indexes::finish_erasures`]
    /// of one.
    pub fn finish_erasure(
        &self,
        planned: &Planned,
        outcome: &Outcome,
    ) -> Result<Erased, EraseError> {
        self.finish_erasures(&[(planned, outcome)])
            .pop()
            .unwrap_or_else(|| Err(EraseError::NotLogged("no erasure was finished".into())))
    }

    /// After the erasure record of each `planned` was submitted with its
    /// `outcome` and a checkpoint covering them was signed: checks that the
    /// leaf each names holds it, takes the erased leaves' terms out of the
    /// indexes (memory, or their built spans' postings, each span rewritten
    /// once), then erases their entries ([`ledger::Log::erase_entries`]).
    /// Returns what is stored of each, in order. One whose record is in no
    /// signed checkpoint is [`EraseError::NotCheckpointed`], and nothing of
    /// it is removed: every signed checkpoint then holds the record of each
    /// entry missing in it, so that an audit of it can tell an erasure
    /// from a loss.
    pub fn finish_erasures(
        &self,
        done: &[(&Planned, &Outcome)],
    ) -> Vec<Result<Erased, EraseError>> {
        let log = self.log();
        let signed = log.latest_checkpoint().map_or(0, |c| c.checkpoint.size);
        let checked: Vec<Result<u64, EraseError>> = done
            .iter()
            .map(|(planned, outcome)| self.logged_by(planned, outcome, signed))
            .collect();
        let go: Vec<(u64, u64)> = done
            .iter()
            .zip(&checked)
            .filter_map(|((planned, _), by)| by.as_ref().ok().map(|&by| (planned.index, by)))
            .collect();
        let leaves: Vec<u64> = go.iter().map(|&(index, _)| index).collect();
        // A rebuild beside the indexes (`rebuild.rs`) is not put in place
        // while terms are taken out and entries erased: it may have read
        // them first.
        self.erasing
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let mut erased = self
            .forget_terms(&leaves)
            .and_then(|()| log.erase_entries(&go))
            .map(Vec::into_iter)
            .map_err(|e| e.to_string());
        self.changed();
        self.erasing
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        checked
            .into_iter()
            .map(|by| {
                by?;
                match &mut erased {
                    Ok(erased) => erased
                        .next()
                        .ok_or_else(|| EraseError::Failed("fewer leaves erased than asked".into())),
                    Err(why) => Err(EraseError::Failed(why.clone())),
                }
            })
            .collect()
    }

    /// The leaf of `planned`'s erasure record, submitted with `outcome`,
    /// if it is in the checkpoint of size `signed` and names the leaf.
    fn logged_by(
        &self,
        planned: &Planned,
        outcome: &Outcome,
        signed: u64,
    ) -> Result<u64, EraseError> {
        let by = match outcome {
            Outcome::Appended { index, .. }
            | Outcome::Duplicate { index, .. }
            // The same erasure asked for before, at another time: its
            // record is the one logged then.
            | Outcome::Conflict { index } => *index,
            Outcome::Failed(why) => return Err(EraseError::NotLogged(why.clone())),
        };
        if signed <= by {
            return Err(EraseError::NotCheckpointed(by));
        }
        let leaf = self.log().entry(by)?;
        let named = erasure::read(by, &leaf)
            .map_err(|e| EraseError::NotLogged(e.to_string()))?
            .filter(|e| e.index == planned.index && e.leaf_hash == planned.leaf_hash);
        if named.is_none() {
            return Err(EraseError::NotLogged(format!(
                "leaf {by}, under the erasure record's decision_id {:?}, does not erase leaf {}",
                erasure::decision_id(planned.index),
                planned.index
            )));
        }
        Ok(by)
    }

    /// Takes the terms of the leaves `indexes` out of the indexes: out of
    /// their spans in memory, or out of their built spans' postings, each
    /// span rewritten once (a list left empty is left out, so a term only
    /// they had leaves the files). Their `decision_id`s stay, so a retry
    /// is answered as a duplicate of the erased leaf.
    fn forget_terms(&self, indexes: &[u64]) -> Result<(), LedgerError> {
        // No span is built meanwhile: each leaf is in memory or built.
        let _building = self.building.lock().unwrap_or_else(|p| p.into_inner());
        self.changed();
        let built = self.built();
        let mut spans: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
        for &index in indexes {
            if index >= built {
                self.forget_in_memory(index);
            } else {
                spans.entry(self.span_of(index)).or_default().push(index);
            }
        }
        for (start, mut gone) in spans {
            gone.sort_unstable();
            self.rewrite_span(start, &mut |leaves| {
                if !leaves.iter().any(|l| gone.binary_search(l).is_ok()) {
                    return None;
                }
                Some(
                    leaves
                        .iter()
                        .copied()
                        .filter(|l| gone.binary_search(l).is_err())
                        .collect(),
                )
            })?;
        }
        Ok(())
    }

    /// Rewrites the postings of the built span from `start` where `change`
    /// gives a new list for one (`None`: unchanged; empty: left out), the
    /// span's mark kept; the old file is deleted, so the bytes go
    /// ([`ledger::Log::replace_sorted_range`]). Searches wait meanwhile. A
    /// crash in between leaves the span without postings: opening the
    /// indexes rebuilds them from its kept leaves
    /// ([`Indexes::restore_spans`]). Returns the lists changed.
    pub(crate) fn rewrite_span(
        &self,
        start: u64,
        change: &mut dyn FnMut(&[u64]) -> Option<Vec<u64>>,
    ) -> Result<u64, LedgerError> {
        let log = self.log();
        let prefix = start.to_be_bytes().to_vec();
        let mark = crate::index::mark_key(start);
        let (mut items, mut changed) = (Vec::new(), 0u64);
        log.index_scan_ranges(CF_POSTINGS, [(prefix.clone(), prefix)], |k, v| {
            if k == mark {
                items.push((k.to_vec(), v.to_vec()));
                return Ok::<bool, LedgerError>(true);
            }
            let leaves = decode_list(v).ok_or_else(|| {
                LedgerError::Corrupt(format!("postings of span {start} hold a malformed list"))
            })?;
            match change(&leaves) {
                None => items.push((k.to_vec(), v.to_vec())),
                Some(kept) => {
                    changed += 1;
                    if !kept.is_empty() {
                        items.push((k.to_vec(), encode_list(&kept)));
                    }
                }
            }
            Ok(true)
        })?;
        if changed > 0 {
            let _searches = self.postings.write().unwrap_or_else(|p| p.into_inner());
            log.replace_sorted_range(
                CF_POSTINGS,
                &start.to_be_bytes(),
                &(start + 1).to_be_bytes(),
                |sink| items.iter().try_for_each(|(k, v)| sink.put(k, v)),
            )?;
        }
        Ok(changed)
    }
}
