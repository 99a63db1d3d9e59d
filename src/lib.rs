//! # sedimentdb
//!
//! An embeddable LSM-tree key-value storage engine whose correctness is checked by a seeded,
//! deterministic simulator that injects faults.
//!
//! ## Guarantees
//! - **Durability.** A write acknowledged with `WriteOptions { sync: true }` (the default)
//!   survives power loss: its WAL record was fsynced before the call returned. An unsynced write
//!   survives a process crash and becomes durable at the next synced write, `sync`, `flush` or
//!   `close`.
//! - **Atomicity.** A [`WriteBatch`] is one WAL record: after any crash all of it or none of it
//!   is visible, and readers never see part of it.
//! - **Prefix consistency.** After a crash the database holds a prefix of the acknowledged
//!   writes that includes every durable one.
//! - **No silent corruption.** Every stored byte is covered by a checksum bound to its file and
//!   position. Reads return the right data or [`Error::Corruption`] naming the file and offset;
//!   only a torn, unsynced WAL tail is cut at recovery.
//! - **Fail-stop writes.** After a failed WAL append or fsync, or a failed flush, the database
//!   refuses writes with [`Error::ReadOnly`] naming the original failure; reads keep working.
//!   Reopening recovers from what is really on disk.
//! - **Determinism.** The engine sees the world only through [`Fs`] and [`Clock`]; the
//!   simulator crate runs it on an in-memory, fault-injecting filesystem.
//!
//! ## Example
//! ```
//! use sedimentdb::{Db, Options, WriteBatch, WriteOptions};
//! # let dir = tempfile::tempdir().unwrap();
//! let db = Db::open(dir.path().join("db"), Options::default())?;
//! db.put(b"apple", b"red")?;
//! let mut batch = WriteBatch::new();
//! batch.put(b"banana", b"yellow").delete(b"apple");
//! db.write(batch, &WriteOptions::default())?;
//! assert_eq!(db.get(b"apple")?, None);
//! let all: Vec<_> = db.iter().collect::<Result<_, _>>()?;
//! assert_eq!(all, vec![(b"banana".to_vec(), b"yellow".to_vec())]);
//! db.close()?;
//! # Ok::<(), sedimentdb::Error>(())
//! ```

mod coding;
#[cfg(test)]
mod datadriven;
mod db;
mod env;
mod error;
mod filename;
mod histogram;
mod iter;
mod key;
mod lz4;
mod manifest;
mod memtable;
mod options;
mod planted;
mod rangedel;
mod record;
mod sstable;
mod stats;
mod sync;
mod version;
mod wal;

pub use db::Db;
pub use db::{Cursor, RawEntry, RawScan, RawValue, Scan, Snapshot};
pub use env::{Clock, Env, File, FileLock, Fs, StdFs, SystemClock};
pub use error::{Error, Result};
pub use histogram::Latency;
pub use options::{limits, Background, Compression, Options, ReadOptions, WriteOptions};
pub use stats::{LevelStats, Stats};
pub use wal::batch::WriteBatch;

/// The engine's internal modules, for the simulator, the fuzz harnesses and the format tests.
/// Not part of the embedding API: no stability promise, hidden from the documentation.
#[doc(hidden)]
pub mod internals {
    /// Integer encodings of the on-disk formats.
    pub mod coding {
        pub use crate::coding::*;
    }
    /// An in-memory `File`.
    pub use crate::env::MemFile;
    /// File names and their parser.
    pub mod filename {
        pub use crate::filename::*;
    }
    /// Internal keys, lookup keys and tombstone values.
    pub mod key {
        pub use crate::key::*;
    }
    /// The manifest and `CURRENT`.
    pub mod manifest {
        pub use crate::manifest::*;
    }
    /// Byte counts for humans (as `Stats` prints them).
    pub use crate::stats::human_bytes;
    /// The skiplist memtable.
    pub mod memtable {
        pub use crate::memtable::*;
    }
    /// Range tombstones and their fragments.
    pub mod rangedel {
        pub use crate::rangedel::*;
    }
    /// Record framing shared by the WAL and the manifest.
    pub mod record {
        pub use crate::record::*;
    }
    /// Tables: blocks, filters, builder, reader.
    pub mod sstable {
        pub use crate::sstable::*;
    }
    /// The WAL's magic and the write batch encoding.
    pub mod wal {
        pub use crate::wal::*;
    }
    /// Planted bugs (test-only feature `planted-bugs`).
    #[cfg(feature = "planted-bugs")]
    pub mod planted {
        pub use crate::planted::*;
    }
}

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
