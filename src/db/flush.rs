//! The flush step: the oldest immutable memtable becomes a level-0 table.
//!
//! Order (each step durable before the next): write the table and fsync it, fsync the
//! directory, append the manifest edit (which names the table and moves the log number past
//! the memtable's WAL) and fsync it, install the new version, remove the WAL.

use super::shared::Shared;
use crate::env::{join, Env};
use crate::error::{Error, Result};
use crate::filename::{table_name, wal_name};
use crate::key;
use crate::manifest::VersionEdit;
use crate::memtable::Memtable;
use crate::options::Options;
use crate::planted::{self, Bug};
use crate::sstable::builder::BlockCounts;
use crate::sstable::{BlockCache, Table, TableBuilder, TableMeta};
use crate::stats::Counters;
use crate::sync::{self, Arc};
use std::path::Path;

/// Writes `mem` as table `number`, synced, with its directory entry synced: for every key its
/// newest version (tombstones included) and, for each live snapshot in `snapshots`
/// (ascending), the newest version that snapshot sees; and every range tombstone. Returns the
/// open table, how many versions were kept only for snapshots and how its blocks were stored.
pub(crate) fn write_table(
    env: &Env,
    dir: &Path,
    o: &Options,
    number: u64,
    mem: &Memtable,
    snapshots: &[u64],
    cache: Option<Arc<BlockCache>>,
) -> Result<(Arc<Table>, u64, BlockCounts)> {
    let fs = &*env.fs;
    let mut b = TableBuilder::create(fs, dir, number, o, 0)?;
    // The last key written and its stripe (the buffer is reused from key to key).
    let mut last_key: Vec<u8> = Vec::new();
    let mut last_stripe: Option<usize> = None;
    let mut kept_for_snapshots = 0;
    let mut result = Ok(());
    let ignore_snapshots = planted::active(Bug::CompactionIgnoresSnapshots);
    mem.for_each(|ikey, value| {
        if result.is_err() {
            return;
        }
        let Some(p) = key::parse(ikey) else {
            return;
        };
        let stripe = snapshot_stripe(snapshots, p.seq);
        // Versions of a key come newest first; an older one in the same stripe (seen by the
        // same snapshots) is shadowed.
        match last_stripe {
            Some(s) if last_key[..] == *p.user_key => {
                if s == stripe || ignore_snapshots {
                    return;
                }
                kept_for_snapshots += 1;
            }
            _ => {
                last_key.clear();
                last_key.extend_from_slice(p.user_key);
            }
        }
        last_stripe = Some(stripe);
        if planted::active(Bug::DropTombstonesAtFlush) && p.kind == key::Kind::Delete {
            return;
        }
        result = b.add(ikey, value);
    });
    result?;
    if let Some(f) = mem.range_fragments() {
        b.set_range_tombstones((*f).clone());
    }
    let (meta, blocks): (TableMeta, BlockCounts) = b.finish_counted()?;
    // Durability point: without this directory fsync, the table's directory entry could vanish
    // at a power loss after the manifest named it.
    if !planted::active(Bug::SkipTableDirSync) {
        fs.sync_dir(dir)
            .map_err(|e| Error::io("sync_dir", dir, e))?;
    }
    let path = join(dir, &table_name(number));
    let table = Table::open_cached(fs, &path, number, cache)?;
    debug_assert_eq!(table.meta().entries, meta.entries);
    Ok((Arc::new(table), kept_for_snapshots, blocks))
}

/// The snapshot stripe of a version at `seq`: the index of the oldest snapshot that sees it
/// (`snapshots.len()` if none does, only reads of the newest state). Two versions of a key in
/// the same stripe are seen by the same snapshots, so only the newer one is needed.
pub(crate) fn snapshot_stripe(snapshots: &[u64], seq: u64) -> usize {
    snapshots.partition_point(|s| *s < seq)
}

/// Flushes the oldest immutable memtable, if any. Returns whether there was one.
pub(crate) fn flush_oldest(shared: &Shared) -> Result<bool> {
    let _flushing = sync::lock(&shared.flush_mu);
    let sv = shared.super_version();
    let Some(imm) = sv.imms.last().cloned() else {
        return Ok(false);
    };
    // The WAL of the next newer memtable is the oldest one still needed after this flush.
    let next_log = match sv.imms.len() {
        1 => sv.mem.wal_number(),
        n => sv.imms[n - 2].wal_number(),
    };
    let wal = join(&shared.dir, &wal_name(imm.wal_number()));
    let t0 = shared.env.clock.monotonic_us();
    if planted::active(Bug::DeleteWalBeforeTableDurable) {
        let _ = shared.env.fs.remove_file(&wal);
    }
    let table = if imm.is_empty() {
        None
    } else {
        let number = shared.new_file_number();
        let snapshots = shared.snapshot_seqs();
        let (t, kept, blocks) = write_table(
            &shared.env,
            &shared.dir,
            &shared.opts,
            number,
            &imm,
            &snapshots,
            shared.block_cache.clone(),
        )?;
        Counters::add(&shared.counters.versions_kept_for_snapshots, kept);
        shared.counters.count_blocks(blocks);
        Some(t)
    };
    let edit = VersionEdit {
        next_file: Some(shared.next_file.load(crate::sync::Ordering::SeqCst)),
        last_seq: Some(imm.max_seq()),
        log_number: Some(next_log),
        added: table.iter().map(|t| (0, t.meta().clone())).collect(),
        deleted: Vec::new(),
    };
    {
        let mut manifest = sync::lock(&shared.manifest);
        // Another thread's failure may have come while this flush ran.
        shared.check_writable()?;
        manifest.append(&edit)?;
    }
    shared.install(|sv| {
        sv.imms.retain(|m| !Arc::ptr_eq(m, &imm));
        if let Some(t) = table {
            sv.version = Arc::new(sv.version.with_l0(t));
        }
    });
    Counters::add(&shared.counters.flushes, 1);
    let us = shared.env.clock.monotonic_us().saturating_sub(t0);
    shared.counters.flush_latency.record(us);
    match edit.added.first() {
        Some((_, m)) => {
            Counters::add(&shared.counters.level_written[0], m.size_bytes);
            log::info!(
                "{}: flushed the memtable of WAL {} into table {} at level 0: {} entries \
                 ({} tombstones), {} bytes, in {} ms",
                shared.dir.display(),
                imm.wal_number(),
                m.number,
                m.entries,
                m.tombstones,
                m.size_bytes,
                us / 1000
            );
        }
        None => log::info!(
            "{}: flushed the empty memtable of WAL {}",
            shared.dir.display(),
            imm.wal_number()
        ),
    }
    if shared
        .compactions_running
        .load(crate::sync::Ordering::SeqCst)
        > 0
    {
        Counters::add(&shared.counters.flushes_during_compaction, 1);
    }
    // The manifest no longer needs this WAL. A failed removal is retried at the next open.
    if shared.env.fs.remove_file(&wal).is_err() {
        Counters::add(&shared.counters.obsolete_file_errors, 1);
    }
    shared.notify_progress();
    Ok(true)
}

/// Flushes every immutable memtable, oldest first.
pub(crate) fn flush_all(shared: &Shared) -> Result<()> {
    while flush_oldest(shared)? {
        shared.check_writable()?;
    }
    Ok(())
}
