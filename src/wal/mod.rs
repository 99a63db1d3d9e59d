//! The write-ahead log: checksummed records appended to a file, and recovery that tells a torn
//! tail from damage. The record framing is shared with the manifest (`docs/format/wal.md`).

pub mod batch;
pub mod log;
