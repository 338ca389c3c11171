//! Files of decision records as `ledgerctl append` and `ship` take them:
//! JSON lines, one JSON record (pretty-printed or not), a JSON array, or
//! CBOR (single records or a CBOR sequence, RFC 8742); `-` is stdin.
//!
//! [`records`] reads an input as it comes: JSON lines and CBOR sequences a
//! record at a time, so `ship` ([`batches`]) sends a file of any length in
//! bounded memory; a JSON array or a pretty-printed record is one document
//! and is read whole (up to 256 MiB). A line or item too long to be a
//! record is refused as soon as it is. `append` collects every record
//! first: it appends nothing unless all of them check.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// One record of an input, as its own bytes.
pub(crate) enum Record {
    /// A JSON record: its JSON text.
    Json(String),
    /// A CBOR record: one item.
    Cbor(Vec<u8>),
}

/// The input named `name` (`-`: stdin), for reading as it comes.
pub(crate) fn open(name: &str) -> Result<Box<dyn BufRead + Send>> {
    Ok(if name == "-" {
        Box::new(BufReader::with_capacity(1 << 16, std::io::stdin()))
    } else {
        let f = std::fs::File::open(name).with_context(|| format!("reading {name}"))?;
        Box::new(BufReader::with_capacity(1 << 16, f))
    })
}

/// The longest JSON line or CBOR item read as a record: no record is
/// near it (a leaf holds at most 64 KiB), so more is not a record and is
/// refused before it fills memory.
pub(crate) const MAX_RECORD: usize = 1 << 20;

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

/// Reads the records of `input` as they come and hands each to `each`, in
/// order: JSON when the first non-space byte is `{` or `[`, otherwise CBOR.
/// Stops at the first error (of the input, or of `each`).
pub(crate) fn records(
    name: &str,
    mut input: impl BufRead,
    mut each: impl FnMut(Record) -> Result<()>,
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
        if serde_json::from_str::<Value>(line.trim()).is_ok() {
            // JSON lines: a record at a time.
            loop {
                let l = line.trim();
                if !l.is_empty() {
                    each(Record::Json(l.to_string()))?;
                }
                if read_record_line(name, &mut input, &mut line)? == 0 {
                    return Ok(());
                }
            }
        }
        // A record over several lines: one document.
        let data = read_document(name, &mut input, line.into_bytes())?;
        let one: Value = serde_json::from_slice(&data)
            .with_context(|| format!("{name}: neither a JSON record nor JSON lines"))?;
        return each(Record::Json(one.to_string()));
    }
    if first == b'[' {
        let data = read_document(name, &mut input, Vec::new())?;
        let all: Vec<Value> =
            serde_json::from_slice(&data).with_context(|| format!("{name}: not a JSON array"))?;
        return all
            .iter()
            .try_for_each(|v| each(Record::Json(v.to_string())));
    }
    // CBOR: item by item as the bytes arrive; `total` items so far.
    let (mut buf, mut at, mut total) = (Vec::<u8>::new(), 0usize, 0usize);
    loop {
        match verifier::cbor::decode_prefix(&buf[at..]) {
            Ok(verifier::cbor::Prefix::Item(_, n)) => {
                each(Record::Cbor(buf[at..at + n].to_vec()))?;
                at += n;
                total += 1;
                continue;
            }
            Ok(verifier::cbor::Prefix::Incomplete) => {}
            Err(e) => bail!("{name}: CBOR item {total} is malformed: {e}"),
        }
        // More bytes: drop what is read, then read.
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
            return Ok(());
        }
        let n = more.len();
        buf.extend_from_slice(more);
        input.consume(n);
    }
}

/// A request body of records: its content type and bytes.
pub(crate) type Body = (&'static str, Vec<u8>);

/// Records being gathered into one body (one input's records are all JSON
/// or all CBOR).
#[derive(Default)]
pub(crate) struct Gathered {
    json: Vec<String>,
    cbor: Vec<u8>,
    /// Records gathered.
    pub(crate) count: usize,
}

impl Gathered {
    pub(crate) fn push(&mut self, r: Record) {
        match r {
            Record::Json(text) => self.json.push(text),
            Record::Cbor(item) => self.cbor.extend_from_slice(&item),
        }
        self.count += 1;
    }

    /// The body of what is gathered (`[r1,r2,…]`, or the CBOR sequence),
    /// leaving nothing gathered.
    pub(crate) fn take(&mut self) -> Body {
        self.count = 0;
        if self.json.is_empty() {
            ("application/cbor-seq", std::mem::take(&mut self.cbor))
        } else {
            let body = format!("[{}]", self.json.join(",")).into_bytes();
            self.json.clear();
            ("application/json", body)
        }
    }
}

/// How long a batch that is not full waits for more records before it is
/// sent anyway: an input fed slowly (`tail -F decisions.jsonl | ledgerctl
/// ship -`) has its records logged within this of being written, not when
/// a batch fills.
pub(crate) const LINGER: Duration = Duration::from_millis(200);

/// The records of `input` ([`records`]), each as `each` makes it from the
/// record and its position in the input (`ship --signing-key` signs them),
/// handed to `send` in bodies of at most `batch` records, in order, each
/// as soon as it is full or no record came for [`LINGER`]. The input is
/// read on a thread of its own, so that a wait for input never holds
/// records read before it; an error of the input ends the shipping after
/// the records before it are sent.
pub(crate) fn batches(
    name: &str,
    input: impl BufRead + Send + 'static,
    batch: usize,
    mut each: impl FnMut(Record, u64) -> Result<Record>,
    mut send: impl FnMut(Body) -> Result<()>,
) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Record>(batch.max(1));
    let owned = name.to_string();
    // Not joined on an error of `send`: it may be waiting for input that
    // never comes; it ends when the process does.
    let reader = std::thread::spawn(move || {
        records(&owned, input, |r| {
            tx.send(r).map_err(|_| anyhow::anyhow!("shipping stopped"))
        })
    });
    let mut gathered = Gathered::default();
    let mut position = 0u64;
    loop {
        match rx.recv_timeout(LINGER) {
            Ok(r) => {
                gathered.push(each(r, position)?);
                position += 1;
                if gathered.count == batch {
                    send(gathered.take())?;
                }
            }
            Err(RecvTimeoutError::Timeout) if gathered.count > 0 => send(gathered.take())?,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if gathered.count > 0 {
        send(gathered.take())?;
    }
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("reading {name} failed"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bodies `batches` makes of `data` (read `chunk` bytes at a time).
    fn bodies(data: &[u8], batch: usize, chunk: usize) -> Result<Vec<Body>> {
        let mut out = Vec::new();
        let reader = BufReader::with_capacity(chunk, std::io::Cursor::new(data.to_vec()));
        batches(
            "in",
            reader,
            batch,
            |r, _| Ok(r),
            |b| {
                out.push(b);
                Ok(())
            },
        )?;
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
        let endless = BufReader::new(std::io::Cursor::new(head).chain(std::io::repeat(0)));
        let e = batches("big", endless, 10, |r, _| Ok(r), |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("CBOR item 0 is over 1 MiB"), "{e}");
        // A JSON line without end, after a good one.
        let first = b"{\"decision_id\":\"a\"}\n{\"x\":\"".as_slice();
        let endless = BufReader::new(first.chain(std::io::repeat(b'y')));
        let e = batches("long", endless, 10, |r, _| Ok(r), |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a line is over 1 MiB"), "{e}");
        // A JSON document without end.
        let endless = BufReader::new(b"[".as_slice().chain(std::io::repeat(b' ')));
        let e = batches("doc", endless, 10, |r, _| Ok(r), |_| Ok(()))
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
            |r, _| Ok(r),
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

    /// `tail -F decisions.jsonl | ledgerctl ship -`: records come slowly
    /// and the input stays open; each is sent once no other came for
    /// [`LINGER`], not held until a batch fills.
    #[test]
    fn a_slow_input_is_sent_without_waiting_for_a_full_batch() {
        use std::io::Write;
        let (reader, mut writer) = std::io::pipe().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let shipper = std::thread::spawn(move || {
            batches(
                "pipe",
                BufReader::new(reader),
                500,
                |r, _| Ok(r),
                |(_, body)| {
                    tx.send(String::from_utf8(body).unwrap()).unwrap();
                    Ok(())
                },
            )
        });
        writer
            .write_all(b"{\"decision_id\":\"s1\"}\n{\"decision_id\":\"s2\"}\n")
            .unwrap();
        let wait = Duration::from_secs(5);
        let first = rx.recv_timeout(wait).expect("sent while the input is open");
        assert_eq!(first, r#"[{"decision_id":"s1"},{"decision_id":"s2"}]"#);
        writer.write_all(b"{\"decision_id\":\"s3\"}\n").unwrap();
        drop(writer);
        assert_eq!(rx.recv_timeout(wait).unwrap(), r#"[{"decision_id":"s3"}]"#);
        shipper.join().unwrap().unwrap();
    }
}
