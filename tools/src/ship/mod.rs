//! `ledgerctl ship`: stream decision records to ledgerd, JSON lines or CBOR
//! (a sequence, or single records), in batches read as they are sent
//! ([`input::batches`]), retrying while the server asks to back off; with
//! `--follow`, a file an enforcer keeps appending to ([`follow`]).

pub mod follow;
mod rotated;

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;
use verifier::SignerKey;

use crate::input;
use crate::remote::Remote;

/// Records per request.
pub(crate) const BATCH: usize = 500;
/// Attempts per batch while the server is busy or unreachable.
const ATTEMPTS: u32 = 10;

/// What became of the records shipped.
#[derive(Default)]
struct Totals {
    appended: u64,
    duplicate: u64,
    conflict: u64,
    rejected: u64,
}

/// Sends one body of records and counts what became of them, asking again
/// while the server is unreachable or busy, `attempts` times in all (or
/// for as long as it takes, without a number).
fn send(
    remote: &Remote,
    content_type: &str,
    body: &[u8],
    totals: &mut Totals,
    attempts: Option<u32>,
) -> Result<()> {
    let mut wait = Duration::from_millis(200);
    let attempts = attempts.unwrap_or(u32::MAX);
    for attempt in 1..=attempts {
        let reply = match remote.post("/v1/decisions", content_type, body) {
            Ok(r) => r,
            // Unreachable: asked again; refused for a certificate: not.
            Err(e) if attempt < attempts && !crate::remote::tls_refused(&e) => {
                // A handshake refused while the body was being written
                // shows as a broken pipe: a request without a body tells.
                if let Err(probe) = remote.get("/healthz") {
                    if crate::remote::tls_refused(&probe) {
                        return Err(probe);
                    }
                }
                eprintln!(
                    "\nledgerctl ship: {}; retrying",
                    verifier::shown::error(e.as_ref())
                );
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(5));
                continue;
            }
            Err(e) => return Err(e),
        };
        match reply.status {
            429 | 503 | 507 if attempt < attempts => {
                std::thread::sleep(reply.retry_after.map_or(wait, Duration::from_secs));
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            200 | 400 | 409 => {
                let j: Value = serde_json::from_slice(&reply.body)
                    .with_context(|| format!("unexpected answer: {}", reply.text()))?;
                let Some(results) = j["results"].as_array() else {
                    bail!("server refused the request: {}", reply.error_text());
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
    bail!("server still busy after {attempts} attempts")
}

/// `ledgerctl ship`: `inputs` shipped ([`run`]), or with `follow` the one
/// file given followed ([`follow::run`]), its position kept in `state`
/// (default `<file>.shipped`).
pub fn command(
    remote: &Remote,
    inputs: &[String],
    signer: Option<&SignerKey>,
    follow: bool,
    state: Option<std::path::PathBuf>,
) -> Result<()> {
    match (follow, inputs) {
        (false, _) => run(remote, inputs, signer),
        (true, [one]) if one != "-" => {
            let path = std::path::PathBuf::from(one);
            let state = state.unwrap_or_else(|| follow::default_state(&path));
            follow::run(remote, &path, &state, signer)
        }
        (true, _) => bail!("--follow follows one file (not stdin): give one path"),
    }
}

/// Ships `inputs`; with `signer`, each record signed by it on the way
/// (`--signing-key`, specs/signed-record.md).
pub fn run(remote: &Remote, inputs: &[String], signer: Option<&SignerKey>) -> Result<()> {
    let tty = std::io::stderr().is_terminal();
    let mut totals = Totals::default();
    for name in inputs {
        let mut sent = 0u64;
        let each = |r: input::Record, position: u64| match signer {
            None => Ok(r),
            Some(signer) => Ok(input::Record::Cbor(crate::enforcer::sign_record(
                signer, &r, position,
            )?)),
        };
        input::batches(name, input::open(name)?, BATCH, each, |(kind, body)| {
            send(remote, kind, &body, &mut totals, Some(ATTEMPTS))?;
            sent += 1;
            if tty {
                eprint!("\r{name}: batch {sent} ({} appended)", totals.appended);
            }
            Ok(())
        })?;
        if tty {
            eprintln!();
        }
    }
    println!(
        "shipped: {} appended, {} duplicate, {} conflict, {} rejected",
        totals.appended, totals.duplicate, totals.conflict, totals.rejected
    );
    match totals.rejected + totals.conflict {
        0 => {}
        1 => bail!("1 record was not logged"),
        n => bail!("{n} records were not logged"),
    }
    Ok(())
}
