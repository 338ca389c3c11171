//! A request's query parameters, read once for every handler: each name at
//! most once (`?subject=a&subject=b` is refused, not read as either), and,
//! where a handler says so, only the names it knows.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::ApiError;

/// The query parameters, percent-decoded, each name once.
#[derive(Debug, Default)]
pub(crate) struct Params(pub HashMap<String, String>);

impl Params {
    /// Reads `query` (`a=1&b=2`); a name given twice is refused.
    pub(crate) fn parse(query: &str) -> Result<Params, ApiError> {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            if map.contains_key(k.as_ref()) {
                return Err(ApiError::bad(format!(
                    "{k} is given twice; each parameter is taken once"
                )));
            }
            map.insert(k.into_owned(), v.into_owned());
        }
        Ok(Params(map))
    }

    /// The value of `name`, if given.
    pub(crate) fn get(&self, name: &str) -> Option<&String> {
        self.0.get(name)
    }

    /// Refuses a name outside `known`, naming them: a misspelt `size`
    /// must not silently answer for the latest checkpoint.
    pub(crate) fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => Err(ApiError::bad(format!(
                "unknown parameter {k:?}; known: {}",
                known.join(", ")
            ))),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Params, ApiError> {
        Params::parse(parts.uri.query().unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_taken_once_and_decoded() {
        let p = Params::parse("subject=alice%40example.com&limit=5").unwrap();
        assert_eq!(p.get("subject").unwrap(), "alice@example.com");
        assert_eq!(p.get("limit").unwrap(), "5");
        let e = Params::parse("subject=a&limit=1&subject=b").unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.reason.contains("subject is given twice"), "{}", e.reason);
        assert!(Params::parse("").unwrap().0.is_empty());
    }

    #[test]
    fn only_known_names_pass() {
        let p = Params::parse("sise=5").unwrap();
        let e = p.only(&["size"]).unwrap_err();
        assert!(e.reason.contains("\"sise\"; known: size"), "{}", e.reason);
        assert!(Params::parse("size=5").unwrap().only(&["size"]).is_ok());
    }
}
