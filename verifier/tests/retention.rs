//! Retention records read back (specs/storage.md, "Retention"): the
//! ledger's own record that the entries below a leaf are removed, naming
//! that leaf by its hash and time.

mod common;

use common::decisions::{erasure_leaf, four_leaves, leaf_by, retention_leaf};
use verifier::erasure::SUBMITTED_BY;
use verifier::leaf_hash;
use verifier::retention::{read, RetentionCheck, RetentionError};
use verifier::timestamp::Timestamp;

#[test]
fn a_retention_record_names_the_first_kept_leaf_by_hash_and_time() {
    let leaves = four_leaves();
    let leaf = retention_leaf(&leaves, 2, "2026-11-24T09:00:00Z");
    let r = read(4, &leaf).unwrap().unwrap();
    assert_eq!(r.first_kept, 2);
    assert_eq!(r.leaf_hash, leaf_hash(&leaves[2]));
    assert_eq!(r.first_kept_received_at.canonical(), "2026-11-23T08:00:02Z");
    assert_eq!(r.pruned_by, "ledgerd");
    assert_eq!(r.reasons, vec!["retention of 400d".to_string()]);
    assert_eq!(r.received_at.canonical(), "2026-11-24T09:00:00Z");
    // An erasure record is not a retention record, nor the other way.
    let erasure = erasure_leaf(&leaves, 1, "2026-11-24T09:00:00Z");
    assert_eq!(read(4, &erasure).unwrap(), None);
    assert_eq!(verifier::erasure::read(4, &leaf).unwrap(), None);
    // Not the ledger's own: not a retention record, whatever it says.
    let mut relayed = leaf.clone();
    let at = relayed.len() - SUBMITTED_BY.len();
    relayed[at..].copy_from_slice(b"gw-1xx");
    assert_eq!(read(4, &relayed).unwrap(), None);
    // Naming itself or a leaf after it.
    assert_eq!(
        read(2, &leaf).unwrap_err(),
        RetentionError::After {
            first_kept: 2,
            by: 2
        }
    );
}

#[test]
fn a_malformed_retention_record_is_refused() {
    let leaves = four_leaves();
    let good = || -> serde_json::Value {
        let received = Timestamp::parse_text("2026-11-23T08:00:02Z").unwrap();
        let first = verifier::retention::FirstKept {
            index: 2,
            leaf_hash: &leaf_hash(&leaves[2]),
            received_at: &received,
        };
        let time = Timestamp::parse_text("2026-11-24T09:00:00Z").unwrap();
        verifier::retention::record(&first, "ledgerd", "why", &time)
    };
    type Change<'a> = &'a dyn Fn(&mut serde_json::Value);
    let cases: [(&str, Change); 6] = [
        ("resource.type", &|r| {
            r["resource"]["type"] = "ledger_leaf".into()
        }),
        ("resource.id", &|r| r["resource"]["id"] = "02".into()),
        ("resource.properties.leaf_hash", &|r| {
            r["resource"]["properties"]["leaf_hash"] = "AB".repeat(32).into()
        }),
        ("resource.properties.received_at", &|r| {
            r["resource"]["properties"]["received_at"] = "yesterday".into()
        }),
        ("decision_id", &|r| {
            r["decision_id"] = "ledger-retention-3".into()
        }),
        ("resource.properties.leaf_hash", &|r| {
            r["resource"]["properties"]
                .as_object_mut()
                .unwrap()
                .remove("leaf_hash");
        }),
    ];
    for (field, change) in cases {
        let mut r = good();
        change(&mut r);
        let leaf = leaf_by(&r, "2026-11-24T09:00:00Z", SUBMITTED_BY);
        assert_eq!(
            read(4, &leaf).unwrap_err(),
            RetentionError::Field { index: 4, field },
            "{field}"
        );
    }
}

#[test]
fn an_audit_checks_the_record_naming_the_first_kept_leaf() {
    let leaves = four_leaves();
    let record = retention_leaf(&leaves, 2, "2026-11-24T09:00:00Z");
    // Leaves 0 and 1 pruned: the audit's first kept leaf is 2.
    let mut check = RetentionCheck::default();
    check.kept(2, &leaf_hash(&leaves[2]));
    check.kept(3, &leaf_hash(&leaves[3]));
    check.entry(4, &record).unwrap();
    assert_eq!(check.named_by, Some(4));
    // A log whose leaf 2 is another: the record names another hash.
    let mut other = RetentionCheck::default();
    other.kept(2, &leaf_hash(&leaves[3]));
    assert_eq!(
        other.entry(4, &record).unwrap_err(),
        RetentionError::OtherHash {
            first_kept: 2,
            by: 4
        }
    );
    // A record naming a leaf pruned since (an older first kept leaf) is
    // read, not compared.
    let mut later = RetentionCheck::default();
    later.kept(3, &leaf_hash(&leaves[3]));
    later.entry(4, &record).unwrap();
    assert_eq!(later.named_by, None);
    let note = verifier::retention::note(2, "checked", Some(4)).unwrap();
    assert!(
        note.ends_with(
            "the ledger's retention record at leaf 4 names leaf 2, the first kept, by its hash"
        ),
        "{note}"
    );
    assert_eq!(verifier::retention::note(0, "checked", None), None);
}
