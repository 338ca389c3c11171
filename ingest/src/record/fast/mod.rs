//! The fast path of [`check`](super::check): each record read once, in
//! place, from the request's bytes, checked field by field as it is read,
//! and written as deterministic CBOR straight into its leaf, with no value
//! tree and no copy of the record between reading and hashing.
//!
//! It only ever *accepts*: a record it cannot read or that breaks a rule
//! makes it answer `None`, and the reference path (the body decoded into
//! values and checked by [`super::check`]) then decides, with its exact
//! error messages. So the fast path needs no error reporting, and it may
//! leave rare encodings to the reference (indefinite lengths, bignums,
//! epoch times as floats, maps of more than [`MAX_FIELDS`] entries). A
//! property test holds the two to the same answer: whatever the fast path
//! accepts, the reference accepts with the same bytes, digest and index
//! terms (`ingest/tests/fast.rs`).
//!
//! How a map is written ([`Map`]): each entry's key and value are written
//! as they are read, in the body's order; once the map is read, its
//! entries are put in deterministic order (RFC 8949 §4.2.1: by their keys'
//! encodings) unless the body already had them so, and its head gets the
//! count of entries written (a `null` for an optional field is absence).
//!
//! JSON reaches it through [`json_to_cbor`]: the text is transcoded
//! straight into CBOR bytes, which the same reader then checks.

mod fields;
mod json;

pub(crate) use json::json_to_cbor;

use verifier::cbor::{head, text_into};
use verifier::enforcer_signature::EnforcerSignature;

use super::schema::{check_free, Timestamp, MAX_TEXT};
use super::sender::Sender;
use super::CheckedRecord;

/// Deepest nesting skipped in place (free-form content is then checked by
/// the reference's rules, at most 32 levels).
const MAX_DEPTH: usize = 64;

/// Most entries a map read in place may have; a map with more is left to
/// the reference (the largest schema map, the record itself, has 16).
const MAX_FIELDS: usize = 32;

/// Bytes a record's leaf is given room for at first: most records are
/// smaller; a larger one grows it.
const LEAF_ROOM: usize = 1024;

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

    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    /// The next head: major type and argument. Definite lengths only
    /// (`None` for indefinite ones and reserved values).
    fn head(&mut self) -> Option<(u8, u64)> {
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
        Some((major, arg))
    }

    /// Skips one item, returning its bytes. Only its structure is checked:
    /// free-form content is decoded and checked by the reference's rules.
    /// `verifier::cbor::item_len` reads heads the same way; this reader
    /// keeps its own as a method on the cursor, which checks JSON bodies
    /// about 4% faster than calling that one (`ingest/benches/record.rs`).
    fn item(&mut self, depth: usize) -> Option<&'a [u8]> {
        if depth > MAX_DEPTH {
            return None;
        }
        let start = self.at;
        let (major, arg) = self.head()?;
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

    /// A text item of any length, valid UTF-8.
    fn any_text(&mut self) -> Option<&'a str> {
        match self.head()? {
            (3, n) => std::str::from_utf8(self.take(n)?).ok(),
            _ => None,
        }
    }

    /// A text field's value: not empty, at most [`MAX_TEXT`] bytes.
    fn text(&mut self) -> Option<&'a str> {
        let t = self.any_text()?;
        (!t.is_empty() && t.len() <= MAX_TEXT).then_some(t)
    }

    /// A time as the reference reads it: RFC 3339 text, tag 0 over it, or
    /// tag 1 over integer seconds (floats go to the reference).
    fn time(&mut self) -> Option<Timestamp> {
        let t = match self.peek()? >> 5 {
            3 => Timestamp::parse_text(self.any_text()?)?,
            6 => match self.head()? {
                (_, 0) => Timestamp::parse_text(self.any_text()?)?,
                (_, 1) => match self.head()? {
                    (0, s) => Timestamp(
                        time::OffsetDateTime::from_unix_timestamp(i64::try_from(s).ok()?).ok()?,
                    ),
                    _ => return None,
                },
                _ => return None,
            },
            _ => return None,
        };
        (1970..=9999).contains(&t.0.year()).then_some(t)
    }
}

/// Where a record's canonical bytes are written: its leaf, and scratch
/// space for putting a map's entries in order.
struct Out<'o> {
    out: &'o mut Vec<u8>,
    scratch: &'o mut Vec<u8>,
}

impl Out<'_> {
    fn text(&mut self, t: &str) {
        text_into(t, self.out);
    }

    /// Tag 0 over the canonical text, as `Timestamp::to_cbor` writes it.
    fn time(&mut self, t: &Timestamp) {
        head(6, 0, self.out);
        self.scratch.clear();
        t.canonical_into(self.scratch);
        head(3, self.scratch.len() as u64, self.out);
        self.out.extend_from_slice(self.scratch);
    }

    /// Free-form content, checked and encoded by the reference's rules.
    fn free(&mut self, item: &[u8], must_be_map: bool) -> Option<()> {
        let v = verifier::cbor::decode(item).ok()?;
        if must_be_map && !v.is_map() {
            return None;
        }
        check_free(&v, "").ok()?;
        verifier::cbor::encode_into(&v, self.out);
        Some(())
    }
}

/// A field of a schema map: its name, whether it is required, and what
/// the map's reader calls it. A map's fields are listed in deterministic
/// order (RFC 8949 §4.2.1: shorter keys first, then bytewise), so their
/// positions order its entries and a key is found by halving the list.
type Field<T> = (&'static str, bool, T);

/// An entry's place among its map's fields when it is not one of them.
const EXTRA: u32 = u32::MAX;

/// A map being read and written; see the module's docs.
struct Map {
    /// Where its head is in the output (one byte, fixed at the end).
    head_at: usize,
    /// Per entry written: where it starts, where its key ends, where it
    /// ends, and the position of its field in the map's list ([`EXTRA`]
    /// for an entry kept as free-form content).
    entries: [[u32; 4]; MAX_FIELDS],
    len: usize,
    /// Whether an entry is [`EXTRA`].
    extras: bool,
}

/// The position of `key` among `fields`: the list is in deterministic
/// order (shorter first, then bytewise), so it is searched by halves.
fn find<T>(fields: &[Field<T>], key: &[u8]) -> Option<usize> {
    fields
        .binary_search_by(|(name, _, _)| {
            let name = name.as_bytes();
            name.len().cmp(&key.len()).then_with(|| name.cmp(key))
        })
        .ok()
}

/// Reads one map of the schema from `r`, writing it to `w`: `value` reads
/// and writes the value of each field of `fields` that is not `null`. Any
/// other key is refused, unless `extras`: then it is kept with its value
/// as free-form content. Refuses a key twice and a required field absent.
fn map<'a, T: Copy>(
    r: &mut In<'a>,
    w: &mut Out<'_>,
    fields: &[Field<T>],
    extras: bool,
    mut value: impl FnMut(T, &mut In<'a>, &mut Out<'_>) -> Option<()>,
) -> Option<()> {
    let (5, n) = r.head()? else { return None };
    if n > MAX_FIELDS as u64 {
        return None;
    }
    let mut m = Map {
        head_at: w.out.len(),
        entries: [[0; 4]; MAX_FIELDS],
        len: 0,
        extras: false,
    };
    w.out.push(0xa0);
    // Bit `i`: `fields[i]` was in the body (possibly `null`), was written.
    let (mut seen, mut present) = (0u32, 0u32);
    let mut extra_keys: [&[u8]; MAX_FIELDS] = [&[]; MAX_FIELDS];
    let mut extra_count = 0;
    for _ in 0..n {
        let (3, klen) = r.head()? else { return None };
        let key = r.take(klen)?;
        let start = w.out.len();
        let (key_end, rank) = match find(fields, key) {
            Some(i) => {
                if seen & (1 << i) != 0 {
                    return None;
                }
                seen |= 1 << i;
                if r.peek()? == 0xf6 {
                    r.at += 1;
                    continue;
                }
                present |= 1 << i;
                let (name, _, field) = fields[i];
                w.text(name);
                let key_end = w.out.len();
                value(field, r, w)?;
                (key_end, i as u32)
            }
            None if extras => {
                let name = std::str::from_utf8(key).ok()?;
                if extra_keys[..extra_count].contains(&key) {
                    return None;
                }
                extra_keys[extra_count] = key;
                extra_count += 1;
                m.extras = true;
                w.text(name);
                let key_end = w.out.len();
                let item = r.item(1)?;
                w.free(item, false)?;
                (key_end, EXTRA)
            }
            None => return None,
        };
        m.entries[m.len] = [offset(start)?, offset(key_end)?, offset(w.out.len())?, rank];
        m.len += 1;
    }
    let required = fields
        .iter()
        .enumerate()
        .filter(|(_, f)| f.1)
        .fold(0u32, |bits, (i, _)| bits | 1 << i);
    if present & required != required {
        return None;
    }
    m.finish(w);
    Some(())
}

fn offset(n: usize) -> Option<u32> {
    u32::try_from(n).ok()
}

impl Map {
    /// The entries in deterministic order, and the head with their count.
    fn finish(&self, w: &mut Out<'_>) {
        let entries = &self.entries[..self.len];
        let out = &*w.out;
        // Fields compare by their place in the list (which is in
        // deterministic order); an extra one by its key's encoding.
        let order = |a: &[u32; 4], b: &[u32; 4]| {
            if a[3] != EXTRA && b[3] != EXTRA {
                a[3].cmp(&b[3])
            } else {
                out[a[0] as usize..a[1] as usize].cmp(&out[b[0] as usize..b[1] as usize])
            }
        };
        let sorted = if self.extras {
            entries.windows(2).all(|p| order(&p[0], &p[1]).is_lt())
        } else {
            entries.windows(2).all(|p| p[0][3] < p[1][3])
        };
        if !sorted {
            let mut by: [usize; MAX_FIELDS] = std::array::from_fn(|i| i);
            let by = &mut by[..self.len];
            by.sort_unstable_by(|&a, &b| order(&entries[a], &entries[b]));
            w.scratch.clear();
            for &i in by.iter() {
                let [s, _, e, _] = entries[i];
                w.scratch.extend_from_slice(&w.out[s as usize..e as usize]);
            }
            w.out[self.head_at + 1..].copy_from_slice(w.scratch);
        }
        if self.len < 24 {
            w.out[self.head_at] = 0xa0 | self.len as u8;
        } else {
            let mut h = Vec::with_capacity(3);
            head(5, self.len as u64, &mut h);
            w.out.splice(self.head_at..self.head_at + 1, h);
        }
    }
}

/// An array of text field values (possibly empty), written as read.
fn texts(r: &mut In<'_>, w: &mut Out<'_>) -> Option<()> {
    let (4, n) = r.head()? else { return None };
    head(4, n, w.out);
    for _ in 0..n {
        w.text(r.text()?);
    }
    Some(())
}

/// Reads one record from `r` and checks it; `None` when the reference
/// path must decide. `sender`: who sends it (which `enforcer.id` it may
/// write unsigned, [`Sender::may_write_unsigned`]);
/// `scratch`: room to reuse from record to record.
fn record(r: &mut In<'_>, sender: &Sender<'_>, scratch: &mut Vec<u8>) -> Option<CheckedRecord> {
    record_signed(r, sender, scratch, None)
}

/// [`record`], whose leaf ends with `signature` if it is signed.
fn record_signed(
    r: &mut In<'_>,
    sender: &Sender<'_>,
    scratch: &mut Vec<u8>,
    signature: Option<&EnforcerSignature>,
) -> Option<CheckedRecord> {
    let mut found = None;
    let leaf = verifier::envelope::LeafHead::write(LEAF_ROOM, signature, |out| {
        let mut w = Out { out, scratch };
        found = Some(fields::record(r, &mut w, sender)?);
        Some(())
    })?;
    found?.checked(leaf)
}

/// Checks one whole item as a record.
pub(crate) fn check(item: &[u8], sender: &Sender<'_>) -> Option<CheckedRecord> {
    let mut r = In::new(item);
    let c = record(&mut r, sender, &mut Vec::new())?;
    r.done().then_some(c)
}

/// Checks the payload of a record its enforcer signed, `signature` (not
/// yet verified), as one whole item: `None` unless it is a record in
/// canonical form, whose leaf then ends with the signature.
pub(crate) fn check_signed(
    payload: &[u8],
    sender: &Sender<'_>,
    signature: &EnforcerSignature,
) -> Option<CheckedRecord> {
    let mut r = In::new(payload);
    let c = record_signed(&mut r, sender, &mut Vec::new(), Some(signature))?;
    (r.done() && c.cbor() == payload).then_some(c)
}

/// The `enforcer.id` of a record, read in place from its CBOR (any
/// definite-length encoding; `None` if it has none).
pub(crate) fn enforcer_id(record: &[u8]) -> Option<&str> {
    let mut r = In::new(record);
    let (5, fields) = r.head()? else {
        return None;
    };
    for _ in 0..fields {
        if r.any_text()? != "enforcer" {
            r.item(0)?;
            continue;
        }
        let (5, inner) = r.head()? else {
            return None;
        };
        for _ in 0..inner {
            if r.any_text()? == "id" {
                return r.any_text();
            }
            r.item(0)?;
        }
        return None;
    }
    None
}

/// Checks the record that `bytes` starts with (a CBOR sequence as it
/// arrives): how many bytes it took, and the record.
pub(crate) fn check_prefix(bytes: &[u8], sender: &Sender<'_>) -> Option<(usize, CheckedRecord)> {
    let mut r = In::new(bytes);
    let c = record(&mut r, sender, &mut Vec::new())?;
    Some((r.at, c))
}

/// The records of a body that is one record (a map) or an array of them,
/// each checked in place: `None` if any of them needs the reference path.
pub(crate) fn records(body: &[u8], sender: &Sender<'_>) -> Option<Vec<CheckedRecord>> {
    match body.first()? {
        0xa0..=0xbb => Some(vec![check(body, sender)?]),
        0x80..=0x9b => {
            let mut r = In::new(body);
            let (_, n) = r.head()?;
            let mut out = Vec::with_capacity(n.min(100_000) as usize);
            let mut scratch = Vec::new();
            for _ in 0..n {
                out.push(record(&mut r, sender, &mut scratch)?);
            }
            r.done().then_some(out)
        }
        _ => None,
    }
}

/// The records of a CBOR sequence, each checked in place.
pub(crate) fn sequence(body: &[u8], sender: &Sender<'_>) -> Option<Vec<CheckedRecord>> {
    let mut r = In::new(body);
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    while !r.done() {
        out.push(record(&mut r, sender, &mut scratch)?);
    }
    Some(out)
}
