//! `report.html` (specs/export.md, "The report"): one self-contained page
//! for people: the window and checkpoint, counts by decision, identity kind,
//! policy version and enforcer, then the decisions a reviewer looks at
//! first, and the requests whose enforcers disagreed. Made from the proven
//! leaves alone, so a verifier rebuilds it and compares bytes. Lists stop
//! at [`ROWS`] rows; the CSV has every decision.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::decision::LoggedDecision;
use crate::findings::{not_inline, span};
use crate::requests::Requests;
use crate::shown;

use super::Version;

/// Rows a list of the report holds at most.
pub const ROWS: usize = 1000;

/// A list of rows of `N` cells that keeps its first [`ROWS`] rows and
/// counts the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Capped<const N: usize = 6> {
    rows: Vec<[String; N]>,
    total: u64,
}

impl<const N: usize> Default for Capped<N> {
    fn default() -> Self {
        Capped {
            rows: Vec::new(),
            total: 0,
        }
    }
}

impl<const N: usize> Capped<N> {
    fn add(&mut self, row: impl FnOnce() -> [String; N]) {
        self.total += 1;
        if self.rows.len() < ROWS {
            self.rows.push(row());
        }
    }
}

/// What the report says of the export itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heading {
    /// The log's origin.
    pub origin: String,
    /// `received_at` from (inclusive).
    pub from: String,
    /// `received_at` to (exclusive).
    pub to: String,
    /// The checkpoint's size.
    pub size: u64,
    /// The checkpoint's root (base64).
    pub root: String,
    /// The first leaf of the range.
    pub first: u64,
    /// The end of the range.
    pub end: u64,
    /// The filter, as people read it (empty: none).
    pub filter: String,
    /// Which format's page this is.
    pub version: Version,
    /// The leaf of the ledger's retention record, when the range starts at
    /// the log's first kept leaf (the entries before it removed).
    pub retained: Option<u64>,
}

/// The report's tallies and lists, built one decision at a time.
#[derive(Debug, Default)]
pub struct Report {
    disclosed: u64,
    withheld: u64,
    by_decision: BTreeMap<String, u64>,
    by_identity: BTreeMap<String, u64>,
    by_policy: BTreeMap<String, u64>,
    by_enforcer: BTreeMap<String, u64>,
    elevated: Capped,
    expired: Capped,
    ownerless: BTreeMap<String, (String, u64, String)>,
    ownerless_more: u64,
    denials: Capped,
    not_inline: Capped,
    requests: Requests,
    disagreements: Capped<4>,
}

fn bump(map: &mut BTreeMap<String, u64>, key: String) {
    *map.entry(key).or_default() += 1;
}

/// `s` as HTML text; from [`Version::V2`] on, through [`shown::line`]
/// first, so that no record reorders or hides what the page says.
fn esc(s: &str, version: Version) -> String {
    let s = match version {
        Version::V1 => std::borrow::Cow::Borrowed(s),
        Version::V2 | Version::V3 => shown::line(s),
    };
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl Report {
    /// Counts a leaf of the range that the export withholds.
    pub fn withheld(&mut self) {
        self.withheld += 1;
    }

    /// The findings between decisions of one request so far (the list of
    /// a [`Version::V3`] page, whole).
    pub fn disagreements(&self) -> u64 {
        self.disagreements.total
    }

    /// Adds a disclosed decision.
    pub fn add(&mut self, logged: &LoggedDecision) {
        let d = &logged.decision;
        self.disclosed += 1;
        bump(&mut self.by_decision, d.decision.clone());
        bump(&mut self.by_identity, d.subject.identity_kind.clone());
        bump(
            &mut self.by_policy,
            format!("{}@{}", d.policy.id, d.policy.version),
        );
        bump(
            &mut self.by_enforcer,
            format!("{} {}", d.enforcer.kind, d.enforcer.id),
        );
        let time = || d.time.canonical();
        let break_glass = d.emergency.as_ref().filter(|e| e.break_glass);
        let jit_credential = d.credential.as_ref().filter(|c| c.kind == "jit_grant");
        let jit_grant = d.delegation.iter().find(|a| a.grant_id.is_some());
        if break_glass.is_some() || jit_credential.is_some() || jit_grant.is_some() {
            self.elevated.add(|| {
                let (kind, justification, ticket, by) = match break_glass {
                    Some(e) => (
                        "break-glass".to_string(),
                        e.justification.clone().unwrap_or_default(),
                        e.ticket
                            .clone()
                            .or_else(|| e.grant_id.clone())
                            .unwrap_or_default(),
                        e.approved_by.clone().unwrap_or_default(),
                    ),
                    None => (
                        "JIT".to_string(),
                        String::new(),
                        jit_grant
                            .and_then(|a| a.grant_id.clone())
                            .or_else(|| jit_credential.map(|c| c.id_hash.clone()))
                            .unwrap_or_default(),
                        jit_grant
                            .and_then(|a| a.approved_by.clone())
                            .unwrap_or_default(),
                    ),
                };
                [
                    time(),
                    d.decision_id.clone(),
                    format!("{kind}: {}", d.subject.id),
                    justification,
                    ticket,
                    by,
                ]
            });
        }
        if d.credential_valid() == Some(false) {
            self.expired.add(|| {
                let c = d.credential.as_ref();
                [
                    time(),
                    d.decision_id.clone(),
                    d.subject.id.clone(),
                    c.map(|c| c.kind.clone()).unwrap_or_default(),
                    c.map(|c| c.expires_at.canonical()).unwrap_or_default(),
                    d.decision.clone(),
                ]
            });
        }
        let mut ownerless = Vec::new();
        if d.subject.owner.is_none() {
            ownerless.push((d.subject.id.clone(), d.subject.identity_kind.clone()));
        }
        for a in d.delegation.iter().filter(|a| a.owner.is_none()) {
            ownerless.push((a.id.clone(), a.identity_kind.clone()));
        }
        for (id, kind) in ownerless {
            let full = self.ownerless.len() >= ROWS;
            match self.ownerless.get_mut(&id) {
                Some(entry) => entry.1 += 1,
                None if full => self.ownerless_more += 1,
                None => {
                    self.ownerless.insert(id, (kind, 1, d.decision_id.clone()));
                }
            }
        }
        if let Some(delay) = not_inline(logged) {
            self.not_inline.add(|| {
                let when = if delay > 0.0 { "later" } else { "before" };
                [
                    time(),
                    d.decision_id.clone(),
                    d.subject.id.clone(),
                    format!("{} {}", d.enforcer.kind, d.enforcer.id),
                    logged.received_at.canonical(),
                    format!("{} {when}", span(delay.abs())),
                ]
            });
        }
        for f in self.requests.add(d) {
            self.disagreements.add(|| {
                let what = match f.code {
                    "engine_gate_disagree" => "policy engine and gate disagree",
                    "issuer_gate_disagree" => "token issuer denied, gate allowed",
                    _ => "one policy in two versions",
                };
                [time(), what.to_string(), f.decisions.join(", "), f.message]
            });
        }
        if d.decision == "deny" {
            self.denials.add(|| {
                [
                    time(),
                    d.decision_id.clone(),
                    d.subject.id.clone(),
                    format!("{} {}", d.action, d.resource.id),
                    format!("{}@{}", d.policy.id, d.policy.version),
                    d.reasons.join("; "),
                ]
            });
        }
    }

    /// The page.
    pub fn html(&self, h: &Heading) -> String {
        let mut o = String::new();
        let _ = write!(
            o,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Decision Ledger export {from} to {to}</title>\n<style>\
             body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}\
             table{{border-collapse:collapse;margin:0 0 1.5em}}\
             td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}}\
             th{{background:#f3f3f3}}code{{font-size:.9em}}\
             </style></head><body>\n<h1>Access decisions received from {from} to {to}</h1>\n",
            from = esc(&h.from, h.version),
            to = esc(&h.to, h.version)
        );
        let _ = writeln!(
            o,
            "<p>Log <code>{}</code>, checkpoint of tree size {} (root <code>{}</code>); \
             leaves {} to {} ({} decisions in the window, {} disclosed, {} withheld). Filter: {}.</p>",
            esc(&h.origin, h.version),
            h.size,
            esc(&h.root, h.version),
            h.first,
            h.end,
            self.disclosed + self.withheld,
            self.disclosed,
            self.withheld,
            if h.filter.is_empty() {
                "none".to_string()
            } else {
                esc(&h.filter, h.version)
            }
        );
        if let Some(by) = h.retained {
            let _ = writeln!(
                o,
                "<p>The entries of the leaves before leaf {} were removed by retention, as the \
                 ledger's retention record at leaf {by} says (in manifest.json): the decisions of \
                 the window among them are not in this export.</p>",
                h.first
            );
        }
        for (title, map) in [
            ("By decision", &self.by_decision),
            ("By identity kind", &self.by_identity),
            ("By policy version", &self.by_policy),
            ("By enforcer", &self.by_enforcer),
        ] {
            let _ = write!(o, "<h2>{title}</h2>\n<table>");
            for (k, n) in map {
                let _ = write!(o, "<tr><td>{}</td><td>{n}</td></tr>", esc(k, h.version));
            }
            o.push_str("</table>\n");
        }
        fn list<const N: usize>(
            o: &mut String,
            version: Version,
            title: &str,
            heads: [&str; N],
            list: &Capped<N>,
            where_more: Option<&str>,
        ) {
            let _ = write!(o, "<h2>{title} ({})</h2>\n<table><tr>", list.total);
            for hd in heads {
                let _ = write!(o, "<th>{hd}</th>");
            }
            o.push_str("</tr>");
            for row in &list.rows {
                o.push_str("<tr>");
                for c in row {
                    let _ = write!(o, "<td>{}</td>", esc(c, version));
                }
                o.push_str("</tr>");
            }
            o.push_str("</table>\n");
            if list.total > list.rows.len() as u64 {
                let more = list.total - list.rows.len() as u64;
                let _ = match where_more {
                    Some(file) => writeln!(o, "<p>… and {more} more in {file}.</p>"),
                    None => writeln!(o, "<p>… and {more} more.</p>"),
                };
            }
        }
        list(
            &mut o,
            h.version,
            "Break-glass and just-in-time access",
            [
                "time",
                "decision",
                "access",
                "justification",
                "ticket / grant",
                "approved by",
            ],
            &self.elevated,
            Some("decisions.csv"),
        );
        list(
            &mut o,
            h.version,
            "Decisions made with a credential not valid at the time",
            [
                "time",
                "decision",
                "subject",
                "credential",
                "expires",
                "decision made",
            ],
            &self.expired,
            Some("decisions.csv"),
        );
        let _ = write!(
            o,
            "<h2>Identities without an accountable owner ({})</h2>\n<table><tr><th>identity</th><th>kind</th><th>decisions</th><th>first decision</th></tr>",
            self.ownerless.len() as u64 + self.ownerless_more
        );
        for (id, (kind, n, first)) in &self.ownerless {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{n}</td><td>{}</td></tr>",
                esc(id, h.version),
                esc(kind, h.version),
                esc(first, h.version)
            );
        }
        o.push_str("</table>\n");
        if self.ownerless_more > 0 {
            let _ = writeln!(o, "<p>… and {} more identities.</p>", self.ownerless_more);
        }
        list(
            &mut o,
            h.version,
            "Denials",
            [
                "time",
                "decision",
                "subject",
                "action and resource",
                "policy",
                "reasons",
            ],
            &self.denials,
            Some("decisions.csv"),
        );
        if h.version >= Version::V2 {
            list(
                &mut o,
                h.version,
                "Decisions not logged inline (received over an hour after they were made, or over five minutes before)",
                [
                    "time",
                    "decision",
                    "subject",
                    "enforcer",
                    "received by the ledger",
                    "relative to the decision",
                ],
                &self.not_inline,
                Some("decisions.csv"),
            );
        }
        if h.version >= Version::V3 {
            list(
                &mut o,
                h.version,
                "Requests whose enforcers disagreed (a policy engine and a gate deciding differently, a token issuer denying what a gate allowed, one policy applied in two versions)",
                ["time", "finding", "decisions", "what was found"],
                &self.disagreements,
                None,
            );
        }
        o.push_str("<p>Verify this export offline: <code>ledger-verify export DIR --key log.pub</code>.</p>\n</body></html>\n");
        o
    }
}
