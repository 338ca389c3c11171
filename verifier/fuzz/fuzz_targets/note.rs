#![no_main]
//! Signed notes, checkpoint bodies and key strings.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = verifier::note::Note::parse(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = verifier::Checkpoint::parse_body(s);
        let _ = verifier::VerifierKey::parse(s);
        let _ = verifier::SignerKey::parse(s);
    }
});
