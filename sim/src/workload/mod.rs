//! The seeded workload: a list of steps (operations and faults) drawn from one `u64` seed, with
//! knobs drawn from the same seed (swarm testing: each seed gets its own mix).

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sedimentdb::Compression;
mod step;

pub use step::{GroupWrite, Step, RANGE_FLAG};

/// The shape of a run: sizes, the engine's options and the rate of each step kind (relative
/// weights; a weight of zero turns the kind off).
#[derive(Debug, Clone, PartialEq)]
pub struct Knobs {
    pub steps: usize,
    pub keyspace: u32,
    /// Value lengths: most up to `value_len_max`, one in `big_value_every` up to
    /// `big_value_len_max` (past the block size).
    pub value_len_max: u32,
    pub big_value_every: u32,
    pub big_value_len_max: u32,
    pub memtable_size_bytes: usize,
    pub block_size_bytes: usize,
    pub l0_compaction_trigger: usize,
    pub level1_size_bytes: u64,
    pub table_size_bytes: u64,
    pub tombstone_grace_ms: u64,
    pub w_put: u32,
    pub w_delete: u32,
    pub w_batch: u32,
    pub w_get: u32,
    pub w_scan: u32,
    pub w_sync: u32,
    pub w_flush: u32,
    pub w_reopen: u32,
    pub w_clock: u32,
    pub w_power_loss: u32,
    pub w_process_crash: u32,
    pub w_crash_after_calls: u32,
    pub w_fail_sync: u32,
    pub w_fail_append: u32,
    pub w_disk_full: u32,
    pub w_bit_flip: u32,
    pub w_compact_step: u32,
    pub w_compact: u32,
    pub w_compact_range: u32,
    pub w_scan_hold: u32,
    pub w_raw_scan: u32,
    pub w_group: u32,
    /// Writers in a `Group` step: 2 up to this many.
    pub group_writers_max: u32,
    /// Run with `Background::Manual` (maintenance only when the scheduler's `CompactStep`
    /// runs it, so several memtables and WALs wait) instead of `Background::Inline`.
    pub manual_background: bool,
    /// Where the database lives: `/db`, under missing ancestors, or a relative path.
    pub db_dir: &'static str,
    /// Percent of writes that ask for sync.
    pub sync_pct: u32,
    pub w_delete_range: u32,
    pub w_scan_rev: u32,
    pub w_prefix: u32,
    pub w_cursor: u32,
    /// Snapshot steps: take, read and release.
    pub w_snapshot: u32,
    pub w_checkpoint: u32,
    /// Percent of batch operations that are range deletes.
    pub range_in_batch_pct: u32,
    /// Widest range delete, in keys.
    pub range_width_max: u32,
    /// Whether the filesystem can hard-link (else checkpoints copy tables).
    pub links_supported: bool,
    /// The block cache's capacity (0: no cache).
    pub block_cache_bytes: usize,
    /// Dynamic level targets (else static).
    pub dynamic_level_bytes: bool,
    /// The data blocks' codec per level.
    pub compression_per_level: Vec<Compression>,
    /// The WAL's pre-sizing step (0: appended).
    pub wal_preallocate_bytes: u64,
    /// Whether WAL payloads are LZ4-compressed.
    pub wal_compression: Compression,
}

/// The database directories a seed may draw.
pub const DB_DIRS: [&str; 3] = ["/db", "/srv/data/db", "db"];

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            steps: 300,
            keyspace: 64,
            value_len_max: 64,
            big_value_every: 20,
            big_value_len_max: 3000,
            memtable_size_bytes: 8 << 10,
            block_size_bytes: 512,
            l0_compaction_trigger: 3,
            level1_size_bytes: 16 << 10,
            table_size_bytes: 4 << 10,
            tombstone_grace_ms: 3_600_000,
            w_put: 30,
            w_delete: 10,
            w_batch: 8,
            w_get: 20,
            w_scan: 5,
            w_sync: 3,
            w_flush: 3,
            w_reopen: 2,
            w_clock: 3,
            w_power_loss: 2,
            w_process_crash: 1,
            w_crash_after_calls: 3,
            w_fail_sync: 2,
            w_fail_append: 1,
            w_disk_full: 1,
            w_bit_flip: 0,
            w_compact_step: 2,
            w_compact: 1,
            w_compact_range: 2,
            w_scan_hold: 1,
            w_raw_scan: 2,
            w_group: 4,
            group_writers_max: 4,
            manual_background: false,
            db_dir: DB_DIRS[0],
            sync_pct: 70,
            w_delete_range: 3,
            w_scan_rev: 3,
            w_prefix: 2,
            w_cursor: 3,
            w_snapshot: 4,
            w_checkpoint: 1,
            range_in_batch_pct: 10,
            range_width_max: 16,
            links_supported: true,
            block_cache_bytes: 64 << 10,
            dynamic_level_bytes: true,
            compression_per_level: vec![Compression::Lz4],
            wal_preallocate_bytes: 4 << 10,
            wal_compression: Compression::Lz4,
        }
    }
}

fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        rng.next_u64() % n
    }
}

impl Knobs {
    /// The knobs of `seed`: every seed gets its own mix (swarm testing), so that rare
    /// combinations (a tiny key space with huge values, a fault-free run with many flushes, a
    /// storm of fsync failures) all occur.
    pub fn for_seed(seed: u64) -> Knobs {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6b6e_6f62_7300_0000);
        let mut k = Knobs::default();
        let pick = |rng: &mut ChaCha8Rng, xs: &[u64]| xs[below(rng, xs.len() as u64) as usize];
        k.steps = 150 + below(&mut rng, 300) as usize;
        k.keyspace = pick(&mut rng, &[3, 16, 64, 400, 5000]) as u32;
        k.value_len_max = pick(&mut rng, &[0, 8, 64, 300]) as u32;
        k.big_value_every = pick(&mut rng, &[0, 10, 40]) as u32;
        k.big_value_len_max = pick(&mut rng, &[1000, 6000]) as u32;
        k.memtable_size_bytes = pick(&mut rng, &[2 << 10, 8 << 10, 64 << 10]) as usize;
        k.block_size_bytes = pick(&mut rng, &[64, 256, 1024, 4096]) as usize;
        k.sync_pct = pick(&mut rng, &[0, 50, 90, 100]) as u32;
        k.l0_compaction_trigger = pick(&mut rng, &[1, 2, 4, 1000]) as usize;
        k.level1_size_bytes = pick(&mut rng, &[4 << 10, 16 << 10, 1 << 20]);
        k.table_size_bytes = pick(&mut rng, &[1 << 10, 4 << 10, 64 << 10]);
        k.tombstone_grace_ms = pick(&mut rng, &[0, 1000, 3_600_000, 10 * 86_400_000]);
        for w in [
            &mut k.w_compact_step,
            &mut k.w_compact,
            &mut k.w_compact_range,
            &mut k.w_scan_hold,
        ] {
            *w *= pick(&mut rng, &[0, 1, 3]) as u32;
        }
        for w in [
            &mut k.w_delete,
            &mut k.w_batch,
            &mut k.w_scan,
            &mut k.w_flush,
            &mut k.w_reopen,
        ] {
            *w = (*w * pick(&mut rng, &[0, 1, 1, 3]) as u32).min(30);
        }
        // Fault profile.
        match below(&mut rng, 8) {
            0 => {
                // calm: no faults at all
                k.w_power_loss = 0;
                k.w_process_crash = 0;
                k.w_crash_after_calls = 0;
                k.w_fail_sync = 0;
                k.w_fail_append = 0;
                k.w_disk_full = 0;
                k.w_bit_flip = 0;
            }
            1 => {
                // crashes only, often
                k.w_power_loss = 4;
                k.w_crash_after_calls = 8;
                k.w_fail_sync = 0;
                k.w_fail_append = 0;
                k.w_disk_full = 0;
                k.w_bit_flip = 0;
            }
            2 => {
                // fsync storms
                k.w_fail_sync = 8;
                k.w_power_loss = 3;
            }
            3 => {
                // I/O errors and disk full
                k.w_fail_append = 5;
                k.w_disk_full = 4;
            }
            4 => {
                // media corruption
                k.w_bit_flip = 6;
                k.w_flush = k.w_flush.max(5);
            }
            5 => k.w_bit_flip = 1, // everything, corruption included
            _ => {}                // every fault but corruption, at the default rates
        }
        // Drawn last, so the knobs above stay what they were for each seed.
        k.group_writers_max = pick(&mut rng, &[2, 3, 4, 8]) as u32;
        k.w_group *= pick(&mut rng, &[0, 1, 3]) as u32;
        k.manual_background = below(&mut rng, 2) == 0;
        k.db_dir = DB_DIRS[below(&mut rng, DB_DIRS.len() as u64) as usize];
        if k.manual_background {
            // The scheduler's maintenance steps are the only background work.
            k.w_compact_step = k.w_compact_step.max(1) * 4;
        }
        // The read API and range deletes, drawn after everything above.
        k.w_delete_range *= pick(&mut rng, &[0, 1, 3]) as u32;
        k.w_snapshot *= pick(&mut rng, &[0, 1, 2]) as u32;
        k.w_cursor *= pick(&mut rng, &[0, 1, 3]) as u32;
        k.w_checkpoint *= pick(&mut rng, &[0, 1, 4]) as u32;
        k.range_in_batch_pct = pick(&mut rng, &[0, 10, 40]) as u32;
        k.range_width_max = pick(&mut rng, &[1, 4, 16, 200]) as u32;
        k.links_supported = below(&mut rng, 3) != 0;
        k.block_cache_bytes = pick(&mut rng, &[0, 4 << 10, 64 << 10, 1 << 20]) as usize;
        k.dynamic_level_bytes = below(&mut rng, 3) != 0;
        use Compression::{Lz4, None as Raw, Zstd};
        // The same draw with or without zstd (a seed's other knobs do not depend on the
        // build); without it, LZ4 takes zstd's place.
        let zstd = |l| if cfg!(feature = "zstd") { Zstd(l) } else { Lz4 };
        let mut codecs = [
            vec![Raw],
            vec![Lz4],
            vec![Raw, Lz4],
            vec![Lz4, Lz4, zstd(1)],
            vec![Raw, zstd(3)],
        ];
        let i = below(&mut rng, codecs.len() as u64) as usize;
        k.compression_per_level = std::mem::take(&mut codecs[i]);
        k.wal_preallocate_bytes = pick(&mut rng, &[0, 1 << 10, 4 << 10, 64 << 10]);
        // A deep tree, drawn last: static, tiny levels over small tables, flushed often, with
        // one codec (so tables move down whole, by trivial moves) and deletes that expire at
        // once. Compaction's "no deeper level holds this key" check then meets tables that
        // reached their level by a move.
        if below(&mut rng, 6) == 0 {
            k.dynamic_level_bytes = false;
            k.level1_size_bytes = 2 << 10;
            k.table_size_bytes = 1 << 10;
            k.memtable_size_bytes = 2 << 10;
            k.l0_compaction_trigger = 1;
            k.tombstone_grace_ms = 0;
            k.keyspace = k.keyspace.clamp(16, 400);
            k.w_delete = k.w_delete.max(10);
            k.w_flush = k.w_flush.max(5);
            k.w_compact_step = k.w_compact_step.max(3);
            k.compression_per_level = vec![Lz4];
        }
        // After everything above, so the knobs above stay what they were for each seed.
        k.wal_compression = if below(&mut rng, 3) == 0 { Raw } else { Lz4 };
        k
    }
}

/// Draws the steps of a run.
pub fn generate(seed: u64, k: &Knobs) -> Vec<Step> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let weights = [
        k.w_put,
        k.w_delete,
        k.w_batch,
        k.w_get,
        k.w_scan,
        k.w_sync,
        k.w_flush,
        k.w_reopen,
        k.w_clock,
        k.w_power_loss,
        k.w_process_crash,
        k.w_crash_after_calls,
        k.w_fail_sync,
        k.w_fail_append,
        k.w_disk_full,
        k.w_bit_flip,
        k.w_compact_step,
        k.w_compact,
        k.w_compact_range,
        k.w_scan_hold,
        k.w_raw_scan,
        k.w_group,
        k.w_delete_range,
        k.w_scan_rev,
        k.w_prefix,
        k.w_cursor,
        k.w_snapshot,
        k.w_checkpoint,
    ];
    let total: u32 = weights.iter().sum();
    let mut steps = Vec::with_capacity(k.steps);
    let mut disk_full = false;
    for i in 0..k.steps {
        let tag = i as u32;
        let key = |rng: &mut ChaCha8Rng| below(rng, u64::from(k.keyspace.max(1))) as u32;
        let len = |rng: &mut ChaCha8Rng| {
            if k.big_value_every > 0 && below(rng, u64::from(k.big_value_every)) == 0 {
                below(rng, u64::from(k.big_value_len_max) + 1) as u32
            } else {
                below(rng, u64::from(k.value_len_max) + 1) as u32
            }
        };
        let sync = |rng: &mut ChaCha8Rng| below(rng, 100) < u64::from(k.sync_pct);
        let width = |rng: &mut ChaCha8Rng| below(rng, u64::from(k.range_width_max) + 1) as u32;
        let maybe_key = |rng: &mut ChaCha8Rng| (below(rng, 4) != 0).then(|| key(rng));
        if disk_full && below(&mut rng, 6) == 0 {
            disk_full = false;
            steps.push(Step::SpaceReturns);
            continue;
        }
        let mut r = below(&mut rng, u64::from(total.max(1))) as u32;
        let mut kind = 0;
        for (j, w) in weights.iter().enumerate() {
            if r < *w {
                kind = j;
                break;
            }
            r -= w;
        }
        let step = match kind {
            0 => Step::Put {
                key: key(&mut rng),
                len: len(&mut rng),
                tag,
                sync: sync(&mut rng),
            },
            1 => Step::Delete {
                key: key(&mut rng),
                sync: sync(&mut rng),
            },
            2 => {
                let n = 1 + below(&mut rng, 8);
                let ops = (0..n)
                    .map(|_| {
                        let kk = key(&mut rng);
                        let v = if below(&mut rng, 100) < u64::from(k.range_in_batch_pct) {
                            Some(RANGE_FLAG + width(&mut rng))
                        } else {
                            (below(&mut rng, 3) != 0).then(|| len(&mut rng))
                        };
                        (kk, v)
                    })
                    .collect();
                Step::Batch {
                    ops,
                    tag,
                    sync: sync(&mut rng),
                }
            }
            3 => Step::Get { key: key(&mut rng) },
            4 => {
                let a = (below(&mut rng, 4) != 0).then(|| key(&mut rng));
                let b = (below(&mut rng, 4) != 0).then(|| key(&mut rng));
                Step::Scan { from: a, to: b }
            }
            5 => Step::Sync,
            6 => Step::Flush,
            7 => Step::Reopen,
            8 => match below(&mut rng, 10) {
                0 => Step::ClockForward {
                    ms: 3_600_000 * (1 + below(&mut rng, 24 * 21)),
                },
                1 => Step::ClockBack {
                    ms: 1 + below(&mut rng, 5_000),
                },
                _ => Step::ClockForward {
                    ms: 1 + below(&mut rng, 2_000),
                },
            },
            9 => Step::PowerLoss,
            10 => Step::ProcessCrash,
            11 => Step::CrashAfterCalls {
                calls: 1 + below(&mut rng, 60) as u32,
                power: below(&mut rng, 4) != 0,
            },
            12 => {
                // One draw (as before directory failures existed): a third of them aim at the
                // next directory fsync.
                let r = below(&mut rng, 6);
                Step::FailSync {
                    drop_pages: r.is_multiple_of(2),
                    dir: r >= 4,
                }
            }
            13 => Step::FailAppend {
                prefix: if below(&mut rng, 2) == 0 {
                    0
                } else {
                    below(&mut rng, 200) as u32
                },
            },
            14 => {
                disk_full = true;
                Step::DiskFull {
                    free_bytes: below(&mut rng, 20_000) as u32,
                }
            }
            15 if below(&mut rng, 5) == 0 => Step::TableWriteFault {
                misdirect: below(&mut rng, 2) == 0,
            },
            15 if below(&mut rng, 4) == 0 => Step::LatentReadError {
                reads: 1 + below(&mut rng, 3) as u32,
            },
            15 if below(&mut rng, 2) == 0 => Step::FlipNewestEdit {
                offset: rng.next_u64() as u32,
                bit: below(&mut rng, 8) as u8,
                power: below(&mut rng, 2) == 0,
            },
            15 => Step::FlipBit {
                file: below(&mut rng, 1000) as u32,
                offset: rng.next_u64() as u32,
                bit: below(&mut rng, 8) as u8,
            },
            16 => Step::CompactStep,
            17 => Step::Compact,
            18 => {
                if below(&mut rng, 2) == 0 {
                    Step::CompactRange {
                        from: None,
                        to: None,
                    }
                } else {
                    let a = key(&mut rng);
                    let b = key(&mut rng);
                    Step::CompactRange {
                        from: Some(a.min(b)),
                        to: Some(a.max(b)),
                    }
                }
            }
            19 => {
                if below(&mut rng, 2) == 0 {
                    Step::ScanHold
                } else {
                    Step::ScanFinish
                }
            }
            20 => Step::RawScan,
            22 => Step::DeleteRange {
                from: key(&mut rng),
                width: width(&mut rng),
                sync: sync(&mut rng),
            },
            23 => Step::ScanRev {
                from: maybe_key(&mut rng),
                to: maybe_key(&mut rng),
                zigzag: below(&mut rng, 3) == 0,
            },
            24 => Step::Prefix {
                key: key(&mut rng),
                len: 3 + below(&mut rng, 7) as u32,
                rev: below(&mut rng, 2) == 0,
            },
            25 => {
                let n = 1 + below(&mut rng, 24);
                let moves = (0..n)
                    .map(|_| {
                        let op = below(&mut rng, 6) as u32;
                        // Seeks aim anywhere in the key space, a little past its ends too.
                        let kk = below(&mut rng, u64::from(k.keyspace) + 2) as u32;
                        kk * 6 + op
                    })
                    .collect();
                Step::CursorWalk {
                    lo: (below(&mut rng, 3) == 0).then(|| key(&mut rng)),
                    hi: (below(&mut rng, 3) == 0).then(|| key(&mut rng)),
                    snapshot: below(&mut rng, 3) == 0,
                    moves,
                }
            }
            26 => match below(&mut rng, 4) {
                0 => Step::SnapshotTake,
                1 => Step::SnapshotRelease {
                    which: below(&mut rng, 3) as u32,
                },
                _ => Step::SnapshotRead {
                    which: below(&mut rng, 3) as u32,
                },
            },
            27 => Step::Checkpoint,
            _ => {
                let n = 2 + below(&mut rng, u64::from(k.group_writers_max.max(2) - 1));
                let writes = (0..n)
                    .map(|_| {
                        let m = 1 + below(&mut rng, 3);
                        let ops = (0..m)
                            .map(|_| {
                                let kk = key(&mut rng);
                                let v = if below(&mut rng, 100) < u64::from(k.range_in_batch_pct) {
                                    Some(RANGE_FLAG + width(&mut rng))
                                } else {
                                    (below(&mut rng, 4) != 0).then(|| len(&mut rng))
                                };
                                (kk, v)
                            })
                            .collect();
                        (ops, sync(&mut rng))
                    })
                    .collect();
                Step::Group { writes, tag }
            }
        };
        steps.push(step);
    }
    steps
}

/// The bytes of key `k`.
pub fn key_bytes(k: u32) -> Vec<u8> {
    format!("key{k:06}").into_bytes()
}

/// The bytes of a value of `len` bytes for key `k` written by step `tag`.
pub fn value_bytes(k: u32, tag: u32, len: u32) -> Vec<u8> {
    let seed = k.wrapping_mul(2_654_435_761) ^ tag.wrapping_mul(40_503);
    (0..len)
        .map(|i| (seed.wrapping_add(i.wrapping_mul(31)) >> 3) as u8)
        .collect()
}
