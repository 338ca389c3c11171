//! Fuzz targets: every parser that reads bytes from outside the process.
//!
//! Each target takes arbitrary bytes and must return without panicking;
//! some also check an invariant (an encoding that is a fixed point, a
//! path with one spelling). They are plain functions so that three
//! drivers share them:
//! - `tests/smoke.rs` (part of `make test`): every seed and regression
//!   input, then a bounded run of random mutations of the seeds;
//! - `libfuzzer/` (`make fuzz`): coverage-guided runs with cargo-fuzz;
//! - [`regenerate_seeds`](../tests/seeds.rs): the seed corpus, made from
//!   real files written by `ledgerctl`.
//!
//! Targets that verify signatures use [`key`], the key the seeds are
//! signed with, so mutations of a seed get past the signature check to the
//! code behind it. Inputs made of several files (an export package, a
//! receipt and its leaf) are [`frames`]: each part a 4-byte little-endian
//! length and its bytes.

use ciborium::Value;
use ingest::input::{check_record, parse_body, Format, Sender};
use verifier::{SignerKey, VerifierKey};

pub mod mutate;

/// Origin of the fuzzing log.
pub const ORIGIN: &str = "fuzz.example/log";

/// The signer of the seeds: a fixed key, so that its verifier key is known
/// to every target.
pub fn signer() -> SignerKey {
    SignerKey::from_seed(ORIGIN, &[7; 32]).expect("a valid fixed key")
}

/// The verifier key every target checks signatures with.
pub fn key() -> VerifierKey {
    signer().verifier()
}

/// The witness whose cosignatures the seeds carry, and who answers the
/// `witness` target's requests.
pub fn witness_signer() -> verifier::cosignature::WitnessSigner {
    verifier::cosignature::WitnessSigner::from_seed("fuzz.example/witness", &[8; 32])
        .expect("a valid fixed key")
}

/// An ML-DSA-44 witness whose cosignatures the `witness` target verifies
/// too (its seed `pq` carries one).
pub fn pq_witness_signer() -> verifier::cosignature::WitnessSigner {
    use verifier::cosignature::{Algorithm, WitnessSigner};
    WitnessSigner::from_seed_with(Algorithm::MlDsa44, "fuzz.example/pq", &[9; 32])
        .expect("a valid fixed key")
}

/// A target: its name (the corpus folder) and the function.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("record_cbor", record_cbor),
    ("record_json", record_json),
    ("cbor_seq", cbor_seq),
    ("record_fast", record_fast),
    ("opa_event", opa_event),
    ("kubernetes_audit", kubernetes_audit),
    ("search_params", search_params),
    ("cbor", cbor),
    ("leaf", leaf),
    ("note", note),
    ("tlog_proof", tlog_proof),
    ("consistency", consistency),
    ("tiles", tiles),
    ("evidence", evidence),
    ("chain", chain),
    ("receipt", receipt),
    ("export", export),
    ("witness", witness),
    ("client_cert", client_cert),
    ("signed_record", signed_record),
];

/// Splits `data` into parts, each a 4-byte little-endian length and that
/// many bytes; a part cut short by the end of the data ends there.
pub fn frames(mut data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    while data.len() >= 4 {
        let n = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
        data = &data[4..];
        let n = n.min(data.len());
        parts.push(&data[..n]);
        data = &data[n..];
    }
    parts
}

/// Joins parts as [`frames`] splits them.
pub fn frame(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// The key enforcer gw-eu-1 (the seeds' records) signs with.
pub fn enforcer() -> SignerKey {
    SignerKey::from_seed("gw-eu-1", &[7; 32]).expect("a valid fixed key")
}

/// Enforcer gw-eu-1 signs its records: its unsigned ones are refused.
static SIGNERS: std::sync::LazyLock<verifier::enforcer_signature::EnforcerKeys> =
    std::sync::LazyLock::new(|| {
        verifier::enforcer_signature::EnforcerKeys::new(vec![enforcer().verifier()])
    });

/// Records signed by their enforcer (specs/signed-record.md), in a CBOR
/// body or sequence, checked with gw-eu-1's key: every record taken signed
/// makes a leaf that reads back with a signature that verifies; and any
/// COSE_Sign1 that decodes encodes back to what it read.
pub fn signed_record(data: &[u8]) {
    use verifier::enforcer_signature::{EnforcerSignature, Signed};
    let sender = sender().with_signers(&SIGNERS);
    for format in [Format::Cbor, Format::CborSeq] {
        let Ok(items) = parse_body(format, data, &sender) else {
            continue;
        };
        for r in items.into_iter().flatten().filter(|r| r.leaf.is_signed()) {
            let leaf = r.leaf.finish("2026-12-06T00:00:00Z", "fuzz-writer");
            let mut logged = verifier::decision::LoggedDecision::from_leaf(leaf.bytes())
                .expect("a signed leaf reads back");
            assert_eq!(
                logged.check_signature(&SIGNERS),
                Ok(Signed::Verified {
                    key_id: enforcer().verifier().id()
                }),
                "a signature taken verifies from the leaf"
            );
        }
    }
    if let Ok(v) = verifier::cbor::decode(data) {
        if let Ok((sig, payload)) = EnforcerSignature::decode(&v) {
            let again = match payload {
                Some(p) => sig.encode_attached(p),
                None => sig.encode_detached(),
            };
            let back = verifier::cbor::decode(&again).expect("an encoding decodes");
            let (sig2, payload2) = EnforcerSignature::decode(&back).expect("and reads back");
            assert_eq!((sig2, payload2), (sig, payload), "a signature round-trips");
        }
    }
}

fn sender() -> Sender<'static> {
    Sender::relay("fuzz-writer")
}

/// A request body of records as CBOR, as `POST /v1/decisions` reads it;
/// also with a writer token bound to one enforcer.
pub fn record_cbor(data: &[u8]) {
    let _ = parse_body(Format::Cbor, data, &sender());
    let bound = Sender {
        enforcer: Some("gw-1"),
        ..Sender::relay("gw-1")
    };
    if let Ok(items) = parse_body(Format::Cbor, data, &bound) {
        for r in items.into_iter().flatten() {
            // A record that passed is canonical: checking its bytes again
            // gives the same bytes.
            let again = verifier::cbor::decode(r.cbor()).expect("a checked record decodes");
            let twice = ingest::check(&again).expect("a checked record checks again");
            assert_eq!(twice.cbor(), r.cbor(), "checking is a fixed point");
        }
    }
}

/// The fast path of record checking against the reference, in every
/// format: the same answer for any bytes.
pub fn record_fast(data: &[u8]) {
    use ingest::input::parse_reference;
    let senders = [
        sender(),
        Sender {
            enforcer: Some("gw-eu-1"),
            ..Sender::relay("gw-eu-1")
        },
        sender().with_signers(&SIGNERS),
        // Retention removed what was received before the seeds' time.
        sender().keeping_from(verifier::timestamp::Timestamp::parse_text(
            "2026-11-23T07:00:00.1Z",
        )),
    ];
    for format in [Format::Cbor, Format::Json, Format::CborSeq] {
        for s in &senders {
            assert_eq!(
                parse_body(format, data, s),
                parse_reference(format, data, s),
                "{format:?}"
            );
        }
    }
    // A sequence as it arrives: each complete item is answered as the
    // reference answers that item alone.
    for s in &senders {
        let mut at = 0;
        while let Some(Ok((n, item))) = ingest::input::next_item(&data[at..], 0, s) {
            let alone = parse_reference(Format::CborSeq, &data[at..at + n], s);
            assert_eq!(Ok(vec![item]), alone, "item at byte {at}");
            assert!(n > 0, "an item takes bytes");
            at += n;
        }
    }
}

/// A request body of records as JSON.
pub fn record_json(data: &[u8]) {
    let _ = parse_body(Format::Json, data, &sender());
}

/// A CBOR sequence, read whole and as it arrives in pieces.
pub fn cbor_seq(data: &[u8]) {
    let _ = parse_body(Format::CborSeq, data, &sender());
    let mut at = 0;
    while at < data.len() {
        match verifier::cbor::decode_prefix(&data[at..]) {
            Ok(verifier::cbor::Prefix::Item(_, used)) if used > 0 => at += used,
            _ => break,
        }
    }
}

/// An OPA decision-log upload: a JSON array of events, each mapped to a
/// record and checked.
pub fn opa_event(data: &[u8]) {
    let Ok(serde_json::Value::Array(events)) = serde_json::from_slice(data) else {
        return;
    };
    for (i, e) in events.iter().enumerate() {
        let mapped = api::opa::event_to_record(e);
        let record: Value = ingest::record::from_json(&mapped);
        let _ = check_record(&record, i, &sender());
    }
}

/// A Kubernetes audit webhook upload: an EventList, each event mapped to
/// a record (or passed over) and checked.
pub fn kubernetes_audit(data: &[u8]) {
    let Ok(list) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Some(items) = list.get("items").and_then(serde_json::Value::as_array) else {
        return;
    };
    for (i, e) in items.iter().enumerate() {
        if let Some(mapped) = api::kubernetes::event_to_record(e, "fuzz-cluster", "v1") {
            let record: Value = ingest::record::from_json(&mapped);
            let _ = check_record(&record, i, &sender());
        }
    }
}

/// Search parameters, as a query string splits them.
pub fn search_params(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let params: Vec<(&str, &str)> = text
        .split('&')
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let _ = ingest::query::Query::from_params(params);
}

/// Deterministic CBOR: whatever decodes re-encodes to a fixed point.
pub fn cbor(data: &[u8]) {
    if let Ok(v) = verifier::cbor::decode(data) {
        let once = verifier::cbor::encode(&v);
        let back = verifier::cbor::decode(&once).expect("an encoding decodes");
        assert_eq!(
            verifier::cbor::encode(&back),
            once,
            "encoding is a fixed point"
        );
        assert!(verifier::cbor::is_deterministic(&once));
    }
    if let Some(v) = verifier::cbor::decode_canonical(data) {
        assert_eq!(
            verifier::cbor::encode(&v),
            data,
            "one-pass reading of a canonical item"
        );
    }
    let _ = verifier::cbor::decode_prefix(data);
}

/// A leaf: its envelope and the decision read from it.
pub fn leaf(data: &[u8]) {
    // `received_at` read off the bytes (as an audit reads it) is what
    // decoding the leaf gives, wherever decoding gives anything.
    let fast = verifier::envelope::received_at(data);
    if let Ok(env) = verifier::envelope::Envelope::decode(data) {
        assert_eq!(fast, Some(env.received_at.as_str()));
        assert_eq!(
            verifier::envelope::submitted_by(data),
            Some(env.submitted_by.as_str())
        );
    }
    let _ = verifier::envelope::decision_id(data);
    // An erasure record names a leaf before its own.
    if let Ok(Some(e)) = verifier::erasure::read(1 << 40, data) {
        assert!(e.index < 1 << 40);
    }
    // A retention record names a first kept leaf before its own.
    if let Ok(Some(r)) = verifier::retention::read(1 << 40, data) {
        assert!(r.first_kept < 1 << 40);
    }
    let _ = verifier::cbor::item_len(data);
    let _ = verifier::decision::LoggedDecision::from_leaf(data);
}

/// Signed notes, checkpoint bodies, key strings.
pub fn note(data: &[u8]) {
    let _ = verifier::note::Note::parse(data);
    let _ = verifier::checkpoint::open(data, &key());
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = verifier::Checkpoint::parse_body(s);
        let _ = VerifierKey::parse(s);
        let _ = SignerKey::parse(s);
    }
}

/// A C2SP tlog-proof: the proof, then the entry it proves.
pub fn tlog_proof(data: &[u8]) {
    let parts = frames(data);
    let (proof, entry) = match parts.as_slice() {
        [p, e, ..] => (*p, *e),
        _ => (data, &b"entry"[..]),
    };
    let _ = verifier::tlog_proof::verify(proof, entry, &key());
}

/// A consistency-proof file and the two checkpoints it links.
pub fn consistency(data: &[u8]) {
    let parts = frames(data);
    let (file, old, new) = match parts.as_slice() {
        [f, o, n, ..] => (*f, *o, *n),
        _ => (data, data, data),
    };
    if let Ok(f) = verifier::consistency_file::ConsistencyFile::parse(file) {
        let _ = f.verify(old, new, &key());
    }
}

/// Tile paths (one spelling per tile) and entry bundles.
pub fn tiles(data: &[u8]) {
    let _ = verifier::tile::decode_bundle(data);
    // A mirror's frontier file: one that parses is written back as one
    // that parses to the same frontier.
    if let Some(f) = verifier::mirror::parse_frontier(data) {
        let text = verifier::mirror::frontier_text(&f);
        assert_eq!(verifier::mirror::parse_frontier(text.as_bytes()), Some(f));
    }
    let _ = verifier::note::parse_key_lines(data);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(t) = verifier::tile::Tile::parse_path(s) {
            assert_eq!(t.path(), s, "one spelling per tile");
            let _ = verifier::tile::decode_bundle_of(&t, data);
        }
    }
}

/// Text for a terminal holds no character that moves the cursor, changes
/// the terminal or reorders text, but its own line breaks
/// (verifier::shown).
fn assert_printable(text: &str) {
    let bad = text
        .chars()
        .find(|&c| c != '\n' && verifier::shown::is_unsafe(c));
    assert!(bad.is_none(), "{bad:?} in an account: {text:?}");
}

/// An evidence file; its text account is printable.
pub fn evidence(data: &[u8]) {
    if let Ok(v) = verifier::evidence::verify(data, &key()) {
        let text =
            verifier::account::decision_text(v.index, &v.checkpoint, "checkpoint", &v.logged);
        assert_printable(&text);
        let _ = verifier::account::decision_json(v.index, &v.checkpoint, &v.logged);
    }
}

/// A chain bundle; its text account is printable.
pub fn chain(data: &[u8]) {
    if let Ok(v) = verifier::chain::verify(data, &key()) {
        assert_printable(&verifier::account::chain_text(&v));
        let _ = verifier::account::chain_json(&v);
    }
}

/// A COSE receipt and the leaf it is for.
pub fn receipt(data: &[u8]) {
    let parts = frames(data);
    let (receipt, leaf) = match parts.as_slice() {
        [r, l, ..] => (*r, *l),
        _ => (data, &b"entry"[..]),
    };
    let _ = verifier::receipt::verify(receipt, leaf, &key());
}

/// An export package: manifest, checkpoint, report, leaves, JSON lines,
/// CSV and OCSF, in that order.
pub fn export(data: &[u8]) {
    let parts = frames(data);
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let src = verifier::export::Sources {
        manifest: part(0).to_vec(),
        checkpoint: part(1).to_vec(),
        report: part(2).to_vec(),
        leaves: part(3),
        jsonl: part(4),
        csv: part(5),
        ocsf: part(6),
    };
    if let Ok(verdict) = verifier::export::verify(src, &key(), |_, _| {}) {
        assert_printable(&verdict.to_string());
    }
}

/// The public key of [`pq_witness_signer`], made once (key generation is
/// the slow part of ML-DSA).
fn pq_witness_verifier() -> verifier::cosignature::WitnessKey {
    static KEY: std::sync::OnceLock<verifier::cosignature::WitnessKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| pq_witness_signer().verifier()).clone()
}

/// A witness's `add-checkpoint` request, checked against no state and
/// against a held checkpoint of size 3, then a cosigned checkpoint
/// verified with the witness's key and an ML-DSA-44 witness's key; every
/// answer maps to an HTTP status.
pub fn witness(data: &[u8]) {
    use verifier::cosignature::{self, Policy};
    use verifier::witness::{add_checkpoint, AddCheckpoint, Latest};
    let parts = frames(data);
    let (body, cosigned) = match parts.as_slice() {
        [b, c, ..] => (*b, *c),
        _ => (data, data),
    };
    let w = witness_signer();
    if let Ok(req) = AddCheckpoint::parse(body) {
        assert_eq!(
            AddCheckpoint::parse(req.to_body().as_bytes()).ok(),
            Some(req.clone())
        );
        let held = Latest {
            size: 3,
            root: verifier::Hash::empty(),
        };
        for latest in [None, Some(&held)] {
            match add_checkpoint(&req, &[key()], latest, &w, 0) {
                Ok((_, line)) => {
                    let signed = format!("{}{line}", req.checkpoint);
                    assert_eq!(
                        cosignature::verify(signed.as_bytes(), &[w.verifier()]).map(|c| c.len()),
                        Ok(1)
                    );
                }
                Err(e) => assert!(matches!(e.status(), 400 | 403 | 404 | 409 | 422)),
            }
        }
    }
    let pq = pq_witness_verifier();
    let policy = Policy::new(vec![w.verifier(), pq], Some(1)).expect("one of two");
    let _ = cosignature::witnessing(cosigned, &key(), &policy);
    let _ = verifier::cosignature::open_witnessed(cosigned, &key(), &policy);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = cosignature::WitnessKey::parse(s);
        let _ = cosignature::WitnessSigner::parse(s);
    }
}

/// A client certificate's DER, as a mutual-TLS client presents it: its
/// URI and DNS names are read (for tokens bound to one) without panicking,
/// each one a name the certificate is found to carry.
pub fn client_cert(data: &[u8]) {
    let peer = api::peer::PeerNames::of_der(data);
    for name in &peer.names {
        assert!(peer.contains(name));
    }
}
