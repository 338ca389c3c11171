//! The data directory: `<data>/db` (RocksDB), `<data>/log.key`, `<data>/log.pub`
//! (and, around a key rotation, `log.next.key`, `log.next.pub`, `log.retired`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use ingest::index::INGEST_CFS;
use ledger::keys::{LogKeys, LogSigners};
use ledger::Log;

pub struct DataDir {
    path: PathBuf,
}

impl DataDir {
    pub fn new(path: PathBuf) -> DataDir {
        DataDir { path }
    }

    /// The data dir's directory.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    pub fn verifier(&self) -> Result<verifier::VerifierKey> {
        ledger::keys::load_verifier(&self.path).with_context(|| {
            format!(
                "no log key in {0}; create one with `ledgerctl keygen --origin <name> --out {0}`",
                self.path.display()
            )
        })
    }

    /// Every key of the log: the current one, the next, the retired.
    pub fn keys(&self) -> Result<LogKeys> {
        self.verifier()?;
        Ok(ledger::keys::load_keys(&self.path)?)
    }

    /// The signing keys: the current one, and the next while the log
    /// rotates keys.
    pub fn signer(&self) -> Result<LogSigners> {
        ledger::keys::load_signers(&self.path)
            .with_context(|| format!("loading the signer key from {}", self.path.display()))
    }

    /// The log's directory (`<data>/db`).
    pub fn db_path(&self) -> PathBuf {
        self.path.join("db")
    }

    /// The index database (`db/index`): derived from the leaves.
    pub fn index_path(&self) -> PathBuf {
        ledger::index_dir(&self.db_path())
    }

    pub fn open(&self) -> Result<Log> {
        let keys = self.keys()?;
        Log::open_with(&self.db_path(), &keys, INGEST_CFS).with_context(|| self.open_hint())
    }

    /// The log without its indexes (the index database is not opened):
    /// for reads that need none, in less memory.
    pub fn open_log(&self) -> Result<Log> {
        let keys = self.keys()?;
        Log::open(&self.db_path(), &keys).with_context(|| self.open_hint())
    }

    /// The log with its indexes, for a command that removes entries
    /// (`prune`, `erase`): first the compactions an earlier removal left
    /// owed (a ledgerd stopped, a command killed) are finished, so that
    /// what they were to take off the disk does too
    /// ([`Log::compactions_owed`]).
    pub fn open_to_remove(&self) -> Result<Log> {
        let log = self.open()?;
        let owed = log.compactions_owed()?;
        if !owed.is_empty() {
            println!("finishing the compactions a stop or a crash cut short: {owed}");
            log.compact_owed()?;
        }
        Ok(log)
    }

    /// After a command opened with [`DataDir::open_to_remove`] removed
    /// entries: an error if a compaction that takes removed bytes off the
    /// disk is still owed, which here only a failure (a full disk) leaves.
    /// What was removed is removed and recorded; only its bytes are left in
    /// the store's files, owed to the next `prune` or `erase`, or to ledgerd.
    pub fn removed_bytes_gone(&self, log: &Log) -> Result<()> {
        let owed = log.compactions_owed()?;
        if !owed.is_empty() {
            bail!(
                "the removal is done and recorded, but the compaction that takes its bytes off the disk failed ({owed}; a full disk? see {}): they stay in the store's files until it runs; free space, then run this command again or start ledgerd, which finish it",
                self.db_path().join("LOG").display()
            );
        }
        Ok(())
    }

    pub fn open_for_audit(&self) -> Result<Log> {
        let keys = self.keys()?;
        Log::open_for_audit(&self.db_path(), &keys, INGEST_CFS).with_context(|| self.open_hint())
    }

    fn open_hint(&self) -> String {
        format!("opening the log in {}", self.db_path().display())
    }
}
