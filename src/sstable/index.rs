//! A table's index in memory: for each data block, in order, its last key and its handle. The
//! keys lie end to end in one buffer, so the index of a table costs three allocations however
//! many blocks it names, and a lookup's binary search reads each probed key without following a
//! pointer per entry.

use super::block::BlockCursor;
use super::format::{get_handle, BlockHandle, BLOCK_TRAILER_LEN};
use crate::error::{Error, Result};
use crate::key;
use crate::planted::{self, Bug};
use std::path::Path;

#[derive(Default)]
pub(crate) struct BlockIndex {
    /// Every block's last key (an encoded internal key), end to end.
    keys: Vec<u8>,
    /// Where each block's key ends in `keys` (it starts where the one before ends).
    ends: Vec<u32>,
    /// Each block's last user key's first 8 bytes ([`key::user_key_prefix`]): a lookup's binary
    /// search compares these, side by side in memory, and reads a key in `keys` only where
    /// the prefixes are equal.
    prefixes: Vec<u64>,
    handles: Vec<BlockHandle>,
}

impl BlockIndex {
    /// Decodes and checks an index block read from `path`: keys well formed and increasing,
    /// handles naming contiguous data blocks from offset 0 that end by `data_limit`. Errors
    /// name the offset of the data region's end.
    pub fn decode(buf: &[u8], path: &Path, data_limit: u64) -> Result<BlockIndex> {
        let corrupt = |reason: String| Error::corruption(path, data_limit, reason);
        let mut c = BlockCursor::default();
        c.reset(buf)
            .map_err(|r| corrupt(format!("index block: {r}")))?;
        c.seek_to_first(buf)
            .map_err(|r| corrupt(format!("index block: {r}")))?;
        let mut out = BlockIndex::default();
        let mut next_offset = 0u64;
        while c.valid() {
            let handle = get_handle(c.value(buf))
                .ok_or_else(|| corrupt("index entry with a malformed block handle".into()))?;
            if key::parse(c.key()).is_none() {
                return Err(corrupt("index entry with a malformed internal key".into()));
            }
            if let Some(prev) = out.len().checked_sub(1) {
                if key::compare(out.last_key(prev), c.key()).is_ge() {
                    return Err(corrupt("index keys out of order".into()));
                }
            }
            // Data blocks are contiguous from offset 0 and end before the filter block.
            let end = handle
                .offset
                .checked_add(handle.len + BLOCK_TRAILER_LEN as u64);
            if handle.offset != next_offset || end.is_none_or(|e| e > data_limit) {
                return Err(corrupt(format!(
                    "index names a data block at offset {} with length {} outside the data region",
                    handle.offset, handle.len
                )));
            }
            next_offset = end.unwrap_or(0);
            out.keys.extend_from_slice(c.key());
            // The keys come from one index block, which is bounded far below 4 GiB.
            let key_end = u32::try_from(out.keys.len())
                .map_err(|_| corrupt("index keys of 4 GiB or more".into()))?;
            out.ends.push(key_end);
            out.prefixes
                .push(key::user_key_prefix(key::user_key(c.key())));
            out.handles.push(handle);
            c.advance(buf)
                .map_err(|r| corrupt(format!("index block: {r}")))?;
        }
        out.keys.shrink_to_fit();
        out.prefixes.shrink_to_fit();
        Ok(out)
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// The handle of block `i`, if there is one.
    pub fn handle(&self, i: usize) -> Option<BlockHandle> {
        self.handles.get(i).copied()
    }

    /// Every block's handle, in order.
    pub fn handles(&self) -> impl Iterator<Item = BlockHandle> + '_ {
        self.handles.iter().copied()
    }

    /// The last key of block `i` (`i < len`).
    fn last_key(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.keys[start..self.ends[i] as usize]
    }

    /// The first block whose last key is at or after `ikey` (`len` if none): the only block
    /// that may hold `ikey`, or the first entry after it.
    pub fn find(&self, ikey: &[u8]) -> usize {
        let q = key::user_key_prefix(key::user_key(ikey));
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let p = self.prefixes[mid];
            let before = if p != q {
                p < q
            } else if planted::active(Bug::IndexPrefixTieTakenAsAfter) {
                // Planted: an equal prefix is taken to mean the block's last key is at or
                // after the target, so a lookup can stop a block early.
                false
            } else {
                key::compare(self.last_key(mid), ikey).is_lt()
            };
            if before {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Kind;
    use proptest::prelude::*;

    /// An index over `last_keys` (sorted), as `decode` builds it, without a block to decode.
    fn index_of(last_keys: &[Vec<u8>]) -> BlockIndex {
        let mut ix = BlockIndex::default();
        for (i, k) in last_keys.iter().enumerate() {
            ix.keys.extend_from_slice(k);
            ix.ends.push(ix.keys.len() as u32);
            ix.prefixes.push(key::user_key_prefix(key::user_key(k)));
            ix.handles.push(BlockHandle {
                offset: i as u64,
                len: 1,
            });
        }
        ix
    }

    proptest! {
        #[test]
        fn find_is_the_first_block_whose_last_key_is_not_before_the_target(
            user_keys in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(b'k')], 0..11),
                1..60,
            ),
            targets in proptest::collection::vec(
                (proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(b'k')], 0..11),
                 0u64..5),
                1..20,
            ),
        ) {
            let mut last: Vec<Vec<u8>> = user_keys
                .iter()
                .enumerate()
                .map(|(i, k)| key::encode(k, (i % 4) as u64 + 1, Kind::Put))
                .collect();
            last.sort_by(|a, b| key::compare(a, b));
            last.dedup();
            let ix = index_of(&last);
            for (k, seq) in &targets {
                let t = key::encode(k, *seq, Kind::Put);
                let want = last.partition_point(|b| key::compare(b, &t).is_lt());
                prop_assert_eq!(ix.find(&t), want);
            }
        }
    }
}
