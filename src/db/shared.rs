//! The state every part of an open database shares, and the rules for touching it.
//!
//! # Lock order
//!
//! Locks are taken only in this order (a lock may be taken while holding one from an earlier
//! rank, never the reverse), and no lock of the same rank is held with another of that rank:
//!
//! 1. `queue` — the group-commit queue. Never held while taking any other lock but a
//!    writer's `Slot` (a leaf), to hand it the turn to lead.
//! 2. `wal`, `flush_mu`, `compact_mu` — the group-commit leader (and `sync`, `flush`'s
//!    rotation, `close`), one flush, and the registry of running compactions (held only while
//!    one is picked and claimed, or released; the compactions themselves run outside it, as
//!    many at once as `compaction_threads`). None is held while waiting for another, so a
//!    flush never waits for the WAL and a compaction never waits for a flush.
//! 3. `manifest`, `compact_pointers`.
//! 4. `bg` — the background flags; `bg_cv` and `progress` wait on it.
//! 5. `sv`, `obsolete`, `read_only`, `snapshots`, a memtable's `ranges`, a writer's `Slot` —
//!    leaves: nothing is taken while one is held. A writer waits on its slot's condition
//!    variable holding nothing else.
//!
//! Waiting: a writer waits on `progress` (holding `wal`; the wait releases `bg`) for a flush or compaction to
//! make room; the work it waits for takes only `flush_mu` or `compact_mu` and ranks after them,
//! never `wal`, so it can always finish. Every failure that makes the database read-only
//! notifies `progress`, so no writer waits forever on work that will not come.
//!
//! The handle's own mutexes (`Db::bg_threads`, `Db::lock`) are taken only by the one closing
//! call that gets past `mark_closed`, which holds `bg_threads` while it stops and joins the
//! workers; no worker takes either.

use super::running::Running;
use crate::env::Env;
use crate::error::{Error, Result};
use crate::manifest::ManifestWriter;
use crate::memtable::Memtable;
use crate::options::Options;
use crate::record::LogWriter;
use crate::sstable::{BlockCache, Table};
use crate::stats::Counters;
use crate::sync::{self, Arc, AtomicBool, AtomicU64, Condvar, Mutex, Ordering, RwLock};
use crate::version::{Version, NUM_LEVELS};
use crate::wal::batch::WriteBatch;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

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

/// A write waiting in the group-commit queue.
pub(crate) struct Pending {
    pub id: u64,
    pub batch: WriteBatch,
    pub sync: bool,
    /// Where its writer waits: for its outcome, or for its turn to lead.
    pub slot: Arc<Slot>,
}

/// One writing call's mailbox: the leader posts outcomes here and wakes only this writer, so
/// a group's end wakes its members alone and they never contend for the queue.
#[derive(Default)]
pub(crate) struct Slot {
    pub state: Mutex<SlotState>,
    pub cv: Condvar,
}

#[derive(Default)]
pub(crate) struct SlotState {
    /// Outcomes posted, by write id.
    pub done: BTreeMap<u64, Result<()>>,
    /// Set when leadership came free with this writer's write at the head of the queue.
    pub turn: bool,
}

/// The group-commit queue: writes wait here for a leader to commit them.
#[derive(Default)]
pub(crate) struct WriteQueue {
    pub next_id: u64,
    pub queue: VecDeque<Pending>,
    pub leader_active: bool,
}

/// Flags the background workers wait on.
#[derive(Default)]
pub(crate) struct BgState {
    /// Immutable memtables wait for a flush.
    pub flush_pending: bool,
    /// Level 0 or a level's size may be over its target.
    pub compact_pending: bool,
    pub shutdown: bool,
}

/// The state shared by the handle, the write path, the readers and the background work.
pub(crate) struct Shared {
    pub env: Env,
    pub dir: PathBuf,
    pub opts: Options,
    /// The current super version; replaced only through [`Shared::install`].
    sv: RwLock<Arc<SuperVersion>>,
    pub wal: Mutex<WalState>,
    pub queue: Mutex<WriteQueue>,
    /// Serializes flushes.
    pub flush_mu: Mutex<()>,
    /// The compactions running (their claims on tables and key ranges); `compact_cv` wakes a
    /// `compact_range` waiting for a claim to go.
    pub compact_mu: Mutex<Running>,
    pub compact_cv: Condvar,
    pub manifest: Mutex<ManifestWriter>,
    /// Where the last compaction of each level ended.
    pub compact_pointers: Mutex<[Vec<u8>; NUM_LEVELS]>,
    pub bg: Mutex<BgState>,
    /// Wakes the background workers.
    pub bg_cv: Condvar,
    /// Signalled (under `bg`) when a flush or compaction finished or the database failed.
    pub progress: Condvar,
    pub next_file: AtomicU64,
    /// The newest sequence number readers may see.
    pub visible_seq: AtomicU64,
    /// The read-only error, once something failed.
    read_only: Mutex<Option<Error>>,
    /// Tables no version names any more, removed once no reader holds them.
    pub obsolete: Mutex<Vec<Arc<Table>>>,
    pub counters: Counters,
    closed: AtomicBool,
    /// Compactions running now (a flush that finishes meanwhile counts as racing one).
    pub compactions_running: AtomicU64,
    /// The data blocks every table reads through (`None` if `block_cache_bytes` is 0).
    pub block_cache: Option<Arc<BlockCache>>,
    /// Live snapshots: sequence number -> how many handles hold it.
    snapshots: Mutex<BTreeMap<u64, usize>>,
}

/// What opening hands over to build the shared state.
pub(crate) struct Parts {
    pub env: Env,
    pub dir: PathBuf,
    pub opts: Options,
    pub sv: SuperVersion,
    pub wal: WalState,
    pub manifest: ManifestWriter,
    pub next_file: u64,
    pub block_cache: Option<Arc<BlockCache>>,
}

impl Shared {
    pub fn new(p: Parts) -> Shared {
        let last_seq = p.wal.last_seq;
        Shared {
            env: p.env,
            dir: p.dir,
            opts: p.opts,
            sv: RwLock::new(Arc::new(p.sv)),
            wal: Mutex::new(p.wal),
            queue: Mutex::new(WriteQueue::default()),
            flush_mu: Mutex::new(()),
            compact_mu: Mutex::new(Running::default()),
            compact_cv: Condvar::new(),
            manifest: Mutex::new(p.manifest),
            compact_pointers: Mutex::new(Default::default()),
            bg: Mutex::new(BgState::default()),
            bg_cv: Condvar::new(),
            progress: Condvar::new(),
            next_file: AtomicU64::new(p.next_file),
            visible_seq: AtomicU64::new(last_seq),
            read_only: Mutex::new(None),
            obsolete: Mutex::new(Vec::new()),
            counters: Counters::default(),
            closed: AtomicBool::new(false),
            compactions_running: AtomicU64::new(0),
            snapshots: Mutex::new(BTreeMap::new()),
            block_cache: p.block_cache,
        }
    }

    /// Registers a snapshot at the newest visible sequence and returns it. Read under the
    /// snapshot lock, so a flush or compaction that lists the snapshots after this returns
    /// sees it, and one that listed them before holds no version newer than it.
    pub fn register_snapshot(&self) -> u64 {
        let mut s = sync::lock(&self.snapshots);
        let seq = self.visible_seq.load(Ordering::Acquire);
        *s.entry(seq).or_default() += 1;
        seq
    }

    /// Releases one hold on the snapshot at `seq`.
    pub fn release_snapshot(&self, seq: u64) {
        let mut s = sync::lock(&self.snapshots);
        if let Some(n) = s.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                s.remove(&seq);
            }
        }
    }

    /// The sequence numbers of the live snapshots, ascending.
    pub fn snapshot_seqs(&self) -> Vec<u64> {
        sync::lock(&self.snapshots).keys().copied().collect()
    }

    /// Live snapshots and the oldest one's sequence.
    pub fn snapshot_summary(&self) -> (usize, Option<u64>) {
        let s = sync::lock(&self.snapshots);
        (s.values().sum(), s.keys().next().copied())
    }

    /// The current super version.
    pub fn super_version(&self) -> Arc<SuperVersion> {
        sync::read(&self.sv).clone()
    }

    /// Replaces the super version with `change` applied to a copy of it: the one place readers'
    /// view changes (rotation, flush, compaction).
    pub fn install(&self, change: impl FnOnce(&mut SuperVersion)) {
        let mut cur = sync::write(&self.sv);
        let mut next = (**cur).clone();
        change(&mut next);
        *cur = Arc::new(next);
    }

    /// A fresh file number for a WAL, table or manifest.
    pub fn new_file_number(&self) -> u64 {
        self.next_file.fetch_add(1, Ordering::SeqCst)
    }

    pub fn closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Marks the database closed; true if it already was.
    pub fn mark_closed(&self) -> bool {
        self.closed.swap(true, Ordering::SeqCst)
    }

    pub fn check_open(&self) -> Result<()> {
        if self.closed() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Fails if the database is closed or read-only.
    pub fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        match &*sync::lock(&self.read_only) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// The read-only error, if something failed.
    pub fn read_only_error(&self) -> Option<Error> {
        sync::lock(&self.read_only).clone()
    }

    /// Why the database is read-only, if it is.
    pub fn read_only_cause(&self) -> Option<String> {
        self.read_only_error().map(|e| match e {
            Error::ReadOnly { cause } => cause.to_string(),
            e => e.to_string(),
        })
    }

    /// Enters the read-only state if `r` failed: after a failed WAL append or fsync, or a failed
    /// flush or compaction, nothing the engine holds in memory can be trusted to match the
    /// disk. Wakes every writer waiting for background progress.
    pub fn fail_on_err<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            let mut ro = sync::lock(&self.read_only);
            if ro.is_none() {
                log::error!(
                    "{}: the database is read-only from now on (reopen to recover): {e}",
                    self.dir.display()
                );
                *ro = Some(Error::read_only(e));
            }
            drop(ro);
            self.notify_progress();
        }
        r
    }

    /// Tells waiting writers that a flush or compaction finished (or failed).
    pub fn notify_progress(&self) {
        let _g = sync::lock(&self.bg);
        self.progress.notify_all();
    }

    /// Asks the flush worker to flush the immutable memtables.
    pub fn signal_flush(&self) {
        let mut bg = sync::lock(&self.bg);
        bg.flush_pending = true;
        self.bg_cv.notify_all();
    }

    /// Asks the compaction workers to look for work.
    pub fn signal_compaction(&self) {
        let mut bg = sync::lock(&self.bg);
        bg.compact_pending = true;
        self.bg_cv.notify_all();
    }
}
