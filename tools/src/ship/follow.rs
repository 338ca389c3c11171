//! `ledgerctl ship --follow FILE`: ships a file of JSON lines that an
//! enforcer keeps appending to, as it grows, through its rotations, and
//! across restarts of ledgerd and of the shipper, losing nothing.
//!
//! When it starts, and after each batch the server answered for (every
//! record appended, a duplicate, or refused for good), the byte offset
//! after its last line is kept in a state file (written beside, synced,
//! renamed), with the file's device and inode. A shipper started again resumes there; a batch sent
//! again after a stop is answered as duplicates, as `decision_id` makes
//! every retry. The file renamed away while the shipper was stopped is
//! looked for by its inode in the same directory and finished first; the
//! files more rotations left meanwhile are shipped after it
//! ([`super::rotated`]).
//!
//! A rotation while it runs (the file renamed and a new one made, or the
//! file cut to zero in place) is seen when the file at the path is another
//! one, shorter than what was read, or no longer starts with the bytes it
//! started with (cut and written past the offset again between two looks,
//! or while the shipper was stopped: the state keeps a digest of the
//! file's first bytes): what the old file still held is shipped, then the
//! new file from its start. ledgerd out of reach, busy
//! or with a full disk is asked again for as long as it takes. A line
//! that is not JSON, or longer than a record can be, is reported on stderr
//! and passed over.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use verifier::SignerKey;

use super::rotated::{self, by_inode, dir_of};
use super::{send, Totals, BATCH};
use crate::input::{Gathered, Record, LINGER, MAX_RECORD};
use crate::remote::Remote;

/// How often a file that has not grown is looked at again, and how often
/// one that grows is checked for a rotation or a cut.
const POLL: Duration = Duration::from_millis(200);

/// Bytes at a file's start kept to tell a file cut and written again in
/// place (`copytruncate`) from one that only grew: JSON lines of decision
/// records differ within their first line.
const HEAD: usize = 256;

/// Where shipping stopped, as the state file keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The followed file's path, as given.
    pub file: PathBuf,
    /// The device of the file the offset is in.
    pub dev: u64,
    /// Its inode: found again by it after a rotation.
    pub inode: u64,
    /// The bytes before it are shipped: every line that ends there.
    pub offset: u64,
    /// How many of the file's first bytes [`Position::head_sha256`]
    /// covers (0 in a state written before it was kept: not compared).
    #[serde(default)]
    pub head_len: u64,
    /// SHA-256 (hex) of the file's first `head_len` bytes: a file at the
    /// same inode that no longer starts with them was cut and written
    /// again while the shipper was stopped.
    #[serde(default)]
    pub head_sha256: String,
}

/// The state file for `file` when none is given: `<file>.shipped`.
pub fn default_state(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".shipped");
    PathBuf::from(name)
}

fn read_state(state: &Path) -> Result<Option<Position>> {
    match std::fs::read(state) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is not a ship state file", state.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", state.display())),
    }
}

fn write_state(state: &Path, at: &Position) -> Result<()> {
    let dir = dir_of(state);
    let name = state
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} is not a file name", state.display()))?;
    let text = serde_json::to_vec(at)?;
    ledger::stamp::replace(&dir, name, &text, None)
        .map_err(|(p, e)| anyhow::anyhow!("writing {}: {e}", p.display()))
}

/// One followed file: open, read up to `offset`, lines gathered.
struct Followed {
    file: File,
    dev: u64,
    inode: u64,
    /// Bytes read (and split into lines, or held in `partial`).
    read: u64,
    /// Where the line read in part (or passed over) began.
    line_start: u64,
    /// A line read in part: it is shipped once it ends.
    partial: Vec<u8>,
    /// Passing over a line longer than a record can be, to its end.
    skipping: bool,
    /// The file's first bytes (up to [`HEAD`]), as last read.
    head: Vec<u8>,
}

impl Followed {
    fn open(path: &Path, offset: u64) -> Result<Followed> {
        let mut file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
        let meta = file.metadata()?;
        let offset = if meta.len() < offset { 0 } else { offset };
        file.seek(SeekFrom::Start(offset))?;
        let head = read_head(&file, HEAD)?;
        Ok(Followed {
            file,
            dev: meta.dev(),
            inode: meta.ino(),
            read: offset,
            line_start: offset,
            partial: Vec::new(),
            skipping: false,
            head,
        })
    }

    /// Whether the file no longer starts with the bytes it started with
    /// (cut and written again in place); keeps more of its start while it
    /// is shorter than [`HEAD`].
    fn rewritten(&mut self) -> Result<bool> {
        let now = read_head(&self.file, HEAD)?;
        let common = now.len().min(self.head.len());
        if now[..common] != self.head[..common] {
            return Ok(true);
        }
        if now.len() > self.head.len() {
            self.head = now;
        }
        Ok(false)
    }

    /// The offset every line handed out so far ends at.
    fn shipped_to(&self) -> u64 {
        self.line_start
    }

    /// Reads the next part of the file (up to 64 KiB, so that memory stays
    /// flat however much is waiting); each whole line goes to `line` with
    /// the offset after it. Returns whether anything was read.
    fn read_lines(&mut self, mut line: impl FnMut(Option<&[u8]>, u64)) -> Result<bool> {
        let mut buf = vec![0; 1 << 16];
        let n = self.file.read(&mut buf)?;
        let mut rest = &buf[..n];
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.read += end as u64 + 1;
            self.line_start = self.read;
            if std::mem::take(&mut self.skipping) {
                line(None, self.read);
            } else {
                self.partial.extend_from_slice(&rest[..end]);
                line(Some(&self.partial), self.read);
                self.partial.clear();
            }
            rest = &rest[end + 1..];
        }
        self.read += rest.len() as u64;
        if !self.skipping {
            self.partial.extend_from_slice(rest);
            if self.partial.len() > MAX_RECORD {
                self.partial.clear();
                self.skipping = true;
            }
        }
        Ok(n > 0)
    }
}

/// Ships `path` as it grows (see the module's documentation), keeping its
/// position in `state`; `signer` signs each record on the way. Runs until
/// it fails (a record the server cannot take is not a failure).
pub fn run(remote: &Remote, path: &Path, state: &Path, signer: Option<&SignerKey>) -> Result<()> {
    let _lock = lock(state)?;
    let dir = dir_of(path);
    let mut shipper = Shipper {
        remote,
        state,
        signer,
        totals: Totals::default(),
        gathered: Gathered::default(),
        lines: 0,
        first_at: None,
        position: None,
    };
    // Where the last run stopped: the file, or what it was renamed to.
    let mut current = match read_state(state)? {
        Some(at) if at.file == path => {
            let kept = std::fs::metadata(state)
                .and_then(|m| m.modified())
                .with_context(|| format!("reading {}", state.display()))?;
            match by_inode(&dir, at.dev, at.inode) {
                Some(old) if old != path => {
                    eprintln!(
                        "ship: {} was rotated while stopped: finishing {} from byte {}",
                        path.display(),
                        old.display(),
                        at.offset
                    );
                    let mut f = Followed::open(&old, at.offset)?;
                    let written = f.file.metadata()?.modified()?;
                    shipper.drain(&mut f, path)?;
                    shipper.ship_left(path, at.inode, written)?;
                    wait_for(path)?
                }
                Some(_) if !same_start(path, &at)? => {
                    eprintln!(
                        "ship: {} was cut and written again while stopped: reading it from its start",
                        path.display()
                    );
                    // A copy made before the cut (copytruncate) holds
                    // the lines written since the state was kept.
                    shipper.ship_left(path, at.inode, kept)?;
                    Followed::open(path, 0)?
                }
                Some(_) => Followed::open(path, at.offset)?,
                None => {
                    eprintln!(
                        "ship: {} was rotated while stopped, and the file shipped last (inode {}) is gone (removed, or compressed): any lines written to it after byte {} were not shipped",
                        path.display(),
                        at.inode,
                        at.offset
                    );
                    shipper.ship_left(path, at.inode, kept)?;
                    wait_for(path)?
                }
            }
        }
        Some(at) => bail!(
            "{} is the state of shipping {}, not {}",
            state.display(),
            at.file.display(),
            path.display()
        ),
        None => wait_for(path)?,
    };
    // Kept at once, before anything is read: a shipper stopped before its
    // first batch, the file rotated meanwhile, finds that file again.
    let at = position(path, &current);
    write_state(state, &at)?;
    shipper.position = Some(at);
    eprintln!(
        "ship: following {} from byte {} (state in {})",
        path.display(),
        current.read,
        state.display()
    );
    let mut looked = Instant::now();
    loop {
        let grew = shipper.take(&mut current, path)?;
        if shipper.due() {
            shipper.flush()?;
        }
        if grew && looked.elapsed() < POLL {
            continue;
        }
        looked = Instant::now();
        // Was the file cut, or (when nothing new came) rotated?
        match std::fs::metadata(path) {
            Ok(m) if m.dev() == current.dev && m.ino() == current.inode => {
                let cut = m.len() < current.read;
                if cut || current.rewritten()? {
                    let how = if cut {
                        "cut short"
                    } else {
                        "cut and written again"
                    };
                    eprintln!(
                        "ship: {} was {how}: reading it from its start",
                        path.display()
                    );
                    shipper.flush()?;
                    current = Followed::open(path, 0)?;
                    shipper.position = Some(position(path, &current));
                    continue;
                }
            }
            Ok(_) if grew => {}
            Ok(_) => {
                // Another file at the path: what the old one still holds,
                // then the new one.
                shipper.drain(&mut current, path)?;
                eprintln!(
                    "ship: {} was rotated: following the new file",
                    path.display()
                );
                current = Followed::open(path, 0)?;
                shipper.position = Some(position(path, &current));
                continue;
            }
            Err(_) => {}
        }
        if !grew {
            std::thread::sleep(POLL);
        }
    }
}

/// Takes the lock beside the state file (`<state>.lock`): one shipper a
/// state, a second refused at once. Held until the file closes.
fn lock(state: &Path) -> Result<File> {
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    crate::lock::exclusive(&path, || {
        format!(
            "another ledgerctl ship --follow is shipping with {} (its lock {} is held)",
            state.display(),
            path.display()
        )
    })
}

/// The first `n` bytes of `file` (fewer if it is shorter), read in place.
fn read_head(file: &File, n: usize) -> Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut head = vec![0; n];
    let mut got = 0;
    while got < n {
        match file.read_at(&mut head[got..], got as u64)? {
            0 => break,
            k => got += k,
        }
    }
    head.truncate(got);
    Ok(head)
}

/// Whether the file at `path` still starts with the bytes `at` has the
/// digest of (true when `at` has none).
fn same_start(path: &Path, at: &Position) -> Result<bool> {
    if at.head_len == 0 {
        return Ok(true);
    }
    let file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let head = read_head(&file, at.head_len as usize)?;
    Ok(head.len() as u64 == at.head_len && head_digest(&head) == at.head_sha256)
}

fn head_digest(head: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(head))
}

/// `path` opened at its start once it exists.
fn wait_for(path: &Path) -> Result<Followed> {
    let mut said = false;
    loop {
        match Followed::open(path, 0) {
            Ok(f) => return Ok(f),
            Err(_)
                if path
                    .parent()
                    .is_some_and(|d| d.as_os_str().is_empty() || d.is_dir()) =>
            {
                if !std::mem::replace(&mut said, true) {
                    eprintln!("ship: waiting for {} to exist", path.display());
                }
                std::thread::sleep(POLL);
            }
            Err(e) => return Err(e),
        }
    }
}

fn position(path: &Path, f: &Followed) -> Position {
    Position {
        file: path.to_path_buf(),
        dev: f.dev,
        inode: f.inode,
        offset: f.shipped_to(),
        head_len: f.head.len() as u64,
        head_sha256: head_digest(&f.head),
    }
}

/// Lines gathered into batches, sent, and the position kept after each.
struct Shipper<'a> {
    remote: &'a Remote,
    state: &'a Path,
    signer: Option<&'a SignerKey>,
    totals: Totals,
    gathered: Gathered,
    /// Lines read in all (a record's position, for messages).
    lines: u64,
    /// When the first record of the batch being gathered was read.
    first_at: Option<Instant>,
    /// Where the state file will say shipping stopped, once the batch
    /// gathered is answered for.
    position: Option<Position>,
}

impl Shipper<'_> {
    /// Reads the next part of `f` into batches, sending each as it fills;
    /// whether anything was read.
    fn take(&mut self, f: &mut Followed, path: &Path) -> Result<bool> {
        let mut lines = Vec::new();
        let grew = f.read_lines(|line, end| lines.push((line.map(<[u8]>::to_vec), end)))?;
        for (line, end) in lines {
            self.lines += 1;
            if let Some(record) = self.record(line) {
                self.gathered.push(record);
                self.first_at.get_or_insert_with(Instant::now);
            }
            self.position
                .get_or_insert_with(|| position(path, f))
                .offset = end;
            if self.gathered.count == BATCH {
                self.flush()?;
            }
        }
        Ok(grew)
    }

    /// A line as the record to send, or `None` (reported) if it is none.
    fn record(&mut self, line: Option<Vec<u8>>) -> Option<Record> {
        let n = self.lines;
        let Some(line) = line else {
            eprintln!(
                "ship: line {n} is over {} MiB: not a record; passed over",
                MAX_RECORD >> 20
            );
            self.totals.rejected += 1;
            return None;
        };
        let text = match String::from_utf8(line) {
            Ok(t) if t.trim().is_empty() => return None,
            Ok(t) if serde_json::from_str::<serde::de::IgnoredAny>(&t).is_ok() => t,
            _ => {
                eprintln!("ship: line {n} is not a JSON record; passed over");
                self.totals.rejected += 1;
                return None;
            }
        };
        let record = Record::Json(text.trim().to_string());
        match self.signer {
            None => Some(record),
            Some(signer) => match crate::enforcer::sign_record(signer, &record, n) {
                Ok(signed) => Some(Record::Cbor(signed)),
                Err(e) => {
                    eprintln!("ship: line {n} not signed, passed over: {e:#}");
                    self.totals.rejected += 1;
                    None
                }
            },
        }
    }

    /// Whether the batch gathered has waited long enough.
    fn due(&self) -> bool {
        self.first_at.is_some_and(|t| t.elapsed() >= LINGER)
    }

    /// Sends what is gathered (asking again for as long as it takes), then
    /// keeps the position after it.
    fn flush(&mut self) -> Result<()> {
        if self.gathered.count > 0 {
            let (kind, body) = self.gathered.take();
            send(self.remote, kind, &body, &mut self.totals, None)?;
            self.first_at = None;
        }
        if let Some(p) = &self.position {
            write_state(self.state, p)?;
        }
        Ok(())
    }

    /// Ships, whole, the files other rotations of `path` left beside it
    /// while the shipper was stopped: written after `since`, other than the
    /// one of inode `shipping` ([`rotated::written_since`]).
    fn ship_left(&mut self, path: &Path, shipping: u64, since: SystemTime) -> Result<()> {
        let left = rotated::written_since(path, self.state, shipping, since);
        for file in &left.compressed {
            eprintln!(
                "ship: {} was rotated from {} while stopped and is compressed: not read (ship what it holds with `ledgerctl ship` once uncompressed)",
                file.display(),
                path.display()
            );
        }
        for file in &left.to_ship {
            eprintln!(
                "ship: {} was rotated from {} while stopped: shipping it whole (lines shipped before are answered as duplicates)",
                file.display(),
                path.display()
            );
            let mut f = Followed::open(file, 0)?;
            self.position = Some(position(path, &f));
            self.drain(&mut f, path)?;
        }
        Ok(())
    }

    /// Ships the rest of `f`, a file that was followed at `path` and
    /// rotated: every line it holds, and an unended last line too.
    fn drain(&mut self, f: &mut Followed, path: &Path) -> Result<()> {
        while self.take(f, path)? {}
        if !f.partial.is_empty() {
            let line = std::mem::take(&mut f.partial);
            self.lines += 1;
            if let Some(r) = self.record(Some(line)) {
                self.gathered.push(r);
            }
            if let Some(p) = &mut self.position {
                p.offset = f.read;
            }
        }
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// What `read_lines` hands out of `f`: each line (`None`: too long)
    /// and the offset after it.
    fn lines(f: &mut Followed) -> Vec<(Option<String>, u64)> {
        let mut out = Vec::new();
        while f
            .read_lines(|l, end| {
                out.push((l.map(|l| String::from_utf8_lossy(l).into_owned()), end))
            })
            .unwrap()
        {}
        out
    }

    #[test]
    fn lines_are_handed_out_once_they_end_and_too_long_ones_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        let mut w = File::create(&path).unwrap();
        w.write_all(b"{\"a\":1}\n{\"b\":").unwrap();
        let mut f = Followed::open(&path, 0).unwrap();
        assert_eq!(lines(&mut f), vec![(Some("{\"a\":1}".into()), 8)]);
        assert_eq!((f.read, f.shipped_to()), (13, 8));
        // The rest of the line, and one too long to be a record.
        w.write_all(b"2}\n").unwrap();
        w.write_all(&vec![b'x'; MAX_RECORD + 10]).unwrap();
        assert_eq!(lines(&mut f), vec![(Some("{\"b\":2}".into()), 16)]);
        assert_eq!(f.shipped_to(), 16);
        w.write_all(b"\n{}\n").unwrap();
        let end = 16 + MAX_RECORD as u64 + 11;
        assert_eq!(
            lines(&mut f),
            vec![(None, end), (Some("{}".into()), end + 3)]
        );
        // Opened again at an offset: from there; past the end: from 0.
        let mut again = Followed::open(&path, 8).unwrap();
        assert_eq!(lines(&mut again)[0], (Some("{\"b\":2}".into()), 16));
        let again = Followed::open(&path, end + 100).unwrap();
        assert_eq!(again.read, 0);
    }

    #[test]
    fn a_file_cut_and_written_again_in_place_is_told_from_one_that_grew() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        std::fs::write(&path, b"{\"decision_id\":\"a\"}\n").unwrap();
        let mut f = Followed::open(&path, 0).unwrap();
        let at = position(&path, &f);
        assert!(same_start(&path, &at).unwrap());
        // Grown: the same start, and more of it kept.
        let mut w = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        w.write_all(b"{\"decision_id\":\"b\"}\n").unwrap();
        assert!(!f.rewritten().unwrap());
        assert_eq!(f.head.len(), 40);
        assert!(same_start(&path, &at).unwrap());
        // Cut and written past where it was, at the same inode.
        let inode = std::fs::metadata(&path).unwrap().ino();
        std::fs::write(
            &path,
            b"{\"decision_id\":\"c\"}\n{\"decision_id\":\"d\"}\n{}\n",
        )
        .unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
        assert!(f.rewritten().unwrap());
        assert!(!same_start(&path, &at).unwrap());
        // A state without a head compares nothing.
        let old = Position {
            head_len: 0,
            head_sha256: String::new(),
            ..at
        };
        assert!(same_start(&path, &old).unwrap());
    }

    #[test]
    fn the_state_file_round_trips_and_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("d.jsonl.shipped");
        assert_eq!(read_state(&state).unwrap(), None);
        let at = Position {
            file: dir.path().join("d.jsonl"),
            dev: 1,
            inode: 2,
            offset: 3,
            head_len: 4,
            head_sha256: head_digest(b"{\"de"),
        };
        write_state(&state, &at).unwrap();
        assert_eq!(read_state(&state).unwrap(), Some(at.clone()));
        // A state written before the head was kept still reads: no head.
        std::fs::write(
            &state,
            br#"{"file":"d.jsonl","dev":1,"inode":2,"offset":3}"#,
        )
        .unwrap();
        let old = read_state(&state).unwrap().unwrap();
        assert_eq!((old.offset, old.head_len), (3, 0));
        std::fs::write(&state, b"{").unwrap();
        assert!(read_state(&state)
            .unwrap_err()
            .to_string()
            .contains("not a ship state file"));
        assert_eq!(
            default_state(Path::new("/var/log/d.jsonl")),
            Path::new("/var/log/d.jsonl.shipped")
        );
        let _held = lock(&state).unwrap();
        assert!(lock(&state)
            .unwrap_err()
            .to_string()
            .contains("another ledgerctl ship --follow"));
    }
}
