//! Decision records, leaves and logs for the verifier's tests: a record is
//! written as JSON, turned into the CBOR a leaf holds (times as tag 0), and
//! wrapped in the ledger envelope.

use ciborium::Value;
use serde_json::json;
use verifier::envelope::encode_parts;
use verifier::tree::MemoryTree;
use verifier::{leaf_hash, Checkpoint, SignerKey};

/// Fields whose text is a time, wherever they appear.
const TIME_FIELDS: &[&str] = &["time", "issued_at", "expires_at", "granted_at"];

fn to_cbor(v: &serde_json::Value, key: Option<&str>) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Integer(n.as_u64().expect("uint").into()),
        serde_json::Value::String(s) if key.is_some_and(|k| TIME_FIELDS.contains(&k)) => {
            Value::Tag(0, Box::new(Value::Text(s.clone())))
        }
        serde_json::Value::String(s) => Value::Text(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(|v| to_cbor(v, None)).collect()),
        serde_json::Value::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| (Value::Text(k.clone()), to_cbor(v, Some(k))))
                .collect(),
        ),
    }
}

/// The leaf bytes of a record given as JSON.
pub fn leaf(record: &serde_json::Value) -> Vec<u8> {
    leaf_at(record, "2026-11-23T07:00:01Z")
}

/// [`leaf`], received at `received_at`.
pub fn leaf_at(record: &serde_json::Value, received_at: &str) -> Vec<u8> {
    leaf_by(record, received_at, "relay-1")
}

/// [`leaf_at`], submitted by `submitted_by`.
pub fn leaf_by(record: &serde_json::Value, received_at: &str, submitted_by: &str) -> Vec<u8> {
    let cbor = verifier::cbor::encode(&to_cbor(record, None));
    encode_parts(&cbor, received_at, submitted_by)
}

/// Leaves of decisions `d0` … `d3`, received a second apart from 08:00:00.
pub fn four_leaves() -> Vec<Vec<u8>> {
    (0..4)
        .map(|i| {
            leaf_at(
                &record(&format!("d{i}")),
                &format!("2026-11-23T08:00:0{i}Z"),
            )
        })
        .collect()
}

/// The ledger's record erasing leaf `index` of `leaves`, received at
/// `received_at` (specs/erasure.md).
pub fn erasure_leaf(leaves: &[Vec<u8>], index: u64, received_at: &str) -> Vec<u8> {
    let erased = &leaves[index as usize];
    let at = verifier::envelope::received_at(erased).unwrap();
    let logged = verifier::decision::LoggedDecision::from_leaf(erased).unwrap();
    let received = verifier::timestamp::Timestamp::parse_text(at).unwrap();
    let leaf = verifier::erasure::ErasedLeaf {
        index,
        leaf_hash: &leaf_hash(erased),
        received_at: &received,
        decision_id: &logged.decision.decision_id,
        digest: &[9; 32],
    };
    let req = verifier::erasure::Request {
        requested_by: "dpo@example.com",
        reason: "GDPR art. 17 request",
        ticket: Some("DSR-7"),
    };
    let time = verifier::timestamp::Timestamp::parse_text(received_at).unwrap();
    let record = verifier::erasure::record(&leaf, &req, &time);
    leaf_by(&record, received_at, verifier::erasure::SUBMITTED_BY)
}

/// The ledger's retention record naming leaf `index` of `leaves` as the
/// first kept, received at `received_at` (specs/storage.md, "Retention").
pub fn retention_leaf(leaves: &[Vec<u8>], index: u64, received_at: &str) -> Vec<u8> {
    let kept = &leaves[index as usize];
    let at = verifier::envelope::received_at(kept).unwrap();
    let received = verifier::timestamp::Timestamp::parse_text(at).unwrap();
    let first = verifier::retention::FirstKept {
        index,
        leaf_hash: &leaf_hash(kept),
        received_at: &received,
    };
    let time = verifier::timestamp::Timestamp::parse_text(received_at).unwrap();
    let record = verifier::retention::record(&first, "ledgerd", "retention of 400d", &time);
    leaf_by(&record, received_at, verifier::erasure::SUBMITTED_BY)
}

/// A clean record: owners named, credential valid, TTL right.
pub fn record(id: &str) -> serde_json::Value {
    json!({
        "decision_id": id,
        "time": "2026-11-23T07:00:00.5Z",
        "enforcer": {"id": "gw-1", "kind": "gateway"},
        "subject": {"type": "user", "id": "alice@example.com", "identity_kind": "human",
                    "owner": "alice@example.com"},
        "delegation": [{"identity_kind": "agent", "id": "agent:travel-bot", "owner": "team-travel"}],
        "action": {"name": "POST /v1/bookings"},
        "resource": {"type": "api", "id": "bookings-api"},
        "context": {"request_id": format!("req-{id}")},
        "policy": {"engine": "opa", "id": "bookings.authz", "version": "7"},
        "decision": "allow",
        "credential": {"kind": "token", "id_hash": "sha256:0123456789abcdef",
                       "issued_at": "2026-11-23T06:59:00Z", "expires_at": "2026-11-23T07:04:00Z",
                       "ttl_s": 300},
    })
}

/// The test log's signer.
pub fn signer() -> SignerKey {
    SignerKey::from_seed("decisions.example.org/log", &[7; 32]).unwrap()
}

/// A log in memory: its leaves and their tree.
pub struct TestLog {
    /// The leaves, in order.
    pub leaves: Vec<Vec<u8>>,
    /// Their tree.
    pub tree: MemoryTree,
}

impl TestLog {
    /// A log of these leaves.
    pub fn new(leaves: Vec<Vec<u8>>) -> TestLog {
        let mut tree = MemoryTree::new();
        leaves.iter().for_each(|l| tree.push(leaf_hash(l)));
        TestLog { leaves, tree }
    }

    /// The checkpoint of the whole log, signed.
    pub fn checkpoint(&self, signer: &SignerKey) -> String {
        let size = self.leaves.len() as u64;
        Checkpoint {
            origin: signer.name().into(),
            size,
            root: self.tree.root_at(size).unwrap(),
            extensions: vec![],
        }
        .sign(signer)
        .unwrap()
    }

    /// The inclusion proof of leaf `index` in the whole log.
    pub fn proof(&self, index: u64) -> Vec<verifier::Hash> {
        verifier::tree::inclusion_proof(&self.tree, index, self.leaves.len() as u64).unwrap()
    }
}

/// Every single-byte change of `data` this test tries: flips of each bit
/// and a few replacements likely to keep a text file parseable.
pub fn byte_changes(data: &[u8]) -> impl Iterator<Item = (usize, Vec<u8>)> + '_ {
    (0..data.len()).flat_map(move |i| {
        let mut alts: Vec<u8> = (0..8).map(|b| data[i] ^ (1 << b)).collect();
        alts.extend([b'0', b'1', b'A', b'\n', b' ', b'=']);
        alts.sort_unstable();
        alts.dedup();
        alts.into_iter()
            .filter(move |&b| b != data[i])
            .map(move |b| {
                let mut changed = data.to_vec();
                changed[i] = b;
                (i, changed)
            })
    })
}
