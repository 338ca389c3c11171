//! `ledgerctl status`: a running ledgerd at a glance, for the person on
//! call without a dashboard. Read from `/readyz`, `/checkpoint` and
//! `/metrics`: whether it is ready; the log's size and its newest
//! checkpoint (how old, verified with the log key when one is at hand, how
//! many keys signed it); the witnesses; the queue and the indexes; each
//! writer's records and last write; what was refused.
//!
//! While ledgerd opens its store, what it is doing (building its
//! indexes from the leaves, how far) and nothing else.
//!
//! Exit 1 when something needs a person, each named on a line starting
//! `attention:` (not ready or still starting; the tree grew and no checkpoint for 30 s; a
//! witness behind the newest checkpoint; a writer silent for longer than
//! `--silent-after`; retention failing; damaged data met), else 0.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use verifier::VerifierKey;

use crate::remote::{Metrics, Remote};

/// Options of `ledgerctl status`.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// A writer that wrote since ledgerd started and has been silent this
    /// long needs attention (`15m`, `1h`).
    #[arg(long, default_value = "15m", value_parser = crate::when::duration)]
    silent_after: Duration,
}

/// The checkpoint age past which an unsigned grown tree needs attention.
const CHECKPOINT_BEHIND_S: f64 = 30.0;

/// The share of its disk free below which the data dir needs attention.
const DISK_LOW: f64 = 0.05;

/// "812 MiB", "3.4 GiB".
fn bytes(n: f64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    match n {
        n if n < GIB => format!("{:.0} MiB", n / (1u64 << 20) as f64),
        n => format!("{:.1} GiB", n / GIB),
    }
}

/// `name{label="value"} number` samples of one metric: (value, number).
fn labelled(m: &str, name: &str) -> Vec<(String, f64)> {
    m.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix('{')?;
            let (labels, value) = rest.rsplit_once("} ")?;
            let (_, quoted) = labels.split_once("=\"")?;
            let label = quoted
                .strip_suffix('"')?
                .replace("\\\"", "\"")
                .replace("\\n", "\n")
                .replace("\\\\", "\\");
            Some((label, value.trim().parse().ok()?))
        })
        .collect()
}

/// "3 s", "4 min", "2 h" ago.
fn ago(secs: f64) -> String {
    match secs.max(0.0) {
        s if s < 120.0 => format!("{s:.0} s ago"),
        s if s < 7200.0 => format!("{:.0} min ago", s / 60.0),
        s => format!("{:.1} h ago", s / 3600.0),
    }
}

/// Prints the status; `Ok(false)` when something needs attention.
pub fn run(remote: &Remote, key: Option<&VerifierKey>, args: &StatusArgs) -> Result<bool> {
    let mut attention = Vec::new();
    let ready = remote.get("/readyz")?;
    println!(
        "ledgerd at {}: {}",
        remote.base(),
        if ready.status == 200 {
            "ready".to_string()
        } else {
            format!("NOT ready ({} {})", ready.status, ready.text().trim())
        }
    );
    if ready.status != 200 {
        attention.push("ledgerd is not ready".to_string());
    }
    // Still opening its store (building its indexes from the leaves):
    // nothing else is answered yet.
    let m = remote.metrics()?;
    if m.get("ledger_starting") > 0.0 {
        // "starting: <what it does>, (leaf <n> of <size>)"
        println!("{}", remote.get("/healthz")?.text().trim());
        for a in &attention {
            println!("attention: {a}");
        }
        return Ok(false);
    }
    let text = remote.get_ok("/checkpoint")?;
    let signed = String::from_utf8_lossy(&text).into_owned();
    let body_end = signed.find("\n\n").unwrap_or(signed.len());
    let origin = signed.lines().next().unwrap_or("?");
    let lines = signed[body_end..]
        .lines()
        .filter(|l| l.starts_with("— ") && l.contains(&format!(" {origin} ")))
        .count();
    let verified = match key {
        Some(k) => match verifier::checkpoint::open(&text, k) {
            Ok(_) => format!("verified with {}", k),
            Err(e) => {
                attention.push(format!("the checkpoint does not verify with {k}: {e}"));
                format!("does NOT verify with {k}")
            }
        },
        None => "not verified (give --key)".to_string(),
    };
    let metrics = Metrics::text(&m);
    let (size, cp_size, age) = (
        m.get("ledger_tree_size"),
        m.get("ledger_checkpoint_size"),
        m.get("ledger_checkpoint_age_seconds"),
    );
    println!("log {origin}: {size} entries");
    let first_kept = m.get("ledger_first_kept_leaf");
    if first_kept > 0.0 {
        println!("retention: the entries of leaves below {first_kept} were removed (their hashes are kept)");
    }
    let erased = m.get("ledger_erasures_total");
    if erased > 0.0 {
        println!(
            "erasures: {erased} decision{} erased since ledgerd started, each with its record of who asked and why (ledgerctl search --action ledger.erase)",
            if erased == 1.0 { "" } else { "s" }
        );
    }
    let held = m.get("ledger_retention_held_since_seconds");
    if held > 0.0 {
        let since = verifier::timestamp::Timestamp::from_unix_nanos(held as u64 * 1_000_000_000)
            .map_or_else(|| format!("{held}"), |t| t.canonical());
        println!("retention: held by a legal hold: decisions received since {since} are kept (ledgerctl hold list)");
    }
    if m.get("ledger_indexes_marked_damaged") > 0.0 {
        let failed = m.get("ledger_index_rebuilds_failed_total");
        attention.push(format!(
            "the indexes are damaged: ledgerd rebuilds them from the leaves while it runs (lookups that meet the damage fail until the new ones are in place){}",
            if failed > 0.0 {
                format!("; {failed} rebuilds failed: its log says why, and each is tried again a minute later")
            } else {
                String::new()
            }
        ));
    }
    let damaged = m.get("ledger_storage_damaged_total");
    if damaged > 0.0 {
        attention.push(format!(
            "damaged data found in the store {damaged} times since ledgerd started (its reads, and indexes rebuilt at its start): its log names the store and what to do (docs/operations.md, \"Damaged files\"); check the disk"
        ));
    }
    if m.get("ledger_retention_failing") > 0.0 {
        attention.push(
            "retention is failing (see ledgerd's log): decisions past the retention period are kept until a pass succeeds"
                .to_string(),
        );
    }
    println!(
        "checkpoint: size {cp_size}, signed {} by {lines} log key{}, {verified}",
        ago(age),
        if lines == 1 { "" } else { "s" }
    );
    if size > cp_size && age > CHECKPOINT_BEHIND_S {
        attention.push(format!(
            "the tree is at {size} but the newest checkpoint, of {cp_size}, was signed {}",
            ago(age)
        ));
    }
    let cosigned = labelled(metrics, "ledger_witness_cosigned_size");
    let failures = labelled(metrics, "ledger_witness_failures_total");
    if cosigned.is_empty() {
        println!("witnesses: none");
    }
    for (name, at) in &cosigned {
        let failed = failures
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |f| f.1);
        println!("witness {name}: cosigned size {at}, {failed} failed requests");
        if *at < cp_size {
            attention.push(format!(
                "witness {name} has cosigned size {at}, not the newest checkpoint ({cp_size})"
            ));
        }
    }
    println!(
        "queue: {} records; indexes: {} leaves not built yet{}",
        m.get("ledger_queue_depth"),
        m.get("ledger_index_unbuilt_leaves"),
        if m.get("ledger_indexes_rebuilding") > 0.0 {
            format!(
                "; damaged indexes being rebuilt beside, up to leaf {} of {}",
                m.get("ledger_index_rebuilt_to_leaf"),
                m.get("ledger_tree_size") - m.get("ledger_index_unbuilt_leaves")
            )
        } else {
            String::new()
        }
    );
    let (scrub_every, scrubbed) = (
        m.get("ledger_scrub_interval_seconds"),
        m.get("ledger_scrub_last_completed_timestamp_seconds"),
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    if m.get("ledger_compactions_owed") > 0.0 {
        println!(
            "compactions: {} taking removed bytes off the disk, not yet run to their end",
            m.get("ledger_compactions_owed")
        );
    }
    if m.get("ledger_scrub_running") > 0.0 {
        println!(
            "scrub: running, {} read",
            bytes(m.get("ledger_scrub_read_bytes"))
        );
    }
    match (scrub_every > 0.0, scrubbed > 0.0) {
        (false, _) => println!("scrub: off"),
        (true, false) => println!("scrub: not completed yet"),
        (true, true) => {
            println!("scrub: last read the whole store {}", ago(now - scrubbed));
            if now - scrubbed > 2.0 * scrub_every {
                attention.push(format!(
                    "the store was last scrubbed whole {}, over two intervals: see ledgerd's log",
                    ago(now - scrubbed)
                ));
            }
        }
    }
    let (free, disk) = (
        m.get("ledger_data_disk_available_bytes"),
        m.get("ledger_data_disk_size_bytes"),
    );
    if disk > 0.0 {
        println!(
            "disk: {} free of {} ({:.1}%) where the data dir is",
            bytes(free),
            bytes(disk),
            100.0 * free / disk
        );
        if free < disk * DISK_LOW {
            attention.push(format!(
                "the data dir's disk has {} free ({:.1}%): writes are answered 507 once it is full; free space or grow the disk",
                bytes(free),
                100.0 * free / disk
            ));
        }
    }
    let last = labelled(metrics, "ledger_writer_last_write_timestamp_seconds");
    let appended = labelled(metrics, "ledger_writer_records_appended_total");
    if last.is_empty() {
        println!("writers: none since ledgerd started");
    }
    for (who, at) in &last {
        let n = appended.iter().find(|(w, _)| w == who).map_or(0.0, |a| a.1);
        let silent = now - at;
        println!(
            "writer {}: {n} records appended, last write {}",
            verifier::shown::line(who),
            ago(silent)
        );
        if silent > args.silent_after.as_secs_f64() {
            attention.push(format!(
                "writer {} has sent nothing for {}",
                verifier::shown::line(who),
                ago(silent).trim_end_matches(" ago")
            ));
        }
    }
    println!(
        "signed records: {} enforcer keys registered, {} signed records checked",
        m.get("ledger_enforcer_keys"),
        m.get("ledger_records_signed_total")
    );
    println!(
        "refused: {} records rejected by the checks, {} requests over a token's rate, {} connections over the cap, {} failed TLS handshakes",
        m.get("ledger_records_rejected_total"),
        m.get("ledger_requests_over_rate_total"),
        m.get("ledger_connections_refused_total"),
        m.get("ledger_tls_handshakes_failed_total")
    );
    println!(
        "memory: {:.0} MiB resident",
        m.get("process_resident_memory_bytes") / (1 << 20) as f64
    );
    for a in &attention {
        println!("attention: {a}");
    }
    Ok(attention.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labelled_samples_are_read_with_their_label() {
        let m = "# HELP x y\nledger_writer_records_appended_total{submitted_by=\"gw-1\"} 12\n\
                 ledger_writer_records_appended_total{submitted_by=\"a\\\"b\\\\\"} 3\n\
                 ledger_writer_records_appended_totalx{submitted_by=\"no\"} 1\n";
        assert_eq!(
            labelled(m, "ledger_writer_records_appended_total"),
            vec![("gw-1".to_string(), 12.0), ("a\"b\\".to_string(), 3.0)]
        );
    }

    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!(ago(3.2), "3 s ago");
        assert_eq!(ago(600.0), "10 min ago");
        assert_eq!(ago(9000.0), "2.5 h ago");
    }
}
