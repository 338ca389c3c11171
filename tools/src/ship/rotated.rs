//! The files a rotation left while `ledgerctl ship --follow` was stopped.
//!
//! The state file keeps the followed file's device and inode; a file
//! renamed away is found again by them ([`by_inode`]). Rotations beyond
//! the first leave more: logrotate renames `decisions.jsonl.1` to `.2`
//! and the file to `.1`, and with `copytruncate` the lines written since
//! the last batch are in the copy, not in the file cut in place. So the
//! other files of the directory named after the followed one
//! (`decisions.jsonl.1`, `decisions.jsonl-20261207`) and written since the
//! state was kept ([`written_since`]) are shipped too, oldest first and
//! whole: lines shipped before are answered as duplicates. A compressed
//! one cannot be read as lines and is named instead.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A file in `dir` with this device and inode: where a followed file was
/// renamed to.
pub(super) fn by_inode(dir: &Path, dev: u64, inode: u64) -> Option<PathBuf> {
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let m = e.metadata().ok()?;
        (m.is_file() && m.dev() == dev && m.ino() == inode).then(|| e.path())
    })
}

/// What rotations of a followed file left beside it since the state was
/// kept.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Left {
    /// Files to ship whole, oldest first.
    pub to_ship: Vec<PathBuf>,
    /// Compressed files, not read.
    pub compressed: Vec<PathBuf>,
}

/// The files in `path`'s directory whose name is `path`'s followed by
/// `.`, `-` or `_` and more, written after `since`, other than `path`
/// itself, the file of inode `shipping` (the one the state names), and
/// the state file `state` with what is written beside it.
pub(super) fn written_since(path: &Path, state: &Path, shipping: u64, since: SystemTime) -> Left {
    let (dir, Some(name)) = (dir_of(path), path.file_name().and_then(|n| n.to_str())) else {
        return Left::default();
    };
    let state_name = (dir_of(state) == dir)
        .then(|| state.file_name().and_then(|n| n.to_str()))
        .flatten();
    let current = std::fs::metadata(path).ok().map(|m| m.ino());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Left::default();
    };
    let mut found: Vec<(SystemTime, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let file_name = e.file_name();
            let other = file_name.to_str()?;
            let rest = other.strip_prefix(name)?;
            let named_after = rest.len() > 1 && rest.starts_with(['.', '-', '_']);
            let beside_state = state_name.is_some_and(|s| other.starts_with(s));
            let m = e.metadata().ok()?;
            let modified = m.modified().ok()?;
            (named_after
                && !beside_state
                && m.is_file()
                && Some(m.ino()) != current
                && m.ino() != shipping
                && modified > since)
                .then(|| (modified, e.path()))
        })
        .collect();
    found.sort();
    let mut left = Left::default();
    for (_, file) in found {
        if compressed(&file) {
            left.compressed.push(file);
        } else {
            left.to_ship.push(file);
        }
    }
    left
}

/// The directory `path` is in (`.` for a bare file name).
pub(super) fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether `file` starts as gzip, bzip2, xz or zstd data does.
fn compressed(file: &Path) -> bool {
    let mut head = [0u8; 6];
    let n = std::fs::File::open(file)
        .and_then(|f| std::os::unix::fs::FileExt::read_at(&f, &mut head, 0))
        .unwrap_or(0);
    let head = &head[..n];
    [
        &[0x1f, 0x8b][..],
        b"BZh",
        &[0xfd, b'7', b'z', b'X', b'Z', 0],
        &[0x28, 0xb5, 0x2f, 0xfd],
    ]
    .iter()
    .any(|magic| head.starts_with(magic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_files_written_since_are_found_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let at = |n: &str| dir.path().join(n);
        let path = at("d.jsonl");
        std::fs::write(at("d.jsonl.3.gz"), [0x1f, 0x8b, 8, 0]).unwrap();
        std::fs::write(at("d.jsonl.shipped"), b"{}").unwrap();
        let shipping = at("d.jsonl.2");
        std::fs::write(&shipping, b"a\n").unwrap();
        let since = std::fs::metadata(&shipping).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        for name in [
            "d.jsonl-20261207",
            "d.jsonl.1",
            "d.jsonl.1.gz",
            "d.jsonl.shipped.lock",
            "d.jsonl.shipped.tmp",
            "d.jsonlx",
            "d.jsonl.",
            "other.jsonl.1",
        ] {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let bytes: &[u8] = if name.ends_with(".gz") {
                &[0x1f, 0x8b, 8, 0]
            } else {
                b"b\n"
            };
            std::fs::write(at(name), bytes).unwrap();
        }
        std::fs::write(&path, b"c\n").unwrap();
        let ino = std::fs::metadata(&shipping).unwrap().ino();
        let left = written_since(&path, &at("d.jsonl.shipped"), ino, since);
        assert_eq!(left.to_ship, [at("d.jsonl-20261207"), at("d.jsonl.1")]);
        assert_eq!(left.compressed, [at("d.jsonl.1.gz")]);
        assert_eq!(
            by_inode(dir.path(), std::fs::metadata(&shipping).unwrap().dev(), ino),
            Some(shipping)
        );
    }
}
