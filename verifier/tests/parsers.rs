//! No input makes a parser panic: arbitrary bytes and near-valid text.

use proptest::prelude::*;
use verifier::checkpoint::Checkpoint;
use verifier::consistency_file::ConsistencyFile;
use verifier::note::{Note, SignerKey, VerifierKey};
use verifier::tile::{decode_bundle, Tile};
use verifier::tlog_proof::TlogProof;

fn parse_all(bytes: &[u8]) {
    let key = SignerKey::from_seed("fuzz.example/log", &[1; 32])
        .unwrap()
        .verifier();
    let _ = verifier::evidence::verify(bytes, &key);
    let _ = verifier::chain::verify(bytes, &key);
    let _ = verifier::receipt::verify(bytes, b"leaf", &key);
    let _ = verifier::decision::LoggedDecision::from_leaf(bytes);
    let _ = Note::parse(bytes);
    let _ = TlogProof::parse(bytes);
    let _ = ConsistencyFile::parse(bytes);
    let _ = decode_bundle(bytes);
    if let Ok(s) = std::str::from_utf8(bytes) {
        let _ = Checkpoint::parse_body(s);
        let _ = Tile::parse_path(s);
        let _ = VerifierKey::parse(s);
        let _ = SignerKey::parse(s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        parse_all(&bytes);
    }

    #[test]
    fn near_valid_text(s in "(decision-ledger/(evidence|chain)@v1\n)?((complete|truncated|hop [0-9]{1,2})\n)?(leaf [A-Za-z0-9+/=]{0,20}\n)?(c2sp.org/tlog-proof@v1\n)?(index [0-9]{1,3}\n)?([A-Za-z0-9+/=]{0,44}\n){0,3}\n?(tile/[0-9x/.pentries]{0,20})?([a-z./]{1,12}\n[0-9]{1,4}\n[A-Za-z0-9+/=]{40,46}\n)?\n?(\u{2014} [a-z./]{1,12} [A-Za-z0-9+/=]{0,100}\n)?") {
        parse_all(s.as_bytes());
    }
}

#[test]
fn tile_paths_round_trip_and_reject_non_canonical() {
    for (path, ok) in [
        ("tile/0/000", true),
        ("tile/0/x001/x234/067", true),
        ("tile/3/x001/234.p/17", true),
        ("tile/entries/x123/456.p/255", true),
        ("tile/0/x000/001", false),
        ("tile/0/1", false),
        ("tile/0/000.p/0", false),
        ("tile/0/000.p/256", false),
        ("tile/0/000.p/017", false),
        ("tile/64/000", false),
        ("tile/01/000", false),
        ("tile/entries/x001", false),
        ("tiles/0/000", false),
    ] {
        let parsed = Tile::parse_path(path);
        assert_eq!(parsed.is_ok(), ok, "{path}");
        if let Ok(t) = parsed {
            assert_eq!(t.path(), path);
        }
    }
    assert_eq!(verifier::tile::encode_index(1_234_067), "x001/x234/067");
    assert_eq!(verifier::tile::encode_index(0), "000");
    assert_eq!(verifier::tile::encode_index(1000), "x001/000");
}

#[test]
fn entry_bundles_cover_a_range_and_hold_their_width() {
    use verifier::tile::{decode_bundle_of, encode_bundle, entry_bundles};
    let paths: Vec<String> = entry_bundles(300, 700).map(|t| t.path()).collect();
    assert_eq!(paths, ["tile/entries/001", "tile/entries/002.p/188"]);
    assert_eq!(entry_bundles(0, 512).count(), 2);
    assert_eq!(entry_bundles(512, 512).count(), 0);
    let last = entry_bundles(0, 700).last().unwrap();
    let entries: Vec<&[u8]> = (0..188).map(|_| &b"e"[..]).collect();
    let data = encode_bundle(entries.iter().copied()).unwrap();
    assert_eq!(decode_bundle_of(&last, &data).unwrap().len(), 188);
    let short = encode_bundle(entries[..187].iter().copied()).unwrap();
    assert!(decode_bundle_of(&last, &short).is_err());
}
