//! Options and limits. Every default is documented with its reason; every limit is named here
//! once, with its unit last.

use crate::error::{Error, Result};

/// How background work (memtable flushes) is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Background {
    /// A background thread flushes immutable memtables; writers never wait for a flush unless
    /// `max_immutable_memtables` are already waiting (backpressure). The default.
    Threads,
    /// No threads: the writer that fills the memtable flushes it (and runs the compactions that
    /// follow) before returning. Every engine decision is then a function of the operation
    /// sequence alone, which the simulator needs.
    Inline,
    /// No threads and no work on the write path: flushes and compactions run only when the
    /// embedder calls [`crate::Db::maintenance_step`] (or `flush`, `compact`, `compact_range`),
    /// so several immutable memtables, and their WALs, may wait. A writer that finds
    /// `max_immutable_memtables` waiting flushes the oldest itself first (a stall, counted in
    /// `Stats::write_stalls`). For embedders (and the simulator) that schedule maintenance.
    Manual,
}

/// How a table's data blocks are compressed (table format 3). Index, filter and meta blocks are
/// never compressed. A block that compression does not shrink by at least an eighth is stored
/// as it is, so incompressible data costs one byte per block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Blocks stored as they are.
    None,
    /// LZ4 (through `lz4_flex`): fast to decompress, about 2:1 on text-like values.
    Lz4,
    /// zstd at the given level (1..=22; higher is smaller and slower to write). Needs the
    /// `zstd` cargo feature: without it `Db::open` refuses this option, and a table holding
    /// zstd blocks fails to read with [`crate::Error::Unsupported`].
    Zstd(i32),
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
    /// Compaction threads under [`Background::Threads`]. Default 1. With more, compactions run
    /// at once when they read no common table and write disjoint key ranges of their output
    /// level (a level-0 compaction and a deeper one, say); `Stats::parallel_compactions` counts
    /// those that started beside another. `compact_range` waits for the claims it meets.
    pub compaction_threads: usize,
    /// Level-0 tables that trigger a compaction into level 1. Default 4.
    pub l0_compaction_trigger: usize,
    /// Level-0 tables at which writers are slowed (each write yields briefly). Default 8.
    pub l0_slowdown_writes_trigger: usize,
    /// Level-0 tables at which writers wait for compaction. Default 12.
    pub l0_stop_writes_trigger: usize,
    /// Target size of level 1. Default 128 MiB: about what one level-0 compaction brings (four
    /// flushes of the default 64 MiB memtable, about 110 MiB once compressed), so level 1 is
    /// not rewritten into level 2 after every one (10M random puts, `examples/dbbench`: 4.27
    /// bytes written per user byte against 4.86 with 64 MiB, once compaction is done).
    pub level1_size_bytes: u64,
    /// Each level's target is this many times the one above. Default 10.
    pub level_size_multiplier: u64,
    /// Target size of a table written by compaction. Default 32 MiB: large enough that a
    /// level holds few tables, small enough that one compaction step stays short.
    pub table_size_bytes: u64,
    /// How long a tombstone must live before compaction may drop it. Default 10 days, as
    /// Cassandra's `gc_grace_seconds`: long enough for replicas to learn of the delete through
    /// anti-entropy. Zero allowed (drop at the first compaction into the last level holding
    /// the key).
    pub tombstone_grace: std::time::Duration,
    /// Bytes of decoded data blocks kept in memory for reads, shared by every table of the
    /// database (0: no cache, every block read is a positional read, a checksum and, for a
    /// compressed block, its decompression). Default 0: the operating system's page cache
    /// already holds the stored (compressed) blocks, and a cache smaller than the working set
    /// costs more on its misses than it saves on its hits. Measured with `examples/dbbench`
    /// over 1M keys settled in 68 MiB of LZ4 tables (about 120 MB decoded), random reads ran
    /// at 431,000/s with an 8 MiB cache and 442,000/s with a 32 MiB one, against 516,000/s
    /// without (medians of 3), and at 681,000/s (1.32x) with a warm 256 MiB one holding every
    /// block. Turn it on when reads repeat over a working set that fits, or the page cache is
    /// small.
    pub block_cache_bytes: usize,
    /// Level targets follow the data (RocksDB's `level_compaction_dynamic_level_bytes`):
    /// the deepest level's target is its own size, each level above it a multiplier smaller,
    /// and level 0 compacts straight into the first level whose target reaches
    /// `level1_size_bytes` (the *base level*), so a small database keeps its data in the last
    /// levels and does not rewrite it through empty ones. Default `false` (static targets
    /// `level1_size_bytes × multiplier^(level-1)`): measured with `examples/write_amp` (2M
    /// random puts through scaled-down levels), dynamic targets wrote 9.78 bytes per user byte
    /// against 8.61-9.04 for static ones, the data settling in two levels instead of three.
    pub dynamic_level_bytes: bool,
    /// The codec of each level's data blocks: level `i` uses entry `i`, and levels past the
    /// end use the last entry (so `vec![Compression::Lz4]` is LZ4 everywhere, and
    /// `vec![None, None, Lz4, Lz4, Lz4, Lz4, Zstd(3)]` leaves the top levels uncompressed and
    /// squeezes the last). Flushes write level 0's codec; a table moved to a deeper level
    /// without being rewritten keeps the codec it was written with. Default
    /// `vec![Compression::Lz4]`: values in the benchmark (db_bench's half-compressible ones)
    /// shrink to about half, and LZ4 decodes a 4 KiB block in about a microsecond.
    pub compression_per_level: Vec<Compression>,
    /// Each WAL is pre-sized to this many bytes (`File::set_len`) and grows by as much when
    /// full; records are written in place at their offset, so a synced write's fdatasync
    /// carries no change of the file's size (on ext4 each size change is a journal commit).
    /// Recovery ends a log at the zeros after its last record. 0: records are appended (also
    /// what happens on a filesystem that cannot write in place). Default 1 MiB: a size change
    /// once per 1 MiB of log; measured with `examples/dbbench`, see the README.
    pub wal_preallocate_bytes: u64,
    /// How WAL records are compressed: [`Compression::Lz4`] compresses a record's payload
    /// (its batch) when it is at least 64 bytes and LZ4 saves an eighth of it;
    /// [`Compression::None`] stores every payload as it is. zstd is refused (a WAL record is
    /// written on the commit path, where its latency counts). Default `Lz4`: db_bench's puts
    /// (16-byte keys, half-compressible 100-byte values) take about a third fewer WAL bytes.
    /// The manifest is never compressed.
    pub wal_compression: Compression,
}

/// Options of one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Whether the blocks a scan or cursor reads are added to the block cache. Default `true`;
    /// a one-off scan over much data may turn it off so it does not displace hot blocks (it
    /// still uses blocks already cached).
    pub fill_cache: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { fill_cache: true }
    }
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
    /// A block is cut once it reaches its target, so it holds less than the largest target of
    /// earlier entries plus one entry.
    pub const BLOCK_SIZE_BYTES_MAX: usize =
        BLOCK_TARGET_BYTES_MAX + VALUE_SIZE_BYTES_MAX + KEY_SIZE_BYTES_MAX + (1 << 20);
    /// Largest target block size an option may ask for.
    pub const BLOCK_TARGET_BYTES_MAX: usize = 64 << 20;
    /// Largest step by which a WAL may be pre-sized.
    pub const WAL_PREALLOCATE_BYTES_MAX: u64 = 1 << 30;
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
            compaction_threads: 1,
            l0_compaction_trigger: 4,
            l0_slowdown_writes_trigger: 8,
            l0_stop_writes_trigger: 12,
            level1_size_bytes: 128 << 20,
            level_size_multiplier: 10,
            table_size_bytes: 32 << 20,
            tombstone_grace: std::time::Duration::from_secs(10 * 24 * 3600),
            block_cache_bytes: 0,
            dynamic_level_bytes: false,
            compression_per_level: vec![Compression::Lz4],
            wal_preallocate_bytes: 1 << 20,
            wal_compression: Compression::Lz4,
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
        if self.compaction_threads == 0 {
            return bad("compaction_threads must be at least 1".into());
        }
        if self.l0_compaction_trigger == 0
            || self.l0_slowdown_writes_trigger < self.l0_compaction_trigger
            || self.l0_stop_writes_trigger < self.l0_slowdown_writes_trigger
        {
            return bad(format!(
                "level-0 triggers must satisfy 1 <= compaction ({}) <= slowdown ({}) <= stop ({})",
                self.l0_compaction_trigger,
                self.l0_slowdown_writes_trigger,
                self.l0_stop_writes_trigger
            ));
        }
        if self.level_size_multiplier < 2
            || self.level1_size_bytes < 1024
            || self.table_size_bytes < 1024
        {
            return bad(format!(
                "level_size_multiplier must be at least 2 (is {}), level1_size_bytes and \
                 table_size_bytes at least 1024 (are {} and {})",
                self.level_size_multiplier, self.level1_size_bytes, self.table_size_bytes
            ));
        }
        if self.max_immutable_memtables == 0 {
            return bad("max_immutable_memtables must be at least 1".into());
        }
        if self.wal_preallocate_bytes > limits::WAL_PREALLOCATE_BYTES_MAX {
            return bad(format!(
                "wal_preallocate_bytes is {}, the maximum is {}",
                self.wal_preallocate_bytes,
                limits::WAL_PREALLOCATE_BYTES_MAX
            ));
        }
        if let Compression::Zstd(z) = self.wal_compression {
            return bad(format!(
                "wal_compression is zstd level {z}; the WAL compresses with LZ4 or not at all"
            ));
        }
        if self.compression_per_level.is_empty() {
            return bad("compression_per_level must name at least one codec".into());
        }
        for (level, c) in self.compression_per_level.iter().enumerate() {
            if let Compression::Zstd(z) = c {
                if !cfg!(feature = "zstd") {
                    return bad(format!(
                        "compression_per_level[{level}] is zstd, and this build has no zstd \
                         (cargo feature `zstd`)"
                    ));
                }
                if !(1..=22).contains(z) {
                    return bad(format!(
                        "compression_per_level[{level}] is zstd level {z}, allowed 1..=22"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The codec of data blocks written to `level`.
    pub fn compression_for(&self, level: usize) -> Compression {
        let c = &self.compression_per_level;
        c.get(level)
            .or(c.last())
            .copied()
            .unwrap_or(Compression::None)
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
