//! Criterion benchmarks of the read API: point gets with 0, 100 and 10,000 live range
//! tombstones, and a full scan forward and in reverse over the same 1,000,000 keys (16-byte
//! keys, 100-byte values), on the real filesystem.
//!
//! `cargo bench --bench read_api` (set `SEDIMENTDB_BENCH_KEYS` to change the key count).
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sedimentdb::{Db, Options, WriteBatch, WriteOptions};
use std::time::Duration;

fn keys() -> u64 {
    std::env::var("SEDIMENTDB_BENCH_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

/// Keys in index order (big-endian), so range tombstones can cover runs of them.
fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(b"rangekey");
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

const VALUE: [u8; 100] = [7u8; 100];

struct Pick(u64);
impl Pick {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn load(db: &Db, n: u64) {
    let unsynced = WriteOptions { sync: false };
    for i in 0..n {
        let mut b = WriteBatch::new();
        b.put(key(i), VALUE);
        db.write(b, &unsynced).unwrap();
    }
    db.flush().unwrap();
}

/// A get of a live key, with `tombstones` range tombstones each deleting one odd key spread
/// over the whole key space (so they are in the tables the gets probe), flushed.
fn gets_with_range_tombstones(c: &mut Criterion) {
    let n = keys().min(200_000);
    let mut g = c.benchmark_group("get_with_range_tombstones");
    g.throughput(Throughput::Elements(1));
    g.sample_size(30).measurement_time(Duration::from_secs(4));
    for tombstones in [0u64, 100, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Options::default()).unwrap();
        load(&db, n);
        let step = (n / tombstones.max(1)).max(2);
        for t in 0..tombstones {
            let i = (t * step) | 1;
            db.delete_range(key(i)..key(i + 1)).unwrap();
        }
        db.flush().unwrap();
        let st = db.stats();
        assert_eq!(st.table_range_tombstones, tombstones, "{st:?}");
        let mut p = Pick(0x2545_F491_4F6C_DD1D);
        g.bench_function(format!("{tombstones}"), |b| {
            // Even keys: never deleted.
            b.iter(|| assert!(db.get(key(p.next(n) & !1)).unwrap().is_some()))
        });
    }
    g.finish();
}

fn full_scans(c: &mut Criterion) {
    let n = keys();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    load(&db, n);
    db.compact_range::<&[u8], _>(..).unwrap();
    let mut g = c.benchmark_group("full_scan");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("forward", |b| {
        b.iter(|| assert_eq!(db.iter().count() as u64, n))
    });
    g.bench_function("reverse", |b| {
        b.iter(|| assert_eq!(db.iter().rev().count() as u64, n))
    });
    g.finish();
}

criterion_group!(benches, gets_with_range_tombstones, full_scans);
criterion_main!(benches);
