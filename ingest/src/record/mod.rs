//! The decision record, v1 (specs/record.md): shaped after AuthZEN 1.0
//! (subject / action / resource / context), OPA decision logs and RFC 8693
//! delegation. [`check`] reads a record from CBOR (JSON bodies are
//! transcoded to CBOR first, [`input`]; a JSON value, such as a mapped OPA
//! event, is converted by [`from_json`]), checks every field and returns its
//! canonical form.

pub(crate) mod fast;
pub mod input;
pub(crate) mod schema;
pub(crate) mod sender;
pub(crate) mod terms;

use ciborium::Value;
use sha2::{Digest, Sha256};
use verifier::envelope::LeafHead;

pub use crate::record::schema::MAX_NESTING;
use crate::record::schema::{check_free, check_text, err, kind, FieldError, Obj, Timestamp};
pub use crate::record::terms::{credential_term, Actors, IndexTerms, TermValues, BREAK_GLASS};

pub use verifier::decision::{CREDENTIAL_KINDS, DECISIONS, ENFORCER_KINDS, IDENTITY_KINDS};
/// Longest delegation chain accepted.
pub const MAX_DELEGATION: usize = 32;
/// Longest `decision_id`.
pub const MAX_DECISION_ID: usize = 256;
/// Bytes the leaf envelope adds around a record, beyond `submitted_by`
/// (map header, the four keys, version, tag 0 and a 30-byte time).
pub const ENVELOPE_OVERHEAD: usize = 72;

/// A record that passed every check, in canonical form.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedRecord {
    /// The idempotency key.
    pub decision_id: String,
    /// When the enforcer decided.
    pub time: Timestamp,
    /// Its leaf, up to the `received_at` the batcher sets; holds the
    /// record's deterministic CBOR ([`CheckedRecord::cbor`]).
    pub leaf: LeafHead,
    /// SHA-256 of the record's CBOR: equal for a retry of the same record.
    pub digest: [u8; 32],
    /// What it is indexed by.
    pub terms: IndexTerms,
}

impl CheckedRecord {
    /// The record in deterministic CBOR.
    pub fn cbor(&self) -> &[u8] {
        self.leaf.record_cbor()
    }
}

/// Checks a record and returns its canonical form, or the first problem with
/// the path of the field.
pub fn check(v: &Value) -> Result<CheckedRecord, FieldError> {
    let mut r = Obj::new(v, "")?;
    let decision_id = r.text("decision_id", true)?.unwrap_or_default();
    if decision_id.len() > MAX_DECISION_ID {
        return err(
            "decision_id",
            format!("is longer than {MAX_DECISION_ID} bytes"),
        );
    }
    let time = r
        .time("time", true)?
        .unwrap_or(Timestamp(time::OffsetDateTime::UNIX_EPOCH));

    let mut enforcer = Obj::new(r.required("enforcer")?, "enforcer")?;
    enforcer.text("id", true)?;
    enforcer.one_of("kind", ENFORCER_KINDS, true)?;
    r.put("enforcer", enforcer.finish()?);

    let mut subject = Obj::new(r.required("subject")?, "subject")?;
    subject.text("type", true)?;
    let subject_id = subject.text("id", true)?.unwrap_or_default();
    subject.one_of("identity_kind", IDENTITY_KINDS, true)?;
    // Optional: a record without one is logged, and its evidence says the
    // identity has no accountable owner (verifier::findings).
    let owner = subject.text("owner", false)?;
    subject.text("issuer", false)?;
    if let Some(spiffe) = subject.text("spiffe_id", false)? {
        if !spiffe.starts_with("spiffe://") {
            return err("subject.spiffe_id", "must be a spiffe:// URI");
        }
    }
    subject.free_map("properties")?;
    r.put("subject", subject.finish()?);

    let actors = check_delegation(&mut r)?;

    let mut action = Obj::new(r.required("action")?, "action")?;
    action.text("name", true)?;
    action.free_map("properties")?;
    r.put("action", action.finish()?);

    let mut resource = Obj::new(r.required("resource")?, "resource")?;
    resource.text("type", true)?;
    let resource_id = resource.text("id", true)?.unwrap_or_default();
    resource.text("sensitivity", false)?;
    resource.free_map("properties")?;
    r.put("resource", resource.finish()?);

    let (request_id, trace_id, parent_decision_id) = check_context(&mut r)?;

    let mut policy = Obj::new(r.required("policy")?, "policy")?;
    policy.text("engine", true)?;
    let policy_id = policy.text("id", true)?.unwrap_or_default();
    let policy_version = policy.text("version", true)?.unwrap_or_default();
    policy.text("hash", false)?;
    policy.text("owner", false)?;
    r.put("policy", policy.finish()?);

    let decision = r.one_of("decision", DECISIONS, true)?.unwrap_or_default();
    r.texts("reasons")?;
    r.texts("errors")?;
    if let Some(obligations) = r.raw("obligations") {
        if !matches!(obligations, Value::Array(_)) {
            return err(
                "obligations",
                format!("must be an array, found {}", kind(obligations)),
            );
        }
        check_free(obligations, "obligations")?;
        r.put("obligations", obligations.clone());
    }
    let credential = check_credential(&mut r)?;
    let break_glass = check_emergency(&mut r)?;
    r.free_map("extensions")?;

    let value = r.finish()?;
    let cbor = verifier::cbor::encode(&value);
    let actors: Vec<&str> = actors.iter().map(String::as_str).collect();
    Ok(CheckedRecord {
        digest: Sha256::digest(&cbor).into(),
        decision_id,
        time,
        leaf: LeafHead::new(&cbor),
        terms: IndexTerms::new(TermValues {
            subject: &subject_id,
            actors: &actors,
            resource: &resource_id,
            policy: &policy_id,
            policy_version: &policy_version,
            decision: &decision,
            request_id: request_id.as_deref(),
            trace_id: trace_id.as_deref(),
            parent_decision_id: parent_decision_id.as_deref(),
            credential: credential.as_deref().map(credential_term).as_deref(),
            owner: owner.as_deref(),
            break_glass,
        }),
    })
}

fn check_delegation(r: &mut Obj<'_>) -> Result<Vec<String>, FieldError> {
    let Some(chain) = r.raw("delegation") else {
        return Ok(vec![]);
    };
    let Value::Array(items) = chain else {
        return err(
            "delegation",
            format!("must be an array of actors, found {}", kind(chain)),
        );
    };
    if items.len() > MAX_DELEGATION {
        return err(
            "delegation",
            format!("has {} actors; at most {MAX_DELEGATION}", items.len()),
        );
    }
    let mut out = Vec::with_capacity(items.len());
    let mut ids = Vec::with_capacity(items.len());
    let mut last_grant: Option<Timestamp> = None;
    for (i, item) in items.iter().enumerate() {
        let path = format!("delegation[{i}]");
        let mut actor = Obj::new(item, &path)?;
        actor.one_of("identity_kind", IDENTITY_KINDS, true)?;
        ids.push(actor.text("id", true)?.unwrap_or_default());
        actor.text("owner", false)?;
        let granted = actor.time("granted_at", false)?;
        if let Some(granted) = granted {
            if last_grant.is_some_and(|prev| granted < prev) {
                return err(
                    &format!("{path}.granted_at"),
                    "is earlier than the previous hop's grant",
                );
            }
            last_grant = Some(granted);
        }
        if let Some(expires) = actor.time("expires_at", false)? {
            if granted.is_some_and(|g| expires < g) {
                return err(&format!("{path}.expires_at"), "is before granted_at");
            }
        }
        actor.text("approved_by", false)?;
        actor.text("grant_id", false)?;
        match actor.raw("scope") {
            None => {}
            Some(v @ Value::Text(_)) => {
                let scope = check_text(v, &format!("{path}.scope"))?;
                actor.put("scope", Value::Text(scope));
            }
            Some(Value::Array(_)) => {
                // Re-read as an array of text with per-item paths.
                let mut again = Obj::new(item, &path)?;
                let scopes = again.texts("scope")?;
                actor.put(
                    "scope",
                    Value::Array(scopes.into_iter().map(Value::Text).collect()),
                );
            }
            Some(_) => return err(&format!("{path}.scope"), "must be text or an array of text"),
        }
        out.push(actor.finish()?);
    }
    r.put("delegation", Value::Array(out));
    Ok(ids)
}

type ContextIds = (Option<String>, Option<String>, Option<String>);

fn check_context(r: &mut Obj<'_>) -> Result<ContextIds, FieldError> {
    let Some(ctx) = r.raw("context") else {
        return Ok((None, None, None));
    };
    let mut c = Obj::new(ctx, "context")?;
    let request_id = c.text("request_id", false)?;
    let trace_id = c.text("trace_id", false)?;
    c.text("span_id", false)?;
    let parent = c.text("parent_decision_id", false)?;
    if let Some(ip) = c.text("source_ip", false)? {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return err("context.source_ip", format!("{ip:?} is not an IP address"));
        }
    }
    c.text("task", false)?;
    c.text("originating_service", false)?;
    c.keep_rest()?;
    r.put("context", c.finish()?);
    Ok((request_id, trace_id, parent))
}

/// The `credential`, if any; returns its `id_hash`.
fn check_credential(r: &mut Obj<'_>) -> Result<Option<String>, FieldError> {
    let Some(cred) = r.raw("credential") else {
        return Ok(None);
    };
    let mut c = Obj::new(cred, "credential")?;
    c.one_of("kind", CREDENTIAL_KINDS, true)?;
    c.text("issuer", false)?;
    let id_hash = c.text("id_hash", true)?.unwrap_or_default();
    if id_hash.len() < 16
        || !id_hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=:_-".contains(&b))
    {
        return err(
            "credential.id_hash",
            "must be a hash of the credential (at least 16 of A-Z a-z 0-9 + / = : _ -), never the secret",
        );
    }
    let issued = c.time("issued_at", true)?;
    let expires = c.time("expires_at", true)?;
    if expires < issued {
        return err("credential.expires_at", "is before issued_at");
    }
    match c.required("ttl_s")? {
        Value::Integer(i) if u64::try_from(*i).is_ok() => {
            let ttl = Value::Integer(*i);
            c.put("ttl_s", ttl);
        }
        other => {
            let found = match other {
                Value::Integer(_) => "a negative integer",
                other => kind(other),
            };
            return err(
                "credential.ttl_s",
                format!("must be a non-negative integer, found {found}"),
            );
        }
    }
    c.texts("scopes")?;
    r.put("credential", c.finish()?);
    Ok(Some(id_hash))
}

/// The `emergency`, if any; returns whether it is break-glass.
fn check_emergency(r: &mut Obj<'_>) -> Result<bool, FieldError> {
    let Some(em) = r.raw("emergency") else {
        return Ok(false);
    };
    let mut e = Obj::new(em, "emergency")?;
    let break_glass = match e.required("break_glass")? {
        Value::Bool(b) => {
            let b = *b;
            e.put("break_glass", Value::Bool(b));
            b
        }
        other => {
            return err(
                "emergency.break_glass",
                format!("must be a boolean, found {}", kind(other)),
            )
        }
    };
    e.text("justification", true)?;
    e.text("ticket", false)?;
    e.text("approved_by", false)?;
    e.time("expires_at", false)?;
    e.text("grant_id", false)?;
    r.put("emergency", e.finish()?);
    Ok(break_glass)
}

/// Converts a JSON value to the CBOR data model (numbers to integers where
/// exact, otherwise floats; everything else one to one).
pub fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::Integer(u.into()),
            (_, Some(i), _) => Value::Integer(i.into()),
            (_, _, Some(f)) => Value::Float(f),
            _ => Value::Null,
        },
        serde_json::Value::String(s) => Value::Text(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        serde_json::Value::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| (Value::Text(k.clone()), from_json(v)))
                .collect(),
        ),
    }
}
