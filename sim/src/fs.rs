//! `SimFs`: an in-memory filesystem with separate `current` and `durable` states.
//!
//! Files here are append-only (the engine never overwrites), so a file's durable content is a
//! prefix of its current content: `data[..durable_len]`. Directories keep their current entries,
//! their durable entries, and the ordered log of entry changes made since their last sync.
//!
//! Handles carry the epoch they were opened in; after [`SimFs::crash`] every old handle fails,
//! as if its process had died, so a crashed `Db` cannot touch the recovered world.

use sedimentdb::{File, FileLock, Fs};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

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
}

/// Counters of what the filesystem was asked to do.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SimFsStats {
    /// Filesystem calls made (every trait method counts one).
    pub calls: u64,
    pub syncs: u64,
    pub dir_syncs: u64,
    pub bytes_written: u64,
    pub crashes: u64,
    /// A hash of every call and its result, in order: the same seed must give the same trace.
    pub trace_hash: u64,
}

#[derive(Debug, Default)]
struct State {
    dirs: BTreeMap<PathBuf, Dir>,
    files: BTreeMap<u64, FileData>,
    next_inode: u64,
    epoch: u64,
    locks: BTreeSet<PathBuf>,
    stats: SimFsStats,
}

/// An in-memory filesystem whose power-loss behaviour follows `FAULTS.md`.
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

    /// Drops files no directory names any more (current or durable), once no handle needs them
    /// for correctness: open handles of the current epoch keep reading their inode.
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
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A power loss: every file keeps only its synced bytes, every directory only its synced
    /// entries. Every handle opened before this call fails from now on, and all locks are
    /// released.
    pub fn crash(&self) {
        self.crash_with(|_, _| 0, |_, _, _| 0);
    }

    /// A process crash: all written data survives (it was in the page cache), only the
    /// process's handles and locks are lost.
    pub fn process_crash(&self) {
        let mut st = self.lock();
        st.epoch += 1;
        st.locks.clear();
        st.stats.crashes += 1;
        st.trace("process_crash", Path::new(""), 0);
    }

    /// A power loss with a choice of what unsynced state survives. `dir_ops(dir, n)` returns how
    /// many of the `n` unsynced entry changes of `dir` survive (a prefix, in order);
    /// `file_tail(inode, durable_len, len)` returns how many bytes past `durable_len` survive
    /// (the survivors are a prefix; torn pages are for the fault-injecting layer).
    pub fn crash_with(
        &self,
        mut dir_ops: impl FnMut(&Path, usize) -> usize,
        mut file_tail: impl FnMut(u64, usize, usize) -> usize,
    ) {
        let mut st = self.lock();
        st.epoch += 1;
        st.locks.clear();
        st.stats.crashes += 1;
        let dirs: Vec<PathBuf> = st.dirs.keys().cloned().collect();
        for p in dirs {
            let d = st.dirs.get_mut(&p).expect("listed");
            let keep = dir_ops(&p, d.unsynced.len()).min(d.unsynced.len());
            let ops: Vec<DirOp> = d.unsynced.drain(..).take(keep).collect();
            for op in ops {
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
            d.current = d.durable.clone();
        }
        // Directories that were never made durable in their parent vanish with their contents.
        let names: BTreeSet<PathBuf> = st
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
            .retain(|p, _| p.as_os_str().is_empty() || p == Path::new("/") || names.contains(p));
        let inodes: Vec<u64> = st.files.keys().copied().collect();
        for i in inodes {
            let f = st.files.get_mut(&i).expect("listed");
            let extra = file_tail(i, f.durable_len, f.data.len());
            let keep = (f.durable_len + extra).min(f.data.len());
            f.data.truncate(keep);
            // What survived the power loss is on the disk now.
            f.durable_len = f.data.len();
        }
        st.collect_garbage();
        st.trace("crash", Path::new(""), 0);
    }

    /// Flips bit `bit` of byte `offset` of the file at `path`, in both its current and durable
    /// content (media corruption). Returns false if there is no such byte.
    pub fn flip_bit(&self, path: &Path, offset: usize, bit: u8) -> bool {
        let mut st = self.lock();
        let Ok(Node::File(i)) = st.lookup(path) else {
            return false;
        };
        match st.files.get_mut(&i).and_then(|f| f.data.get_mut(offset)) {
            Some(b) => {
                *b ^= 1 << (bit % 8);
                true
            }
            None => false,
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

    /// Writes a whole file, durably (for building test fixtures).
    pub fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut st = self.lock();
        let (dir, name) = split(path)?;
        let inode = st.next_inode;
        st.next_inode += 1;
        st.files.insert(
            inode,
            FileData {
                data: data.to_vec(),
                durable_len: data.len(),
            },
        );
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
        f: impl FnOnce(&mut FileData) -> io::Result<R>,
    ) -> io::Result<R> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.trace(op, &self.path, n);
        if st.epoch != self.epoch {
            return Err(io::Error::other(
                "stale handle: the simulated machine crashed",
            ));
        }
        let file = st
            .files
            .get_mut(&self.inode)
            .ok_or_else(|| io::Error::other("file was removed and collected"))?;
        f(file)
    }
}

impl File for SimFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.with("read", offset, |f| {
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
        let r = self.with("append", data.len() as u64, |f| {
            f.data.extend_from_slice(data);
            Ok(())
        });
        if r.is_ok() {
            self.state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .stats
                .bytes_written += data.len() as u64;
        }
        r
    }

    fn sync(&self) -> io::Result<()> {
        let r = self.with("sync", 0, |f| {
            f.durable_len = f.data.len();
            Ok(())
        });
        if r.is_ok() {
            self.state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .stats
                .syncs += 1;
        }
        r
    }

    fn len(&self) -> io::Result<u64> {
        self.with("len", 0, |f| Ok(f.data.len() as u64))
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
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.epoch == self.epoch {
            st.locks.remove(&self.path);
        }
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.trace("create_dir_all", path, 0);
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
        st.trace("create", path, 0);
        let (dir, name) = split(path)?;
        if st.dir_mut(&dir)?.current.contains_key(&name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists", path.display()),
            ));
        }
        let inode = st.next_inode;
        st.next_inode += 1;
        st.files.insert(inode, FileData::default());
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
        st.trace("open", path, 0);
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
        st.trace("rename", from, 0);
        let (fd, fname) = split(from)?;
        let (td, tname) = split(to)?;
        let node = st.lookup(from)?;
        if fd == td {
            // One entry change: at a power loss, either the old or the new name survives.
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
        st.trace("remove", path, 0);
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
        st.trace("list", path, 0);
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
        st.trace("sync_dir", path, 0);
        st.stats.dir_syncs += 1;
        let d = st.dir_mut(path)?;
        d.durable = d.current.clone();
        d.unsynced.clear();
        Ok(())
    }

    fn kind(&self, path: &Path) -> io::Result<Option<bool>> {
        let mut st = self.lock();
        st.trace("kind", path, 0);
        match st.lookup(path) {
            Ok(n) => Ok(Some(n == Node::Dir)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let mut st = self.lock();
        st.trace("lock", path, 0);
        if st.locks.contains(path) {
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "lock held"));
        }
        if st.lookup(path).is_err() {
            let (dir, name) = split(path)?;
            let inode = st.next_inode;
            st.next_inode += 1;
            st.files.insert(inode, FileData::default());
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
