//! `ledgerctl search`: find decisions by any combination of the filters of
//! `GET /v1/search` (ingest::query::PARAMS), from a data dir or a running
//! ledgerd, printed as a table for people or (`--json`) as JSON lines.

use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::datadir::DataDir;
use crate::remote::Remote;

/// Options of `ledgerctl search`.
#[derive(clap::Args)]
pub struct SearchArgs {
    /// subject.id
    #[arg(long)]
    subject: Option<String>,
    /// Any actor id in the delegation chain.
    #[arg(long)]
    actor: Option<String>,
    /// resource.id
    #[arg(long)]
    resource: Option<String>,
    /// policy.id
    #[arg(long)]
    policy: Option<String>,
    /// policy.version (with --policy)
    #[arg(long)]
    version: Option<String>,
    /// context.request_id
    #[arg(long)]
    request_id: Option<String>,
    /// context.trace_id
    #[arg(long)]
    trace_id: Option<String>,
    /// context.parent_decision_id
    #[arg(long)]
    parent: Option<String>,
    /// credential.id_hash: the decisions that used this credential.
    #[arg(long)]
    credential: Option<String>,
    /// Only break-glass decisions.
    #[arg(long)]
    break_glass: bool,
    /// subject.identity_kind: human, service_account, workload, agent, device.
    #[arg(long)]
    identity_kind: Option<String>,
    /// subject.owner
    #[arg(long)]
    owner: Option<String>,
    /// enforcer.id (as the record declares it)
    #[arg(long)]
    enforcer: Option<String>,
    /// submitted_by (the writer as authenticated)
    #[arg(long)]
    submitted_by: Option<String>,
    /// action.name
    #[arg(long)]
    action: Option<String>,
    /// allow or deny
    #[arg(long)]
    decision: Option<String>,
    /// Record time at or after (RFC 3339).
    #[arg(long)]
    from: Option<String>,
    /// Record time before (RFC 3339).
    #[arg(long)]
    to: Option<String>,
    /// received_at at or after (RFC 3339).
    #[arg(long)]
    received_from: Option<String>,
    /// received_at before (RFC 3339).
    #[arg(long)]
    received_to: Option<String>,
    /// Only decisions in the checkpoint signed at this tree size (stable
    /// paging as the log grows).
    #[arg(long)]
    at: Option<u64>,
    /// Results at most (1 or more; a server answers at most its own limit).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    limit: u64,
    /// Continue after this leaf index (the previous page's cursor).
    #[arg(long)]
    cursor: Option<u64>,
    /// JSON lines (the record with index, leaf hash, received_at and
    /// submitted_by) instead of a table.
    #[arg(long)]
    json: bool,
}

impl SearchArgs {
    /// The filters given, as `GET /v1/search` names them.
    fn filters(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        for (k, v) in [
            ("subject", &self.subject),
            ("actor", &self.actor),
            ("resource", &self.resource),
            ("policy", &self.policy),
            ("version", &self.version),
            ("request_id", &self.request_id),
            ("trace_id", &self.trace_id),
            ("parent", &self.parent),
            ("credential", &self.credential),
            ("identity_kind", &self.identity_kind),
            ("owner", &self.owner),
            ("enforcer", &self.enforcer),
            ("submitted_by", &self.submitted_by),
            ("action", &self.action),
            ("decision", &self.decision),
            ("from", &self.from),
            ("to", &self.to),
            ("received_from", &self.received_from),
            ("received_to", &self.received_to),
        ] {
            if let Some(v) = v {
                p.push((k, v.clone()));
            }
        }
        if self.break_glass {
            p.push(("break_glass", "true".into()));
        }
        if let Some(at) = self.at {
            p.push(("at", at.to_string()));
        }
        p
    }
}

/// The table's columns: a heading and how a result fills it.
const COLUMNS: [&str; 9] = [
    "index",
    "received_at",
    "decision_id",
    "decision",
    "subject",
    "action",
    "resource",
    "policy",
    "enforcer",
];

/// One result as the table's cells, in the order of [`COLUMNS`]; record
/// text as [`verifier::shown::line`] shows it.
fn cells(r: &Value) -> [String; 9] {
    let rec = &r["record"];
    let s = |v: &Value| verifier::shown::line(v.as_str().unwrap_or("")).into_owned();
    [
        r["index"].to_string(),
        s(&r["received_at"]),
        s(&r["decision_id"]),
        s(&rec["decision"]),
        format!(
            "{} ({})",
            s(&rec["subject"]["id"]),
            s(&rec["subject"]["identity_kind"])
        ),
        s(&rec["action"]["name"]),
        s(&rec["resource"]["id"]),
        format!(
            "{}@{}",
            s(&rec["policy"]["id"]),
            s(&rec["policy"]["version"])
        ),
        format!(
            "{} {}",
            s(&rec["enforcer"]["kind"]),
            s(&rec["enforcer"]["id"])
        ),
    ]
}

/// The page as a table: every column as wide as its widest cell, the index
/// right-aligned, no trailing spaces.
fn table(results: &[Value]) -> String {
    let rows: Vec<[String; 9]> = std::iter::once(COLUMNS.map(String::from))
        .chain(results.iter().map(cells))
        .collect();
    let mut widths = [0usize; 9];
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = format!("{:>w$}", row[0], w = widths[0]);
        for (c, w) in row.iter().zip(widths).skip(1) {
            line.push_str(&format!("  {c:<w$}"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Prints one page: a table (or JSON lines) on stdout; on stderr, the tree
/// size searched and, when there is more, the flag that continues the query
/// (with `--at` given again, at the same size).
fn print(results: &[Value], next: Option<u64>, size: u64, args: &SearchArgs) {
    if args.json {
        for r in results {
            println!("{r}");
        }
    } else {
        print!("{}", table(results));
    }
    eprintln!("{} results in tree size {size}", results.len());
    if let Some(next) = next {
        let at = args.at.map_or(String::new(), |at| format!(" --at {at}"));
        eprintln!("more: --cursor {next}{at}");
    }
}

/// The search on a data dir.
pub fn run_local(dir: &DataDir, args: &SearchArgs) -> Result<()> {
    let filters = args.filters();
    let q = ingest::query::Query::from_params(filters.iter().map(|(k, v)| (*k, v.as_str())))
        .map_err(|e| anyhow::anyhow!(e))?;
    let log = Arc::new(dir.open()?);
    let indexes = ingest::Indexes::open(log.clone())?;
    let page = ingest::query::search(&indexes, &q, args.cursor, args.limit as usize)?;
    let results = page
        .indexes
        .iter()
        .map(|&i| -> Result<Value> {
            let j = verifier::json::logged_json(i, &log.entry(i)?)?;
            Ok(serde_json::from_str(&j)?)
        })
        .collect::<Result<Vec<_>>>()?;
    print(&results, page.next, page.size, args);
    Ok(())
}

/// The search against a running ledgerd.
pub fn run_remote(remote: &Remote, args: &SearchArgs) -> Result<()> {
    let mut query: Vec<String> = args
        .filters()
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::remote::encode(v)))
        .collect();
    query.push(format!("limit={}", args.limit));
    if let Some(c) = args.cursor {
        query.push(format!("cursor={c}"));
    }
    let body = remote.get_ok(&format!("/v1/search?{}", query.join("&")))?;
    let page: Value = serde_json::from_slice(&body).context("the answer is not JSON")?;
    let results = page["results"].as_array().cloned().unwrap_or_default();
    let size = page["size"]
        .as_u64()
        .context("the answer names no tree size")?;
    print(&results, page["next_cursor"].as_u64(), size, args);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(index: u64, id: &str, subject: &str) -> Value {
        serde_json::json!({
            "index": index,
            "received_at": "2026-12-05T11:08:31.620874794Z",
            "decision_id": id,
            "record": {
                "decision": "deny",
                "subject": {"id": subject, "identity_kind": "human"},
                "action": {"name": "GET /x"},
                "resource": {"id": "r"},
                "policy": {"id": "p", "version": "1"},
                "enforcer": {"kind": "gateway", "id": "gw"},
            },
        })
    }

    #[test]
    fn every_column_has_a_heading_and_lines_up() {
        let t = table(&[
            result(7, "short", "a@example.com"),
            result(123456789, "a-much-longer-decision-id", "b"),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        for heading in COLUMNS {
            assert!(lines[0].contains(heading), "{heading} in {}", lines[0]);
        }
        // Each column starts at the same offset on every line.
        for (heading, cell) in [
            ("decision ", "deny"),
            ("subject", "a@"),
            ("enforcer", "gateway"),
        ] {
            let at = lines[0].find(heading).unwrap();
            assert_eq!(lines[1].find(cell), Some(at), "{heading}: {t}");
        }
        assert_eq!(lines[2].find("b (human)"), lines[0].find("subject"), "{t}");
        // The index is right-aligned.
        assert!(lines[1].starts_with("        7  "), "{t}");
        assert!(t.lines().all(|l| l == l.trim_end()), "{t}");
    }

    #[test]
    fn record_text_cannot_break_a_row() {
        let t = table(&[result(1, "x\r\nforged", "s\u{1b}[2K")]);
        assert_eq!(t.lines().count(), 2, "{t}");
        assert!(
            t.contains("x\\u{d}\\u{a}forged") && t.contains("s\\u{1b}[2K"),
            "{t}"
        );
    }
}
