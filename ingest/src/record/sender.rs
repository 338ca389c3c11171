//! Who sends records, and what it may write: the one fact every check of a
//! body needs, whichever path (fast or reference) checks it.

use verifier::enforcer_signature::EnforcerKeys;
use verifier::timestamp::Timestamp;

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
    /// When the first decision the ledger keeps was received, once
    /// retention removed older ones ([`crate::Indexes::kept_from`]): a
    /// record decided before it is refused, since a retry of a removed
    /// decision could not be told from a new one (specs/record.md,
    /// "Times"). `None`: nothing removed, any time is taken.
    pub kept_from: Option<Timestamp>,
}

impl<'a> Sender<'a> {
    /// A sender that may write for any enforcer.
    pub fn relay(submitted_by: &'a str) -> Sender<'a> {
        Sender {
            submitted_by,
            enforcer: None,
            signers: None,
            kept_from: None,
        }
    }

    /// The same sender, with the enforcers' keys.
    pub fn with_signers(self, signers: &'a EnforcerKeys) -> Sender<'a> {
        Sender {
            signers: Some(signers),
            ..self
        }
    }

    /// The same sender, refusing records decided before `kept_from`.
    pub fn keeping_from(self, kept_from: Option<Timestamp>) -> Sender<'a> {
        Sender { kept_from, ..self }
    }

    /// Whether it may send a record decided at `time`: not before the
    /// first kept decision's receipt ([`Sender::kept_from`]).
    pub fn may_send_from(&self, time: Timestamp) -> bool {
        self.kept_from.is_none_or(|from| time >= from)
    }

    /// Whether it may send an unsigned record that declares `enforcer`:
    /// its token allows that enforcer, and the enforcer has no key.
    pub fn may_write_unsigned(&self, enforcer: &str) -> bool {
        self.enforcer.is_none_or(|b| b == enforcer)
            && !self.signers.is_some_and(|k| k.signs(enforcer))
    }
}
