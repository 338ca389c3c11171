//! Scrubbing: every block of the store read back with its checksum
//! checked, so that damage the disk did is found before a request or an
//! audit meets it ([`Log::scrub`]).
//!
//! RocksDB checks a block's checksum when it reads the block, so damage in
//! a block no request reads stays unseen: a decision looked up once a year,
//! an index span nobody searches. A scrub reads every key and value of the
//! log's databases (entries and hash tiles, signed checkpoints) and of the
//! index database, a run of keys at a time (so that no iterator holds old
//! files for long, and a rebuilt index database can be put in place
//! between two runs), without filling the block cache. Damage in the
//! indexes marks them, as any read does (`damage.rs`), and a running
//! ledgerd rebuilds them; damage in the log is an error naming its remedy.

use std::time::Instant;

use rocksdb::{ColumnFamily, ReadOptions, DB};

use crate::bulk::pause_for;
use crate::store::cf;
use crate::{LedgerError, Log};

/// Bytes a run of a scrub reads by default ([`Log::scrub`]): each new
/// run's iterator reads index blocks and read-ahead again (the block
/// cache is not filled), so short runs read far more than they scrub; a
/// run of this size holds the index database for a fraction of a second.
pub const SCRUB_RUN: u64 = 32 << 20;

/// What a scrub read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scrubbed {
    /// Keys read.
    pub keys: u64,
    /// Bytes of keys and values read.
    pub bytes: u64,
    /// Whether every database was read to its end (not stopped by the
    /// pace).
    pub complete: bool,
}

impl Log {
    /// Reads every key and value of the log's databases and of the index
    /// database with RocksDB checking each block's checksum, a run of
    /// about `run` bytes at a time ([`SCRUB_RUN`]), without filling the
    /// block cache, at most `rate` bytes a second (0: as fast as it can;
    /// between runs, the databases let go). `go_on` is given the bytes
    /// read so far after each run, and returns `false` to stop the scrub
    /// there. Damage found is
    /// [`LedgerError::Damaged`] naming the store; found in the indexes,
    /// it also marks them damaged, as any read does.
    pub fn scrub(
        &self,
        run: u64,
        rate: u64,
        mut go_on: impl FnMut(u64) -> bool,
    ) -> Result<Scrubbed, LedgerError> {
        let mut done = Scrubbed::default();
        let started = Instant::now();
        let mut pace = |read: u64| {
            std::thread::sleep(pause_for(read, started.elapsed(), rate));
            go_on(read)
        };
        for db in [&self.db, &self.checkpoints] {
            let read = read_all(&mut done, &mut pace, |from, done| {
                read_run(db, None, from, run, done).map_err(LedgerError::from)
            })?;
            if !read {
                return Ok(done);
            }
        }
        for name in self.index_cfs.iter().map(|f| f.name) {
            let read = read_all(&mut done, &mut pace, |from, done| {
                // Held for one run: a rebuilt database may take its place
                // between two.
                let db = self.index_db(name)?;
                read_run(&db, Some(cf(&db, name)?), from, run, done)
                    .map_err(|e| self.index_error(e))
            })?;
            if !read {
                return Ok(done);
            }
        }
        done.complete = true;
        Ok(done)
    }
}

/// Reads a database (or column family) run by run with `run`, from its
/// first key, giving `pace` the bytes read so far after each; `false` if
/// it stopped it.
fn read_all(
    done: &mut Scrubbed,
    pace: &mut impl FnMut(u64) -> bool,
    mut run: impl FnMut(Option<&[u8]>, &mut Scrubbed) -> Result<Option<Vec<u8>>, LedgerError>,
) -> Result<bool, LedgerError> {
    let mut from: Option<Vec<u8>> = None;
    loop {
        let next = run(from.as_deref(), done)?;
        if !pace(done.bytes) {
            return Ok(false);
        }
        match next {
            Some(key) => from = Some(key),
            None => return Ok(true),
        }
    }
}

/// Reads the keys of `db` (its column family `cf`, or its default one)
/// after `from` (from the first if `None`), about `run` bytes of them:
/// the last key read if there are more, `None` at the end.
fn read_run(
    db: &DB,
    cf: Option<&ColumnFamily>,
    from: Option<&[u8]>,
    run: u64,
    done: &mut Scrubbed,
) -> Result<Option<Vec<u8>>, rocksdb::Error> {
    let mut opts = ReadOptions::default();
    opts.set_verify_checksums(true);
    opts.fill_cache(false);
    opts.set_readahead_size(2 << 20);
    let mut iter = match cf {
        Some(cf) => db.raw_iterator_cf_opt(cf, opts),
        None => db.raw_iterator_opt(opts),
    };
    match from {
        Some(key) => {
            iter.seek(key);
            // The last key of the run before: read already.
            if iter.key() == Some(key) {
                iter.next();
            }
        }
        None => iter.seek_to_first(),
    }
    let mut read = 0u64;
    while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
        let n = (key.len() + value.len()) as u64;
        done.keys += 1;
        done.bytes += n;
        read += n;
        if read >= run {
            let last = key.to_vec();
            iter.status()?;
            return Ok(Some(last));
        }
        iter.next();
    }
    iter.status()?;
    Ok(None)
}
