#![allow(dead_code)]

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
