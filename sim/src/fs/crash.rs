//! Crashes: a process crash (page cache survives) and a power loss (durable state plus a
//! seeded subset of unsynced pages and a seeded prefix of each directory's unsynced changes).

use super::*;

impl SimFs {
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
    ///   prefix its length `choose(page_len)`;
    /// - a size grown by `set_len` since the last sync survives or not: `choose(2)` (when it
    ///   does, what lies past the last surviving page reads as zeros);
    /// - each page overwritten in place since the last sync keeps its durable bytes, takes the
    ///   new ones, or is torn (new bytes up to a point, durable ones after it, as a write torn
    ///   over stale bytes): `choose(3)`, and for a tear its point `choose(page_len)`.
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
            let grown = std::mem::take(&mut f.grown);
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
                if grown && choose(2) == 1 {
                    // The size change reached the disk without the pages past the survivors.
                    f.data.resize(len, 0);
                }
            }
            for (page, old) in std::mem::take(&mut f.shadow) {
                let start = page * PAGE_BYTES;
                let keep_new_until = match choose(3) {
                    0 => 0,
                    1 => old.len(),
                    _ => choose(old.len().max(1) as u64) as usize,
                };
                let stop = (start + old.len()).min(f.data.len());
                if start + keep_new_until < stop {
                    f.data[start + keep_new_until..stop]
                        .copy_from_slice(&old[keep_new_until..stop - start]);
                }
            }
            for (page, old) in std::mem::take(&mut f.phantom_pages) {
                let start = page * PAGE_BYTES;
                let stop = (start + old.len()).min(f.data.len());
                if start < stop {
                    f.data[start..stop].copy_from_slice(&old[..stop - start]);
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
}
