//! The block cache: decoded data blocks shared by every table of a database, keyed by table
//! number and block offset (table numbers are never reused while a database is open), bounded
//! in bytes, through `quick_cache` with a fixed hasher (reproducible under simulation).

use crate::planted::{self, Bug};
use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::Weighter;
use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A block in memory: its checked, decoded bytes, without the trailer (one allocation with its
/// count).
pub type Block = Arc<[u8]>;

/// Bytes charged per entry on top of the block: the key, the `Arc` and the cache's slot.
const ENTRY_OVERHEAD_BYTES: u64 = 64;

#[derive(Clone)]
struct BlockWeight;

impl Weighter<(u64, u64), Block> for BlockWeight {
    fn weight(&self, _key: &(u64, u64), block: &Block) -> u64 {
        block.len() as u64 + ENTRY_OVERHEAD_BYTES
    }
}

type Inner = Cache<
    (u64, u64),
    Block,
    BlockWeight,
    BuildHasherDefault<DefaultHasher>,
    DefaultLifecycle<(u64, u64), Block>,
>;

/// The shared block cache, with its hit and miss counters.
pub struct BlockCache {
    cache: Inner,
    capacity: u64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl BlockCache {
    /// A cache of `bytes`, or `None` for 0 (no cache).
    pub fn new(bytes: usize) -> Option<Arc<BlockCache>> {
        if bytes == 0 {
            return None;
        }
        let capacity = bytes as u64;
        // Blocks are typically a few KiB: the estimate only sizes the cache's table.
        let items = (bytes / 4096).clamp(16, 1 << 20);
        Some(Arc::new(BlockCache {
            cache: Cache::with(
                items,
                capacity,
                BlockWeight,
                BuildHasherDefault::default(),
                DefaultLifecycle::default(),
            ),
            capacity,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }))
    }

    fn key(table: u64, offset: u64) -> (u64, u64) {
        if planted::active(Bug::CacheKeyWithoutTableNumber) {
            (0, offset)
        } else {
            (table, offset)
        }
    }

    /// The cached block of `table` at `offset`, counting a hit or a miss.
    pub fn get(&self, table: u64, offset: u64) -> Option<Block> {
        let b = self.cache.get(&Self::key(table, offset));
        let c = if b.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        c.fetch_add(1, Ordering::Relaxed);
        b
    }

    pub fn insert(&self, table: u64, offset: u64, block: Block) {
        self.cache.insert(Self::key(table, offset), block);
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Bytes held now (blocks and their overhead).
    pub fn bytes(&self) -> u64 {
        self.cache.weight()
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }
}
