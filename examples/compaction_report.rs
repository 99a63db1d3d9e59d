//! Compaction report: writes 2 GB of overwrites and deletes into a 200 MB key space on the real
//! filesystem, twice — once with compaction, once with it held off — and prints space
//! amplification, table counts and `get` latency before and after a full compaction.
//!
//! It also samples `Db::stats` while writing and draws an SVG chart with, for each of the two
//! runs, the bytes in each level (and in the memtable) and the write rate (writes a second per
//! sample interval, red points where a write stalled) against the bytes written; the chart of
//! the default run is docs/img/compaction_report.svg.
//!
//! `cargo run --release --example compaction_report` (optionally
//! `-- [<total MB> [<keyspace MB>]] [--svg PATH]`; the chart goes to `compaction_report.svg` in
//! the current directory unless `--svg` says otherwise).
#[path = "plot/mod.rs"]
mod plot;

use sedimentdb::{Db, Options, Stats, WriteBatch, WriteOptions};
use std::path::PathBuf;
use std::time::Instant;

const VALUE_BYTES: usize = 1000;

fn key(i: u64) -> [u8; 16] {
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&x.to_be_bytes());
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn load(db: &Db, ops: u64, keys: u64, live: &mut [bool], sampler: &mut plot::Sampler) -> f64 {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut value = vec![0u8; VALUE_BYTES];
    let t = Instant::now();
    for n in 0..ops {
        let k = rng.next() % keys;
        let mut b = WriteBatch::new();
        if n % 10 == 9 {
            b.delete(key(k));
            live[k as usize] = false;
        } else {
            value[..8].copy_from_slice(&n.to_le_bytes());
            b.put(key(k), &value);
            live[k as usize] = true;
        }
        db.write(b, &WriteOptions { sync: false }).unwrap();
        sampler.tick(db, n + 1);
    }
    db.sync().unwrap();
    t.elapsed().as_secs_f64()
}

fn median_get_us(db: &Db, keys: u64) -> (f64, f64) {
    let mut rng = Rng(0xfeed_beef_0bad_cafe);
    let mut lat: Vec<f64> = (0..50_000)
        .map(|_| {
            let k = key(rng.next() % keys);
            let t = Instant::now();
            let _ = db.get(k).unwrap();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    (lat[lat.len() / 2], lat[lat.len() * 99 / 100])
}

fn describe(name: &str, s: &Stats, live_bytes: u64) {
    let per_level: Vec<String> = s
        .levels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.tables > 0)
        .map(|(i, l)| format!("L{i}: {} tables {:.0} MB", l.tables, l.bytes as f64 / 1e6))
        .collect();
    println!(
        "{name:<44} tables {:>4}  table bytes {:>6.0} MB  space amplification {:>5.2}  tombstones {}  [{}]",
        s.tables,
        s.table_bytes as f64 / 1e6,
        s.table_bytes as f64 / live_bytes.max(1) as f64,
        s.table_tombstones,
        per_level.join(", ")
    );
}

fn main() {
    let mut svg = PathBuf::from("compaction_report.svg");
    let mut numbers = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--svg" {
            svg = args.next().expect("--svg needs a path").into();
        } else if let Some(p) = a.strip_prefix("--svg=") {
            svg = p.into();
        } else {
            numbers.push(a.parse::<u64>().expect("a number of MB"));
        }
    }
    let mut args = numbers.into_iter();
    let total_mb = args.next().unwrap_or(2000);
    let space_mb = args.next().unwrap_or(200);
    let entry = (VALUE_BYTES + 16) as u64;
    let keys = space_mb * 1_000_000 / entry;
    let ops = total_mb * 1_000_000 / entry;
    println!("{ops} writes (90% overwrites, 10% deletes) of {VALUE_BYTES}-byte values over {keys} keys ({space_mb} MB key space, {total_mb} MB written)");
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for (name, compaction) in [("with compaction", true), ("compaction held off", false)] {
        let mut opts = Options::default();
        if !compaction {
            opts.l0_compaction_trigger = 100_000;
            opts.l0_slowdown_writes_trigger = 100_000;
            opts.l0_stop_writes_trigger = 100_000;
        }
        let db = Db::open(dir.path().join(name.replace(' ', "-")), opts).unwrap();
        let mut live = vec![false; keys as usize];
        let mut sampler = plot::Sampler::new(name, &db, ops, entry);
        let secs = load(&db, ops, keys, &mut live, &mut sampler);
        runs.push(sampler.finish(&db, ops));
        db.flush().unwrap();
        let live_bytes = live.iter().filter(|l| **l).count() as u64 * entry;
        println!(
            "\n== {name}: wrote in {secs:.1} s ({:.0} MB/s), live data {:.0} MB",
            total_mb as f64 / secs,
            live_bytes as f64 / 1e6
        );
        if compaction {
            // Let the background compactions catch up, as a steady state would.
            db.compact().unwrap();
        }
        let s = db.stats();
        describe("after writing", &s, live_bytes);
        let (p50, p99) = median_get_us(&db, keys);
        println!("{:<44} get median {p50:.1} us, p99 {p99:.1} us", "");
        let t = Instant::now();
        db.compact_range::<&[u8], _>(..).unwrap();
        let s = db.stats();
        describe(
            &format!(
                "after compact_range(..) ({:.1} s)",
                t.elapsed().as_secs_f64()
            ),
            &s,
            live_bytes,
        );
        let (p50, p99) = median_get_us(&db, keys);
        println!("{:<44} get median {p50:.1} us, p99 {p99:.1} us; compactions {}, tombstones dropped {}, bytes reclaimed {:.0} MB", "", s.compactions, s.tombstones_dropped, s.bytes_reclaimed as f64 / 1e6);
        db.close().unwrap();
    }
    let caption = format!(
        "compaction_report: {total_mb} MB of overwrites and deletes ({VALUE_BYTES}-byte values) into a {space_mb} MB key space"
    );
    plot::draw(&svg, &caption, &runs).expect("writing the SVG chart");
    println!(
        "\nchart (bytes per level, write rate and stalls): {}",
        svg.display()
    );
}
