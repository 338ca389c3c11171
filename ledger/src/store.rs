//! The RocksDB layout (specs/storage.md).
//!
//! | column family | key | value |
//! |---|---|---|
//! | `entries` | leaf index, u64 big-endian | entry bytes (the leaf) |
//! | `nodes` | level u8 ‖ index u64 big-endian | 32-byte hash of that complete subtree |
//! | `checkpoints` | tree size, u64 big-endian | signed checkpoint note |
//! | `meta` | `size` / `origin` | u64 big-endian / UTF-8 |
//!
//! One append is one WriteBatch (entries, nodes, new size) written with the
//! WAL synced. Big-endian keys keep RocksDB's order equal to log order, so a
//! tile or bundle is one forward scan.

use std::path::Path;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Options, DB};
use verifier::tree::{HashReader, NodeId};
use verifier::Hash;

use crate::LedgerError;

pub(crate) const CF_ENTRIES: &str = "entries";
pub(crate) const CF_NODES: &str = "nodes";
pub(crate) const CF_CHECKPOINTS: &str = "checkpoints";
pub(crate) const CF_META: &str = "meta";
pub(crate) const META_SIZE: &[u8] = b"size";
pub(crate) const META_ORIGIN: &[u8] = b"origin";

/// Column families every ledger store has; later layers add theirs.
pub(crate) const BASE_CFS: [&str; 4] = [CF_ENTRIES, CF_NODES, CF_CHECKPOINTS, CF_META];

pub(crate) fn open_db(path: &Path, extra_cfs: &[&str]) -> Result<DB, LedgerError> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.increase_parallelism(2);
    // One writer thread commits every batch, so the lock-free (CAS) memtable
    // insert path only costs time.
    opts.set_allow_concurrent_memtable_write(false);
    let cfs = BASE_CFS
        .iter()
        .chain(extra_cfs)
        .map(|name| ColumnFamilyDescriptor::new(*name, Options::default()));
    Ok(DB::open_cf_descriptors(&opts, path, cfs)?)
}

pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> Result<&'a ColumnFamily, LedgerError> {
    db.cf_handle(name)
        .ok_or_else(|| LedgerError::Corrupt(format!("column family {name} is missing")))
}

pub(crate) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

pub(crate) fn node_key(id: NodeId) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = id.level;
    k[1..].copy_from_slice(&id.index.to_be_bytes());
    k
}

pub(crate) fn decode_u64(bytes: &[u8], what: &str) -> Result<u64, LedgerError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| LedgerError::Corrupt(format!("{what} is not 8 bytes")))
}

/// Reads node hashes straight from the `nodes` column family.
pub(crate) struct DbReader<'a> {
    pub(crate) db: &'a DB,
    pub(crate) nodes: &'a ColumnFamily,
}

impl HashReader for DbReader<'_> {
    type Error = LedgerError;
    fn node(&self, id: NodeId) -> Result<Hash, LedgerError> {
        let value = self.db.get_pinned_cf(self.nodes, node_key(id))?;
        value.as_deref().and_then(Hash::from_slice).ok_or_else(|| {
            LedgerError::Corrupt(format!(
                "node level {} index {} is missing or malformed",
                id.level, id.index
            ))
        })
    }
}
