#![no_main]
//! Evidence files, chain bundles, COSE receipts and leaves read as
//! decisions, verified against a fixed key.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = verifier::SignerKey::from_seed("fuzz.example/log", &[1; 32]).unwrap().verifier();
    let _ = verifier::evidence::verify(data, &key);
    let _ = verifier::chain::verify(data, &key);
    let _ = verifier::receipt::verify(data, b"entry", &key);
    let _ = verifier::decision::LoggedDecision::from_leaf(data);
});
