//! A filesystem that reads a real directory and keeps every change in memory: opening a
//! database through it (recovery writes a new WAL, manifest and table) leaves the directory
//! exactly as it was. `sdb` reads databases this way unless the command says it writes.

use sedimentdb::internals::MemFile;
use sedimentdb::{File, FileLock, Fs};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The real directory below, changes in memory above.
#[derive(Default)]
pub struct OverlayFs {
    state: Mutex<Layers>,
}

#[derive(Default)]
struct Layers {
    /// Files created or renamed in memory.
    files: BTreeMap<PathBuf, MemFile>,
    /// Real paths removed (or renamed away) in memory.
    removed: BTreeSet<PathBuf>,
    dirs: BTreeSet<PathBuf>,
}

impl OverlayFs {
    pub fn new() -> OverlayFs {
        OverlayFs::default()
    }

    fn layers(&self) -> std::sync::MutexGuard<'_, Layers> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A real file opened for reading only.
struct ReadOnly {
    file: std::fs::File,
    path: PathBuf,
}

impl ReadOnly {
    fn refuse(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is opened read-only by sdb", self.path.display()),
        )
    }
}

impl File for ReadOnly {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn append(&self, _data: &[u8]) -> io::Result<()> {
        Err(self.refuse())
    }
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

struct NoLock;
impl FileLock for NoLock {}

impl Fs for OverlayFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        if !path.is_dir() {
            self.layers().dirs.insert(path.to_path_buf());
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        if self.kind(path)?.is_some() {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        let f = MemFile::new();
        let mut l = self.layers();
        l.removed.remove(path);
        l.files.insert(path.to_path_buf(), f.clone());
        Ok(Arc::new(f))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        let l = self.layers();
        if let Some(f) = l.files.get(path) {
            return Ok(Arc::new(f.clone()));
        }
        if l.removed.contains(path) {
            return Err(io::ErrorKind::NotFound.into());
        }
        drop(l);
        let file = std::fs::File::open(path)?;
        Ok(Arc::new(ReadOnly {
            file,
            path: path.to_path_buf(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut l = self.layers();
        let f = match l.files.remove(from) {
            Some(f) => f,
            None => {
                if l.removed.contains(from) {
                    return Err(io::ErrorKind::NotFound.into());
                }
                // A real file renamed: copy it up.
                let bytes = std::fs::read(from)?;
                let m = MemFile::new();
                m.append(&bytes)?;
                l.removed.insert(from.to_path_buf());
                m
            }
        };
        l.removed.remove(to);
        l.files.insert(to.to_path_buf(), f);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut l = self.layers();
        if l.files.remove(path).is_none() && (l.removed.contains(path) || !path.is_file()) {
            return Err(io::ErrorKind::NotFound.into());
        }
        if path.is_file() {
            l.removed.insert(path.to_path_buf());
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let l = self.layers();
        let mut names = BTreeSet::new();
        if path.is_dir() {
            for e in std::fs::read_dir(path)? {
                let e = e?;
                if !l.removed.contains(&e.path()) {
                    if let Some(n) = e.file_name().to_str() {
                        names.insert(n.to_string());
                    }
                }
            }
        } else if !l.dirs.contains(path) {
            return Err(io::ErrorKind::NotFound.into());
        }
        for p in l.files.keys().chain(l.dirs.iter()) {
            if p.parent() == Some(path) {
                if let Some(n) = p.file_name().and_then(|n| n.to_str()) {
                    names.insert(n.to_string());
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    fn sync_dir(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }

    fn kind(&self, path: &Path) -> io::Result<Option<bool>> {
        let l = self.layers();
        if l.files.contains_key(path) {
            return Ok(Some(false));
        }
        if l.dirs.contains(path) {
            return Ok(Some(true));
        }
        if l.removed.contains(path) {
            return Ok(None);
        }
        match std::fs::metadata(path) {
            Ok(m) => Ok(Some(m.is_dir())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        // An existing lock file is taken for real (so a database in use is reported); none
        // is created.
        if path.is_file() && !self.layers().removed.contains(path) {
            return sedimentdb::StdFs.lock(path);
        }
        Ok(Box::new(NoLock))
    }
}
