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
    /// The sender may not write it (its `enforcer.id` is not the one the
    /// sender's token is bound to): the whole request is refused.
    pub forbidden: bool,
}

/// Who sends records: the authenticated writer, and the `enforcer.id`
/// its records must declare, if its token is bound to one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sender<'a> {
    /// What the leaves' `submitted_by` records.
    pub submitted_by: &'a str,
    /// The only `enforcer.id` it may write (a writer token); `None` for a
    /// relay, which forwards for many enforcers.
    pub enforcer: Option<&'a str>,
}

impl<'a> Sender<'a> {
    /// A sender that may write for any enforcer.
    pub fn relay(submitted_by: &'a str) -> Sender<'a> {
        Sender {
            submitted_by,
            enforcer: None,
        }
    }
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

/// Checks one decoded record from `sender`: that it may send it, every
/// field, and that its leaf will fit in a tile entry (65,535 bytes) once
/// wrapped with `submitted_by`.
pub fn check_record(
    v: &Value,
    position: usize,
    sender: &Sender<'_>,
) -> Result<CheckedRecord, Rejected> {
    let reject = |e: FieldError| Rejected {
        position,
        decision_id: decision_id_of(v),
        reason: e.to_string(),
        forbidden: false,
    };
    if let Some(bound) = sender.enforcer {
        let declared = field_of(v, "enforcer")
            .and_then(|e| field_of(e, "id"))
            .and_then(Value::as_text);
        if declared != Some(bound) {
            return Err(Rejected {
                forbidden: true,
                ..reject(FieldError {
                    path: "enforcer.id".into(),
                    problem: format!(
                        "is {}, but this writer token is for enforcer {bound:?} only (a relay token may write for others)",
                        declared.map_or("missing".to_string(), |d| format!("{d:?}"))
                    ),
                })
            });
        }
    }
    let record = check(v).map_err(reject)?;
    let leaf = record.cbor().len() + ENVELOPE_OVERHEAD + sender.submitted_by.len() + 3;
    if leaf > verifier::tile::MAX_ENTRY_SIZE {
        return Err(reject(FieldError {
            path: "(record)".into(),
            problem: format!("leaf would be {leaf} bytes; the limit is 65535"),
        }));
    }
    Ok(record)
}

fn field_of<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

fn decision_id_of(v: &Value) -> Option<String> {
    field_of(v, "decision_id")
        .and_then(Value::as_text)
        .map(str::to_string)
}

/// Splits and checks a body. `Err` only when nothing in it can be read.
pub fn parse_body(
    format: Format,
    body: &[u8],
    sender: &Sender<'_>,
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
                            forbidden: false,
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
        .map(|(i, item)| item.and_then(|v| check_record(&v, i, sender)))
        .collect())
}
