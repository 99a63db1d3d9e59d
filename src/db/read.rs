//! The read path: point lookups (memtables, then tables newest to oldest, the first version
//! found wins), and the `Stats` snapshot.

use super::shared::Shared;
use crate::error::Result;
use crate::key::Found;
use crate::planted::{self, Bug};
use crate::sstable::reader::Probe;
use crate::sstable::Table;
use crate::stats::{Counters, LevelStats, Stats};
use crate::sync::{self, Arc, Ordering};
use crate::version::{holds_key, Version};

/// The value of `key` as of now (`snapshot` `None`) or as of a snapshot's sequence number, or
/// `None` if it is absent or deleted (by a point or a range tombstone).
pub(crate) fn get(shared: &Shared, key: &[u8], snapshot: Option<u64>) -> Result<Option<Vec<u8>>> {
    Counters::add(&shared.counters.gets, 1);
    if key.is_empty() {
        return Ok(None);
    }
    // The super version first, then the sequence: every table in it holds only versions at
    // or below the sequence read after it, so a version a flush or compaction dropped as
    // shadowed is never needed (reading the sequence first could skip the newest visible
    // version, now in a table as an even newer one, and return an older one). A snapshot's
    // versions are kept by every flush and compaction while it lives.
    let sv = shared.super_version();
    let seq = snapshot.unwrap_or_else(|| shared.visible_seq.load(Ordering::Acquire));
    // The newest range tombstone covering `key` visible at `seq`, in the sources seen so far.
    // Sources come newest first and hold, for any one key, only versions older than what a
    // newer source holds for it; so once a source covers the key, an older one cannot hold a
    // newer version of it.
    let mut covered = 0u64;
    for m in std::iter::once(&sv.mem).chain(sv.imms.iter()) {
        if let Some(f) = m.range_fragments() {
            covered = covered.max(f.max_seq_at(key, seq));
        }
        if let Some((s, f)) = m.get(key, seq) {
            return Ok(resolve(s, f, covered));
        }
        if covered > 0 {
            return Ok(None);
        }
    }
    for (level, t) in candidates(&sv.version, key) {
        if !(level >= 1 && planted::active(Bug::IgnoreRangeTombstonesBelowLevel0)) {
            covered = covered.max(t.range_dels().max_seq_at(key, seq));
        }
        let (f, probe) = t.get(key, seq)?;
        match probe {
            Probe::FilterSkipped => Counters::add(&shared.counters.filter_skips, 1),
            Probe::Read if f.is_none() => Counters::add(&shared.counters.filter_false_positives, 1),
            Probe::Read => {}
        }
        if let Some((s, f)) = f {
            return Ok(resolve(s, f, covered));
        }
        if covered > 0 {
            return Ok(None);
        }
    }
    Ok(None)
}

/// The tables that may hold `key`, newest first, with their levels: every level-0 table whose
/// range holds it (they may overlap), then at most one table per deeper level.
fn candidates<'a>(
    v: &'a Version,
    key: &'a [u8],
) -> impl Iterator<Item = (usize, &'a Arc<Table>)> + 'a {
    let l0 = v.levels[0]
        .iter()
        .filter(move |t| holds_key(*t, key))
        .map(|t| (0, t));
    let deeper = (1..v.levels.len()).filter_map(move |l| v.table_for_key(l, key).map(|t| (l, t)));
    l0.chain(deeper)
}

/// The value a version found at sequence `s` gives, if no range tombstone newer than it (at
/// `covered`, 0 for none) deletes it. `s` may be 0: a value compaction wrote at the bottom.
fn resolve(s: u64, f: Found<Vec<u8>>, covered: u64) -> Option<Vec<u8>> {
    match f {
        Found::Value(v) if covered <= s => Some(v),
        _ => None,
    }
}

/// A snapshot of the engine's counters and shape.
pub(crate) fn stats(shared: &Shared) -> Stats {
    let sv = shared.super_version();
    let c = &shared.counters;
    let mut s = Stats {
        memtable_bytes: sv.mem.size_bytes(),
        immutable_memtables: sv.imms.len(),
        last_sequence: shared.visible_seq.load(Ordering::Acquire),
        writes: Counters::get(&c.writes),
        wal_records: Counters::get(&c.wal_records),
        wal_records_compressed: Counters::get(&c.wal_records_compressed),
        wal_syncs: Counters::get(&c.wal_syncs),
        flushes: Counters::get(&c.flushes),
        gets: Counters::get(&c.gets),
        filter_skips: Counters::get(&c.filter_skips),
        filter_false_positives: Counters::get(&c.filter_false_positives),
        recovered_torn_bytes: Counters::get(&c.recovered_torn_bytes),
        recovered_wals: Counters::get(&c.recovered_wals),
        recovered_zero_tails: Counters::get(&c.recovered_zero_tails),
        recovered_compressed_records: Counters::get(&c.recovered_compressed_records),
        write_stalls: Counters::get(&c.write_stalls),
        flushes_during_compaction: Counters::get(&c.flushes_during_compaction),
        commit_groups_by_size: c.commit_groups_by_size.each_ref().map(Counters::get),
        read_only_cause: shared.read_only_cause(),
        obsolete_file_errors: Counters::get(&c.obsolete_file_errors),
        compactions: Counters::get(&c.compactions),
        tombstones_dropped: Counters::get(&c.tombstones_dropped),
        bytes_reclaimed: Counters::get(&c.bytes_reclaimed),
        obsolete_tables_pending: sync::lock(&shared.obsolete).len(),
        range_tombstones_dropped: Counters::get(&c.range_tombstones_dropped),
        versions_kept_for_snapshots: Counters::get(&c.versions_kept_for_snapshots),
        seqs_zeroed: Counters::get(&c.seqs_zeroed),
        checkpoints: Counters::get(&c.checkpoints),
        trivial_moves: Counters::get(&c.trivial_moves),
        level_table_steps: [
            Counters::get(&c.level_table_steps[0]),
            Counters::get(&c.level_table_steps[1]),
        ],
        parallel_compactions: Counters::get(&c.parallel_compactions),
        write_stall_ms: Counters::get(&c.write_stall_ms),
        blocks_compressed: Counters::get(&c.blocks_compressed),
        user_bytes: Counters::get(&c.user_bytes),
        wal_bytes: Counters::get(&c.wal_bytes),
        get_latency: c.get_latency.summary(),
        write_latency: c.write_latency.summary(),
        sync_latency: c.sync_latency.summary(),
        flush_latency: c.flush_latency.summary(),
        blocks_stored_raw: Counters::get(&c.blocks_stored_raw),
        checkpoint_tables_linked: Counters::get(&c.checkpoint_tables_linked),
        checkpoint_tables_copied: Counters::get(&c.checkpoint_tables_copied),
        memtable_range_tombstones: std::iter::once(&sv.mem)
            .chain(sv.imms.iter())
            .map(|m| m.range_tombstones() as u64)
            .sum(),
        ..Stats::default()
    };
    (s.live_snapshots, s.oldest_snapshot_seq) = shared.snapshot_summary();
    if let Some(c) = &shared.block_cache {
        s.block_cache_hits = c.hits();
        s.block_cache_misses = c.misses();
        s.block_cache_bytes = c.bytes();
        s.block_cache_capacity = c.capacity();
    }
    for (i, level) in sv.version.levels.iter().enumerate() {
        let mut l = LevelStats {
            bytes_written: Counters::get(&c.level_written[i]),
            bytes_read: Counters::get(&c.level_read[i]),
            ..LevelStats::default()
        };
        for t in level {
            let m = t.meta();
            l.tables += 1;
            l.bytes += m.size_bytes;
            l.entries += m.entries;
            l.tombstones += m.tombstones;
            l.range_tombstones += t.range_dels().cover_count();
            l.raw_data_bytes += t.raw_data_bytes();
        }
        s.table_raw_data_bytes += l.raw_data_bytes;
        s.table_range_tombstones += l.range_tombstones;
        s.tables += l.tables;
        s.table_bytes += l.bytes;
        s.table_entries += l.entries;
        s.table_tombstones += l.tombstones;
        s.levels.push(l);
    }
    s
}
