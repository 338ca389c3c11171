//! `ledgerctl search`: find decisions by any combination of the filters of
//! `GET /v1/search` (ingest::query::PARAMS), from a data dir or a running
//! ledgerd, printed as a table for people or (`--json`) as JSON lines.
//! With `--follow`, it then keeps printing the matching decisions as the
//! running ledgerd logs them, until stopped.

use std::sync::Arc;
use std::time::Duration;

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
    /// Anyone in the identity chain: subject.id, subject.owner or an actor
    /// id (every decision about a person).
    #[arg(long)]
    person: Option<String>,
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
    /// Record time at or after (RFC 3339, or back from now: 2h, 30m, 7d).
    #[arg(long, value_parser = crate::when::bound)]
    from: Option<String>,
    /// Record time before (RFC 3339, a span back from now, or `now`).
    #[arg(long, value_parser = crate::when::bound)]
    to: Option<String>,
    /// received_at at or after (RFC 3339, or back from now: 2h, 30m, 7d).
    #[arg(long, value_parser = crate::when::bound)]
    received_from: Option<String>,
    /// received_at before (RFC 3339, a span back from now, or `now`).
    #[arg(long, value_parser = crate::when::bound)]
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
    /// Then keep printing matching decisions as they are logged, until
    /// stopped (Ctrl-C): every one once, in log order, none missed (the
    /// search resumes after the last leaf searched). With --url; rides
    /// out a ledgerd restart.
    #[arg(long, short = 'f')]
    follow: bool,
    /// How often --follow asks for new decisions.
    #[arg(long, default_value = "1s", value_parser = crate::when::duration)]
    interval: Duration,
}

impl SearchArgs {
    /// The filters given, as `GET /v1/search` names them.
    fn filters(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        for (k, v) in [
            ("subject", &self.subject),
            ("actor", &self.actor),
            ("person", &self.person),
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
    if args.follow {
        anyhow::bail!(
            "--follow reads a running ledgerd's new decisions: give --url (and a reader --token)"
        );
    }
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

/// One page of `GET /v1/search`.
struct Page {
    results: Vec<Value>,
    next: Option<u64>,
    size: u64,
}

/// Why a page was not read: worth asking again (no answer, 5xx), or not
/// (the server refused the question: a bad filter, a token, a certificate).
enum PageError {
    Transient(anyhow::Error),
    Refused(anyhow::Error),
}

/// The page after `cursor`.
fn page(remote: &Remote, args: &SearchArgs, cursor: Option<u64>) -> Result<Page, PageError> {
    let mut query: Vec<String> = args
        .filters()
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::remote::encode(v)))
        .collect();
    query.push(format!("limit={}", args.limit));
    if let Some(c) = cursor {
        query.push(format!("cursor={c}"));
    }
    let path = format!("/v1/search?{}", query.join("&"));
    let r = remote
        .get(&path)
        .map_err(|e| match crate::remote::tls_refused(&e) {
            true => PageError::Refused(e),
            false => PageError::Transient(e),
        })?;
    if r.status != 200 {
        let e = anyhow::anyhow!("GET {path}: {} {}", r.status, r.text().trim());
        return Err(match r.status {
            500.. => PageError::Transient(e),
            _ => PageError::Refused(e),
        });
    }
    let read = || -> Result<Page> {
        let page: Value = serde_json::from_slice(&r.body).context("the answer is not JSON")?;
        Ok(Page {
            results: page["results"].as_array().cloned().unwrap_or_default(),
            next: page["next_cursor"].as_u64(),
            size: page["size"]
                .as_u64()
                .context("the answer names no tree size")?,
        })
    };
    read().map_err(PageError::Refused)
}

/// The search against a running ledgerd.
pub fn run_remote(remote: &Remote, args: &SearchArgs) -> Result<()> {
    if args.follow {
        return follow(remote, args);
    }
    let p = page(remote, args, args.cursor)
        .map_err(|(PageError::Transient(e) | PageError::Refused(e))| e)?;
    print(&p.results, p.next, p.size, args);
    Ok(())
}

/// `--follow`: the matches logged so far, then each new one as it is
/// logged. Every page ends at a tree size the server searched in full
/// (only leaves whose index terms are in place), so resuming after the
/// last leaf of that size misses none and repeats none.
fn follow(remote: &Remote, args: &SearchArgs) -> Result<()> {
    if args.at.is_some() {
        anyhow::bail!(
            "--follow reads decisions as they are logged, --at pins the search to one tree size: give one of them"
        );
    }
    eprintln!(
        "following {}: matching decisions as they are logged (Ctrl-C to stop)",
        remote.base()
    );
    let (mut cursor, mut heading) = (args.cursor, !args.json);
    let mut failing = false;
    loop {
        match page(remote, args, cursor) {
            Ok(p) => {
                if std::mem::take(&mut failing) {
                    eprintln!("ledgerd answers again; following");
                }
                if args.json {
                    for r in &p.results {
                        println!("{r}");
                    }
                } else if !p.results.is_empty() {
                    let t = table(&p.results);
                    let skip = if heading { 0 } else { 1 };
                    for line in t.lines().skip(skip) {
                        println!("{line}");
                    }
                    heading = false;
                }
                match p.next {
                    // More already there: no wait.
                    Some(next) => {
                        cursor = Some(next);
                        continue;
                    }
                    None if p.size > 0 => {
                        cursor = Some(cursor.map_or(p.size - 1, |c| c.max(p.size - 1)))
                    }
                    None => {}
                }
            }
            Err(PageError::Refused(e)) => return Err(e),
            Err(PageError::Transient(e)) => {
                if !failing {
                    eprintln!("{e:#}; asking again every {:?}", args.interval);
                    failing = true;
                }
            }
        }
        std::thread::sleep(args.interval);
    }
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
