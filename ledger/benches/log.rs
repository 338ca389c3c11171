//! Append throughput and proof cost, next to raw RocksDB in the same run.
//!
//! `make bench` (= `cargo bench --profile dev -p ledger`). The baseline
//! `raw_rocksdb` writes the same entry bytes under the same keys in one
//! WriteBatch with sync, without the tree; `ledger_append` adds every node
//! hash and the size to that batch.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ledger::Log;
use verifier::consistency::verify_consistency;
use verifier::inclusion::verify_inclusion;
use verifier::{leaf_hash, SignerKey};

fn signer() -> SignerKey {
    SignerKey::from_seed("bench.example/log", &[9; 32]).unwrap()
}

/// ~512-byte entries, varied so compression or dedup cannot help.
fn entries(start: u64, n: u64, len: usize) -> Vec<Vec<u8>> {
    (start..start + n)
        .map(|i| {
            let mut e = format!("decision {i} ").into_bytes();
            let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            while e.len() < len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                e.push(b'a' + (x % 26) as u8);
            }
            e
        })
        .collect()
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.sample_size(20);
    for batch in [1u64, 100, 10_000] {
        g.throughput(Throughput::Elements(batch));
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), &signer().verifier()).unwrap();
        g.bench_with_input(
            BenchmarkId::new("ledger_append", batch),
            &batch,
            |b, &batch| {
                b.iter_batched(
                    || entries(log.size(), batch, 512),
                    |e| log.append(&e).unwrap(),
                    BatchSize::PerIteration,
                )
            },
        );
        let raw_dir = tempfile::tempdir().unwrap();
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        let db = rocksdb::DB::open(&opts, raw_dir.path()).unwrap();
        let mut next = 0u64;
        g.bench_with_input(
            BenchmarkId::new("raw_rocksdb", batch),
            &batch,
            |b, &batch| {
                b.iter_batched(
                    || {
                        let e = (next, entries(next, batch, 512));
                        next += batch;
                        e
                    },
                    |(base, e)| {
                        let mut wb = rocksdb::WriteBatch::default();
                        for (i, entry) in e.iter().enumerate() {
                            wb.put((base + i as u64).to_be_bytes(), entry);
                        }
                        let mut w = rocksdb::WriteOptions::default();
                        w.set_sync(true);
                        db.write_opt(wb, &w).unwrap();
                    },
                    BatchSize::PerIteration,
                )
            },
        );
    }
    g.finish();
}

fn proofs(c: &mut Criterion) {
    const N: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), &signer().verifier()).unwrap();
    let mut start = 0;
    while start < N {
        log.append(&entries(start, 10_000, 256)).unwrap();
        start += 10_000;
    }
    let cp = log.sign_checkpoint(&signer()).unwrap();
    let root = cp.checkpoint.root;
    let mut g = c.benchmark_group("proofs_at_1e6");
    let mut i = 0u64;
    g.bench_function("inclusion_proof", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(log.inclusion_proof(i, N).unwrap())
        })
    });
    g.bench_function("consistency_proof", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(log.consistency_proof(i + 1, N).unwrap())
        })
    });
    let index = 123_457;
    let leaf = leaf_hash(&entries(index, 1, 256)[0]);
    let proof = log.inclusion_proof(index, N).unwrap();
    g.bench_function("verify_inclusion", |b| {
        b.iter(|| verify_inclusion(&leaf, index, N, black_box(&proof), &root).unwrap())
    });
    let old = 654_321;
    let old_root = log.root(old).unwrap();
    let cproof = log.consistency_proof(old, N).unwrap();
    g.bench_function("verify_consistency", |b| {
        b.iter(|| verify_consistency(old, N, &old_root, &root, black_box(&cproof)).unwrap())
    });
    let file = log.tlog_proof(index, None).unwrap().to_text();
    let entry = entries(index, 1, 256).remove(0);
    let key = signer().verifier();
    g.bench_function("verify_tlog_proof_file", |b| {
        b.iter(|| verifier::tlog_proof::verify(black_box(file.as_bytes()), &entry, &key).unwrap())
    });
    g.finish();
}

criterion_group!(benches, append, proofs);
criterion_main!(benches);
