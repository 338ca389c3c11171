//! Who writes, for `/metrics`: records appended per authenticated writer
//! (`submitted_by`, the token's enforcer id) and when each last wrote, so
//! that an enforcer that stops logging is noticed while it matters (an
//! alert on the time since its last write: examples/alerts.yaml,
//! `LedgerEnforcerSilent`). A gateway that stops shipping decisions leaves
//! a gap no proof can fill afterwards.
//!
//! One series per writer that wrote since ledgerd started: bounded by the
//! tokens the operator issued, not by what requests say.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Per writer: records appended, and the time of its last write.
#[derive(Debug, Default)]
pub struct Senders(Mutex<BTreeMap<String, Sent>>);

#[derive(Debug, Default, Clone, Copy)]
struct Sent {
    appended: u64,
    /// Seconds since the epoch.
    last: f64,
}

impl Senders {
    /// A write of `submitted_by` answered with `appended` new records
    /// (duplicates of a retry count as a write, not as records).
    pub fn wrote(&self, submitted_by: &str, appended: usize) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let sent = all.entry(submitted_by.to_string()).or_default();
        sent.appended += appended as u64;
        sent.last = sent.last.max(now);
    }

    /// The two metric families, with their HELP and TYPE; nothing before
    /// the first write.
    pub fn metrics(&self) -> String {
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if all.is_empty() {
            return String::new();
        }
        let (mut appended, mut last) = (String::new(), String::new());
        for (who, sent) in all.iter() {
            let who = label(who);
            let _ = writeln!(
                appended,
                "ledger_writer_records_appended_total{{submitted_by=\"{who}\"}} {}",
                sent.appended
            );
            let _ = writeln!(
                last,
                "ledger_writer_last_write_timestamp_seconds{{submitted_by=\"{who}\"}} {:.3}",
                sent.last
            );
        }
        format!(
            "# HELP ledger_writer_records_appended_total records appended per authenticated writer (submitted_by)\n\
             # TYPE ledger_writer_records_appended_total counter\n{appended}\
             # HELP ledger_writer_last_write_timestamp_seconds when each writer's last write was answered (since ledgerd started)\n\
             # TYPE ledger_writer_last_write_timestamp_seconds gauge\n{last}"
        )
    }
}

/// A Prometheus label value: backslash, double quote and newline escaped.
pub(crate) fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_writer_has_its_count_and_last_write() {
        let s = Senders::default();
        assert_eq!(s.metrics(), "");
        s.wrote("gw-eu-1", 3);
        s.wrote("gw-eu-1", 0);
        s.wrote("odd\"id\\", 2);
        let m = s.metrics();
        assert!(
            m.contains("ledger_writer_records_appended_total{submitted_by=\"gw-eu-1\"} 3\n"),
            "{m}"
        );
        assert!(m.contains("{submitted_by=\"odd\\\"id\\\\\"} 2\n"), "{m}");
        assert_eq!(
            m.matches("ledger_writer_last_write_timestamp_seconds{")
                .count(),
            2,
            "{m}"
        );
        assert_eq!(m.matches("# TYPE").count(), 2, "{m}");
    }
}
