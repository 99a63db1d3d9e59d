//! Turning an immutable memtable into a level-0 table: the flush step.

use crate::db::Inner;
use crate::env::{join, Env};
use crate::error::{Error, Result};
use crate::filename::{table_name, wal_name};
use crate::key;
use crate::manifest::VersionEdit;
use crate::memtable::Memtable;
use crate::options::Options;
use crate::planted::{self, Bug};
use crate::sstable::{Table, TableBuilder, TableMeta};
use crate::stats::Counters;
use crate::sync::{self, Arc, Ordering};
use std::path::Path;

/// Creates table file `number` and a builder for it with the options' block and filter shape.
pub(crate) fn create_table(
    env: &Env,
    dir: &Path,
    o: &Options,
    number: u64,
) -> Result<TableBuilder> {
    let path = join(dir, &table_name(number));
    let file = env
        .fs
        .create(&path)
        .map_err(|e| Error::io("create", &path, e))?;
    Ok(TableBuilder::new(
        file,
        path,
        number,
        o.block_size_bytes,
        o.block_restart_interval,
        o.bloom_bits_per_key,
    ))
}

/// Writes the newest version of every key in `mem` (tombstones included) as table `number`,
/// synced, with its directory entry synced. Returns the open table.
pub(crate) fn write_table(
    env: &Env,
    dir: &Path,
    o: &Options,
    number: u64,
    mem: &Memtable,
) -> Result<Arc<Table>> {
    let fs = &*env.fs;
    let path = join(dir, &table_name(number));
    let mut b = create_table(env, dir, o, number)?;
    let mut last_user_key: Option<Vec<u8>> = None;
    let mut result = Ok(());
    mem.for_each(|ikey, value| {
        if result.is_err() {
            return;
        }
        let uk = key::user_key(ikey);
        // Versions of a key come newest first; older ones are shadowed.
        if last_user_key.as_deref() == Some(uk) {
            return;
        }
        match &mut last_user_key {
            Some(k) => {
                k.clear();
                k.extend_from_slice(uk);
            }
            None => last_user_key = Some(uk.to_vec()),
        }
        if planted::active(Bug::DropTombstonesAtFlush)
            && key::parse(ikey).is_some_and(|p| p.kind == key::Kind::Delete)
        {
            return;
        }
        result = b.add(ikey, value);
    });
    result?;
    let meta: TableMeta = b.finish()?;
    // Durability point: without this directory fsync, the table's directory entry could vanish
    // at a power loss after the manifest named it.
    if !planted::active(Bug::SkipTableDirSync) {
        fs.sync_dir(dir)
            .map_err(|e| Error::io("sync_dir", dir, e))?;
    }
    let table = Table::open(fs, &path, number)?;
    debug_assert_eq!(table.meta().entries, meta.entries);
    Ok(Arc::new(table))
}

impl Inner {
    /// Flushes the oldest immutable memtable, if any. Returns whether there was one.
    pub(crate) fn flush_one(&self) -> Result<bool> {
        let _flushing = sync::lock(&self.flush_mu);
        let sv = self.super_version();
        let Some(imm) = sv.imms.last().cloned() else {
            return Ok(false);
        };
        // The WAL of the next newer memtable is the oldest one still needed after this flush.
        let next_log = match sv.imms.len() {
            1 => sv.mem.wal_number(),
            n => sv.imms[n - 2].wal_number(),
        };
        let wal = join(&self.dir, &wal_name(imm.wal_number()));
        if planted::active(Bug::DeleteWalBeforeTableDurable) {
            let _ = self.env.fs.remove_file(&wal);
        }
        let table = if imm.is_empty() {
            None
        } else {
            let number = self.next_file.fetch_add(1, Ordering::SeqCst);
            Some(write_table(&self.env, &self.dir, &self.opts, number, &imm)?)
        };
        let edit = VersionEdit {
            next_file: Some(self.next_file.load(Ordering::SeqCst)),
            last_seq: Some(imm.max_seq()),
            log_number: Some(next_log),
            added: table.iter().map(|t| (0, t.meta().clone())).collect(),
            deleted: Vec::new(),
        };
        {
            let mut manifest = sync::lock(&self.manifest);
            // Another thread's failure may have come while this flush ran.
            self.check_writable()?;
            manifest.append(&edit)?;
        }
        {
            let mut cur = sync::write(&self.sv);
            let mut next = (**cur).clone();
            next.imms.retain(|m| !Arc::ptr_eq(m, &imm));
            if let Some(t) = table {
                next.version = Arc::new(next.version.with_l0(t));
            }
            *cur = Arc::new(next);
        }
        Counters::add(&self.counters.flushes, 1);
        // The manifest no longer needs this WAL. A failed removal is retried at the next open.
        if self.env.fs.remove_file(&wal).is_err() {
            Counters::add(&self.counters.obsolete_file_errors, 1);
        }
        let _g = sync::lock(&self.bg);
        self.flushed.notify_all();
        Ok(true)
    }

    /// Flushes every immutable memtable.
    pub(crate) fn flush_all(&self) -> Result<()> {
        while self.flush_one()? {
            self.check_writable()?;
        }
        Ok(())
    }
}
