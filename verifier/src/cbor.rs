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

fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Array(items) => {
            head(4, items.len() as u64, out);
            items.iter().for_each(|v| write(v, out));
        }
        Value::Map(entries) => {
            let mut encoded: Vec<(Vec<u8>, &Value)> =
                entries.iter().map(|(k, v)| (encode(k), v)).collect();
            encoded.sort_by(|a, b| a.0.cmp(&b.0));
            head(5, encoded.len() as u64, out);
            for (k, v) in encoded {
                out.extend_from_slice(&k);
                write(v, out);
            }
        }
        Value::Tag(tag, inner) => {
            head(6, *tag, out);
            write(inner, out);
        }
        // Scalars: ciborium already writes the shortest forms.
        scalar => {
            // Writing into a Vec cannot fail.
            let _ = ciborium::into_writer(scalar, &mut *out);
        }
    }
}

/// The head of an item: major type and argument, shortest form.
pub(crate) fn head(major: u8, n: u64, out: &mut Vec<u8>) {
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
pub(crate) fn text_into(text: &str, out: &mut Vec<u8>) {
    head(3, text.len() as u64, out);
    out.extend_from_slice(text.as_bytes());
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
    check_unique_keys(&value)?;
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
            check_unique_keys(&value)?;
            Ok(Prefix::Item(value, bytes.len() - rest.len()))
        }
        // Reading a slice fails only at its end: the item is cut short.
        Err(ciborium::de::Error::Io(_)) => Ok(Prefix::Incomplete),
        Err(e) => Err(CborError::Invalid(e.to_string())),
    }
}

fn check_unique_keys(value: &Value) -> Result<(), CborError> {
    match value {
        Value::Array(items) => items.iter().try_for_each(check_unique_keys),
        Value::Map(entries) => {
            let mut keys: Vec<Vec<u8>> = entries.iter().map(|(k, _)| encode(k)).collect();
            keys.sort();
            if keys.windows(2).any(|w| w[0] == w[1]) {
                return Err(CborError::DuplicateKey);
            }
            entries.iter().try_for_each(|(k, v)| {
                check_unique_keys(k)?;
                check_unique_keys(v)
            })
        }
        Value::Tag(_, inner) => check_unique_keys(inner),
        _ => Ok(()),
    }
}

/// True when `bytes` are one CBOR item in deterministic encoding.
pub fn is_deterministic(bytes: &[u8]) -> bool {
    decode(bytes).is_ok_and(|v| encode(&v) == bytes)
}
