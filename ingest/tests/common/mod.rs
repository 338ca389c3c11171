#![allow(dead_code)]

use proptest::prelude::*;
use serde_json::{json, Value};

/// A complete v1 record: a human's request carried by an agent through a
/// service account to an API.
pub fn record(id: &str) -> Value {
    json!({
        "decision_id": id,
        "time": "2026-11-23T07:00:00.123Z",
        "enforcer": {"id": "gw-eu-1", "kind": "agent_gateway"},
        "subject": {
            "type": "user", "id": "alice@example.com", "identity_kind": "human",
            "owner": "alice@example.com", "issuer": "https://idp.example.com"
        },
        "delegation": [
            {"identity_kind": "agent", "id": "agent:travel-bot", "owner": "team-travel",
             "granted_at": "2026-11-23T06:59:00Z", "scope": "bookings:write"},
            {"identity_kind": "service_account", "id": "sa:booking-svc", "owner": "team-booking",
             "granted_at": "2026-11-23T06:59:30Z", "scope": ["bookings:write", "payments:read"]}
        ],
        "action": {"name": "POST /v1/bookings"},
        "resource": {"type": "api", "id": "bookings-api", "sensitivity": "confidential"},
        "context": {"request_id": "req-1", "trace_id": "trace-1", "source_ip": "10.1.2.3",
                    "task": "book a flight", "custom": {"k": [1, 2.5, "x"]}},
        "policy": {"engine": "opa", "id": "bookings.authz", "version": "2026.11.1", "hash": "sha256:abc"},
        "decision": "allow",
        "reasons": ["rule.allow_delegated_agent"],
        "credential": {"kind": "token", "id_hash": "sha256:9f86d081884c7d65", "issued_at": "2026-11-23T06:59:30Z",
                       "expires_at": "2026-11-23T07:04:30Z", "ttl_s": 300, "scopes": ["bookings:write"]},
        "extensions": {"vendor": {"x": true}}
    })
}

pub fn cbor_of(v: &Value) -> ciborium::Value {
    ingest::record::from_json(v)
}

/// Paths of a record's fields (of [`record`]), to set or remove.
pub const PATHS: &[&[&str]] = &[
    &["decision_id"],
    &["time"],
    &["enforcer"],
    &["enforcer", "id"],
    &["enforcer", "kind"],
    &["subject"],
    &["subject", "id"],
    &["subject", "identity_kind"],
    &["subject", "owner"],
    &["subject", "spiffe_id"],
    &["subject", "properties"],
    &["delegation"],
    &["delegation", "0", "granted_at"],
    &["delegation", "0", "expires_at"],
    &["delegation", "0", "scope"],
    &["delegation", "1", "id"],
    &["delegation", "1", "granted_at"],
    &["action"],
    &["action", "name"],
    &["action", "properties"],
    &["resource", "id"],
    &["context"],
    &["context", "source_ip"],
    &["context", "parent_decision_id"],
    &["context", "other"],
    &["policy"],
    &["policy", "version"],
    &["decision"],
    &["reasons"],
    &["errors"],
    &["obligations"],
    &["credential"],
    &["credential", "ttl_s"],
    &["credential", "expires_at"],
    &["credential", "id_hash"],
    &["emergency", "break_glass"],
    &["emergency"],
    &["extensions"],
    &["unknown_field"],
];

/// Sets the field at `path` to `to`, or removes it (`None`); nothing if a
/// parent is missing or not a map or array.
pub fn set(v: &mut Value, path: &[&str], to: Option<Value>) {
    let (last, parents) = path.split_last().unwrap();
    let mut cur = v;
    for p in parents {
        cur = match cur {
            Value::Object(m) => match m.get_mut(*p) {
                Some(x) => x,
                None => return,
            },
            Value::Array(a) => match p.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(x) => x,
                None => return,
            },
            _ => return,
        };
    }
    if let Value::Object(m) = cur {
        match to {
            Some(x) => {
                m.insert(last.to_string(), x);
            }
            None => {
                m.remove(*last);
            }
        }
    }
}

/// Values built from `leaf`: arrays and maps of them, three levels deep.
pub fn nested(leaf: impl Strategy<Value = Value> + 'static) -> impl Strategy<Value = Value> {
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Whether any SST file in `dir` holds `needle`.
pub fn in_sst_files(dir: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|f| {
        let path = f.unwrap().path();
        path.extension().is_some_and(|e| e == "sst")
            && std::fs::read(&path)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
    })
}

/// Builds and verifies the package of `head` from `log`: its verdict.
pub fn package(
    log: &ledger::Log,
    head: verifier::export::Head,
    key: &verifier::VerifierKey,
) -> verifier::export::Verdict {
    use verifier::export::{render, Builder, Sinks, Sources};
    let (first, end) = (head.first, head.end);
    let (filter, origin) = (head.filter.clone(), head.origin.clone());
    let sinks = Sinks {
        leaves: Vec::new(),
        jsonl: Vec::new(),
        csv: Vec::new(),
        ocsf: Vec::new(),
    };
    let mut b = Builder::new(head, key, sinks).unwrap();
    log.scan_entries(first, end, |i, leaf| {
        let rendered = match leaf.is_empty() {
            // An erased entry: carried by its hash.
            true => verifier::export::Rendered::withheld(log.leaf_hash(i)?),
            false => render(i, leaf.to_vec(), &filter, &origin).unwrap(),
        };
        b.append(rendered).unwrap();
        Ok::<(), ledger::LedgerError>(())
    })
    .unwrap();
    let f = b.finish().unwrap();
    let cursor = std::io::Cursor::new;
    verifier::export::verify(
        Sources {
            manifest: serde_json::to_vec(&f.manifest).unwrap(),
            checkpoint: f.checkpoint,
            report: f.report,
            leaves: cursor(f.sinks.leaves),
            jsonl: cursor(f.sinks.jsonl),
            csv: cursor(f.sinks.csv),
            ocsf: cursor(f.sinks.ocsf),
        },
        key,
        |_, _| {},
    )
    .unwrap()
}
