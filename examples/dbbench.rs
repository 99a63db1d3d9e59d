//! A db_bench of our own: named benchmarks in one process on the real filesystem, each printing
//! operations a second, p50 and p99 latency, bytes written per user byte, the database size,
//! the peak RSS so far and the write stalls.
//!
//! ```text
//! cargo run --release --example dbbench -- --num 1000000 \
//!     --benchmarks fillseq,fillrandom,overwrite,readrandom,readmissing,seekrandom,readseq,fillsync,fillsync_mt8,fsynclimit
//! ```
//! `fillrandom` and the benchmarks after it share one database; `fillseq` has its own. The
//! database size is that of its live files: the tables of the current version (`Stats::
//! table_bytes`) and every file that is not a table (WALs, manifest); the outputs of a
//! compaction still running are not counted (its inputs are, until it finishes).
//! `compact` (not in the default list) compacts the shared database's whole key range into its
//! last level and prints the time it took (as one operation), what it wrote and the size after.
//! `fsynclimit` is the disk's limit for synced puts: a loop of small positional writes, each
//! followed by `fdatasync`, into a file of a fixed size on the same disk.
//!
//! With `--svg PATH` it also draws an SVG chart of the single-threaded fill benchmarks
//! (`fillseq`, `fillrandom`, `overwrite`, `fillsync`): for each, the bytes in each level and the
//! write rate (writes a second per sample interval, red points where a write stalled).
#[path = "plot/mod.rs"]
mod plot;

use clap::Parser;
use hdrhistogram::Histogram;
use sedimentdb::{Compression, Db, Options, WriteBatch, WriteOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Benchmarks sedimentdb as db_bench does RocksDB")]
struct Args {
    /// Keys per benchmark.
    #[arg(long, default_value_t = 1_000_000)]
    num: u64,
    /// Comma-separated benchmarks, run in order (also `compact`: the whole key range into the
    /// last level; `settle`: the compactions the level targets still call for).
    #[arg(
        long,
        default_value = "fillseq,fillrandom,overwrite,readrandom,readmissing,seekrandom,readseq,fillsync,fillsync_mt8,fsynclimit"
    )]
    benchmarks: String,
    /// How keys are made from key numbers (dbbench: as db_bench does).
    #[arg(long, value_enum, default_value = "dbbench")]
    keys: KeyLayout,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Synced puts in `fillsync` (and per thread in `fillsync_mt8`, divided by 8).
    #[arg(long, default_value_t = 10_000)]
    sync_ops: u64,
    /// `Options::block_cache_bytes`.
    #[arg(long, default_value_t = 0)]
    cache_bytes: usize,
    /// The codec of every level: none, lz4 or zstd (zstd needs `--features zstd`).
    #[arg(long, default_value = "lz4")]
    compression: String,
    /// `Options::wal_preallocate_bytes` (0: the WAL is appended to).
    #[arg(long, default_value_t = 1 << 20)]
    wal_preallocate: u64,
    /// `Options::wal_compression`: lz4 or none.
    #[arg(long, default_value = "lz4")]
    wal_compression: String,
    /// `Options::l0_compaction_trigger` (the slowdown and stop triggers at least twice and three
    /// times it; default: the engine's).
    #[arg(long)]
    l0_trigger: Option<usize>,
    /// `Options::compaction_threads`: compactions on disjoint tables and key ranges run at once.
    #[arg(long, default_value_t = 1)]
    compaction_threads: usize,
    /// `Options::level1_size_bytes` in MiB (default: the engine's default).
    #[arg(long)]
    level1_mib: Option<u64>,
    /// `Options::table_size_bytes` in MiB (default: the engine's default).
    #[arg(long)]
    table_mib: Option<u64>,
    /// `Options::dynamic_level_bytes`: level targets derived from the last level's size.
    #[arg(long)]
    dynamic_levels: bool,
    /// Where the databases go (default: a temporary directory).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Also write an SVG chart here (default: none): for each of fillseq, fillrandom, overwrite
    /// and fillsync, the bytes per level (and in the memtable) and the write rate with stalls
    /// marked, from 400 samples of `Db::stats` each (their cost counts in those benchmarks'
    /// times). fillsync_mt8 is not drawn.
    #[arg(long, value_name = "PATH")]
    svg: Option<std::path::PathBuf>,
    /// Print the engine's statistics (per level: bytes written and read) after the last
    /// benchmark that used the shared database.
    #[arg(long)]
    stats: bool,
}

/// How the benchmark's 16-byte keys are made from key numbers.
#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum KeyLayout {
    /// As db_bench makes them: the key number as 8 big-endian bytes, then eight `'0'` bytes;
    /// `fillrandom` writes the numbers `0..num` once each, in a pseudo-random order.
    Dbbench,
    /// 8 bytes of a hash of the key number, then the number (8 big-endian bytes): neighbours
    /// share few bytes, so keys compress less; `fillrandom` writes them in number order, which
    /// the hash makes random.
    Hashed,
}

impl KeyLayout {
    fn key(self, i: u64) -> [u8; 16] {
        let mut k = [0u8; 16];
        match self {
            KeyLayout::Dbbench => {
                k[..8].copy_from_slice(&i.to_be_bytes());
                k[8..].copy_from_slice(b"00000000");
            }
            KeyLayout::Hashed => {
                k[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
                k[8..].copy_from_slice(&i.to_be_bytes());
            }
        }
        k
    }

    /// The key that `fillseq` writes `i`-th: ascending.
    fn seq_key(self, i: u64) -> [u8; 16] {
        match self {
            KeyLayout::Dbbench => self.key(i),
            KeyLayout::Hashed => {
                let mut k = [0u8; 16];
                k[8..].copy_from_slice(&i.to_be_bytes());
                k
            }
        }
    }

    /// The key number that `fillrandom` writes `i`-th, for `i` in `0..n`: each of `0..n`
    /// once.
    fn fill_number(self, i: u64, n: u64) -> u64 {
        match self {
            KeyLayout::Dbbench => permute(i, n),
            KeyLayout::Hashed => i,
        }
    }
}

/// A pseudo-random permutation of `0..n` without a table: an invertible mix on the smallest
/// power of two holding `n` (odd multiplications and right xorshifts), walked until it lands
/// below `n` (fewer than two steps on average).
fn permute(i: u64, n: u64) -> u64 {
    let bits = 64 - n.max(2).saturating_sub(1).leading_zeros();
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    };
    let mix = |mut x: u64| {
        for m in [
            0x9E37_79B9_7F4A_7C15u64,
            0xBF58_476D_1CE4_E5B9,
            0x94D0_49BB_1331_11EB,
        ] {
            x = x.wrapping_mul(m) & mask;
            x ^= x >> (bits / 2 + 1);
        }
        x
    };
    let mut x = mix(i);
    while x >= n {
        x = mix(x);
    }
    x
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A value that compresses about 2:1, as db_bench's (`CompressibleString`): half of it random
/// printable bytes, the other half the same bytes again.
fn value(size: usize, i: u64) -> Vec<u8> {
    let mut r = Rng(i.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
    let half: Vec<u8> = (0..size.div_ceil(2))
        .map(|_| b' ' + r.below(95) as u8)
        .collect();
    half.iter().chain(half.iter()).take(size).copied().collect()
}

fn proc_field(file: &str, name: &str) -> Option<u64> {
    let s = std::fs::read_to_string(file).ok()?;
    let line = s.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

fn written() -> u64 {
    proc_field("/proc/self/io", "wchar:").unwrap_or(0)
}

fn peak_rss_mib() -> f64 {
    proc_field("/proc/self/status", "VmHWM:").unwrap_or(0) as f64 / 1024.0
}

/// Bytes of the database's live files: its live tables and every file that is not a table.
fn live_bytes(db: &Db, p: &Path) -> u64 {
    let others: u64 = std::fs::read_dir(p)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_none_or(|x| x != "sst"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    db.stats().table_bytes + others
}

/// A latency histogram in nanoseconds (1 ns to 100 s, three significant digits): a few
/// hundred KiB whatever the run's length, where a sample per operation took 16 bytes each.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid bounds")
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// Latencies of one benchmark, and what it wrote.
struct Run {
    lat: Histogram<u64>,
    elapsed: Duration,
    user_bytes: u64,
    written: u64,
}

impl Run {
    /// Times `ops` calls of `f`; with a sampler, samples the database's stats as they go.
    fn time(
        ops: u64,
        user_bytes: u64,
        mut sampler: Option<(&Db, &mut plot::Sampler)>,
        mut f: impl FnMut(u64),
    ) -> Run {
        let w0 = written();
        let mut lat = histogram();
        let t0 = Instant::now();
        for i in 0..ops {
            let t = Instant::now();
            f(i);
            lat.saturating_record(nanos(t.elapsed()));
            if let Some((db, s)) = sampler.as_mut() {
                s.tick(db, i + 1);
            }
        }
        Run {
            elapsed: t0.elapsed(),
            lat,
            user_bytes,
            written: written() - w0,
        }
    }

    fn print(self, name: &str, db: Option<&Db>, dir: &Path) {
        let pct = |p: f64| self.lat.value_at_quantile(p) as f64 / 1e3;
        let ops = self.lat.len() as f64 / self.elapsed.as_secs_f64();
        let amp = if self.user_bytes > 0 {
            format!("{:.2}", self.written as f64 / self.user_bytes as f64)
        } else {
            "-".into()
        };
        let stalls = db.map_or("0".to_string(), |d| {
            let s = d.stats();
            format!("{} ({} ms)", s.write_stalls, s.write_stall_ms)
        });
        let size = match db {
            Some(d) => format!("{:.1}", live_bytes(d, dir) as f64 / (1 << 20) as f64),
            None => "-".into(),
        };
        println!(
            "{name:<13} {ops:>12.0} ops/s  p50 {:>8.1} us  p99 {:>8.1} us  written/user {amp:>6}  db {size:>8} MiB  rss {:>7.1} MiB  stalls {stalls}",
            pct(0.5),
            pct(0.99),
            peak_rss_mib()
        );
    }
}

fn main() {
    let a = Args::parse();
    let tmp = tempfile::tempdir().unwrap();
    let root = a.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    if let Err(e) = std::fs::create_dir_all(&root) {
        eprintln!("dbbench: cannot create {}: {e}", root.display());
        std::process::exit(2);
    }
    let codec = match a.compression.as_str() {
        "none" => Compression::None,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd(3),
        c => panic!("unknown codec {c}: none, lz4 or zstd"),
    };
    let wal_codec = match a.wal_compression.as_str() {
        "none" => Compression::None,
        "lz4" => Compression::Lz4,
        c => panic!("unknown WAL codec {c}: none or lz4"),
    };
    let base = Options::default();
    let opts = Options {
        level1_size_bytes: a.level1_mib.map_or(base.level1_size_bytes, |m| m << 20),
        table_size_bytes: a.table_mib.map_or(base.table_size_bytes, |m| m << 20),
        block_cache_bytes: a.cache_bytes,
        compression_per_level: vec![codec],
        wal_preallocate_bytes: a.wal_preallocate,
        wal_compression: wal_codec,
        l0_compaction_trigger: a.l0_trigger.unwrap_or(base.l0_compaction_trigger),
        l0_slowdown_writes_trigger: a.l0_trigger.map_or(base.l0_slowdown_writes_trigger, |t| {
            (2 * t).max(base.l0_slowdown_writes_trigger)
        }),
        l0_stop_writes_trigger: a.l0_trigger.map_or(base.l0_stop_writes_trigger, |t| {
            (3 * t).max(base.l0_stop_writes_trigger)
        }),
        compaction_threads: a.compaction_threads,
        dynamic_level_bytes: a.dynamic_levels,
        ..Options::default()
    };
    let unsynced = WriteOptions { sync: false };
    let n = a.num;
    let vs = a.value_size;
    let keys = a.keys;
    let main_dir = root.join("db");
    let mut db: Option<Arc<Db>> = None;
    let open = |db: &mut Option<Arc<Db>>| -> Arc<Db> {
        db.get_or_insert_with(|| Arc::new(Db::open(&main_dir, opts.clone()).unwrap()))
            .clone()
    };
    println!(
        "sedimentdb dbbench: {n} keys, 16-byte keys ({}), {vs}-byte values, block cache {} \
         bytes, {} blocks",
        match keys {
            KeyLayout::Dbbench => "db_bench's layout",
            KeyLayout::Hashed => "hashed",
        },
        a.cache_bytes,
        a.compression
    );
    // The chart's runs, and a sampler for a fill benchmark of `ops` writes when one is asked for.
    let mut charted: Vec<plot::Run> = Vec::new();
    let sampler = |b: &str, d: &Db, ops: u64| {
        a.svg
            .as_ref()
            .map(|_| plot::Sampler::new(b, d, ops, 16 + vs as u64))
    };
    for b in a
        .benchmarks
        .split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        match b {
            "fillseq" => {
                let dir = root.join("fillseq");
                let d = Db::open(&dir, opts.clone()).unwrap();
                let mut s = sampler(b, &d, n);
                let r = Run::time(n, n * (16 + vs as u64), s.as_mut().map(|s| (&d, s)), |i| {
                    let mut w = WriteBatch::new();
                    w.put(keys.seq_key(i), value(vs, i));
                    d.write(w, &unsynced).unwrap();
                });
                charted.extend(s.map(|s| s.finish(&d, n)));
                d.flush().unwrap();
                r.print(b, Some(&d), &dir);
            }
            "fillrandom" | "overwrite" => {
                let d = open(&mut db);
                let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ b.len() as u64);
                let mut s = sampler(b, &d, n);
                let r = Run::time(n, n * (16 + vs as u64), s.as_mut().map(|s| (&*d, s)), |i| {
                    let k = if b == "fillrandom" {
                        keys.fill_number(i, n)
                    } else {
                        rng.below(n)
                    };
                    let mut w = WriteBatch::new();
                    w.put(keys.key(k), value(vs, i));
                    d.write(w, &unsynced).unwrap();
                });
                charted.extend(s.map(|s| s.finish(&d, n)));
                d.flush().unwrap();
                r.print(b, Some(&d), &main_dir);
            }
            "settle" => {
                // The compactions the level targets still call for after a fill, so that
                // `--stats` then counts a settled tree's writes (fill and settle together).
                let d = open(&mut db);
                let mut r = Run::time(1, 0, None, |_| d.compact().unwrap());
                r.user_bytes = n * (16 + vs as u64);
                r.print(b, Some(&d), &main_dir);
            }
            "compact" => {
                let d = open(&mut db);
                let mut r = Run::time(1, 0, None, |_| {
                    d.compact_range::<&[u8], _>(..).unwrap();
                });
                // Per user byte of the keys the database holds (`--num` of them).
                r.user_bytes = n * (16 + vs as u64);
                r.print(b, Some(&d), &main_dir);
            }
            "readrandom" | "readmissing" => {
                let d = open(&mut db);
                let mut rng = Rng(0x9E37_79B9);
                let missing = b == "readmissing";
                let r = Run::time(n, 0, None, |_| {
                    let k = rng.below(n) + if missing { n } else { 0 };
                    let got = d.get(keys.key(k)).unwrap();
                    assert_eq!(got.is_some(), !missing);
                });
                r.print(b, Some(&d), &main_dir);
            }
            "seekrandom" => {
                let d = open(&mut db);
                let mut rng = Rng(0x1234_5678);
                let r = Run::time((n / 100).max(1), 0, None, |_| {
                    let mut c = d.cursor::<&[u8], _>(..);
                    c.seek(keys.key(rng.below(n)));
                    for _ in 0..100 {
                        if !c.valid() {
                            break;
                        }
                        c.next();
                    }
                    c.status().unwrap();
                });
                r.print("seek+100next", Some(&d), &main_dir);
            }
            "readseq" => {
                let d = open(&mut db);
                let t = Instant::now();
                let mut count = 0u64;
                // A cursor, as db_bench's iterator: borrowed keys and values, nothing
                // allocated per entry (`Db::iter` hands each entry over as two `Vec`s).
                let mut c = d.cursor::<&[u8], _>(..);
                c.seek_to_first();
                while c.valid() {
                    std::hint::black_box((c.key(), c.value()));
                    count += 1;
                    c.next();
                }
                c.status().unwrap();
                let el = t.elapsed();
                println!(
                    "{b:<13} {:>12.0} entries/s ({count} entries in {:.2} s)",
                    count as f64 / el.as_secs_f64(),
                    el.as_secs_f64()
                );
            }
            "fillsync" => {
                let d = open(&mut db);
                let mut s = sampler(b, &d, a.sync_ops);
                let r = Run::time(
                    a.sync_ops,
                    a.sync_ops * (16 + vs as u64),
                    s.as_mut().map(|s| (&*d, s)),
                    |i| {
                        d.put(keys.key(n + i), value(vs, i)).unwrap();
                    },
                );
                charted.extend(s.map(|s| s.finish(&d, a.sync_ops)));
                r.print(b, Some(&d), &main_dir);
            }
            "fillsync_mt8" => {
                let d = open(&mut db);
                let per = (a.sync_ops / 8).max(1);
                let w0 = written();
                let t = Instant::now();
                let lats: Vec<Histogram<u64>> = std::thread::scope(|s| {
                    let hs: Vec<_> = (0..8u64)
                        .map(|th| {
                            let d = d.clone();
                            s.spawn(move || {
                                let mut h = histogram();
                                for i in 0..per {
                                    let t = Instant::now();
                                    d.put(keys.key(2 * n + th * per + i), value(vs, i)).unwrap();
                                    h.saturating_record(nanos(t.elapsed()));
                                }
                                h
                            })
                        })
                        .collect();
                    hs.into_iter().map(|h| h.join().unwrap()).collect()
                });
                let r = Run {
                    lat: lats.into_iter().fold(histogram(), |mut all, h| {
                        all.add(h).expect("same bounds");
                        all
                    }),
                    elapsed: t.elapsed(),
                    user_bytes: 8 * per * (16 + vs as u64),
                    written: written() - w0,
                };
                r.print(b, Some(&d), &main_dir);
            }
            "fsynclimit" => {
                use std::os::unix::fs::FileExt;
                let path = root.join("fsynclimit");
                let f = std::fs::File::create(&path).unwrap();
                f.set_len(64 << 20).unwrap();
                f.sync_all().unwrap();
                let rec = vec![0x5au8; 16 + vs + 24];
                let r = Run::time(a.sync_ops, 0, None, |i| {
                    f.write_all_at(&rec, i * rec.len() as u64).unwrap();
                    f.sync_data().unwrap();
                });
                r.print(b, None, &root);
                let _ = std::fs::remove_file(&path);
            }
            other => eprintln!("unknown benchmark {other:?}"),
        }
    }
    if let (true, Some(d)) = (a.stats, &db) {
        println!("{}", d.stats());
    }
    if let Some(path) = &a.svg {
        if charted.is_empty() {
            println!(
                "no fill benchmark ran: no chart written to {}",
                path.display()
            );
        } else {
            let caption = format!(
                "sedimentdb dbbench: {n} keys, {vs}-byte values, {} blocks",
                a.compression
            );
            plot::draw(path, &caption, &charted).expect("writing the SVG chart");
            println!(
                "chart (bytes per level, write rate and stalls): {}",
                path.display()
            );
        }
    }
}
