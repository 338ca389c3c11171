//! Exports whose window meets an erased or a pruned leaf: an erased
//! decision carried by its hash and named by its erasure record, a window
//! reaching below the first kept leaf standing on the retention record,
//! and an erased leaf at the window's edge dated by its record.

mod common;

use common::decisions::{erasure_leaf, retention_leaf, signer, TestLog};
use common::packages::{build, head, log, try_build, try_build_erased, FROM, TO};
use verifier::export::{
    boundary_of, erased_boundary_of, Builder, ExportError, Filter, Head, Sinks,
};

/// Leaf 15 erased, and the ledger's record of it at leaf 60: the export
/// carries the leaf by its hash and the record with its inclusion proof,
/// and verifies as complete with one erased; without the record, or with
/// the leaf disclosed after all, it does not.
#[test]
fn an_erased_decision_is_carried_by_hash_and_named_by_its_record() {
    let mut leaves = log().leaves;
    leaves.push(erasure_leaf(&leaves, 15, "2026-11-23T08:01:00Z"));
    let log = TestLog::new(leaves);
    let mut h = head(&log, FROM, TO, Filter::default());
    h.erased = vec![boundary_of(60, &log.leaves[60], &log.proof(60))];
    let p = try_build_erased(&log, h.clone(), &[15]).unwrap();
    assert_eq!(
        (p.manifest.counts.withheld, p.manifest.counts.erased),
        (1, 1)
    );
    let v = p.verify().unwrap();
    assert!(
        v.to_string().contains("; 1 erased (carried as leaf hashes"),
        "{v}"
    );
    assert_eq!(
        String::from_utf8(p.jsonl.clone()).unwrap().lines().count(),
        30
    );

    // The record left out: a leaf withheld from an unfiltered export.
    let mut no_record = p.clone();
    no_record.manifest.erased.clear();
    assert!(matches!(
        no_record.verify(),
        Err(ExportError::Leaf { index: 15, .. })
    ));
    // A record of another log (not included) or naming another leaf.
    let mut other = p.clone();
    other.manifest.erased[0].index = 59;
    assert!(matches!(other.verify(), Err(ExportError::Erased(_))));
    // The builder refuses an erased leaf that is disclosed, and a leaf
    // carried by hash that no record names.
    assert!(matches!(
        try_build_erased(&log, h.clone(), &[]),
        Err(ExportError::Leaf { index: 15, .. })
    ));
    assert!(matches!(
        try_build_erased(&log, h, &[15, 16]),
        Err(ExportError::Leaf { index: 16, .. })
    ));
}

/// [`head`] of a log whose entries below `first` were removed by
/// retention: the retention record at leaf `by` instead of leaf `first − 1`.
fn retained_head(log: &TestLog, from: &str, to: &str, by: u64) -> Head {
    let mut h = head(log, from, to, Filter::default());
    h.before = None;
    h.retained = Some(boundary_of(by, &log.leaves[by as usize], &log.proof(by)));
    h
}

#[test]
fn a_window_reaching_below_the_first_kept_leaf_is_complete_from_it() {
    let mut leaves = log().leaves;
    leaves.push(retention_leaf(&leaves, 12, "2026-11-23T08:01:00Z"));
    let log = TestLog::new(leaves);
    // Leaves 0..12 are gone; the window starts at leaf 12's time.
    let p = build(&log, retained_head(&log, "2026-11-23T08:00:12Z", TO, 60));
    assert_eq!((p.manifest.first, p.manifest.end), (12, 41));
    let v = p.verify().unwrap();
    let said = v.to_string();
    assert!(
        said.starts_with("complete from leaf 12, the first the log keeps: 29 decisions")
            && said.contains("the entries of leaves 0..12, received at or before 2026-11-23T08:00:12Z, were removed by retention, as the ledger's record at leaf 60 says (ledgerd at"),
        "{said}"
    );
    assert_eq!(v.retained.as_ref().map(|r| r.record.first_kept), Some(12));
    assert!(String::from_utf8(p.report.clone())
        .unwrap()
        .contains("removed by retention"));
    // A window wholly below the first kept leaf: nothing kept, shown so.
    let empty = build(
        &log,
        retained_head(&log, "2026-11-23T08:00:11.5Z", "2026-11-23T08:00:12Z", 60),
    );
    assert_eq!((empty.manifest.first, empty.manifest.end), (12, 12));
    assert!(empty
        .verify()
        .unwrap()
        .to_string()
        .contains(": 0 decisions"));

    // Without the record, the missing leaf before the range is named.
    let mut bare = p.clone();
    bare.manifest.retained = None;
    assert!(matches!(
        bare.verify(),
        Err(ExportError::Boundary {
            which: "before",
            ..
        })
    ));
    // The record beside a leaf before, or one that is not in the tree.
    let mut both = p.clone();
    both.manifest.before = Some(boundary_of(11, &log.leaves[11], &log.proof(11)));
    assert!(matches!(
        both.verify(),
        Err(ExportError::Boundary {
            which: "before",
            ..
        })
    ));
    let mut moved = p.clone();
    moved.manifest.retained.as_mut().unwrap().index = 59;
    assert!(matches!(moved.verify(), Err(ExportError::Retained(_))));
    // A window that starts after the first kept leaf cannot start its range
    // there: the range would not be the window's.
    let mut later = p.clone();
    later.manifest.window.from = "2026-11-23T08:00:12.5Z".into();
    assert!(matches!(later.verify(), Err(ExportError::Retained(_))));
    // A range that starts at another leaf than the record names.
    let mut shifted = log.leaves.clone();
    shifted[60] = retention_leaf(&log.leaves, 11, "2026-11-23T08:01:00Z");
    let shifted = TestLog::new(shifted);
    assert!(matches!(
        Builder::new(
            retained_head(&shifted, "2026-11-23T08:00:12Z", TO, 60),
            &signer().verifier(),
            Sinks {
                leaves: Vec::new(),
                jsonl: Vec::new(),
                csv: Vec::new(),
                ocsf: Vec::new(),
            },
        ),
        Err(ExportError::Retained(_))
    ));
    // A record naming leaf 12 by another leaf's hash: leaf 12 is refused.
    let mut other = log.leaves.clone();
    let mut swapped = other.clone();
    swapped[12] = other[13].clone();
    other[60] = retention_leaf(&swapped, 12, "2026-11-23T08:01:00Z");
    let other = TestLog::new(other);
    assert!(matches!(
        try_build(
            &other,
            retained_head(&other, "2026-11-23T08:00:12Z", TO, 60)
        ),
        Err(ExportError::Retained(_))
    ));
}

#[test]
fn an_erased_leaf_at_the_windows_edge_is_carried_by_hash_and_its_record_dates_it() {
    let mut leaves = log().leaves;
    // Leaves 9 (just before the window) and 41 (just after it) erased.
    leaves.push(erasure_leaf(&leaves, 9, "2026-11-23T08:01:00Z"));
    leaves.push(erasure_leaf(&leaves, 41, "2026-11-23T08:01:01Z"));
    let log = TestLog::new(leaves);
    let by_hash = |i: u64| {
        erased_boundary_of(
            i,
            &verifier::leaf_hash(&log.leaves[i as usize]),
            &log.proof(i),
        )
    };
    let mut h = head(&log, FROM, TO, Filter::default());
    assert_eq!((h.first, h.end), (10, 41));
    h.before = None;
    h.after = None;
    h.before_erased = Some(by_hash(9));
    h.after_erased = Some(by_hash(41));
    h.erased = [60, 61]
        .map(|i| boundary_of(i, &log.leaves[i as usize], &log.proof(i)))
        .to_vec();
    let p = build(&log, h.clone());
    let v = p.verify().unwrap();
    assert!(v.end_proven, "{v}");
    assert_eq!(p.manifest.counts.erased, 0);
    assert!(
        v.to_string().starts_with("complete: 31 decisions")
            && v.to_string().contains(
                "; the leaves just before and just after the window were erased: carried by their hashes"
            ),
        "{v}"
    );

    // Without the record of leaf 9, its time is unknown.
    let mut unnamed = p.clone();
    unnamed.manifest.erased.remove(0);
    assert!(matches!(unnamed.verify(), Err(ExportError::Erased(_))));
    // Another leaf's hash in its place, another index, or the leaf twice.
    let mut other = p.clone();
    other.manifest.before_erased.as_mut().unwrap().leaf_hash =
        verifier::leaf_hash(&log.leaves[8]).to_base64();
    assert!(matches!(
        other.verify(),
        Err(ExportError::Boundary {
            which: "before",
            ..
        })
    ));
    let mut moved = p.clone();
    moved.manifest.after_erased.as_mut().unwrap().index = 42;
    assert!(matches!(
        moved.verify(),
        Err(ExportError::Boundary { which: "after", .. })
    ));
    let mut both = p.clone();
    both.manifest.before = Some(boundary_of(9, &log.leaves[9], &log.proof(9)));
    assert!(matches!(
        both.verify(),
        Err(ExportError::Boundary {
            which: "before",
            ..
        })
    ));
    // The window moved to start at leaf 9's time: the erased leaf before
    // is then received inside it, and refused as a boundary.
    let mut inside = p.clone();
    inside.manifest.window.from = "2026-11-23T08:00:09Z".into();
    assert!(matches!(
        inside.verify(),
        Err(ExportError::Boundary {
            which: "before",
            ..
        })
    ));
}
