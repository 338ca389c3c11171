//! The fast path of [`check`](super::check): records read in place from
//! the request's bytes, checked field by field into borrowed values, and
//! written as deterministic CBOR in one pass, with no generic value tree
//! of the body and no copy of its strings.
//!
//! It only ever *accepts*: a record it cannot read or that breaks a rule
//! makes it answer `None`, and the reference path (the body decoded into
//! values and checked by [`super::check`]) then decides, with its exact
//! error messages. So the fast path needs no error reporting, and it may
//! leave rare encodings to the reference (indefinite lengths, bignums,
//! epoch times as floats, free-form content). A property test holds the
//! two to the same answer: whatever the fast path accepts, the reference
//! accepts with the same bytes, digest and index terms
//! (`ingest/tests/fast.rs`).
//!
//! JSON reaches it through [`json_to_cbor`]: the text is transcoded
//! straight into CBOR bytes (maps and arrays with 8-byte counts patched in
//! at their end), which the same reader then checks.

use sha2::{Digest, Sha256};
use verifier::cbor::{by_encoding, head, text_into};
use verifier::envelope::LeafHead;

use super::schema::{check_free, Timestamp, MAX_TEXT};
use super::terms::{credential_term, IndexTerms, TermValues};
use super::{
    CheckedRecord, CREDENTIAL_KINDS, DECISIONS, ENFORCER_KINDS, IDENTITY_KINDS, MAX_DECISION_ID,
    MAX_DELEGATION,
};

/// Deepest nesting read in place (free-form content goes to the reference).
const MAX_DEPTH: usize = 64;

/// A reader of CBOR items in place.
struct In<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> In<'a> {
    fn new(b: &'a [u8]) -> In<'a> {
        In { b, at: 0 }
    }

    fn done(&self) -> bool {
        self.at == self.b.len()
    }

    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    /// The next head: major type, additional info and argument. Definite
    /// lengths only (`None` for indefinite ones and reserved values).
    fn head(&mut self) -> Option<(u8, u8, u64)> {
        let first = *self.b.get(self.at)?;
        self.at += 1;
        let (major, info) = (first >> 5, first & 0x1f);
        let arg = match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes(self.take(2)?.try_into().ok()?)),
            26 => u64::from(u32::from_be_bytes(self.take(4)?.try_into().ok()?)),
            27 => u64::from_be_bytes(self.take(8)?.try_into().ok()?),
            _ => return None,
        };
        Some((major, info, arg))
    }

    /// Skips one item, returning its bytes. Only its structure is checked:
    /// a text the fast path uses is checked where it is read ([`In::text`]),
    /// and free-form content is decoded by the reference.
    fn item(&mut self, depth: usize) -> Option<&'a [u8]> {
        if depth > MAX_DEPTH {
            return None;
        }
        let start = self.at;
        let (major, _, arg) = self.head()?;
        match major {
            0 | 1 | 7 => {}
            2 | 3 => {
                self.take(arg)?;
            }
            4 => {
                for _ in 0..arg {
                    self.item(depth + 1)?;
                }
            }
            5 => {
                for _ in 0..arg {
                    self.item(depth + 1)?;
                    self.item(depth + 1)?;
                }
            }
            _ => {
                self.item(depth + 1)?;
            }
        }
        Some(&self.b[start..self.at])
    }

    fn text(&mut self) -> Option<&'a str> {
        match self.head()? {
            (3, _, n) => std::str::from_utf8(self.take(n)?).ok(),
            _ => None,
        }
    }
}

/// Whether an item is `null` (which, for an optional field, is absence).
fn is_null(item: &[u8]) -> bool {
    item == [0xf6]
}

/// Most fields a schema map may have; a map with more is left to the
/// reference (the largest, the record itself, has 17 known fields).
const MAX_FIELDS: usize = 32;

/// A CBOR map of a record, read in place: its entries, each key text and
/// none twice; fields are taken one by one and [`Fields::finish`] refuses
/// any left over. Keys are compared as bytes: one that names a field is
/// valid UTF-8 by being equal to its name, and any other is either refused
/// or checked when it is kept ([`Fields::rest`]).
struct Fields<'a> {
    item: &'a [u8],
    /// Per entry: its key's and its value's start and end in `item`.
    /// Offsets of 16 bits keep this small to move; a record too large for
    /// them could not be a leaf (at most 65,535 bytes) anyway.
    at: [[u16; 4]; MAX_FIELDS],
    len: usize,
    used: u32,
}

impl<'a> Fields<'a> {
    fn new(item: &'a [u8]) -> Option<Fields<'a>> {
        if item.len() > usize::from(u16::MAX) {
            return None;
        }
        let mut r = In::new(item);
        let (5, _, n) = r.head()? else { return None };
        if n > MAX_FIELDS as u64 {
            return None;
        }
        let mut f = Fields {
            item,
            at: [[0; 4]; MAX_FIELDS],
            len: n as usize,
            used: 0,
        };
        for i in 0..f.len {
            let (3, _, klen) = r.head()? else { return None };
            let k0 = r.at;
            let key = r.take(klen)?;
            if (0..i).any(|j| f.key(j) == key) {
                return None;
            }
            let v0 = r.at;
            r.item(1)?;
            f.at[i] = [k0 as u16, (k0 + key.len()) as u16, v0 as u16, r.at as u16];
        }
        r.done().then_some(f)
    }

    fn key(&self, i: usize) -> &'a [u8] {
        let [k0, k1, _, _] = self.at[i];
        &self.item[usize::from(k0)..usize::from(k1)]
    }

    fn value(&self, i: usize) -> &'a [u8] {
        let [_, _, v0, v1] = self.at[i];
        &self.item[usize::from(v0)..usize::from(v1)]
    }

    /// The value of `key` unless absent or null (which means absent).
    fn get(&mut self, key: &str) -> Option<&'a [u8]> {
        let i = (0..self.len).find(|&i| self.key(i) == key.as_bytes())?;
        self.used |= 1 << i;
        let v = self.value(i);
        (!is_null(v)).then_some(v)
    }

    /// The fields not taken, their keys checked as text.
    fn rest(&self) -> Option<Vec<(&'a str, &'a [u8])>> {
        (0..self.len)
            .filter(|i| self.used & (1 << i) == 0)
            .map(|i| Some((std::str::from_utf8(self.key(i)).ok()?, self.value(i))))
            .collect()
    }

    /// Whether every field was taken.
    fn finish(&self) -> Option<()> {
        (self.used.count_ones() as usize == self.len).then_some(())
    }
}

/// A checked value, borrowed from the body where it can be, written in
/// deterministic CBOR by [`Out::write`].
enum Out<'a> {
    Text(&'a str),
    Time(Timestamp),
    Uint(u64),
    Bool(bool),
    /// Deterministic CBOR made by the reference encoder (free-form content).
    Encoded(Vec<u8>),
    Array(Vec<Out<'a>>),
    Map(Vec<(&'a str, Out<'a>)>),
}

impl Out<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Out::Text(t) => text_into(t, out),
            // Tag 0 over the canonical text, as `Timestamp::to_cbor`.
            Out::Time(t) => {
                head(6, 0, out);
                text_into(&t.canonical(), out);
            }
            Out::Uint(n) => head(0, *n, out),
            Out::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
            Out::Encoded(b) => out.extend_from_slice(b),
            Out::Array(items) => {
                head(4, items.len() as u64, out);
                items.iter().for_each(|i| i.write(out));
            }
            // Entries already in deterministic order ([`Obj::finish`]).
            Out::Map(entries) => {
                head(5, entries.len() as u64, out);
                for (k, v) in entries {
                    text_into(k, out);
                    v.write(out);
                }
            }
        }
    }
}

/// A map being checked: its input fields and its output entries.
struct Obj<'a> {
    f: Fields<'a>,
    out: Vec<(&'a str, Out<'a>)>,
}

fn text_of(item: &[u8]) -> Option<&str> {
    let mut r = In::new(item);
    let t = r.text()?;
    (r.done() && !t.is_empty() && t.len() <= MAX_TEXT).then_some(t)
}

/// A time as the reference reads it: RFC 3339 text, tag 0 over it, or
/// tag 1 over integer seconds (floats go to the reference).
fn time_of(item: &[u8]) -> Option<Timestamp> {
    let mut r = In::new(item);
    let t = match *item.first()? >> 5 {
        3 => Timestamp::parse_text(r.text()?)?,
        6 => match r.head()? {
            (_, _, 0) => Timestamp::parse_text(r.text()?)?,
            (_, _, 1) => match r.head()? {
                (0, _, s) => Timestamp(
                    time::OffsetDateTime::from_unix_timestamp(i64::try_from(s).ok()?).ok()?,
                ),
                _ => return None,
            },
            _ => return None,
        },
        _ => return None,
    };
    (r.done() && (1970..=9999).contains(&t.0.year())).then_some(t)
}

/// Free-form content, checked and encoded by the reference.
fn free(item: &[u8], must_be_map: bool) -> Option<Out<'static>> {
    let v = verifier::cbor::decode(item).ok()?;
    if must_be_map && !v.is_map() {
        return None;
    }
    check_free(&v, "").ok()?;
    Some(Out::Encoded(verifier::cbor::encode(&v)))
}

impl<'a> Obj<'a> {
    fn new(item: &'a [u8]) -> Option<Obj<'a>> {
        Some(Obj {
            f: Fields::new(item)?,
            out: Vec::with_capacity(8),
        })
    }

    fn text(&mut self, key: &'a str, required: bool) -> Option<Option<&'a str>> {
        match self.f.get(key) {
            None if required => None,
            None => Some(None),
            Some(v) => {
                let t = text_of(v)?;
                self.out.push((key, Out::Text(t)));
                Some(Some(t))
            }
        }
    }

    fn req(&mut self, key: &'a str) -> Option<&'a str> {
        self.text(key, true)?
    }

    fn one_of(&mut self, key: &'a str, allowed: &[&str]) -> Option<&'a str> {
        let t = self.req(key)?;
        allowed.contains(&t).then_some(t)
    }

    fn time(&mut self, key: &'a str, required: bool) -> Option<Option<Timestamp>> {
        match self.f.get(key) {
            None if required => None,
            None => Some(None),
            Some(v) => {
                let t = time_of(v)?;
                self.out.push((key, Out::Time(t)));
                Some(Some(t))
            }
        }
    }

    fn free_map(&mut self, key: &'a str) -> Option<()> {
        if let Some(v) = self.f.get(key) {
            self.out.push((key, free(v, true)?));
        }
        Some(())
    }

    /// An array of texts, possibly empty.
    fn texts(&mut self, key: &'a str) -> Option<Vec<&'a str>> {
        let Some(v) = self.f.get(key) else {
            return Some(Vec::new());
        };
        let texts = texts_of(v)?;
        self.out.push((
            key,
            Out::Array(texts.iter().map(|t| Out::Text(t)).collect()),
        ));
        Some(texts)
    }

    /// The map, its entries sorted as deterministic CBOR orders them.
    fn finish(mut self) -> Option<Out<'a>> {
        self.f.finish()?;
        self.out.sort_unstable_by(|a, b| by_encoding(a.0, b.0));
        Some(Out::Map(self.out))
    }
}

fn texts_of(item: &[u8]) -> Option<Vec<&str>> {
    let mut r = In::new(item);
    let (4, _, n) = r.head()? else { return None };
    let mut texts = Vec::with_capacity(n.min(64) as usize);
    for _ in 0..n {
        texts.push(text_of(r.item(1)?)?);
    }
    r.done().then_some(texts)
}

/// The values a record is indexed by, borrowed from the body.
#[derive(Default)]
struct Terms<'a> {
    subject: &'a str,
    actors: Vec<String>,
    resource: &'a str,
    policy: &'a str,
    version: &'a str,
    decision: &'a str,
    request_id: Option<&'a str>,
    trace_id: Option<&'a str>,
    parent: Option<&'a str>,
    credential: Option<&'a str>,
    owner: Option<&'a str>,
    break_glass: bool,
}

/// Checks one record (a CBOR map) in place; `None` when the reference
/// path must decide. `bound`: the only `enforcer.id` its sender may write.
pub(crate) fn check(item: &[u8], bound: Option<&str>) -> Option<CheckedRecord> {
    let mut r = Obj::new(item)?;
    let mut t = Terms::default();
    let decision_id = r.req("decision_id")?;
    if decision_id.len() > MAX_DECISION_ID {
        return None;
    }
    let time = r.time("time", true)??;

    let mut enforcer = Obj::new(r.f.get("enforcer")?)?;
    let enforcer_id = enforcer.req("id")?;
    if bound.is_some_and(|b| b != enforcer_id) {
        return None;
    }
    enforcer.one_of("kind", ENFORCER_KINDS)?;
    r.out.push(("enforcer", enforcer.finish()?));

    let mut subject = Obj::new(r.f.get("subject")?)?;
    subject.req("type")?;
    t.subject = subject.req("id")?;
    subject.one_of("identity_kind", IDENTITY_KINDS)?;
    t.owner = subject.text("owner", false)?;
    subject.text("issuer", false)?;
    if let Some(spiffe) = subject.text("spiffe_id", false)? {
        if !spiffe.starts_with("spiffe://") {
            return None;
        }
    }
    subject.free_map("properties")?;
    r.out.push(("subject", subject.finish()?));

    if let Some(chain) = r.f.get("delegation") {
        let (hops, ids) = delegation(chain)?;
        t.actors = ids;
        r.out.push(("delegation", hops));
    }

    let mut action = Obj::new(r.f.get("action")?)?;
    action.req("name")?;
    action.free_map("properties")?;
    r.out.push(("action", action.finish()?));

    let mut resource = Obj::new(r.f.get("resource")?)?;
    resource.req("type")?;
    t.resource = resource.req("id")?;
    resource.text("sensitivity", false)?;
    resource.free_map("properties")?;
    r.out.push(("resource", resource.finish()?));

    if let Some(ctx) = r.f.get("context") {
        let mut c = Obj::new(ctx)?;
        t.request_id = c.text("request_id", false)?;
        t.trace_id = c.text("trace_id", false)?;
        c.text("span_id", false)?;
        t.parent = c.text("parent_decision_id", false)?;
        if let Some(ip) = c.text("source_ip", false)? {
            ip.parse::<std::net::IpAddr>().ok()?;
        }
        c.text("task", false)?;
        c.text("originating_service", false)?;
        for (k, v) in c.f.rest()? {
            c.f.get(k);
            c.out.push((k, free(v, false)?));
        }
        r.out.push(("context", c.finish()?));
    }

    let mut policy = Obj::new(r.f.get("policy")?)?;
    policy.req("engine")?;
    t.policy = policy.req("id")?;
    t.version = policy.req("version")?;
    policy.text("hash", false)?;
    policy.text("owner", false)?;
    r.out.push(("policy", policy.finish()?));

    t.decision = r.one_of("decision", DECISIONS)?;
    r.texts("reasons")?;
    r.texts("errors")?;
    if let Some(obligations) = r.f.get("obligations") {
        if !matches!(obligations.first(), Some(0x80..=0x9b)) {
            return None;
        }
        r.out.push(("obligations", free(obligations, false)?));
    }
    if let Some(cred) = r.f.get("credential") {
        let (out, id_hash) = credential(cred)?;
        t.credential = Some(id_hash);
        r.out.push(("credential", out));
    }
    if let Some(em) = r.f.get("emergency") {
        let (out, break_glass) = emergency(em)?;
        t.break_glass = break_glass;
        r.out.push(("emergency", out));
    }
    r.free_map("extensions")?;

    let record = r.finish()?;
    let mut cbor = Vec::with_capacity(item.len() + 16);
    record.write(&mut cbor);
    let credential = t.credential.map(credential_term);
    Some(CheckedRecord {
        digest: Sha256::digest(&cbor).into(),
        decision_id: decision_id.to_string(),
        time,
        leaf: LeafHead::new(&cbor),
        terms: IndexTerms::new(TermValues {
            subject: t.subject,
            actors: &t.actors,
            resource: t.resource,
            policy: t.policy,
            policy_version: t.version,
            decision: t.decision,
            request_id: t.request_id,
            trace_id: t.trace_id,
            parent_decision_id: t.parent,
            credential: credential.as_deref(),
            owner: t.owner,
            break_glass: t.break_glass,
        }),
    })
}

fn delegation(chain: &[u8]) -> Option<(Out<'_>, Vec<String>)> {
    let mut r = In::new(chain);
    let (4, _, n) = r.head()? else { return None };
    if n > MAX_DELEGATION as u64 {
        return None;
    }
    let mut hops = Vec::with_capacity(n as usize);
    let mut ids = Vec::with_capacity(n as usize);
    let mut last_grant: Option<Timestamp> = None;
    for _ in 0..n {
        let mut actor = Obj::new(r.item(1)?)?;
        actor.one_of("identity_kind", IDENTITY_KINDS)?;
        ids.push(actor.req("id")?.to_string());
        actor.text("owner", false)?;
        let granted = actor.time("granted_at", false)?;
        if let Some(granted) = granted {
            if last_grant.is_some_and(|prev| granted < prev) {
                return None;
            }
            last_grant = Some(granted);
        }
        if let Some(expires) = actor.time("expires_at", false)? {
            if granted.is_some_and(|g| expires < g) {
                return None;
            }
        }
        actor.text("approved_by", false)?;
        actor.text("grant_id", false)?;
        if let Some(scope) = actor.f.get("scope") {
            let out = match scope.first()? {
                // Text of any length but empty (the reference's rule).
                0x60..=0x7b => {
                    let mut s = In::new(scope);
                    let t = s.text()?;
                    (s.done() && !t.is_empty()).then_some(Out::Text(t))?
                }
                0x80..=0x9b => Out::Array(texts_of(scope)?.into_iter().map(Out::Text).collect()),
                _ => return None,
            };
            actor.out.push(("scope", out));
        }
        hops.push(actor.finish()?);
    }
    r.done().then_some((Out::Array(hops), ids))
}

fn credential(cred: &[u8]) -> Option<(Out<'_>, &str)> {
    let mut c = Obj::new(cred)?;
    c.one_of("kind", CREDENTIAL_KINDS)?;
    c.text("issuer", false)?;
    let id_hash = c.req("id_hash")?;
    if id_hash.len() < 16
        || !id_hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=:_-".contains(&b))
    {
        return None;
    }
    let issued = c.time("issued_at", true)??;
    let expires = c.time("expires_at", true)??;
    if expires < issued {
        return None;
    }
    let mut ttl = In::new(c.f.get("ttl_s")?);
    let (0, _, n) = ttl.head()? else { return None };
    if !ttl.done() {
        return None;
    }
    c.out.push(("ttl_s", Out::Uint(n)));
    c.texts("scopes")?;
    Some((c.finish()?, id_hash))
}

fn emergency(em: &[u8]) -> Option<(Out<'_>, bool)> {
    let mut e = Obj::new(em)?;
    let break_glass = match e.f.get("break_glass")? {
        [0xf4] => false,
        [0xf5] => true,
        _ => return None,
    };
    e.out.push(("break_glass", Out::Bool(break_glass)));
    e.req("justification")?;
    e.text("ticket", false)?;
    e.text("approved_by", false)?;
    e.time("expires_at", false)?;
    e.text("grant_id", false)?;
    Some((e.finish()?, break_glass))
}

/// The records of a body that is one record (a map) or an array of them,
/// each checked in place: `None` if any of them needs the reference path.
pub(crate) fn records(body: &[u8], bound: Option<&str>) -> Option<Vec<CheckedRecord>> {
    let mut r = In::new(body);
    match body.first()? {
        0xa0..=0xbb => {
            r.item(0)?;
            r.done().then(|| check(body, bound).map(|c| vec![c]))?
        }
        0x80..=0x9b => {
            let (_, _, n) = r.head()?;
            let mut out = Vec::with_capacity(n.min(100_000) as usize);
            for _ in 0..n {
                out.push(check(r.item(1)?, bound)?);
            }
            r.done().then_some(out)
        }
        _ => None,
    }
}

/// The records of a CBOR sequence, each checked in place.
pub(crate) fn sequence(body: &[u8], bound: Option<&str>) -> Option<Vec<CheckedRecord>> {
    let mut r = In::new(body);
    let mut out = Vec::new();
    while !r.done() {
        out.push(check(r.item(0)?, bound)?);
    }
    Some(out)
}

/// The length of the first item of `bytes` if it is complete and of
/// definite lengths throughout (for a CBOR sequence as it arrives).
pub(crate) fn item_len(bytes: &[u8]) -> Option<usize> {
    let mut r = In::new(bytes);
    r.item(0)?;
    Some(r.at)
}

/// JSON text transcoded to CBOR: the same values in the same order, maps
/// and arrays with 8-byte counts, numbers integers where exact and floats
/// otherwise (serde_json refuses NaN, infinities and numbers out of range;
/// its recursion limit, 128 levels, bounds nesting). Keys twice in an
/// object are left for the CBOR readers to refuse.
pub(crate) fn json_to_cbor(body: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut out = Vec::with_capacity(body.len());
    let mut d = serde_json::Deserializer::from_slice(body);
    ToCbor(&mut out).deserialize(&mut d)?;
    d.end()?;
    Ok(out)
}

struct ToCbor<'o>(&'o mut Vec<u8>);

impl<'de> serde::de::DeserializeSeed<'de> for ToCbor<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// Writes an 8-byte count into the head at `at` (major type and 27).
fn patch(out: &mut [u8], at: usize, count: u64) {
    out[at + 1..at + 9].copy_from_slice(&count.to_be_bytes());
}

impl<'de> serde::de::Visitor<'de> for ToCbor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        self.0.push(if b { 0xf5 } else { 0xf4 });
        Ok(())
    }
    fn visit_u64<E>(self, n: u64) -> Result<(), E> {
        head(0, n, self.0);
        Ok(())
    }
    fn visit_i64<E>(self, n: i64) -> Result<(), E> {
        if n >= 0 {
            head(0, n as u64, self.0);
        } else {
            head(1, (-1 - n) as u64, self.0);
        }
        Ok(())
    }
    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<(), E> {
        if !f.is_finite() {
            return Err(E::custom("numbers must be finite"));
        }
        self.0.push(0xfb);
        self.0.extend_from_slice(&f.to_be_bytes());
        Ok(())
    }
    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        text_into(s, self.0);
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.push(0xf6);
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let out = self.0;
        let at = out.len();
        out.extend_from_slice(&[0x9b, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut n = 0u64;
        while seq.next_element_seed(ToCbor(&mut *out))?.is_some() {
            n += 1;
        }
        patch(out, at, n);
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let out = self.0;
        let at = out.len();
        out.extend_from_slice(&[0xbb, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut n = 0u64;
        while map.next_key_seed(ToCbor(&mut *out))?.is_some() {
            map.next_value_seed(ToCbor(&mut *out))?;
            n += 1;
        }
        patch(out, at, n);
        Ok(())
    }
}
