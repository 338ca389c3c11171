//! Deterministic CBOR (RFC 8949 §4.2.1, core deterministic encoding).
//!
//! Integers and lengths in their shortest form, definite lengths only, map
//! keys sorted by the bytewise order of their own encodings, floats in the
//! shortest form that keeps their value. Decision records and leaf envelopes
//! are stored in this form, so equal content means equal bytes.

use ciborium::Value;

/// Why bytes are not a single CBOR item.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CborError {
    /// Not well-formed CBOR (or nested too deeply).
    #[error("invalid CBOR: {0}")]
    Invalid(String),
    /// Bytes left after the item.
    #[error("{0} bytes after the CBOR item")]
    Trailing(usize),
    /// A map has the same key twice.
    #[error("map has a duplicate key")]
    DuplicateKey,
}

/// Encodes `value` deterministically.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

/// Appends `value`'s deterministic encoding to `out`.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) {
    write(value, out);
}

fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Array(items) => {
            head(4, items.len() as u64, out);
            items.iter().for_each(|v| write(v, out));
        }
        Value::Map(entries) => {
            head(5, entries.len() as u64, out);
            if let Some(mut keys) = text_keys(entries) {
                // Text keys' encodings sort as (length, bytes): the head
                // grows with the length. No key needs encoding to sort.
                keys.sort_unstable_by(|a, b| by_encoding(a.0, b.0));
                for (k, v) in keys {
                    text_into(k, out);
                    write(v, out);
                }
                return;
            }
            let mut encoded: Vec<(Vec<u8>, &Value)> =
                entries.iter().map(|(k, v)| (encode(k), v)).collect();
            encoded.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, v) in encoded {
                out.extend_from_slice(&k);
                write(v, out);
            }
        }
        Value::Tag(tag, inner) => {
            head(6, *tag, out);
            write(inner, out);
        }
        Value::Text(t) => text_into(t, out),
        Value::Bytes(b) => {
            head(2, b.len() as u64, out);
            out.extend_from_slice(b);
        }
        Value::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
        Value::Null => out.push(0xf6),
        Value::Integer(i) => {
            let n = i128::from(*i);
            match u64::try_from(n) {
                Ok(u) => head(0, u, out),
                // CBOR's negative integers go down to -2^64: -1 - n fits.
                Err(_) => head(1, u64::try_from(-1 - n).unwrap_or(u64::MAX), out),
            }
        }
        // Floats (and simple values): ciborium writes the shortest form
        // that keeps the value.
        scalar => {
            // Writing into a Vec cannot fail.
            let _ = ciborium::into_writer(scalar, &mut *out);
        }
    }
}

/// A map's entries as (text key, value), if every key is text.
fn text_keys(entries: &[(Value, Value)]) -> Option<Vec<(&str, &Value)>> {
    entries
        .iter()
        .map(|(k, v)| k.as_text().map(|k| (k, v)))
        .collect()
}

/// The order of two text keys' deterministic encodings: shorter first,
/// then bytewise.
#[inline]
pub fn by_encoding(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// The head of an item: major type and argument, shortest form.
pub fn head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// Appends a text string.
pub fn text_into(text: &str, out: &mut Vec<u8>) {
    head(3, text.len() as u64, out);
    out.extend_from_slice(text.as_bytes());
}

/// The length of the first item in `bytes`, read off its heads without
/// decoding it: `None` if it is cut short, uses an indefinite length or a
/// reserved head, or nests deeper than every reader here accepts. Nothing
/// is checked beyond the heads (text is not checked to be UTF-8).
pub fn item_len(bytes: &[u8]) -> Option<usize> {
    item_end(bytes, 0, 0)
}

/// The head of the first item in `bytes`: its major type, its argument
/// (a length, a count or a value) and the head's length in bytes; `None`
/// if it is cut short, an indefinite length or reserved.
pub fn read_head(bytes: &[u8]) -> Option<(u8, u64, usize)> {
    let initial = *bytes.first()?;
    let (major, info) = (initial >> 5, initial & 0x1f);
    match info {
        0..=23 => Some((major, u64::from(info), 1)),
        24..=27 => {
            let n = 1usize << (info - 24);
            let raw = bytes.get(1..1 + n)?;
            let arg = raw.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b));
            Some((major, arg, 1 + n))
        }
        _ => None,
    }
}

fn item_end(bytes: &[u8], at: usize, depth: usize) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    let (major, arg, len) = read_head(bytes.get(at..)?)?;
    let mut end = at + len;
    match major {
        0 | 1 | 7 => Some(end),
        2 | 3 => {
            let end = end.checked_add(usize::try_from(arg).ok()?)?;
            (end <= bytes.len()).then_some(end)
        }
        4 | 5 => {
            let items = if major == 5 { arg.checked_mul(2)? } else { arg };
            for _ in 0..items {
                end = item_end(bytes, end, depth + 1)?;
            }
            Some(end)
        }
        _ => item_end(bytes, end, depth + 1),
    }
}

/// Decodes exactly one CBOR item (any encoding), rejecting duplicate map keys.
pub fn decode(bytes: &[u8]) -> Result<Value, CborError> {
    let mut rest = bytes;
    let value = decode_next(&mut rest)?;
    if !rest.is_empty() {
        return Err(CborError::Trailing(rest.len()));
    }
    Ok(value)
}

/// Decodes the next item of a CBOR sequence (RFC 8742), advancing `input`.
pub fn decode_next(input: &mut &[u8]) -> Result<Value, CborError> {
    let value: Value =
        ciborium::from_reader(&mut *input).map_err(|e| CborError::Invalid(e.to_string()))?;
    check_unique_keys(&value, 0)?;
    Ok(value)
}

/// The start of a byte stream that may end inside an item.
#[derive(Clone, Debug, PartialEq)]
pub enum Prefix {
    /// A complete item and how many bytes it took.
    Item(Value, usize),
    /// The bytes so far are the beginning of an item; more are needed.
    Incomplete,
}

/// Decodes the first item of a CBOR sequence that is still arriving.
pub fn decode_prefix(bytes: &[u8]) -> Result<Prefix, CborError> {
    let mut rest = bytes;
    match ciborium::from_reader::<Value, _>(&mut rest) {
        Ok(value) => {
            check_unique_keys(&value, 0)?;
            Ok(Prefix::Item(value, bytes.len() - rest.len()))
        }
        // Reading a slice fails only at its end: the item is cut short.
        Err(ciborium::de::Error::Io(_)) => Ok(Prefix::Incomplete),
        Err(e) => Err(CborError::Invalid(e.to_string())),
    }
}

/// Refuses a map with a key twice, and nesting deeper than `MAX_DEPTH`
/// (ciborium reads up to 256 levels; every reader here stops at 128, so an
/// item one of them accepts, all of them accept).
fn check_unique_keys(value: &Value, depth: usize) -> Result<(), CborError> {
    if depth > MAX_DEPTH {
        return Err(CborError::Invalid(format!(
            "nested more than {MAX_DEPTH} levels deep"
        )));
    }
    match value {
        Value::Array(items) => items
            .iter()
            .try_for_each(|v| check_unique_keys(v, depth + 1)),
        Value::Map(entries) => {
            let duplicate = match text_keys(entries) {
                Some(mut keys) => {
                    keys.sort_unstable_by(|a, b| by_encoding(a.0, b.0));
                    keys.windows(2).any(|w| w[0].0 == w[1].0)
                }
                None => {
                    let mut keys: Vec<Vec<u8>> = entries.iter().map(|(k, _)| encode(k)).collect();
                    keys.sort();
                    keys.windows(2).any(|w| w[0] == w[1])
                }
            };
            if duplicate {
                return Err(CborError::DuplicateKey);
            }
            entries.iter().try_for_each(|(k, v)| {
                check_unique_keys(k, depth + 1)?;
                check_unique_keys(v, depth + 1)
            })
        }
        Value::Tag(_, inner) => check_unique_keys(inner, depth + 1),
        _ => Ok(()),
    }
}

/// True when `bytes` are one CBOR item in deterministic encoding.
pub fn is_deterministic(bytes: &[u8]) -> bool {
    decode(bytes).is_ok_and(|v| is_encoding_of(bytes, &v))
}

/// Whether `bytes`, which decode to `value`, are its deterministic
/// encoding ([`encode`]). Read off the bytes without encoding again, except
/// for items holding a float (whose shortest form is ciborium's to say) or
/// a bignum tag.
pub fn is_encoding_of(bytes: &[u8], value: &Value) -> bool {
    let mut at = 0;
    match canonical_item(bytes, &mut at, 0) {
        Some(Canonical::Yes) => at == bytes.len(),
        Some(Canonical::Ask) => encode(value) == bytes,
        Some(Canonical::No) | None => false,
    }
}

/// Decodes `bytes` if they are one item in deterministic encoding made of
/// integers, byte and text strings, arrays, maps, tags (other than the
/// bignums 2 and 3), false, true and null: in one pass, reading each head
/// once. `None` for anything else (floats, other simple values, bignums,
/// a non-deterministic encoding, malformed bytes), which [`decode`] and
/// [`is_encoding_of`] then settle.
pub fn decode_canonical(bytes: &[u8]) -> Option<Value> {
    let mut at = 0;
    let v = canonical_value(bytes, &mut at, 0)?;
    (at == bytes.len()).then_some(v)
}

/// The argument of the head whose first byte had `info` (its low five
/// bits), read from `b` at `at` (advancing past it): `None` unless it is
/// there, in its shortest form, and of definite length.
fn shortest_arg(b: &[u8], at: &mut usize, info: u8) -> Option<u64> {
    let len = match info {
        0..=23 => return Some(u64::from(info)),
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        _ => return None,
    };
    let bytes = b.get(*at..*at + len)?;
    *at += len;
    let n = bytes.iter().fold(0u64, |n, &x| n << 8 | u64::from(x));
    // The least value each length is the shortest form of.
    let least = [24, 0x100, 0x1_0000, 0x1_0000_0000][len.trailing_zeros() as usize];
    (n >= least).then_some(n)
}

fn canonical_value(b: &[u8], at: &mut usize, depth: usize) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    let first = *b.get(*at)?;
    *at += 1;
    let (major, info) = (first >> 5, first & 0x1f);
    if major == 7 {
        return match info {
            20 => Some(Value::Bool(false)),
            21 => Some(Value::Bool(true)),
            22 => Some(Value::Null),
            _ => None,
        };
    }
    let n = shortest_arg(b, at, info)?;
    let mut take = |n: u64| -> Option<&[u8]> {
        let end = at.checked_add(usize::try_from(n).ok()?)?;
        let s = b.get(*at..end)?;
        *at = end;
        Some(s)
    };
    match major {
        0 => Some(Value::Integer(n.into())),
        1 => Some(Value::Integer((-1 - i128::from(n)).try_into().ok()?)),
        2 => Some(Value::Bytes(take(n)?.to_vec())),
        3 => Some(Value::Text(std::str::from_utf8(take(n)?).ok()?.to_string())),
        4 => {
            // Each item takes at least a byte: a length beyond what is left is malformed.
            let mut items = Vec::with_capacity(usize::try_from(n).ok()?.min(b.len() - *at));
            for _ in 0..n {
                items.push(canonical_value(b, at, depth + 1)?);
            }
            Some(Value::Array(items))
        }
        5 => {
            let mut entries = Vec::with_capacity(usize::try_from(n).ok()?.min(b.len() - *at));
            let mut last: Option<(usize, usize)> = None;
            for _ in 0..n {
                let start = *at;
                let k = canonical_value(b, at, depth + 1)?;
                if last.is_some_and(|(s, e)| b[s..e] >= b[start..*at]) {
                    return None;
                }
                last = Some((start, *at));
                entries.push((k, canonical_value(b, at, depth + 1)?));
            }
            Some(Value::Map(entries))
        }
        6 if n == 2 || n == 3 => None,
        6 => Some(Value::Tag(n, Box::new(canonical_value(b, at, depth + 1)?))),
        _ => None,
    }
}

/// What [`canonical_item`] found.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Canonical {
    /// Deterministic encoding.
    Yes,
    /// Not.
    No,
    /// Holds a float or a bignum (tags 2 and 3, which ciborium reads as
    /// integers where they fit): the bytes alone do not say.
    Ask,
}

/// Nesting followed at most (deeper is not deterministic here).
const MAX_DEPTH: usize = 128;

/// Checks the item at `at` (advancing past it): shortest heads, definite
/// lengths, map keys in strictly increasing order of their encodings.
/// `None` if the bytes are not a well-formed item.
fn canonical_item(b: &[u8], at: &mut usize, depth: usize) -> Option<Canonical> {
    use Canonical::*;
    if depth > MAX_DEPTH {
        return Some(No);
    }
    let first = *b.get(*at)?;
    *at += 1;
    let (major, info) = (first >> 5, first & 0x1f);
    if major == 7 {
        let mut skip = |len: usize| b.get(*at..*at + len).map(|_| *at += len);
        return match info {
            // false, true, null; other simple values and floats as
            // ciborium reads them.
            20..=22 => Some(Yes),
            0..=19 | 23 => Some(Ask),
            24 => skip(1).map(|_| Ask),
            25 => skip(2).map(|_| Ask),
            26 => skip(4).map(|_| Ask),
            27 => skip(8).map(|_| Ask),
            _ => Some(No),
        };
    }
    let n = shortest_arg(b, at, info)?;
    match major {
        0 | 1 => Some(Yes),
        2 | 3 => {
            let end = at.checked_add(usize::try_from(n).ok()?)?;
            b.get(*at..end)?;
            *at = end;
            Some(Yes)
        }
        4 => {
            let mut found = Yes;
            for _ in 0..n {
                match canonical_item(b, at, depth + 1)? {
                    No => return Some(No),
                    Ask => found = Ask,
                    Yes => {}
                }
            }
            Some(found)
        }
        5 => {
            let mut found = Yes;
            let mut last: Option<&[u8]> = None;
            for _ in 0..n {
                let start = *at;
                match canonical_item(b, at, depth + 1)? {
                    No => return Some(No),
                    Ask => found = Ask,
                    Yes => {}
                }
                let key = &b[start..*at];
                if last.is_some_and(|l| l >= key) {
                    return Some(No);
                }
                last = Some(key);
                match canonical_item(b, at, depth + 1)? {
                    No => return Some(No),
                    Ask => found = Ask,
                    Yes => {}
                }
            }
            Some(found)
        }
        6 => match canonical_item(b, at, depth + 1)? {
            Yes if n == 2 || n == 3 => Some(Ask),
            found => Some(found),
        },
        _ => Some(No),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| Value::Integer(i.into())),
            any::<u64>().prop_map(|i| Value::Integer(i.into())),
            prop::num::f64::NORMAL.prop_map(Value::Float),
            "\\PC{0,30}".prop_map(Value::Text),
            prop::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((inner.clone(), inner.clone()), 0..5).prop_map(Value::Map),
                (0u64..300, inner).prop_map(|(t, v)| Value::Tag(t, Box::new(v))),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Reading the encoding off the bytes agrees with encoding again:
        /// for every value's deterministic bytes, and for every changed byte
        /// of them that still decodes.
        #[test]
        fn is_encoding_of_agrees_with_encode(v in value(), at in any::<prop::sample::Index>(), x in 1u8..=255) {
            let bytes = encode(&v);
            if let Ok(d) = decode(&bytes) {
                prop_assert_eq!(is_encoding_of(&bytes, &d), encode(&d) == bytes);
            }
            let mut changed = bytes.clone();
            let i = at.index(changed.len());
            changed[i] ^= x;
            if let Ok(d) = decode(&changed) {
                prop_assert_eq!(is_encoding_of(&changed, &d), encode(&d) == changed);
            }
        }

        /// Any decodable bytes: the two checks agree.
        #[test]
        fn is_encoding_of_agrees_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(d) = decode(&bytes) {
                prop_assert_eq!(is_encoding_of(&bytes, &d), encode(&d) == bytes);
            }
        }

        /// The length read off the heads is the item's encoded length, for
        /// every value with a trailing byte after it, and wherever a changed
        /// byte still leaves an item ciborium reads, it reads that many bytes.
        #[test]
        fn item_len_is_the_length_ciborium_reads(v in value(), at in any::<prop::sample::Index>(), x in 0u8..=255) {
            let mut bytes = encode(&v);
            let n = bytes.len();
            bytes.push(0x00);
            prop_assert_eq!(item_len(&bytes), Some(n));
            prop_assert_eq!(item_len(&bytes[..n - 1]), None);
            let i = at.index(n);
            bytes[i] ^= x;
            if let (Some(len), Ok(Prefix::Item(_, read))) = (item_len(&bytes), decode_prefix(&bytes)) {
                prop_assert_eq!(len, read);
            }
        }

        /// The one-pass decoder gives what ciborium gives, wherever it
        /// gives anything, and gives something for every deterministic
        /// encoding without floats, bignums or other simple values.
        #[test]
        fn decode_canonical_agrees_with_decode(v in value(), at in any::<prop::sample::Index>(), x in 0u8..=255) {
            let mut bytes = encode(&v);
            let i = at.index(bytes.len());
            bytes[i] ^= x;
            let fast = decode_canonical(&bytes);
            let slow = decode(&bytes).ok().filter(|d| encode(d) == bytes);
            if let Some(f) = &fast {
                prop_assert_eq!(Some(f), slow.as_ref());
            }
            let plain = |b: &[u8]| {
                let mut at = 0;
                canonical_item(b, &mut at, 0) == Some(Canonical::Yes) && at == b.len()
            };
            if slow.is_some() && plain(&bytes) {
                prop_assert!(fast.is_some());
            }
        }
    }
}
