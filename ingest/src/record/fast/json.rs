//! JSON bodies transcoded straight to CBOR for the fast reader: no value
//! tree of the JSON is built.

use verifier::cbor::{head, text_into};

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
