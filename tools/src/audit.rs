//! Audits of logs ledgerctl reads but does not own: the log a ledgerd
//! serves (`ledgerctl --url … audit`) or a mirror directory (`ledgerctl
//! audit --mirror DIR`), each a [`Source`] of `verifier::audit`, the same
//! fsck `ledger-verify mirror` runs. (A store ledgerd owns is audited by
//! `ledger::Log::audit`.)

use anyhow::{anyhow, Result};
use ledger::keys::LogKeys;
use verifier::audit::AuditError;
use verifier::tile::Tile;
use verifier::Hash;

pub use verifier::audit::{erased_leaves, hashes_of, holds_erased, Audited, Bundle, Source};

/// The leaf hashes of the hash tile standing for pruned entry bundle
/// `tile`: one per leaf, or an error naming it.
pub fn leaf_hashes(tile: &Tile, data: &[u8]) -> Result<Vec<Hash>> {
    verifier::audit::leaf_hashes(tile, data).ok_or_else(|| {
        anyhow!(
            "the hash tile standing for pruned {} is not {} hashes",
            tile.path(),
            tile.width
        )
    })
}

/// [`verifier::audit::audit`] of `src` with every key of the log: the
/// newest checkpoint verified with the current one, kept ones with any.
/// Checkpoints in `held` (ones the auditor saw before) must be reached too.
pub fn audit<S: Source>(
    src: &S,
    keys: &LogKeys,
    held: &[Vec<u8>],
    progress: impl FnMut(u64, u64),
) -> Result<Audited>
where
    S::Error: Into<anyhow::Error>,
{
    verifier::audit::audit(src, keys.current(), keys.all(), held, progress).map_err(|e| match e {
        AuditError::Source(e) => e.into(),
        e => anyhow!(e.to_string()),
    })
}

/// Prints what an audit that passed says besides its verdict: erased and
/// pruned leaves on stdout, warnings ([`verifier::audit::Noticed`]) on
/// stderr.
pub fn print_notes(audited: &Audited) {
    for note in [audited.erasure_note(), audited.pruned_note()]
        .into_iter()
        .flatten()
    {
        println!("{note}");
    }
    for w in audited.noticed.warnings() {
        eprintln!("{w}");
    }
}

/// A mirror directory's files, read from the file system.
pub struct FsFiles<'a>(pub &'a std::path::Path);

impl verifier::mirror::MirrorFiles for FsFiles<'_> {
    type Error = anyhow::Error;

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let p = self.0.join(path);
        match std::fs::read(&p) {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow!("reading {}: {e}", p.display())),
        }
    }

    fn list(&self, path: &str) -> Result<Vec<String>> {
        let p = self.0.join(path);
        let Ok(entries) = std::fs::read_dir(&p) else {
            return Ok(Vec::new());
        };
        entries
            .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
            .collect()
    }
}
