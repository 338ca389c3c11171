//! `ledgerctl ship`: stream decision records to ledgerd, JSON lines or CBOR
//! (a sequence, or single records), in batches, retrying while the server
//! asks to back off.

use std::io::{IsTerminal, Read};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::remote::Remote;

/// Records per request.
const BATCH: usize = 500;
/// Attempts per batch while the server is busy or unreachable.
const ATTEMPTS: u32 = 10;

pub(crate) enum Records {
    Json(Vec<String>),
    Cbor(Vec<Vec<u8>>),
}

pub(crate) fn read_input(name: &str) -> Result<Vec<u8>> {
    if name == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading stdin")?;
        Ok(buf)
    } else {
        std::fs::read(name).with_context(|| format!("reading {name}"))
    }
}

/// JSON when the first non-space byte is `{` or `[`, otherwise CBOR.
pub(crate) fn split(name: &str, data: &[u8]) -> Result<Records> {
    let first = data.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => Ok(Records::Json(vec![])),
        Some(b'[') => {
            let v: Vec<Value> = serde_json::from_slice(data)
                .with_context(|| format!("{name}: not a JSON array"))?;
            Ok(Records::Json(v.iter().map(Value::to_string).collect()))
        }
        Some(b'{') => {
            // One record (pretty-printed or not), else JSON lines.
            if let Ok(one) = serde_json::from_slice::<Value>(data) {
                return Ok(Records::Json(vec![one.to_string()]));
            }
            let text = std::str::from_utf8(data).with_context(|| format!("{name}: not UTF-8"))?;
            let lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            Ok(Records::Json(lines.map(str::to_string).collect()))
        }
        Some(_) => {
            let mut rest = data;
            let mut items = Vec::new();
            while !rest.is_empty() {
                let before = rest.len();
                verifier::cbor::decode_next(&mut rest)
                    .with_context(|| format!("{name}: CBOR item {} is malformed", items.len()))?;
                let used = before - rest.len();
                let start = data.len() - before;
                items.push(data[start..start + used].to_vec());
            }
            Ok(Records::Cbor(items))
        }
    }
}

#[derive(Default)]
struct Totals {
    appended: u64,
    duplicate: u64,
    conflict: u64,
    rejected: u64,
}

fn send(remote: &Remote, content_type: &str, body: &[u8], totals: &mut Totals) -> Result<()> {
    let mut wait = Duration::from_millis(200);
    for attempt in 1..=ATTEMPTS {
        let reply = match remote.post("/v1/decisions", content_type, body) {
            Ok(r) => r,
            Err(e) if attempt < ATTEMPTS => {
                eprintln!("\nledgerctl ship: {e:#}; retrying");
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(5));
                continue;
            }
            Err(e) => return Err(e),
        };
        match reply.status {
            429 | 503 if attempt < ATTEMPTS => {
                std::thread::sleep(reply.retry_after.map_or(wait, Duration::from_secs));
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            200 | 400 | 409 => {
                let j: Value = serde_json::from_slice(&reply.body)
                    .with_context(|| format!("unexpected answer: {}", reply.text()))?;
                let Some(results) = j["results"].as_array() else {
                    bail!(
                        "server refused the request: {}",
                        j["error"].as_str().unwrap_or(&reply.text())
                    );
                };
                for r in results {
                    match r["status"].as_str() {
                        Some("appended") => totals.appended += 1,
                        Some("duplicate") => totals.duplicate += 1,
                        Some(s @ ("conflict" | "rejected")) => {
                            if s == "conflict" {
                                totals.conflict += 1;
                            } else {
                                totals.rejected += 1;
                            }
                            eprintln!(
                                "\n{s}: {} {}",
                                r["decision_id"],
                                r["reason"].as_str().unwrap_or("")
                            );
                        }
                        _ => bail!("unexpected result {r}"),
                    }
                }
                return Ok(());
            }
            s => bail!("server answered {s}: {}", reply.text().trim()),
        }
    }
    bail!("server still busy after {ATTEMPTS} attempts")
}

pub fn run(remote: &Remote, inputs: &[String]) -> Result<()> {
    let tty = std::io::stderr().is_terminal();
    let mut totals = Totals::default();
    for name in inputs {
        let data = read_input(name)?;
        let (kind, batches): (&str, Vec<Vec<u8>>) = match split(name, &data)? {
            Records::Json(lines) => (
                "application/json",
                lines
                    .chunks(BATCH)
                    .map(|c| format!("[{}]", c.join(",")).into_bytes())
                    .collect(),
            ),
            Records::Cbor(items) => (
                "application/cbor-seq",
                items.chunks(BATCH).map(|c| c.concat()).collect(),
            ),
        };
        for (i, body) in batches.iter().enumerate() {
            send(remote, kind, body, &mut totals)?;
            if tty {
                eprint!(
                    "\r{name}: batch {}/{} ({} appended)",
                    i + 1,
                    batches.len(),
                    totals.appended
                );
            }
        }
        if tty {
            eprintln!();
        }
    }
    println!(
        "shipped: {} appended, {} duplicate, {} conflict, {} rejected",
        totals.appended, totals.duplicate, totals.conflict, totals.rejected
    );
    if totals.rejected + totals.conflict > 0 {
        bail!(
            "{} records were not logged",
            totals.rejected + totals.conflict
        );
    }
    Ok(())
}
