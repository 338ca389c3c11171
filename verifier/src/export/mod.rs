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
mod items;
pub mod lines;
pub mod report;

use std::collections::BTreeMap;
use std::io::{BufReader, Read};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::checkpoint::{self, CheckpointError};
use crate::cosignature::{Policy, Witnessing};
use crate::decision::{Decision, LoggedDecision};
use crate::hash::{leaf_hash, Hash};
use crate::inclusion::verify_inclusion;
use crate::note::VerifierKey;
use crate::range::{self, RangeError};
use crate::timestamp::Timestamp;

pub use builder::{render, Builder, Finished, Head, Rendered, Sinks};
pub use items::{write_item, Item, ItemReader};

/// `manifest.json`'s `format`: what exports are made in ([`Version::V2`]).
pub const FORMAT: &str = "decision-ledger/export@v2";
/// The first format, still verified ([`Version::V1`]).
pub const FORMAT_V1: &str = "decision-ledger/export@v1";

/// A format this verifier reads. The two differ only in how the derived
/// files show record text (specs/export.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// [`FORMAT_V1`]: CSV fields as given; the report with record text only
    /// HTML-escaped and no list of decisions not logged inline.
    V1,
    /// [`FORMAT`]: a CSV field a spreadsheet would read as a formula gets a
    /// leading `'`; the report shows control, invisible and bidirectional
    /// characters as `\u{…}` ([`crate::shown`]) and lists the decisions not
    /// logged inline.
    V2,
}

impl Version {
    /// The version of a manifest's `format`, if this verifier reads it.
    pub fn of(format: &str) -> Option<Version> {
        match format {
            FORMAT => Some(Version::V2),
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
            && eq(&self.resource, &d.resource.id)
            && eq(&self.policy, &d.policy.id)
            && eq(&self.decision, &d.decision)
            && eq(&self.enforcer, &d.enforcer.id)
            && (!self.break_glass || d.emergency.as_ref().is_some_and(|e| e.break_glass))
    }

    /// The parameter names a filter takes (`GET /v1/export`, and
    /// `ledgerctl export` as `--<name>`).
    pub const PARAMS: [&'static str; 7] = [
        "subject",
        "actor",
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
}

/// `manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`] (or [`FORMAT_V1`]).
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
    /// Complete subtrees covering `[0, first)`, base64 ([`range::cover`]).
    pub left: Vec<String>,
    /// Complete subtrees covering `[end, size)`, base64.
    pub right: Vec<String>,
    /// Leaf `first − 1`, received before the window (absent when `first` is 0).
    pub before: Option<Boundary>,
    /// Leaf `end`, received at or after the window's end (absent when
    /// `end` is the checkpoint's size).
    pub after: Option<Boundary>,
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

/// A reader that hashes what passes through it.
struct Digesting<R> {
    inner: R,
    hash: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Digesting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// A streamed file: read through, hashed, compared with the manifest at
/// the end.
struct Streamed<R> {
    name: &'static str,
    reader: BufReader<Digesting<R>>,
    line: u64,
}

impl<R: Read> Streamed<R> {
    fn new(name: &'static str, inner: R) -> Streamed<R> {
        Streamed {
            name,
            reader: BufReader::with_capacity(
                1 << 16,
                Digesting {
                    inner,
                    hash: Sha256::new(),
                    bytes: 0,
                },
            ),
            line: 0,
        }
    }

    fn io(&self, e: std::io::Error) -> ExportError {
        ExportError::File {
            file: self.name,
            why: e.to_string(),
        }
    }

    /// Compares the next row with `want` (a line; in the CSV, a record
    /// whose quoted fields may hold line breaks, so the row is as long as
    /// `want`, not up to the first newline). The first difference is kept
    /// in `found` (reported once the leaves themselves are known to be
    /// right).
    fn expect(
        &mut self,
        want: &str,
        index: u64,
        found: &mut Option<ExportError>,
    ) -> Result<(), ExportError> {
        let mut row = Vec::with_capacity(want.len());
        (&mut self.reader)
            .take(want.len() as u64)
            .read_to_end(&mut row)
            .map_err(|e| self.io(e))?;
        self.line += 1;
        if found.is_none() && row != want.as_bytes() {
            *found = Some(ExportError::Derived {
                file: self.name,
                line: self.line,
                index,
            });
        }
        Ok(())
    }

    /// Reads to the end and checks the digest against the manifest.
    fn finish(mut self, manifest: &Manifest) -> Result<(), ExportError> {
        let mut rest = [0u8; 1];
        if self.reader.read(&mut rest).map_err(|e| self.io(e))? > 0 {
            return Err(ExportError::File {
                file: self.name,
                why: format!("holds more than the {} lines of the range", self.line),
            });
        }
        let d = self.reader.into_inner();
        check_digest(
            manifest,
            self.name,
            &FileDigest {
                sha256: hex(&d.hash.finalize()),
                bytes: d.bytes,
            },
        )
    }
}

fn check_digest(
    manifest: &Manifest,
    name: &'static str,
    got: &FileDigest,
) -> Result<(), ExportError> {
    match manifest.files.get(name) {
        Some(want) if want == got => Ok(()),
        Some(_) => Err(ExportError::File {
            file: name,
            why: "its SHA-256 is not the manifest's".into(),
        }),
        None => Err(manifest_error(format!("lists no digest for {name}"))),
    }
}

/// The files of an export, as a verifier reads them: the small ones whole,
/// the ones that grow with the window as readers.
pub struct Sources<R> {
    /// `manifest.json`.
    pub manifest: Vec<u8>,
    /// `checkpoint`.
    pub checkpoint: Vec<u8>,
    /// `report.html`.
    pub report: Vec<u8>,
    /// `leaves.cbor`.
    pub leaves: R,
    /// `decisions.jsonl`.
    pub jsonl: R,
    /// `decisions.csv`.
    pub csv: R,
    /// `ocsf.jsonl`.
    pub ocsf: R,
}

/// What a verified export proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The manifest (every claim in it checked).
    pub manifest: Manifest,
    /// Whether the leaf after the range was there to prove the window's end;
    /// without it, the export is complete up to the checkpoint's size.
    pub end_proven: bool,
    /// The witnesses' cosignatures on the checkpoint.
    pub witnessing: Witnessing,
}

impl std::fmt::Display for Verdict {
    /// One line; the filter's values (from the manifest) pass through
    /// [`crate::shown::line`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        let m = &self.manifest;
        let mut s = String::new();
        write!(
            s,
            "complete: {} decisions received in [{}, {}), leaves {}..{} of tree size {} signed by {}",
            m.counts.leaves, m.window.from, m.window.to, m.first, m.end, m.checkpoint.size, m.origin
        )?;
        if !self.end_proven {
            write!(
                s,
                "; the window reaches past the checkpoint, so decisions received after tree size {} are not covered",
                m.checkpoint.size
            )?;
        }
        if !m.filter.is_empty() {
            write!(
                s,
                "; filtered ({}): {} disclosed and matching, {} withheld as leaf hashes (that a withheld decision does not match cannot be shown)",
                m.filter.describe(),
                m.counts.disclosed,
                m.counts.withheld
            )?;
        }
        f.write_str(&crate::shown::line(&s))
    }
}

fn boundary(
    b: &Option<Boundary>,
    which: &'static str,
    want_index: Option<u64>,
    size: u64,
    root: &Hash,
) -> Result<Option<Timestamp>, ExportError> {
    let err = |why: String| ExportError::Boundary { which, why };
    match (b, want_index) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(err("is given, but there is no such leaf".into())),
        (None, Some(i)) => Err(err(format!("(leaf {i}) is missing"))),
        (Some(b), Some(i)) => {
            if b.index != i {
                return Err(err(format!("is leaf {}, not {i}", b.index)));
            }
            let leaf = crate::b64::decode(&b.leaf).ok_or_else(|| err("is not base64".into()))?;
            let proof = hashes(&b.inclusion, which)?;
            verify_inclusion(&leaf_hash(&leaf), i, size, &proof, root)
                .map_err(|e| err(format!("is not in the signed tree: {e}")))?;
            let logged = LoggedDecision::from_leaf(&leaf).map_err(|e| err(e.to_string()))?;
            Ok(Some(logged.received_at))
        }
    }
}

/// Verifies an export with the log's key: the manifest, the checkpoint, the
/// digest of every file, every leaf of the range in order (in the window,
/// `received_at` not decreasing, matching the filter if disclosed), the
/// range against the signed root, the boundary leaves, and that every line
/// of the derived files and the report are what the leaves yield.
/// `progress` is called with the leaves done and the range's length.
pub fn verify<R: Read>(
    src: Sources<R>,
    key: &VerifierKey,
    progress: impl FnMut(u64, u64),
) -> Result<Verdict, ExportError> {
    verify_witnessed(src, key, &Policy::default(), progress)
}

/// [`verify`], and the checkpoint's cosignatures by the witnesses of
/// `policy` verified and reaching its quorum.
pub fn verify_witnessed<R: Read>(
    src: Sources<R>,
    key: &VerifierKey,
    policy: &Policy,
    mut progress: impl FnMut(u64, u64),
) -> Result<Verdict, ExportError> {
    let m: Manifest =
        serde_json::from_slice(&src.manifest).map_err(|e| manifest_error(e.to_string()))?;
    let version = Version::of(&m.format).ok_or_else(|| {
        manifest_error(format!(
            "format is {:?}, not {FORMAT} or {FORMAT_V1}",
            m.format
        ))
    })?;
    if m.files.keys().map(String::as_str).ne(FILES
        .iter()
        .copied()
        .collect::<std::collections::BTreeSet<_>>())
    {
        return Err(manifest_error(format!(
            "must list exactly {}",
            FILES.join(", ")
        )));
    }
    let (cp, witnessing) = checkpoint::open_witnessed(&src.checkpoint, key, policy)?;
    check_digest(&m, CHECKPOINT, &digest(&src.checkpoint))?;
    check_digest(&m, REPORT, &digest(&src.report))?;
    if cp.origin != m.origin
        || cp.size != m.checkpoint.size
        || cp.root.to_base64() != m.checkpoint.root
    {
        return Err(manifest_error("its checkpoint is not the signed one"));
    }
    let from = Timestamp::parse_text(&m.window.from).filter(|t| t.canonical() == m.window.from);
    let to = Timestamp::parse_text(&m.window.to).filter(|t| t.canonical() == m.window.to);
    let (Some(from), Some(to)) = (from, to) else {
        return Err(manifest_error(
            "the window is not two canonical RFC 3339 times",
        ));
    };
    if from >= to {
        return Err(manifest_error("the window ends before it starts"));
    }
    let (left, right) = (hashes(&m.left, "left")?, hashes(&m.right, "right")?);
    let mut tree = range::start(m.first, m.end, cp.size, &left, &right)?;
    let before = boundary(
        &m.before,
        "before",
        m.first.checked_sub(1),
        cp.size,
        &cp.root,
    )?;
    let after = boundary(
        &m.after,
        "after",
        (m.end < cp.size).then_some(m.end),
        cp.size,
        &cp.root,
    )?;
    if before.is_some_and(|t| t >= from) {
        return Err(ExportError::Boundary {
            which: "before",
            why: "was received inside the window, so the range does not start at the window".into(),
        });
    }
    if after.is_some_and(|t| t < to) {
        return Err(ExportError::Boundary {
            which: "after",
            why: "was received inside the window, so the range stops before the window's end"
                .into(),
        });
    }
    let mut leaves_file = Streamed::new(LEAVES, src.leaves);
    let mut leaves = ItemReader::new(&mut leaves_file.reader);
    let mut jsonl = Streamed::new(JSONL, src.jsonl);
    let mut csv = Streamed::new(CSV, src.csv);
    let mut ocsf = Streamed::new(OCSF, src.ocsf);
    let mut derived = None;
    csv.expect(lines::CSV_HEADER, m.first, &mut derived)?;
    let mut report = report::Report::default();
    let mut counts = Counts::default();
    let mut last = before;
    let total = m.end - m.first;
    for index in m.first..m.end {
        let leaf_err = |why: String| ExportError::Leaf { index, why };
        let item = leaves
            .next_item()
            .map_err(|e| leaf_err(e.to_string()))?
            .ok_or_else(|| leaf_err("is missing: leaves.cbor ends early".into()))?;
        counts.leaves += 1;
        match item {
            Item::Withheld(h) => {
                if m.filter.is_empty() {
                    return Err(leaf_err("is withheld, but the export has no filter".into()));
                }
                tree.push_leaf(h);
                counts.withheld += 1;
                report.withheld();
            }
            Item::Leaf(bytes) => {
                let logged =
                    LoggedDecision::from_leaf(&bytes).map_err(|e| leaf_err(e.to_string()))?;
                tree.push_leaf(logged.leaf_hash);
                let t = logged.received_at;
                if t < from || t >= to {
                    return Err(leaf_err(format!("was received at {t}, outside the window")));
                }
                if last.is_some_and(|l| t < l) {
                    return Err(leaf_err("was received before the leaf ahead of it".into()));
                }
                last = Some(t);
                if !m.filter.matches(&logged.decision) {
                    return Err(leaf_err(
                        "is disclosed but does not match the filter".into(),
                    ));
                }
                jsonl.expect(&lines::jsonl(index, &logged), index, &mut derived)?;
                csv.expect(&lines::csv(index, &logged, version), index, &mut derived)?;
                ocsf.expect(&lines::ocsf(index, &logged, &m.origin), index, &mut derived)?;
                counts.disclosed += 1;
                report.add(&logged);
            }
        }
        if index % 4096 == 0 {
            progress(index - m.first, total);
        }
    }
    progress(total, total);
    let more = leaves.next_item().map_err(|e| ExportError::File {
        file: LEAVES,
        why: e.to_string(),
    })?;
    if more.is_some() {
        return Err(ExportError::File {
            file: LEAVES,
            why: format!("holds more than the {total} leaves of the range"),
        });
    }
    // The leaves first: their file, then the range against the signed root;
    // only then what is made from them.
    leaves_file.finish(&m)?;
    range::finish(tree, m.end, cp.size, &right, &cp.root)?;
    if counts != m.counts {
        return Err(manifest_error(format!(
            "counts {:?} are not those of the leaves ({counts:?})",
            m.counts
        )));
    }
    if let Some(e) = derived {
        return Err(e);
    }
    if report.html(&heading(&m, version)).as_bytes() != src.report {
        return Err(ExportError::File {
            file: REPORT,
            why: "is not what the disclosed leaves yield".into(),
        });
    }
    jsonl.finish(&m)?;
    csv.finish(&m)?;
    ocsf.finish(&m)?;
    Ok(Verdict {
        end_proven: m.after.is_some(),
        manifest: m,
        witnessing,
    })
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
    }
}

/// A boundary leaf for the manifest.
pub fn boundary_of(index: u64, leaf: &[u8], inclusion: &[Hash]) -> Boundary {
    Boundary {
        index,
        leaf: crate::b64::encode(leaf),
        inclusion: inclusion.iter().map(Hash::to_base64).collect(),
    }
}
