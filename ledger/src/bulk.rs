//! Bulk writes for indexes built beside the log: sorted key/values written
//! as an SST file and ingested into a column family in one atomic step,
//! with no WAL and no memtable (RocksDB `IngestExternalFile`).
//!
//! The file is written at most `BACKGROUND_WRITE_RATE` bytes per second,
//! like the databases' flushes and compactions. RocksDB's `SstFileWriter`
//! is not rate-limited (the crate's C API gives it no limiter, and leaves
//! it at an I/O priority RocksDB's limiter does not charge), and it starts
//! the write-back of every MiB it writes, so a span build unpaced put ~10 MB on the disk in
//! a few tens of milliseconds. Every synced WAL write of appends queued
//! behind it: 45 KB synced writes at 3,000/s, with 10 MB written that way
//! every 0.25 s, had 23 of 24,000 syncs over 5 ms (max 8 ms); written at
//! 128 MiB/s, none (max 4 ms). With 2 M records offered at 150 k records/s
//! (three alternating runs each), the ledger's ack p99 was 10.3-13.6 ms
//! with paced builds against 15.3-24.1 ms unpaced.

use std::time::{Duration, Instant};

use std::path::{Path, PathBuf};

use rocksdb::{ColumnFamily, IngestExternalFileOptions, Options, SstFileWriter, DB};

use crate::families::{delete_files_in, index_cf_options, IndexFamily};
use crate::store::{cf, BACKGROUND_WRITE_RATE};
use crate::{LedgerError, Log};

/// Bytes written between two checks of the pace.
const PACE_STEP: u64 = 256 << 10;

/// How long a writer that has put `bytes` in `elapsed` must wait so that
/// it has written at most `rate` bytes per second (zero if it is behind).
pub(crate) fn pause_for(bytes: u64, elapsed: Duration, rate: u64) -> Duration {
    if rate == 0 {
        return Duration::ZERO;
    }
    let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
    due.saturating_sub(elapsed)
}

/// Where a sorted build writes its items ([`Log::ingest_sorted_with`]):
/// one SST file, in key order, at most `BACKGROUND_WRITE_RATE` bytes per
/// second (counted as key and value bytes: index files are not
/// compressed).
pub struct SortedSink<'a> {
    writer: SstFileWriter<'a>,
    items: usize,
    bytes: u64,
    checked: u64,
    started: Instant,
    /// Time slept to keep the pace.
    paused: Duration,
}

impl<'a> SortedSink<'a> {
    /// A sink writing through `writer` (its file open), paced from now.
    fn new(writer: SstFileWriter<'a>) -> Self {
        SortedSink {
            writer,
            items: 0,
            bytes: 0,
            checked: 0,
            started: Instant::now(),
            paused: Duration::ZERO,
        }
    }

    /// Adds one item. Keys must be strictly ascending: one out of order is
    /// an error, and nothing of the build is added. Sleeps when the build
    /// is ahead of its pace.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), LedgerError> {
        self.writer.put(key, value)?;
        self.items += 1;
        self.bytes += (key.len() + value.len()) as u64;
        if self.bytes - self.checked >= PACE_STEP {
            self.checked = self.bytes;
            let pause = pause_for(self.bytes, self.started.elapsed(), BACKGROUND_WRITE_RATE);
            if !pause.is_zero() {
                std::thread::sleep(pause);
                self.paused += pause;
            }
        }
        Ok(())
    }
}

impl Log {
    /// Adds the items that `fill` puts into a [`SortedSink`] (keys
    /// strictly ascending) to the column family `cf_name`, atomically and
    /// durably, replacing values of keys already there. Meant for index
    /// column families that are written only this way. Nothing is added if
    /// `fill` fails or any key is out of order; the items go straight to
    /// the file, so none need be held in memory.
    pub fn ingest_sorted_with(
        &self,
        cf_name: &str,
        fill: impl FnOnce(&mut SortedSink<'_>) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        self.write_sorted(cf_name, None, fill)
    }

    /// Replaces the key range `[from, to)` of the index column family
    /// `cf_name` by the items `fill` puts (keys ascending, within the
    /// range), written as a file first: then the files wholly inside the
    /// range (below level 0) are deleted, so that the bytes they held
    /// leave the disk, and the file is added with a range deletion of
    /// `[from, to)` in it, which covers whatever else the range holds and
    /// not the file's own items. If a file that holds keys in the range is
    /// left (merged with other keys, or at level 0), a synced range
    /// deletion is written first and the column family is compacted whole
    /// once the file is added ([`Log::index_delete_files`]). Not atomic: a
    /// reader in between finds the range empty, and so does one after a
    /// crash there.
    pub fn replace_sorted_range(
        &self,
        cf_name: &str,
        from: &[u8],
        to: &[u8],
        fill: impl FnOnce(&mut SortedSink<'_>) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        self.write_sorted(cf_name, Some((from, to)), fill)
    }

    fn write_sorted(
        &self,
        cf_name: &str,
        replace: Option<(&[u8], &[u8])>,
        fill: impl FnOnce(&mut SortedSink<'_>) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let db = self.index_db(cf_name)?;
        let handle = cf(&db, cf_name)?;
        let file = self.bulk_file(&self.index_path, cf_name);
        let mut left = false;
        let before = || match replace {
            Some((from, to)) => {
                left = delete_files_in(&db, handle, cf_name, from, to)
                    .map_err(|e| self.index_error(e))?;
                match left {
                    true => self.index_delete(cf_name, &[], &[(from.to_vec(), to.to_vec())]),
                    false => Ok(()),
                }
            }
            None => Ok(()),
        };
        let error = |e| self.index_error(e);
        ingest_file(&db, handle, &file, replace, fill, before, error)?;
        if left {
            self.compact_left(&db, handle, cf_name)?;
        }
        Ok(())
    }

    /// A new name for a bulk file staged in `dir` for `cf_name`.
    fn bulk_file(&self, dir: &Path, cf_name: &str) -> PathBuf {
        let seq = self
            .bulk_files
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bulk_file(dir, cf_name, seq)
    }

    /// [`Log::ingest_sorted_with`] of `items`.
    pub fn ingest_sorted<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        cf_name: &str,
        items: &[(K, V)],
    ) -> Result<(), LedgerError> {
        self.ingest_sorted_with(cf_name, |sink| {
            items
                .iter()
                .try_for_each(|(k, v)| sink.put(k.as_ref(), v.as_ref()))
        })
    }
}

/// The options an SST file for an index column family is written with
/// (what it shares with the family: the table format, no compression).
fn writer_options() -> Result<Options, LedgerError> {
    index_cf_options(IndexFamily::new(""))
}

/// The name of the `seq`th bulk file staged in `dir` for `cf_name`.
pub(crate) fn bulk_file(dir: &Path, cf_name: &str, seq: u64) -> PathBuf {
    dir.join(format!("bulk-{}-{cf_name}-{seq}.tmp", std::process::id()))
}

/// Writes the items `fill` puts to the SST file `file`, with a range
/// deletion of `deleting` if given, runs `before`, and ingests the file
/// into the column family `handle` of `db` (moved, not copied): nothing
/// is added if `fill` or `before` fails, and the file never outlives the
/// call. RocksDB's errors are told by `error`.
pub(crate) fn ingest_file(
    db: &DB,
    handle: &ColumnFamily,
    file: &Path,
    deleting: Option<(&[u8], &[u8])>,
    fill: impl FnOnce(&mut SortedSink<'_>) -> Result<(), LedgerError>,
    before: impl FnOnce() -> Result<(), LedgerError>,
    error: impl Fn(rocksdb::Error) -> LedgerError,
) -> Result<(), LedgerError> {
    let written = (|| {
        let opts = writer_options()?;
        let writer = SstFileWriter::create(&opts);
        writer.open(file)?;
        let mut sink = SortedSink::new(writer);
        if let Some((from, to)) = deleting {
            sink.writer.delete_range(from, to)?;
        }
        fill(&mut sink)?;
        before()?;
        if sink.items == 0 && deleting.is_none() {
            return Ok(());
        }
        sink.writer.finish()?;
        let mut ingest = IngestExternalFileOptions::default();
        ingest.set_move_files(true);
        db.ingest_external_file_cf_opts(handle, &ingest, vec![file])
            .map_err(error)?;
        Ok::<(), LedgerError>(())
    })();
    // Moved into the store on success; a leftover otherwise.
    let _ = std::fs::remove_file(file);
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_build_ahead_of_its_pace_waits_for_it() {
        // 64 MiB at 128 MiB/s is due at 0.5 s.
        let p = pause_for(64 * MIB, Duration::from_millis(100), 128 * MIB);
        assert_eq!(p, Duration::from_millis(400));
        assert_eq!(
            pause_for(MIB, Duration::ZERO, 128 * MIB),
            Duration::from_secs_f64(1.0 / 128.0)
        );
    }

    #[test]
    fn a_build_behind_its_pace_or_unpaced_never_waits() {
        assert_eq!(
            pause_for(64 * MIB, Duration::from_secs(1), 128 * MIB),
            Duration::ZERO
        );
        assert_eq!(
            pause_for(64 * MIB, Duration::from_millis(500), 128 * MIB),
            Duration::ZERO
        );
        assert_eq!(pause_for(u64::MAX, Duration::ZERO, 0), Duration::ZERO);
    }

    #[test]
    fn a_sink_keeps_the_background_write_rate() {
        let dir = tempfile::tempdir().unwrap();
        let opts = writer_options().unwrap();
        let writer = SstFileWriter::create(&opts);
        writer.open(dir.path().join("paced.sst")).unwrap();
        let mut sink = SortedSink::new(writer);
        // 4 MiB, far faster than 128 MiB/s: the sink must sleep most of
        // the 31 ms they are due in.
        let value = vec![7u8; 4096];
        for i in 0u32..1024 {
            sink.put(&i.to_be_bytes(), &value).unwrap();
        }
        let due = Duration::from_secs_f64(sink.bytes as f64 / BACKGROUND_WRITE_RATE as f64);
        assert!(sink.bytes >= 4 * MIB);
        assert!(sink.started.elapsed() >= due - Duration::from_millis(2));
        assert!(!sink.paused.is_zero());
    }
}
