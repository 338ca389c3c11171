//! Record rates per token (specs/tokens.md, "Rate"): a writer or relay
//! token made with `--rate N` sends at most N records a second on average,
//! so that one enforcer in a retry storm cannot fill the queue that every
//! other enforcer's decisions wait in.
//!
//! Each limited token has a bucket of up to N records (one second's worth)
//! that refills at N a second. A request is let in while the bucket is not
//! in debt, and its records are then taken from it, which may put it in
//! debt: a request of any size is let in (a 1,000-record batch under a
//! rate of 100 is let in, then the token waits 9 s), and over time the
//! token's records are N a second at most. A request that comes while the
//! bucket is in debt is refused with 429 and a `Retry-After` of the seconds
//! until it is not, before its body is read; nothing of it is appended.
//!
//! The buckets live in memory: a restart gives every token a full bucket.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::tokens::TokenEntry;

/// The buckets of the limited tokens, by token id.
#[derive(Debug, Default)]
pub struct Quotas {
    buckets: Mutex<HashMap<String, Bucket>>,
    refused: AtomicU64,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Records that may still be sent; below zero, the debt.
    level: f64,
    /// When `level` was last brought up to date.
    at: Instant,
}

impl Quotas {
    /// Runs `f` on `who`'s bucket brought up to `now`; `None` for a token
    /// with no rate.
    fn with<T>(
        &self,
        who: &TokenEntry,
        now: Instant,
        f: impl FnOnce(&mut Bucket, f64) -> T,
    ) -> Option<T> {
        let rate = f64::from(who.rate?);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(who.id.clone()).or_insert(Bucket {
            level: rate,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        // A rate lowered since: the bucket holds at most a second's worth.
        bucket.level = (bucket.level + elapsed * rate).min(rate);
        bucket.at = bucket.at.max(now);
        Some(f(bucket, rate))
    }

    /// Whether a request of `who` may come in at `now`: `Err` with how long
    /// until it may, while its bucket is in debt.
    pub fn admit(&self, who: &TokenEntry, now: Instant) -> Result<(), Duration> {
        let admitted = self
            .with(who, now, |b, rate| match b.level {
                l if l >= 0.0 => Ok(()),
                l => Err(Duration::from_secs_f64(-l / rate)),
            })
            .unwrap_or(Ok(()));
        if admitted.is_err() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        admitted
    }

    /// Requests refused so far (for `/metrics`).
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Takes `records` from `who`'s bucket at `now`.
    pub fn charge(&self, who: &TokenEntry, records: usize, now: Instant) {
        self.with(who, now, |b, _| b.level -= records as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::Role;

    fn token(id: &str, rate: Option<u32>) -> TokenEntry {
        TokenEntry {
            id: id.into(),
            role: Role::Writer,
            enforcer: "gw".into(),
            hash: [0; 32],
            expires: None,
            cert: None,
            rate,
        }
    }

    #[test]
    fn a_token_sends_its_rate_on_average_and_waits_out_its_debt() {
        let q = Quotas::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let gw = token("a", Some(100));
        // A full second's worth, then a batch larger than the rate: let in.
        assert_eq!(q.admit(&gw, at(0)), Ok(()));
        q.charge(&gw, 100, at(0));
        assert_eq!(q.admit(&gw, at(0)), Ok(()), "empty, not in debt");
        q.charge(&gw, 1000, at(0));
        // 1,000 in debt at 100 a second: 10 s to wait, less as time passes.
        assert_eq!(q.admit(&gw, at(0)), Err(Duration::from_secs(10)));
        assert_eq!(q.admit(&gw, at(4000)), Err(Duration::from_secs(6)));
        assert_eq!(q.admit(&gw, at(10_000)), Ok(()));
        // Refilled to a second's worth at most, however long it was idle.
        q.charge(&gw, 150, at(60_000));
        assert_eq!(q.admit(&gw, at(60_000)), Err(Duration::from_millis(500)));
        // Another token's bucket is its own; an unlimited token has none.
        assert_eq!(q.admit(&token("b", Some(1)), at(60_000)), Ok(()));
        let free = token("c", None);
        q.charge(&free, 1_000_000, at(0));
        assert_eq!(q.admit(&free, at(0)), Ok(()));
        // A clock read out of order takes no records back.
        assert!(q.admit(&gw, at(59_000)).is_err());
    }
}
