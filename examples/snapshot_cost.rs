//! What an old snapshot costs: 100,000 keys (16-byte keys, 100-byte values), then 10 rounds of
//! overwriting 10,000 of them followed by a full compaction, in two databases side by side —
//! one holding a snapshot taken before the first round, one not — printing the table bytes of
//! each after every round, and checking the snapshot still reads the original values.
//!
//! `cargo run --release --example snapshot_cost`
use sedimentdb::{Db, Options, WriteBatch, WriteOptions};

const KEYS: u64 = 100_000;
const PER_ROUND: u64 = 10_000;
const ROUNDS: u64 = 10;

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(b"snapshot");
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

fn value(i: u64, round: u64) -> Vec<u8> {
    let mut v = vec![0u8; 100];
    v[..8].copy_from_slice(&i.to_le_bytes());
    v[8..16].copy_from_slice(&round.to_le_bytes());
    v
}

fn write_round(db: &Db, round: u64) {
    let unsynced = WriteOptions { sync: false };
    for j in 0..PER_ROUND {
        // Each round overwrites a different tenth of the keys... and round 0 writes them all.
        let n = if round == 0 { KEYS } else { PER_ROUND };
        if j >= n {
            break;
        }
        let i = if round == 0 {
            j
        } else {
            (round * 7_919 + j * 10) % KEYS
        };
        let mut b = WriteBatch::new();
        b.put(key(i), value(i, round));
        db.write(b, &unsynced).unwrap();
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let with = Db::open(dir.path().join("with"), Options::default()).unwrap();
    let without = Db::open(dir.path().join("without"), Options::default()).unwrap();
    for db in [&with, &without] {
        let unsynced = WriteOptions { sync: false };
        for i in 0..KEYS {
            let mut b = WriteBatch::new();
            b.put(key(i), value(i, 0));
            db.write(b, &unsynced).unwrap();
        }
        db.compact_range::<&[u8], _>(..).unwrap();
    }
    let snap = with.snapshot();
    println!("round | table bytes with a snapshot | without | pinned | versions kept for it");
    for round in 1..=ROUNDS {
        for db in [&with, &without] {
            write_round(db, round);
            db.compact_range::<&[u8], _>(..).unwrap();
        }
        let (a, b) = (with.stats(), without.stats());
        println!(
            "{round:>5} | {:>27} | {:>7} | {:>6} | {}",
            a.table_bytes,
            b.table_bytes,
            a.table_bytes as i64 - b.table_bytes as i64,
            a.versions_kept_for_snapshots
        );
    }
    for i in (0..KEYS).step_by(997) {
        assert_eq!(snap.get(key(i)).unwrap(), Some(value(i, 0)), "key {i}");
    }
    let overwritten: u64 = (0..KEYS)
        .filter(|i| with.get(key(*i)).unwrap() != Some(value(*i, 0)))
        .count() as u64;
    println!(
        "{overwritten} of {KEYS} keys overwritten since the snapshot; the snapshot still reads \
         every original value (checked 1 key in 997)"
    );
    drop(snap);
    with.compact_range::<&[u8], _>(..).unwrap();
    println!(
        "after releasing it and one more compaction: {} bytes (without: {})",
        with.stats().table_bytes,
        without.stats().table_bytes
    );
}
