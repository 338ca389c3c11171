//! A stored record as JSON, for people and tools: the JSON form of the
//! CBOR data model a leaf uses (specs/record.md).
//!
//! Times (tag 0) become their RFC 3339 text; byte strings become standard
//! base64 text; integers beyond 64 bits become decimal text. Every record
//! the ledger accepts has text map keys, so nothing else is lost.

use ciborium::Value;

/// The JSON form of a CBOR value.
pub fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Integer(i) => match (u64::try_from(*i), i64::try_from(*i)) {
            (Ok(u), _) => u.into(),
            (_, Ok(s)) => s.into(),
            _ => serde_json::Value::String(format!("{}", i128::from(*i))),
        },
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::Text(s) => serde_json::Value::String(s.clone()),
        Value::Bytes(b) => serde_json::Value::String(crate::b64::encode(b)),
        Value::Tag(_, inner) => to_json(inner),
        Value::Array(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        Value::Map(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_text().unwrap_or_default().to_string(), to_json(v)))
                .collect(),
        ),
        _ => serde_json::Value::Null,
    }
}

/// A logged decision as JSON: the record with where and when it was logged
/// (what `GET /v1/decisions/{id}` and `/v1/search` answer, and `ledgerctl`
/// prints).
///
/// ```text
/// {"decision_id", "index", "leaf_hash" (hex), "received_at", "submitted_by", "record"}
/// ```
pub fn logged_json(
    index: u64,
    leaf: &[u8],
) -> Result<serde_json::Value, crate::envelope::EnvelopeError> {
    let env = crate::envelope::Envelope::decode(leaf)?;
    Ok(logged_value(
        index,
        &crate::leaf_hash(leaf),
        &env.received_at,
        &env.submitted_by,
        &env.record,
    ))
}

/// [`logged_json`] from the parts of a leaf already read.
pub fn logged_value(
    index: u64,
    leaf_hash: &crate::Hash,
    received_at: &str,
    submitted_by: &str,
    record: &Value,
) -> serde_json::Value {
    let record = to_json(record);
    serde_json::json!({
        "decision_id": record.get("decision_id"),
        "index": index,
        "leaf_hash": leaf_hash.to_hex(),
        "received_at": received_at,
        "submitted_by": submitted_by,
        "record": record,
    })
}
