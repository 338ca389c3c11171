//! Helpers shared by the verifier's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use verifier::Hash;

/// `../shared/testvectors/` beside the checkout (or `$LEDGER_TESTVECTORS`).
pub fn vectors_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LEDGER_TESTVECTORS") {
        return dir.into();
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testvectors")
}

/// Loads one vector file; the vectors are required, so a missing file fails.
pub fn load(name: &str) -> serde_json::Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("test vectors {} are required: {e}", path.display()));
    serde_json::from_str(&text).expect("vector file is JSON")
}

pub fn hex_hash(v: &serde_json::Value) -> Hash {
    Hash::from_slice(&hex::decode(v.as_str().expect("hex string")).expect("hex")).expect("32 bytes")
}

pub fn hashes(v: &serde_json::Value) -> Vec<Hash> {
    v.as_array().expect("array").iter().map(hex_hash).collect()
}

/// The RFC 9162 §2.1.1 definition, recursively, as a reference.
pub fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Hash::empty(),
        1 => leaves[0],
        n => {
            let k = 1 << (63 - (n as u64 - 1).leading_zeros());
            verifier::node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

/// RFC 9162 §2.1.3.1 PATH(m, D[n]), recursively.
pub fn naive_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return vec![];
    }
    let k = 1 << (63 - (n as u64 - 1).leading_zeros());
    if m < k {
        let mut p = naive_path(m, &leaves[..k]);
        p.push(naive_root(&leaves[k..]));
        p
    } else {
        let mut p = naive_path(m - k, &leaves[k..]);
        p.push(naive_root(&leaves[..k]));
        p
    }
}

/// RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b), recursively.
pub fn naive_subproof(m: usize, leaves: &[Hash], whole: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if whole {
            vec![]
        } else {
            vec![naive_root(leaves)]
        };
    }
    let k = 1 << (63 - (n as u64 - 1).leading_zeros());
    if m <= k {
        let mut p = naive_subproof(m, &leaves[..k], whole);
        p.push(naive_root(&leaves[k..]));
        p
    } else {
        let mut p = naive_subproof(m - k, &leaves[k..], false);
        p.push(naive_root(&leaves[..k]));
        p
    }
}
pub mod decisions;
pub mod packages;
