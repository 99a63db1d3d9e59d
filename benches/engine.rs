//! Criterion benchmarks: 16-byte keys, 100-byte values, 1,000,000 keys, on the real filesystem.
//!
//! `cargo bench --bench engine` (set `SEDIMENTDB_BENCH_KEYS` to change the key count).
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sedimentdb::{Db, Options, WriteBatch, WriteOptions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn keys() -> u64 {
    std::env::var("SEDIMENTDB_BENCH_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

fn key(i: u64) -> [u8; 16] {
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&x.to_be_bytes());
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

const VALUE: [u8; 100] = [7u8; 100];

/// A cheap deterministic sequence of indices (xorshift), so lookups are random but repeatable.
struct Pick(u64);
impl Pick {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn loaded_db(n: u64, dir: &std::path::Path) -> Db {
    let db = Db::open(dir, Options::default()).unwrap();
    let unsynced = WriteOptions { sync: false };
    for i in 0..n {
        let mut b = WriteBatch::new();
        b.put(key(i), VALUE);
        db.write(b, &unsynced).unwrap();
    }
    db.flush().unwrap();
    db
}

fn puts(c: &mut Criterion) {
    let mut g = c.benchmark_group("put");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("unsynced"), Options::default()).unwrap();
    let mut i = 0u64;
    let unsynced = WriteOptions { sync: false };
    g.bench_function("unsynced", |b| {
        b.iter(|| {
            let mut wb = WriteBatch::new();
            wb.put(key(i), VALUE);
            db.write(wb, &unsynced).unwrap();
            i += 1;
        })
    });
    drop(db);
    for threads in [1u64, 8] {
        let db = Arc::new(
            Db::open(
                dir.path().join(format!("synced{threads}")),
                Options::default(),
            )
            .unwrap(),
        );
        let next = Arc::new(AtomicU64::new(0));
        g.bench_function(format!("synced_{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                let per = iters.div_ceil(threads);
                let start = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        let (db, next) = (db.clone(), next.clone());
                        s.spawn(move || {
                            for _ in 0..per {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                db.put(key(i), VALUE).unwrap();
                            }
                        });
                    }
                });
                // Time per put, counting all threads' puts.
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (per * threads) as f64)
            })
        });
    }
    g.finish();
}

fn reads(c: &mut Criterion) {
    let n = keys();
    let dir = tempfile::tempdir().unwrap();
    let db = loaded_db(n, dir.path());
    // The newest 10,000 keys stay in the memtable.
    let recent = 10_000u64;
    for i in n..n + recent {
        let mut b = WriteBatch::new();
        b.put(key(i), VALUE);
        db.write(b, &WriteOptions { sync: false }).unwrap();
    }
    let mut g = c.benchmark_group("get");
    g.throughput(Throughput::Elements(1));
    g.sample_size(30).measurement_time(Duration::from_secs(5));
    let mut p = Pick(0x2545_F491_4F6C_DD1D);
    g.bench_function("hit_memtable", |b| {
        b.iter(|| assert!(db.get(key(n + p.next(recent))).unwrap().is_some()))
    });
    g.bench_function("hit_tables", |b| {
        b.iter(|| assert!(db.get(key(p.next(n))).unwrap().is_some()))
    });
    g.bench_function("miss", |b| {
        b.iter(|| assert!(db.get(key(n + recent + p.next(n))).unwrap().is_none()))
    });
    g.finish();
    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Elements(100));
    g.sample_size(30).measurement_time(Duration::from_secs(5));
    g.bench_function("100_keys", |b| {
        b.iter_batched(
            || key(p.next(n)),
            |start| {
                let got = db.scan(&start[..]..).take(100).count();
                assert!(got > 0);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
    let s = db.stats();
    eprintln!(
        "stats: {} tables, filter skips {}, false positives {}",
        s.tables, s.filter_skips, s.filter_false_positives
    );
}

criterion_group!(benches, puts, reads);
criterion_main!(benches);
