//! The column families of the index database beside the log
//! ([`IndexFamily`]): their RocksDB options, and taking a deleted key range
//! out of their files.
//!
//! Index column families use universal compaction ([`index_cf_options`]).
//! A family whose keys are grouped by a fixed-length prefix (ingest's
//! postings, by span) also has RocksDB's fixed-prefix SST partitioner: every
//! compaction, RocksDB's periodic one included, ends its output files where
//! the prefix changes, so a group's keys lie in files of their own for
//! good and a removed group's files can be deleted whole. Without it,
//! RocksDB's periodic compaction (every 30 days, [`PERIODIC_COMPACTION`])
//! merged the groups' files into 64 MB files each spanning many groups.

use std::path::Path;

use rocksdb::{ColumnFamilyDescriptor, Options, DB};

use crate::error::in_indexes;
use crate::store::{db_options, drop_retired, other_cfs, table_options_on, INDEX_FILTER_BITS};
use crate::{LedgerError, Log};

/// A column family of the index database ([`Log::open_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexFamily {
    /// Its RocksDB name.
    pub name: &'static str,
    /// `Some(n)`: its keys are grouped by their first `n` bytes, each
    /// group written by [`Log::ingest_sorted_with`] or
    /// [`Log::replace_sorted_range`], and no compaction ever puts keys of
    /// two groups into one file.
    pub grouped_by: Option<usize>,
}

impl IndexFamily {
    /// A family whose keys are not grouped (spread over the key space).
    pub const fn new(name: &'static str) -> Self {
        IndexFamily {
            name,
            grouped_by: None,
        }
    }

    /// A family whose keys are grouped by their first `prefix` bytes.
    pub const fn grouped(name: &'static str, prefix: usize) -> Self {
        IndexFamily {
            name,
            grouped_by: Some(prefix),
        }
    }
}

/// How often RocksDB compacts each index column family whole at least (30
/// days, its own default under universal compaction, set here so that it
/// does not change under us): the keys deleted from the `decisions` index,
/// spread over its whole key range, leave the files then
/// (docs/design/retention.md).
pub(crate) const PERIODIC_COMPACTION: u64 = 30 * 24 * 3600;

/// Levels of an index column family (RocksDB's default, set so that
/// [`crate::Log::index_sorted_runs`] reads them all).
pub(crate) const INDEX_LEVELS: u8 = 7;

/// Sorted runs (ingested spans' files, and merged runs) the index
/// database lets pile up before it merges them; RocksDB's write slowdown
/// starts at 20.
const INDEX_RUNS_BEFORE_MERGE: i32 = 8;

/// Options of an index column family: universal compaction. A column
/// family whose spans' files each cover the whole key range (ingest's
/// `decisions`: `decision_id`s are spread evenly) has them merged by
/// compactions; one whose files lie beside each other (ingest's postings,
/// keyed by span first) has them added to the last level, and compactions
/// keep each group in files of its own (the SST partitioner). For the first
/// kind, under leveled compaction each level-0 compaction merged with the
/// whole level below, which with RocksDB's 256 MB level base was the whole
/// index until it reached millions of records: 1.5-3.3 s of CPU per
/// compaction at 1.5-3 M records, once every four spans. Universal
/// compaction merges sorted runs of similar size, so a record is rewritten
/// about log2(runs) times: over a 3 M-record bench the index compactions
/// took 11.7 s of CPU, against 21.2 s leveled (16.0 s with a 32 MB level
/// base). Letting eight spans' files pile up before they are merged (not
/// RocksDB's four) took that to 7.3 s. Lookups check each run's filter;
/// there are about a dozen at most.
pub(crate) fn index_cf_options(family: IndexFamily) -> Result<Options, LedgerError> {
    let mut opts = match family.grouped_by {
        // The C API sets the partitioner from an options string only.
        Some(n) => Options::default().get_options_from_string(format!(
            "sst_partitioner_factory={{id=SstPartitionerFixedPrefixFactory;length={n}}}"
        ))?,
        None => Options::default(),
    };
    table_options_on(&mut opts, INDEX_FILTER_BITS);
    opts.set_compaction_style(rocksdb::DBCompactionStyle::Universal);
    opts.set_level_zero_file_num_compaction_trigger(INDEX_RUNS_BEFORE_MERGE);
    opts.set_num_levels(i32::from(INDEX_LEVELS));
    opts.set_periodic_compaction_seconds(PERIODIC_COMPACTION);
    // Index files are not compressed: their keys and values (ids, digests,
    // delta-coded leaf lists) compress little, and without LZ4 span builds
    // took ~11% less CPU (perf samples over a 100 k-record bench: 1,271 and
    // 1,381 against 1,428 and 1,568) and index compactions 10.6 s against
    // 11.7 s of CPU over 3 M records.
    opts.set_compression_type(rocksdb::DBCompressionType::None);
    Ok(opts)
}

/// Opens the index database in `path` with the column families `cfs`.
/// Its own database, so that ingesting a built span and compacting the
/// indexes never hold the log's writes: RocksDB stops a database's writes
/// while it commits an ingested file, and its compactions share the
/// database's MANIFEST and mutex with the appends. It is written only by
/// ingesting files, so it has no WAL traffic; everything in it can be
/// rebuilt from the leaves. Column families other than `cfs` are from
/// earlier layouts and are dropped.
pub(crate) fn open_index_db(path: &Path, cfs: &[IndexFamily]) -> Result<DB, LedgerError> {
    let opts = db_options()?;
    let names: Vec<&str> = cfs.iter().map(|f| f.name).collect();
    let retired = other_cfs(&opts, path, &names);
    let mut descriptors = Vec::with_capacity(cfs.len() + retired.len());
    for family in cfs {
        descriptors.push(ColumnFamilyDescriptor::new(
            family.name,
            index_cf_options(*family)?,
        ));
    }
    for name in &retired {
        descriptors.push(ColumnFamilyDescriptor::new(
            name,
            index_cf_options(IndexFamily::new(""))?,
        ));
    }
    let mut db = DB::open_cf_descriptors(&opts, path, descriptors).map_err(in_indexes)?;
    drop_retired(&mut db, path, &retired)?;
    Ok(db)
}

/// Deletes the SST files of the column family `cf_name` (`cf`) of `db`
/// that lie wholly in `[from, to)` (below level 0); returns whether a
/// file that holds a key there (not only deletions) is left: one merged
/// with other keys before the family kept its groups apart, one at level
/// 0, or one a compaction held.
pub(crate) fn delete_files_in(
    db: &DB,
    cf: &rocksdb::ColumnFamily,
    cf_name: &str,
    from: &[u8],
    to: &[u8],
) -> Result<bool, rocksdb::Error> {
    db.delete_file_in_range_cf(cf, from, to)?;
    any_file_with_keys(db, cf_name, |first, last| first < to && last >= from)
}

/// Whether a file of the column family `cf_name` of `db` that holds keys
/// (not only deletions) holds keys of two groups (their first `prefix`
/// bytes differ): merged before the family kept its groups apart, or by
/// a compaction that did not complete.
pub(crate) fn holds_merged_groups(
    db: &DB,
    cf_name: &str,
    prefix: usize,
) -> Result<bool, rocksdb::Error> {
    any_file_with_keys(db, cf_name, |first, last| {
        first.get(..prefix) != last.get(..prefix)
    })
}

/// Whether a live SST file of the column family `cf_name` of `db` that
/// holds keys (not only deletions) has a first and last key for which
/// `found` holds.
fn any_file_with_keys(
    db: &DB,
    cf_name: &str,
    found: impl Fn(&[u8], &[u8]) -> bool,
) -> Result<bool, rocksdb::Error> {
    Ok(db.live_files()?.iter().any(|f| {
        f.column_family_name == cf_name
            && f.num_entries > f.num_deletions
            && match (&f.start_key, &f.end_key) {
                (Some(first), Some(last)) => found(first, last),
                _ => false,
            }
    }))
}

impl Log {
    /// Compacts the column family `cf_name` (`cf`) of `db` whole, to its
    /// last level, after [`delete_files_in`] left a file: what the deleted
    /// range still held there leaves the disk. Under universal compaction
    /// RocksDB compacts every file of a column family whatever range it is
    /// asked for.
    pub(crate) fn compact_left(
        &self,
        db: &DB,
        cf: &rocksdb::ColumnFamily,
        cf_name: &str,
    ) -> Result<(), LedgerError> {
        tracing::info!(
            "{cf_name}: a file still holds deleted keys; compacting the column family whole"
        );
        self.compact_index_whole(db, cf, cf_name)
    }

    /// Makes the bytes of the key range `[from, to)` of the index column
    /// family `cf_name`, already deleted, leave the disk: the SST files
    /// wholly inside it (below level 0) are deleted, without a compaction.
    /// If a file that holds keys in the range is left (one merged with
    /// other keys before the family kept its groups apart, a file at level
    /// 0, or one a compaction held), the family is compacted whole, once:
    /// under universal compaction any compaction rewrites every file.
    /// Returns whether it was.
    pub fn index_delete_files(
        &self,
        cf_name: &str,
        from: &[u8],
        to: &[u8],
    ) -> Result<bool, LedgerError> {
        let db = self.index_db(cf_name)?;
        let cf = crate::store::cf(&db, cf_name)?;
        let left = delete_files_in(&db, cf, cf_name, from, to).map_err(|e| self.index_error(e))?;
        if left {
            self.compact_left(&db, cf, cf_name)?;
        }
        Ok(left)
    }

    /// Compacts the index column family `cf_name` whole, as RocksDB's
    /// periodic compaction does (every 30 days at least).
    pub fn index_compact(&self, cf_name: &str) -> Result<(), LedgerError> {
        let db = self.index_db(cf_name)?;
        self.compact_index_whole(&db, crate::store::cf(&db, cf_name)?, cf_name)
    }
}
