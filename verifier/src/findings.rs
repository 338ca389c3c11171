//! Findings over decoded decisions (specs/chain.md, "Findings"): facts a
//! responder acts on, not verification errors. A bundle whose proofs hold is
//! authentic whatever it finds.
//!
//! [`of_decision`] looks at one record (credential times and TTL, owners,
//! break-glass, expired grants); [`of_logged`] adds how it was logged (long
//! after it was made, or before); [`across`] finds what only several hops
//! show: an enforcer disagreeing with the policy engine on one request,
//! several versions of one policy in a request, a parent that is not there,
//! and a delegation chain that is not its parent's chain extended.
//! [`agreement`] is the per-request table the chain findings are read from.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::decision::{Decision, LoggedDecision};

/// How far `ttl_s` may be from `expires_at − issued_at` (the two times may
/// be rounded differently by an issuer).
pub const TTL_SLACK_S: f64 = 1.0;

/// How long after a decision was made the ledger may receive it and it
/// still counts as logged inline: decision-log batching and retries take
/// minutes, not hours.
pub const LATE_AFTER_S: f64 = 3600.0;

/// How far a decision's `time` may be ahead of the ledger's `received_at`
/// (the enforcer's and the ledger's clocks disagree by that much at most).
pub const AHEAD_SLACK_S: f64 = 300.0;

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind of finding (stable, for tools): see [`Finding::code`].
    pub code: &'static str,
    /// The decisions it is about.
    pub decisions: Vec<String>,
    /// One line for people.
    pub message: String,
}

impl Finding {
    fn new(code: &'static str, decisions: Vec<String>, message: String) -> Finding {
        Finding {
            code,
            decisions,
            message,
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "finding: {}", self.message)
    }
}

/// The findings one record shows by itself.
pub fn of_decision(d: &Decision) -> Vec<Finding> {
    let id = || vec![d.decision_id.clone()];
    let mut out = Vec::new();
    if d.subject.owner.is_none() {
        out.push(Finding::new(
            "no_owner",
            id(),
            format!(
                "decision {}: subject {} ({}) has no accountable owner",
                d.decision_id, d.subject.id, d.subject.identity_kind
            ),
        ));
    }
    for (i, a) in d.delegation.iter().enumerate() {
        if a.owner.is_none() {
            out.push(Finding::new(
                "no_owner",
                id(),
                format!(
                    "decision {}: delegation[{i}] {} ({}) has no accountable owner",
                    d.decision_id, a.id, a.identity_kind
                ),
            ));
        }
        if let Some(exp) = a.expires_at.filter(|e| d.time >= *e) {
            out.push(Finding::new(
                "grant_expired",
                id(),
                format!(
                    "decision {}: the delegation grant to {}{} expired at {exp}, used at {}",
                    d.decision_id,
                    a.id,
                    a.grant_id
                        .as_deref()
                        .map_or(String::new(), |g| format!(" (grant {g})")),
                    d.time
                ),
            ));
        }
    }
    if let Some(c) = &d.credential {
        let jit = c.kind == "jit_grant";
        if d.time < c.issued_at {
            out.push(Finding::new(
                "credential_not_yet_valid",
                id(),
                format!(
                    "decision {}: credential {} used at {}, before it was issued at {}",
                    d.decision_id, c.id_hash, d.time, c.issued_at
                ),
            ));
        }
        if d.time >= c.expires_at {
            let (code, what) = if jit {
                ("jit_grant_expired", "JIT grant")
            } else {
                ("credential_expired", "credential")
            };
            out.push(Finding::new(
                code,
                id(),
                format!(
                    "decision {}: {what} {} used at {}, after it expired at {}",
                    d.decision_id, c.id_hash, d.time, c.expires_at
                ),
            ));
        }
        let lifetime = c.expires_at.seconds_since(&c.issued_at);
        if (lifetime - c.ttl_s as f64).abs() > TTL_SLACK_S {
            out.push(Finding::new(
                "ttl_mismatch",
                id(),
                format!(
                    "decision {}: credential {} states a TTL of {} s, but it was issued at {} and expires at {} ({lifetime} s)",
                    d.decision_id, c.id_hash, c.ttl_s, c.issued_at, c.expires_at
                ),
            ));
        }
    }
    if let Some(e) = d.emergency.as_ref().filter(|e| e.break_glass) {
        let missing: Vec<&str> = [
            ("justification", e.justification.is_none()),
            ("ticket", e.ticket.is_none()),
            ("approver", e.approved_by.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, absent)| absent.then_some(name))
        .collect();
        if !missing.is_empty() {
            out.push(Finding::new(
                "break_glass_unapproved",
                id(),
                format!(
                    "decision {}: break-glass access without {}",
                    d.decision_id,
                    missing.join(", ")
                ),
            ));
        }
        if let Some(exp) = e.expires_at.filter(|x| d.time >= *x) {
            out.push(Finding::new(
                "break_glass_expired",
                id(),
                format!(
                    "decision {}: break-glass access used at {}, after it expired at {exp}",
                    d.decision_id, d.time
                ),
            ));
        }
    }
    out
}

/// Whole days, hours, minutes or seconds, for a message.
pub(crate) fn span(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// How much later than its `time` the ledger received `l`, in seconds
/// (negative: before), when that is more than counts as logged inline: over
/// [`LATE_AFTER_S`] after, or over [`AHEAD_SLACK_S`] before.
pub fn not_inline(l: &LoggedDecision) -> Option<f64> {
    let delay = l.received_at.seconds_since(&l.decision.time);
    (delay > LATE_AFTER_S || -delay > AHEAD_SLACK_S).then_some(delay)
}

/// The findings of one logged decision: the record's own ([`of_decision`]),
/// then whether the ledger received it inline ([`not_inline`]): long after
/// its `time` (`logged_late`), or before it (`time_after_receipt`).
pub fn of_logged(l: &LoggedDecision) -> Vec<Finding> {
    let d = &l.decision;
    let mut out = of_decision(d);
    match not_inline(l) {
        Some(delay) if delay > 0.0 => out.push(Finding::new(
            "logged_late",
            vec![d.decision_id.clone()],
            format!(
                "decision {}: made at {}, received by the ledger at {} ({} later): not logged inline",
                d.decision_id,
                d.time,
                l.received_at,
                span(delay)
            ),
        )),
        Some(delay) => out.push(Finding::new(
            "time_after_receipt",
            vec![d.decision_id.clone()],
            format!(
                "decision {}: its time {} is {} after the ledger received it at {}: the enforcer's clock or the record's time is wrong",
                d.decision_id,
                d.time,
                span(-delay),
                l.received_at
            ),
        )),
        None => {}
    }
    out
}

/// What part an enforcer plays in a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// `enforcer.kind` = `policy_engine`.
    PolicyEngine,
    /// `enforcer.kind` = `token_issuer`.
    TokenIssuer,
    /// Every other kind: the gate that lets the request through or not.
    Gate,
}

impl Role {
    /// The role of an `enforcer.kind`.
    pub fn of(kind: &str) -> Role {
        match kind {
            "policy_engine" => Role::PolicyEngine,
            "token_issuer" => Role::TokenIssuer,
            _ => Role::Gate,
        }
    }

    /// For people: policy engine, token issuer, gate.
    pub fn label(&self) -> &'static str {
        match self {
            Role::PolicyEngine => "policy engine",
            Role::TokenIssuer => "token issuer",
            Role::Gate => "gate",
        }
    }
}

/// One decision's line in a request's agreement table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgreementRow {
    /// Its part in the request.
    pub role: Role,
    /// `enforcer.kind` and `enforcer.id`.
    pub enforcer: String,
    /// The decision's id.
    pub decision_id: String,
    /// `allow` or `deny`.
    pub decision: String,
    /// `subject.id`.
    pub subject: String,
    /// `policy.id@policy.version`.
    pub policy: String,
}

/// The decisions made for one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Agreement {
    /// `request_id <id>`, or `trace_id <id>` for decisions without a
    /// request id.
    pub request: String,
    /// Policy engines first, then token issuers, then gates; in log order
    /// within each.
    pub rows: Vec<AgreementRow>,
}

/// Writes into `out` the request a decision belongs to, as
/// [`Agreement::request`] names it: `request_id <id>`, else `trace_id <id>`;
/// false (and `out` empty) when it has neither.
pub(crate) fn write_request(d: &Decision, out: &mut String) -> bool {
    out.clear();
    let (label, id) = match (&d.context.request_id, &d.context.trace_id) {
        (Some(r), _) => ("request_id ", r),
        (None, Some(t)) => ("trace_id ", t),
        (None, None) => return false,
    };
    out.push_str(label);
    out.push_str(id);
    true
}

/// The agreement table: the hops grouped by `context.request_id` (by
/// `trace_id` where a hop has no request id; a hop with neither is its
/// own request and is left out).
pub fn agreement(hops: &[&Decision]) -> Vec<Agreement> {
    let mut groups: BTreeMap<String, Vec<&Decision>> = BTreeMap::new();
    for d in hops {
        let mut key = String::new();
        if write_request(d, &mut key) {
            groups.entry(key).or_default().push(d);
        }
    }
    groups
        .into_iter()
        .map(|(request, ds)| {
            let mut rows: Vec<AgreementRow> = ds
                .iter()
                .map(|d| AgreementRow {
                    role: Role::of(&d.enforcer.kind),
                    enforcer: format!("{} {}", d.enforcer.kind, d.enforcer.id),
                    decision_id: d.decision_id.clone(),
                    decision: d.decision.clone(),
                    subject: d.subject.id.clone(),
                    policy: format!("{}@{}", d.policy.id, d.policy.version),
                })
                .collect();
            rows.sort_by_key(|r| r.role);
            Agreement { request, rows }
        })
        .collect()
}

/// One decision of a request, as a finding about two of them names it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Side<'a> {
    /// `enforcer.kind` and `enforcer.id`.
    pub enforcer: &'a str,
    /// The decision's id.
    pub decision_id: &'a str,
    /// `allow` or `deny`.
    pub decision: &'a str,
}

impl<'a> From<&'a AgreementRow> for Side<'a> {
    fn from(r: &'a AgreementRow) -> Side<'a> {
        Side {
            enforcer: &r.enforcer,
            decision_id: &r.decision_id,
            decision: &r.decision,
        }
    }
}

/// `engine_gate_disagree`: in `request`, the policy engine decided otherwise
/// than the gate.
pub(crate) fn engine_gate_disagree(request: &str, engine: Side, gate: Side) -> Finding {
    let verb = |d: &str| if d == "deny" { "denied" } else { "allowed" };
    Finding::new(
        "engine_gate_disagree",
        vec![engine.decision_id.to_string(), gate.decision_id.to_string()],
        format!(
            "{request}: the policy engine ({}, decision {}) {} what the gate ({}, decision {}) {}",
            engine.enforcer,
            engine.decision_id,
            verb(engine.decision),
            gate.enforcer,
            gate.decision_id,
            verb(gate.decision)
        ),
    )
}

/// `issuer_gate_disagree`: in `request`, the token issuer denied what the
/// gate allowed.
pub(crate) fn issuer_gate_disagree(request: &str, issuer: Side, gate: Side) -> Finding {
    Finding::new(
        "issuer_gate_disagree",
        vec![issuer.decision_id.to_string(), gate.decision_id.to_string()],
        format!(
            "{request}: the token issuer ({}, decision {}) denied what the gate ({}, decision {}) allowed",
            issuer.enforcer, issuer.decision_id, gate.enforcer, gate.decision_id
        ),
    )
}

/// The findings only several hops show: disagreement in a request, several
/// versions of one policy, an absent parent, a switched identity.
/// `truncated`: the bundle stopped at its hop limit, so an absent parent may
/// only be beyond it.
pub fn across(hops: &[&Decision], truncated: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    for a in agreement(hops) {
        let by = |role: Role| a.rows.iter().filter(move |r| r.role == role);
        for gate in by(Role::Gate) {
            for engine in by(Role::PolicyEngine) {
                if engine.decision != gate.decision {
                    out.push(engine_gate_disagree(&a.request, engine.into(), gate.into()));
                }
            }
            for issuer in by(Role::TokenIssuer) {
                if issuer.decision == "deny" && gate.decision == "allow" {
                    out.push(issuer_gate_disagree(&a.request, issuer.into(), gate.into()));
                }
            }
        }
        let mut versions: BTreeMap<&str, Vec<&AgreementRow>> = BTreeMap::new();
        for r in &a.rows {
            let id = r.policy.rsplit_once('@').map_or(r.policy.as_str(), |p| p.0);
            versions.entry(id).or_default().push(r);
        }
        for (policy, rows) in versions {
            let mut seen: Vec<&str> = rows.iter().map(|r| r.policy.as_str()).collect();
            seen.sort_unstable();
            seen.dedup();
            if seen.len() > 1 {
                out.push(Finding::new(
                    "policy_version_mismatch",
                    rows.iter().map(|r| r.decision_id.clone()).collect(),
                    format!(
                        "{}: policy {policy} was applied in {} versions: {}",
                        a.request,
                        seen.len(),
                        rows.iter()
                            .map(|r| format!("{} in {}", r.policy, r.decision_id))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
    for d in hops {
        let Some(parent_id) = &d.context.parent_decision_id else {
            continue;
        };
        let Some(parent) = hops.iter().find(|p| &p.decision_id == parent_id) else {
            out.push(Finding::new(
                "parent_absent",
                vec![d.decision_id.clone()],
                format!(
                    "decision {} names parent {parent_id}, which is not in the {}",
                    d.decision_id,
                    if truncated {
                        "bundle (it was truncated at its hop limit)"
                    } else {
                        "chain"
                    }
                ),
            ));
            continue;
        };
        let (pc, cc) = (parent.chain_ids(), d.chain_ids());
        let extends = cc.len() >= pc.len() && cc[..pc.len()] == pc[..];
        if parent.subject.id != d.subject.id || !extends {
            out.push(Finding::new(
                "identity_switch",
                vec![parent.decision_id.clone(), d.decision_id.clone()],
                format!(
                    "decision {} acts for {} via [{}], but its parent {} was for {} via [{}]: not the parent's delegation chain extended",
                    d.decision_id,
                    d.subject.id,
                    cc.join(" > "),
                    parent.decision_id,
                    parent.subject.id,
                    pc.join(" > ")
                ),
            ));
        }
    }
    out
}
