//! `Db`: the public handle. Each method states its contract and delegates: writes to
//! `write.rs`, reads to `read.rs` and `scan.rs`, opening to `open.rs`, background work to
//! `background.rs` (which runs `flush.rs` and `compaction/`). The state they share, and the
//! order its locks are taken in, is in `shared.rs`.

mod background;
mod checkpoint;
pub(crate) mod compaction;
mod cursor;
mod flush;
mod obsolete;
mod open;
mod read;
mod running;
mod scan;
mod shared;
mod snapshot;
mod write;

pub use cursor::Cursor;
pub use scan::{RawEntry, RawScan, RawValue, Scan};
pub use snapshot::Snapshot;

use cursor::{owned_bounds, prefix_bounds, View};

use crate::env::{Env, FileLock};
use crate::error::{Error, Result};
use crate::options::{Background, Options, ReadOptions, WriteOptions};
use crate::planted::{self, Bug};
use crate::stats::{Counters, Stats};
use crate::sync::thread::JoinHandle;
use crate::sync::{self, Arc, Mutex};
use crate::wal::batch::WriteBatch;
use shared::Shared;
use std::ops::{Bound, RangeBounds};
use std::path::Path;

/// An open database. `Send + Sync`: share it between threads with an `Arc`; many threads may
/// read while others write.
pub struct Db {
    shared: Arc<Shared>,
    bg_threads: Mutex<Vec<JoinHandle<()>>>,
    /// The directory lock: held by the `Db`, not by what outlives it (a `Scan`), so closing
    /// releases it.
    lock: Mutex<Option<Box<dyn FileLock>>>,
}

impl Db {
    /// Opens (creating if missing, per [`Options::create_if_missing`]) the database in directory
    /// `path` on the real filesystem and system clock.
    pub fn open(path: impl AsRef<Path>, opts: Options) -> Result<Db> {
        Db::open_with(Env::real(), path, opts)
    }

    /// Opens the database in `path` on any filesystem and clock, such as the simulator's.
    /// Recovers what the last run left: every WAL the manifest still needs is replayed, a torn
    /// unsynced tail is cut, damage to synced data is [`crate::Error::Corruption`].
    pub fn open_with(env: Env, path: impl AsRef<Path>, opts: Options) -> Result<Db> {
        let o = match open::open(env, path.as_ref(), opts) {
            Ok(o) => o,
            Err(e) => {
                log_corruption(&e);
                log::error!("{}: open failed: {e}", path.as_ref().display());
                return Err(e);
            }
        };
        let shared = Arc::new(Shared::new(o.parts));
        log::info!(
            "{}: opened: {} WALs replayed ({} torn bytes cut, {} ended at pre-sized zeros), \
             {} tables, last sequence {}",
            shared.dir.display(),
            o.wals_replayed,
            o.torn_bytes,
            o.zero_tails,
            shared
                .super_version()
                .version
                .levels
                .iter()
                .map(Vec::len)
                .sum::<usize>(),
            shared.visible_seq.load(crate::sync::Ordering::Acquire)
        );
        Counters::add(&shared.counters.recovered_torn_bytes, o.torn_bytes);
        Counters::add(&shared.counters.recovered_wals, o.wals_replayed);
        Counters::add(&shared.counters.recovered_zero_tails, o.zero_tails);
        Counters::add(
            &shared.counters.recovered_compressed_records,
            o.compressed_records,
        );
        let bg_threads = match shared.opts.background {
            Background::Threads => background::spawn(&shared)?,
            Background::Inline | Background::Manual => Vec::new(),
        };
        Ok(Db {
            shared,
            bg_threads: Mutex::new(bg_threads),
            lock: Mutex::new(Some(o.lock)),
        })
    }

    /// Sets `key` to `value`. Durable when it returns `Ok` (the WAL is fsynced).
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let mut b = WriteBatch::new();
        b.put(key, value);
        self.write(b, &WriteOptions::default())
    }

    /// Deletes `key` (writes a tombstone carrying the clock's time). Durable when it returns `Ok`.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let mut b = WriteBatch::new();
        b.delete(key);
        self.write(b, &WriteOptions::default())
    }

    /// Applies a batch atomically: after any crash either all of it or none of it is visible.
    /// With `opts.sync` (the default) it is durable when this returns `Ok`. Concurrent writers
    /// share one WAL append and one fsync (group commit). An invalid batch (empty key, key or
    /// value over its limit) is refused with [`crate::Error::InvalidArgument`] and nothing is
    /// written; after a failure the database refuses writes with [`crate::Error::ReadOnly`].
    pub fn write(&self, batch: WriteBatch, opts: &WriteOptions) -> Result<()> {
        self.shared.check_writable()?;
        write::validate(&self.shared.opts, &batch)?;
        if batch.is_empty() {
            return Ok(());
        }
        let clock = &self.shared.env.clock;
        let t0 = clock.monotonic_us();
        let r = write::write(&self.shared, batch, opts.sync);
        let c = &self.shared.counters;
        c.write_latency
            .record(clock.monotonic_us().saturating_sub(t0));
        r
    }

    /// Deletes every key in `range` (`start..end`, end excluded) with one range tombstone, as
    /// [`WriteBatch::delete_range`] in a batch of its own. Durable when it returns `Ok`.
    /// Reads never return a key it covers that was written before it; compaction drops the
    /// covered versions, and the tombstone itself once its grace period has passed and nothing
    /// older can remain below it.
    ///
    /// ```
    /// use sedimentdb::{Db, Options};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path().join("db"), Options::default())?;
    /// for k in ["a", "b", "c", "d"] {
    ///     db.put(k, "v")?;
    /// }
    /// db.delete_range(b"b".as_slice()..b"d".as_slice())?;
    /// let keys: Vec<_> = db.iter().map(|e| e.map(|(k, _)| k)).collect::<Result<_, _>>()?;
    /// assert_eq!(keys, vec![b"a".to_vec(), b"d".to_vec()]);
    /// # Ok::<(), sedimentdb::Error>(())
    /// ```
    pub fn delete_range<K: AsRef<[u8]>>(&self, range: std::ops::Range<K>) -> Result<()> {
        let mut b = WriteBatch::new();
        b.delete_range(range);
        self.write(b, &WriteOptions::default())
    }

    /// The value of `key`, or `None` if it is absent or deleted.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.shared.check_open()?;
        let clock = &self.shared.env.clock;
        let t0 = clock.monotonic_us();
        let r = read::get(&self.shared, key.as_ref(), None);
        let c = &self.shared.counters;
        c.get_latency
            .record(clock.monotonic_us().saturating_sub(t0));
        if let Err(e) = &r {
            log_corruption(e);
        }
        r
    }

    /// A snapshot: reads through it see the database as it is now, whatever is written,
    /// flushed or compacted afterwards (see [`Snapshot`] for what it costs).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(&self.shared)
    }

    /// The live entries whose keys fall in `range`, ascending (or descending with `.rev()`),
    /// as of the moment of the call (a consistent view). Tables stay readable for as long as
    /// the iterator lives.
    pub fn scan<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Scan {
        Scan::new(self.cursor(range))
    }

    /// Every live entry whose key starts with `prefix`, in either direction.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Scan {
        let view = View::new(&self.shared, None, prefix_bounds(prefix.as_ref()));
        Scan::new(Cursor::new(&self.shared, view))
    }

    /// A cursor over the live entries in `range` as of now, for callers who move around: seek,
    /// step both ways, change direction (see [`Cursor`]).
    pub fn cursor<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Cursor {
        self.cursor_with(range, &ReadOptions::default())
    }

    /// [`Db::cursor`] with read options: `fill_cache: false` leaves the block cache as it was
    /// (a one-off scan over much data).
    pub fn cursor_with<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        range: R,
        opts: &ReadOptions,
    ) -> Cursor {
        let mut view = View::new(&self.shared, None, owned_bounds(&range));
        view.fill_cache = opts.fill_cache;
        Cursor::new(&self.shared, view)
    }

    /// [`Db::scan`] with read options (see [`Db::cursor_with`]).
    pub fn scan_with<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        range: R,
        opts: &ReadOptions,
    ) -> Scan {
        Scan::new(self.cursor_with(range, opts))
    }

    /// The raw view for replication and anti-entropy: like [`Db::scan`], but tombstones are
    /// included, each with its deletion time, and range tombstones too
    /// ([`RawValue::RangeTombstone`]).
    pub fn scan_raw<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> RawScan {
        RawScan::new(self.cursor(range))
    }

    /// Every live entry, ascending: `scan(..)` without naming a key type.
    pub fn iter(&self) -> Scan {
        self.scan::<&[u8], _>(..)
    }

    /// Writes a consistent point-in-time copy of the database into the new directory `dir`
    /// (which must not exist): it opens as a database of its own and holds exactly the writes
    /// acknowledged before this call. Tables are hard-linked where the filesystem allows and
    /// copied otherwise; the WALs are copied up to a consistent point. Everything is synced
    /// before this returns. A checkpoint interrupted by a crash or an error is refused by
    /// [`Db::open`] with [`crate::Error::IncompleteCheckpoint`]; the source is never changed.
    ///
    /// ```
    /// use sedimentdb::{Db, Options};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = Db::open(dir.path().join("db"), Options::default())?;
    /// db.put("k", "v")?;
    /// db.checkpoint(dir.path().join("backup"))?;
    /// db.put("k", "later")?;
    /// let copy = Db::open(dir.path().join("backup"), Options::default())?;
    /// assert_eq!(copy.get("k")?, Some(b"v".to_vec()));
    /// # Ok::<(), sedimentdb::Error>(())
    /// ```
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.shared.check_open()?;
        checkpoint::checkpoint(&self.shared, dir.as_ref())
    }

    /// Applies several batches as if written by concurrent writers that all queued before any
    /// of them was committed: each batch is its own write with its own `sync` and its own
    /// outcome, in order, and they share group commits (one WAL record and at most one fsync
    /// per group). Invalid batches are refused one by one, as by [`Db::write`]. For the
    /// simulator, which forms commit groups of several writers without threads.
    #[doc(hidden)]
    pub fn write_group(&self, writes: Vec<(WriteBatch, bool)>) -> Vec<Result<()>> {
        if let Err(e) = self.shared.check_writable() {
            return writes.iter().map(|_| Err(e.clone())).collect();
        }
        let mut results: Vec<Option<Result<()>>> = Vec::with_capacity(writes.len());
        let mut queued = Vec::new();
        for (batch, sync) in writes {
            match write::validate(&self.shared.opts, &batch) {
                Err(e) => results.push(Some(Err(e))),
                Ok(()) if batch.is_empty() => results.push(Some(Ok(()))),
                Ok(()) => {
                    results.push(None);
                    queued.push((batch, sync));
                }
            }
        }
        let mut outcomes = write::write_all(&self.shared, queued).into_iter();
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| outcomes.next().unwrap_or(Ok(()))))
            .collect()
    }

    /// Runs one unit of background work: flushes the oldest immutable memtable if one waits,
    /// else runs one compaction if a level is over its target. Returns whether there was work.
    /// With [`Background::Inline`] this is how an embedder (or the simulator's scheduler) runs
    /// maintenance between operations.
    pub fn maintenance_step(&self) -> Result<bool> {
        self.shared.check_writable()?;
        background::step(&self.shared)
    }

    /// Runs compactions until level 0 is under its trigger and every level is within its
    /// target size.
    pub fn compact(&self) -> Result<()> {
        self.shared.check_writable()?;
        loop {
            // Waits for a background compaction the one due would clash with, rather than
            // return while level 0 is still over its trigger.
            let r = compaction::step_waiting(&self.shared);
            if !self.shared.fail_on_err(r)? {
                return Ok(());
            }
        }
    }

    /// Flushes the memtable, then compacts every table holding keys in `range` down to the
    /// deepest level, dropping shadowed versions and the tombstones whose grace period has
    /// passed. `compact_range(..)` is a full compaction.
    pub fn compact_range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<()> {
        self.flush()?;
        let bound = |b: Bound<&K>| match b {
            Bound::Included(k) | Bound::Excluded(k) => Some(k.as_ref().to_vec()),
            Bound::Unbounded => None,
        };
        let (lo, hi) = (bound(range.start_bound()), bound(range.end_bound()));
        let r = compaction::compact_range(&self.shared, lo.as_deref(), hi.as_deref());
        self.shared.fail_on_err(r)
    }

    /// Makes every acknowledged write durable (fsyncs the WAL).
    pub fn sync(&self) -> Result<()> {
        // Allowed while read-only after a failed flush or compaction: the WAL itself refuses
        // if it is the one that failed.
        self.shared.check_open()?;
        let mut wal = sync::lock(&self.shared.wal);
        // Durability point: without this fsync, unsynced writes acknowledged before `sync`
        // returned could be lost at a power loss.
        let r = if planted::active(Bug::SkipSyncInSync) {
            Ok(())
        } else {
            wal.writer.sync()
        };
        if r.is_ok() {
            Counters::add(&self.shared.counters.wal_syncs, 1);
        }
        self.shared.fail_on_err(r)
    }

    /// Writes the memtable (and any waiting immutable ones) to tables and returns once they are
    /// durable and named by the manifest.
    pub fn flush(&self) -> Result<()> {
        let s = &*self.shared;
        s.check_writable()?;
        {
            let mut wal = sync::lock(&s.wal);
            // Checked again under the lock: a failure may have come while this call waited.
            s.check_writable()?;
            if !s.super_version().mem.is_empty() {
                let r = write::rotate(s, &mut wal, false);
                s.fail_on_err(r)?;
            }
        }
        let r = flush::flush_all(s);
        s.fail_on_err(r)?;
        background::after_flush(s)
    }

    /// A snapshot of the engine's counters and shape.
    pub fn stats(&self) -> Stats {
        read::stats(&self.shared)
    }

    /// Stops background work, syncs the WAL and releases the directory lock. Unsynced writes
    /// become durable here. If the WAL failed earlier (a failed append or fsync), they cannot:
    /// close then returns [`crate::Error::ReadOnly`] naming that failure (the lock is released
    /// all the same; reopening recovers what is on disk). Dropping a `Db` does the same as
    /// `close`, ignoring errors.
    pub fn close(self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&self) -> Result<()> {
        let s = &*self.shared;
        if s.mark_closed() {
            return Ok(());
        }
        background::stop(s, std::mem::take(&mut *sync::lock(&self.bg_threads)));
        // Sync, then a marker record synced after it: its synced offset vouches for every
        // record before it, so damage to the last writes is reported, not cut as torn. Done
        // even when read-only after a failed flush or compaction (the WAL is sound then, and
        // unsynced writes should become durable). A failed WAL cannot make anything durable
        // any more: close reports its failure rather than promise what it cannot keep.
        let r = {
            let mut wal = sync::lock(&s.wal);
            if let Some(e) = wal.writer.failure() {
                Err(Error::read_only(e))
            } else if planted::active(Bug::SkipSyncAtClose) {
                Ok(())
            } else {
                // Durability point: without these fsyncs, unsynced writes acknowledged before
                // `close` could be lost at a power loss after it, and damage to the last
                // records could not be told from a torn tail.
                wal.writer
                    .sync()
                    .and_then(|()| wal.writer.add_record(&[]))
                    .and_then(|()| wal.writer.sync())
            }
        };
        obsolete::purge(s);
        sync::lock(&self.lock).take();
        r
    }

    /// The directory this database lives in.
    pub fn path(&self) -> &Path {
        &self.shared.dir
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Logs corruption where it is found (an error event naming the file and offset).
pub(crate) fn log_corruption(e: &Error) {
    let e = match e {
        Error::ReadOnly { cause } => cause,
        e => e,
    };
    if let Error::Corruption { .. } = e {
        log::error!("corruption found: {e}");
    }
}
