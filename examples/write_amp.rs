//! Write amplification: unique random puts (16-byte keys, 100-byte values) into a database
//! with scaled-down sizes (4 MiB memtable, 4 MiB tables, 16 MiB level 1), so a few hundred MB
//! of writes pass through every level; then prints the bytes the process handed to `write`
//! (from `/proc/self/io`: WAL, flushes and compactions) per byte of user data, the table
//! count per level and the database size.
//!
//! `cargo run --release --example write_amp` (optionally `-- <keys>`, default 2,000,000).
use sedimentdb::{Db, Options, WriteBatch, WriteOptions};

fn key(i: u64) -> [u8; 16] {
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&x.to_be_bytes());
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

/// Bytes this process passed to write calls so far (Linux), if known.
fn written_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|n| n.trim().parse().ok())
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        memtable_size_bytes: 4 << 20,
        table_size_bytes: 4 << 20,
        level1_size_bytes: 16 << 20,
        ..Options::default()
    };
    let db = Db::open(dir.path().join("db"), opts).unwrap();
    let before = written_bytes();
    let unsynced = WriteOptions { sync: false };
    let value = [7u8; 100];
    for i in 0..n {
        let mut b = WriteBatch::new();
        b.put(key(i), value);
        db.write(b, &unsynced).unwrap();
    }
    db.flush().unwrap();
    db.compact().unwrap();
    let user = n * (16 + 100);
    let s = db.stats();
    match (before, written_bytes()) {
        (Some(a), Some(b)) => println!(
            "{n} puts, {:.1} MB of user data: {:.1} MB written, write amplification {:.2}",
            user as f64 / 1e6,
            (b - a) as f64 / 1e6,
            (b - a) as f64 / user as f64
        ),
        _ => println!("{n} puts: /proc/self/io is not available here"),
    }
    let levels: Vec<String> = s
        .levels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.tables > 0)
        .map(|(i, l)| format!("L{i}: {} tables {:.1} MB", l.tables, l.bytes as f64 / 1e6))
        .collect();
    println!(
        "{}; database {:.1} MB",
        levels.join(", "),
        s.table_bytes as f64 / 1e6
    );
}
