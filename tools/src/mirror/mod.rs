//! `ledgerctl mirror` and `ledgerctl restore` (docs/operations.md): a
//! verified copy of a log kept through its tlog-tiles API, and a full
//! ledger store rebuilt from it.
//!
//! A mirror directory holds the log as static tlog-tiles files
//! (specs/mirror.md):
//!
//! ```text
//! DIR/log.pub                the log's verifier key
//! DIR/log.retired            keys the log signed with before (a rotation)
//! DIR/checkpoint             the newest checkpoint verified
//! DIR/checkpoints/<size>     every checkpoint verified
//! DIR/tile/entries/<N>       entry bundles (tlog-tiles paths); the last,
//! DIR/tile/entries/<N>.p/<W> partial one until it fills
//! DIR/tile/0/<N>             for a bundle the log's retention had removed
//!                            when it was fetched: its leaves' hashes
//! DIR/frontier               the tree's right edge at the checkpoint's size
//! DIR/first-kept             with `--prune`: where the entries it may hold begin
//! DIR/staging/               during a sync: what it fetched, until proven
//! ```
//!
//! Nothing is stored before it is proven: a new checkpoint must verify with
//! the key, and the mirror's own leaves extended by the new ones must hash
//! to its root (so the log only grew: append-only, checked from the leaves
//! themselves). A log that went back or forked is refused.
//!
//! A log that rotates its key signs with both keys for a while
//! (specs/keys.md). Given the new key, a mirror whose newest checkpoint the
//! new key signed too follows it from then on; the old key goes to
//! `DIR/log.retired`, and the older checkpoints are verified with it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ledger::{Frontier, Log};
use verifier::checkpoint::{self, Checkpoint};
use verifier::cosignature;
use verifier::tile::{decode_bundle_of, entry_bundles, TILE_WIDTH};
use verifier::{leaf_hash, VerifierKey};

mod erasure;
mod print;
mod retention;
mod staged;

pub use print::Print;
use print::Printer;

use crate::audit::{erased_leaves, hashes_of, leaf_hashes, Bundle, FsFiles, Source};
use crate::remote::Remote;
use verifier::mirror::Mirror as MirrorFilesOf;

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    move_into_place(&tmp, path)
}

/// A directory's lock file: one `ledgerctl mirror` at a time writes a
/// mirror (two would write the same temporary files), one `ledgerctl
/// witness serve` at a time keeps a witness's state.
const LOCK_FILE: &str = "lock";

/// Takes `dir`'s lock for `who` (the command), or says who holds it; held
/// while the returned file is open.
pub(crate) fn lock_dir(dir: &Path, who: &str) -> Result<std::fs::File> {
    let path = dir.join(LOCK_FILE);
    crate::lock::exclusive(&path, || {
        format!(
            "another {who} is using {} (it holds {}); stop it first, or let it run",
            dir.display(),
            path.display()
        )
    })
}

/// The mirror's state: its newest verified checkpoint and tree edge.
struct Mirror {
    /// Held while the mirror is open ([`lock_dir`]).
    _lock: std::fs::File,
    dir: PathBuf,
    key: VerifierKey,
    checkpoint: Option<Checkpoint>,
    frontier: Frontier,
}

impl Mirror {
    /// Opens (or starts) the mirror in `dir` for the log of `key`.
    fn open(dir: &Path, key: &VerifierKey) -> Result<Mirror> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let lock = lock_dir(dir, "ledgerctl mirror")?;
        let key_file = dir.join(ledger::keys::VERIFIER_FILE);
        let newest = std::fs::read(dir.join("checkpoint")).ok();
        match std::fs::read_to_string(&key_file) {
            Ok(text) => {
                let theirs = VerifierKey::parse(&text)
                    .with_context(|| format!("{} is not a verifier key", key_file.display()))?;
                if theirs != *key {
                    switch_key(dir, &theirs, key, newest.as_deref())?;
                }
            }
            Err(_) => write_atomic(&key_file, format!("{key}\n").as_bytes())?,
        }
        let checkpoint = match &newest {
            Some(text) => Some(
                checkpoint::open(text, key)
                    .context("the mirror's own checkpoint does not verify")?,
            ),
            None => None,
        };
        let frontier = match &checkpoint {
            None => Frontier::new(),
            Some(cp) => read_frontier(dir, cp)?,
        };
        // What a sync cut short left: its checkpoint kept by size, and the
        // frontier it wrote in place, if it stored that checkpoint; else
        // that frontier is gone, with the rest of that sync.
        if let (Some(cp), Some(text)) = (&checkpoint, &newest) {
            let kept = kept_path(dir, cp.size);
            if !kept.exists() {
                write_atomic(&kept, text)?;
            }
        }
        let next = dir.join(verifier::mirror::FRONTIER_NEXT);
        if next.exists() {
            if checkpoint.is_some() {
                write_frontier(&dir.join(verifier::mirror::FRONTIER), &frontier)?;
            }
            std::fs::remove_file(&next).with_context(|| format!("removing {}", next.display()))?;
        }
        Ok(Mirror {
            _lock: lock,
            dir: dir.to_path_buf(),
            key: key.clone(),
            checkpoint,
            frontier,
        })
    }

    fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Fetches what the log has beyond the mirror, proves it, stores it;
    /// returns the new size. A newest checkpoint without the cosignatures
    /// the remote asks for is not taken: the answer says so, and the
    /// mirror stays as it is.
    ///
    /// With a `printer`, each decision proven is printed before the new
    /// checkpoint is stored (`print.rs`).
    fn sync(
        &mut self,
        remote: &Remote,
        printer: Option<&mut Printer<impl Write>>,
    ) -> Result<Synced> {
        let (cp, text) = remote.log_checkpoint(&self.key, None)?;
        let have = self.size();
        // A log that went back or forked is refused whether or not
        // witnesses cosigned it.
        if cp.size < have {
            bail!(
                "the log now says it has {} leaves, fewer than the {have} this mirror holds: it went back (refused; the mirror is unchanged)",
                cp.size
            );
        }
        if cp.size == have && self.checkpoint.as_ref().is_some_and(|c| c.root != cp.root) {
            bail!("the log signed another root at size {have} than the one this mirror holds: it forked (refused)");
        }
        if let Err(e) = cosignature::witnessing(text.as_bytes(), &self.key, remote.policy()) {
            return Ok(Synced::Waiting(format!(
                "the log's newest checkpoint (size {}) is not taken yet: {e}; the mirror stays at size {have}",
                cp.size
            )));
        }
        if cp.size == have {
            // The same checkpoint, perhaps with cosignatures added since.
            if have > 0
                && std::fs::read(self.dir.join("checkpoint")).ok().as_deref()
                    != Some(text.as_bytes())
            {
                self.store_checkpoint(cp.size, &text)?;
            }
            return Ok(Synced::Size(have));
        }
        // Extend the mirror's own tree with the new leaves, bundle by
        // bundle; store nothing until the root is the signed one.
        let mut frontier = self.frontier.clone();
        // Each bundle, and the file it is kept as: itself, or for one whose
        // entries the log's retention removed, the hash tile of its leaves
        // (proven as entries are: by the root they reach). Kept on disk
        // until proven.
        let mut bundles = staged::Staged::new(&self.dir)?;
        for tile in entry_bundles(have, cp.size) {
            // The bundle repeats the leaves the mirror has of it.
            let skip = (have.max(tile.index * TILE_WIDTH) - tile.index * TILE_WIDTH) as usize;
            match remote.bundle(&tile)? {
                Bundle::Entries(data) => {
                    let entries = decode_bundle_of(&tile, &data).with_context(|| tile.path())?;
                    for e in entries.iter().skip(skip) {
                        frontier.push(leaf_hash(e));
                    }
                    bundles.add_entries(tile, &data)?;
                }
                Bundle::Erased { entries, hashes } => {
                    let leaves = erased_leaves::<String>(&tile, &entries, &hashes)
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    for (h, _) in leaves.into_iter().skip(skip) {
                        frontier.push(h);
                    }
                    // Kept beside the bundle: the erased entries' hashes.
                    bundles.add(tile, hashes_of(&tile), &hashes)?;
                    bundles.add(tile, tile, &entries)?;
                }
                Bundle::Pruned(data) => {
                    for h in leaf_hashes(&tile, &data)?.into_iter().skip(skip) {
                        frontier.push(h);
                    }
                    bundles.add(tile, hashes_of(&tile), &data)?;
                }
            }
        }
        if frontier.root() != cp.root {
            bail!(
                "the log's leaves from {have} to {} do not extend this mirror's {have} to the signed root: not an append-only extension (refused; the mirror is unchanged)",
                cp.size
            );
        }
        if let Some(printer) = printer {
            bundles.each_entry(have, |index, entry| printer.entry(index, entry))?;
            printer.flush()?;
        }
        let completed = bundles.commit()?;
        // The new checkpoint is the commit point: the frontier of its tree
        // is written before it and takes the old one's place after it, so
        // that the mirror holds the frontier of its newest checkpoint
        // whenever it stops (`verifier::mirror::FRONTIER_NEXT`).
        let next = self.dir.join(verifier::mirror::FRONTIER_NEXT);
        write_frontier(&next, &frontier)?;
        self.store_checkpoint(cp.size, &text)?;
        move_into_place(&next, &self.dir.join(verifier::mirror::FRONTIER))?;
        // The partial bundles the full ones complete, no longer named.
        for partial in completed {
            let _ = std::fs::remove_dir_all(partial);
        }
        self.frontier = frontier;
        self.checkpoint = Some(cp);
        Ok(Synced::Size(self.size()))
    }

    /// Keeps `text`, the checkpoint of `size`, as the newest and then by
    /// its size (a kept checkpoint is never beyond the newest; one cut
    /// short before it is kept by size is kept when the mirror opens).
    fn store_checkpoint(&self, size: u64, text: &str) -> Result<()> {
        write_atomic(&self.dir.join("checkpoint"), text.as_bytes())?;
        write_atomic(&kept_path(&self.dir, size), text.as_bytes())
    }
}

/// What one sync did.
enum Synced {
    /// The mirror holds this many leaves.
    Size(u64),
    /// The newest checkpoint lacks the cosignatures asked for (why).
    Waiting(String),
}

/// Where the checkpoint of `size` is kept in the mirror `dir`.
fn kept_path(dir: &Path, size: u64) -> PathBuf {
    dir.join(verifier::mirror::CHECKPOINTS)
        .join(size.to_string())
}

/// Renames `from` over `to` and syncs their directory: the rename itself
/// on disk, before anything that counts on the file.
fn move_into_place(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).with_context(|| format!("writing {}", to.display()))?;
    if let Some(dir) = to.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", dir.display()))?;
    }
    Ok(())
}

fn write_frontier(path: &Path, f: &Frontier) -> Result<()> {
    write_atomic(path, verifier::mirror::frontier_text(f).as_bytes())
}

/// The mirror's `frontier`, which must be the tree of `cp`.
fn read_frontier(dir: &Path, cp: &Checkpoint) -> Result<Frontier> {
    Ok(MirrorFilesOf(FsFiles(dir)).frontier(cp)?)
}

/// Moves the mirror in `dir` from the log's key `old` to its new key `new`
/// (a key rotation), if the mirror's newest checkpoint is signed by `new`
/// as well as `old`: the log handed itself over in a checkpoint the mirror
/// verified. `old` is added to the mirror's `log.retired`.
fn switch_key(
    dir: &Path,
    old: &VerifierKey,
    new: &VerifierKey,
    newest: Option<&[u8]>,
) -> Result<()> {
    let retired = ledger::keys::load_retired(dir)?;
    if new.name() != old.name() || retired.contains(new) {
        bail!(
            "{} mirrors the log {old}, not {new}{}",
            dir.display(),
            if retired.contains(new) {
                " (a key the log retired)"
            } else {
                ""
            }
        );
    }
    let handed_over = newest.is_some_and(|text| {
        checkpoint::open(text, old).is_ok() && checkpoint::open(text, new).is_ok()
    });
    if !handed_over {
        bail!(
            "{} follows the log {} under the key {old}, and its newest checkpoint is not signed by {new} too. \
             A log rotating its key signs with both keys until it promotes the new one: \
             follow it with the old key until the mirror holds such a checkpoint, then switch",
            dir.display(),
            old.name()
        );
    }
    ledger::keys::retire(dir, std::slice::from_ref(old))?;
    write_atomic(
        &dir.join(ledger::keys::VERIFIER_FILE),
        format!("{new}\n").as_bytes(),
    )?;
    eprintln!(
        "mirror {}: now follows the key {new} (its newest checkpoint is signed by it and by {old}, now in {})",
        dir.display(),
        ledger::keys::RETIRED_FILE
    );
    Ok(())
}

/// How `ledgerctl mirror` follows the log.
pub struct Follow {
    /// One sync, then stop.
    pub once: bool,
    /// Follow the log's retention and erasures.
    pub prune: bool,
    /// Time between syncs.
    pub every: Duration,
    /// Print each decision proven on stdout, in this form; the mirror's
    /// own lines then go to stderr.
    pub print: Option<Print>,
}

/// `ledgerctl mirror`: one sync, or (without `once`) a sync every
/// `every` until stopped.
pub fn run(remote: &Remote, key: &VerifierKey, dir: &Path, follow: Follow) -> Result<()> {
    let mut m = Mirror::open(dir, key)?;
    let mut printer = follow
        .print
        .map(|form| Printer::new(form, key.name(), std::io::stdout().lock()));
    // Stdout carries the decisions when they are printed.
    let say = |line: String| {
        if follow.print.is_some() {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    let mut waiting = None;
    loop {
        let before = m.size();
        let synced = m.sync(remote, printer.as_mut())?;
        if follow.prune {
            let (from, to) = m.follow_retention(remote)?;
            if to > from {
                say(format!(
                    "mirror {}: removed the entries of leaves {from}..{to}, as the log's retention did; their hashes are kept",
                    dir.display()
                ));
            }
            let erased = m.follow_erasures()?;
            if !erased.is_empty() {
                say(format!(
                    "mirror {}: erased the entries of {} leaf{} as the log's erasure records say (the first: leaf {}); their hashes are kept",
                    dir.display(),
                    erased.len(),
                    if erased.len() == 1 { "," } else { "s," },
                    erased[0]
                ));
            }
        }
        let size = match synced {
            Synced::Size(size) => size,
            Synced::Waiting(why) if follow.once => bail!("{why}"),
            Synced::Waiting(why) => {
                // Said once while it lasts; the next fetch tries again.
                if waiting.as_ref() != Some(&why) {
                    eprintln!("mirror {}: {why}", dir.display());
                }
                waiting = Some(why);
                std::thread::sleep(follow.every);
                continue;
            }
        };
        waiting = None;
        if size > before || follow.once {
            say(format!(
                "mirror {}: {size} {} of {}, checkpoint verified (+{})",
                dir.display(),
                if size == 1 { "leaf" } else { "leaves" },
                key.name(),
                size - before
            ));
        }
        if follow.once {
            return Ok(());
        }
        std::thread::sleep(follow.every);
    }
}

/// `ledgerctl restore`: a full ledger store in `data` (leaves at their
/// indexes, the tree, every checkpoint the mirror verified, the dedup map
/// and the responder indexes), from the mirror in `mirror`.
pub fn restore(mirror: &Path, data: &Path) -> Result<()> {
    let key = ledger::keys::load_verifier(mirror)
        .with_context(|| format!("{} is not a mirror (no log.pub)", mirror.display()))?;
    // Its older checkpoints may be signed by keys the log retired.
    let keys = ledger::keys::LogKeys::new(key.clone(), ledger::keys::load_retired(mirror)?)?;
    let text = std::fs::read(mirror.join("checkpoint")).context("the mirror has no checkpoint")?;
    let cp = checkpoint::open(&text, &key).context("the mirror's checkpoint does not verify")?;
    let db = data.join("db");
    if db.exists() {
        bail!(
            "{} already holds a store; restore into a new directory",
            data.display()
        );
    }
    // The store is built beside its place and moved there whole once it is
    // complete: a restore that fails or is interrupted leaves no store that
    // ledgerd would start on and extend with a shorter history (a fork).
    let staging = data.join("db.restoring");
    if staging.exists() {
        // What a restore that did not finish left behind.
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("removing {}", staging.display()))?;
    }
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let log = std::sync::Arc::new(
        Log::open_with(&staging, &keys, ingest::index::INGEST_CFS)
            .with_context(|| format!("creating the store in {}", staging.display()))?,
    );
    // Each empty entry must be named by a later erasure record, which the
    // restored store records it was erased by.
    let mut erasures = verifier::erasure::ErasureCheck::default();
    let files = MirrorFilesOf(FsFiles(mirror));
    for tile in entry_bundles(0, cp.size) {
        let path = mirror.join(tile.path());
        match files.bundle(&tile)? {
            Bundle::Entries(bytes) => {
                let entries = decode_bundle_of(&tile, &bytes)
                    .with_context(|| format!("{}", path.display()))?;
                for (i, e) in (log.size()..).zip(&entries) {
                    erasures.entry(i, e)?;
                }
                // The exact leaves, at their indexes: appended raw, as the
                // leaves they are (received_at and submitted_by included).
                log.append(&entries)?;
            }
            // Some entries were erased: appended as empty ones, with the
            // hashes kept beside the bundle.
            Bundle::Erased { entries, hashes } => {
                let leaves = erased_leaves::<String>(&tile, &entries, &hashes)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                for (i, (hash, entry)) in (log.size()..).zip(&leaves) {
                    match entry {
                        Some(e) => erasures.entry(i, e)?,
                        None => erasures.erased(i, *hash),
                    }
                }
                let kept: Vec<&[u8]> = leaves.iter().map(|(_, e)| e.unwrap_or_default()).collect();
                log.append_leaves(&kept, leaves.iter().map(|(h, _)| *h).collect())?;
            }
            // Leaves whose entries the log's retention removed before the
            // mirror fetched them: pruned in the restored store too.
            Bundle::Pruned(hashes) => {
                log.append_pruned(&leaf_hashes(&tile, &hashes)?)
                    .with_context(|| {
                        format!("{}", mirror.join(hashes_of(&tile).path()).display())
                    })?;
            }
        }
    }
    if log.root(cp.size)? != cp.root {
        bail!("the mirror's leaves do not hash to its checkpoint's root");
    }
    for (index, by) in erasures.finish()?.erased_by {
        log.record_erased(index, by)?;
    }
    let mut sizes: Vec<u64> = std::fs::read_dir(mirror.join("checkpoints"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    sizes.sort_unstable();
    for size in &sizes {
        let text = std::fs::read(mirror.join("checkpoints").join(size.to_string()))?;
        log.store_checkpoint(&text)
            .with_context(|| format!("the mirror's checkpoint of size {size}"))?;
    }
    let indexes = ingest::Indexes::open(log.clone())?;
    // The log's retention record of the first kept leaf, if the mirror
    // holds it: what an export reaching back past that leaf stands on.
    let kept = log.first_kept();
    if kept > 0 {
        if let Some((at, _)) = indexes.lookup_decision(&verifier::retention::decision_id(kept))? {
            log.record_retention(at)?;
        }
    }
    drop(indexes);
    std::fs::copy(
        mirror.join(ledger::keys::VERIFIER_FILE),
        data.join(ledger::keys::VERIFIER_FILE),
    )?;
    ledger::keys::retire(data, &keys.all()[1..])?;
    // Closed (the indexes built above hold it no more), then moved.
    let Ok(log) = std::sync::Arc::try_unwrap(log) else {
        bail!(
            "the restored store is still in use; {} is left as it is",
            staging.display()
        );
    };
    drop(log);
    std::fs::rename(&staging, &db)
        .with_context(|| format!("moving the store to {}", db.display()))?;
    std::fs::File::open(data)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", data.display()))?;
    println!(
        "restored {} leaves of {} into {} ({} signed checkpoint{}, indexes built); put the log's signing key back as {} before starting ledgerd on it",
        cp.size,
        key.name(),
        data.display(),
        sizes.len(),
        if sizes.len() == 1 { "" } else { "s" },
        data.join(ledger::keys::SIGNER_FILE).display()
    );
    Ok(())
}

/// `ledgerctl audit --mirror DIR`: every mirrored entry rehashed; the
/// newest checkpoint verified with `key`, every kept one with it or a key
/// in the mirror's `log.retired` or `retired`, and each reached by the
/// entries; the frontier the tree's edge at the newest.
pub fn audit(
    dir: &Path,
    key: &VerifierKey,
    retired: &[VerifierKey],
    held: &[Vec<u8>],
    progress: impl FnMut(u64, u64),
) -> Result<crate::audit::Audited> {
    let mut others = ledger::keys::load_retired(dir)?;
    others.extend_from_slice(retired);
    let keys = ledger::keys::LogKeys::new(key.clone(), others)?;
    let audited = crate::audit::audit(&MirrorFilesOf(FsFiles(dir)), &keys, held, progress)?;
    read_frontier(dir, &audited.checkpoint)?;
    Ok(audited)
}
