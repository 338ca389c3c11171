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

pub mod index;
mod indexes;
pub mod input;
pub mod pipeline;
pub mod query;
mod recent;
pub mod record;
pub mod sched;
mod schema;
mod span;
mod stages;
mod terms;

pub use indexes::Indexes;
pub use pipeline::{Busy, Outcome, Pipeline, PipelineConfig, Submission, BLOCKING_THREADS};
pub use record::{check, CheckedRecord};
pub use schema::{FieldError, Timestamp};
