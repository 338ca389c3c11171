#![no_main]
//! Deterministic CBOR and leaf envelopes.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = verifier::cbor::decode(data) {
        let once = verifier::cbor::encode(&v);
        let twice = verifier::cbor::encode(&verifier::cbor::decode(&once).unwrap());
        assert_eq!(once, twice, "encoding is a fixed point");
    }
    let _ = verifier::cbor::decode_prefix(data);
    let _ = verifier::envelope::Envelope::decode(data);
});
