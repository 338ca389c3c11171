//! A small path-aware reader over CBOR values, used to check records field by
//! field and name the exact path of any problem.

use ciborium::Value;
use time::OffsetDateTime;
pub use verifier::timestamp::Timestamp;

/// A problem with one field of a record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct FieldError {
    /// Dotted path of the field, e.g. `delegation[1].identity_kind`.
    pub path: String,
    /// What is wrong with it.
    pub problem: String,
}

pub(crate) fn err<T>(path: &str, problem: impl Into<String>) -> Result<T, FieldError> {
    Err(FieldError {
        path: if path.is_empty() {
            "(record)".into()
        } else {
            path.into()
        },
        problem: problem.into(),
    })
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Reads a time as a record may spell it: RFC 3339 text, tag 0 text, or
/// tag 1 epoch seconds.
pub(crate) fn time_from_value(v: &Value, path: &str) -> Result<Timestamp, FieldError> {
    let parsed = match v {
        Value::Text(s) => Timestamp::parse_text(s),
        Value::Tag(0, inner) => inner.as_text().and_then(Timestamp::parse_text),
        Value::Tag(1, inner) => match inner.as_ref() {
            Value::Integer(i) => i64::try_from(*i)
                .ok()
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
                .map(Timestamp),
            // A float epoch carries no more than microseconds reliably.
            Value::Float(f) if f.is_finite() && *f >= 0.0 && *f < 253_402_300_800.0 => {
                OffsetDateTime::from_unix_timestamp_nanos((*f * 1e6).round() as i128 * 1000)
                    .ok()
                    .map(Timestamp)
            }
            _ => None,
        },
        _ => None,
    };
    match parsed {
        Some(t) if (1970..=9999).contains(&t.0.year()) => Ok(t),
        _ => err(
            path,
            "must be an RFC 3339 time such as 2026-11-23T07:00:00.123Z (or CBOR tag 0/1)",
        ),
    }
}

/// Reads one CBOR map, field by field, building its normalised copy; unknown
/// keys are refused by [`Obj::finish`] unless the map is open.
pub(crate) struct Obj<'a> {
    path: String,
    entries: &'a [(Value, Value)],
    used: Vec<usize>,
    out: Vec<(Value, Value)>,
}

/// Longest text accepted in any identifier field.
pub(crate) const MAX_TEXT: usize = 1024;

impl<'a> Obj<'a> {
    pub(crate) fn new(v: &'a Value, path: &str) -> Result<Obj<'a>, FieldError> {
        let Value::Map(entries) = v else {
            return err(path, "must be a map");
        };
        if let Some((k, _)) = entries.iter().find(|(k, _)| !k.is_text()) {
            return err(path, format!("map keys must be text, found {}", kind(k)));
        }
        Ok(Obj {
            path: path.to_string(),
            entries,
            used: Vec::new(),
            out: Vec::new(),
        })
    }

    pub(crate) fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The raw value of `key`, marking it used.
    pub(crate) fn raw(&mut self, key: &str) -> Option<&'a Value> {
        let i = self
            .entries
            .iter()
            .position(|(k, _)| k.as_text() == Some(key))?;
        self.used.push(i);
        let v = &self.entries[i].1;
        // JSON null and CBOR null mean "absent" for optional fields.
        (!v.is_null()).then_some(v)
    }

    pub(crate) fn put(&mut self, key: &str, v: Value) {
        self.out.push((Value::Text(key.into()), v));
    }

    pub(crate) fn required(&mut self, key: &str) -> Result<&'a Value, FieldError> {
        match self.raw(key) {
            Some(v) => Ok(v),
            None => err(&self.path(key), "is required"),
        }
    }

    /// A text field of 1..=MAX_TEXT bytes.
    pub(crate) fn text(&mut self, key: &str, required: bool) -> Result<Option<String>, FieldError> {
        let v = if required {
            Some(self.required(key)?)
        } else {
            self.raw(key)
        };
        let Some(v) = v else { return Ok(None) };
        let s = check_text(v, &self.path(key))?;
        self.put(key, Value::Text(s.clone()));
        Ok(Some(s))
    }

    /// A text field that must be one of `allowed`.
    pub(crate) fn one_of(
        &mut self,
        key: &str,
        allowed: &[&str],
        required: bool,
    ) -> Result<Option<String>, FieldError> {
        let path = self.path(key);
        let Some(s) = self.text(key, required)? else {
            return Ok(None);
        };
        if !allowed.contains(&s.as_str()) {
            return err(&path, format!("{s:?} is not one of {}", allowed.join(", ")));
        }
        Ok(Some(s))
    }

    /// A time field, stored in canonical form.
    pub(crate) fn time(
        &mut self,
        key: &str,
        required: bool,
    ) -> Result<Option<Timestamp>, FieldError> {
        let v = if required {
            Some(self.required(key)?)
        } else {
            self.raw(key)
        };
        let Some(v) = v else { return Ok(None) };
        let t = time_from_value(v, &self.path(key))?;
        self.put(key, t.to_cbor());
        Ok(Some(t))
    }

    /// A free-form map (properties, extensions): any well-formed content.
    pub(crate) fn free_map(&mut self, key: &str) -> Result<(), FieldError> {
        let path = self.path(key);
        if let Some(v) = self.raw(key) {
            if !v.is_map() {
                return err(&path, "must be a map");
            }
            check_free(v, &path)?;
            self.put(key, v.clone());
        }
        Ok(())
    }

    /// An array of texts (possibly empty).
    pub(crate) fn texts(&mut self, key: &str) -> Result<Vec<String>, FieldError> {
        let path = self.path(key);
        let Some(v) = self.raw(key) else {
            return Ok(vec![]);
        };
        let Value::Array(items) = v else {
            return err(&path, "must be an array of text");
        };
        let texts = items
            .iter()
            .enumerate()
            .map(|(i, item)| check_text(item, &format!("{path}[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        self.put(
            key,
            Value::Array(texts.iter().cloned().map(Value::Text).collect()),
        );
        Ok(texts)
    }

    /// Copies every key not read yet (for open maps such as `context`).
    pub(crate) fn keep_rest(&mut self) -> Result<(), FieldError> {
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if !self.used.contains(&i) {
                let key = k.as_text().unwrap_or_default();
                check_free(v, &self.path(key))?;
                self.used.push(i);
                self.out.push((k.clone(), v.clone()));
            }
        }
        Ok(())
    }

    /// Refuses unknown keys and returns the normalised map.
    pub(crate) fn finish(self) -> Result<Value, FieldError> {
        if let Some((i, (k, _))) = self
            .entries
            .iter()
            .enumerate()
            .find(|(i, _)| !self.used.contains(i))
        {
            let _ = i;
            let key = k.as_text().unwrap_or_default();
            let hint = if self.path.is_empty() {
                "; put enforcer-specific data under extensions"
            } else {
                ""
            };
            return err(&self.path(key), format!("unknown field{hint}"));
        }
        Ok(Value::Map(self.out))
    }
}

/// A text value at `path`: not empty, at most [`MAX_TEXT`] bytes.
pub(crate) fn check_text(v: &Value, path: &str) -> Result<String, FieldError> {
    match v.as_text() {
        Some("") => err(path, "must not be empty"),
        Some(s) if s.len() > MAX_TEXT => {
            err(path, format!("is {} bytes; at most {MAX_TEXT}", s.len()))
        }
        Some(s) => Ok(s.to_string()),
        None => err(path, format!("must be text, found {}", kind(v))),
    }
}

/// Deepest nesting of free-form content (maps, arrays and tags inside
/// `properties`, `extensions`, `obligations` and `context`), well inside
/// the 128 levels the verifier reads a leaf to: a record logged must be one
/// every reader of the log can decode.
pub const MAX_NESTING: usize = 32;

/// Free-form content: text map keys (so every record has a JSON form), no
/// NaN or infinities, no undefined or other simple values, nested at most
/// [`MAX_NESTING`] levels.
pub(crate) fn check_free(v: &Value, path: &str) -> Result<(), FieldError> {
    check_free_at(v, path, 0)
}

fn check_free_at(v: &Value, path: &str, depth: usize) -> Result<(), FieldError> {
    if depth > MAX_NESTING && matches!(v, Value::Map(_) | Value::Array(_) | Value::Tag(..)) {
        return err(
            path,
            format!("is nested more than {MAX_NESTING} levels deep"),
        );
    }
    match v {
        Value::Map(entries) => entries.iter().try_for_each(|(k, v)| match k.as_text() {
            Some(key) => check_free_at(v, &join(path, key), depth + 1),
            None => err(path, "map keys must be text"),
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| check_free_at(item, &format!("{path}[{i}]"), depth + 1)),
        Value::Float(f) if !f.is_finite() => err(path, "numbers must be finite"),
        Value::Tag(_, inner) => check_free_at(inner, path, depth + 1),
        Value::Integer(_)
        | Value::Bytes(_)
        | Value::Float(_)
        | Value::Text(_)
        | Value::Bool(_)
        | Value::Null => Ok(()),
        _ => err(path, format!("{} is not allowed", kind(v))),
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Integer(_) => "an integer",
        Value::Bytes(_) => "bytes",
        Value::Float(_) => "a float",
        Value::Text(_) => "text",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        Value::Tag(..) => "a tagged value",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        _ => "a simple value",
    }
}
