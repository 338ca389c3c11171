//! Record times (specs/record.md, "Times"): the one canonical text form a
//! leaf holds, and its parsing.
//!
//! ```text
//! 0("2026-11-23T07:00:00.123Z")   RFC 3339 in UTC with Z; the fraction of a
//!                                 second without trailing zeros, none if zero
//! ```

use ciborium::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A point in time, years 1970–9999.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub OffsetDateTime);

impl Timestamp {
    /// Nanoseconds since the Unix epoch (every accepted year is after 1970).
    pub fn unix_nanos(&self) -> u64 {
        u64::try_from(self.0.unix_timestamp_nanos()).unwrap_or(0)
    }

    /// From nanoseconds since the epoch.
    pub fn from_unix_nanos(nanos: u64) -> Option<Timestamp> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
            .ok()
            .map(Timestamp)
    }

    /// Seconds from `earlier` to `self` (negative if `self` is earlier).
    pub fn seconds_since(&self, earlier: &Timestamp) -> f64 {
        (self.0 - earlier.0).as_seconds_f64()
    }

    /// The canonical text form: RFC 3339 in UTC with `Z`, the fraction of a
    /// second without trailing zeros (none if zero), e.g.
    /// `2026-11-23T07:00:00.123Z`.
    pub fn canonical(&self) -> String {
        let mut s = Vec::with_capacity(30);
        self.canonical_into(&mut s);
        // Only ASCII digits and separators were written.
        String::from_utf8(s).unwrap_or_default()
    }

    /// Appends [`Timestamp::canonical`]'s text (ASCII) to `s`.
    pub fn canonical_into(&self, s: &mut Vec<u8>) {
        let t = self.0;
        let mut digits = |n: u32, width: u32, sep: Option<u8>| {
            for i in (0..width).rev() {
                s.push(b'0' + (n / 10u32.pow(i) % 10) as u8);
            }
            if let Some(c) = sep {
                s.push(c);
            }
        };
        // Years are 1970–9999 (four digits), as every accepted time's.
        digits(t.year().unsigned_abs(), 4, Some(b'-'));
        digits(u32::from(u8::from(t.month())), 2, Some(b'-'));
        digits(u32::from(t.day()), 2, Some(b'T'));
        digits(u32::from(t.hour()), 2, Some(b':'));
        digits(u32::from(t.minute()), 2, Some(b':'));
        digits(u32::from(t.second()), 2, None);
        let mut nanos = t.nanosecond();
        if nanos != 0 {
            let mut width = 9;
            while nanos.is_multiple_of(10) {
                nanos /= 10;
                width -= 1;
            }
            s.push(b'.');
            for i in (0..width).rev() {
                s.push(b'0' + (nanos / 10u32.pow(i) % 10) as u8);
            }
        }
        s.push(b'Z');
    }

    /// The canonical CBOR value: tag 0 over the canonical text.
    pub fn to_cbor(&self) -> Value {
        Value::Tag(0, Box::new(Value::Text(self.canonical())))
    }

    /// Parses RFC 3339 text (any offset; normalised to UTC), years 1970–9999.
    pub fn parse_text(s: &str) -> Option<Timestamp> {
        let t = OffsetDateTime::parse(s, &Rfc3339)
            .ok()?
            .to_offset(time::UtcOffset::UTC);
        (1970..=9999).contains(&t.year()).then_some(Timestamp(t))
    }

    /// Reads a time as a leaf holds it: tag 0 over RFC 3339 text (plain text
    /// is read too).
    pub fn from_leaf_value(v: &Value) -> Option<Timestamp> {
        match v {
            Value::Tag(0, inner) => inner.as_text().and_then(Timestamp::parse_text),
            Value::Text(s) => Timestamp::parse_text(s),
            _ => None,
        }
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.canonical())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_drops_trailing_zeros_and_normalises_to_utc() {
        let t = Timestamp::parse_text("2026-11-23T08:00:00.120+01:00").unwrap();
        assert_eq!(t.canonical(), "2026-11-23T07:00:00.12Z");
        let whole = Timestamp::parse_text("2026-11-23T07:00:00.000Z").unwrap();
        assert_eq!(whole.canonical(), "2026-11-23T07:00:00Z");
        assert!(Timestamp::parse_text("1969-12-31T23:59:59Z").is_none());
        assert_eq!(Timestamp::from_leaf_value(&t.to_cbor()), Some(t));
        assert_eq!(whole.seconds_since(&t), -0.12);
    }
}
