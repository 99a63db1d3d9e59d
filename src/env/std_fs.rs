//! The real backend: `std::fs` and the system clock. The only module of the engine that touches
//! the operating system directly.

use super::{Clock, File, FileLock, Fs};
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long [`StdFs`]'s `lock` retries a lock that looks held (see there), and how often.
const LOCK_RETRY_TOTAL: Duration = Duration::from_millis(200);
const LOCK_RETRY_STEP: Duration = Duration::from_millis(5);

/// `std::fs` on the local filesystem. Unix only (positional reads, directory fsync).
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

/// A file opened without `O_APPEND` (under which Linux ignores a positional write's offset):
/// appends are positional writes at the tracked end.
struct StdFile {
    file: fs::File,
    end: AtomicU64,
}

impl StdFile {
    fn new(file: fs::File) -> io::Result<StdFile> {
        let end = AtomicU64::new(file.metadata()?.len());
        Ok(StdFile { file, end })
    }

    /// After a failed write, what reached the file is unknown: ask it.
    fn resync_end<T>(&self, r: io::Result<T>) -> io::Result<T> {
        if r.is_err() {
            if let Ok(m) = self.file.metadata() {
                self.end.store(m.len(), Ordering::Relaxed);
            }
        }
        r
    }
}

impl File for StdFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn append(&self, data: &[u8]) -> io::Result<()> {
        let at = self.end.load(Ordering::Relaxed);
        let r = self.file.write_all_at(data, at);
        self.resync_end(r)?;
        self.end.store(at + data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let r = self.file.write_all_at(data, offset);
        self.resync_end(r)?;
        self.end
            .fetch_max(offset + data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let r = self.file.set_len(len);
        self.resync_end(r)?;
        self.end.store(len, Ordering::Relaxed);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

struct StdLock {
    _file: fs::File,
}

impl FileLock for StdLock {}

impl Fs for StdFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(Arc::new(StdFile::new(file)?))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Arc::new(StdFile::new(file)?))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        fs::File::open(path)?.sync_all()
    }

    fn link(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::hard_link(from, to)
    }

    fn kind(&self, path: &Path) -> io::Result<Option<bool>> {
        match fs::metadata(path) {
            Ok(m) => Ok(Some(m.is_dir())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        // flock(2) semantics: a second open file description conflicts even within this
        // process, so a second `Db::open` of the same directory fails here.
        //
        // A lock just released can still look held for a moment: a process forked by another
        // thread of the holder (to run a command) shares the holder's open file description
        // until its exec closes it (the file is close-on-exec). So a refusal is retried for up
        // to `LOCK_RETRY_TOTAL` before it is reported; a lock held by an open `Db` stays held.
        let mut waited = Duration::ZERO;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Box::new(StdLock { _file: file })),
                Err(fs::TryLockError::WouldBlock) if waited < LOCK_RETRY_TOTAL => {
                    std::thread::sleep(LOCK_RETRY_STEP);
                    waited += LOCK_RETRY_STEP;
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!(
                            "lock held by another open database (still held after {} ms)",
                            LOCK_RETRY_TOTAL.as_millis()
                        ),
                    ))
                }
                Err(fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }
}

/// The system wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn monotonic_us(&self) -> u64 {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_micros() as u64
    }
}
