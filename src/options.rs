//! Options and limits. Every default is documented with its reason; every limit is named here
//! once, with its unit last.

use crate::error::{Error, Result};

/// How background work (memtable flushes) is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Background {
    /// A background thread flushes immutable memtables; writers never wait for a flush unless
    /// `max_immutable_memtables` are already waiting (backpressure). The default.
    Threads,
    /// No threads: the writer that fills the memtable flushes it before returning. Every engine
    /// decision is then a function of the operation sequence alone, which the simulator needs.
    Inline,
}

/// Options for [`crate::Db::open`]. `Options::default()` is sound for production use.
#[derive(Debug, Clone)]
pub struct Options {
    /// Create the database if the directory is missing or empty. Default `true`.
    pub create_if_missing: bool,
    /// Fail if a database already exists. Default `false`.
    pub error_if_exists: bool,
    /// Memtable size at which it becomes immutable and is flushed to a table. Default 64 MiB:
    /// large enough to batch many writes into one sequential table write, small enough that
    /// replaying its WAL at open takes well under a second.
    pub memtable_size_bytes: usize,
    /// Immutable memtables allowed to wait for flushing before writers wait. Default 2.
    pub max_immutable_memtables: usize,
    /// Target uncompressed size of an SSTable data block. Default 4 KiB: one page, one read.
    pub block_size_bytes: usize,
    /// Keys between restart points in a block. Default 16: prefix compression with a short
    /// linear scan after the binary search.
    pub block_restart_interval: usize,
    /// Bloom filter bits per key. Default 10: about 1% false positives with 7 probes.
    /// Zero disables filters.
    pub bloom_bits_per_key: usize,
    /// Largest key accepted, in bytes. Default 64 KiB.
    pub max_key_size_bytes: usize,
    /// Largest value accepted, in bytes. Default 256 MiB.
    pub max_value_size_bytes: usize,
    /// How background work runs. Default [`Background::Threads`].
    pub background: Background,
}

/// Hard ceilings that options may not exceed: bounds applied to data read from disk too.
pub mod limits {
    /// No key may exceed this, whatever the options say (the on-disk formats bound it).
    pub const KEY_SIZE_BYTES_MAX: usize = 16 << 20;
    /// No value may exceed this.
    pub const VALUE_SIZE_BYTES_MAX: usize = 1 << 30;
    /// No WAL or manifest record may exceed this (one batch).
    pub const RECORD_SIZE_BYTES_MAX: usize = 2 << 30;
    /// No SSTable block may exceed this: room for one entry of the largest key and value (an
    /// entry is never split across blocks) plus its encoding.
    pub const BLOCK_SIZE_BYTES_MAX: usize = VALUE_SIZE_BYTES_MAX + KEY_SIZE_BYTES_MAX + (1 << 20);
    /// Largest target block size an option may ask for.
    pub const BLOCK_TARGET_BYTES_MAX: usize = 64 << 20;
}

impl Default for Options {
    fn default() -> Self {
        Options {
            create_if_missing: true,
            error_if_exists: false,
            memtable_size_bytes: 64 << 20,
            max_immutable_memtables: 2,
            block_size_bytes: 4 << 10,
            block_restart_interval: 16,
            bloom_bits_per_key: 10,
            max_key_size_bytes: 64 << 10,
            max_value_size_bytes: 256 << 20,
            background: Background::Threads,
        }
    }
}

impl Options {
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidArgument(what));
        if self.memtable_size_bytes < 1024 {
            return bad(format!(
                "memtable_size_bytes is {}, the minimum is 1024",
                self.memtable_size_bytes
            ));
        }
        if self.block_size_bytes < 64 || self.block_size_bytes > limits::BLOCK_TARGET_BYTES_MAX {
            return bad(format!(
                "block_size_bytes is {}, allowed 64..={}",
                self.block_size_bytes,
                limits::BLOCK_TARGET_BYTES_MAX
            ));
        }
        if self.block_restart_interval == 0 {
            return bad("block_restart_interval must be at least 1".into());
        }
        if self.bloom_bits_per_key > 64 {
            return bad(format!(
                "bloom_bits_per_key is {}, the maximum is 64",
                self.bloom_bits_per_key
            ));
        }
        if self.max_key_size_bytes == 0 || self.max_key_size_bytes > limits::KEY_SIZE_BYTES_MAX {
            return bad(format!(
                "max_key_size_bytes is {}, allowed 1..={}",
                self.max_key_size_bytes,
                limits::KEY_SIZE_BYTES_MAX
            ));
        }
        if self.max_value_size_bytes > limits::VALUE_SIZE_BYTES_MAX {
            return bad(format!(
                "max_value_size_bytes is {}, the maximum is {}",
                self.max_value_size_bytes,
                limits::VALUE_SIZE_BYTES_MAX
            ));
        }
        if self.max_immutable_memtables == 0 {
            return bad("max_immutable_memtables must be at least 1".into());
        }
        Ok(())
    }
}

/// Options for one write.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Fsync the WAL before acknowledging. Default `true`: an acknowledged write survives a
    /// power loss. With `false` the write reaches the operating system before the call returns
    /// (it survives a process crash) and becomes durable at the next synced write, `sync()` or
    /// `flush()`.
    pub sync: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { sync: true }
    }
}
