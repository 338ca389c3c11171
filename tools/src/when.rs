//! Times on the command line: an RFC 3339 time, or a span from now
//! (`90d`, `12h`, `30m`, `45s`): ahead for an expiry (`token add
//! --expires`), back for a window's bounds (`search --received-from 2h`,
//! `export --from 30d --to now`); and lengths of time in the same spelling
//! (`soak --duration 180s`, `search --follow --interval 1s`).

use std::time::Duration;

use verifier::timestamp::Timestamp;

/// `90d` / `12h` / `30m` / `45s` in seconds, if `s` is one (at least 1):
/// the spelling ledgerd's `--retention` takes too.
fn span(s: &str) -> Option<i64> {
    let secs = ingest::index::retention::parse_period(s).ok()?.as_secs();
    i64::try_from(secs).ok()
}

/// A length of time for clap: a span, or a number of seconds; at least
/// one second.
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let secs = match s.bytes().all(|b| b.is_ascii_digit()) {
        true => s.parse::<i64>().ok(),
        false => span(s),
    };
    match secs {
        Some(n) if n >= 1 => Ok(Duration::from_secs(n as u64)),
        _ => Err(format!(
            "{s:?} is not a duration of at least 1s such as 180s, 10m, 2h or 7d"
        )),
    }
}

/// `s` ahead of now, or the time it names.
pub fn ahead(s: &str) -> Option<Timestamp> {
    Timestamp::parse_text(s).or_else(|| {
        let at = time::OffsetDateTime::now_utc().checked_add(time::Duration::seconds(span(s)?))?;
        Some(Timestamp(at))
    })
}

/// A window's bound for clap: the time `s` names, `s` back from now, or
/// `now`; as RFC 3339 text, as the server takes it.
pub fn bound(s: &str) -> Result<String, String> {
    let now = time::OffsetDateTime::now_utc();
    let at = match s {
        "now" => Some(Timestamp(now)),
        _ => Timestamp::parse_text(s).or_else(|| {
            Some(Timestamp(
                now.checked_sub(time::Duration::seconds(span(s)?))?,
            ))
        }),
    };
    at.map(|t| t.canonical()).ok_or_else(|| {
        format!("{s:?} is neither an RFC 3339 time, `now`, nor a span back from now such as 2h, 30m, 7d")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_times() {
        assert_eq!(span("90d"), Some(90 * 86_400));
        assert_eq!(span("30m"), Some(1_800));
        for bad in ["", "d", "0h", "-1h", "+1h", "01h", "1w", "1.5h", "h1"] {
            assert_eq!(span(bad), None, "{bad}");
        }
        assert_eq!(
            bound("2026-11-23T07:00:00+01:00").unwrap(),
            "2026-11-23T06:00:00Z"
        );
        let back = Timestamp::parse_text(&bound("2h").unwrap()).unwrap().0;
        let want = time::OffsetDateTime::now_utc() - time::Duration::hours(2);
        assert!((back - want).abs() < time::Duration::seconds(5), "{back}");
        assert!(bound("now").is_ok());
        assert!(bound("yesterday")
            .unwrap_err()
            .contains("span back from now"));
        assert!(ahead("12h").unwrap().0 > time::OffsetDateTime::now_utc());
        assert_eq!(duration("180s"), Ok(Duration::from_secs(180)));
        assert_eq!(duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["0s", "0", "", "1w", "-5s"] {
            assert!(duration(bad).unwrap_err().contains("at least 1s"), "{bad}");
        }
    }
}
