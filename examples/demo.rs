//! The main job: writes, reads back, deletes, reopens and verifies 1,000,000 keys in a
//! temporary directory on the real filesystem, printing throughput and stats.
//!
//! `cargo run --release --example demo` (optionally `-- <keys> [<dir to keep the database in>]`).
use sedimentdb::{Db, Options, WriteBatch, WriteOptions};
use std::time::Instant;

fn key(i: u64) -> [u8; 16] {
    // 16-byte keys in a scattered order, so writes are random, not sequential.
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&x.to_be_bytes());
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

fn value(i: u64, round: u8) -> [u8; 100] {
    let mut v = [round; 100];
    v[..8].copy_from_slice(&i.to_le_bytes());
    v
}

fn rate(n: u64, t: Instant) -> String {
    let s = t.elapsed().as_secs_f64();
    format!("{n} in {s:.2} s = {:.0}/s", n as f64 / s)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let path = match std::env::args().nth(2) {
        Some(keep) => std::path::PathBuf::from(keep),
        None => dir.path().join("demo-db"),
    };
    println!(
        "sedimentdb demo: {n} keys (16-byte keys, 100-byte values) in {}",
        path.display()
    );
    let db = Db::open(&path, Options::default())?;
    let unsynced = WriteOptions { sync: false };

    let t = Instant::now();
    for i in 0..n {
        let mut b = WriteBatch::new();
        b.put(key(i), value(i, 1));
        db.write(b, &unsynced)?;
    }
    db.sync()?;
    println!("write unsynced puts:      {}", rate(n, t));

    let synced_n = (n / 100).clamp(100, 2000);
    let t = Instant::now();
    for i in 0..synced_n {
        db.put(key(i), value(i, 1))?;
    }
    println!("write synced puts:        {}", rate(synced_n, t));

    let t = Instant::now();
    for i in 0..n {
        let got = db.get(key(i))?;
        if got.as_deref() != Some(&value(i, 1)[..]) {
            return Err(format!("key {i}: wrong value after write").into());
        }
    }
    println!("read (memtable + tables): {}", rate(n, t));

    let t = Instant::now();
    for i in (0..n).step_by(10) {
        let mut b = WriteBatch::new();
        b.delete(key(i));
        db.write(b, &unsynced)?;
    }
    db.sync()?;
    println!("delete every 10th key:    {}", rate(n / 10, t));

    let t = Instant::now();
    db.flush()?;
    println!(
        "flush:                    {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let s = db.stats();
    println!(
        "stats before reopen: {} tables ({} bytes, {} entries, {} tombstones), {} flushes, {} WAL syncs",
        s.tables, s.table_bytes, s.table_entries, s.table_tombstones, s.flushes, s.wal_syncs
    );
    db.close()?;

    let t = Instant::now();
    let db = Db::open(&path, Options::default())?;
    println!(
        "reopen:                   {:.3} s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    for i in 0..n {
        let got = db.get(key(i))?;
        let v = value(i, 1);
        let want = (i % 10 != 0).then_some(&v[..]);
        if got.as_deref() != want {
            return Err(format!("key {i}: wrong value after reopen").into());
        }
    }
    println!("verify after reopen:      {}", rate(n, t));

    let t = Instant::now();
    let mut count = 0u64;
    for kv in db.iter() {
        kv?;
        count += 1;
    }
    let want = n - n.div_ceil(10);
    if count != want {
        return Err(format!("full scan found {count} keys, expected {want}").into());
    }
    println!("full scan:                {}", rate(count, t));
    let s = db.stats();
    println!(
        "stats: tables {} ({} bytes), filter skips {}, filter false positives {} ({:.2}% of probes), wal syncs {}",
        s.tables,
        s.table_bytes,
        s.filter_skips,
        s.filter_false_positives,
        100.0 * s.filter_false_positives as f64 / (s.filter_skips + s.filter_false_positives).max(1) as f64,
        s.wal_syncs
    );
    println!("{s}");
    db.close()?;
    println!("ok: all {n} keys verified");
    Ok(())
}
