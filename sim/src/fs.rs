//! `SimFs`: an in-memory filesystem with separate `current` and `durable` states and the fault
//! model of `FAULTS.md`.
//!
//! Files here are append-only (the engine never overwrites), so a file's durable content is a
//! prefix of its current content, `data[..durable_len]`, minus `phantom` ranges: pages whose
//! fsync failed and that the kernel then marked clean without writing (fsyncgate). Directories
//! keep their current entries, their durable entries, and the ordered log of entry changes made
//! since their last sync.
//!
//! Handles carry the epoch they were opened in; after a crash every old handle fails, as if its
//! process had died, so a crashed `Db` cannot touch the recovered world.

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
}

#[derive(Debug, Default)]
struct Faults {
    /// The call number at which the machine dies (power loss or process crash pending).
    die_at_call: Option<u64>,
    dead: bool,
    sync_failures: VecDeque<SyncFailure>,
    /// Pending append failures: `Some(n)` writes a prefix of `n` bytes first (a short write).
    append_failures: VecDeque<Option<usize>>,
    quota_bytes: Option<u64>,
}

#[derive(Debug, Default)]
struct State {
    /// Refuse any use of a handle whose file no directory names (stricter than POSIX): proves
    /// the engine never removes a file that someone still reads.
    strict_unlink: bool,
    dirs: BTreeMap<PathBuf, Dir>,
    files: BTreeMap<u64, FileData>,
    next_inode: u64,
    epoch: u64,
    locks: BTreeSet<PathBuf>,
    faults: Faults,
    stats: SimFsStats,
}

/// An in-memory filesystem whose power-loss behaviour and faults follow `FAULTS.md`.
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

fn lock_state(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
        SimFs {
            state: Arc::new(Mutex::new(st)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock_state(&self.state)
    }

    /// A power loss keeping only what was made durable: every file keeps its synced bytes, every
    /// directory its synced entries.
    pub fn crash(&self) {
        self.power_loss(&mut |_| 0);
    }

    /// A process crash: all written data survives (it was in the page cache); only the process's
    /// handles and locks are lost.
    pub fn process_crash(&self) {
        let mut st = self.lock();
        st.end_epoch();
        st.stats.process_crashes += 1;
        st.trace("process_crash", Path::new(""), 0);
    }

    /// A power loss. What unsynced state survives is decided by `choose(n)`, which returns a
    /// number below `n` (a seeded RNG, or an enumerator of every choice):
    /// - each directory keeps a prefix of its unsynced entry changes: `choose(changes + 1)`;
    /// - each unsynced 4 KiB page of each file survives or not: `choose(2)`;
    /// - the last surviving page is whole, torn to a prefix, or zeros: `choose(3)`, and for a
    ///   prefix its length `choose(page_len)`.
    ///
    /// Pages lost before a surviving one read as zeros (a hole). Pages an fsync failure dropped
    /// read as zeros. Every handle opened before this call fails from now on; locks are released.
    pub fn power_loss(&self, choose: &mut dyn FnMut(u64) -> u64) {
        let mut st = self.lock();
        st.end_epoch();
        st.stats.power_losses += 1;
        let dirs: Vec<PathBuf> = st.dirs.keys().cloned().collect();
        for p in dirs {
            let d = st.dirs.get_mut(&p).expect("listed");
            let n = d.unsynced.len();
            let keep = if n == 0 {
                0
            } else {
                (choose(n as u64 + 1) as usize).min(n)
            };
            for op in d.unsynced.drain(..).take(keep) {
                match op {
                    DirOp::Put(n, node) => {
                        d.durable.insert(n, node);
                    }
                    DirOp::Remove(n) => {
                        d.durable.remove(&n);
                    }
                    DirOp::Rename(from, to, node) => {
                        d.durable.remove(&from);
                        d.durable.insert(to, node);
                    }
                }
            }
            d.unsynced.clear();
            d.current = d.durable.clone();
        }
        // Directories whose own entry did not survive vanish with their contents.
        let named: BTreeSet<PathBuf> = st
            .dirs
            .iter()
            .flat_map(|(p, d)| {
                d.current
                    .iter()
                    .filter(|(_, n)| **n == Node::Dir)
                    .map(move |(name, _)| p.join(name))
            })
            .collect();
        st.dirs
            .retain(|p, _| p.as_os_str().is_empty() || p == Path::new("/") || named.contains(p));
        st.collect_garbage();
        let inodes: Vec<u64> = st.files.keys().copied().collect();
        for i in inodes {
            let f = st.files.get_mut(&i).expect("listed");
            let len = f.data.len();
            let mut new_len = f.durable_len;
            if len > f.durable_len {
                // Unsynced pages: from the one holding durable_len to the end.
                let first = f.durable_len / PAGE_BYTES;
                let last = (len - 1) / PAGE_BYTES;
                let mut survivors = Vec::new();
                for page in first..=last {
                    if choose(2) == 1 {
                        survivors.push(page);
                    }
                }
                let mut zero = Vec::new();
                if let Some(&lp) = survivors.last() {
                    let page_start = lp * PAGE_BYTES;
                    let page_end = ((lp + 1) * PAGE_BYTES).min(len);
                    new_len = page_end;
                    match choose(3) {
                        0 => {}
                        1 => {
                            let keep_from = page_start.max(f.durable_len);
                            let span = (page_end - keep_from) as u64;
                            new_len = keep_from + choose(span.max(1)) as usize;
                        }
                        _ => zero.push((page_start.max(f.durable_len), page_end)),
                    }
                    for page in first..=lp {
                        if !survivors.contains(&page) {
                            let s = (page * PAGE_BYTES).max(f.durable_len);
                            zero.push((s, ((page + 1) * PAGE_BYTES).min(len)));
                        }
                    }
                }
                f.data.truncate(new_len.max(f.durable_len));
                for (s, e) in zero {
                    let e = e.min(f.data.len());
                    if s < e {
                        f.data[s..e].fill(0);
                    }
                }
            }
            for (s, e) in std::mem::take(&mut f.phantom) {
                let e = e.min(f.data.len());
                if s < e {
                    f.data[s..e].fill(0);
                }
            }
            // What survived the power loss is on the disk now.
            f.durable_len = f.data.len();
        }
        st.trace("power_loss", Path::new(""), 0);
    }

    /// Arms a crash: the `n`-th filesystem call from now, and every call after it, fails as if
    /// the machine lost power. The caller then applies [`SimFs::power_loss`] or
    /// [`SimFs::process_crash`].
    pub fn die_after_calls(&self, n: u64) {
        let mut st = self.lock();
        st.faults.die_at_call = Some(st.stats.calls + n.max(1));
    }

    /// True once an armed crash point was reached.
    pub fn is_dead(&self) -> bool {
        self.lock().faults.dead
    }

    /// The next `sync` of a file fails with EIO, treating its dirty pages as `mode` says.
    pub fn fail_next_sync(&self, mode: SyncFailure) {
        self.lock().faults.sync_failures.push_back(mode);
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

    /// In strict mode any use of a handle to a removed file fails, as if removal destroyed the
    /// file at once (stricter than POSIX, where it lives until its last handle closes).
    pub fn set_strict_unlink(&self, on: bool) {
        self.lock().strict_unlink = on;
    }

    /// Disarms every pending fault (not the quota).
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
        let flipped = match st.files.get_mut(&i).and_then(|f| f.data.get_mut(offset)) {
            Some(b) => {
                *b ^= 1 << (bit % 8);
                true
            }
            None => false,
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

struct SimFile {
    state: Arc<Mutex<State>>,
    inode: u64,
    epoch: u64,
    path: PathBuf,
}

impl SimFile {
    fn with<R>(
        &self,
        op: &str,
        n: u64,
        f: impl FnOnce(&mut State, u64) -> io::Result<R>,
    ) -> io::Result<R> {
        let mut st = lock_state(&self.state);
        st.begin(op, &self.path, n)?;
        if st.epoch != self.epoch {
            return Err(io::Error::other(
                "stale handle: the simulated machine crashed",
            ));
        }
        if !st.files.contains_key(&self.inode) {
            return Err(io::Error::other("file was removed and collected"));
        }
        if st.strict_unlink && !st.is_named(self.inode) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} used after it was removed (strict unlink)",
                    self.path.display()
                ),
            ));
        }
        f(&mut st, self.inode)
    }
}

impl File for SimFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.with("read", offset, |st, i| {
            let f = &st.files[&i];
            let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
            let end = start
                .checked_add(buf.len())
                .ok_or(io::ErrorKind::UnexpectedEof)?;
            let src = f.data.get(start..end).ok_or(io::ErrorKind::UnexpectedEof)?;
            buf.copy_from_slice(src);
            Ok(())
        })
    }

    fn append(&self, data: &[u8]) -> io::Result<()> {
        self.with("append", data.len() as u64, |st, i| {
            if let Some(prefix) = st.faults.append_failures.pop_front() {
                let n = prefix.unwrap_or(0).min(data.len());
                st.files
                    .get_mut(&i)
                    .expect("checked")
                    .data
                    .extend_from_slice(&data[..n]);
                st.inject(if n > 0 { "short write" } else { "write error" });
                return Err(io::Error::other("simulated write error (EIO)"));
            }
            if let Some(q) = st.faults.quota_bytes {
                let used = st.used_bytes();
                if used + data.len() as u64 > q {
                    let n = q.saturating_sub(used).min(data.len() as u64) as usize;
                    st.files
                        .get_mut(&i)
                        .expect("checked")
                        .data
                        .extend_from_slice(&data[..n]);
                    st.inject("disk full");
                    return Err(io::Error::new(
                        io::ErrorKind::StorageFull,
                        "simulated disk full (ENOSPC)",
                    ));
                }
            }
            st.files
                .get_mut(&i)
                .expect("checked")
                .data
                .extend_from_slice(data);
            st.stats.bytes_written += data.len() as u64;
            Ok(())
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.with("sync", 0, |st, i| {
            if let Some(mode) = st.faults.sync_failures.pop_front() {
                let f = st.files.get_mut(&i).expect("checked");
                if mode == SyncFailure::DropPages && f.data.len() > f.durable_len {
                    f.phantom.push((f.durable_len, f.data.len()));
                }
                st.inject(match mode {
                    SyncFailure::KeepPages => "fsync error (pages kept)",
                    SyncFailure::DropPages => "fsync error (pages dropped)",
                });
                return Err(io::Error::other("simulated fsync error (EIO)"));
            }
            let f = st.files.get_mut(&i).expect("checked");
            f.durable_len = f.data.len();
            st.stats.syncs += 1;
            Ok(())
        })
    }

    fn len(&self) -> io::Result<u64> {
        self.with("len", 0, |st, i| Ok(st.files[&i].data.len() as u64))
    }
}

struct SimLock {
    state: Arc<Mutex<State>>,
    path: PathBuf,
    epoch: u64,
}

impl FileLock for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut st = lock_state(&self.state);
        if st.epoch == self.epoch {
            st.locks.remove(&self.path);
        }
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.begin("create_dir_all", path, 0)?;
        let mut missing = Vec::new();
        let mut p = path.to_path_buf();
        while !st.dirs.contains_key(&p) {
            missing.push(p.clone());
            match p.parent() {
                Some(q) => p = q.to_path_buf(),
                None => break,
            }
        }
        for d in missing.into_iter().rev() {
            let (parent, name) = split(&d)?;
            if let Some(Node::File(_)) = st.dirs.get(&parent).and_then(|x| x.current.get(&name)) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a file is in the way",
                ));
            }
            st.put_entry(&parent, name, Node::Dir)?;
            st.dirs.insert(d, Dir::default());
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        let mut st = self.lock();
        st.begin("create", path, 0)?;
        let (dir, name) = split(path)?;
        if st.dir_mut(&dir)?.current.contains_key(&name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists", path.display()),
            ));
        }
        let inode = st.new_file();
        st.put_entry(&dir, name, Node::File(inode))?;
        Ok(Arc::new(SimFile {
            state: self.state.clone(),
            inode,
            epoch: st.epoch,
            path: path.to_path_buf(),
        }))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        let mut st = self.lock();
        st.begin("open", path, 0)?;
        match st.lookup(path)? {
            Node::File(inode) => Ok(Arc::new(SimFile {
                state: self.state.clone(),
                inode,
                epoch: st.epoch,
                path: path.to_path_buf(),
            })),
            Node::Dir => Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            )),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.begin("rename", from, 0)?;
        let (fd, fname) = split(from)?;
        let (td, tname) = split(to)?;
        let node = st.lookup(from)?;
        if fd == td {
            let d = st.dir_mut(&fd)?;
            d.current.remove(&fname);
            d.current.insert(tname.clone(), node);
            d.unsynced.push(DirOp::Rename(fname, tname, node));
        } else {
            st.remove_entry(&fd, &fname)?;
            st.put_entry(&td, tname, node)?;
        }
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.begin("remove", path, 0)?;
        let (dir, name) = split(path)?;
        match st.lookup(path)? {
            Node::File(_) => {
                st.remove_entry(&dir, &name)?;
                Ok(())
            }
            Node::Dir => Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            )),
        }
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut st = self.lock();
        st.begin("list", path, 0)?;
        Ok(st
            .dirs
            .get(path)
            .ok_or_else(|| not_found(path))?
            .current
            .keys()
            .cloned()
            .collect())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.begin("sync_dir", path, 0)?;
        if let Some(mode) = st.faults.sync_failures.pop_front() {
            // A failed directory fsync leaves the entry changes unsynced (pages kept) or gone
            // from the disk's future (dropped: they stay in `current` but never reach durable).
            if mode == SyncFailure::DropPages {
                st.dir_mut(path)?.unsynced.clear();
            }
            st.inject("directory fsync error");
            return Err(io::Error::other("simulated directory fsync error (EIO)"));
        }
        st.stats.dir_syncs += 1;
        let d = st.dir_mut(path)?;
        d.durable = d.current.clone();
        d.unsynced.clear();
        Ok(())
    }

    fn kind(&self, path: &Path) -> io::Result<Option<bool>> {
        let mut st = self.lock();
        st.begin("kind", path, 0)?;
        match st.lookup(path) {
            Ok(n) => Ok(Some(n == Node::Dir)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let mut st = self.lock();
        st.begin("lock", path, 0)?;
        if st.locks.contains(path) {
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "lock held"));
        }
        if st.lookup(path).is_err() {
            let (dir, name) = split(path)?;
            let inode = st.new_file();
            st.put_entry(&dir, name, Node::File(inode))?;
        }
        st.locks.insert(path.to_path_buf());
        Ok(Box::new(SimLock {
            state: self.state.clone(),
            path: path.to_path_buf(),
            epoch: st.epoch,
        }))
    }
}
