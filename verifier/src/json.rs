//! A stored record as JSON, for people and tools: the JSON form of the
//! CBOR data model a leaf uses (specs/record.md).
//!
//! Times (tag 0) become their RFC 3339 text; byte strings become standard
//! base64 text; integers beyond 64 bits become decimal text; non-finite
//! floats become `null`. Map keys are written in sorted order. Every record
//! the ledger accepts has text map keys, so nothing else is lost.
//!
//! [`write()`] writes that form straight from the CBOR values (what exports
//! and the HTTP API send, one line per decision); [`to_json`] builds it as a
//! `serde_json::Value`, for callers that add to it. Both give the same text.

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

/// A JSON string, escaped as serde_json escapes it: `"` and `\`, the
/// short escapes `\b \f \n \r \t`, other control characters as `\u00XX`;
/// everything else as it is.
pub fn write_str(s: &str, out: &mut String) {
    out.push('"');
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(escape);
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// Writes the JSON form of `v` (the same text as `to_json(v).to_string()`).
pub fn write(v: &Value, out: &mut String) {
    use std::fmt::Write as _;
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Integer(i) => {
            let n = i128::from(*i);
            if u64::try_from(n).is_ok() || i64::try_from(n).is_ok() {
                let _ = write!(out, "{n}");
            } else {
                write_str(&n.to_string(), out);
            }
        }
        Value::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => {
                let _ = write!(out, "{n}");
            }
            None => out.push_str("null"),
        },
        Value::Text(s) => write_str(s, out),
        Value::Bytes(b) => write_str(&crate::b64::encode(b), out),
        Value::Tag(_, inner) => write(inner, out),
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Map(m) => {
            // As a JSON object keeps them: sorted, the last of equal keys.
            let mut entries: Vec<(&str, &Value)> = m
                .iter()
                .map(|(k, v)| (k.as_text().unwrap_or_default(), v))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            entries.dedup_by(|later, earlier| {
                let same = later.0 == earlier.0;
                if same {
                    earlier.1 = later.1;
                }
                same
            });
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                write(v, out);
            }
            out.push('}');
        }
        _ => out.push_str("null"),
    }
}

/// A logged decision as JSON: the record with where and when it was logged
/// (what `GET /v1/decisions/{id}` and `/v1/search` answer, what `ledgerctl`
/// prints, and a line of an export's `decisions.jsonl`).
///
/// ```text
/// {"decision_id", "index", "leaf_hash" (hex), "received_at", "record", "submitted_by"
///  [, "enforcer_signature": {"key_id": "<8 hex digits>"}]}     a record its enforcer signed
/// ```
pub fn logged_json(index: u64, leaf: &[u8]) -> Result<String, crate::envelope::EnvelopeError> {
    let env = crate::envelope::Envelope::decode(leaf)?;
    let mut out = String::with_capacity(leaf.len() * 2);
    write_logged(
        index,
        &crate::leaf_hash(leaf),
        &env.received_at,
        &env.submitted_by,
        &env.record,
        env.enforcer_signature.as_ref(),
        &mut out,
    );
    Ok(out)
}

/// [`logged_json`] from the parts of a leaf already read.
pub fn write_logged(
    index: u64,
    leaf_hash: &crate::Hash,
    received_at: &str,
    submitted_by: &str,
    record: &Value,
    signature: Option<&crate::enforcer_signature::EnforcerSignature>,
    out: &mut String,
) {
    use std::fmt::Write as _;
    out.push_str("{\"decision_id\":");
    let id = record.as_map().and_then(|m| {
        m.iter()
            .rev()
            .find(|(k, _)| k.as_text() == Some("decision_id"))
            .map(|(_, v)| v)
    });
    match id {
        Some(v) => write(v, out),
        None => out.push_str("null"),
    }
    let _ = write!(
        out,
        ",\"index\":{index},\"leaf_hash\":\"{}\",\"received_at\":",
        leaf_hash.to_hex()
    );
    write_str(received_at, out);
    out.push_str(",\"record\":");
    write(record, out);
    out.push_str(",\"submitted_by\":");
    write_str(submitted_by, out);
    if let Some(s) = signature {
        let _ = write!(
            out,
            ",\"enforcer_signature\":{{\"key_id\":\"{:08x}\"}}",
            s.key_id
        );
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| Value::Integer(i.into())),
            any::<u64>().prop_map(|i| Value::Integer(i.into())),
            any::<f64>().prop_map(Value::Float),
            "\\PC{0,8}".prop_map(Value::Text),
            "[\\x00-\\x20\"\\\\/a\\u{7f}\\u{e9}]{0,8}".prop_map(Value::Text),
            prop::collection::vec(any::<u8>(), 0..6).prop_map(Value::Bytes),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(("[a-c]{0,2}".prop_map(Value::Text), inner.clone()), 0..4)
                    .prop_map(Value::Map),
                inner.prop_map(|v| Value::Tag(0, Box::new(v))),
            ]
        })
    }

    proptest! {
        /// The writer and the `serde_json::Value` form give the same text.
        #[test]
        fn write_is_to_json_to_string(v in value()) {
            let mut out = String::new();
            write(&v, &mut out);
            prop_assert_eq!(out, to_json(&v).to_string());
        }
    }
}
