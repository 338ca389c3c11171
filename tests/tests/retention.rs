//! Retention end to end: `ledgerd --retention` and `ledgerctl prune`
//! remove the entries of old decisions and keep the tree: pruned entries
//! answer 410 or are not found, kept decisions are found and proven as
//! before, audits pass through the kept hashes; the ledger logs a
//! retention record naming the first kept leaf, and an export window
//! reaching back past the kept leaves stands on it: complete from there.

use std::path::Path;
use std::time::Duration;

use ledger_tests::{now, ok, records, records_now, refused, run, wait_until, Server};

/// Old decisions: eleven whole entry bundles and part of a twelfth, which
/// holds the newest leaf and so stays.
const OLD: usize = 3_000;
const BATCH: usize = 1_000;

/// Writes the `OLD` decisions `old<b>-<i>` as JSON lines to `path`.
fn old_records(path: &Path) {
    let mut text = String::new();
    for b in 0..OLD / BATCH {
        for r in records(&format!("old{b}"), BATCH).as_array().unwrap() {
            text.push_str(&r.to_string());
            text.push('\n');
        }
    }
    std::fs::write(path, text).unwrap();
}

/// A data dir in `dir` for the log `origin`, made by `ledgerctl keygen`,
/// holding the `OLD` decisions appended by `ledgerctl append`.
fn old_data_dir(dir: &Path, origin: &str) -> std::path::PathBuf {
    let data = dir.join("data");
    let d = data.to_str().unwrap();
    ok(
        "ledgerctl",
        &["--data", d, "keygen", "--origin", origin, "--out", d],
    );
    let file = dir.join("old.jsonl");
    old_records(&file);
    ok(
        "ledgerctl",
        &["--data", d, "append", file.to_str().unwrap()],
    );
    data
}

fn get(s: &Server, path: &str) -> (u16, String) {
    let auth = format!("Bearer {}", s.reader);
    let r = s.request("GET", path, &[("Authorization", &auth)], b"");
    (r.status, r.text())
}

#[test]
fn ledgerd_removes_the_entries_of_decisions_past_its_retention() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let s = Server::start_in(&data, &["--retention", "4s"]);
    let key = s.data.join("log.pub");
    let key = key.to_str().unwrap();
    for b in 0..OLD / BATCH {
        s.append(&records(&format!("old{b}"), BATCH));
    }
    wait_until("a checkpoint of the old decisions", || {
        s.metric("ledger_checkpoint_size") as usize >= OLD
    });
    let before = s.ctl(key, &["checkpoint"]);
    assert!(get(&s, "/tile/entries/000").0 == 200);
    // A mirror that holds the old entries before the log removes them.
    let url = format!("http://{}", s.addr);
    let mirror = |m: &str, extra: &[&str]| {
        let mut args = vec!["--url", &url, "--key", key, "--data", m, "mirror", "--once"];
        args.extend_from_slice(extra);
        run("ledgerctl", &args)
    };
    let early = home.path().join("early-mirror");
    let early = early.to_str().unwrap();
    assert_eq!(mirror(early, &[]).code, 0);
    // Past the retention, with decisions received since.
    std::thread::sleep(Duration::from_secs(4));
    s.append(&records_now("new", 10));
    // In whole bundles of 256, up to the newest's (over one pass or more,
    // as the old decisions pass the horizon).
    wait_until("retention removes the old entries", || {
        s.metric("ledger_first_kept_leaf") == 2_816.0
    });
    // The ledger logs its record of the first kept leaf (one for each
    // first kept leaf a pass moved to).
    wait_until("the retention record of leaf 2816", || {
        s.ctl(key, &["search", "--action", "ledger.retain", "--json"])
            .contains("ledger-retention-2816")
    });
    let size = s.tree_size();
    // A retry of a removed decision cannot be told from a new one by its
    // id, gone with its entry: it is refused, as decided before the first
    // kept decision was received, and nothing is appended.
    let retry = records("old0", 6)[5].clone();
    let r = s.post(&s.writer, &retry);
    assert!(
        r.text().contains("\"rejected\":1")
            && r.text()
                .contains("when the first decision this ledger keeps was received"),
        "{}",
        r.text()
    );
    assert_eq!(s.tree_size(), size);

    // Entries and ids are gone; the hashes are served as before.
    let (status, text) = get(&s, "/tile/entries/000");
    assert_eq!(status, 410, "{text}");
    assert!(text.contains("removed by the log's retention"), "{text}");
    assert_eq!(get(&s, "/tile/0/000").0, 200);
    let (status, text) = get(&s, "/v1/decisions/old0-5");
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("removed by retention"), "{text}");
    // old2-816 is leaf 2,816: the first kept.
    let (status, text) = get(&s, "/v1/decisions/old2-816");
    assert_eq!(status, 200, "{text}");
    let found = s.ctl(key, &["search", "--subject", "u1", "--json"]);
    let indexes: Vec<u64> = found
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["index"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(
        !indexes.is_empty() && indexes.iter().all(|&i| i >= 2_816),
        "{indexes:?}"
    );

    // Kept decisions are proven; the log is audited through the hashes;
    // the checkpoint from before the prune is consistent with the newest.
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("e.evidence");
    s.ctl(key, &["evidence", "new-3", "--out", ev.to_str().unwrap()]);
    ok(
        "ledger-verify",
        &["evidence", ev.to_str().unwrap(), "--key", key],
    );
    let status = s.ctl(key, &["status"]);
    assert!(
        status.contains("retention: the entries of leaves below 2816 were removed"),
        "{status}"
    );
    let audit = s.ctl(key, &["audit"]);
    assert!(audit.contains("audit OK"), "{audit}");
    assert!(
        audit.contains("the first 2816 leaves' entries were removed")
            && audit.contains("the ledger's retention record at leaf")
            && audit.contains("names leaf 2816, the first kept, by its hash"),
        "{audit}"
    );
    let old_size: u64 = before.lines().nth(1).unwrap().parse().unwrap();
    let (status, text) = get(
        &s,
        &format!("/v1/proof/consistency?from={old_size}&to={}", s.tree_size()),
    );
    assert_eq!(status, 200, "{text}");

    // An export reaching back past the kept leaves is complete from the
    // first kept leaf, and says what retention removed before it.
    let out = dir.path().join("export");
    let out = out.to_str().unwrap();
    s.ctl(
        key,
        &["export", "--from", "1h", "--to", "now", "--out", out],
    );
    let verdict = ok("ledger-verify", &["export", out, "--key", key]);
    assert!(
        verdict.contains("complete from leaf 2816, the first the log keeps")
            && verdict.contains("were removed by retention, as the ledger's record at leaf")
            && verdict.contains("(ledgerd at"),
        "{verdict}"
    );

    // A mirror started now keeps the pruned bundles' hashes, is audited
    // through them, and restores a store pruned as the log is.
    let m = dir.path().join("mirror");
    let m = m.to_str().unwrap();
    let synced = mirror(m, &[]);
    assert!(
        synced.stdout.contains("checkpoint verified"),
        "{}",
        synced.stderr
    );
    assert!(Path::new(m).join("tile/0/000").exists());
    assert!(!Path::new(m).join("tile/entries/000").exists());
    let partial = format!("tile/entries/011.p/{}", size - 2_816);
    assert!(Path::new(m).join(&partial).exists());
    let audit = ok("ledgerctl", &["audit", "--mirror", m, "--key", key]);
    assert!(
        audit.contains("the first 2816 leaves' entries were removed"),
        "{audit}"
    );
    let verified = ok("ledger-verify", &["mirror", "--key", key, m]);
    assert!(
        verified.contains("OK: mirror of")
            && verified.contains("the first 2816 leaves' entries were removed"),
        "{verified}"
    );
    let restored = dir.path().join("restored");
    let r = restored.to_str().unwrap();
    ok("ledgerctl", &["--data", r, "restore", "--mirror", m]);
    let audit = ok("ledgerctl", &["--data", r, "audit"]);
    assert!(
        audit.contains("the first 2816 leaves' entries were removed"),
        "{audit}"
    );
    std::fs::copy(data.join("log.key"), restored.join("log.key")).unwrap();
    let found = ok("ledgerctl", &["--data", r, "decision", "new-3"]);
    assert!(found.contains("new-3"), "{found}");
    // It holds the log's retention record too: an export reaching back
    // past the kept leaves is complete from the first of them.
    let again = dir.path().join("export-restored");
    let again = again.to_str().unwrap();
    ok(
        "ledgerctl",
        &[
            "--data", r, "export", "--from", "1h", "--to", "now", "--out", again,
        ],
    );
    let verdict = ok("ledger-verify", &["export", again, "--key", key]);
    assert!(
        verdict.contains("complete from leaf 2816, the first the log keeps"),
        "{verdict}"
    );
    let gone = run("ledgerctl", &["--data", r, "decision", "old0-5"]);
    assert!(
        gone.code != 0 && gone.stderr.contains("removed by retention"),
        "{}",
        gone.stderr
    );

    // The early mirror keeps its entries unless asked to follow the log's
    // retention, and then only entries whose hashes are the log's.
    assert_eq!(mirror(early, &[]).code, 0);
    let early = Path::new(early);
    assert!(early.join("tile/entries/000").exists());
    let second = early.join("tile/entries/001");
    let held = std::fs::read(&second).unwrap();
    let mut changed = held.clone();
    changed[10] ^= 1;
    std::fs::write(&second, changed).unwrap();
    let r = mirror(early.to_str().unwrap(), &["--prune"]);
    assert!(
        r.code != 0
            && r.stderr
                .contains("are not those of the entries this mirror holds"),
        "{}",
        r.stderr
    );
    assert!(second.exists());
    std::fs::write(&second, held).unwrap();
    let r = mirror(early.to_str().unwrap(), &["--prune"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("removed the entries of leaves 256..2816"),
        "{}",
        r.stdout
    );
    assert!(!early.join("tile/entries/000").exists() && early.join("tile/0/000").exists());
    assert!(!second.exists() && early.join(&partial).exists());
    let audit = ok(
        "ledgerctl",
        &["audit", "--mirror", early.to_str().unwrap(), "--key", key],
    );
    assert!(
        audit.contains("the first 2816 leaves' entries were removed"),
        "{audit}"
    );

    // After a restart without retention, what was removed stays removed.
    let size = s.tree_size();
    let reader = s.reader.clone();
    s.stop();
    let mut s = Server::start_in(&data, &[]);
    s.reader = reader;
    assert_eq!(s.tree_size(), size);
    assert_eq!(s.metric("ledger_first_kept_leaf"), 2_816.0);
    assert_eq!(get(&s, "/tile/entries/000").0, 410);
    assert_eq!(get(&s, "/v1/decisions/new-3").0, 200);
}

#[test]
fn ledgerctl_prune_removes_old_entries_from_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = old_data_dir(dir.path(), "prune.example/log");
    let d = data.to_str().unwrap();

    refused(
        "ledgerctl",
        &["--data", d, "prune", "--before", "last week"],
        "RFC 3339",
    );
    // A legal hold over everything: nothing is removed, and it says why.
    let placed = place_hold(d, "1h", "audit 2026");
    let id = placed.split_whitespace().nth(2).unwrap().to_string();
    let held = ok("ledgerctl", &["--data", d, "prune", "--before", "now"]);
    assert!(
        held.contains("nothing to remove")
            && held.contains(&format!("legal hold {id} (audit 2026)")),
        "{held}"
    );
    ok("ledgerctl", &["--data", d, "hold", "release", &id]);
    let out = ok("ledgerctl", &["--data", d, "prune", "--before", "now"]);
    assert!(
        out.contains("removed the entries of leaves 0..2816"),
        "{out}"
    );
    assert!(out.contains("the first kept leaf is 2816"), "{out}");
    assert!(out.contains("are kept for now"), "{out}");
    assert!(
        out.contains("logged the retention record of first kept leaf 2816 at leaf 3000"),
        "{out}"
    );
    let again = ok("ledgerctl", &["--data", d, "prune", "--before", "now"]);
    assert!(
        again.contains("nothing to remove") && !again.contains("logged"),
        "{again}"
    );
    let audit = ok("ledgerctl", &["--data", d, "audit"]);
    assert!(
        audit.contains("audit OK: 185 entries rehashed")
            && audit.contains(
                "the ledger's retention record at leaf 3000 names leaf 2816, the first kept, by its hash"
            ),
        "{audit}"
    );
    // An export from before the first kept leaf, complete from it.
    let out = dir.path().join("export");
    ok(
        "ledgerctl",
        &[
            "--data",
            d,
            "export",
            "--from",
            "1h",
            "--to",
            "now",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let key = data.join("log.pub");
    let verdict = ok(
        "ledger-verify",
        &[
            "export",
            out.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert!(
        verdict.contains("complete from leaf 2816, the first the log keeps: 185 decisions")
            && verdict.contains("(ledgerctl prune at"),
        "{verdict}"
    );
    assert!(
        audit.contains("the first 2816 leaves' entries were removed"),
        "{audit}"
    );
    let r = run("ledgerctl", &["--data", d, "decision", "old0-1"]);
    assert!(
        r.code != 0 && r.stderr.contains("removed by retention"),
        "{}",
        r.stderr
    );
    let kept = ok("ledgerctl", &["--data", d, "decision", "old2-999"]);
    assert!(
        kept.contains("\"index\":2999") || kept.contains("2999"),
        "{kept}"
    );
}

/// The data dir `data` opened as ledgerd opens it, its compactions
/// stopped (a ledgerd stopping), and `during` run on its indexes: what it
/// removes stays owed.
fn stopped_store(data: &Path, during: impl FnOnce(&ingest::Indexes)) -> ledger::Owed {
    let keys = ledger::keys::load_keys(data).unwrap();
    let log = ledger::Log::open_with(&data.join("db"), &keys, ingest::index::INGEST_CFS).unwrap();
    let indexes = ingest::Indexes::open(std::sync::Arc::new(log)).unwrap();
    indexes.log().stop_compactions();
    during(&indexes);
    indexes.log().compactions_owed().unwrap()
}

#[test]
fn ledgerctl_prune_and_erase_first_finish_what_a_stop_left_owed() {
    let dir = tempfile::tempdir().unwrap();
    let data = old_data_dir(dir.path(), "owed.example/log");
    let d = data.to_str().unwrap();
    ok("ledgerctl", &["--data", d, "checkpoint"]);

    // A prune and an erasure whose compactions a stopping ledgerd cut short.
    let owed = stopped_store(&data, |indexes| {
        assert_eq!(indexes.prune(512).unwrap().to, 512);
        // The entry alone (no record, no index): what its compaction owes.
        indexes.log().erase_entry(700, 2999).unwrap();
    });
    assert!(owed.pruned && owed.erased_chunks.len() == 1, "{owed:?}");
    let out = ok("ledgerctl", &["--data", d, "prune", "--before", "1h"]);
    assert!(
        out.contains("finishing the compactions a stop or a crash cut short: a prune's, an erasure's, of 1 entry chunk\n")
            && out.contains("nothing to remove"),
        "{out}"
    );
    assert!(stopped_store(&data, |_| ()).is_empty());

    let owed = stopped_store(&data, |indexes| {
        indexes.log().erase_entry(900, 2999).unwrap();
    });
    assert_eq!(owed.erased_chunks.len(), 1);
    let r = run(
        "ledgerctl",
        &[
            "--data",
            d,
            "erase",
            "old0-950",
            "--reason",
            "test",
            "--requested-by",
            "dpo@example.com",
        ],
    );
    assert!(
        r.code == 0 && r.stdout.contains("an erasure's, of 1 entry chunk\n"),
        "{} {}",
        r.stdout,
        r.stderr
    );
    assert!(stopped_store(&data, |_| ()).is_empty());
}

#[test]
fn ledgerd_finishes_what_a_stop_left_owed_once_it_has_started() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start_in(&data, &[]);
    s.append(&records("owed", 600));
    s.covered(600);
    assert_eq!(s.metric("ledger_compactions_owed"), 0.0);
    assert_eq!(s.stop(), Some(0));
    // A prune whose compaction a stopping ledgerd cut short.
    let owed = stopped_store(&data, |indexes| {
        assert_eq!(indexes.prune(512).unwrap().to, 512);
    });
    assert!(owed.pruned, "{owed:?}");

    let s = Server::start_in(&data, &[]);
    wait_until("the owed compaction finished", || {
        s.metric("ledger_compactions_owed") == 0.0
    });
    assert_eq!(s.stop(), Some(0));
    assert!(stopped_store(&data, |_| ()).is_empty());
}

/// `ledgerctl hold place` on the data dir `d`; its output.
fn place_hold(d: &str, since: &str, reason: &str) -> String {
    ok(
        "ledgerctl",
        &[
            "--data", d, "hold", "place", "--since", since, "--reason", reason,
        ],
    )
}

#[test]
fn a_legal_hold_placed_on_a_running_ledgerd_keeps_its_decisions_until_released() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let s = Server::start_in(&data, &["--retention", "3s"]);
    let d = data.to_str().unwrap();
    // Leaves 0..600 before the hold's time, 600..1200 after it.
    s.append(&records("before", 600));
    std::thread::sleep(Duration::from_millis(20));
    let since = now();
    std::thread::sleep(Duration::from_millis(20));
    s.append(&records("after", 600));
    let placed = place_hold(d, &since, "case 9: incident review");
    let id = placed
        .split_whitespace()
        .nth(2)
        .expect("the hold's id")
        .to_string();
    assert!(
        placed.contains(&format!("received since {since}")),
        "{placed}"
    );
    let list = ok("ledgerctl", &["--data", d, "hold", "list"]);
    assert!(
        list.contains(&id) && list.contains("case 9: incident review"),
        "{list}"
    );
    // Past the retention: the decisions before the hold go (in whole
    // bundles, up to the one holding leaf 600), the held ones stay, pass
    // after pass.
    std::thread::sleep(Duration::from_secs(3));
    s.append(&records_now("new", 10));
    wait_until("retention up to the hold", || {
        s.metric("ledger_first_kept_leaf") == 512.0
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(s.metric("ledger_first_kept_leaf"), 512.0);
    assert_eq!(get(&s, "/v1/decisions/before-5").0, 404);
    assert_eq!(get(&s, "/v1/decisions/after-0").0, 200);
    assert!(s.metric("ledger_retention_held_since_seconds") > 1.7e9);
    let key = s.data.join("log.pub");
    let status = s.ctl_run(key.to_str().unwrap(), &["status"]);
    assert!(
        status
            .stdout
            .contains("held by a legal hold: decisions received since"),
        "{}",
        status.stdout
    );
    // A hold that is not there cannot be released; this one can, and the
    // next pass removes what it kept (all but the newest bundle).
    refused(
        "ledgerctl",
        &["--data", d, "hold", "release", "0000000z"],
        "no legal hold",
    );
    let released = ok("ledgerctl", &["--data", d, "hold", "release", &id]);
    assert!(released.contains("released"), "{released}");
    assert!(ok("ledgerctl", &["--data", d, "hold", "list"]).contains("no legal holds"));
    wait_until("retention past the released hold", || {
        s.metric("ledger_first_kept_leaf") == 1024.0
    });
    assert_eq!(get(&s, "/v1/decisions/after-0").0, 404);
    wait_until("the hold no longer reported", || {
        s.metric("ledger_retention_held_since_seconds") == 0.0
    });
    assert!(s.metric("ledger_retention_last_pass_timestamp_seconds") > 1.7e9);
    // A holds file that cannot be read stops retention, which says so.
    let holds = data.join("holds");
    std::fs::write(&holds, "a line changed by hand\n").unwrap();
    wait_until("retention failing", || {
        s.metric("ledger_retention_failing") == 1.0
    });
    assert!(s.metric("ledger_retention_failed_passes_total") >= 1.0);
    let status = s.ctl_run(key.to_str().unwrap(), &["status"]);
    assert!(
        status.code != 0 && status.stdout.contains("attention: retention is failing"),
        "{}",
        status.stdout
    );
    std::fs::remove_file(&holds).unwrap();
    wait_until("retention passing again", || {
        s.metric("ledger_retention_failing") == 0.0
    });
    // A hold's reason must fit on its line.
    refused(
        "ledgerctl",
        &[
            "--data", d, "hold", "place", "--since", &since, "--reason", " padded",
        ],
        "reason",
    );
}

#[test]
fn a_retention_that_is_not_a_period_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    refused(
        "ledgerd",
        &["--data", d.to_str().unwrap(), "--retention", "1 year"],
        "not a period",
    );
    assert!(!d.exists(), "nothing is created");
    let config = dir.path().join("ledgerd.toml");
    std::fs::write(&config, "retention = \"forever\"\n").unwrap();
    refused(
        "ledgerd",
        &[
            "--data",
            d.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        "\"forever\" is not a period",
    );
}
