//! The data directory: `<data>/db` (RocksDB), `<data>/log.key`, `<data>/log.pub`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use ingest::index::INGEST_CFS;
use ledger::Log;
use verifier::SignerKey;

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

    pub fn signer(&self) -> Result<SignerKey> {
        ledger::keys::load_signer(&self.path)
            .with_context(|| format!("loading the signer key from {}", self.path.display()))
    }

    fn db_path(&self) -> PathBuf {
        self.path.join("db")
    }

    pub fn open(&self) -> Result<Log> {
        let key = self.verifier()?;
        Log::open_with(&self.db_path(), &key, INGEST_CFS).with_context(|| self.open_hint())
    }

    /// The log without its indexes (the index database is not opened):
    /// for reads that need none, in less memory.
    pub fn open_log(&self) -> Result<Log> {
        let key = self.verifier()?;
        Log::open(&self.db_path(), &key).with_context(|| self.open_hint())
    }

    pub fn open_for_audit(&self) -> Result<Log> {
        let key = self.verifier()?;
        Log::open_for_audit(&self.db_path(), &key, INGEST_CFS).with_context(|| self.open_hint())
    }

    fn open_hint(&self) -> String {
        format!(
            "opening the log in {} (if a running ledgerd holds it, use its HTTP API)",
            self.db_path().display()
        )
    }
}
