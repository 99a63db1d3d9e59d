//! The read path: point lookups (memtables, then tables newest to oldest, the first version
//! found wins), and the `Stats` snapshot.

use super::shared::Shared;
use crate::error::Result;
use crate::key::Found;
use crate::sstable::reader::Probe;
use crate::sstable::Table;
use crate::stats::{Counters, LevelStats, Stats};
use crate::sync::{self, Arc, Ordering};
use crate::version::{user_range, Version};

/// The value of `key` as of now, or `None` if it is absent or deleted.
pub(crate) fn get(shared: &Shared, key: &[u8]) -> Result<Option<Vec<u8>>> {
    Counters::add(&shared.counters.gets, 1);
    if key.is_empty() {
        return Ok(None);
    }
    // The super version first, then the sequence: every table in it holds only versions at
    // or below the sequence read after it, so a version a flush or compaction dropped as
    // shadowed is never needed (reading the sequence first could skip the newest visible
    // version, now in a table as an even newer one, and return an older one).
    let sv = shared.super_version();
    let seq = shared.visible_seq.load(Ordering::Acquire);
    let found = sv
        .mem
        .get(key, seq)
        .or_else(|| sv.imms.iter().find_map(|m| m.get(key, seq)));
    if let Some(f) = found {
        return Ok(into_value(f));
    }
    for t in candidates(&sv.version, key) {
        let (f, probe) = t.get(key, seq)?;
        match probe {
            Probe::FilterSkipped => Counters::add(&shared.counters.filter_skips, 1),
            Probe::Read if f.is_none() => Counters::add(&shared.counters.filter_false_positives, 1),
            Probe::Read => {}
        }
        if let Some(f) = f {
            return Ok(into_value(f));
        }
    }
    Ok(None)
}

/// The tables that may hold `key`, newest first: every level-0 table whose range holds it
/// (they may overlap), then at most one table per deeper level.
fn candidates<'a>(v: &'a Version, key: &'a [u8]) -> impl Iterator<Item = &'a Arc<Table>> + 'a {
    let in_range = move |t: &&Arc<Table>| {
        let (lo, hi) = user_range(*t);
        lo <= key && key <= hi
    };
    let l0 = v.levels[0].iter().filter(in_range);
    let deeper = (1..v.levels.len()).filter_map(move |l| v.table_for_key(l, key));
    l0.chain(deeper)
}

fn into_value(f: Found<Vec<u8>>) -> Option<Vec<u8>> {
    match f {
        Found::Value(v) => Some(v),
        Found::Deleted => None,
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
        wal_syncs: Counters::get(&c.wal_syncs),
        flushes: Counters::get(&c.flushes),
        gets: Counters::get(&c.gets),
        filter_skips: Counters::get(&c.filter_skips),
        filter_false_positives: Counters::get(&c.filter_false_positives),
        recovered_torn_bytes: Counters::get(&c.recovered_torn_bytes),
        recovered_wals: Counters::get(&c.recovered_wals),
        write_stalls: Counters::get(&c.write_stalls),
        flushes_during_compaction: Counters::get(&c.flushes_during_compaction),
        commit_groups_by_size: c.commit_groups_by_size.each_ref().map(Counters::get),
        read_only_cause: shared.read_only_cause(),
        obsolete_file_errors: Counters::get(&c.obsolete_file_errors),
        compactions: Counters::get(&c.compactions),
        tombstones_dropped: Counters::get(&c.tombstones_dropped),
        bytes_reclaimed: Counters::get(&c.bytes_reclaimed),
        obsolete_tables_pending: sync::lock(&shared.obsolete).len(),
        ..Stats::default()
    };
    for level in &sv.version.levels {
        let mut l = LevelStats::default();
        for t in level {
            let m = t.meta();
            l.tables += 1;
            l.bytes += m.size_bytes;
            l.entries += m.entries;
            l.tombstones += m.tombstones;
        }
        s.tables += l.tables;
        s.table_bytes += l.bytes;
        s.table_entries += l.entries;
        s.table_tombstones += l.tombstones;
        s.levels.push(l);
    }
    s
}
