//! The memtable: a lock-free skiplist of internal keys whose bytes live in an arena, with size
//! accounting.

mod arena;

use crate::key::{self, Found, InternalKeyRef, Kind};
use crate::planted::{self, Bug};
use crate::rangedel::{Fragments, RangeTombstone};
use crate::sync::{self, Mutex};
use arena::{Arena, Span};
use crossbeam_skiplist::SkipSet;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes charged per entry on top of its key and value: the skiplist node and its tower (about
/// 40 bytes, in a 48-byte allocator chunk: the entry, 16 bytes of span and key prefix, a
/// reference count and two tower links on average), the entry's length header in the arena
/// (2 to 10 bytes) and the arena's unused block tails. An estimate on the safe side; it only
/// decides when to flush.
const ENTRY_OVERHEAD_BYTES: usize = 64;

/// One version in the memtable: its encoded internal key and value, stored in the memtable's
/// arena, and the user key's first 8 bytes. Ordered by the internal key.
pub struct MemEntry {
    span: Span,
    /// [`key::user_key_prefix`] of the entry's user key: where two entries' prefixes differ
    /// they decide the order, so an insertion's search decides most steps in the skiplist's
    /// node, without reading the arena.
    prefix: u64,
}

// A skiplist node holds its entry. At 16 bytes a node of height 1 or 2 asks for 32 or 40 bytes,
// one 48-byte chunk of glibc's allocator; at 24, nodes of height 2 took 64.
const _: () = assert!(std::mem::size_of::<MemEntry>() == 16);

impl MemEntry {
    fn new(span: Span) -> MemEntry {
        let prefix = key_prefix(key::user_key(span.key()));
        MemEntry { span, prefix }
    }

    /// The encoded internal key.
    pub fn key(&self) -> &[u8] {
        self.span.key()
    }

    /// The value.
    pub fn value(&self) -> &[u8] {
        self.span.value()
    }
}

/// The first 8 bytes of `user_key` as a big-endian integer, zero-padded
/// ([`key::user_key_prefix`]).
fn key_prefix(user_key: &[u8]) -> u64 {
    let p = key::user_key_prefix(user_key);
    if planted::active(Bug::MemtablePrefixLittleEndian) {
        // Planted: the bytes read little-endian, so the last of the 8 weighs most and keys
        // that differ earlier and later order by the later byte.
        return p.swap_bytes();
    }
    p
}

impl PartialEq for MemEntry {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for MemEntry {}

impl Ord for MemEntry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self.prefix != other.prefix {
            return self.prefix.cmp(&other.prefix);
        }
        key::compare(self.key(), other.key())
    }
}

impl PartialOrd for MemEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::borrow::Borrow<InternalKeyRef> for MemEntry {
    fn borrow(&self) -> &InternalKeyRef {
        InternalKeyRef::new(self.key())
    }
}

/// Entries copied out of a memtable, in order, into one reused buffer: reading a chunk
/// allocates nothing once the buffer has grown.
#[derive(Default)]
pub struct Chunk {
    bytes: Vec<u8>,
    /// Per entry: where its key starts in `bytes`, its key length and its value length.
    spans: Vec<(usize, usize, usize)>,
}

impl Chunk {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.spans.clear();
    }

    fn push(&mut self, ikey: &[u8], value: &[u8]) {
        self.spans.push((self.bytes.len(), ikey.len(), value.len()));
        self.bytes.extend_from_slice(ikey);
        self.bytes.extend_from_slice(value);
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Reverses the order of the entries.
    pub fn reverse(&mut self) {
        self.spans.reverse();
    }

    /// The encoded internal key of entry `i`.
    pub fn key(&self, i: usize) -> &[u8] {
        let (at, k, _) = self.spans[i];
        &self.bytes[at..at + k]
    }

    /// The value of entry `i`.
    pub fn value(&self, i: usize) -> &[u8] {
        let (at, k, v) = self.spans[i];
        &self.bytes[at + k..at + k + v]
    }
}

/// An in-memory sorted table of recent writes, backed by the WAL numbered `wal_number`.
pub struct Memtable {
    /// Declared before `arena`, so it drops first: its entries point into the arena.
    map: SkipSet<MemEntry>,
    /// Range tombstones, in the order written, and their fragments (rebuilt on the first read
    /// after a change). Range deletes are rare; reads take the fragments without a lock when
    /// there are none.
    ranges: Mutex<Ranges>,
    range_count: AtomicUsize,
    size_bytes: AtomicUsize,
    max_seq: AtomicU64,
    wal_number: u64,
    /// The bytes of every entry in `map`.
    arena: Arena,
}

#[derive(Default)]
struct Ranges {
    tombs: Vec<RangeTombstone>,
    fragments: Option<Arc<Fragments>>,
}

impl Memtable {
    /// An empty memtable whose writes are logged in WAL `wal_number`, its arena in blocks of
    /// the default size.
    pub fn new(wal_number: u64) -> Memtable {
        Memtable::sized(wal_number, arena::BLOCK_BYTES)
    }

    /// An empty memtable that will be flushed at about `size_bytes`
    /// (`Options::memtable_size_bytes`): its arena takes blocks of that size (within the
    /// arena's bounds), so a full memtable's bytes lie in one or a few blocks, whose memory
    /// goes back to the system when the memtable is dropped (`arena::Arena::with_block_bytes`).
    pub fn sized(wal_number: u64, size_bytes: usize) -> Memtable {
        Memtable {
            map: SkipSet::new(),
            ranges: Mutex::new(Ranges::default()),
            range_count: AtomicUsize::new(0),
            size_bytes: AtomicUsize::new(0),
            max_seq: AtomicU64::new(0),
            wal_number,
            arena: Arena::with_block_bytes(size_bytes),
        }
    }

    /// The WAL holding this memtable's writes.
    pub fn wal_number(&self) -> u64 {
        self.wal_number
    }

    /// Inserts one version. `value` is the value of a put or the 8-byte deletion time of a
    /// tombstone.
    pub fn insert(&self, user_key: &[u8], seq: u64, kind: Kind, value: &[u8]) {
        let trailer = key::trailer(seq, kind).to_le_bytes();
        let charge = user_key.len() + trailer.len() + value.len() + ENTRY_OVERHEAD_BYTES;
        let span = self.arena.store([user_key, &trailer], value);
        self.map.insert(MemEntry::new(span));
        self.size_bytes.fetch_add(charge, Ordering::Relaxed);
        self.max_seq.fetch_max(seq, Ordering::Relaxed);
    }

    /// Inserts a range tombstone deleting `[start, end)` (empty if `start >= end`).
    pub fn insert_range(&self, start: &[u8], end: &[u8], seq: u64, time_ms: u64) {
        let mut r = sync::lock(&self.ranges);
        r.tombs.push(RangeTombstone {
            start: start.to_vec(),
            end: end.to_vec(),
            seq,
            time_ms,
        });
        r.fragments = None;
        self.range_count.fetch_add(1, Ordering::Release);
        let charge = start.len() + end.len() + 16 + ENTRY_OVERHEAD_BYTES;
        self.size_bytes.fetch_add(charge, Ordering::Relaxed);
        self.max_seq.fetch_max(seq, Ordering::Relaxed);
    }

    /// The fragments of this memtable's range tombstones, `None` if it has none.
    pub fn range_fragments(&self) -> Option<Arc<Fragments>> {
        if self.range_count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut r = sync::lock(&self.ranges);
        let r = &mut *r;
        let f = r
            .fragments
            .get_or_insert_with(|| Arc::new(Fragments::build(r.tombs.clone())));
        Some(f.clone())
    }

    /// Number of range tombstones inserted.
    pub fn range_tombstones(&self) -> usize {
        self.range_count.load(Ordering::Acquire)
    }

    /// Largest sequence number inserted (0 if none).
    pub fn max_seq(&self) -> u64 {
        self.max_seq.load(Ordering::Relaxed)
    }

    /// The newest version of `user_key` with sequence number at most `seq`, and its sequence
    /// number. Range tombstones are not consulted (see [`Memtable::range_fragments`]).
    pub fn get(&self, user_key: &[u8], seq: u64) -> Option<(u64, Found<Vec<u8>>)> {
        key::with_lookup_key(user_key, seq, |lookup| {
            let e = self
                .map
                .lower_bound(Bound::Included(InternalKeyRef::new(lookup)))?;
            let e = e.value();
            let p = key::parse(e.key())?;
            if p.user_key != user_key {
                return None;
            }
            Some((
                p.seq,
                match p.kind {
                    Kind::Put => Found::Value(e.value().to_vec()),
                    Kind::Delete | Kind::RangeDelete => Found::Deleted,
                },
            ))
        })
    }

    /// Up to `max` entries (encoded internal key, value) in order, starting after `after` (or at
    /// `from` when `after` is `None`).
    pub fn chunk(&self, from: Bound<&[u8]>, max: usize, out: &mut Chunk) {
        let lower = match from {
            Bound::Included(k) => Bound::Included(InternalKeyRef::new(k)),
            Bound::Excluded(k) => Bound::Excluded(InternalKeyRef::new(k)),
            Bound::Unbounded => Bound::Unbounded,
        };
        for e in self
            .map
            .range::<InternalKeyRef, _>((lower, Bound::Unbounded))
            .take(max)
        {
            out.push(e.value().key(), e.value().value());
        }
    }

    /// Calls `f` on every entry in order.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &[u8])) {
        for e in self.map.iter() {
            f(e.value().key(), e.value().value());
        }
    }

    /// Approximate bytes held.
    pub fn size_bytes(&self) -> usize {
        self.size_bytes.load(Ordering::Relaxed)
    }

    /// Number of versions held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if nothing was inserted (no version and no range tombstone).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty() && self.range_tombstones() == 0
    }

    /// Up to `max` entries before `before` (or the last ones when `None`), in descending order.
    pub fn chunk_back(&self, before: Option<&[u8]>, max: usize, out: &mut Chunk) {
        let upper = match before {
            Some(k) => Bound::Excluded(InternalKeyRef::new(k)),
            None => Bound::Unbounded,
        };
        for e in self
            .map
            .range::<InternalKeyRef, _>((Bound::Unbounded, upper))
            .rev()
            .take(max)
        {
            out.push(e.value().key(), e.value().value());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Keys of 1 to 11 bytes over a few byte values (0 among them), so that short keys, keys
    /// that are prefixes of others, and keys equal in their first 8 bytes are common.
    fn short_keys() -> impl Strategy<Value = Vec<Vec<u8>>> {
        let byte = prop_oneof![Just(0u8), Just(1u8), Just(b'k'), Just(0xff)];
        proptest::collection::vec(proptest::collection::vec(byte, 1..12), 1..40)
    }

    proptest! {
        #[test]
        fn prefixes_that_differ_order_as_their_keys(
            a in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(0xff)], 0..11),
            b in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(0xff)], 0..11),
        ) {
            let (pa, pb) = (key_prefix(&a), key_prefix(&b));
            if pa != pb {
                prop_assert_eq!(pa.cmp(&pb), a.cmp(&b));
            }
        }

        #[test]
        fn entries_come_out_in_internal_key_order(keys in short_keys()) {
            let m = Memtable::new(1);
            for (i, k) in keys.iter().enumerate() {
                m.insert(k, i as u64 + 1, Kind::Put, b"v");
            }
            let mut out = Chunk::default();
            m.chunk(Bound::Unbounded, keys.len() + 1, &mut out);
            let mut want: Vec<Vec<u8>> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| key::encode(k, i as u64 + 1, Kind::Put))
                .collect();
            want.sort_by(|x, y| key::compare(x, y));
            let got: Vec<Vec<u8>> = (0..out.len()).map(|i| out.key(i).to_vec()).collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn get_sees_newest_visible_version() {
        let m = Memtable::new(1);
        m.insert(b"a", 1, Kind::Put, b"v1");
        m.insert(b"a", 3, Kind::Delete, &0u64.to_le_bytes());
        m.insert(b"a", 5, Kind::Put, b"v5");
        m.insert(b"ab", 2, Kind::Put, b"x");
        assert_eq!(m.get(b"a", 10), Some((5, Found::Value(b"v5".to_vec()))));
        assert_eq!(m.get(b"a", 4), Some((3, Found::Deleted)));
        assert_eq!(m.get(b"a", 2), Some((1, Found::Value(b"v1".to_vec()))));
        assert_eq!(m.get(b"a", 0), None);
        assert_eq!(m.get(b"", 10), None);
        assert_eq!(m.get(b"b", 10), None);
        let mut out = Chunk::default();
        m.chunk(Bound::Unbounded, 10, &mut out);
        assert_eq!(out.len(), 4);
        assert!((1..out.len()).all(|i| key::compare(out.key(i - 1), out.key(i)).is_lt()));
        assert_eq!(out.value(0), b"v5");
        let mut back = Chunk::default();
        m.chunk_back(None, 2, &mut back);
        assert_eq!(back.len(), 2);
        assert_eq!(key::parse(back.key(0)).unwrap().user_key, b"ab");
        assert_eq!(back.value(0), b"x");
    }
}
