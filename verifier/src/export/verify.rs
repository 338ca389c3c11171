//! Verifying an export (specs/export.md, "Verifying"): every file
//! against the manifest, every leaf against the range proof and the
//! signed checkpoint, the boundary leaves, the window, and the derived
//! files regenerated from the proven leaves and compared byte for byte.

use std::io::{BufReader, Read};

use sha2::{Digest, Sha256};

use super::report;
use super::{
    digest, erasable, hashes, heading, hex, lines, manifest_error, open_leaf, Boundary, Counts,
    ExportError, FileDigest, Item, ItemReader, Manifest, Version, CHECKPOINT, CSV, FILES, FORMAT,
    FORMAT_V1, FORMAT_V2, JSONL, LEAVES, OCSF, REPORT,
};
use super::{Erased, Retained};
use crate::cosignature::{self, Policy, Witnessing};
use crate::decision::LoggedDecision;
use crate::enforcer_signature::{EnforcerKeys, Signed};
use crate::hash::Hash;
use crate::note::VerifierKey;
use crate::range;
use crate::timestamp::Timestamp;

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
    /// The disclosed decisions by their enforcer signatures.
    pub signatures: Signatures,
    /// The findings between decisions of one request among the disclosed
    /// ones (an export@v3 report lists them; 0 for earlier formats).
    pub disagreements: u64,
    /// The ledger's retention record, when the range starts at the log's
    /// first kept leaf because the entries before it were removed.
    pub retained: Option<Retained>,
}

/// How many disclosed decisions are signed by their enforcer
/// (specs/signed-record.md), and whether the signatures were checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Signatures {
    /// Not signed.
    pub unsigned: u64,
    /// Signed, but no key of the enforcer was given.
    pub not_checked: u64,
    /// Signed and verified with a key of the enforcer.
    pub verified: u64,
}

impl Signatures {
    fn add(&mut self, signed: Signed) {
        match signed {
            Signed::Unsigned => self.unsigned += 1,
            Signed::NotChecked { .. } => self.not_checked += 1,
            Signed::Verified { .. } => self.verified += 1,
        }
    }
}

impl std::fmt::Display for Verdict {
    /// One line; the filter's values (from the manifest) pass through
    /// [`crate::shown::line`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        let m = &self.manifest;
        let mut s = String::new();
        if self.retained.is_some() {
            write!(
                s,
                "complete from leaf {}, the first the log keeps: ",
                m.first
            )?;
        } else {
            s.push_str("complete: ");
        }
        write!(
            s,
            "{} decisions received in [{}, {}), leaves {}..{} of tree size {} signed by {}",
            m.counts.leaves,
            m.window.from,
            m.window.to,
            m.first,
            m.end,
            m.checkpoint.size,
            m.origin
        )?;
        if let Some(r) = &self.retained {
            write!(
                s,
                "; the entries of leaves 0..{}, received at or before {}, were removed by retention, as the ledger's record at leaf {} says ({} at {}: {}): decisions of the window among them are not in the package",
                m.first,
                r.record.first_kept_received_at,
                r.index,
                r.record.pruned_by,
                r.record.time,
                r.record.reasons.join("; ")
            )?;
        }
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
        match (&m.before_erased, &m.after_erased) {
            (None, None) => {}
            (Some(_), Some(_)) => s.push_str(
                "; the leaves just before and just after the window were erased: carried by their hashes, dated by their erasure records",
            ),
            (before, _) => write!(
                s,
                "; the leaf just {} the window was erased: carried by its hash, dated by its erasure record",
                if before.is_some() { "before" } else { "after" }
            )?,
        }
        if m.counts.erased > 0 {
            write!(
                s,
                "; {} erased (carried as leaf hashes, each named by an erasure record the package proves, which says who asked and why)",
                m.counts.erased
            )?;
        }
        if self.disagreements > 0 {
            write!(
                s,
                "; {} finding{} between decisions of one request: enforcers that disagreed, or one policy in two versions (listed in {REPORT})",
                self.disagreements,
                if self.disagreements == 1 { "" } else { "s" }
            )?;
        }
        let sig = &self.signatures;
        if sig.verified + sig.not_checked > 0 {
            write!(
                s,
                "; {} signed by their enforcers ({} verified with the enforcer keys given, {} not checked), {} unsigned",
                sig.verified + sig.not_checked,
                sig.verified,
                sig.not_checked,
                sig.unsigned
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
            let leaf = open_leaf(b, size, root).map_err(err)?;
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
    progress: impl FnMut(u64, u64),
) -> Result<Verdict, ExportError> {
    verify_signed(src, key, policy, &EnforcerKeys::default(), progress)
}

/// [`verify_witnessed`], and the enforcer signature of every disclosed
/// decision whose enforcer has a key in `enforcers` verified with it
/// ([`Verdict::signatures`] counts them).
pub fn verify_signed<R: Read>(
    src: Sources<R>,
    key: &VerifierKey,
    policy: &Policy,
    enforcers: &EnforcerKeys,
    mut progress: impl FnMut(u64, u64),
) -> Result<Verdict, ExportError> {
    let m: Manifest =
        serde_json::from_slice(&src.manifest).map_err(|e| manifest_error(e.to_string()))?;
    let version = Version::of(&m.format).ok_or_else(|| {
        manifest_error(format!(
            "format is {:?}, not {FORMAT}, {FORMAT_V2} or {FORMAT_V1}",
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
    let (cp, witnessing) = cosignature::open_witnessed(&src.checkpoint, key, policy)?;
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
    let erased = Erased::of(
        &m.erased,
        erasable(m.first, m.end, &m.before_erased, &m.after_erased),
        cp.size,
        &cp.root,
    )?;
    let want_before = m.first.checked_sub(1).filter(|_| m.retained.is_none());
    let before = match &m.before_erased {
        None => boundary(&m.before, "before", want_before, cp.size, &cp.root)?,
        Some(b) => {
            boundary(&m.before, "before", None, cp.size, &cp.root)?;
            Some(erased.boundary(b, "before", want_before, cp.size, &cp.root)?)
        }
    };
    let retained = Retained::of(
        m.retained.as_ref(),
        m.before.as_ref(),
        m.after.as_ref(),
        (m.first, m.end),
        (cp.size, &cp.root),
        from,
    )?;
    let want_after = (m.end < cp.size).then_some(m.end);
    let after = match &m.after_erased {
        None => boundary(&m.after, "after", want_after, cp.size, &cp.root)?,
        Some(b) => {
            boundary(&m.after, "after", None, cp.size, &cp.root)?;
            Some(erased.boundary(b, "after", want_after, cp.size, &cp.root)?)
        }
    };
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
    let mut signatures = Signatures::default();
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
                if let Some(r) = &retained {
                    r.check(index, &h)?;
                }
                if erased.contains(index) {
                    erased.check(index, &h)?;
                    counts.erased += 1;
                } else if m.filter.is_empty() {
                    return Err(leaf_err("is withheld, but the export has no filter".into()));
                }
                tree.push_leaf(h);
                counts.withheld += 1;
                report.withheld();
            }
            Item::Leaf(_) if erased.contains(index) => {
                return Err(leaf_err(
                    "is disclosed, but an erasure record of the package erases it".into(),
                ));
            }
            Item::Leaf(bytes) => {
                let mut logged =
                    LoggedDecision::from_leaf(&bytes).map_err(|e| leaf_err(e.to_string()))?;
                signatures.add(
                    logged
                        .check_signature(enforcers)
                        .map_err(|e| leaf_err(e.to_string()))?,
                );
                if let Some(r) = &retained {
                    r.check(index, &logged.leaf_hash)?;
                }
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
        end_proven: after.is_some(),
        manifest: m,
        witnessing,
        signatures,
        disagreements: if version >= Version::V3 {
            report.disagreements()
        } else {
            0
        },
        retained,
    })
}
