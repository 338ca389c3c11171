//! A decision record read from a leaf (specs/record.md): the typed view that
//! accounts, findings and chains are made of.
//!
//! The leaf holds the record as deterministic CBOR; [`Decision::from_record`]
//! reads every field v1 defines, refuses a record that lacks a required one
//! or spells one with the wrong type, and keeps free-form content (`properties`,
//! `extensions`, unknown `context` keys) only in the raw record. Times are read
//! in their canonical form (tag 0 over RFC 3339 UTC).

use ciborium::Value;
use serde::Serialize;

use crate::enforcer_signature::{EnforcerKeys, EnforcerSignature, SignatureError, Signed};
use crate::envelope::{Envelope, EnvelopeError};
use crate::hash::{leaf_hash, Hash};
use crate::timestamp::Timestamp;

/// `enforcer.kind` values.
pub const ENFORCER_KINDS: &[&str] = &[
    "gateway",
    "service_mesh",
    "api",
    "policy_engine",
    "token_issuer",
    "agent_gateway",
    "other",
];
/// `subject.identity_kind` and `delegation[].identity_kind` values.
pub const IDENTITY_KINDS: &[&str] = &["human", "service_account", "workload", "agent", "device"];
/// `decision` values.
pub const DECISIONS: &[&str] = &["allow", "deny"];
/// `credential.kind` values.
pub const CREDENTIAL_KINDS: &[&str] = &["token", "jit_grant", "api_key", "certificate"];

/// Why a record cannot be read as a v1 decision.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// The leaf is not a ledger envelope.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// A field is missing or has the wrong type.
    #[error("record field {path}: {problem}")]
    Field {
        /// Dotted path of the field.
        path: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// Who enforced the decision, as the record declares it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Enforcer {
    /// `enforcer.id`.
    pub id: String,
    /// `enforcer.kind`.
    pub kind: String,
}

/// The identity the decision was about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Subject {
    /// `subject.type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `subject.id`.
    pub id: String,
    /// `subject.identity_kind`: human, service_account, workload, agent, device.
    pub identity_kind: String,
    /// The accountable person or team, if the record names one.
    pub owner: Option<String>,
    /// `subject.issuer`.
    pub issuer: Option<String>,
    /// `subject.spiffe_id`.
    pub spiffe_id: Option<String>,
}

/// One hop of the delegation chain (RFC 8693 `act`, flattened).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// `identity_kind`.
    pub identity_kind: String,
    /// `id`.
    pub id: String,
    /// The accountable person or team.
    pub owner: Option<String>,
    /// When the delegation was granted.
    pub granted_at: Option<Timestamp>,
    /// When the grant expires.
    pub expires_at: Option<Timestamp>,
    /// Who approved the grant.
    pub approved_by: Option<String>,
    /// The grant's id (a JIT grant, a ticket).
    pub grant_id: Option<String>,
    /// The delegated scope.
    pub scope: Vec<String>,
}

/// The resource acted on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Resource {
    /// `resource.type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `resource.id`.
    pub id: String,
    /// `resource.sensitivity`.
    pub sensitivity: Option<String>,
}

/// The known `context` keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Context {
    /// `context.request_id`.
    pub request_id: Option<String>,
    /// `context.trace_id`.
    pub trace_id: Option<String>,
    /// `context.span_id`.
    pub span_id: Option<String>,
    /// `context.parent_decision_id`: the decision this one was made for.
    pub parent_decision_id: Option<String>,
    /// `context.source_ip`.
    pub source_ip: Option<String>,
    /// `context.task`.
    pub task: Option<String>,
    /// `context.originating_service`.
    pub originating_service: Option<String>,
}

/// The policy in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// `policy.engine`.
    pub engine: String,
    /// `policy.id`.
    pub id: String,
    /// `policy.version`.
    pub version: String,
    /// `policy.hash`.
    pub hash: Option<String>,
    /// `policy.owner`.
    pub owner: Option<String>,
}

/// The credential presented.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Credential {
    /// token, jit_grant, api_key, certificate.
    pub kind: String,
    /// A hash of the credential, never the secret.
    pub id_hash: String,
    /// Who issued it.
    pub issuer: Option<String>,
    /// `issued_at`.
    pub issued_at: Timestamp,
    /// `expires_at`.
    pub expires_at: Timestamp,
    /// The stated time to live, seconds.
    pub ttl_s: u64,
    /// `scopes`.
    pub scopes: Vec<String>,
}

/// Break-glass and emergency access.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Emergency {
    /// Whether normal policy was bypassed.
    pub break_glass: bool,
    /// Why.
    pub justification: Option<String>,
    /// The ticket.
    pub ticket: Option<String>,
    /// Who approved it.
    pub approved_by: Option<String>,
    /// When the emergency access ends.
    pub expires_at: Option<Timestamp>,
    /// The grant's id.
    pub grant_id: Option<String>,
}

/// A decision record, read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The idempotency key.
    pub decision_id: String,
    /// When the enforcer decided.
    pub time: Timestamp,
    /// The enforcer as declared.
    pub enforcer: Enforcer,
    /// The subject.
    pub subject: Subject,
    /// Originating principal first, immediate caller last.
    pub delegation: Vec<Actor>,
    /// `action.name`.
    pub action: String,
    /// The resource.
    pub resource: Resource,
    /// The known context keys.
    pub context: Context,
    /// The policy in force.
    pub policy: Policy,
    /// `allow` or `deny`.
    pub decision: String,
    /// Determining policy / rule ids.
    pub reasons: Vec<String>,
    /// `errors`.
    pub errors: Vec<String>,
    /// The credential.
    pub credential: Option<Credential>,
    /// Break-glass details.
    pub emergency: Option<Emergency>,
}

/// A decision as logged: the leaf's envelope around it.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedDecision {
    /// The leaf hash of the leaf it was read from.
    pub leaf_hash: Hash,
    /// When the ledger received it.
    pub received_at: Timestamp,
    /// The authenticated enforcer that submitted it.
    pub submitted_by: String,
    /// The record, read.
    pub decision: Decision,
    /// The record as stored (with its free-form content).
    pub record: Value,
    /// The enforcer's signature of the record, if it signed it.
    pub enforcer_signature: Option<EnforcerSignature>,
    /// What is known of that signature: not checked until
    /// [`LoggedDecision::check_signature`] is given the enforcer's keys.
    pub signed: Signed,
}

impl LoggedDecision {
    /// Reads leaf bytes: the envelope, then the record in it.
    pub fn from_leaf(leaf: &[u8]) -> Result<LoggedDecision, DecisionError> {
        let env = Envelope::decode(leaf)?;
        let received_at =
            Timestamp::parse_text(&env.received_at).ok_or_else(|| DecisionError::Field {
                path: "(envelope).received_at".into(),
                problem: "is not an RFC 3339 time",
            })?;
        Ok(LoggedDecision {
            leaf_hash: leaf_hash(leaf),
            received_at,
            submitted_by: env.submitted_by,
            decision: Decision::from_record(&env.record)?,
            record: env.record,
            signed: match &env.enforcer_signature {
                None => Signed::Unsigned,
                Some(s) => Signed::NotChecked { key_id: s.key_id },
            },
            enforcer_signature: env.enforcer_signature,
        })
    }

    /// Checks the enforcer signature, if the record has one, with the keys
    /// of `keys` named by its `enforcer.id`: [`Signed::Verified`] when one
    /// verifies it, [`Signed::NotChecked`] when `keys` has none of that
    /// enforcer, an error when the enforcer's keys do not verify it.
    pub fn check_signature(&mut self, keys: &EnforcerKeys) -> Result<Signed, SignatureError> {
        let Some(signature) = &self.enforcer_signature else {
            return Ok(Signed::Unsigned);
        };
        let enforcer = &self.decision.enforcer.id;
        if keys.signs(enforcer) {
            keys.check(enforcer, signature, &crate::cbor::encode(&self.record))?;
            self.signed = Signed::Verified {
                key_id: signature.key_id,
            };
        }
        Ok(self.signed)
    }
}

/// A map being read, with its path for errors.
struct Fields<'a> {
    path: &'a str,
    entries: &'a [(Value, Value)],
}

impl<'a> Fields<'a> {
    fn new(v: &'a Value, path: &'a str) -> Result<Fields<'a>, DecisionError> {
        match v {
            Value::Map(entries) => Ok(Fields { path, entries }),
            _ => Err(field(path.to_string(), "is not a map")),
        }
    }

    fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_text() == Some(key))
            .map(|(_, v)| v)
    }

    fn required(&self, key: &str) -> Result<&'a Value, DecisionError> {
        self.get(key)
            .ok_or_else(|| field(self.path(key), "is missing"))
    }

    fn text(&self, key: &str) -> Result<String, DecisionError> {
        self.required(key)?
            .as_text()
            .map(str::to_string)
            .ok_or_else(|| field(self.path(key), "is not text"))
    }

    fn opt_text(&self, key: &str) -> Result<Option<String>, DecisionError> {
        self.get(key)
            .map(|v| {
                v.as_text()
                    .map(str::to_string)
                    .ok_or_else(|| field(self.path(key), "is not text"))
            })
            .transpose()
    }

    fn time(&self, key: &str) -> Result<Timestamp, DecisionError> {
        Timestamp::from_leaf_value(self.required(key)?)
            .ok_or_else(|| field(self.path(key), "is not an RFC 3339 time"))
    }

    fn opt_time(&self, key: &str) -> Result<Option<Timestamp>, DecisionError> {
        self.get(key)
            .map(|v| {
                Timestamp::from_leaf_value(v)
                    .ok_or_else(|| field(self.path(key), "is not an RFC 3339 time"))
            })
            .transpose()
    }

    /// An array of text, or (for `scope`) one text; absent is empty.
    fn texts(&self, key: &str) -> Result<Vec<String>, DecisionError> {
        match self.get(key) {
            None => Ok(vec![]),
            Some(Value::Text(s)) if key == "scope" => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_text()
                        .map(str::to_string)
                        .ok_or_else(|| field(self.path(key), "holds something other than text"))
                })
                .collect(),
            Some(_) => Err(field(self.path(key), "is not an array of text")),
        }
    }

    fn map(&self, key: &'a str, path: &'a str) -> Result<Fields<'a>, DecisionError> {
        Fields::new(self.required(key)?, path)
    }

    fn opt_map(&self, key: &str, path: &'a str) -> Result<Option<Fields<'a>>, DecisionError> {
        self.get(key).map(|v| Fields::new(v, path)).transpose()
    }
}

fn field(path: String, problem: &'static str) -> DecisionError {
    DecisionError::Field { path, problem }
}

impl Decision {
    /// Reads a record (a CBOR map as stored in a leaf).
    pub fn from_record(record: &Value) -> Result<Decision, DecisionError> {
        let r = Fields::new(record, "")?;
        let enforcer = r.map("enforcer", "enforcer")?;
        let subject = r.map("subject", "subject")?;
        let resource = r.map("resource", "resource")?;
        let policy = r.map("policy", "policy")?;
        let delegation = match r.get("delegation") {
            None => vec![],
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| read_actor(item, &format!("delegation[{i}]")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(field("delegation".into(), "is not an array")),
        };
        let context = match r.opt_map("context", "context")? {
            None => Context::default(),
            Some(c) => Context {
                request_id: c.opt_text("request_id")?,
                trace_id: c.opt_text("trace_id")?,
                span_id: c.opt_text("span_id")?,
                parent_decision_id: c.opt_text("parent_decision_id")?,
                source_ip: c.opt_text("source_ip")?,
                task: c.opt_text("task")?,
                originating_service: c.opt_text("originating_service")?,
            },
        };
        let credential = match r.opt_map("credential", "credential")? {
            None => None,
            Some(c) => Some(Credential {
                kind: c.text("kind")?,
                id_hash: c.text("id_hash")?,
                issuer: c.opt_text("issuer")?,
                issued_at: c.time("issued_at")?,
                expires_at: c.time("expires_at")?,
                ttl_s: c
                    .required("ttl_s")?
                    .as_integer()
                    .and_then(|i| u64::try_from(i).ok())
                    .ok_or_else(|| {
                        field("credential.ttl_s".into(), "is not an unsigned integer")
                    })?,
                scopes: c.texts("scopes")?,
            }),
        };
        let emergency = match r.opt_map("emergency", "emergency")? {
            None => None,
            Some(e) => Some(Emergency {
                break_glass: e
                    .required("break_glass")?
                    .as_bool()
                    .ok_or_else(|| field("emergency.break_glass".into(), "is not a boolean"))?,
                justification: e.opt_text("justification")?,
                ticket: e.opt_text("ticket")?,
                approved_by: e.opt_text("approved_by")?,
                expires_at: e.opt_time("expires_at")?,
                grant_id: e.opt_text("grant_id")?,
            }),
        };
        Ok(Decision {
            decision_id: r.text("decision_id")?,
            time: r.time("time")?,
            enforcer: Enforcer {
                id: enforcer.text("id")?,
                kind: enforcer.text("kind")?,
            },
            subject: Subject {
                kind: subject.text("type")?,
                id: subject.text("id")?,
                identity_kind: subject.text("identity_kind")?,
                owner: subject.opt_text("owner")?,
                issuer: subject.opt_text("issuer")?,
                spiffe_id: subject.opt_text("spiffe_id")?,
            },
            delegation,
            action: r.map("action", "action")?.text("name")?,
            resource: Resource {
                kind: resource.text("type")?,
                id: resource.text("id")?,
                sensitivity: resource.opt_text("sensitivity")?,
            },
            context,
            policy: Policy {
                engine: policy.text("engine")?,
                id: policy.text("id")?,
                version: policy.text("version")?,
                hash: policy.opt_text("hash")?,
                owner: policy.opt_text("owner")?,
            },
            decision: r.text("decision")?,
            reasons: r.texts("reasons")?,
            errors: r.texts("errors")?,
            credential,
            emergency,
        })
    }

    /// The delegation chain's actor ids, in order.
    pub fn chain_ids(&self) -> Vec<&str> {
        self.delegation.iter().map(|a| a.id.as_str()).collect()
    }

    /// Whether the credential was valid at the decision time: issued at or
    /// before it, expiring after it. `None` without a credential.
    pub fn credential_valid(&self) -> Option<bool> {
        self.credential
            .as_ref()
            .map(|c| c.issued_at <= self.time && self.time < c.expires_at)
    }
}

fn read_actor(item: &Value, path: &str) -> Result<Actor, DecisionError> {
    let a = Fields::new(item, path)?;
    Ok(Actor {
        identity_kind: a.text("identity_kind")?,
        id: a.text("id")?,
        owner: a.opt_text("owner")?,
        granted_at: a.opt_time("granted_at")?,
        expires_at: a.opt_time("expires_at")?,
        approved_by: a.opt_text("approved_by")?,
        grant_id: a.opt_text("grant_id")?,
        scope: a.texts("scope")?,
    })
}
