//! The write-ahead log: WAL files are record logs (`crate::record`) with their own magic, each
//! record one group commit's batches (`batch.rs`, `docs/format/wal.md`).

pub mod batch;

/// Magic of WAL files. DO NOT CHANGE.
pub const WAL_MAGIC: [u8; 8] = *b"SDBWAL\0\0";
