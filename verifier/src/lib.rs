//! # Decision Ledger verifier: the trust root
//!
//! Everything needed to check a Decision Ledger (or any C2SP transparency
//! log) offline with nothing but the log's public key. Pure functions over
//! bytes: no storage, no clock, no network, no randomness.
//!
//! | module | format | source |
//! |---|---|---|
//! | [`hash`] | leaf / node / empty-tree hashing | RFC 9162 §2.1.1 |
//! | [`tree`] | roots and proofs from complete-subtree hashes | RFC 9162 §2.1.3.1, §2.1.4.1 |
//! | [`frontier`] | the right edge of a tree: appending leaves, the root | RFC 9162 §2.1.1 |
//! | [`inclusion`] | inclusion proof verification | RFC 9162 §2.1.3.2 |
//! | [`consistency`] | consistency proof verification | RFC 9162 §2.1.4.2 |
//! | [`note`] | Ed25519 signed notes and key strings | C2SP signed-note |
//! | [`checkpoint`] | signed tree heads | C2SP tlog-checkpoint |
//! | [`cosignature`] | witness cosignatures of checkpoints | C2SP tlog-cosignature |
//! | [`witness`] | asking a witness to cosign, and its checks | C2SP tlog-witness |
//! | [`tile`] | tile paths, hash tiles, entry bundles | C2SP tlog-tiles |
//! | [`audit`] | an fsck of a whole log read through its tiles | C2SP tlog-tiles, specs/mirror.md |
//! | [`mirror`] | a mirror directory's files, read as an audit's source | specs/mirror.md |
//! | [`tlog_proof`] | per-entry proof files | C2SP tlog-proof |
//! | [`consistency_file`] | consistency proof files | specs/consistency-proof.md |
//! | [`cbor`] | deterministic CBOR | RFC 8949 §4.2.1 |
//! | [`envelope`] | the leaf bytes of a decision | specs/record.md |
//! | [`enforcer_signature`] | records signed by their enforcer (COSE_Sign1) | RFC 9052, specs/signed-record.md |
//! | [`decision`] | a decision record read from a leaf | specs/record.md |
//! | [`evidence`] | one decision's evidence file | specs/evidence.md |
//! | [`erasure`] | erased entries and the records that erase them | specs/erasure.md |
//! | [`retention`] | the record of a prune: the first kept leaf | specs/storage.md |
//! | [`own_record`] | what the ledger's own records share; ids only they may have | specs/erasure.md, specs/record.md |
//! | [`receipt`] | COSE receipts | RFC 9942, specs/receipt.md |
//! | [`chain`] | identity-chain bundles | specs/chain.md |
//! | [`export`] | compliance exports: files, their lines, the report | specs/export.md |
//! | [`range`] | range proofs: a run of leaves in a signed tree | specs/export.md |
//! | [`findings`] | findings and agreement over decisions | specs/chain.md |
//! | [`requests`] | enforcers that disagreed, across an export's decisions | specs/export.md |
//! | [`account`] | readable accounts of verified decisions | |
//! | [`json`] | records as JSON | specs/record.md |
//! | [`shown`] | record text made safe to print on a terminal | |
//! | [`timestamp`] | record times, canonical form | specs/record.md |
//!
//! The written formats are in `specs/` at the top of the repository.
//!
//! ## Reading it as an auditor
//!
//! What a verdict rests on is a short path through these modules; the rest
//! (accounts, reports, the export's derived files) only presents what that
//! path proved. Lines of code, without comments and tests, in reading order:
//!
//! | verdict | modules, in order | lines |
//! |---|---|---|
//! | a checkpoint is the log's | [`note`] (signatures, key strings), [`checkpoint`] | ~470 |
//! | a leaf is in that tree | [`hash`], [`inclusion`], [`tlog_proof`] | ~300 |
//! | a later tree extends an earlier one | [`consistency`], [`tree`] | ~280 |
//! | the leaf is this decision | [`cbor`], [`envelope`], [`timestamp`], [`decision`] | ~1,100 |
//! | `ledger-verify evidence` | all of the above, then [`evidence`] | ~2,100 |
//! | `ledger-verify chain` | the evidence path, then [`chain`], [`findings`] | ~2,800 |
//! | `ledger-verify export` | the evidence path, then [`range`], [`export`] (`mod.rs`, `verify.rs`) | ~3,100 |
//!
//! Records signed by their enforcer add [`enforcer_signature`]; witness
//! cosignatures add [`cosignature`]; erased and pruned leaves add
//! [`erasure`], [`retention`] and [`own_record`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod account;
pub mod audit;
mod b64;
pub mod cbor;
pub mod chain;
pub mod checkpoint;
pub mod consistency;
pub mod consistency_file;
pub mod cosignature;
pub mod decision;
pub mod enforcer_signature;
pub mod envelope;
pub mod erasure;
pub mod evidence;
pub mod export;
pub mod findings;
pub mod frontier;
pub mod hash;
pub mod inclusion;
pub mod json;
pub mod mirror;
pub mod note;
pub mod own_record;
pub mod range;
pub mod receipt;
pub mod requests;
pub mod retention;
pub mod shown;
pub mod tile;
pub mod timestamp;
pub mod tlog_proof;
pub mod tree;
pub mod witness;

pub use checkpoint::Checkpoint;
pub use hash::{leaf_hash, node_hash, EntryWriter, Hash, HashedEntry};
pub use note::{SignerKey, VerifierKey};
pub use tree::{HashReader, NodeId};
