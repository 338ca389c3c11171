//! Request bodies: one record or an array of records as CBOR or JSON, or a
//! CBOR sequence (RFC 8742). Each record is checked on its own, so in a batch
//! the good ones go in and each bad one is reported by position.

use ciborium::Value;

use crate::record::schema::FieldError;
use crate::record::{check, from_json, CheckedRecord, ENVELOPE_OVERHEAD};

/// Body encodings accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/cbor`: one record (map) or an array of records.
    Cbor,
    /// `application/cbor-seq`: records one after another.
    CborSeq,
    /// `application/json`: one record (object) or an array of records.
    Json,
}

/// A record refused, with its position in the body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("record {position}: {reason}")]
pub struct Rejected {
    /// Zero-based position in the body.
    pub position: usize,
    /// Its `decision_id`, when it had a readable one.
    pub decision_id: Option<String>,
    /// The field path and problem.
    pub reason: String,
}

/// The whole body is unreadable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed {format} body: {reason}")]
pub struct BodyError {
    /// The format that was expected.
    pub format: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// Checks one decoded record, including that its leaf will fit in a tile
/// entry (65,535 bytes) once wrapped with `submitted_by`.
pub fn check_record(
    v: &Value,
    position: usize,
    submitted_by: &str,
) -> Result<CheckedRecord, Rejected> {
    let reject = |e: FieldError| Rejected {
        position,
        decision_id: decision_id_of(v),
        reason: e.to_string(),
    };
    let record = check(v).map_err(reject)?;
    let leaf = record.cbor().len() + ENVELOPE_OVERHEAD + submitted_by.len() + 3;
    if leaf > verifier::tile::MAX_ENTRY_SIZE {
        return Err(reject(FieldError {
            path: "(record)".into(),
            problem: format!("leaf would be {leaf} bytes; the limit is 65535"),
        }));
    }
    Ok(record)
}

fn decision_id_of(v: &Value) -> Option<String> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some("decision_id"))
        .and_then(|(_, v)| v.as_text())
        .map(str::to_string)
}

/// Splits and checks a body. `Err` only when nothing in it can be read.
pub fn parse_body(
    format: Format,
    body: &[u8],
    submitted_by: &str,
) -> Result<Vec<Result<CheckedRecord, Rejected>>, BodyError> {
    let items: Vec<Result<Value, Rejected>> = match format {
        Format::Json => {
            let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| BodyError {
                format: "JSON",
                reason: e.to_string(),
            })?;
            match v {
                serde_json::Value::Array(a) => a.iter().map(|v| Ok(from_json(v))).collect(),
                v => vec![Ok(from_json(&v))],
            }
        }
        Format::Cbor => {
            let v = verifier::cbor::decode(body).map_err(|e| BodyError {
                format: "CBOR",
                reason: e.to_string(),
            })?;
            match v {
                Value::Array(a) => a.into_iter().map(Ok).collect(),
                v => vec![Ok(v)],
            }
        }
        Format::CborSeq => {
            let mut rest = body;
            let mut items = Vec::new();
            while !rest.is_empty() {
                match verifier::cbor::decode_next(&mut rest) {
                    Ok(v) => items.push(Ok(v)),
                    Err(e) => {
                        // The stream cannot be resynchronised after a bad item.
                        items.push(Err(Rejected {
                            position: items.len(),
                            decision_id: None,
                            reason: format!("{e}; the rest of the sequence was not read"),
                        }));
                        break;
                    }
                }
            }
            items
        }
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, item)| item.and_then(|v| check_record(&v, i, submitted_by)))
        .collect())
}
