//! The `Fs` trait on `SimFs`: every call counted, traced and checked for armed faults.

use super::*;

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

    fn link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.begin("link", from, 0)?;
        if !st.links_supported {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "simulated filesystem without hard links",
            ));
        }
        let Node::File(inode) = st.lookup(from)? else {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            ));
        };
        let (td, tname) = split(to)?;
        if st.dir_mut(&td)?.current.contains_key(&tname) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists", to.display()),
            ));
        }
        st.stats.links += 1;
        st.put_entry(&td, tname, Node::File(inode))
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
        // `.` names the directory relative paths start from.
        let path = if path == Path::new(".") {
            Path::new("")
        } else {
            path
        };
        let mut st = self.lock();
        st.begin("sync_dir", path, 0)?;
        let armed = match st.faults.dir_sync_failures.pop_front() {
            Some(m) => Some(m),
            None => st.faults.sync_failures.pop_front(),
        };
        if let Some(mode) = armed {
            // A failed directory fsync leaves the entry changes unsynced (pages kept), or
            // forgets them (dropped: they stay in `current`, reach durable only at a later
            // successful directory fsync, and a power loss before it keeps none of them).
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
