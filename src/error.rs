//! The one error type of the engine.
//!
//! Every message says what happened and where: the file, the offset, the length or the limit
//! involved. Corruption is its own variant and is never papered over; I/O errors keep their
//! `std::io::Error` as the source.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// The result type of every fallible engine call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in sedimentdb.
///
/// `Clone` is cheap: the parts that cannot be copied (the I/O error, the cause of a read-only
/// state) are shared, so the waiters of one group commit all get the leader's error.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed. `op` names the call (`"open"`, `"sync"`, ...).
    Io {
        op: &'static str,
        path: PathBuf,
        source: Arc<io::Error>,
    },
    /// Stored data failed a check: a checksum, a length bound, a magic number, an ordering.
    Corruption {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The caller passed something the engine refuses (an empty key, a value over the limit, a
    /// bad option). Nothing was written.
    InvalidArgument(String),
    /// Another `Db` (in this process or another one) holds the directory's lock.
    Locked { path: PathBuf },
    /// The path exists but does not hold a sedimentdb database; nothing was changed.
    NotADatabase { path: PathBuf, reason: String },
    /// The database was written by a format version this build cannot read; nothing was changed.
    UnsupportedVersion {
        file: PathBuf,
        found: u32,
        supported: u32,
    },
    /// An earlier write or background step failed in a way that makes further writes unsafe (a
    /// failed fsync, a failed WAL append, a failed flush). Reads still work; reopen the database
    /// to recover from what is really on disk. `cause` is the original failure (also the
    /// error's [`source`](std::error::Error::source)).
    ReadOnly { cause: Arc<Error> },
    /// Every sequence number (56 bits) is used: `last` is the newest, `wanted` how many more
    /// this write needed. Nothing was written.
    SequenceExhausted { last: u64, wanted: u64 },
    /// The directory holds a checkpoint that was never completed (a crash or an error
    /// interrupted [`crate::Db::checkpoint`]): it is not a consistent copy. Delete it and take
    /// the checkpoint again.
    IncompleteCheckpoint { dir: PathBuf },
    /// Stored data uses a feature this build lacks (a zstd-compressed block in a build without
    /// the `zstd` feature, or a codec from a newer release). Its checksum held: the data is
    /// sound, only unreadable here. Nothing was changed.
    Unsupported {
        file: PathBuf,
        offset: u64,
        what: String,
    },
    /// The database was closed.
    Closed,
}

impl Error {
    /// Builds an [`Error::Io`].
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// Builds an [`Error::Corruption`].
    pub fn corruption(file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Error {
        Error::Corruption {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// The read-only error caused by `cause` (or `cause` itself if it already is one).
    pub fn read_only(cause: &Error) -> Error {
        match cause {
            Error::ReadOnly { .. } => cause.clone(),
            _ => Error::ReadOnly {
                cause: Arc::new(cause.clone()),
            },
        }
    }

    /// True for [`Error::Corruption`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, path, source } => {
                write!(f, "I/O error during {op} on {}: {source}", path.display())
            }
            Error::Corruption {
                file,
                offset,
                reason,
            } => write!(
                f,
                "corruption in {} at offset {offset}: {reason}",
                file.display()
            ),
            Error::InvalidArgument(msg) => write!(f, "invalid argument: {msg}"),
            Error::Locked { path } => write!(
                f,
                "database at {} is locked by another open Db (this or another process)",
                path.display()
            ),
            Error::NotADatabase { path, reason } => write!(
                f,
                "{} is not a sedimentdb database: {reason}",
                path.display()
            ),
            Error::UnsupportedVersion {
                file,
                found,
                supported,
            } => write!(
                f,
                "{} has format version {found}, this build reads versions up to {supported}",
                file.display()
            ),
            Error::ReadOnly { cause } => write!(
                f,
                "database is read-only after an earlier failure; reopen it to recover: {cause}"
            ),
            Error::SequenceExhausted { last, wanted } => write!(
                f,
                "sequence numbers exhausted: the newest is {last} and this write needs {wanted} \
                 more, past the 56-bit limit {}",
                crate::key::SEQ_MAX
            ),
            Error::IncompleteCheckpoint { dir } => write!(
                f,
                "{} holds an incomplete checkpoint (it was interrupted before it finished); \
                 delete it and take the checkpoint again",
                dir.display()
            ),
            Error::Unsupported { file, offset, what } => write!(
                f,
                "unsupported data in {} at offset {offset}: {what}",
                file.display()
            ),
            Error::Closed => write!(f, "database is closed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(&**source),
            Error::ReadOnly { cause } => Some(&**cause),
            _ => None,
        }
    }
}
