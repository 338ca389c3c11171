#![no_main]
//! tlog-proof and consistency proof files, verified against a fixed key.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = verifier::SignerKey::from_seed("fuzz.example/log", &[1; 32]).unwrap().verifier();
    let _ = verifier::tlog_proof::verify(data, b"entry", &key);
    if let Ok(f) = verifier::consistency_file::ConsistencyFile::parse(data) {
        let _ = f.verify(data, data, &key);
    }
});
