//! # Decision Ledger ingest
//!
//! Decision records (specs/record.md): [`record::check`] validates and
//! canonicalises each record before it is queued; [`pipeline::Pipeline`]
//! appends them with group commit, exactly once per `decision_id`, and
//! acknowledges only after the synced write; [`query::search`] finds them
//! through the responder indexes written in the same batch.

// One `unsafe` call, in `sched` (a syscall without a safe wrapper).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod budget;
pub mod index;
pub mod pipeline;
pub mod record;

pub use index::erasure::{check_request, Batch, EraseError, Erasure, Plan, Planned};
pub use index::indexes::Indexes;
pub use index::{chain, query};
pub use pipeline::sched;
pub use pipeline::{Busy, Outcome, Pipeline, PipelineConfig, Submission, BLOCKING_THREADS};
pub use record::input;
pub use record::schema::{FieldError, Timestamp};
pub use record::{check, CheckedRecord};
