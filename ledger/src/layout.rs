//! Opening the log's database ([`open_db`]), which converts a store of an
//! earlier layout first.
//!
//! Stores of layout 1 (before layout 2) kept each kind of record
//! in a column family of its own (specs/storage.md):
//!
//! | column family | key | value |
//! |---|---|---|
//! | `entries` | first leaf index of a chunk (8 BE) | the chunk |
//! | `tiles` | tile level (1) ‖ tile index (8 BE) | the hash tile, full or the partial right edge |
//! | `checkpoints` | tree size (8 BE) | the signed checkpoint note |
//! | `meta` | `size` / `origin` | tree size (8 BE) / origin |
//!
//! [`convert_layout_1`] copies them into layout 2 when such a store is
//! opened: chunks and full tiles under their position keys, checkpoints
//! into their own database, the origin; partial tiles and the size are
//! computed from the rest. The caller then drops the old column families.
//!
//! Crash-safe in every order: the copies are idempotent (each key gets the
//! value it had), the checkpoints are synced before the rest is, and
//! `layout` is written last, synced, in the WriteBatch of the last copies.
//! So a store with layout 1's column families and no `layout` key is
//! copied (again) from the start, and one with the key had every copy on
//! disk before it: its old column families only wait to be dropped.

use std::path::Path;

use rocksdb::{ColumnFamilyDescriptor, IteratorMode, WriteBatch, WriteOptions, DB};
use verifier::hash::HASH_SIZE;
use verifier::tile::TILE_WIDTH;

use crate::store::{
    cf, chunk_key, db_options, decode_u64, drop_retired, log_options, other_cfs, tile_key, LAYOUT,
    META_LAYOUT, META_ORIGIN,
};
use crate::LedgerError;

/// Opens the log's database (converting a store of layout 1 first,
/// copying its checkpoints into `checkpoints`). Column families other than
/// the default one are dropped: they are from earlier layouts, and what
/// they held is in the default one or can be had from the leaves (the
/// index log of an early layout, and index column families kept beside the
/// log before they got their own database).
pub(crate) fn open_db(path: &Path, checkpoints: &DB) -> Result<DB, LedgerError> {
    let opts = db_options()?;
    let others = other_cfs(&opts, path, &[]);
    let descriptors = std::iter::once(rocksdb::DEFAULT_COLUMN_FAMILY_NAME)
        .chain(others.iter().map(String::as_str))
        .map(|name| ColumnFamilyDescriptor::new(name, log_options()));
    let mut db = DB::open_cf_descriptors(&opts, path, descriptors)?;
    convert_layout_1(&db, checkpoints, &others)?;
    drop_retired(&mut db, path, &others)?;
    Ok(db)
}

/// Layout 1's column families.
const LAYOUT_1: [&str; 4] = ["entries", "tiles", "checkpoints", "meta"];

/// Bytes of copies per WriteBatch at most (about).
const COPY_BATCH: usize = 8 << 20;

/// Converts `db` from layout 1 if it is a store of it (`present`: the
/// column families it was opened with besides the default one) not
/// converted yet, copying its checkpoints into `checkpoints`. Returns the
/// number of records copied.
pub(crate) fn convert_layout_1(
    db: &DB,
    checkpoints: &DB,
    present: &[String],
) -> Result<u64, LedgerError> {
    let has = |name: &str| present.iter().any(|p| p == name);
    if !LAYOUT_1.into_iter().any(has) || db.get(META_LAYOUT)?.is_some() {
        return Ok(0);
    }
    tracing::info!("converting a store of layout 1 (a column family per kind of record)");
    let mut sync = WriteOptions::default();
    sync.set_sync(true);
    let mut copied = 0;
    let corrupt = |what: &str, key: &[u8]| {
        LedgerError::Corrupt(format!("layout 1 {what} key {key:02x?} is malformed"))
    };
    if has("checkpoints") {
        let mut batch = WriteBatch::default();
        for item in db.iterator_cf(cf(db, "checkpoints")?, IteratorMode::Start) {
            let (key, note) = item?;
            decode_u64(&key, "layout 1 checkpoint key")?;
            batch.put(key, note);
            copied += 1;
        }
        checkpoints.write_opt(batch, &sync)?;
    }
    let mut batch = WriteBatch::default();
    let mut put = |batch: &mut WriteBatch, key: &[u8], value: &[u8]| -> Result<(), LedgerError> {
        batch.put(key, value);
        copied += 1;
        if batch.size_in_bytes() >= COPY_BATCH {
            db.write(std::mem::take(batch))?;
        }
        Ok(())
    };
    if has("entries") {
        for item in db.iterator_cf(cf(db, "entries")?, IteratorMode::Start) {
            let (key, chunk) = item?;
            let first = decode_u64(&key, "layout 1 entry chunk key")?;
            put(&mut batch, &chunk_key(first), &chunk)?;
        }
    }
    if has("tiles") {
        for item in db.iterator_cf(cf(db, "tiles")?, IteratorMode::Start) {
            let (key, tile) = item?;
            let Some((&level, index)) = key.split_first() else {
                return Err(corrupt("tile", &key));
            };
            let index = decode_u64(index, "layout 1 tile index")?;
            // Only full tiles are kept; partial ones are computed on open.
            if tile.len() == TILE_WIDTH as usize * HASH_SIZE {
                let key = tile_key(level, index).ok_or_else(|| corrupt("tile", &key))?;
                put(&mut batch, &key, &tile)?;
            }
        }
    }
    if has("meta") {
        if let Some(origin) = db.get_cf(cf(db, "meta")?, b"origin")? {
            put(&mut batch, META_ORIGIN, &origin)?;
        }
    }
    batch.put(META_LAYOUT, LAYOUT.to_be_bytes());
    db.write_opt(batch, &sync)?;
    tracing::info!("copied {copied} records of layout 1");
    Ok(copied)
}
