//! The record's schema (specs/record.md) as the fast path reads it: one
//! function a map, each taking its fields in the body's order and
//! checking them by the same rules as the reference ([`crate::record::check`]).

use sha2::{Digest, Sha256};
use verifier::cbor::head;
use verifier::envelope::LeafHead;

use super::{map, texts, Field, In, Out};
use crate::record::schema::Timestamp;
use crate::record::sender::Sender;
use crate::record::terms::{credential_term, IndexTerms, TermValues};
use crate::record::{
    CheckedRecord, CREDENTIAL_KINDS, DECISIONS, ENFORCER_KINDS, IDENTITY_KINDS, MAX_DECISION_ID,
    MAX_DELEGATION,
};

/// What a record read in place is known and found by, borrowed from the
/// body.
#[derive(Default)]
pub(super) struct Found<'a> {
    decision_id: &'a str,
    time: Option<Timestamp>,
    subject: &'a str,
    owner: Option<&'a str>,
    actors: Vec<&'a str>,
    resource: &'a str,
    request_id: Option<&'a str>,
    trace_id: Option<&'a str>,
    parent: Option<&'a str>,
    policy: &'a str,
    version: &'a str,
    decision: &'a str,
    id_hash: Option<&'a str>,
    break_glass: bool,
}

impl Found<'_> {
    /// The checked record, its leaf written.
    pub(super) fn checked(self, leaf: LeafHead) -> Option<CheckedRecord> {
        let credential = self.id_hash.map(credential_term);
        Some(CheckedRecord {
            digest: Sha256::digest(leaf.record_cbor()).into(),
            decision_id: self.decision_id.to_string(),
            time: self.time?,
            terms: IndexTerms::new(TermValues {
                subject: self.subject,
                actors: &self.actors,
                resource: self.resource,
                policy: self.policy,
                policy_version: self.version,
                decision: self.decision,
                request_id: self.request_id,
                trace_id: self.trace_id,
                parent_decision_id: self.parent,
                credential: credential.as_deref(),
                owner: self.owner,
                break_glass: self.break_glass,
            }),
            leaf,
        })
    }
}

/// A text field's value, written.
fn text<'a>(r: &mut In<'a>, w: &mut Out<'_>) -> Option<&'a str> {
    let t = r.text()?;
    w.text(t);
    Some(t)
}

/// A text field that must be one of `allowed`, written.
fn one_of<'a>(r: &mut In<'a>, w: &mut Out<'_>, allowed: &[&str]) -> Option<&'a str> {
    let t = text(r, w)?;
    allowed.contains(&t).then_some(t)
}

/// A time field, written in canonical form.
fn time(r: &mut In<'_>, w: &mut Out<'_>) -> Option<Timestamp> {
    let t = r.time()?;
    w.time(&t);
    Some(t)
}

/// Free-form content that must be a map (`properties`, `extensions`).
fn free_map(r: &mut In<'_>, w: &mut Out<'_>) -> Option<()> {
    let item = r.item(1)?;
    w.free(item, true)
}

/// The record's own fields.
#[derive(Clone, Copy)]
enum R {
    Time,
    Action,
    Errors,
    Policy,
    Context,
    Reasons,
    Subject,
    Decision,
    Enforcer,
    Resource,
    Emergency,
    Credential,
    Delegation,
    Extensions,
    DecisionId,
    Obligations,
}

const RECORD: &[Field<R>] = &[
    ("time", true, R::Time),
    ("action", true, R::Action),
    ("errors", false, R::Errors),
    ("policy", true, R::Policy),
    ("context", false, R::Context),
    ("reasons", false, R::Reasons),
    ("subject", true, R::Subject),
    ("decision", true, R::Decision),
    ("enforcer", true, R::Enforcer),
    ("resource", true, R::Resource),
    ("emergency", false, R::Emergency),
    ("credential", false, R::Credential),
    ("delegation", false, R::Delegation),
    ("extensions", false, R::Extensions),
    ("decision_id", true, R::DecisionId),
    ("obligations", false, R::Obligations),
];

/// One record from `sender`.
pub(super) fn record<'a>(
    r: &mut In<'a>,
    w: &mut Out<'_>,
    sender: &Sender<'_>,
) -> Option<Found<'a>> {
    let mut f = Found::default();
    map(r, w, RECORD, false, |field, r, w| {
        match field {
            R::DecisionId => {
                f.decision_id = text(r, w)?;
                if f.decision_id.len() > MAX_DECISION_ID {
                    return None;
                }
            }
            R::Time => f.time = Some(time(r, w)?),
            R::Enforcer => enforcer(r, w, sender)?,
            R::Subject => subject(r, w, &mut f)?,
            R::Delegation => delegation(r, w, &mut f.actors)?,
            R::Action => action(r, w)?,
            R::Resource => f.resource = resource(r, w)?,
            R::Context => context(r, w, &mut f)?,
            R::Policy => policy(r, w, &mut f)?,
            R::Decision => f.decision = one_of(r, w, DECISIONS)?,
            R::Reasons | R::Errors => texts(r, w)?,
            R::Obligations => {
                if !matches!(r.peek()?, 0x80..=0x9b) {
                    return None;
                }
                let item = r.item(1)?;
                w.free(item, false)?;
            }
            R::Credential => f.id_hash = Some(credential(r, w)?),
            R::Emergency => f.break_glass = emergency(r, w)?,
            R::Extensions => free_map(r, w)?,
        }
        Some(())
    })?;
    Some(f)
}

/// `enforcer`'s fields.
#[derive(Clone, Copy)]
enum Enf {
    Id,
    Kind,
}

const ENFORCER: &[Field<Enf>] = &[("id", true, Enf::Id), ("kind", true, Enf::Kind)];

fn enforcer(r: &mut In<'_>, w: &mut Out<'_>, sender: &Sender<'_>) -> Option<()> {
    map(r, w, ENFORCER, false, |field, r, w| match field {
        Enf::Id => {
            let id = text(r, w)?;
            sender.may_write_unsigned(id).then_some(())
        }
        Enf::Kind => one_of(r, w, ENFORCER_KINDS).map(drop),
    })
    .map(drop)
}

/// `subject`'s fields.
#[derive(Clone, Copy)]
enum Sub {
    Id,
    Type,
    Owner,
    Issuer,
    SpiffeId,
    Properties,
    IdentityKind,
}

const SUBJECT: &[Field<Sub>] = &[
    ("id", true, Sub::Id),
    ("type", true, Sub::Type),
    ("owner", false, Sub::Owner),
    ("issuer", false, Sub::Issuer),
    ("spiffe_id", false, Sub::SpiffeId),
    ("properties", false, Sub::Properties),
    ("identity_kind", true, Sub::IdentityKind),
];

fn subject<'a>(r: &mut In<'a>, w: &mut Out<'_>, f: &mut Found<'a>) -> Option<()> {
    map(r, w, SUBJECT, false, |field, r, w| {
        match field {
            Sub::Type | Sub::Issuer => {
                text(r, w)?;
            }
            Sub::Id => f.subject = text(r, w)?,
            Sub::IdentityKind => {
                one_of(r, w, IDENTITY_KINDS)?;
            }
            Sub::Owner => f.owner = Some(text(r, w)?),
            Sub::SpiffeId => {
                if !text(r, w)?.starts_with("spiffe://") {
                    return None;
                }
            }
            Sub::Properties => free_map(r, w)?,
        }
        Some(())
    })
    .map(drop)
}

/// A delegation hop's fields.
#[derive(Clone, Copy)]
enum Act {
    Id,
    Owner,
    Scope,
    GrantId,
    ExpiresAt,
    GrantedAt,
    ApprovedBy,
    IdentityKind,
}

const ACTOR: &[Field<Act>] = &[
    ("id", true, Act::Id),
    ("owner", false, Act::Owner),
    ("scope", false, Act::Scope),
    ("grant_id", false, Act::GrantId),
    ("expires_at", false, Act::ExpiresAt),
    ("granted_at", false, Act::GrantedAt),
    ("approved_by", false, Act::ApprovedBy),
    ("identity_kind", true, Act::IdentityKind),
];

/// The delegation chain; each hop's `id` is pushed onto `actors`.
fn delegation<'a>(r: &mut In<'a>, w: &mut Out<'_>, actors: &mut Vec<&'a str>) -> Option<()> {
    let (4, n) = r.head()? else { return None };
    if n > MAX_DELEGATION as u64 {
        return None;
    }
    head(4, n, w.out);
    let mut last_grant: Option<Timestamp> = None;
    for _ in 0..n {
        let (mut granted, mut expires) = (None, None);
        map(r, w, ACTOR, false, |field, r, w| {
            match field {
                Act::IdentityKind => {
                    one_of(r, w, IDENTITY_KINDS)?;
                }
                Act::Id => actors.push(text(r, w)?),
                Act::Owner | Act::ApprovedBy | Act::GrantId => {
                    text(r, w)?;
                }
                Act::GrantedAt => granted = Some(time(r, w)?),
                Act::ExpiresAt => expires = Some(time(r, w)?),
                Act::Scope => scope(r, w)?,
            }
            Some(())
        })?;
        if let Some(granted) = granted {
            if last_grant.is_some_and(|prev| granted < prev) {
                return None;
            }
            last_grant = Some(granted);
        }
        if expires.is_some_and(|e| granted.is_some_and(|g| e < g)) {
            return None;
        }
    }
    Some(())
}

/// A hop's `scope`: one text or an array of text, each as a text field.
fn scope(r: &mut In<'_>, w: &mut Out<'_>) -> Option<()> {
    match r.peek()? {
        0x60..=0x7b => {
            let t = r.text()?;
            w.text(t);
            Some(())
        }
        0x80..=0x9b => texts(r, w),
        _ => None,
    }
}

/// `action`'s fields.
#[derive(Clone, Copy)]
enum Action {
    Name,
    Properties,
}

const ACTION: &[Field<Action>] = &[
    ("name", true, Action::Name),
    ("properties", false, Action::Properties),
];

fn action(r: &mut In<'_>, w: &mut Out<'_>) -> Option<()> {
    map(r, w, ACTION, false, |field, r, w| match field {
        Action::Name => text(r, w).map(drop),
        Action::Properties => free_map(r, w),
    })
    .map(drop)
}

/// `resource`'s fields.
#[derive(Clone, Copy)]
enum Res {
    Id,
    Type,
    Properties,
    Sensitivity,
}

const RESOURCE: &[Field<Res>] = &[
    ("id", true, Res::Id),
    ("type", true, Res::Type),
    ("properties", false, Res::Properties),
    ("sensitivity", false, Res::Sensitivity),
];

/// The resource; answers its `id`.
fn resource<'a>(r: &mut In<'a>, w: &mut Out<'_>) -> Option<&'a str> {
    let mut id = "";
    map(r, w, RESOURCE, false, |field, r, w| {
        match field {
            Res::Type | Res::Sensitivity => {
                text(r, w)?;
            }
            Res::Id => id = text(r, w)?,
            Res::Properties => free_map(r, w)?,
        }
        Some(())
    })?;
    Some(id)
}

/// `context`'s own fields (it may have others).
#[derive(Clone, Copy)]
enum Ctx {
    Task,
    SpanId,
    TraceId,
    SourceIp,
    RequestId,
    ParentDecisionId,
    OriginatingService,
}

const CONTEXT: &[Field<Ctx>] = &[
    ("task", false, Ctx::Task),
    ("span_id", false, Ctx::SpanId),
    ("trace_id", false, Ctx::TraceId),
    ("source_ip", false, Ctx::SourceIp),
    ("request_id", false, Ctx::RequestId),
    ("parent_decision_id", false, Ctx::ParentDecisionId),
    ("originating_service", false, Ctx::OriginatingService),
];

/// The request context: its own fields, and any other kept as free-form
/// content.
fn context<'a>(r: &mut In<'a>, w: &mut Out<'_>, f: &mut Found<'a>) -> Option<()> {
    map(r, w, CONTEXT, true, |field, r, w| {
        match field {
            Ctx::RequestId => f.request_id = Some(text(r, w)?),
            Ctx::TraceId => f.trace_id = Some(text(r, w)?),
            Ctx::ParentDecisionId => f.parent = Some(text(r, w)?),
            Ctx::SourceIp => {
                text(r, w)?.parse::<std::net::IpAddr>().ok()?;
            }
            Ctx::SpanId | Ctx::Task | Ctx::OriginatingService => {
                text(r, w)?;
            }
        }
        Some(())
    })
    .map(drop)
}

/// `policy`'s fields.
#[derive(Clone, Copy)]
enum Pol {
    Id,
    Hash,
    Owner,
    Engine,
    Version,
}

const POLICY: &[Field<Pol>] = &[
    ("id", true, Pol::Id),
    ("hash", false, Pol::Hash),
    ("owner", false, Pol::Owner),
    ("engine", true, Pol::Engine),
    ("version", true, Pol::Version),
];

fn policy<'a>(r: &mut In<'a>, w: &mut Out<'_>, f: &mut Found<'a>) -> Option<()> {
    map(r, w, POLICY, false, |field, r, w| {
        match field {
            Pol::Engine | Pol::Hash | Pol::Owner => {
                text(r, w)?;
            }
            Pol::Id => f.policy = text(r, w)?,
            Pol::Version => f.version = text(r, w)?,
        }
        Some(())
    })
    .map(drop)
}

/// `credential`'s fields.
#[derive(Clone, Copy)]
enum Cred {
    Kind,
    TtlS,
    Issuer,
    Scopes,
    IdHash,
    IssuedAt,
    ExpiresAt,
}

const CREDENTIAL: &[Field<Cred>] = &[
    ("kind", true, Cred::Kind),
    ("ttl_s", true, Cred::TtlS),
    ("issuer", false, Cred::Issuer),
    ("scopes", false, Cred::Scopes),
    ("id_hash", true, Cred::IdHash),
    ("issued_at", true, Cred::IssuedAt),
    ("expires_at", true, Cred::ExpiresAt),
];

/// The credential; answers its `id_hash`.
fn credential<'a>(r: &mut In<'a>, w: &mut Out<'_>) -> Option<&'a str> {
    let (mut id_hash, mut issued, mut expires) = ("", None, None);
    map(r, w, CREDENTIAL, false, |field, r, w| {
        match field {
            Cred::Kind => {
                one_of(r, w, CREDENTIAL_KINDS)?;
            }
            Cred::Issuer => {
                text(r, w)?;
            }
            Cred::IdHash => {
                id_hash = text(r, w)?;
                if id_hash.len() < 16
                    || !id_hash
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+/=:_-".contains(&b))
                {
                    return None;
                }
            }
            Cred::IssuedAt => issued = Some(time(r, w)?),
            Cred::ExpiresAt => expires = Some(time(r, w)?),
            Cred::TtlS => {
                let (0, n) = r.head()? else { return None };
                head(0, n, w.out);
            }
            Cred::Scopes => texts(r, w)?,
        }
        Some(())
    })?;
    (expires? >= issued?).then_some(id_hash)
}

/// `emergency`'s fields.
#[derive(Clone, Copy)]
enum Em {
    Ticket,
    GrantId,
    ExpiresAt,
    ApprovedBy,
    BreakGlass,
    Justification,
}

const EMERGENCY: &[Field<Em>] = &[
    ("ticket", false, Em::Ticket),
    ("grant_id", false, Em::GrantId),
    ("expires_at", false, Em::ExpiresAt),
    ("approved_by", false, Em::ApprovedBy),
    ("break_glass", true, Em::BreakGlass),
    ("justification", true, Em::Justification),
];

/// The emergency access; answers whether it is break-glass.
fn emergency(r: &mut In<'_>, w: &mut Out<'_>) -> Option<bool> {
    let mut break_glass = false;
    map(r, w, EMERGENCY, false, |field, r, w| {
        match field {
            Em::BreakGlass => {
                break_glass = match r.peek()? {
                    0xf4 => false,
                    0xf5 => true,
                    _ => return None,
                };
                r.at += 1;
                w.out.push(if break_glass { 0xf5 } else { 0xf4 });
            }
            Em::Justification | Em::Ticket | Em::ApprovedBy | Em::GrantId => {
                text(r, w)?;
            }
            Em::ExpiresAt => {
                time(r, w)?;
            }
        }
        Some(())
    })?;
    Some(break_glass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use verifier::cbor::by_encoding;

    fn in_order<T>(fields: &[Field<T>]) -> bool {
        fields
            .windows(2)
            .all(|p| by_encoding(p[0].0, p[1].0).is_lt())
    }

    /// A map's entries are ordered by their fields' places in its list,
    /// so every list must be in deterministic order.
    #[test]
    fn every_map_lists_its_fields_in_deterministic_order() {
        assert!(in_order(RECORD));
        assert!(in_order(ENFORCER));
        assert!(in_order(SUBJECT));
        assert!(in_order(ACTOR));
        assert!(in_order(ACTION));
        assert!(in_order(RESOURCE));
        assert!(in_order(CONTEXT));
        assert!(in_order(POLICY));
        assert!(in_order(CREDENTIAL));
        assert!(in_order(EMERGENCY));
    }
}
