//! Erasure records read back (specs/erasure.md), and the check an audit
//! makes of a log with erased entries: each named, with its hash, by a
//! later record of the ledger's own.

mod common;

use common::decisions::{erasure_leaf, four_leaves, leaf_by};
use verifier::erasure::{read, ErasureCheck, ErasureError, SUBMITTED_BY};
use verifier::leaf_hash;

#[test]
fn an_erasure_record_says_which_leaf_who_and_why() {
    let leaves = four_leaves();
    let leaf = erasure_leaf(&leaves, 1, "2026-11-24T09:00:00Z");
    let e = read(4, &leaf).unwrap().unwrap();
    assert_eq!(e.index, 1);
    assert_eq!(e.leaf_hash, leaf_hash(&leaves[1]));
    assert_eq!(e.erased_received_at.canonical(), "2026-11-23T08:00:01Z");
    assert_eq!(e.requested_by, "dpo@example.com");
    assert_eq!(e.reasons, vec!["GDPR art. 17 request".to_string()]);
    assert_eq!(e.erased_decision, ("d1".to_string(), [9; 32]));
    // Not the ledger's own: not an erasure, whatever it says.
    let mut relayed = leaf.clone();
    let at = relayed.len() - SUBMITTED_BY.len();
    relayed[at..].copy_from_slice(b"gw-1xx");
    assert_eq!(read(4, &relayed).unwrap(), None);
    // The ledger's own, but naming itself or a leaf after it.
    assert_eq!(
        read(1, &leaf).unwrap_err(),
        ErasureError::NotBefore { index: 1, by: 1 }
    );
}

#[test]
fn a_malformed_erasure_record_is_refused() {
    let leaves = four_leaves();
    let hash = leaf_hash(&leaves[1]).to_hex();
    let good = |f: &dyn Fn(&mut serde_json::Value)| {
        let received = verifier::timestamp::Timestamp::parse_text("2026-11-23T08:00:01Z").unwrap();
        let leaf = verifier::erasure::ErasedLeaf {
            index: 1,
            leaf_hash: &leaf_hash(&leaves[1]),
            received_at: &received,
            decision_id: "d1",
            digest: &[9; 32],
        };
        let req = verifier::erasure::Request {
            requested_by: "dpo@example.com",
            reason: "why",
            ticket: None,
        };
        let time = verifier::timestamp::Timestamp::parse_text("2026-11-24T09:00:00Z").unwrap();
        let mut r = verifier::erasure::record(&leaf, &req, &time);
        f(&mut r);
        read(4, &leaf_by(&r, "2026-11-24T09:00:00Z", SUBMITTED_BY))
    };
    assert!(good(&|_| {}).unwrap().is_some());
    for (field, change) in [
        (
            "resource.properties.leaf_hash",
            Box::new(|r: &mut serde_json::Value| {
                r["resource"]["properties"]["leaf_hash"] = hash[..60].into()
            }) as Box<dyn Fn(&mut serde_json::Value)>,
        ),
        (
            "resource.id",
            Box::new(|r: &mut serde_json::Value| r["resource"]["id"] = "01".into()),
        ),
        (
            "resource.type",
            Box::new(|r: &mut serde_json::Value| r["resource"]["type"] = "api".into()),
        ),
        (
            "resource.properties.received_at",
            Box::new(|r: &mut serde_json::Value| {
                r["resource"]["properties"]["received_at"] = "yesterday".into()
            }),
        ),
        (
            "decision_id",
            Box::new(|r: &mut serde_json::Value| r["decision_id"] = "ledger-erasure-2".into()),
        ),
        (
            "resource.properties.decision_id",
            Box::new(|r: &mut serde_json::Value| {
                r["resource"]["properties"]["decision_id"] = "".into()
            }),
        ),
        (
            "resource.properties.record_digest",
            Box::new(|r: &mut serde_json::Value| {
                r["resource"]["properties"]["record_digest"] = "00".into()
            }),
        ),
    ] {
        assert_eq!(
            good(&change).unwrap_err(),
            ErasureError::Field { index: 4, field },
            "{field}"
        );
    }
}

#[test]
fn an_audit_needs_a_record_for_every_erased_entry() {
    let leaves = four_leaves();
    let record_of_1 = erasure_leaf(&leaves, 1, "2026-11-24T09:00:00Z");
    let check = |erased: &[u64], extra: &[Vec<u8>]| {
        let mut c = ErasureCheck::default();
        for (i, l) in leaves.iter().chain(extra).enumerate() {
            let i = i as u64;
            if erased.contains(&i) {
                c.erased(i, leaf_hash(l));
            } else {
                c.entry(i, l)?;
            }
        }
        c.finish()
    };
    // Erased and named.
    let ok = check(&[1], std::slice::from_ref(&record_of_1)).unwrap();
    assert_eq!((ok.erased_by.len(), ok.pending.len()), (1, 0));
    assert_eq!(ok.erased_by, vec![(1, 4)]);
    // Erased, named by nothing.
    assert_eq!(
        check(&[1], &[]).unwrap_err(),
        ErasureError::Unrecorded { index: 1 }
    );
    assert_eq!(
        check(&[2], std::slice::from_ref(&record_of_1)).unwrap_err(),
        ErasureError::Unrecorded { index: 2 }
    );
    // Named, but its entry is still there (a copy made before).
    let pending = check(&[], std::slice::from_ref(&record_of_1)).unwrap();
    assert_eq!((pending.erased_by.len(), pending.pending), (0, vec![1]));
    // Named by another hash than the tree's.
    let mut c = ErasureCheck::default();
    c.erased(1, leaf_hash(&leaves[2]));
    assert_eq!(
        c.entry(4, &record_of_1).unwrap_err(),
        ErasureError::OtherHash { index: 1, by: 4 }
    );
}
