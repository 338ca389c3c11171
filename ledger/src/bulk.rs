//! Bulk writes for indexes built beside the log: sorted key/values written
//! as an SST file and ingested into a column family in one atomic step,
//! with no WAL and no memtable (RocksDB `IngestExternalFile`).

use rocksdb::{IngestExternalFileOptions, SstFileWriter};

use crate::store::index_cf_options;
use crate::{LedgerError, Log};

/// Where a sorted build writes its items ([`Log::ingest_sorted_with`]):
/// one SST file, in key order.
pub struct SortedSink<'a> {
    writer: SstFileWriter<'a>,
    items: usize,
}

impl SortedSink<'_> {
    /// Adds one item. Keys must be strictly ascending: one out of order is
    /// an error, and nothing of the build is added.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), LedgerError> {
        self.writer.put(key, value)?;
        self.items += 1;
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
        let (db, handle) = self.index_cf(cf_name)?;
        let seq = self
            .bulk_files
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file = self
            .index_path
            .join(format!("bulk-{}-{cf_name}-{seq}.tmp", std::process::id()));
        let written = (|| {
            let opts = index_cf_options(cf_name);
            let writer = SstFileWriter::create(&opts);
            writer.open(&file)?;
            let mut sink = SortedSink { writer, items: 0 };
            fill(&mut sink)?;
            if sink.items == 0 {
                return Ok(());
            }
            sink.writer.finish()?;
            let mut ingest = IngestExternalFileOptions::default();
            ingest.set_move_files(true);
            db.ingest_external_file_cf_opts(handle, &ingest, vec![&file])?;
            Ok::<(), LedgerError>(())
        })();
        // Moved into the store on success; a leftover otherwise.
        let _ = std::fs::remove_file(&file);
        written
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
