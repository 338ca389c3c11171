//! `leaves.cbor`: a CBOR sequence (RFC 8742) with one item per leaf of the
//! range, in order. A disclosed leaf is its own bytes (a leaf is one CBOR
//! map); a withheld one is its 32-byte leaf hash as a byte string
//! (`0x58 0x20 ‖ hash`). The same items, after a header, make the stream
//! `GET /v1/export` answers.

use std::io::{BufRead, Read, Write};

use ciborium::Value;

use crate::hash::{Hash, HASH_SIZE};
use crate::tile::MAX_ENTRY_SIZE;

/// One item: a leaf, or the hash of a leaf withheld.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// The exact leaf bytes.
    Leaf(Vec<u8>),
    /// A withheld leaf's hash.
    Withheld(Hash),
}

/// Writes one item: a leaf as it is, a withheld leaf as its hash.
pub fn write_item(
    out: &mut impl Write,
    leaf: &[u8],
    withheld: Option<&Hash>,
) -> std::io::Result<()> {
    match withheld {
        None => out.write_all(leaf),
        Some(h) => {
            out.write_all(&[0x58, HASH_SIZE as u8])?;
            out.write_all(&h.0)
        }
    }
}

/// Reads items one at a time from a buffered reader.
pub struct ItemReader<B> {
    inner: B,
}

/// Copies what ciborium reads, refusing more than a leaf can hold.
struct Capture<'a, B> {
    inner: &'a mut B,
    taken: Vec<u8>,
}

impl<B: Read> Read for Capture<'_, B> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = (MAX_ENTRY_SIZE + 8).saturating_sub(self.taken.len());
        if room == 0 {
            return Err(std::io::Error::other(
                "an item is longer than a leaf may be (65,535 bytes)",
            ));
        }
        let want = buf.len().min(room);
        let n = self.inner.read(&mut buf[..want])?;
        self.taken.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl<B: BufRead> ItemReader<B> {
    /// Items from `inner`.
    pub fn new(inner: B) -> ItemReader<B> {
        ItemReader { inner }
    }

    /// The reader, at the first byte after the last item read.
    pub fn into_inner(self) -> B {
        self.inner
    }

    /// The next item; `None` at the end of the input. Input that ends
    /// inside an item is an error of kind `UnexpectedEof`.
    pub fn next_item(&mut self) -> std::io::Result<Option<Item>> {
        if self.inner.fill_buf()?.is_empty() {
            return Ok(None);
        }
        let mut cap = Capture {
            inner: &mut self.inner,
            taken: Vec::new(),
        };
        // A read that failed, or input that ends inside an item, keeps
        // its kind (a client can tell a stream cut short from bad bytes).
        let value: Value = ciborium::from_reader(&mut cap).map_err(|e| match e {
            ciborium::de::Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                std::io::Error::new(e.kind(), "the input ends inside an item")
            }
            ciborium::de::Error::Io(e) => e,
            e => std::io::Error::other(format!("not a CBOR item: {e}")),
        })?;
        let bytes = cap.taken;
        match value {
            Value::Bytes(h) if h.len() == HASH_SIZE && bytes.len() == HASH_SIZE + 2 => {
                Ok(Hash::from_slice(&h).map(Item::Withheld))
            }
            Value::Map(_) => Ok(Some(Item::Leaf(bytes))),
            _ => Err(std::io::Error::other(
                "an item is neither a leaf (a CBOR map) nor a 32-byte leaf hash",
            )),
        }
    }
}
