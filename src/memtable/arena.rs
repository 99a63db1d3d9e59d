//! The memtable's arena: the bytes of its entries, copied into large blocks that never move and
//! are freed all at once with the memtable. An entry costs one bump of an offset instead of an
//! allocation, and dropping a memtable frees a few hundred blocks instead of an allocation per
//! entry (which, from the flush thread, contended with the writer for the allocator's lock).
//!
//! The only `unsafe` of the memtable is here. Its contract: a [`Span`] points into a block of
//! the arena that made it, and is read only while that arena lives. The memtable keeps it: its
//! skiplist (the only holder of spans) is declared before its arena, so it drops first.

use crate::planted::{self, Bug};
use std::mem::MaybeUninit;
use std::ptr::NonNull;

/// Bytes of a regular block by default (see [`Arena::with_block_bytes`]).
pub const BLOCK_BYTES: usize = 1 << 20;
/// The largest regular block.
pub const MAX_BLOCK_BYTES: usize = 64 << 20;
/// Entries larger than this get a block of their own, so a block wastes at most this much.
const LARGE_BYTES: usize = BLOCK_BYTES / 8;

/// One block: memory owned through a raw pointer (from `Box::into_raw`), so writes into its
/// free tail never alias the `&[u8]` readers hold into its written part.
struct RawBlock {
    ptr: NonNull<MaybeUninit<u8>>,
    len: usize,
}

impl RawBlock {
    fn new(len: usize) -> RawBlock {
        let b: Box<[MaybeUninit<u8>]> = Box::new_uninit_slice(len);
        let raw = Box::into_raw(b);
        RawBlock {
            // SAFETY: `Box::into_raw` never returns null.
            ptr: unsafe { NonNull::new_unchecked(raw as *mut MaybeUninit<u8>) },
            len,
        }
    }
}

// SAFETY: a block is plain memory, owned by one arena; access to its bytes goes through the
// arena's lock (writes) or through spans (reads of bytes written once, see `Span`).
unsafe impl Send for RawBlock {}

impl Drop for RawBlock {
    fn drop(&mut self) {
        let raw = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
        // SAFETY: `ptr` and `len` came from `Box::into_raw` of a boxed slice of this length,
        // and the block is freed once (here).
        drop(unsafe { Box::from_raw(raw) });
    }
}

#[derive(Default)]
struct Blocks {
    blocks: Vec<RawBlock>,
    /// The block being filled (an index into `blocks`) and the bytes of it used.
    current: Option<(usize, usize)>,
}

/// An append-only store of byte strings.
pub struct Arena {
    // A plain lock, not one of `crate::sync`'s: it is held for a copy only, with no
    // synchronization inside, so it is never a scheduling point of the simulator's threaded
    // runs (and one writer, the group's leader, inserts at a time).
    inner: std::sync::Mutex<Blocks>,
    /// Bytes of a regular block.
    block_bytes: usize,
}

impl Default for Arena {
    fn default() -> Arena {
        Arena::with_block_bytes(BLOCK_BYTES)
    }
}

/// Bytes stored in an [`Arena`]: a header (the key's length, then the value's, each a LEB128
/// varint), the key, then the value, one after the other. A span is one pointer, so a
/// skiplist entry (a span and a key prefix) takes 16 bytes; the lengths cost 2 bytes in the
/// arena for a key and a value shorter than 128 bytes each.
pub struct Span {
    ptr: NonNull<u8>,
}

// SAFETY: a span's bytes are written once, before the span exists, and never again; the
// skiplist's insertion publishes the span (and, through it, the bytes) to other threads.
unsafe impl Send for Span {}
// SAFETY: as above: shared access only ever reads immutable bytes.
unsafe impl Sync for Span {}

/// Writes `v` as a LEB128 varint at `out[at..]`; returns its length.
fn put_len(out: &mut [u8; 10], at: usize, mut v: u32) -> usize {
    let mut i = at;
    while v >= 0x80 {
        out[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    out[i] = v as u8;
    i + 1 - at
}

impl Span {
    /// The header's length, then the key's and the value's.
    fn lens(&self) -> (usize, usize, usize) {
        let p = self.ptr.as_ptr();
        // SAFETY: `p` points to the header `Arena::store` wrote, in initialized bytes of a live
        // block (the module's contract); each varint ends at its first byte below 0x80, within
        // the header.
        let byte = |i: usize| unsafe { *p.add(i) };
        let (k, v) = (byte(0), byte(1));
        if k < 0x80 && v < 0x80 {
            return (2, usize::from(k), usize::from(v));
        }
        let mut at = 0;
        let mut read = || {
            let (mut n, mut shift) = (0usize, 0);
            loop {
                let b = byte(at);
                at += 1;
                n |= usize::from(b & 0x7f) << shift;
                if b < 0x80 {
                    return n;
                }
                shift += 7;
            }
        };
        let k = read();
        let v = read();
        (at, k, v)
    }

    /// The key. Valid only while the arena that stored it lives (the module's contract).
    pub fn key(&self) -> &[u8] {
        let (h, k, _) = self.lens();
        // SAFETY: the key's `k` initialized bytes follow the header within the stored bytes
        // of a live block (`Arena::store` and the module's contract).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(h), k) }
    }

    /// The value (see [`Span::key`]).
    pub fn value(&self) -> &[u8] {
        let (h, k, v) = self.lens();
        // SAFETY: as in `key`: the value's `v` bytes follow the key within the stored bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(h + k), v) }
    }
}

impl Arena {
    /// An arena whose regular blocks hold `block_bytes` (clamped to [`BLOCK_BYTES`] ..=
    /// [`MAX_BLOCK_BYTES`]). A block's memory is touched only where bytes are stored, so a
    /// large block costs resident memory only as it fills; the memtable sizes its blocks to
    /// itself, so a memtable of 64 MiB stores everything in one block, which the allocator
    /// maps and unmaps on its own (glibc maps an allocation above 32 MiB directly, whatever
    /// its adaptive threshold, where blocks of 1 MiB, once that threshold had grown past
    /// them, came from a heap that kept the memory after the memtable was freed).
    pub fn with_block_bytes(block_bytes: usize) -> Arena {
        Arena {
            inner: std::sync::Mutex::default(),
            block_bytes: block_bytes.clamp(BLOCK_BYTES, MAX_BLOCK_BYTES),
        }
    }

    /// Copies a key (given in two parts, written one after the other) and a value into the
    /// arena. Each must be shorter than 4 GiB (the limits on keys and values are far below).
    pub fn store(&self, key: [&[u8]; 2], value: &[u8]) -> Span {
        let klen = key[0].len() + key[1].len();
        let key_len = u32::try_from(klen).expect("key shorter than 4 GiB");
        let value_len = u32::try_from(value.len()).expect("value shorter than 4 GiB");
        let mut header = [0u8; 10];
        let mut h = put_len(&mut header, 0, key_len);
        h += put_len(&mut header, h, value_len);
        let n = h + klen + value.len();
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (block, at) = match b.current {
            _ if n > LARGE_BYTES => {
                b.blocks.push(RawBlock::new(n));
                (b.blocks.len() - 1, 0)
            }
            Some((i, used)) if used + n <= self.block_bytes => {
                b.current = Some((i, used + n));
                // Planted: the previous entry's end is one byte too early (an off-by-one in the
                // bump), so this entry's first byte overwrites its last.
                let at = if used > 0 && planted::active(Bug::ArenaOverlapsLastEntry) {
                    used - 1
                } else {
                    used
                };
                (i, at)
            }
            _ => {
                b.blocks.push(RawBlock::new(self.block_bytes));
                let i = b.blocks.len() - 1;
                b.current = Some((i, n));
                (i, 0)
            }
        };
        let dst = b.blocks[block].ptr.as_ptr() as *mut u8;
        // SAFETY: `[at, at + n)` lies within the block (checked above) and was never handed
        // out before, so no reader can see it; the sources are separate allocations. (Under
        // the planted `ArenaOverlapsLastEntry` its first byte was; the simulator that plants
        // it reads nothing while a write runs.)
        unsafe {
            let start = dst.add(at);
            std::ptr::copy_nonoverlapping(header.as_ptr(), start, h);
            let dst = start.add(h);
            std::ptr::copy_nonoverlapping(key[0].as_ptr(), dst, key[0].len());
            std::ptr::copy_nonoverlapping(key[1].as_ptr(), dst.add(key[0].len()), key[1].len());
            std::ptr::copy_nonoverlapping(value.as_ptr(), dst.add(klen), value.len());
            Span {
                ptr: NonNull::new_unchecked(start),
            }
        }
    }

    /// Bytes of every block the arena holds (used or not).
    #[cfg(test)]
    pub fn reserved_bytes(&self) -> usize {
        let b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        b.blocks.iter().map(|b| b.len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_back_what_was_stored_across_blocks_and_large_entries() {
        check_spans(Arena::default(), BLOCK_BYTES);
    }

    #[test]
    fn a_larger_block_holds_what_many_default_blocks_did() {
        let a = Arena::with_block_bytes(4 * BLOCK_BYTES);
        check_spans(a, 4 * BLOCK_BYTES);
        // Out-of-range sizes are clamped.
        assert_eq!(Arena::with_block_bytes(0).block_bytes, BLOCK_BYTES);
        assert_eq!(
            Arena::with_block_bytes(usize::MAX).block_bytes,
            MAX_BLOCK_BYTES
        );
    }

    /// Stores mixed entries in `a` (regular blocks of `block` bytes), reads them back and
    /// checks the blocks it took.
    fn check_spans(a: Arena, block: usize) {
        let mut spans = Vec::new();
        let mut want = Vec::new();
        // Fewer under Miri, which checks every access of the unsafe code above.
        let count = if cfg!(miri) { 1_200 } else { 20_000u32 };
        for i in 0..count {
            // Mostly small entries, some larger than a block's share, some empty.
            // Keys of 128 bytes or more take a 2-byte length in the header.
            let klen = if i % 501 == 0 { 200 } else { (i % 37) as usize };
            let vlen = match i % 1000 {
                0 => LARGE_BYTES + 1,
                1 => 0,
                _ => (i % 300) as usize,
            };
            let k: Vec<u8> = (0..klen).map(|j| (i as usize + j) as u8).collect();
            let v: Vec<u8> = (0..vlen).map(|j| (i as usize * 7 + j) as u8).collect();
            let cut = k.len() / 3;
            spans.push(a.store([&k[..cut], &k[cut..]], &v));
            want.push((k, v));
        }
        for (s, (k, v)) in spans.iter().zip(&want) {
            assert_eq!(s.key(), &k[..]);
            assert_eq!(s.value(), &v[..]);
        }
        // Regular blocks are filled before a new one is taken: at most one block's worth of
        // waste per block, and every large entry in a block of its own.
        let stored: usize = want.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(a.reserved_bytes() >= stored);
        assert!(
            a.reserved_bytes() < stored + 2 * block,
            "{}",
            a.reserved_bytes()
        );
    }
}
