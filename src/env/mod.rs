//! The world the engine sees: a filesystem ([`Fs`], [`File`]) and a wall clock ([`Clock`]).
//!
//! Every byte of I/O and every reading of time in the engine goes through these traits. The real
//! backend ([`StdFs`], [`SystemClock`]) lives in `std_fs.rs`, the only module allowed to touch
//! `std::fs` and `SystemTime`. The simulator crate implements the same traits in memory and
//! injects faults.
//!
//! The guarantees the engine relies on are exactly those of `docs/FAULTS.md`: data written to a
//! file survives a power loss only after a successful [`File::sync`]; a created, renamed or
//! removed directory entry survives only after a successful [`Fs::sync_dir`] of its directory; a
//! rename is atomic.

mod mem;
mod std_fs;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use mem::MemFile;
pub use std_fs::{StdFs, SystemClock};

/// A file opened for reading and writing.
///
/// Reads are positional and take `&self`, so many threads read one file at once without a lock.
/// One writer at a time appends or writes in place (the engine never writes a file from two
/// threads at once).
pub trait File: Send + Sync {
    /// Reads exactly `buf.len()` bytes at `offset`. Fails with `UnexpectedEof` if the file is
    /// shorter.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Appends all of `data` at the end of the file. On error a prefix may have been written.
    fn append(&self, data: &[u8]) -> io::Result<()>;
    /// Writes all of `data` at `offset`, over what is there or past the end (a gap reads as
    /// zeros). On error a prefix may have been written. The default fails with `Unsupported`;
    /// the engine then appends instead (its WALs are not pre-sized).
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let _ = (data, offset);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this filesystem cannot write in place",
        ))
    }
    /// Grows the file to `len` bytes (the new bytes read as zeros). Like written data, the new
    /// size is durable only after a [`File::sync`]. The default fails with `Unsupported`.
    fn set_len(&self, len: u64) -> io::Result<()> {
        let _ = len;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this filesystem cannot set a file's length",
        ))
    }
    /// Makes everything written so far durable, the file's size included.
    fn sync(&self) -> io::Result<()>;
    /// The current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// True if the file holds no byte.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// A held lock; dropping it releases the lock.
pub trait FileLock: Send + Sync {}

/// A filesystem.
pub trait Fs: Send + Sync {
    /// Creates a directory and its parents if missing.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates a new, empty file for appending; fails if it exists.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn File>>;
    /// Opens an existing file for reading (and appending).
    fn open(&self, path: &Path) -> io::Result<Arc<dyn File>>;
    /// Atomically replaces `to` with `from`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Names (not paths) of the entries of a directory, sorted.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Makes the directory's entries (creates, renames, removes) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// What is at `path`: `None` if nothing, `Some(true)` for a directory, `Some(false)` for a file.
    fn kind(&self, path: &Path) -> io::Result<Option<bool>>;
    /// Makes `to` a second name (a hard link) of the existing file `from`; `to` must not exist.
    /// Like a create, the new entry is durable only after a [`Fs::sync_dir`] of its directory.
    /// A filesystem that cannot link (or not across these two paths) fails, and the caller
    /// copies instead; the default fails with `Unsupported`.
    fn link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let _ = (from, to);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this filesystem cannot hard-link",
        ))
    }
    /// Takes an exclusive lock on `path` (creating the file if needed). Fails with
    /// `WouldBlock` if another holder, in this process or another, has it.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>>;
}

/// A wall clock. Used for tombstone deletion times; may jump.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Microseconds on a clock that never goes back, for measuring how long operations take
    /// (the latency histograms in `Stats`). The default is `now_ms` in microseconds, so a
    /// simulated clock stays deterministic; the system clock uses a monotonic timer.
    fn monotonic_us(&self) -> u64 {
        self.now_ms().saturating_mul(1000)
    }
}

/// The filesystem and clock a [`crate::Db`] runs on.
#[derive(Clone)]
pub struct Env {
    pub fs: Arc<dyn Fs>,
    pub clock: Arc<dyn Clock>,
}

impl Env {
    /// The real world: `std::fs` and the system clock.
    pub fn real() -> Env {
        Env {
            fs: Arc::new(StdFs),
            clock: Arc::new(SystemClock),
        }
    }

    /// Any filesystem and clock.
    pub fn new(fs: Arc<dyn Fs>, clock: Arc<dyn Clock>) -> Env {
        Env { fs, clock }
    }
}

/// `dir/name` as a path.
pub(crate) fn join(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
