//! Writing an export: what the log says of the range ([`Head`]), then its
//! leaves in order, each [`render`]ed (which may run on several threads)
//! and [`Builder::append`]ed (in order), then [`Builder::finish`] for the
//! manifest and the report. The builder checks the range against the
//! signed root as it goes, so it never finishes a package that would not
//! verify.

use std::io::Write;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::lines;
use super::report::Report;
use super::{
    digest, heading, hex, Boundary, CheckpointRef, Counts, ExportError, FileDigest, Filter,
    Manifest, Version, Window, FORMAT,
};
use super::{CHECKPOINT, CSV, JSONL, LEAVES, OCSF, REPORT};
use crate::decision::LoggedDecision;
use crate::hash::{leaf_hash, Hash};
use crate::range::{self, CompactRange};
use crate::timestamp::Timestamp;

/// What the log says of an export's range, before its leaves: the first
/// item of the `GET /v1/export` stream, and the start of `manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// The log's origin.
    pub origin: String,
    /// The window of `received_at`.
    pub window: Window,
    /// What is disclosed in full.
    pub filter: Filter,
    /// The first leaf of the range.
    pub first: u64,
    /// The end of the range.
    pub end: u64,
    /// The signed checkpoint, verbatim.
    pub checkpoint: String,
    /// Complete subtrees covering `[0, first)`, base64.
    pub left: Vec<String>,
    /// Complete subtrees covering `[end, size)`, base64.
    pub right: Vec<String>,
    /// Leaf `first − 1`, if `first > 0`.
    pub before: Option<Boundary>,
    /// Leaf `end`, if `end` is below the checkpoint's size.
    pub after: Option<Boundary>,
    /// Leaf `first − 1` by its hash, if its entry was erased (then
    /// `before` is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_erased: Option<super::ErasedBoundary>,
    /// Leaf `end` by its hash, if its entry was erased (then `after` is
    /// absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_erased: Option<super::ErasedBoundary>,
    /// The records of the erasures of leaves in the range and of erased
    /// boundary leaves, each with its inclusion proof.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub erased: Vec<Boundary>,
    /// The ledger's retention record naming `first` as the first kept
    /// leaf, with its inclusion proof, when the leaf before the range had
    /// its entry removed (then `before` is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retained: Option<Boundary>,
}

/// A leaf made ready to append.
#[derive(Debug)]
pub struct Rendered {
    leaf_hash: Hash,
    /// Disclosed: the leaf, its three lines, and the decision for the report.
    disclosed: Option<(Vec<u8>, [String; 3], LoggedDecision)>,
}

impl Rendered {
    /// A leaf withheld by the exporter's filter, or whose entry was
    /// erased (an erasure record of the head names it), known by its hash
    /// only.
    pub fn withheld(leaf_hash: Hash) -> Rendered {
        Rendered {
            leaf_hash,
            disclosed: None,
        }
    }
}

/// Reads leaf `index` and, if the filter lets it through, makes its lines.
pub fn render(
    index: u64,
    leaf: Vec<u8>,
    filter: &Filter,
    origin: &str,
) -> Result<Rendered, ExportError> {
    let leaf_err = |why: String| ExportError::Leaf { index, why };
    let logged = LoggedDecision::from_leaf(&leaf).map_err(|e| leaf_err(e.to_string()))?;
    if !filter.matches(&logged.decision) {
        return Ok(Rendered::withheld(logged.leaf_hash));
    }
    let lines = [
        lines::jsonl(index, &logged),
        lines::csv(index, &logged, Version::V3),
        lines::ocsf(index, &logged, origin),
    ];
    Ok(Rendered {
        leaf_hash: logged.leaf_hash,
        disclosed: Some((leaf, lines, logged)),
    })
}

/// A writer that hashes what it writes.
struct Hashed<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Hashed<W> {
    fn new(inner: W) -> Hashed<W> {
        Hashed {
            inner,
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    fn put(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(data)?;
        self.hash.update(data);
        self.bytes += data.len() as u64;
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<(FileDigest, W)> {
        self.inner.flush()?;
        let d = FileDigest {
            sha256: hex(&self.hash.finalize()),
            bytes: self.bytes,
        };
        Ok((d, self.inner))
    }
}

/// The streamed files' writers.
pub struct Sinks<W> {
    /// `leaves.cbor`.
    pub leaves: W,
    /// `decisions.jsonl`.
    pub jsonl: W,
    /// `decisions.csv`.
    pub csv: W,
    /// `ocsf.jsonl`.
    pub ocsf: W,
}

/// A finished export.
pub struct Finished<W> {
    /// `manifest.json`'s content.
    pub manifest: Manifest,
    /// `checkpoint`'s bytes.
    pub checkpoint: Vec<u8>,
    /// `report.html`'s bytes.
    pub report: Vec<u8>,
    /// The streamed files' writers, flushed.
    pub sinks: Sinks<W>,
}

/// An export being written.
pub struct Builder<W> {
    head: Head,
    verifier_key: String,
    size: u64,
    root: Hash,
    leaves: Hashed<W>,
    jsonl: Hashed<W>,
    csv: Hashed<W>,
    ocsf: Hashed<W>,
    tree: CompactRange,
    counts: Counts,
    report: Report,
    /// The window, read from the head.
    window: (Timestamp, Timestamp),
    /// The `received_at` of the last disclosed leaf.
    last: Option<Timestamp>,
    /// The erased leaves of the range, by the head's erasure records.
    erased: super::Erased,
    /// The head's retention record, when the range starts at the first
    /// kept leaf.
    retained: Option<super::Retained>,
}

fn io(file: &'static str) -> impl Fn(std::io::Error) -> ExportError {
    move |e| ExportError::File {
        file,
        why: e.to_string(),
    }
}

impl<W: Write> Builder<W> {
    /// Starts an export of `head`'s range, checking its checkpoint with
    /// `key` and its left proof.
    pub fn new(
        head: Head,
        key: &crate::VerifierKey,
        sinks: Sinks<W>,
    ) -> Result<Builder<W>, ExportError> {
        let (cp, _) = crate::cosignature::open_witnessed(
            head.checkpoint.as_bytes(),
            key,
            &crate::cosignature::Policy::default(),
        )?;
        let left = super::hashes(&head.left, "left")?;
        let right = super::hashes(&head.right, "right")?;
        let tree = range::start(head.first, head.end, cp.size, &left, &right)?;
        let time = |t: &str| {
            Timestamp::parse_text(t).ok_or_else(|| {
                super::manifest_error(format!("the window's {t:?} is not an RFC 3339 time"))
            })
        };
        let window = (time(&head.window.from)?, time(&head.window.to)?);
        let erased = super::Erased::of(
            &head.erased,
            super::erasable(
                head.first,
                head.end,
                &head.before_erased,
                &head.after_erased,
            ),
            cp.size,
            &cp.root,
        )?;
        let retained = super::Retained::of(
            head.retained.as_ref(),
            head.before.as_ref(),
            head.after.as_ref(),
            (head.first, head.end),
            (cp.size, &cp.root),
            window.0,
        )?;
        let mut csv = Hashed::new(sinks.csv);
        csv.put(lines::CSV_HEADER.as_bytes()).map_err(io(CSV))?;
        Ok(Builder {
            head,
            verifier_key: key.to_string(),
            size: cp.size,
            root: cp.root,
            leaves: Hashed::new(sinks.leaves),
            jsonl: Hashed::new(sinks.jsonl),
            csv,
            ocsf: Hashed::new(sinks.ocsf),
            tree,
            counts: Counts::default(),
            report: Report::default(),
            window,
            last: None,
            erased,
            retained,
        })
    }

    /// The next leaf of the range. A disclosed leaf received outside the
    /// window, or before the one ahead of it (a log whose clock went back),
    /// is refused as the verifier would refuse it.
    pub fn append(&mut self, r: Rendered) -> Result<(), ExportError> {
        if let Some((_, _, logged)) = &r.disclosed {
            let index = self.head.first + self.counts.leaves;
            let t = logged.received_at;
            let why = if t < self.window.0 || t >= self.window.1 {
                Some(format!("was received at {t}, outside the window"))
            } else {
                self.last.filter(|&l| t < l).map(|l| {
                    format!(
                        "was received at {t}, before the leaf ahead of it ({l}): the log's \
                         clock went back here, so no window across it is one run of leaves"
                    )
                })
            };
            if let Some(why) = why {
                return Err(ExportError::Leaf { index, why });
            }
            self.last = Some(t);
        }
        let index = self.head.first + self.counts.leaves;
        if let Some(retained) = &self.retained {
            retained.check(index, &r.leaf_hash)?;
        }
        if self.erased.contains(index) {
            if r.disclosed.is_some() {
                return Err(ExportError::Leaf {
                    index,
                    why: "is disclosed, but an erasure record of the head erases it".into(),
                });
            }
            self.erased.check(index, &r.leaf_hash)?;
            self.counts.erased += 1;
        } else if r.disclosed.is_none() && self.head.filter.is_empty() {
            return Err(ExportError::Leaf {
                index,
                why: "is withheld, but the export has no filter and no erasure record names it"
                    .into(),
            });
        }
        self.tree.push_leaf(r.leaf_hash);
        self.counts.leaves += 1;
        match r.disclosed {
            None => {
                let mut item = Vec::with_capacity(34);
                super::write_item(&mut item, &[], Some(&r.leaf_hash)).map_err(io(LEAVES))?;
                self.leaves.put(&item).map_err(io(LEAVES))?;
                self.counts.withheld += 1;
                self.report.withheld();
            }
            Some((leaf, [j, c, o], logged)) => {
                debug_assert_eq!(leaf_hash(&leaf), r.leaf_hash);
                self.leaves.put(&leaf).map_err(io(LEAVES))?;
                self.jsonl.put(j.as_bytes()).map_err(io(JSONL))?;
                self.csv.put(c.as_bytes()).map_err(io(CSV))?;
                self.ocsf.put(o.as_bytes()).map_err(io(OCSF))?;
                self.counts.disclosed += 1;
                self.report.add(&logged);
            }
        }
        Ok(())
    }

    /// Ends the export once every leaf of the range is in: checks the range
    /// against the signed root; returns the manifest, the checkpoint's and
    /// the report's bytes (the caller writes those three files) and the
    /// sinks, flushed.
    pub fn finish(self) -> Result<Finished<W>, ExportError> {
        let right = super::hashes(&self.head.right, "right")?;
        range::finish(self.tree, self.head.end, self.size, &right, &self.root)?;
        let h = self.head;
        let mut files = std::collections::BTreeMap::new();
        let mut put = |name: &'static str, w: Hashed<W>| -> Result<W, ExportError> {
            let (d, w) = w.finish().map_err(io(name))?;
            files.insert(name.to_string(), d);
            Ok(w)
        };
        let sinks = Sinks {
            leaves: put(LEAVES, self.leaves)?,
            jsonl: put(JSONL, self.jsonl)?,
            csv: put(CSV, self.csv)?,
            ocsf: put(OCSF, self.ocsf)?,
        };
        let checkpoint = h.checkpoint.clone().into_bytes();
        files.insert(CHECKPOINT.to_string(), digest(&checkpoint));
        let mut manifest = Manifest {
            format: FORMAT.into(),
            origin: h.origin,
            verifier_key: self.verifier_key,
            window: h.window,
            filter: h.filter,
            first: h.first,
            end: h.end,
            checkpoint: CheckpointRef {
                size: self.size,
                root: self.root.to_base64(),
            },
            left: h.left,
            right: h.right,
            before: h.before,
            after: h.after,
            before_erased: h.before_erased,
            after_erased: h.after_erased,
            erased: h.erased,
            retained: h.retained,
            counts: self.counts,
            files,
        };
        let report = self
            .report
            .html(&heading(&manifest, Version::V3))
            .into_bytes();
        manifest.files.insert(REPORT.to_string(), digest(&report));
        Ok(Finished {
            manifest,
            checkpoint,
            report,
            sinks,
        })
    }
}
