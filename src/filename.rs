//! Every file name in a database directory, and its parser: the one owner of the naming scheme
//! (`docs/format/README.md`). Numbers come from one counter shared by WALs, tables and manifests.
//!
//! ```text
//! NNNNNN.wal        write-ahead log number N (at least six digits)
//! NNNNNN.sst        table number N
//! MANIFEST-NNNNNN   manifest number N
//! CURRENT           names the live manifest; CURRENT.tmp is its replacement being written
//! LOCK              held by the open Db
//! CHECKPOINT-PENDING  a checkpoint being written here; while it exists the directory does not
//!                     open (`docs/format/manifest.md`)
//! ```

/// Name of the pointer file that names the live manifest.
pub const CURRENT: &str = "CURRENT";
/// Name of `CURRENT`'s replacement while it is written.
pub const CURRENT_TMP: &str = "CURRENT.tmp";
/// Name of the lock file.
pub const LOCK: &str = "LOCK";
/// Name of the marker of a checkpoint not yet complete.
pub const CHECKPOINT_PENDING: &str = "CHECKPOINT-PENDING";

const WAL_SUFFIX: &str = ".wal";
const TABLE_SUFFIX: &str = ".sst";
const MANIFEST_PREFIX: &str = "MANIFEST-";

/// Name of WAL file `n`.
pub fn wal_name(n: u64) -> String {
    format!("{n:06}{WAL_SUFFIX}")
}

/// Name of table file `n`.
pub fn table_name(n: u64) -> String {
    format!("{n:06}{TABLE_SUFFIX}")
}

/// Name of manifest file `n`.
pub fn manifest_name(n: u64) -> String {
    format!("{MANIFEST_PREFIX}{n:06}")
}

/// What a file name in the database directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Wal(u64),
    Table(u64),
    Manifest(u64),
    Current,
    CurrentTmp,
    Lock,
    CheckpointPending,
}

impl FileKind {
    /// The file's number, for the numbered kinds.
    pub fn number(self) -> Option<u64> {
        match self {
            FileKind::Wal(n) | FileKind::Table(n) | FileKind::Manifest(n) => Some(n),
            _ => None,
        }
    }
}

/// What `name` is, or `None` if it is not a name sedimentdb writes.
pub fn parse(name: &str) -> Option<FileKind> {
    let num = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    if let Some(n) = name.strip_suffix(WAL_SUFFIX).and_then(num) {
        return Some(FileKind::Wal(n));
    }
    if let Some(n) = name.strip_suffix(TABLE_SUFFIX).and_then(num) {
        return Some(FileKind::Table(n));
    }
    if let Some(n) = name.strip_prefix(MANIFEST_PREFIX).and_then(num) {
        return Some(FileKind::Manifest(n));
    }
    match name {
        CURRENT => Some(FileKind::Current),
        CURRENT_TMP => Some(FileKind::CurrentTmp),
        LOCK => Some(FileKind::Lock),
        CHECKPOINT_PENDING => Some(FileKind::CheckpointPending),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_to_their_kind() {
        for n in [0, 7, 123_456, 9_999_999, u64::MAX] {
            assert_eq!(parse(&wal_name(n)), Some(FileKind::Wal(n)));
            assert_eq!(parse(&table_name(n)), Some(FileKind::Table(n)));
            assert_eq!(parse(&manifest_name(n)), Some(FileKind::Manifest(n)));
        }
        assert_eq!(parse(CURRENT), Some(FileKind::Current));
        assert_eq!(parse(CURRENT_TMP), Some(FileKind::CurrentTmp));
        assert_eq!(parse(LOCK), Some(FileKind::Lock));
        for bad in [
            "",
            ".wal",
            "x.sst",
            "MANIFEST-",
            "MANIFEST-1a",
            "12.wal.tmp",
            "-1.sst",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
