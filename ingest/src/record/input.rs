//! Request bodies: one record or an array of records as CBOR or JSON, or a
//! CBOR sequence (RFC 8742). Each record is checked on its own, so in a batch
//! the good ones go in and each bad one is reported by position. In CBOR, a
//! record may come signed by its enforcer: a COSE_Sign1 whose payload is
//! the record's canonical bytes (specs/signed-record.md).

use ciborium::Value;
use verifier::enforcer_signature::{EnforcerSignature, TAG_COSE_SIGN1};
use verifier::envelope::LeafHead;
use verifier::own_record::{is_reserved, RESERVED_PREFIXES};

use crate::record::schema::FieldError;
pub use crate::record::sender::Sender;
use crate::record::{check, fast, CheckedRecord, ENVELOPE_OVERHEAD};

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
/// field, its enforcer signature if it is signed (or must be), and that
/// its leaf will fit in a tile entry (65,535 bytes) once wrapped with
/// `submitted_by`.
pub fn check_record(
    v: &Value,
    position: usize,
    sender: &Sender<'_>,
) -> Result<CheckedRecord, Rejected> {
    if sender.submitted_by == verifier::erasure::SUBMITTED_BY {
        return Err(Rejected {
            position,
            decision_id: decision_id_of(v),
            reason: as_the_ledger(),
            forbidden: true,
        });
    }
    let checked = if matches!(v, Value::Tag(TAG_COSE_SIGN1, _)) {
        check_signed(v, position, sender)
    } else {
        check_decoded(v, position, sender, None)
    }?;
    if is_reserved(&checked.decision_id) {
        return Err(Rejected {
            position,
            reason: FieldError {
                path: "decision_id".into(),
                problem: format!(
                    "{:?} begins with a prefix of the ledger's own records ({}): choose another id",
                    checked.decision_id,
                    RESERVED_PREFIXES.join(", ")
                ),
            }
            .to_string(),
            decision_id: Some(checked.decision_id),
            forbidden: false,
        });
    }
    if let Some(from) = sender
        .kept_from
        .filter(|_| !sender.may_send_from(checked.time))
    {
        return Err(Rejected {
            position,
            reason: FieldError {
                path: "time".into(),
                problem: format!(
                    "{} is before {}, when the first decision this ledger keeps was received: \
                     retention removed the decisions received before then, so a decision made \
                     before then cannot be told from a retry of a removed one",
                    checked.time.canonical(),
                    from.canonical()
                ),
            }
            .to_string(),
            decision_id: Some(checked.decision_id),
            forbidden: false,
        });
    }
    Ok(checked)
}

fn rejected(v: &Value, position: usize, e: FieldError) -> Rejected {
    Rejected {
        position,
        decision_id: decision_id_of(v),
        reason: e.to_string(),
        forbidden: false,
    }
}

/// The record's declared `enforcer.id`.
fn declared_enforcer(v: &Value) -> Option<&str> {
    field_of(v, "enforcer")
        .and_then(|e| field_of(e, "id"))
        .and_then(Value::as_text)
}

/// The `enforcer.id` of a record in CBOR, read in place (`ledgerctl sign`
/// checks that it is the signer's).
pub fn enforcer_of(record_cbor: &[u8]) -> Option<&str> {
    fast::enforcer_id(record_cbor)
}

/// A record signed by its enforcer: a COSE_Sign1 whose payload is the
/// record's canonical bytes, signed with a key of the enforcer it
/// declares. Its leaf keeps the signature.
fn check_signed(
    v: &Value,
    position: usize,
    sender: &Sender<'_>,
) -> Result<CheckedRecord, Rejected> {
    let refuse = |decision_id: Option<String>, problem: String| Rejected {
        position,
        decision_id,
        reason: FieldError {
            path: "(enforcer signature)".into(),
            problem,
        }
        .to_string(),
        forbidden: false,
    };
    let (signature, payload) =
        EnforcerSignature::decode(v).map_err(|e| refuse(None, e.to_string()))?;
    let payload = payload.ok_or_else(|| {
        refuse(
            None,
            "the payload is detached: the record must be the payload".into(),
        )
    })?;
    // The fast path reads a payload that is a record in canonical form in
    // place (and declines any other); the reference checks name the
    // problem. Either way the leaf is written with the signature.
    let in_place = fast::check_signed(
        payload,
        &Sender {
            signers: None,
            ..*sender
        },
        &signature,
    )
    .filter(|c| fits_in_leaf(c, sender.submitted_by));
    let checked = match in_place {
        Some(checked) => checked,
        None => {
            let record = verifier::cbor::decode(payload)
                .map_err(|e| refuse(None, format!("the payload is not a record: {e}")))?;
            let checked = check_decoded(&record, position, sender, Some(&signature))?;
            if checked.cbor() != payload {
                return Err(refuse(
                    Some(checked.decision_id),
                    "the signed payload is not the record's canonical form (specs/record.md): \
                     sign the bytes `ledgerctl sign` writes"
                        .into(),
                ));
            }
            checked
        }
    };
    let refuse = |problem: String| refuse(Some(checked.decision_id.clone()), problem);
    let enforcer = fast::enforcer_id(payload).unwrap_or_default();
    let keys = sender
        .signers
        .filter(|k| k.signs(enforcer))
        .ok_or_else(|| {
            refuse(format!(
                "no key is registered for enforcer {enforcer:?}, so its signature cannot be \
                 checked (ledgerctl enforcer add)"
            ))
        })?;
    keys.check(enforcer, &signature, payload)
        .map_err(|e| refuse(e.to_string()))?;
    Ok(checked)
}

/// Checks a decoded record: that its sender may send it (its token's
/// enforcer; unsigned, only if its enforcer has no key), every field, and
/// that its leaf (with `signature`, if it is signed) fits in a tile entry.
fn check_decoded(
    v: &Value,
    position: usize,
    sender: &Sender<'_>,
    signature: Option<&EnforcerSignature>,
) -> Result<CheckedRecord, Rejected> {
    let reject = |e: FieldError| rejected(v, position, e);
    let declared = declared_enforcer(v);
    if let Some(bound) = sender.enforcer {
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
    if let Some(id) = declared.filter(|id| signature.is_none() && !sender.may_write_unsigned(id)) {
        return Err(reject(FieldError {
            path: "enforcer.id".into(),
            problem: format!(
                "is {id:?}, an enforcer whose key is registered: its records must come \
                 signed (a COSE_Sign1 over the record, specs/signed-record.md; `ledgerctl sign`)"
            ),
        }));
    }
    let mut record = check(v).map_err(reject)?;
    if let Some(signature) = signature {
        record.leaf = LeafHead::signed(record.cbor(), signature);
    }
    if !fits_in_leaf(&record, sender.submitted_by) {
        let leaf = leaf_size(&record, sender.submitted_by);
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

/// The size of a record's leaf once wrapped with `submitted_by`.
fn leaf_size(record: &CheckedRecord, submitted_by: &str) -> usize {
    record.cbor().len() + ENVELOPE_OVERHEAD + submitted_by.len() + 3 + record.leaf.signature_len()
}

/// Whether a record fits in a tile entry (65,535 bytes) once wrapped.
fn fits_in_leaf(record: &CheckedRecord, submitted_by: &str) -> bool {
    leaf_size(record, submitted_by) <= verifier::tile::MAX_ENTRY_SIZE
}

/// Whether a record the fast path read passes the checks it does not make
/// itself, which [`check_record`] makes after the record's own: it fits in
/// a leaf, its id is not one only the ledger's own records may have, and
/// it was not decided before the first kept decision was received. One
/// that fails goes to the reference path, which names the problem. Every
/// reader of the fast path asks this, bodies and sequences alike.
fn fast_may_take(record: &CheckedRecord, sender: &Sender<'_>) -> bool {
    fits_in_leaf(record, sender.submitted_by)
        && !is_reserved(&record.decision_id)
        && sender.may_send_from(record.time)
}

/// One record of a body: checked, or refused with the reason.
pub type Checked = Result<CheckedRecord, Rejected>;

/// Splits and checks a body. `Err` only when nothing in it can be read.
///
/// A body whose records are all readable in place and all pass is checked
/// by the fast path (`record::fast`); any other is decoded into
/// values and checked record by record, which names each problem. JSON is
/// transcoded to CBOR once, and both paths read that.
pub fn parse_body(
    format: Format,
    body: &[u8],
    sender: &Sender<'_>,
) -> Result<Vec<Checked>, BodyError> {
    if sender.submitted_by == verifier::erasure::SUBMITTED_BY {
        return Err(BodyError {
            format: match format {
                Format::Json => "JSON",
                Format::Cbor | Format::CborSeq => "CBOR",
            },
            reason: as_the_ledger(),
        });
    }
    if format == Format::Json {
        let cbor = json_as_cbor(body)?;
        return parse_body(Format::Cbor, &cbor, sender).map_err(as_json);
    }
    if let Some(records) = parse_fast(format, body, sender) {
        return Ok(records.into_iter().map(Ok).collect());
    }
    parse_reference(format, body, sender)
}

/// Why nothing is taken from a sender named as the ledger.
fn as_the_ledger() -> String {
    format!(
        "records cannot be submitted as {:?}: it marks the ledger's own records (erasures, retention)",
        verifier::erasure::SUBMITTED_BY
    )
}

/// JSON text as CBOR (the same values in the same order).
fn json_as_cbor(body: &[u8]) -> Result<Vec<u8>, BodyError> {
    fast::json_to_cbor(body).map_err(|e| BodyError {
        format: "JSON",
        reason: e.to_string(),
    })
}

/// A problem of a JSON body found in its CBOR form, said of the JSON.
fn as_json(e: BodyError) -> BodyError {
    BodyError {
        format: "JSON",
        ..e
    }
}

/// The first item of a CBOR sequence as it arrives, checked: `None` while
/// the bytes so far end inside it; else how many bytes it took and the
/// record or why it was refused (`Err` of a [`BodyError`] when the bytes
/// are not CBOR, after which a sequence cannot be read on).
pub fn next_item(
    bytes: &[u8],
    position: usize,
    sender: &Sender<'_>,
) -> Option<Result<(usize, Checked), BodyError>> {
    if let Some((n, r)) = fast::check_prefix(bytes, sender) {
        if fast_may_take(&r, sender) {
            return Some(Ok((n, Ok(r))));
        }
    }
    match verifier::cbor::decode_prefix(bytes) {
        Ok(verifier::cbor::Prefix::Incomplete) => None,
        Ok(verifier::cbor::Prefix::Item(v, n)) => Some(Ok((n, check_record(&v, position, sender)))),
        Err(e) => Some(Err(BodyError {
            format: "CBOR",
            reason: e.to_string(),
        })),
    }
}

/// The fast path alone: every record of the body checked in place, or
/// `None` if any needs the reference path (for tests and benchmarks;
/// [`parse_body`] falls back by itself).
pub fn parse_fast(format: Format, body: &[u8], sender: &Sender<'_>) -> Option<Vec<CheckedRecord>> {
    let records = match format {
        Format::Cbor => fast::records(body, sender)?,
        Format::CborSeq => fast::sequence(body, sender)?,
        Format::Json => fast::records(&fast::json_to_cbor(body).ok()?, sender)?,
    };
    records
        .iter()
        .all(|r| fast_may_take(r, sender))
        .then_some(records)
}

/// The reference path: the body decoded into values, each record checked
/// with its problems named.
pub fn parse_reference(
    format: Format,
    body: &[u8],
    sender: &Sender<'_>,
) -> Result<Vec<Checked>, BodyError> {
    let items: Vec<Result<Value, Rejected>> = match format {
        Format::Json => {
            let cbor = json_as_cbor(body)?;
            return parse_reference(Format::Cbor, &cbor, sender).map_err(as_json);
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
