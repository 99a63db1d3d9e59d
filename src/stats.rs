//! Counters reported by `Db::stats`.

use crate::histogram::Latency;
use crate::sync::{AtomicU64, Ordering};
use std::fmt;

/// A snapshot of the engine's state and counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Live tables in all.
    pub tables: usize,
    /// Bytes of all live tables.
    pub table_bytes: u64,
    /// Entries (versions and tombstones) in all live tables.
    pub table_entries: u64,
    /// Tombstones in all live tables.
    pub table_tombstones: u64,
    /// Approximate bytes in the active memtable.
    pub memtable_bytes: usize,
    /// Immutable memtables waiting to be flushed.
    pub immutable_memtables: usize,
    /// Sequence number of the newest visible write.
    pub last_sequence: u64,
    /// Write batches acknowledged.
    pub writes: u64,
    /// WAL records written (one per group commit).
    pub wal_records: u64,
    /// WAL records whose payload was stored LZ4-compressed (`Options::wal_compression`).
    pub wal_records_compressed: u64,
    /// WAL fsyncs.
    pub wal_syncs: u64,
    /// Memtables flushed to tables.
    pub flushes: u64,
    /// Point lookups.
    pub gets: u64,
    /// Table lookups skipped because the Bloom filter said the key is absent.
    pub filter_skips: u64,
    /// Table lookups the filter let through that found no version of the key.
    pub filter_false_positives: u64,
    /// Bytes cut from a torn WAL tail at the last open.
    pub recovered_torn_bytes: u64,
    /// WALs holding records that the last open replayed.
    pub recovered_wals: u64,
    /// WALs whose records the last open found followed by zeros: the unused space of a
    /// pre-sized WAL (not damage, nothing cut).
    pub recovered_zero_tails: u64,
    /// LZ4-compressed WAL records the last open replayed.
    pub recovered_compressed_records: u64,
    /// Flushes that finished while a compaction was running (with `Background::Threads` and
    /// its separate flush and compaction threads).
    pub flushes_during_compaction: u64,
    /// Commit groups by the number of writes they held: 1, 2, 3 to 4, and 5 or more.
    pub commit_groups_by_size: [u64; 4],
    /// Times a writer waited for a flush or compaction to make room (or, under
    /// `Background::Manual`, ran the flush itself).
    pub write_stalls: u64,
    /// Why the database refuses writes, if it does.
    pub read_only_cause: Option<String>,
    /// Obsolete files whose removal failed (they are retried at the next open).
    pub obsolete_file_errors: u64,
    /// Per level: tables, bytes, entries and tombstones.
    pub levels: Vec<LevelStats>,
    /// Compactions run.
    pub compactions: u64,
    /// Tombstones compaction dropped (their grace period had passed and no older version could
    /// remain).
    pub tombstones_dropped: u64,
    /// Bytes compaction reclaimed: input bytes minus output bytes, summed.
    pub bytes_reclaimed: u64,
    /// Tables replaced by compaction whose files wait for their last reader.
    pub obsolete_tables_pending: usize,
    /// Range tombstones (fragment covers) in all live tables.
    pub table_range_tombstones: u64,
    /// Range tombstones in the memtables.
    pub memtable_range_tombstones: u64,
    /// Range tombstones compaction dropped (grace passed, nothing older below, no snapshot
    /// needing them).
    pub range_tombstones_dropped: u64,
    /// Versions compaction and flush kept only because a live snapshot can see them.
    pub versions_kept_for_snapshots: u64,
    /// Values compaction wrote at the bottom with sequence number 0 (no older version can lie
    /// below them and every live snapshot sees them; zeros compress away).
    pub seqs_zeroed: u64,
    /// Live [`crate::Snapshot`]s.
    pub live_snapshots: usize,
    /// Sequence number of the oldest live snapshot.
    pub oldest_snapshot_seq: Option<u64>,
    /// Checkpoints completed.
    pub checkpoints: u64,
    /// Table files a checkpoint hard-linked, and copied (where the filesystem cannot link).
    pub checkpoint_tables_linked: u64,
    pub checkpoint_tables_copied: u64,
    /// Data-block reads the block cache answered, and those it did not (then read from the
    /// file).
    pub block_cache_hits: u64,
    pub block_cache_misses: u64,
    /// Bytes the block cache holds now, and its capacity (`block_cache_bytes`).
    pub block_cache_bytes: u64,
    pub block_cache_capacity: u64,
    /// Compactions that moved one table into the next level by a manifest edit alone (it
    /// overlapped nothing there), writing no byte of data.
    pub trivial_moves: u64,
    /// Compactions (moves included) that started while another one ran
    /// (`compaction_threads > 1`).
    pub parallel_compactions: u64,
    /// Scans and cursors read a sorted level (1 or deeper) one table at a time: how often they
    /// moved on into the next table, and back into the previous one.
    pub level_table_steps: [u64; 2],
    /// Milliseconds writers spent stalled (by the engine's clock; `write_stalls` counts them).
    pub write_stall_ms: u64,
    /// Data blocks written compressed since open, and those stored raw although their level
    /// asks for a codec (compression would not have saved an eighth of the block).
    pub blocks_compressed: u64,
    pub blocks_stored_raw: u64,
    /// The live tables' data blocks before compression, in bytes: `table_bytes` over this is
    /// the space compression leaves (index, filter and meta blocks are in `table_bytes` only).
    pub table_raw_data_bytes: u64,
    /// Bytes of the write batches acknowledged since open (keys, values and their framing).
    pub user_bytes: u64,
    /// Bytes appended to WALs since open.
    pub wal_bytes: u64,
    /// Latencies since open, in microseconds (by the `Clock`'s monotonic timer): `Db::get`,
    /// `Db::write` (and `put`, `delete`, ...; includes waiting for a commit group), the WAL
    /// fsync of a synced commit, and a memtable flush.
    pub get_latency: Latency,
    pub write_latency: Latency,
    pub sync_latency: Latency,
    pub flush_latency: Latency,
}

impl Stats {
    /// Bytes written to WALs and tables per byte of user data since open (0 before any write).
    pub fn write_amplification(&self) -> f64 {
        if self.user_bytes == 0 {
            return 0.0;
        }
        let tables: u64 = self.levels.iter().map(|l| l.bytes_written).sum();
        (self.wal_bytes + tables) as f64 / self.user_bytes as f64
    }
}

/// The shape of one level.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LevelStats {
    pub tables: usize,
    pub bytes: u64,
    pub entries: u64,
    pub tombstones: u64,
    /// Range tombstones (fragment covers).
    pub range_tombstones: u64,
    /// Data blocks' bytes before compression.
    pub raw_data_bytes: u64,
    /// Bytes of tables written into this level since open (flushes, compaction outputs).
    pub bytes_written: u64,
    /// Bytes of this level's tables read by compactions since open.
    pub bytes_read: u64,
}

/// The atomic counters behind [`Stats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub writes: AtomicU64,
    pub wal_records: AtomicU64,
    pub wal_records_compressed: AtomicU64,
    pub wal_syncs: AtomicU64,
    pub flushes: AtomicU64,
    pub gets: AtomicU64,
    pub filter_skips: AtomicU64,
    pub filter_false_positives: AtomicU64,
    pub recovered_torn_bytes: AtomicU64,
    pub recovered_wals: AtomicU64,
    pub write_stalls: AtomicU64,
    pub commit_groups_by_size: [AtomicU64; 4],
    pub flushes_during_compaction: AtomicU64,
    pub obsolete_file_errors: AtomicU64,
    pub compactions: AtomicU64,
    pub tombstones_dropped: AtomicU64,
    pub bytes_reclaimed: AtomicU64,
    pub range_tombstones_dropped: AtomicU64,
    pub versions_kept_for_snapshots: AtomicU64,
    pub seqs_zeroed: AtomicU64,
    pub checkpoints: AtomicU64,
    pub checkpoint_tables_linked: AtomicU64,
    pub checkpoint_tables_copied: AtomicU64,
    pub trivial_moves: AtomicU64,
    pub parallel_compactions: AtomicU64,
    pub level_table_steps: [AtomicU64; 2],
    pub write_stall_ms: AtomicU64,
    pub blocks_compressed: AtomicU64,
    pub blocks_stored_raw: AtomicU64,
    pub recovered_zero_tails: AtomicU64,
    pub recovered_compressed_records: AtomicU64,
    /// Bytes of write batches acknowledged (keys, values and their framing).
    pub user_bytes: AtomicU64,
    pub wal_bytes: AtomicU64,
    /// Per level: bytes of tables written into it (flushes, compaction outputs) and read from
    /// it by compactions.
    pub level_written: [AtomicU64; crate::version::NUM_LEVELS],
    pub level_read: [AtomicU64; crate::version::NUM_LEVELS],
    pub get_latency: crate::histogram::Histogram,
    pub write_latency: crate::histogram::Histogram,
    pub sync_latency: crate::histogram::Histogram,
    pub flush_latency: crate::histogram::Histogram,
}

impl Counters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts how a new table's data blocks were stored.
    pub fn count_blocks(&self, b: crate::sstable::builder::BlockCounts) {
        Counters::add(&self.blocks_compressed, b.compressed);
        Counters::add(&self.blocks_stored_raw, b.stored_raw);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// A byte count for a human: `512 B`, `1.5 KiB`, `3.2 MiB`, ...
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (p50 {} us, p99 {} us, max {} us)",
            self.count, self.p50_us, self.p99_us, self.max_us
        )
    }
}

/// A compact table of the levels, then the counters an operator watches.
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "level  tables       size   raw data    entries tombstones range-dels    written       read"
        )?;
        for (i, l) in self.levels.iter().enumerate() {
            if l.tables == 0 && l.bytes_written == 0 && l.bytes_read == 0 {
                continue;
            }
            writeln!(
                f,
                "L{i:<4} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                l.tables,
                human_bytes(l.bytes),
                human_bytes(l.raw_data_bytes),
                l.entries,
                l.tombstones,
                l.range_tombstones,
                human_bytes(l.bytes_written),
                human_bytes(l.bytes_read)
            )?;
        }
        writeln!(
            f,
            "total  {:>7} {:>10} {:>10} {:>10} {:>10} {:>10}",
            self.tables,
            human_bytes(self.table_bytes),
            human_bytes(self.table_raw_data_bytes),
            self.table_entries,
            self.table_tombstones,
            self.table_range_tombstones
        )?;
        writeln!(
            f,
            "memtable {} ({} immutable waiting), last sequence {}, {} live snapshots",
            human_bytes(self.memtable_bytes as u64),
            self.immutable_memtables,
            self.last_sequence,
            self.live_snapshots
        )?;
        writeln!(
            f,
            "writes {} ({} of user data, WAL {} in {} records ({} compressed), {} syncs), write amplification {:.2}",
            self.writes,
            human_bytes(self.user_bytes),
            human_bytes(self.wal_bytes),
            self.wal_records,
            self.wal_records_compressed,
            self.wal_syncs,
            self.write_amplification()
        )?;
        writeln!(
            f,
            "flushes {}, compactions {} ({} trivial moves, {} beside another), {} tombstones dropped, stalls {} ({} ms)",
            self.flushes,
            self.compactions,
            self.trivial_moves,
            self.parallel_compactions,
            self.tombstones_dropped,
            self.write_stalls,
            self.write_stall_ms
        )?;
        writeln!(
            f,
            "gets {} ({} filter skips, {} false positives), block cache {} hits / {} misses, {} of {}",
            self.gets,
            self.filter_skips,
            self.filter_false_positives,
            self.block_cache_hits,
            self.block_cache_misses,
            human_bytes(self.block_cache_bytes),
            human_bytes(self.block_cache_capacity)
        )?;
        writeln!(f, "latency get {}", self.get_latency)?;
        writeln!(f, "latency write {}", self.write_latency)?;
        writeln!(f, "latency synced commit {}", self.sync_latency)?;
        writeln!(f, "latency flush {}", self.flush_latency)?;
        write!(
            f,
            "recovered at open: {} WALs, {} torn bytes cut, {} ended at pre-sized zeros, {} compressed records",
            self.recovered_wals,
            self.recovered_torn_bytes,
            self.recovered_zero_tails,
            self.recovered_compressed_records
        )?;
        if let Some(c) = &self.read_only_cause {
            write!(f, "\nREAD-ONLY: {c}")?;
        }
        Ok(())
    }
}
