//! Open-file handles (`SimFile`) and directory locks (`SimLock`).

use super::*;

pub(super) struct SimFile {
    pub(super) state: Arc<Mutex<State>>,
    pub(super) inode: u64,
    pub(super) epoch: u64,
    pub(super) path: PathBuf,
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
            st.stats.unlinked_uses += 1;
            st.stats
                .first_unlinked_use
                .get_or_insert_with(|| format!("{op} at offset {n} of {}", self.path.display()));
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

impl SimFile {
    fn is_table(&self) -> bool {
        self.path.extension().is_some_and(|e| e == "sst")
    }
}

/// Scheduling points an fsync of a file spends before it takes effect (threaded runs).
#[cfg(shuttle)]
const SYNC_YIELDS: usize = 16;

impl File for SimFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let table = self.is_table();
        self.with("read", offset, |st, i| {
            if table && st.faults.table_read_failures > 0 {
                st.faults.table_read_failures -= 1;
                st.inject("latent read error");
                return Err(io::Error::other("simulated latent read error (EIO)"));
            }
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
        let table = self.is_table();
        self.with("append", data.len() as u64, |st, i| {
            if let Some(fault) = st.faults.table_write_fault.filter(|_| table) {
                st.faults.table_write_fault = None;
                if fault == TableWriteFault::Misdirected {
                    let other = st
                        .files
                        .keys()
                        .copied()
                        .find(|&o| o != i && st.is_named(o) && st.is_table_inode(o));
                    if let Some(o) = other {
                        st.files
                            .get_mut(&o)
                            .expect("found")
                            .data
                            .extend_from_slice(data);
                    }
                    st.inject("misdirected write");
                } else {
                    st.inject("lost write");
                }
                return Ok(());
            }
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

    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        self.with("write_at", offset, |st, i| {
            let at = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
            let end = at
                .checked_add(data.len())
                .ok_or(io::ErrorKind::InvalidInput)?;
            let len = st.files[&i].data.len();
            let mut n = data.len();
            let mut err = None;
            if let Some(prefix) = st.faults.append_failures.pop_front() {
                n = prefix.unwrap_or(0).min(data.len());
                st.inject(if n > 0 { "short write" } else { "write error" });
                err = Some(io::Error::other("simulated write error (EIO)"));
            } else if let Some(q) = st.faults.quota_bytes {
                let used = st.used_bytes();
                let grows = end.saturating_sub(len) as u64;
                if used + grows > q {
                    n = (len.saturating_sub(at) as u64 + q.saturating_sub(used))
                        .min(data.len() as u64) as usize;
                    st.inject("disk full");
                    err = Some(io::Error::new(
                        io::ErrorKind::StorageFull,
                        "simulated disk full (ENOSPC)",
                    ));
                }
            }
            let f = st.files.get_mut(&i).expect("checked");
            f.overwrite(at, &data[..n]);
            st.stats.bytes_written += n as u64;
            err.map_or(Ok(()), Err)
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with("set_len", len, |st, i| {
            let len = usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
            let cur = st.files[&i].data.len();
            if len < cur {
                // The engine only grows files; shrinking is not modelled.
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "SimFs models set_len that grows a file only",
                ));
            }
            if let Some(q) = st.faults.quota_bytes {
                if st.used_bytes() + (len - cur) as u64 > q {
                    st.inject("disk full");
                    return Err(io::Error::new(
                        io::ErrorKind::StorageFull,
                        "simulated disk full (ENOSPC)",
                    ));
                }
            }
            let f = st.files.get_mut(&i).expect("checked");
            if len > cur {
                f.data.resize(len, 0);
                f.grown = true;
            }
            Ok(())
        })
    }

    fn sync(&self) -> io::Result<()> {
        // An fsync takes time: in threaded runs other threads run meanwhile (appending to this
        // file, syncing it too), as they would while a disk flushes its cache.
        #[cfg(shuttle)]
        for _ in 0..SYNC_YIELDS {
            shuttle::thread::yield_now();
        }
        let wal = self.path.extension().is_some_and(|e| e == "wal");
        self.with("sync", 0, |st, i| {
            let mut failure = st.faults.sync_failures.pop_front();
            if wal && failure.is_none() {
                failure = match st.faults.wal_sync_failure.take() {
                    Some((0, mode)) => Some(mode),
                    Some((n, mode)) => {
                        st.faults.wal_sync_failure = Some((n - 1, mode));
                        None
                    }
                    None => None,
                };
            }
            if let Some(mode) = failure {
                let f = st.files.get_mut(&i).expect("checked");
                if mode == SyncFailure::DropPages && f.data.len() > f.durable_len {
                    f.phantom.push((f.durable_len, f.data.len()));
                }
                if mode == SyncFailure::DropPages {
                    let shadow = std::mem::take(&mut f.shadow);
                    for (page, old) in shadow {
                        f.phantom_pages.entry(page).or_insert(old);
                    }
                }
                st.inject(match mode {
                    SyncFailure::KeepPages => "fsync error (pages kept)",
                    SyncFailure::DropPages => "fsync error (pages dropped)",
                });
                return Err(io::Error::other("simulated fsync error (EIO)"));
            }
            let f = st.files.get_mut(&i).expect("checked");
            f.durable_len = f.data.len();
            f.shadow.clear();
            f.grown = false;
            st.stats.syncs += 1;
            Ok(())
        })
    }

    fn len(&self) -> io::Result<u64> {
        self.with("len", 0, |st, i| Ok(st.files[&i].data.len() as u64))
    }
}

pub(super) struct SimLock {
    pub(super) state: Arc<Mutex<State>>,
    pub(super) path: PathBuf,
    pub(super) epoch: u64,
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
