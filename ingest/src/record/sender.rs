//! Who sends records, and what it may write: the one fact every check of a
//! body needs, whichever path (fast or reference) checks it.

use verifier::enforcer_signature::EnforcerKeys;

/// Who sends records: the authenticated writer, the `enforcer.id` its
/// records must declare, if its token is bound to one, and the enforcers
/// whose records must be signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sender<'a> {
    /// What the leaves' `submitted_by` records.
    pub submitted_by: &'a str,
    /// The only `enforcer.id` it may write (a writer token); `None` for a
    /// relay, which forwards for many enforcers.
    pub enforcer: Option<&'a str>,
    /// The enforcers' keys: a record of an enforcer with a key here must
    /// be signed by it, and a signed record is checked with them. `None`:
    /// no enforcer has a key, and signed records are refused.
    pub signers: Option<&'a EnforcerKeys>,
}

impl<'a> Sender<'a> {
    /// A sender that may write for any enforcer.
    pub fn relay(submitted_by: &'a str) -> Sender<'a> {
        Sender {
            submitted_by,
            enforcer: None,
            signers: None,
        }
    }

    /// The same sender, with the enforcers' keys.
    pub fn with_signers(self, signers: &'a EnforcerKeys) -> Sender<'a> {
        Sender {
            signers: Some(signers),
            ..self
        }
    }

    /// Whether it may send an unsigned record that declares `enforcer`:
    /// its token allows that enforcer, and the enforcer has no key.
    pub fn may_write_unsigned(&self, enforcer: &str) -> bool {
        self.enforcer.is_none_or(|b| b == enforcer)
            && !self.signers.is_some_and(|k| k.signs(enforcer))
    }
}
