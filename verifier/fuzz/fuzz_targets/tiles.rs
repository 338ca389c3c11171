#![no_main]
//! Tile paths and entry bundles.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = verifier::tile::decode_bundle(data);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(t) = verifier::tile::Tile::parse_path(s) {
            assert_eq!(t.path(), s, "one spelling per tile");
        }
    }
});
