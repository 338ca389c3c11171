//! Bulk writes for indexes built beside the log: sorted key/values written
//! as an SST file and ingested into a column family in one atomic step,
//! with no WAL and no memtable (RocksDB `IngestExternalFile`).

use rocksdb::{IngestExternalFileOptions, SstFileWriter};

use crate::store::index_cf_options;
use crate::{LedgerError, Log};

impl Log {
    /// Adds `items` (keys strictly ascending) to the column family
    /// `cf_name`, atomically and durably, replacing values of keys already
    /// there. Meant for index column families that are written only this
    /// way. Nothing is added if any key is out of order.
    pub fn ingest_sorted<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        cf_name: &str,
        items: &[(K, V)],
    ) -> Result<(), LedgerError> {
        if items.is_empty() {
            return Ok(());
        }
        let (db, handle) = self.index_cf(cf_name)?;
        let seq = self
            .bulk_files
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file = self
            .index_path
            .join(format!("bulk-{}-{cf_name}-{seq}.tmp", std::process::id()));
        let written = (|| {
            let opts = index_cf_options(cf_name);
            let mut writer = SstFileWriter::create(&opts);
            writer.open(&file)?;
            for (k, v) in items {
                writer.put(k, v)?;
            }
            writer.finish()?;
            let mut ingest = IngestExternalFileOptions::default();
            ingest.set_move_files(true);
            db.ingest_external_file_cf_opts(handle, &ingest, vec![&file])
        })();
        // Moved into the store on success; a leftover on failure.
        let _ = std::fs::remove_file(&file);
        Ok(written?)
    }
}
