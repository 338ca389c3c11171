//! Compliance exports (specs/export.md): every decision the log received in
//! a window of `received_at`, with a proof that none was omitted, added or
//! altered, checkable offline with the log's key.
//!
//! ```text
//! DIR/manifest.json     window, filter, range [first, end), checkpoint,
//!                       range proof, boundary leaves, SHA-256 of every file
//! DIR/checkpoint        the signed checkpoint the range is proven against
//! DIR/leaves.cbor       CBOR sequence, one item per leaf of the range, in
//!                       order: the leaf itself, or (withheld by a filter)
//!                       its 32-byte leaf hash as a byte string
//! DIR/decisions.jsonl   \
//! DIR/decisions.csv      } one line per disclosed leaf, made from it
//! DIR/ocsf.jsonl        /
//! DIR/report.html       made from the disclosed leaves
//! ```
//!
//! `received_at` never decreases in log order, so a window is one run of
//! leaves; the leaf before it (received before the window) and the leaf
//! after it (at or after its end) are carried with inclusion proofs, so no
//! decision of the window can lie outside the run. [`verify`] streams the
//! files once, in O(log n) memory.

mod builder;
mod erased;
mod items;
pub mod lines;
pub mod report;
mod retained;
mod verify;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::CheckpointError;
use crate::decision::Decision;
use crate::hash::Hash;
use crate::range::RangeError;

pub use builder::{render, Builder, Finished, Head, Rendered, Sinks};
pub use erased::Erased;
pub use items::{write_item, Item, ItemReader};
pub use retained::Retained;
pub use verify::{verify, verify_signed, verify_witnessed, Signatures, Sources, Verdict};

/// `manifest.json`'s `format`: what exports are made in ([`Version::V3`]).
pub const FORMAT: &str = "decision-ledger/export@v3";
/// The second format, still verified ([`Version::V2`]).
pub const FORMAT_V2: &str = "decision-ledger/export@v2";
/// The first format, still verified ([`Version::V1`]).
pub const FORMAT_V1: &str = "decision-ledger/export@v1";

/// A format this verifier reads. They differ only in their derived files:
/// how these show record text, and what the report lists (specs/export.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// [`FORMAT_V1`]: CSV fields as given; the report with record text only
    /// HTML-escaped and no list of decisions not logged inline.
    V1,
    /// [`FORMAT_V2`]: a CSV field a spreadsheet would read as a formula gets
    /// a leading `'`; the report shows control, invisible and bidirectional
    /// characters as `\u{…}` ([`crate::shown`]) and lists the decisions not
    /// logged inline.
    V2,
    /// [`FORMAT`]: as [`Version::V2`], and the report also lists the
    /// requests whose enforcers disagreed ([`crate::requests`]).
    V3,
}

impl Version {
    /// The version of a manifest's `format`, if this verifier reads it.
    pub fn of(format: &str) -> Option<Version> {
        match format {
            FORMAT => Some(Version::V3),
            FORMAT_V2 => Some(Version::V2),
            FORMAT_V1 => Some(Version::V1),
            _ => None,
        }
    }
}
/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The signed checkpoint's file name.
pub const CHECKPOINT: &str = "checkpoint";
/// The leaves' file name.
pub const LEAVES: &str = "leaves.cbor";
/// The JSON Lines file's name.
pub const JSONL: &str = "decisions.jsonl";
/// The CSV file's name.
pub const CSV: &str = "decisions.csv";
/// The OCSF file's name.
pub const OCSF: &str = "ocsf.jsonl";
/// The report's file name.
pub const REPORT: &str = "report.html";
/// Every file the manifest lists, in this order.
pub const FILES: [&str; 6] = [CHECKPOINT, LEAVES, JSONL, CSV, OCSF, REPORT];

/// Which decisions of the window an export discloses in full; the others
/// are carried as leaf hashes. Every field given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// `subject.id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Any `delegation[].id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Anyone in the identity chain: `subject.id`, `subject.owner` or any
    /// `delegation[].id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// `resource.id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// `policy.id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// `allow` or `deny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// `enforcer.id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcer: Option<String>,
    /// Only break-glass decisions (`emergency.break_glass`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
}

impl Filter {
    /// Whether it filters nothing out.
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether a decision matches every field given.
    pub fn matches(&self, d: &Decision) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&self.subject, &d.subject.id)
            && self
                .actor
                .as_deref()
                .is_none_or(|a| d.delegation.iter().any(|x| x.id == a))
            && self.person.as_deref().is_none_or(|p| {
                d.subject.id == p
                    || d.subject.owner.as_deref() == Some(p)
                    || d.delegation.iter().any(|x| x.id == p)
            })
            && eq(&self.resource, &d.resource.id)
            && eq(&self.policy, &d.policy.id)
            && eq(&self.decision, &d.decision)
            && eq(&self.enforcer, &d.enforcer.id)
            && (!self.break_glass || d.emergency.as_ref().is_some_and(|e| e.break_glass))
    }

    /// The parameter names a filter takes (`GET /v1/export`, and
    /// `ledgerctl export` as `--<name>`).
    pub const PARAMS: [&'static str; 8] = [
        "subject",
        "actor",
        "person",
        "resource",
        "policy",
        "decision",
        "enforcer",
        "break_glass",
    ];

    /// The fields given, as (parameter name, value); `break_glass` as
    /// `true`.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let mut p: Vec<(&'static str, String)> = [
            ("subject", &self.subject),
            ("actor", &self.actor),
            ("person", &self.person),
            ("resource", &self.resource),
            ("policy", &self.policy),
            ("decision", &self.decision),
            ("enforcer", &self.enforcer),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
        .collect();
        if self.break_glass {
            p.push(("break_glass", "true".into()));
        }
        p
    }

    /// A filter from parameters ([`Filter::PARAMS`]); a name that is not one
    /// of them is returned for the caller to handle. An empty value is
    /// refused: no record holds empty text, so it would disclose nothing.
    pub fn set(&mut self, name: &str, value: &str) -> Result<bool, String> {
        if value.is_empty() && Filter::PARAMS.contains(&name) {
            return Err(format!("{name} is empty; no record holds an empty {name}"));
        }
        let v = Some(value.to_string());
        match name {
            "subject" => self.subject = v,
            "actor" => self.actor = v,
            "person" => self.person = v,
            "resource" => self.resource = v,
            "policy" => self.policy = v,
            "enforcer" => self.enforcer = v,
            "decision" if value == "allow" || value == "deny" => self.decision = v,
            "decision" => return Err(format!("decision must be allow or deny, not {value:?}")),
            "break_glass" => {
                self.break_glass = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(format!("break_glass must be true or false, not {value:?}")),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// For people: `subject=alice, break_glass` (empty when none).
    pub fn describe(&self) -> String {
        self.params()
            .into_iter()
            .map(|(k, v)| {
                if k == "break_glass" {
                    k.to_string()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The window: `received_at` in `[from, to)`, canonical RFC 3339.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Inclusive.
    pub from: String,
    /// Exclusive.
    pub to: String,
}

/// A leaf just outside the range, proven in the checkpoint's tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Boundary {
    /// Its index.
    pub index: u64,
    /// The leaf bytes, base64.
    pub leaf: String,
    /// Its inclusion proof, base64 hashes.
    pub inclusion: Vec<String>,
}

/// A leaf just outside the range whose entry was erased, by its hash,
/// proven in the checkpoint's tree; an erasure record of the manifest's
/// `erased` names it with that hash and says when it was received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasedBoundary {
    /// Its index.
    pub index: u64,
    /// Its leaf hash, base64.
    pub leaf_hash: String,
    /// Its inclusion proof, base64 hashes.
    pub inclusion: Vec<String>,
}

/// The signed checkpoint the range is proven against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointRef {
    /// The tree size.
    pub size: u64,
    /// The root, base64.
    pub root: String,
}

/// One file's digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDigest {
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// Its length.
    pub bytes: u64,
}

/// The leaves of the range, counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    /// Leaves in the range.
    pub leaves: u64,
    /// Of which disclosed (matching the filter).
    pub disclosed: u64,
    /// Of which withheld (as leaf hashes).
    pub withheld: u64,
    /// Of the withheld, those whose entries were erased (specs/erasure.md).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub erased: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`] (or [`FORMAT_V2`], [`FORMAT_V1`]).
    pub format: String,
    /// The log's origin.
    pub origin: String,
    /// The log's verifier key (for reference: a verifier uses its own).
    pub verifier_key: String,
    /// The window of `received_at`.
    pub window: Window,
    /// What is disclosed in full.
    pub filter: Filter,
    /// The first leaf of the range.
    pub first: u64,
    /// The end of the range (exclusive).
    pub end: u64,
    /// The checkpoint.
    pub checkpoint: CheckpointRef,
    /// Complete subtrees covering `[0, first)`, base64 ([`crate::range::cover`]).
    pub left: Vec<String>,
    /// Complete subtrees covering `[end, size)`, base64.
    pub right: Vec<String>,
    /// Leaf `first − 1`, received before the window (absent when `first` is 0).
    pub before: Option<Boundary>,
    /// Leaf `end`, received at or after the window's end (absent when
    /// `end` is the checkpoint's size).
    pub after: Option<Boundary>,
    /// Leaf `first − 1` by its hash, when its entry was erased (then
    /// `before` is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_erased: Option<ErasedBoundary>,
    /// Leaf `end` by its hash, when its entry was erased (then `after` is
    /// absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_erased: Option<ErasedBoundary>,
    /// The records of the erasures of leaves in the range and of erased
    /// leaves just outside it, each proven in the checkpoint's tree
    /// (specs/erasure.md); absent when none was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub erased: Vec<Boundary>,
    /// The ledger's retention record naming `first` as the log's first
    /// kept leaf, proven in the checkpoint's tree, when the range starts
    /// there and the leaf before it had its entry removed (then `before`
    /// is absent); absent otherwise ([`Retained`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retained: Option<Boundary>,
    /// The range's leaves, counted.
    pub counts: Counts,
    /// Every file of [`FILES`] with its digest.
    pub files: BTreeMap<String, FileDigest>,
}

/// Why an export is not what it claims.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExportError {
    /// The manifest is unreadable or inconsistent.
    #[error("manifest.json: {0}")]
    Manifest(String),
    /// A file is not the one the manifest lists.
    #[error("{file}: {why}")]
    File {
        /// The file.
        file: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The checkpoint is bad or not the log's.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The range does not lead to the signed root.
    #[error("range proof: {0}")]
    Range(#[from] RangeError),
    /// A leaf of the range is wrong.
    #[error("leaf {index}: {why}")]
    Leaf {
        /// Its index.
        index: u64,
        /// What is wrong.
        why: String,
    },
    /// A derived file does not hold what the proven leaves yield.
    #[error("{file} line {line} is not what leaf {index} yields")]
    Derived {
        /// The file.
        file: &'static str,
        /// Its line (1-based).
        line: u64,
        /// The leaf.
        index: u64,
    },
    /// A boundary leaf is missing, not proven or not outside the window.
    #[error("the leaf {which} the range: {why}")]
    Boundary {
        /// `before` or `after`.
        which: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The erased leaves of the range are not what their erasure records
    /// say.
    #[error("erased leaves: {0}")]
    Erased(String),
    /// The retention record of a range that starts at the log's first
    /// kept leaf is missing, not proven, or names another leaf.
    #[error("retained: {0}")]
    Retained(String),
}

fn manifest_error(why: impl Into<String>) -> ExportError {
    ExportError::Manifest(why.into())
}

fn hashes(list: &[String], what: &str) -> Result<Vec<Hash>, ExportError> {
    list.iter()
        .map(|h| {
            Hash::from_base64(h)
                .ok_or_else(|| manifest_error(format!("{what}: {h:?} is not a base64 hash")))
        })
        .collect()
}

/// The bytes of a leaf carried with its inclusion proof, proven in the
/// tree of `size` leaves and root `root`; what is wrong otherwise.
fn open_leaf(b: &Boundary, size: u64, root: &Hash) -> Result<Vec<u8>, String> {
    let at = b.index;
    let leaf = crate::b64::decode(&b.leaf).ok_or_else(|| format!("leaf {at} is not base64"))?;
    let proof = hashes(&b.inclusion, "inclusion").map_err(|e| e.to_string())?;
    crate::inclusion::verify_inclusion(&crate::hash::leaf_hash(&leaf), at, size, &proof, root)
        .map_err(|e| format!("leaf {at} is not in the signed tree: {e}"))?;
    Ok(leaf)
}

/// The SHA-256 and length of `bytes`.
pub fn digest(bytes: &[u8]) -> FileDigest {
    FileDigest {
        sha256: hex(&Sha256::digest(bytes)),
        bytes: bytes.len() as u64,
    }
}

fn hex(digest: &[u8]) -> String {
    Hash::from_slice(digest).map_or_else(String::new, |h| h.to_hex())
}

/// The report's heading for a manifest of `version`.
pub fn heading(m: &Manifest, version: Version) -> report::Heading {
    report::Heading {
        origin: m.origin.clone(),
        from: m.window.from.clone(),
        to: m.window.to.clone(),
        size: m.checkpoint.size,
        root: m.checkpoint.root.clone(),
        first: m.first,
        end: m.end,
        filter: m.filter.describe(),
        version,
        retained: m.retained.as_ref().map(|b| b.index),
    }
}

/// An erased boundary leaf for the manifest.
pub fn erased_boundary_of(index: u64, leaf_hash: &Hash, inclusion: &[Hash]) -> ErasedBoundary {
    ErasedBoundary {
        index,
        leaf_hash: leaf_hash.to_base64(),
        inclusion: inclusion.iter().map(Hash::to_base64).collect(),
    }
}

/// The leaves `[lo, hi)` whose erased entries the `erased` records of
/// the range `[first, end)` name: the range, and the leaves just outside
/// it carried by hash (`before_erased`, `after_erased`).
pub fn erasable(
    first: u64,
    end: u64,
    before: &Option<ErasedBoundary>,
    after: &Option<ErasedBoundary>,
) -> (u64, u64) {
    (
        first - u64::from(before.is_some() && first > 0),
        end + u64::from(after.is_some()),
    )
}

/// A boundary leaf for the manifest.
pub fn boundary_of(index: u64, leaf: &[u8], inclusion: &[Hash]) -> Boundary {
    Boundary {
        index,
        leaf: crate::b64::encode(leaf),
        inclusion: inclusion.iter().map(Hash::to_base64).collect(),
    }
}
