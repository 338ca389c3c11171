//! Files of decision records as `ledgerctl append` and `ship` take them:
//! JSON lines, one JSON record (pretty-printed or not), a JSON array, or
//! CBOR (single records or a CBOR sequence, RFC 8742); `-` is stdin.
//!
//! `append` reads an input whole ([`read_input`], [`split`]): it appends
//! nothing unless every record checks. `ship` reads it as it sends
//! ([`batches`]): JSON lines and CBOR sequences a batch at a time, so a
//! file of any length is shipped in bounded memory; a JSON array or a
//! pretty-printed record is one document and is read whole (up to
//! 256 MiB). A line or item too long to be a record is refused as soon
//! as it is.

use std::io::{BufRead, BufReader, Read};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// An input's records, each as its own bytes.
pub(crate) enum Records {
    /// JSON records, each a JSON text.
    Json(Vec<String>),
    /// CBOR records, each one item.
    Cbor(Vec<Vec<u8>>),
}

/// The input named `name` (`-`: stdin), for reading as it comes.
pub(crate) fn open(name: &str) -> Result<Box<dyn BufRead>> {
    Ok(if name == "-" {
        Box::new(BufReader::with_capacity(1 << 16, std::io::stdin()))
    } else {
        let f = std::fs::File::open(name).with_context(|| format!("reading {name}"))?;
        Box::new(BufReader::with_capacity(1 << 16, f))
    })
}

/// The whole input named `name` (`-`: stdin).
pub(crate) fn read_input(name: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    open(name)?
        .read_to_end(&mut buf)
        .with_context(|| format!("reading {name}"))?;
    Ok(buf)
}

/// JSON when the first non-space byte is `{` or `[`, otherwise CBOR.
pub(crate) fn split(name: &str, data: &[u8]) -> Result<Records> {
    let first = data.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => Ok(Records::Json(vec![])),
        Some(b'[') => {
            let v: Vec<Value> = serde_json::from_slice(data)
                .with_context(|| format!("{name}: not a JSON array"))?;
            Ok(Records::Json(v.iter().map(Value::to_string).collect()))
        }
        Some(b'{') => {
            // One record (pretty-printed or not), else JSON lines.
            if let Ok(one) = serde_json::from_slice::<Value>(data) {
                return Ok(Records::Json(vec![one.to_string()]));
            }
            let text = std::str::from_utf8(data).with_context(|| format!("{name}: not UTF-8"))?;
            let lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            Ok(Records::Json(lines.map(str::to_string).collect()))
        }
        Some(_) => {
            let mut rest = data;
            let mut items = Vec::new();
            while !rest.is_empty() {
                let before = rest.len();
                verifier::cbor::decode_next(&mut rest)
                    .with_context(|| format!("{name}: CBOR item {} is malformed", items.len()))?;
                let used = before - rest.len();
                let start = data.len() - before;
                items.push(data[start..start + used].to_vec());
            }
            Ok(Records::Cbor(items))
        }
    }
}

/// The longest JSON line or CBOR item read as a record: no record is
/// near it (a leaf holds at most 64 KiB), so more is not a record and is
/// refused before it fills memory.
const MAX_RECORD: usize = 1 << 20;

/// Reads one line of at most [`MAX_RECORD`] bytes into `line` (cleared
/// first); its length, 0 at the end.
fn read_record_line(name: &str, input: &mut impl BufRead, line: &mut String) -> Result<usize> {
    line.clear();
    let n = input
        .by_ref()
        .take(MAX_RECORD as u64 + 1)
        .read_line(line)
        .with_context(|| format!("{name}: not UTF-8 text"))?;
    if n > MAX_RECORD {
        bail!(
            "{name}: a line is over {} MiB: not a record",
            MAX_RECORD >> 20
        );
    }
    Ok(n)
}

/// The largest JSON document (an array, a pretty-printed record) read
/// whole; longer inputs go as JSON lines or a CBOR sequence.
const MAX_DOCUMENT: u64 = 256 << 20;

/// The rest of `input` after `start`, a JSON document, read whole.
fn read_document(name: &str, input: &mut impl BufRead, start: Vec<u8>) -> Result<Vec<u8>> {
    let mut data = start;
    input
        .by_ref()
        .take(MAX_DOCUMENT + 1)
        .read_to_end(&mut data)
        .with_context(|| format!("reading {name}"))?;
    if data.len() as u64 > MAX_DOCUMENT {
        bail!(
            "{name}: a JSON document over {} MiB: ship JSON lines or a CBOR sequence instead",
            MAX_DOCUMENT >> 20
        );
    }
    Ok(data)
}

/// A request body of records: its content type and bytes.
pub(crate) type Body = (&'static str, Vec<u8>);

/// The body of JSON records `[r1,r2,…]`.
fn json_body(records: &[String]) -> Body {
    (
        "application/json",
        format!("[{}]", records.join(",")).into_bytes(),
    )
}

/// Reads the records of `input` as they come and hands them to `send` in
/// bodies of at most `batch` records, in order; stops at the first error
/// (of the input, or of `send`).
pub(crate) fn batches(
    name: &str,
    mut input: impl BufRead,
    batch: usize,
    mut send: impl FnMut(Body) -> Result<()>,
) -> Result<()> {
    let first = loop {
        let buf = input
            .fill_buf()
            .with_context(|| format!("reading {name}"))?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                let b = buf[i];
                input.consume(i);
                break b;
            }
            None => {
                let n = buf.len();
                input.consume(n);
            }
        }
    };
    if first == b'{' {
        let mut line = String::new();
        read_record_line(name, &mut input, &mut line)?;
        let lines = serde_json::from_str::<Value>(line.trim()).is_ok();
        if lines {
            // JSON lines: a batch at a time.
            let mut records = vec![line.trim().to_string()];
            loop {
                if records.len() == batch {
                    send(json_body(&records))?;
                    records.clear();
                }
                if read_record_line(name, &mut input, &mut line)? == 0 {
                    break;
                }
                let l = line.trim();
                if !l.is_empty() {
                    records.push(l.to_string());
                }
            }
            if !records.is_empty() {
                send(json_body(&records))?;
            }
            return Ok(());
        }
        // A record over several lines: one document.
        let data = read_document(name, &mut input, line.into_bytes())?;
        return whole(name, &data, batch, send);
    }
    if first == b'[' {
        let data = read_document(name, &mut input, Vec::new())?;
        return whole(name, &data, batch, send);
    }
    // CBOR: item by item as the bytes arrive.
    let mut buf: Vec<u8> = Vec::new();
    // `total`: items read so far; `count`: of them, in the batch not sent.
    let (mut items, mut count, mut total, mut at) = (Vec::new(), 0usize, 0usize, 0usize);
    loop {
        match verifier::cbor::decode_prefix(&buf[at..]) {
            Ok(verifier::cbor::Prefix::Item(_, n)) => {
                items.extend_from_slice(&buf[at..at + n]);
                at += n;
                count += 1;
                total += 1;
                if count == batch {
                    send(("application/cbor-seq", std::mem::take(&mut items)))?;
                    count = 0;
                }
                continue;
            }
            Ok(verifier::cbor::Prefix::Incomplete) => {}
            Err(e) => bail!("{name}: CBOR item {total} is malformed: {e}"),
        }
        // More bytes: drop what is sent, then read.
        buf.drain(..at);
        at = 0;
        if buf.len() > MAX_RECORD {
            bail!(
                "{name}: CBOR item {total} is over {} MiB: not a record",
                MAX_RECORD >> 20
            );
        }
        let more = input
            .fill_buf()
            .with_context(|| format!("reading {name}"))?;
        if more.is_empty() {
            if !buf.is_empty() {
                bail!("{name}: the input ends inside CBOR item {total}");
            }
            break;
        }
        let n = more.len();
        buf.extend_from_slice(more);
        input.consume(n);
    }
    if count > 0 {
        send(("application/cbor-seq", items))?;
    }
    Ok(())
}

/// An input read whole, in bodies of at most `batch` records.
fn whole(
    name: &str,
    data: &[u8],
    batch: usize,
    mut send: impl FnMut(Body) -> Result<()>,
) -> Result<()> {
    match split(name, data)? {
        Records::Json(records) => records.chunks(batch).try_for_each(|c| send(json_body(c))),
        Records::Cbor(items) => items
            .chunks(batch)
            .try_for_each(|c| send(("application/cbor-seq", c.concat()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bodies `batches` makes of `data` (read `chunk` bytes at a time).
    fn bodies(data: &[u8], batch: usize, chunk: usize) -> Result<Vec<Body>> {
        let mut out = Vec::new();
        let reader = BufReader::with_capacity(chunk, data);
        batches("in", reader, batch, |b| {
            out.push(b);
            Ok(())
        })?;
        Ok(out)
    }

    fn cbor(v: &Value) -> Vec<u8> {
        let mut b = Vec::new();
        ciborium::into_writer(v, &mut b).unwrap();
        b
    }

    #[test]
    fn json_lines_go_a_batch_at_a_time_as_written() {
        let text = "\n{\"n\":1.50}\n\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\r\n{\"n\":5}";
        for chunk in [1, 7, 1 << 16] {
            let b = bodies(text.as_bytes(), 2, chunk).unwrap();
            let texts: Vec<String> = b
                .iter()
                .map(|(k, body)| {
                    assert_eq!(*k, "application/json");
                    String::from_utf8(body.clone()).unwrap()
                })
                .collect();
            assert_eq!(
                texts,
                [
                    "[{\"n\":1.50},{\"n\":2}]",
                    "[{\"n\":3},{\"n\":4}]",
                    "[{\"n\":5}]"
                ]
            );
        }
    }

    #[test]
    fn a_pretty_record_and_an_array_are_documents() {
        let pretty = "{\n  \"decision_id\": \"a\",\n  \"n\": 1\n}\n";
        let b = bodies(pretty.as_bytes(), 2, 3).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].1, b"[{\"decision_id\":\"a\",\"n\":1}]");
        let b = bodies(b"  [{\"n\":1},{\"n\":2},{\"n\":3}]", 2, 4).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].1, b"[{\"n\":3}]");
        assert!(bodies(b" \n\t ", 2, 1).unwrap().is_empty());
        assert!(bodies(b"[1,", 2, 1).is_err());
    }

    #[test]
    fn a_cbor_sequence_goes_item_by_item_however_it_arrives() {
        let items: Vec<Vec<u8>> = (0..5)
            .map(|i| {
                cbor(
                    &serde_json::json!({"decision_id": format!("d{i}"), "pad": "x".repeat(i * 40)}),
                )
            })
            .collect();
        let seq = items.concat();
        for chunk in [1, 5, 64, 1 << 16] {
            let b = bodies(&seq, 2, chunk).unwrap();
            assert_eq!(b.len(), 3, "chunk {chunk}");
            assert!(b.iter().all(|(k, _)| *k == "application/cbor-seq"));
            assert_eq!(b[0].1, [items[0].clone(), items[1].clone()].concat());
            assert_eq!(b[2].1, items[4]);
        }
        let cut = &seq[..seq.len() - 3];
        let e = bodies(cut, 2, 8).unwrap_err().to_string();
        assert!(e.contains("ends inside CBOR item 4"), "{e}");
        let mut bad = items[..3].concat();
        bad.push(0xff);
        let e = bodies(&bad, 2, 8).unwrap_err().to_string();
        assert!(e.contains("CBOR item 3 is malformed"), "{e}");
    }

    /// JSON lines without end.
    struct Endless(u64, Vec<u8>);

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.1.is_empty() {
                self.0 += 1;
                self.1 = format!("{{\"decision_id\":\"e{}\"}}\n", self.0).into_bytes();
            }
            let n = self.1.len().min(buf.len());
            buf[..n].copy_from_slice(&self.1[..n]);
            self.1.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn what_cannot_be_a_record_is_refused_before_it_fills_memory() {
        // A byte string declared 2^31 bytes long, then zeros without end.
        let mut head = vec![0x5a];
        head.extend_from_slice(&(1u32 << 31).to_be_bytes());
        let endless = BufReader::new(head.as_slice().chain(std::io::repeat(0)));
        let e = batches("big", endless, 10, |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("CBOR item 0 is over 1 MiB"), "{e}");
        // A JSON line without end, after a good one.
        let first = b"{\"decision_id\":\"a\"}\n{\"x\":\"".as_slice();
        let endless = BufReader::new(first.chain(std::io::repeat(b'y')));
        let e = batches("long", endless, 10, |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a line is over 1 MiB"), "{e}");
        // A JSON document without end.
        let endless = BufReader::new(b"[".as_slice().chain(std::io::repeat(b' ')));
        let e = batches("doc", endless, 10, |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("over 256 MiB"), "{e}");
    }

    #[test]
    fn records_are_sent_before_the_input_ends() {
        // An input that never ends is shipped batch by batch: the third
        // body is sent, and the sender's error stops the reading.
        let mut sent = 0;
        let r = batches(
            "endless",
            BufReader::new(Endless(0, vec![])),
            100,
            |(_, body)| {
                sent += 1;
                if sent == 3 {
                    assert!(String::from_utf8(body)
                        .unwrap()
                        .ends_with("{\"decision_id\":\"e300\"}]"));
                    bail!("enough");
                }
                Ok(())
            },
        );
        assert_eq!(r.unwrap_err().to_string(), "enough");
        assert_eq!(sent, 3);
    }
}
