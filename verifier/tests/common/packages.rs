//! Export packages built in memory from a [`TestLog`] and verified, for
//! the export tests: a log of 60 decisions, the head the ledger would
//! make for a window, and a package with every file's bytes.

use std::io::Cursor;

use serde_json::json;
use verifier::export::{
    self, boundary_of, render, Builder, ExportError, Filter, Head, Manifest, Rendered, Sinks,
    Sources, Window,
};
use verifier::range::cover;
use verifier::timestamp::Timestamp;
use verifier::tree::HashReader;

use super::decisions::{leaf_at, record, signer, TestLog};

/// 60 decisions received a second apart from 08:00:00; every fourth is
/// carol's, every seventh a break-glass.
pub fn log() -> TestLog {
    let leaves = (0..60)
        .map(|i| {
            let mut r = record(&format!("d{i}"));
            if i % 4 == 0 {
                r["subject"]["id"] = json!("carol@example.com");
                r["subject"]["owner"] = json!("carol@example.com");
            }
            if i % 7 == 0 {
                r["emergency"] = json!({"break_glass": true, "justification": "outage", "ticket": format!("INC-{i}")});
            }
            if i % 5 == 0 {
                r["decision"] = json!("deny");
            }
            leaf_at(&r, &format!("2026-11-23T08:00:{i:02}Z"))
        })
        .collect();
    TestLog::new(leaves)
}

pub fn received(log: &TestLog, i: usize) -> Timestamp {
    verifier::decision::LoggedDecision::from_leaf(&log.leaves[i])
        .unwrap()
        .received_at
}

/// The head the ledger would make for `[from, to)`.
pub fn head(log: &TestLog, from: &str, to: &str, filter: Filter) -> Head {
    let size = log.leaves.len() as u64;
    let (f, t) = (
        Timestamp::parse_text(from).unwrap(),
        Timestamp::parse_text(to).unwrap(),
    );
    let first = (0..size)
        .find(|&i| received(log, i as usize) >= f)
        .unwrap_or(size);
    let end = (0..size)
        .find(|&i| received(log, i as usize) >= t)
        .unwrap_or(size);
    let hashes = |b, e| -> Vec<String> {
        cover(b, e)
            .into_iter()
            .map(|id| log.tree.node(id).unwrap().to_base64())
            .collect()
    };
    let bound = |i: u64| boundary_of(i, &log.leaves[i as usize], &log.proof(i));
    Head {
        origin: signer().name().into(),
        window: Window {
            from: f.canonical(),
            to: t.canonical(),
        },
        filter,
        first,
        end,
        checkpoint: log.checkpoint(&signer()),
        left: hashes(0, first),
        right: hashes(end, size),
        before: first.checked_sub(1).map(bound),
        after: (end < size).then(|| bound(end)),
        before_erased: None,
        after_erased: None,
        erased: vec![],
        retained: None,
    }
}

/// A package in memory: the manifest and every file's bytes.
#[derive(Clone)]
pub struct Package {
    pub manifest: Manifest,
    pub checkpoint: Vec<u8>,
    pub report: Vec<u8>,
    pub leaves: Vec<u8>,
    pub jsonl: Vec<u8>,
    pub csv: Vec<u8>,
    pub ocsf: Vec<u8>,
}

pub fn build(log: &TestLog, head: Head) -> Package {
    try_build(log, head).unwrap()
}

/// [`build`], with the builder's refusal of a leaf as the error.
pub fn try_build(log: &TestLog, head: Head) -> Result<Package, ExportError> {
    try_build_erased(log, head, &[])
}

/// [`try_build`] of a log whose leaves `erased` have no entry.
pub fn try_build_erased(log: &TestLog, head: Head, erased: &[u64]) -> Result<Package, ExportError> {
    let (first, end) = (head.first, head.end);
    let (filter, origin) = (head.filter.clone(), head.origin.clone());
    let sinks = Sinks {
        leaves: Vec::new(),
        jsonl: Vec::new(),
        csv: Vec::new(),
        ocsf: Vec::new(),
    };
    let mut b = Builder::new(head, &signer().verifier(), sinks).unwrap();
    for i in first..end {
        let leaf = log.leaves[i as usize].clone();
        b.append(match erased.contains(&i) {
            true => Rendered::withheld(verifier::leaf_hash(&leaf)),
            false => render(i, leaf, &filter, &origin).unwrap(),
        })?;
    }
    let f = b.finish().unwrap();
    Ok(Package {
        manifest: f.manifest,
        checkpoint: f.checkpoint,
        report: f.report,
        leaves: f.sinks.leaves,
        jsonl: f.sinks.jsonl,
        csv: f.sinks.csv,
        ocsf: f.sinks.ocsf,
    })
}

impl Package {
    pub fn verify(&self) -> Result<export::Verdict, ExportError> {
        export::verify(
            Sources {
                manifest: serde_json::to_vec(&self.manifest).unwrap(),
                checkpoint: self.checkpoint.clone(),
                report: self.report.clone(),
                leaves: Cursor::new(self.leaves.clone()),
                jsonl: Cursor::new(self.jsonl.clone()),
                csv: Cursor::new(self.csv.clone()),
                ocsf: Cursor::new(self.ocsf.clone()),
            },
            &signer().verifier(),
            |_, _| {},
        )
    }

    /// Restates the digests after an edit, so that the check behind them is
    /// the one that must catch it.
    pub fn redigest(&mut self) {
        for (name, bytes) in [
            (export::LEAVES, &self.leaves),
            (export::JSONL, &self.jsonl),
            (export::CSV, &self.csv),
            (export::OCSF, &self.ocsf),
            (export::REPORT, &self.report),
        ] {
            self.manifest
                .files
                .insert(name.into(), export::digest(bytes));
        }
    }

    /// The byte ranges of leaves.cbor's items.
    pub fn items(&self) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let mut rest = &self.leaves[..];
        let mut at = 0;
        while !rest.is_empty() {
            let before = rest.len();
            verifier::cbor::decode_next(&mut rest).unwrap();
            out.push(at..at + before - rest.len());
            at += before - rest.len();
        }
        out
    }
}

pub const FROM: &str = "2026-11-23T08:00:10Z";
pub const TO: &str = "2026-11-23T08:00:40.5Z";
