//! `SimFs`: an in-memory filesystem with separate `current` and `durable` states and the fault
//! model of `docs/FAULTS.md`.
//!
//! A file's durable content is its current content up to `durable_len` (its size at the last
//! sync), except for `shadow` pages, overwritten in place (`File::write_at`) since that sync,
//! whose durable bytes are kept beside them, and `phantom` ranges: pages whose fsync failed and
//! that the kernel then marked clean without writing (fsyncgate). A size grown by `set_len`
//! since the last sync may or may not survive a power loss. Directories
//! keep their current entries, their durable entries, and the ordered log of entry changes made
//! since their last sync.
//!
//! Handles carry the epoch they were opened in; after a crash every old handle fails, as if its
//! process had died, so a crashed `Db` cannot touch the recovered world.

mod crash;
mod file;
mod ops;

use file::{SimFile, SimLock};
use sedimentdb::{File, FileLock, Fs};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The unit in which unsynced data survives a power loss.
pub const PAGE_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    File(u64),
    Dir,
}

#[derive(Debug, Clone)]
enum DirOp {
    Put(String, Node),
    Remove(String),
    /// One change, so that a power loss keeps either the old or the new name, never both.
    Rename(String, String, Node),
}

#[derive(Debug, Default, Clone)]
struct Dir {
    current: BTreeMap<String, Node>,
    durable: BTreeMap<String, Node>,
    unsynced: Vec<DirOp>,
}

#[derive(Debug, Default, Clone)]
struct FileData {
    data: Vec<u8>,
    durable_len: usize,
    /// Byte ranges a failed fsync dropped: reads see them, the disk never got them.
    phantom: Vec<(usize, usize)>,
    /// Pages below `durable_len` overwritten since the last sync: page number to the page's
    /// durable bytes (up to `durable_len`).
    shadow: BTreeMap<usize, Vec<u8>>,
    /// Overwritten pages a failed fsync marked clean without writing: their durable bytes
    /// come back at a power loss.
    phantom_pages: BTreeMap<usize, Vec<u8>>,
    /// The size was grown by `set_len` since the last sync.
    grown: bool,
}

/// How an injected fsync failure treats the file's dirty pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncFailure {
    /// The pages stay dirty; a later sync may persist them.
    KeepPages,
    /// The pages are marked clean without being written: a later sync returns `Ok` and they are
    /// still lost at a power loss (the Linux behaviour behind fsyncgate).
    DropPages,
}

/// Counters of what the filesystem was asked to do and what it injected.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SimFsStats {
    /// Filesystem calls made (every trait method counts one).
    pub calls: u64,
    pub syncs: u64,
    pub dir_syncs: u64,
    pub bytes_written: u64,
    pub power_losses: u64,
    pub process_crashes: u64,
    /// Faults that fired, by kind.
    pub injected: BTreeMap<&'static str, u64>,
    /// A hash of every call and its result, in order: the same seed must give the same trace.
    pub trace_hash: u64,
    /// Uses of a handle to a removed file in strict-unlink mode (a reader that outlived the
    /// file it read), and the first of them: each is a bug in the engine.
    pub unlinked_uses: u64,
    pub first_unlinked_use: Option<String>,
    /// Hard links made.
    pub links: u64,
}

impl SimFsStats {
    /// Faults fired so far, of every kind.
    pub fn injected_total(&self) -> u64 {
        self.injected.values().sum()
    }
}

#[derive(Debug, Default)]
struct Faults {
    /// The call number at which the machine dies (power loss or process crash pending).
    die_at_call: Option<u64>,
    /// File syncs left before the one at which the machine dies.
    die_at_sync: Option<u64>,
    dead: bool,
    sync_failures: VecDeque<SyncFailure>,
    /// A WAL fsync that fails: after this many WAL fsyncs succeeded, the next one fails.
    wal_sync_failure: Option<(u64, SyncFailure)>,
    /// Failures only the next directory fsyncs take.
    dir_sync_failures: VecDeque<SyncFailure>,
    /// Pending append failures: `Some(n)` writes a prefix of `n` bytes first (a short write).
    append_failures: VecDeque<Option<usize>>,
    quota_bytes: Option<u64>,
    /// The next append to a table file goes wrong without an error.
    table_write_fault: Option<TableWriteFault>,
    /// Reads of table files that fail with EIO from now on (latent sector errors).
    table_read_failures: u32,
}

/// How an append to a table file goes wrong while reporting success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableWriteFault {
    /// The data never reaches the file (a lost write).
    Lost,
    /// The data lands at the end of another table file instead (a misdirected write).
    Misdirected,
}

#[derive(Debug, Default)]
struct State {
    /// Refuse any use of a handle whose file no directory names (stricter than POSIX): proves
    /// the engine never removes a file that someone still reads.
    strict_unlink: bool,
    /// Whether `link` works (else it fails with `Unsupported` and the engine copies).
    links_supported: bool,
    dirs: BTreeMap<PathBuf, Dir>,
    files: BTreeMap<u64, FileData>,
    next_inode: u64,
    epoch: u64,
    locks: BTreeSet<PathBuf>,
    faults: Faults,
    stats: SimFsStats,
}

/// An in-memory filesystem whose power-loss behaviour and faults follow `docs/FAULTS.md`.
#[derive(Debug)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", p.display()),
    )
}

fn split(p: &Path) -> io::Result<(PathBuf, String)> {
    let name = p
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    Ok((
        p.parent().unwrap_or(Path::new("")).to_path_buf(),
        name.to_string(),
    ))
}

/// Takes the filesystem's state for one call. In threaded runs (`--cfg shuttle`) every
/// filesystem call is first a scheduling point, so another thread may run between any two
/// calls (never inside one: the state's lock is held only within a call and never across a
/// yield).
fn lock_state(m: &Mutex<State>) -> MutexGuard<'_, State> {
    #[cfg(shuttle)]
    shuttle::thread::yield_now();
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FileData {
    /// Writes `bytes` at `at` (past the end: the gap reads as zeros), keeping the durable bytes
    /// of every page below `durable_len` it changes.
    fn overwrite(&mut self, at: usize, bytes: &[u8]) {
        let end = at + bytes.len();
        if bytes.is_empty() {
            return;
        }
        for page in at / PAGE_BYTES..=(end - 1) / PAGE_BYTES {
            let start = page * PAGE_BYTES;
            if start >= self.durable_len {
                break;
            }
            let stop = (start + PAGE_BYTES).min(self.durable_len);
            let data = &self.data;
            self.shadow
                .entry(page)
                .or_insert_with(|| data[start..stop].to_vec());
        }
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[at..end].copy_from_slice(bytes);
    }
}

impl State {
    fn trace(&mut self, op: &str, path: &Path, n: u64) {
        // FNV-1a over the call: deterministic and independent of the host.
        let mut h = self.stats.trace_hash ^ 0xcbf2_9ce4_8422_2325;
        for b in op
            .bytes()
            .chain(path.to_string_lossy().bytes())
            .chain(n.to_le_bytes())
        {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        self.stats.trace_hash = h;
        self.stats.calls += 1;
    }

    fn inject(&mut self, kind: &'static str) {
        *self.stats.injected.entry(kind).or_default() += 1;
    }

    /// Every call starts here: traced, and refused once the machine is dead.
    fn begin(&mut self, op: &str, path: &Path, n: u64) -> io::Result<()> {
        self.trace(op, path, n);
        if let Some(k) = self.faults.die_at_call {
            if self.stats.calls >= k {
                self.faults.die_at_call = None;
                self.faults.dead = true;
                self.inject("crash point reached");
            }
        }
        if op == "sync" {
            if let Some(k) = self.faults.die_at_sync {
                if k <= 1 {
                    self.faults.die_at_sync = None;
                    self.faults.dead = true;
                    self.inject("crash at a sync");
                } else {
                    self.faults.die_at_sync = Some(k - 1);
                }
            }
        }
        if self.faults.dead {
            return Err(io::Error::other(
                "simulated machine is down (crash point reached)",
            ));
        }
        Ok(())
    }

    fn dir_mut(&mut self, p: &Path) -> io::Result<&mut Dir> {
        self.dirs.get_mut(p).ok_or_else(|| not_found(p))
    }

    fn lookup(&self, p: &Path) -> io::Result<Node> {
        if self.dirs.contains_key(p) {
            return Ok(Node::Dir);
        }
        let (dir, name) = split(p)?;
        self.dirs
            .get(&dir)
            .and_then(|d| d.current.get(&name))
            .copied()
            .ok_or_else(|| not_found(p))
    }

    fn put_entry(&mut self, dir: &Path, name: String, node: Node) -> io::Result<()> {
        let d = self.dir_mut(dir)?;
        d.current.insert(name.clone(), node);
        d.unsynced.push(DirOp::Put(name, node));
        Ok(())
    }

    fn remove_entry(&mut self, dir: &Path, name: &str) -> io::Result<Node> {
        let d = self.dir_mut(dir)?;
        let node = d
            .current
            .remove(name)
            .ok_or_else(|| not_found(&dir.join(name)))?;
        d.unsynced.push(DirOp::Remove(name.to_string()));
        Ok(node)
    }

    fn new_file(&mut self) -> u64 {
        let inode = self.next_inode;
        self.next_inode += 1;
        self.files.insert(inode, FileData::default());
        inode
    }

    /// True if some directory names `inode` with a table's name.
    fn is_table_inode(&self, inode: u64) -> bool {
        self.dirs.values().any(|d| {
            d.current
                .iter()
                .any(|(name, n)| *n == Node::File(inode) && name.ends_with(".sst"))
        })
    }

    fn is_named(&self, inode: u64) -> bool {
        self.dirs
            .values()
            .any(|d| d.current.values().any(|n| *n == Node::File(inode)))
    }

    /// Bytes held by files some directory names now.
    fn used_bytes(&self) -> u64 {
        let mut live = BTreeSet::new();
        for d in self.dirs.values() {
            for n in d.current.values() {
                if let Node::File(i) = n {
                    live.insert(*i);
                }
            }
        }
        live.iter()
            .filter_map(|i| self.files.get(i))
            .map(|f| f.data.len() as u64)
            .sum()
    }

    /// Drops files no directory names any more, current or durable. Called only at a crash,
    /// when no handle of the old epoch can read them.
    fn collect_garbage(&mut self) {
        let mut live = BTreeSet::new();
        for d in self.dirs.values() {
            for n in d.current.values().chain(d.durable.values()) {
                if let Node::File(i) = n {
                    live.insert(*i);
                }
            }
        }
        self.files.retain(|i, _| live.contains(i));
    }

    fn end_epoch(&mut self) {
        self.epoch += 1;
        self.locks.clear();
        self.faults = Faults {
            quota_bytes: self.faults.quota_bytes,
            ..Faults::default()
        };
    }
}

impl SimFs {
    /// An empty filesystem with a root directory `/`.
    pub fn new() -> SimFs {
        let mut st = State::default();
        st.dirs.insert(PathBuf::from("/"), Dir::default());
        st.dirs.insert(PathBuf::from(""), Dir::default());
        st.links_supported = true;
        SimFs {
            state: Arc::new(Mutex::new(st)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock_state(&self.state)
    }

    /// Arms a crash: the `n`-th filesystem call from now, and every call after it, fails as if
    /// the machine lost power. The caller then applies [`SimFs::power_loss`] or
    /// [`SimFs::process_crash`].
    pub fn die_after_calls(&self, n: u64) {
        let mut st = self.lock();
        st.faults.die_at_call = Some(st.stats.calls + n.max(1));
    }

    /// Arms a crash at the `n`-th file `sync` from now (counting from 1): that sync does not
    /// happen, and it and every call after it fail as after [`SimFs::die_after_calls`]. Bugs
    /// that acknowledge before their sync live just before one.
    pub fn die_at_sync(&self, n: u64) {
        self.lock().faults.die_at_sync = Some(n.max(1));
    }

    /// True once an armed crash point was reached.
    pub fn is_dead(&self) -> bool {
        self.lock().faults.dead
    }

    /// The next `sync` of a file fails with EIO, treating its dirty pages as `mode` says.
    pub fn fail_next_sync(&self, mode: SyncFailure) {
        self.lock().faults.sync_failures.push_back(mode);
    }

    /// After `after` fsyncs of WAL files succeed, the next one fails with EIO, treating its
    /// dirty pages as `mode` says (other files' fsyncs are not counted).
    pub fn fail_wal_sync(&self, after: u64, mode: SyncFailure) {
        self.lock().faults.wal_sync_failure = Some((after, mode));
    }

    /// The next `sync_dir` fails with EIO (file syncs before it succeed).
    pub fn fail_next_dir_sync(&self, mode: SyncFailure) {
        self.lock().faults.dir_sync_failures.push_back(mode);
    }

    /// The next `append` fails with EIO, first writing `prefix` bytes if `Some` (a short write).
    pub fn fail_next_append(&self, prefix: Option<usize>) {
        self.lock().faults.append_failures.push_back(prefix);
    }

    /// Sets the space available to files, in bytes (`None`: unlimited). Appends past it fail
    /// with ENOSPC after writing what fits.
    pub fn set_quota(&self, bytes: Option<u64>) {
        self.lock().faults.quota_bytes = bytes;
    }

    /// Bytes held by named files.
    pub fn used_bytes(&self) -> u64 {
        self.lock().used_bytes()
    }

    /// A copy of this filesystem as it is now (what reads see and what is durable), with no
    /// fault armed, no lock held and fresh counters: for checking a result (a checkpoint) as
    /// if the machine crashed now, without disturbing the run.
    pub fn fork(&self) -> SimFs {
        let st = self.lock();
        let copy = State {
            links_supported: st.links_supported,
            dirs: st.dirs.clone(),
            files: st.files.clone(),
            next_inode: st.next_inode,
            epoch: st.epoch,
            ..State::default()
        };
        SimFs {
            state: Arc::new(Mutex::new(copy)),
        }
    }

    pub fn set_links_supported(&self, on: bool) {
        self.lock().links_supported = on;
    }

    /// In strict mode any use of a handle to a removed file fails, as if removal destroyed the
    /// file at once (stricter than POSIX, where it lives until its last handle closes).
    pub fn set_strict_unlink(&self, on: bool) {
        self.lock().strict_unlink = on;
    }

    /// Disarms every pending fault (not the quota).
    /// The next append to a table file reports success but goes wrong as `fault` says.
    pub fn fault_next_table_write(&self, fault: TableWriteFault) {
        self.lock().faults.table_write_fault = Some(fault);
    }

    /// The next `n` reads of table files fail with EIO (data that was readable before).
    pub fn fail_table_reads(&self, n: u32) {
        self.lock().faults.table_read_failures = n;
    }

    pub fn clear_faults(&self) {
        let mut st = self.lock();
        let quota = st.faults.quota_bytes;
        let dead = st.faults.dead;
        st.faults = Faults {
            quota_bytes: quota,
            dead,
            ..Faults::default()
        };
    }

    /// Flips bit `bit` of byte `offset` of the file at `path`, in its current and durable content
    /// (media corruption). Returns false if there is no such byte.
    pub fn flip_bit(&self, path: &Path, offset: usize, bit: u8) -> bool {
        let mut st = self.lock();
        let Ok(Node::File(i)) = st.lookup(path) else {
            return false;
        };
        let flipped = match st.files.get_mut(&i) {
            Some(f) if offset < f.data.len() => {
                f.data[offset] ^= 1 << (bit % 8);
                // The durable copy of an overwritten page is damaged too.
                let page = offset / PAGE_BYTES;
                if let Some(b) = f
                    .shadow
                    .get_mut(&page)
                    .and_then(|p| p.get_mut(offset % PAGE_BYTES))
                {
                    *b ^= 1 << (bit % 8);
                }
                true
            }
            _ => false,
        };
        if flipped {
            st.inject("bit flip");
        }
        flipped
    }

    /// Durable length of the file at `path`, if it exists.
    pub fn durable_len(&self, path: &Path) -> Option<usize> {
        let st = self.lock();
        match st.lookup(path) {
            Ok(Node::File(i)) => st.files.get(&i).map(|f| f.durable_len),
            _ => None,
        }
    }

    /// The current length of the file at `path`, if it exists (no call counted).
    pub fn len_of(&self, path: &Path) -> Option<usize> {
        let st = self.lock();
        match st.lookup(path) {
            Ok(Node::File(i)) => st.files.get(&i).map(|f| f.data.len()),
            _ => None,
        }
    }

    /// The current bytes of a file.
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.lock();
        match st.lookup(path) {
            Ok(Node::File(i)) => st.files.get(&i).map(|f| f.data.clone()),
            _ => None,
        }
    }

    /// Names in a directory (current view), without counting a call.
    pub fn names(&self, dir: &Path) -> Vec<String> {
        let st = self.lock();
        st.dirs
            .get(dir)
            .map(|d| d.current.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Writes a whole file, durably (for building test fixtures).
    pub fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut st = self.lock();
        let (dir, name) = split(path)?;
        let inode = st.new_file();
        let f = st.files.get_mut(&inode).expect("just made");
        f.data = data.to_vec();
        f.durable_len = data.len();
        let d = st.dir_mut(&dir)?;
        d.current.insert(name.clone(), Node::File(inode));
        d.durable.insert(name, Node::File(inode));
        Ok(())
    }

    /// Counters and the trace hash.
    pub fn stats(&self) -> SimFsStats {
        self.lock().stats.clone()
    }
}

impl Default for SimFs {
    fn default() -> Self {
        SimFs::new()
    }
}
