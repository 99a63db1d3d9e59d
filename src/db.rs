//! `Db`: the public handle. Write path (group commit into the WAL, then the memtable), read path
//! (memtables, then tables newest to oldest), and the background flush thread. Opening and
//! recovery live in `recovery.rs`, flushing in `flush.rs`, scans in `scan.rs`.

use crate::env::{join, Env, FileLock};
use crate::error::{Error, Result};
use crate::filename::wal_name;
use crate::key::Found;
use crate::key::{Kind, SEQ_MAX};
use crate::manifest::ManifestWriter;
use crate::memtable::Memtable;
use crate::options::{Background, Options, WriteOptions};
use crate::planted::{self, Bug};
use crate::record::LogWriter;
use crate::scan::{RawScan, Scan};
use crate::sstable::reader::Probe;
use crate::sstable::Table;
use crate::stats::{Counters, LevelStats, Stats};
use crate::sync::{self, Arc, AtomicBool, AtomicU64, Condvar, Mutex, Ordering, RwLock};
use crate::version::user_range;
use crate::version::Version;
use crate::version::NUM_LEVELS;
use crate::wal::batch::{self, WriteBatch};
use std::collections::{BTreeMap, VecDeque};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

/// Bytes of batches one group commit gathers behind its leader's batch.
const GROUP_COMMIT_BYTES_MAX: usize = 1 << 20;

/// What a reader needs, swapped atomically: the active memtable, the immutable ones (newest
/// first) and the live tables.
#[derive(Clone)]
pub(crate) struct SuperVersion {
    pub mem: Arc<Memtable>,
    pub imms: Vec<Arc<Memtable>>,
    pub version: Arc<Version>,
}

/// The WAL and sequence counter, owned by the current group-commit leader.
pub(crate) struct WalState {
    pub writer: LogWriter,
    pub last_seq: u64,
}

struct Pending {
    id: u64,
    batch: WriteBatch,
    sync: bool,
}

#[derive(Default)]
struct WriteQueue {
    next_id: u64,
    queue: VecDeque<Pending>,
    done: BTreeMap<u64, Result<()>>,
    leader_active: bool,
}

#[derive(Default)]
pub(crate) struct BgState {
    /// Immutable memtables wait for the flush thread.
    pub pending: bool,
    /// Level 0 or a level's size may be over its target.
    pub compact_pending: bool,
    pub shutdown: bool,
}

pub(crate) struct Inner {
    pub env: Env,
    pub dir: PathBuf,
    pub opts: Options,
    pub sv: RwLock<Arc<SuperVersion>>,
    pub wal: Mutex<WalState>,
    queue: Mutex<WriteQueue>,
    queue_cv: Condvar,
    pub flush_mu: Mutex<()>,
    pub manifest: Mutex<ManifestWriter>,
    pub bg: Mutex<BgState>,
    pub bg_cv: Condvar,
    pub flushed: Condvar,
    pub next_file: AtomicU64,
    pub visible_seq: AtomicU64,
    read_only: Mutex<Option<String>>,
    pub counters: Counters,
    closed: AtomicBool,
    /// Serializes compactions.
    pub compact_mu: Mutex<()>,
    /// Where the last compaction of each level ended.
    pub compact_pointers: Mutex<[Vec<u8>; NUM_LEVELS]>,
    /// Tables no version names any more, removed once no reader holds them.
    pub obsolete: Mutex<Vec<Arc<Table>>>,
}

/// An open database. `Send + Sync`: share it between threads with an `Arc`; many threads may
/// read while others write.
pub struct Db {
    inner: Arc<Inner>,
    bg_threads: Mutex<Vec<JoinHandle<()>>>,
    /// The directory lock: held by the `Db`, not by what outlives it (a `Scan`), so closing
    /// releases it.
    lock: Mutex<Option<Box<dyn FileLock>>>,
}

/// What recovery hands to `Db::start`.
pub(crate) struct Recovered {
    pub env: Env,
    pub dir: PathBuf,
    pub opts: Options,
    pub lock: Box<dyn FileLock>,
    pub sv: SuperVersion,
    pub wal: WalState,
    pub manifest: ManifestWriter,
    pub next_file: u64,
    pub torn_bytes: u64,
}

impl Db {
    /// Opens (creating if missing, per [`Options::create_if_missing`]) the database in directory
    /// `path` on the real filesystem and system clock.
    pub fn open(path: impl AsRef<Path>, opts: Options) -> Result<Db> {
        Db::open_with(Env::real(), path, opts)
    }

    /// Opens the database in `path` on any filesystem and clock, such as the simulator's.
    pub fn open_with(env: Env, path: impl AsRef<Path>, opts: Options) -> Result<Db> {
        let r = crate::recovery::recover(env, path.as_ref(), opts)?;
        Db::start(r)
    }

    fn start(r: Recovered) -> Result<Db> {
        let last_seq = r.wal.last_seq;
        let inner = Arc::new(Inner {
            env: r.env,
            dir: r.dir,
            opts: r.opts,
            sv: RwLock::new(Arc::new(r.sv)),
            wal: Mutex::new(r.wal),
            queue: Mutex::new(WriteQueue::default()),
            queue_cv: Condvar::new(),
            flush_mu: Mutex::new(()),
            manifest: Mutex::new(r.manifest),
            bg: Mutex::new(BgState::default()),
            bg_cv: Condvar::new(),
            flushed: Condvar::new(),
            next_file: AtomicU64::new(r.next_file),
            visible_seq: AtomicU64::new(last_seq),
            read_only: Mutex::new(None),
            counters: Counters::default(),
            closed: AtomicBool::new(false),
            compact_mu: Mutex::new(()),
            compact_pointers: Mutex::new(Default::default()),
            obsolete: Mutex::new(Vec::new()),
        });
        let lock = r.lock;
        Counters::add(&inner.counters.recovered_torn_bytes, r.torn_bytes);
        let mut bg_threads = Vec::new();
        if inner.opts.background == Background::Threads {
            let mut spawn = |name: String, f: fn(&Inner)| -> Result<()> {
                let i = inner.clone();
                let h = std::thread::Builder::new()
                    .name(name)
                    .spawn(move || f(&i))
                    .map_err(|e| Error::io("spawn background thread for", &inner.dir, e))?;
                bg_threads.push(h);
                Ok(())
            };
            spawn("sedimentdb-flush".into(), Inner::flush_loop)?;
            for n in 0..inner.opts.compaction_threads {
                spawn(format!("sedimentdb-compact-{n}"), Inner::compaction_loop)?;
            }
            // Tables left over the targets by the last run get compacted now.
            inner.signal_compaction();
        }
        Ok(Db {
            inner,
            bg_threads: Mutex::new(bg_threads),
            lock: Mutex::new(Some(lock)),
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
    /// share one WAL append and one fsync (group commit).
    pub fn write(&self, batch: WriteBatch, opts: &WriteOptions) -> Result<()> {
        self.inner.check_writable()?;
        self.inner.validate(&batch)?;
        if batch.is_empty() {
            return Ok(());
        }
        self.inner.write(batch, opts.sync)
    }

    /// The value of `key`, or `None` if it is absent or deleted.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.inner.check_open()?;
        self.inner.get(key.as_ref())
    }

    /// The live entries whose keys fall in `range`, ascending, as of the moment of the call (a
    /// consistent snapshot). Tables stay readable for as long as the iterator lives.
    pub fn scan<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Scan {
        Scan::new(&self.inner, range)
    }

    /// The raw view for replication and anti-entropy: like [`Db::scan`], but tombstones are
    /// included, each with its deletion time.
    pub fn scan_raw<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> RawScan {
        RawScan::new(&self.inner, range)
    }

    /// Runs one unit of background work: flushes the oldest immutable memtable if one waits,
    /// else runs one compaction if a level is over its target. Returns whether there was work.
    /// With [`Background::Inline`] this is how an embedder (or the simulator's scheduler) runs
    /// maintenance between operations.
    pub fn maintenance_step(&self) -> Result<bool> {
        self.inner.check_writable()?;
        let r = self.inner.flush_one();
        if self.inner.fail_on_err(r)? {
            return Ok(true);
        }
        let r = self.inner.compact_step();
        self.inner.fail_on_err(r)
    }

    /// Runs compactions until level 0 is under its trigger and every level is within its
    /// target size.
    pub fn compact(&self) -> Result<()> {
        self.inner.check_writable()?;
        loop {
            let r = self.inner.compact_step();
            if !self.inner.fail_on_err(r)? {
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
        let r = self.inner.compact_range(lo.as_deref(), hi.as_deref());
        self.inner.fail_on_err(r)
    }

    /// Every live entry, ascending: `scan(..)` without naming a key type.
    pub fn iter(&self) -> Scan {
        Scan::new::<&[u8], _>(&self.inner, ..)
    }

    /// Makes every acknowledged write durable (fsyncs the WAL).
    pub fn sync(&self) -> Result<()> {
        // Allowed while read-only after a failed flush or compaction: the WAL itself refuses
        // if it is the one that failed.
        self.inner.check_open()?;
        let mut wal = sync::lock(&self.inner.wal);
        let r = wal.writer.sync();
        if r.is_ok() {
            Counters::add(&self.inner.counters.wal_syncs, 1);
        }
        self.inner.fail_on_err(r)
    }

    /// Writes the memtable (and any waiting immutable ones) to tables and returns once they are
    /// durable and named by the manifest.
    pub fn flush(&self) -> Result<()> {
        self.inner.check_writable()?;
        {
            let mut wal = sync::lock(&self.inner.wal);
            // Checked again under the lock: a failure may have come while this call waited.
            self.inner.check_writable()?;
            if !self.inner.super_version().mem.is_empty() {
                let r = self.inner.rotate(&mut wal, false);
                self.inner.fail_on_err(r)?;
            }
        }
        let r = self.inner.flush_all();
        self.inner.fail_on_err(r)?;
        self.inner.after_flush()
    }

    /// A snapshot of the engine's counters and shape.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// Stops background work, syncs the WAL and releases the directory lock. Unsynced writes
    /// become durable here. Dropping a `Db` does the same, ignoring errors.
    pub fn close(self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        {
            let mut bg = sync::lock(&self.inner.bg);
            bg.shutdown = true;
            self.inner.bg_cv.notify_all();
            self.inner.flushed.notify_all();
        }
        for h in std::mem::take(&mut *sync::lock(&self.bg_threads)) {
            let _ = h.join();
        }
        // Sync, then a marker record synced after it: its synced offset vouches for every
        // record before it, so damage to the last writes is reported, not cut as torn. Done
        // even when read-only after a failed flush or compaction (the WAL is sound then, and
        // unsynced writes should become durable); a failed WAL refuses by itself.
        let r = {
            let mut wal = sync::lock(&self.inner.wal);
            if wal.writer.failure().is_some() {
                Ok(())
            } else {
                wal.writer
                    .sync()
                    .and_then(|()| wal.writer.add_record(&[]))
                    .and_then(|()| wal.writer.sync())
            }
        };
        self.inner.purge_obsolete();
        sync::lock(&self.lock).take();
        r
    }

    /// The directory this database lives in.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl Inner {
    pub(crate) fn super_version(&self) -> Arc<SuperVersion> {
        sync::read(&self.sv).clone()
    }

    pub(crate) fn closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        match &*sync::lock(&self.read_only) {
            Some(cause) => Err(Error::ReadOnly {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Enters the read-only state if `r` failed: after a failed WAL append or fsync, or a failed
    /// flush, nothing the engine holds in memory can be trusted to match the disk.
    pub(crate) fn fail_on_err<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            let mut ro = sync::lock(&self.read_only);
            if ro.is_none() {
                *ro = Some(e.to_string());
            }
            drop(ro);
            let _g = sync::lock(&self.bg);
            self.flushed.notify_all();
        }
        r
    }

    pub(crate) fn read_only_cause(&self) -> Option<String> {
        sync::lock(&self.read_only).clone()
    }

    fn validate(&self, b: &WriteBatch) -> Result<()> {
        if b.has_empty_key {
            return Err(Error::InvalidArgument("empty key".into()));
        }
        if b.max_key_len > self.opts.max_key_size_bytes {
            return Err(Error::InvalidArgument(format!(
                "key of {} bytes exceeds max_key_size_bytes = {}",
                b.max_key_len, self.opts.max_key_size_bytes
            )));
        }
        if b.max_value_len > self.opts.max_value_size_bytes {
            return Err(Error::InvalidArgument(format!(
                "value of {} bytes exceeds max_value_size_bytes = {}",
                b.max_value_len, self.opts.max_value_size_bytes
            )));
        }
        let limit = crate::options::limits::RECORD_SIZE_BYTES_MAX - batch::PAYLOAD_HEADER_LEN;
        if b.size_bytes() > limit {
            return Err(Error::InvalidArgument(format!(
                "batch of {} bytes exceeds the limit of {limit} bytes",
                b.size_bytes()
            )));
        }
        Ok(())
    }

    /// Group commit: queue the batch; the writer at the head of the queue leads, writing every
    /// queued batch as one WAL record with one fsync, while the others wait for its outcome.
    fn write(&self, batch: WriteBatch, sync_wanted: bool) -> Result<()> {
        let mut q = sync::lock(&self.queue);
        let id = q.next_id;
        q.next_id += 1;
        q.queue.push_back(Pending {
            id,
            batch,
            sync: sync_wanted,
        });
        loop {
            if let Some(r) = q.done.remove(&id) {
                return r;
            }
            if !q.leader_active && q.queue.front().is_some_and(|p| p.id == id) {
                break;
            }
            q = sync::wait(&self.queue_cv, q);
        }
        q.leader_active = true;
        let mut group = Vec::new();
        let mut bytes = 0usize;
        while let Some(p) = q.queue.front() {
            if !group.is_empty() && bytes + p.batch.size_bytes() > GROUP_COMMIT_BYTES_MAX {
                break;
            }
            bytes += p.batch.size_bytes();
            group.extend(q.queue.pop_front());
        }
        drop(q);
        let result = self.commit_group(&group);
        let mut q = sync::lock(&self.queue);
        q.leader_active = false;
        let mut mine = Ok(());
        for p in &group {
            let r = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(e.shared()),
            };
            if p.id == id {
                mine = r;
            } else {
                q.done.insert(p.id, r);
            }
        }
        self.queue_cv.notify_all();
        mine
    }

    fn commit_group(&self, group: &[Pending]) -> Result<()> {
        let mut wal = sync::lock(&self.wal);
        // A write that queued before the database went read-only must not be applied.
        self.check_writable()?;
        self.throttle()?;
        // Only this leader rotates, so the memtable taken here (or after the rotation) is the
        // one the group's entries go into.
        let mut mem = self.super_version().mem.clone();
        if mem.size_bytes() >= self.opts.memtable_size_bytes {
            let r = self.rotate(&mut wal, true);
            self.fail_on_err(r)?;
            mem = self.super_version().mem.clone();
        }
        let count: u64 = group.iter().map(|p| u64::from(p.batch.count)).sum();
        let seq = wal.last_seq + 1;
        if seq + count > SEQ_MAX {
            return Err(Error::InvalidArgument(
                "sequence numbers exhausted".to_string(),
            ));
        }
        let time_ms = self.env.clock.now_ms();
        let header = batch::payload_header(seq, time_ms, count as u32);
        let mut parts: Vec<&[u8]> = Vec::with_capacity(group.len() + 1);
        parts.push(&header);
        parts.extend(group.iter().map(|p| &p.batch.rep[..]));
        let r = wal.writer.add_record(&parts);
        self.fail_on_err(r)?;
        Counters::add(&self.counters.wal_records, 1);
        if group.iter().any(|p| p.sync) && !planted::active(Bug::AckBeforeWalSync) {
            // Durability point: without this fsync, an acknowledged write could be lost at a
            // power loss.
            let mut r = wal.writer.sync();
            if r.is_err() && planted::active(Bug::RetryFailedFsync) {
                r = wal.writer.sync();
            }
            self.fail_on_err(r)?;
            Counters::add(&self.counters.wal_syncs, 1);
        }
        let time = time_ms.to_le_bytes();
        let mut s = seq;
        for p in group {
            let r = batch::decode_entries(&p.batch.rep, p.batch.count, s, |seq, e| {
                let value = if e.kind == Kind::Delete {
                    &time[..]
                } else {
                    e.value
                };
                mem.insert(e.key, seq, e.kind, value);
            });
            debug_assert!(r.is_ok(), "a batch we encoded must decode");
            s += u64::from(p.batch.count);
        }
        wal.last_seq = s - 1;
        self.visible_seq.store(wal.last_seq, Ordering::Release);
        Counters::add(&self.counters.writes, group.len() as u64);
        Ok(())
    }

    /// Makes the active memtable immutable and starts a new one with a new WAL. With
    /// `backpressure`, first waits while too many immutable memtables await flushing.
    pub(crate) fn rotate(&self, wal: &mut WalState, backpressure: bool) -> Result<()> {
        if backpressure && self.opts.background == Background::Threads {
            let mut bg = sync::lock(&self.bg);
            while self.super_version().imms.len() >= self.opts.max_immutable_memtables
                && !bg.shutdown
            {
                if let Some(cause) = self.read_only_cause() {
                    return Err(Error::ReadOnly { cause });
                }
                bg.pending = true;
                self.bg_cv.notify_all();
                bg = sync::wait(&self.flushed, bg);
            }
        }
        // Durability point: the old WAL must be complete on disk before records in the new one
        // can be synced, or a power loss could keep later writes and lose earlier ones.
        wal.writer.sync()?;
        let number = self.next_file.fetch_add(1, Ordering::SeqCst);
        let path = join(&self.dir, &wal_name(number));
        let file = self
            .env
            .fs
            .create(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        let writer = LogWriter::new(file, path, crate::wal::WAL_MAGIC, number)?;
        // Durability point: without this directory fsync, the new WAL (and every synced write in
        // it) could vanish at a power loss.
        self.env
            .fs
            .sync_dir(&self.dir)
            .map_err(|e| Error::io("sync_dir", &self.dir, e))?;
        wal.writer = writer;
        {
            let mut cur = sync::write(&self.sv);
            let mut next = (**cur).clone();
            let old = std::mem::replace(&mut next.mem, Arc::new(Memtable::new(number)));
            next.imms.insert(0, old);
            *cur = Arc::new(next);
        }
        match self.opts.background {
            Background::Inline => {
                self.flush_all()?;
                self.after_flush()
            }
            Background::Threads => {
                let mut bg = sync::lock(&self.bg);
                bg.pending = true;
                self.bg_cv.notify_all();
                Ok(())
            }
        }
    }

    /// After a flush: compact inline (under simulation), or wake the compaction threads.
    pub(crate) fn after_flush(&self) -> Result<()> {
        match self.opts.background {
            Background::Inline => loop {
                let r = self.compact_step();
                if !self.fail_on_err(r)? {
                    return Ok(());
                }
            },
            Background::Threads => {
                self.signal_compaction();
                Ok(())
            }
        }
    }

    pub(crate) fn signal_compaction(&self) {
        let mut bg = sync::lock(&self.bg);
        bg.compact_pending = true;
        self.bg_cv.notify_all();
    }

    /// Holds writers back while level 0 is too deep: at the slowdown trigger each write yields
    /// once; at the stop trigger writers wait for a compaction. Never under `Inline`, where
    /// compaction runs in the writer's thread.
    fn throttle(&self) -> Result<()> {
        if self.opts.background != Background::Threads {
            return Ok(());
        }
        let l0 = |s: &Self| s.super_version().version.levels[0].len();
        if l0(self) < self.opts.l0_slowdown_writes_trigger {
            return Ok(());
        }
        let mut bg = sync::lock(&self.bg);
        if l0(self) < self.opts.l0_stop_writes_trigger {
            bg.compact_pending = true;
            self.bg_cv.notify_all();
            drop(bg);
            sync::yield_now();
            return Ok(());
        }
        while l0(self) >= self.opts.l0_stop_writes_trigger && !bg.shutdown {
            if let Some(cause) = self.read_only_cause() {
                return Err(Error::ReadOnly { cause });
            }
            bg.compact_pending = true;
            self.bg_cv.notify_all();
            bg = sync::wait(&self.flushed, bg);
        }
        Ok(())
    }

    /// Waits until the flag `flag` picks is set, then clears it. False at shutdown.
    fn wait_for_work(&self, flag: fn(&mut BgState) -> &mut bool) -> bool {
        let mut bg = sync::lock(&self.bg);
        while !*flag(&mut bg) && !bg.shutdown {
            bg = sync::wait(&self.bg_cv, bg);
        }
        if bg.shutdown {
            return false;
        }
        *flag(&mut bg) = false;
        true
    }

    fn flush_loop(&self) {
        loop {
            if !self.wait_for_work(|bg| &mut bg.pending) {
                return;
            }
            if self.read_only_cause().is_some() {
                continue;
            }
            let r = self.flush_all();
            if self.fail_on_err(r).is_ok() {
                self.signal_compaction();
            }
        }
    }

    fn compaction_loop(&self) {
        loop {
            if !self.wait_for_work(|bg| &mut bg.compact_pending) {
                return;
            }
            while self.read_only_cause().is_none() && !self.closed() {
                let r = self.compact_step();
                match self.fail_on_err(r) {
                    Ok(true) => continue,
                    _ => break,
                }
            }
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Counters::add(&self.counters.gets, 1);
        if key.is_empty() {
            return Ok(None);
        }
        // The super version first, then the sequence: every table in it holds only versions at
        // or below the sequence read after it, so a version a flush or compaction dropped as
        // shadowed is never needed (reading the sequence first could skip the newest visible
        // version, now in a table as an even newer one, and return an older one).
        let sv = self.super_version();
        let seq = self.visible_seq.load(Ordering::Acquire);
        let found = sv
            .mem
            .get(key, seq)
            .or_else(|| sv.imms.iter().find_map(|m| m.get(key, seq)));
        if let Some(f) = found {
            return Ok(into_value(f));
        }
        for (n, level) in sv.version.levels.iter().enumerate() {
            // Level 0 tables may overlap: try each, newest first. Deeper levels hold at most one
            // table whose range covers the key.
            let candidates: &[Arc<Table>] = if n == 0 {
                level
            } else {
                let i = level.partition_point(|t| user_range(t).1 < key);
                level.get(i..(i + 1).min(level.len())).unwrap_or(&[])
            };
            for t in candidates {
                if level_skips(t, key) {
                    continue;
                }
                let (f, probe) = t.get(key, seq)?;
                match probe {
                    Probe::FilterSkipped => Counters::add(&self.counters.filter_skips, 1),
                    Probe::Read if f.is_none() => {
                        Counters::add(&self.counters.filter_false_positives, 1)
                    }
                    Probe::Read => {}
                }
                if let Some(f) = f {
                    return Ok(into_value(f));
                }
            }
        }
        Ok(None)
    }

    fn stats(&self) -> Stats {
        let sv = self.super_version();
        let c = &self.counters;
        let mut s = Stats {
            memtable_bytes: sv.mem.size_bytes(),
            immutable_memtables: sv.imms.len(),
            last_sequence: self.visible_seq.load(Ordering::Acquire),
            writes: Counters::get(&c.writes),
            wal_records: Counters::get(&c.wal_records),
            wal_syncs: Counters::get(&c.wal_syncs),
            flushes: Counters::get(&c.flushes),
            gets: Counters::get(&c.gets),
            filter_skips: Counters::get(&c.filter_skips),
            filter_false_positives: Counters::get(&c.filter_false_positives),
            recovered_torn_bytes: Counters::get(&c.recovered_torn_bytes),
            read_only_cause: self.read_only_cause(),
            obsolete_file_errors: Counters::get(&c.obsolete_file_errors),
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
        s.compactions = Counters::get(&c.compactions);
        s.tombstones_dropped = Counters::get(&c.tombstones_dropped);
        s.bytes_reclaimed = Counters::get(&c.bytes_reclaimed);
        s.obsolete_tables_pending = sync::lock(&self.obsolete).len();
        s
    }
}

/// True if `key` lies outside the table's key range (no read, no filter probe needed).
fn level_skips(t: &crate::sstable::Table, key: &[u8]) -> bool {
    let m = t.meta();
    key < crate::key::user_key(&m.smallest) || key > crate::key::user_key(&m.largest)
}

fn into_value(f: Found<Vec<u8>>) -> Option<Vec<u8>> {
    match f {
        Found::Value(v) => Some(v),
        Found::Deleted => None,
    }
}
