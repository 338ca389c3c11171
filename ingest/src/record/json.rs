//! JSON records read straight into the CBOR data model, with no JSON value
//! tree in between, refusing what a CBOR map could not hold unambiguously:
//! an object with the same key twice.
//!
//! Numbers become integers where exact, otherwise floats (serde_json refuses
//! NaN, infinities and numbers out of range); everything else maps one to
//! one. serde_json's recursion limit (128 levels) bounds nesting.

use std::fmt;

use ciborium::Value;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value read as CBOR.
pub(crate) struct JsonValue(pub(crate) Value);

/// Reads a whole JSON body into the CBOR data model.
pub(crate) fn from_slice(body: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<JsonValue>(body).map(|v| v.0)
}

impl<'de> Deserialize<'de> for JsonValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor).map(JsonValue)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Integer(i.into()))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(Value::Integer(u.into()))
    }
    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        if !f.is_finite() {
            return Err(E::custom("numbers must be finite"));
        }
        Ok(Value::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Text(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::Text(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(JsonValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: Vec<(Value, Value)> = Vec::new();
        // Small objects (records' own) are checked by a scan; past
        // `SCAN_KEYS` keys a set keeps the check linear.
        let mut seen: Option<std::collections::HashSet<String>> = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let duplicate = match &mut seen {
                Some(set) => !set.insert(key.to_string()),
                None => entries.iter().any(|(k, _)| k.as_text() == Some(&key)),
            };
            if duplicate {
                return Err(de::Error::custom(format!(
                    "the key {key:?} appears twice in one object"
                )));
            }
            if seen.is_none() && entries.len() + 1 == SCAN_KEYS {
                let mut set: std::collections::HashSet<String> = entries
                    .iter()
                    .filter_map(|(k, _)| k.as_text().map(str::to_string))
                    .collect();
                set.insert(key.to_string());
                seen = Some(set);
            }
            let JsonValue(v) = map.next_value()?;
            entries.push((Value::Text(key.into_owned()), v));
        }
        Ok(Value::Map(entries))
    }
}

/// Keys of an object checked for repeats by a scan before a set is built.
const SCAN_KEYS: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_same_values_as_the_json_tree_did() {
        let text = r#"{"a": [1, -2, 2.5, true, null, "x"], "b": {"c": 18446744073709551615}}"#;
        let direct = from_slice(text.as_bytes()).unwrap();
        let via_tree = crate::record::from_json(&serde_json::from_str(text).unwrap());
        assert_eq!(direct, via_tree);
    }

    #[test]
    fn refuses_a_key_twice_small_and_large_objects() {
        let e = from_slice(br#"{"a": 1, "b": {"x": 1, "x": 2}}"#).unwrap_err();
        assert!(e.to_string().contains("\"x\" appears twice"), "{e}");
        let mut big: Vec<String> = (0..100).map(|i| format!("\"k{i}\": {i}")).collect();
        big.push("\"k7\": 0".into());
        let text = format!("{{{}}}", big.join(","));
        assert!(from_slice(text.as_bytes()).is_err());
        big.pop();
        let text = format!("{{{}}}", big.join(","));
        assert!(from_slice(text.as_bytes()).is_ok());
    }

    #[test]
    fn refuses_deep_nesting_and_non_finite_numbers() {
        assert!(from_slice("[".repeat(10_000).as_bytes()).is_err());
        assert!(from_slice(b"1e999").is_err());
        assert!(from_slice(b"NaN").is_err());
    }
}
