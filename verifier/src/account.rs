//! Readable accounts of verified decisions and chains: what `ledger-verify`
//! prints, as text for people and as JSON for tools. Only verified content
//! reaches here ([`crate::evidence::Verified`], [`crate::chain::VerifiedChain`]),
//! so an account is never printed for something that did not verify.
//! Every line of a text account passes through [`shown::line`], so record
//! content cannot forge or hide a line of it.

use std::fmt::Write as _;

use serde_json::json;

use crate::chain::VerifiedChain;
use crate::checkpoint::Checkpoint;
use crate::decision::{Actor, Decision, LoggedDecision};
use crate::enforcer_signature::Signed;
use crate::findings::{self, Agreement};
use crate::json::to_json;
use crate::shown;

fn or_none(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("none")
}

fn owner(v: &Option<String>) -> String {
    match v {
        Some(o) => format!("owner {o}"),
        None => "NO OWNER".to_string(),
    }
}

fn actor_line(i: usize, a: &Actor) -> String {
    let mut s = format!(
        "{}. {} ({}), {}",
        i + 1,
        a.id,
        a.identity_kind,
        owner(&a.owner)
    );
    if let Some(t) = a.granted_at {
        let _ = write!(s, ", granted {t}");
    }
    if let Some(t) = a.expires_at {
        let _ = write!(s, ", expires {t}");
    }
    if let Some(g) = &a.grant_id {
        let _ = write!(s, ", grant {g}");
    }
    if let Some(b) = &a.approved_by {
        let _ = write!(s, ", approved by {b}");
    }
    if !a.scope.is_empty() {
        let _ = write!(s, ", scope {}", a.scope.join(" "));
    }
    s
}

/// The lines describing one decision (no heading, no findings).
fn decision_lines(logged: &LoggedDecision) -> Vec<(String, String)> {
    let (d, submitted_by) = (&logged.decision, &logged.submitted_by);
    let received_at = logged.received_at.canonical();
    let mut rows: Vec<(&str, String)> = Vec::new();
    let s = &d.subject;
    let mut subject = format!(
        "{} ({}, type {}), {}",
        s.id,
        s.identity_kind,
        s.kind,
        owner(&s.owner)
    );
    if let Some(i) = &s.issuer {
        let _ = write!(subject, ", issuer {i}");
    }
    if let Some(sp) = &s.spiffe_id {
        let _ = write!(subject, ", SPIFFE id {sp}");
    }
    rows.push(("subject", subject));
    if d.delegation.is_empty() {
        rows.push(("delegation", "none (the subject acted directly)".into()));
    }
    for (i, a) in d.delegation.iter().enumerate() {
        rows.push((if i == 0 { "delegation" } else { "" }, actor_line(i, a)));
    }
    rows.push(("action", d.action.clone()));
    let r = &d.resource;
    let mut resource = format!("{} (type {}", r.id, r.kind);
    if let Some(sens) = &r.sensitivity {
        let _ = write!(resource, ", sensitivity {sens}");
    }
    resource.push(')');
    rows.push(("resource", resource));
    let p = &d.policy;
    let mut policy = format!("{} {} version {}", p.engine, p.id, p.version);
    if let Some(h) = &p.hash {
        let _ = write!(policy, ", hash {h}");
    }
    if let Some(o) = &p.owner {
        let _ = write!(policy, ", owner {o}");
    }
    rows.push(("policy", policy));
    let mut decision = d.decision.clone();
    if !d.reasons.is_empty() {
        let _ = write!(decision, "; reasons: {}", d.reasons.join(", "));
    }
    if !d.errors.is_empty() {
        let _ = write!(decision, "; errors: {}", d.errors.join(", "));
    }
    rows.push(("decision", decision));
    rows.push((
        "credential",
        match &d.credential {
            None => "none".into(),
            Some(c) => {
                let mut line = format!(
                    "{} {}, issued {}, expires {}, TTL {} s",
                    c.kind, c.id_hash, c.issued_at, c.expires_at, c.ttl_s
                );
                if let Some(i) = &c.issuer {
                    let _ = write!(line, ", issuer {i}");
                }
                if !c.scopes.is_empty() {
                    let _ = write!(line, ", scopes {}", c.scopes.join(" "));
                }
                line.push_str(if d.credential_valid() == Some(true) {
                    ": valid at the decision time"
                } else {
                    ": NOT valid at the decision time"
                });
                line
            }
        },
    ));
    rows.push((
        "break-glass",
        match &d.emergency {
            None => "none".into(),
            Some(e) => {
                let mut line = format!(
                    "{}, justification {}, ticket {}, approved by {}",
                    if e.break_glass { "yes" } else { "no" },
                    or_none(&e.justification),
                    or_none(&e.ticket),
                    or_none(&e.approved_by)
                );
                if let Some(x) = e.expires_at {
                    let _ = write!(line, ", expires {x}");
                }
                if let Some(g) = &e.grant_id {
                    let _ = write!(line, ", grant {g}");
                }
                line
            }
        },
    ));
    rows.push((
        "enforcer",
        format!(
            "{} {} (as declared); submitted by {} (as authenticated)",
            d.enforcer.kind, d.enforcer.id, submitted_by
        ),
    ));
    if let Some(signed) = logged.signed.describe(&d.enforcer.id) {
        rows.push(("", signed));
    }
    let c = &d.context;
    let mut context: Vec<String> = Vec::new();
    for (name, v) in [
        ("request", &c.request_id),
        ("trace", &c.trace_id),
        ("span", &c.span_id),
        ("parent decision", &c.parent_decision_id),
        ("source ip", &c.source_ip),
        ("task", &c.task),
        ("originating service", &c.originating_service),
    ] {
        if let Some(v) = v {
            context.push(format!("{name} {v}"));
        }
    }
    if !context.is_empty() {
        rows.push(("context", context.join(", ")));
    }
    rows.push((
        "time",
        format!("decided {}, received by the ledger {received_at}", d.time),
    ));
    rows.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn table(rows: &[(String, String)], out: &mut String) {
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<12} {}", shown::line(v));
    }
}

/// The text account of one verified decision: everything the record says,
/// where it is logged, and the findings that apply to it. `signed` names
/// what the log signed the root in (`checkpoint`, `COSE receipt`).
pub fn decision_text(index: u64, cp: &Checkpoint, signed: &str, logged: &LoggedDecision) -> String {
    let d = &logged.decision;
    let heading = format!("decision {}: {}", d.decision_id, d.decision);
    let mut out = format!("{}\n", shown::line(&heading));
    let mut rows = decision_lines(logged);
    rows.push((
        "logged".into(),
        format!(
            "included at index {index} of tree size {}, {signed} signed by {}",
            cp.size, cp.origin
        ),
    ));
    rows.push((
        "".into(),
        format!("leaf hash {}", logged.leaf_hash.to_hex()),
    ));
    rows.push(("".into(), format!("root {}", cp.root.to_base64())));
    table(&rows, &mut out);
    for f in findings::of_logged(logged) {
        let _ = writeln!(out, "{}", shown::line(&f.to_string()));
    }
    out
}

/// The JSON account of one verified decision: the same facts as
/// [`decision_text`].
pub fn decision_json(index: u64, cp: &Checkpoint, logged: &LoggedDecision) -> serde_json::Value {
    let d = &logged.decision;
    json!({
        "verified": true,
        "index": index,
        "tree_size": cp.size,
        "origin": cp.origin,
        "root": cp.root.to_base64(),
        "leaf_hash": logged.leaf_hash.to_hex(),
        "received_at": logged.received_at,
        "submitted_by": logged.submitted_by,
        "enforcer_signature": logged.signed,
        "credential_valid": d.credential_valid(),
        "decision": d,
        "record": to_json(&logged.record),
        "findings": findings::of_logged(logged),
    })
}

/// One line of a chain tree for a hop (record text as it is: print it
/// through [`shown::line`]).
fn hop_line(d: &Decision) -> String {
    format!(
        "{}  {} {}  {} {} ({})  {}  {}  {}  {}@{}  {}",
        d.decision_id,
        d.enforcer.kind,
        d.enforcer.id,
        d.subject.identity_kind,
        d.subject.id,
        owner(&d.subject.owner),
        d.action,
        d.resource.id,
        d.decision,
        d.policy.id,
        d.policy.version,
        d.time
    )
}

fn agreement_text(a: &[Agreement], out: &mut String) {
    for req in a {
        let heading = format!("agreement for {}:", req.request);
        let _ = writeln!(out, "{}", shown::line(&heading));
        for r in &req.rows {
            let row = format!(
                "  {:<14} {:<28} {:<24} {:<6} subject {}  policy {}",
                r.role.label(),
                r.enforcer,
                r.decision_id,
                r.decision,
                r.subject,
                r.policy
            );
            let _ = writeln!(out, "{}", shown::line(&row));
        }
    }
}

/// The text account of a verified chain: the hops as an indented tree,
/// the agreement table per request, then the findings.
pub fn chain_text(chain: &VerifiedChain) -> String {
    let cp = &chain.checkpoint;
    let heading = format!(
        "chain of {} decisions ({}), every hop included in tree size {}, checkpoint signed by {} (root {})",
        chain.hops.len(),
        if chain.truncated {
            "TRUNCATED at the hop limit"
        } else {
            "complete"
        },
        cp.size,
        cp.origin,
        cp.root.to_base64()
    );
    let mut out = format!("{}\n", shown::line(&heading));
    for line in chain.tree() {
        let logged = &chain.hops[line.hop].logged;
        let mut hop = hop_line(&logged.decision);
        match logged.signed {
            Signed::Unsigned => {}
            Signed::NotChecked { .. } => hop.push_str("  [signed: not checked]"),
            Signed::Verified { .. } => hop.push_str("  [signed: verified]"),
        }
        let _ = writeln!(out, "{}{}", "  ".repeat(line.depth), shown::line(&hop));
    }
    agreement_text(&chain.agreement(), &mut out);
    for f in chain.findings() {
        let _ = writeln!(out, "{}", shown::line(&f.to_string()));
    }
    out
}

/// The JSON account of a verified chain.
pub fn chain_json(chain: &VerifiedChain) -> serde_json::Value {
    let cp = &chain.checkpoint;
    let hops: Vec<serde_json::Value> = chain
        .tree()
        .into_iter()
        .map(|line| {
            let h = &chain.hops[line.hop];
            json!({
                "index": h.index,
                "depth": line.depth,
                "leaf_hash": h.logged.leaf_hash.to_hex(),
                "received_at": h.logged.received_at,
                "submitted_by": h.logged.submitted_by,
                "enforcer_signature": h.logged.signed,
                "decision": h.logged.decision,
            })
        })
        .collect();
    json!({
        "verified": true,
        "truncated": chain.truncated,
        "tree_size": cp.size,
        "origin": cp.origin,
        "root": cp.root.to_base64(),
        "hops": hops,
        "agreement": chain.agreement(),
        "findings": chain.findings(),
    })
}
