//! Helpers shared by the ledger's integration tests.

use std::path::Path;

/// Whether any SST file in `dir` holds `needle`.
pub fn in_sst_files(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|f| {
        let path = f.unwrap().path();
        path.extension().is_some_and(|e| e == "sst")
            && std::fs::read(&path)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle)
    })
}
