//! Text from records, made safe to print on a terminal.
//!
//! Record fields are written by enforcers, and an enforcer may be hostile or
//! compromised. Printed as they are, a subject id holding `"\r\nOK: …"`, an
//! ANSI escape sequence or a right-to-left override could forge or hide lines
//! of a verifier's account. Every line of text output built from record
//! content goes through [`line()`]: control characters (C0, DEL, C1),
//! invisible format characters and bidirectional overrides are shown as
//! `\u{…}`, everything else as it is. JSON output needs none of this: it is
//! escaped by JSON itself, and carries the exact text.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` is shown escaped: it moves the cursor, changes the
/// terminal's state, reorders or hides text.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Arabic letter mark; zero-width space, joiners, LRM, RLM.
            '\u{061c}' | '\u{200b}'..='\u{200f}'
            // Line and paragraph separators; LRE, RLE, PDF, LRO, RLO.
            | '\u{2028}'..='\u{202e}'
            // Word joiner, invisible operators; LRI, RLI, FSI, PDI.
            | '\u{2060}'..='\u{2069}'
            // Byte order mark / zero-width no-break space.
            | '\u{feff}'
            // Tag characters: invisible text riding along ASCII.
            | '\u{e0000}'..='\u{e007f}'
        )
}

/// `s` for one line of a terminal: each unsafe character ([`is_unsafe`]) as
/// `\u{hex}`. Borrowed when there is nothing to escape.
pub fn line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` line by line through [`line()`]: the line breaks it has stay, and
/// nothing within a line can break it or rewrite it.
pub fn lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, l) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&line(l));
    }
    out
}

/// An error and its causes on one line, as the binaries print them: each
/// cause after `": "`, unless the text before already shows it (an error
/// whose message quotes its source and also returns it from
/// [`std::error::Error::source`] would otherwise print it twice), through
/// [`lines`], since a message may quote record text.
pub fn error(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    lines(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for s in [
            "alice@example.com",
            "DOMAIN\\user",
            "équipe-paiements",
            "日本",
            "",
        ] {
            assert!(matches!(line(s), Cow::Borrowed(b) if b == s));
        }
    }

    #[test]
    fn controls_and_overrides_are_escaped() {
        assert_eq!(
            line("mallory\u{1b}[2K\r\nOK: forged"),
            "mallory\\u{1b}[2K\\u{d}\\u{a}OK: forged"
        );
        assert_eq!(line("a\u{7f}b\u{9b}c"), "a\\u{7f}b\\u{9b}c");
        assert_eq!(line("file\u{202e}fdp.exe"), "file\\u{202e}fdp.exe");
        assert_eq!(
            line("x\u{2066}y\u{2069}\u{feff}"),
            "x\\u{2066}y\\u{2069}\\u{feff}"
        );
        assert_eq!(line("tab\there"), "tab\\u{9}here");
        assert_eq!(line("ok\u{e0041}\u{e0042}"), "ok\\u{e0041}\\u{e0042}");
    }

    #[test]
    fn lines_keeps_its_own_breaks_only() {
        assert_eq!(lines("one\ntwo\r\u{1b}c\n"), "one\ntwo\\u{d}\\u{1b}c\n");
    }

    #[test]
    fn nothing_unsafe_survives() {
        // Every char up to U+10000 (and the planes' ends): the output holds
        // no unsafe character, and a safe one comes out as it went in.
        for u in (0u32..0x10000).chain(0xe0000..0xe0080).chain([0x10ffff]) {
            let Some(c) = char::from_u32(u) else { continue };
            let s = format!("a{c}b");
            let shown = line(&s);
            assert!(!shown.chars().any(is_unsafe), "U+{u:04x}");
            assert_eq!(shown == s, !is_unsafe(c), "U+{u:04x}");
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("lock held by {0}")]
    struct Held(String);

    #[derive(Debug, thiserror::Error)]
    #[error("storage: {0}")]
    struct Quoting(#[source] Held);

    #[derive(Debug, thiserror::Error)]
    #[error("opening the log")]
    struct Opening(#[source] Quoting);

    #[derive(Debug, thiserror::Error)]
    #[error("reading")]
    struct Reading(#[source] Held);

    #[test]
    fn an_error_shows_each_cause_once() {
        let held = || Held("pid 7".into());
        assert_eq!(
            error(&Opening(Quoting(held()))),
            "opening the log: storage: lock held by pid 7"
        );
        assert_eq!(error(&Reading(held())), "reading: lock held by pid 7");
        assert_eq!(error(&held()), "lock held by pid 7");
        assert_eq!(
            error(&Reading(Held("x\u{1b}[2K".into()))),
            "reading: lock held by x\\u{1b}[2K"
        );
    }
}
