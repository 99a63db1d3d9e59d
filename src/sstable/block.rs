//! Sorted key/value blocks with prefix compression and restart points.
//!
//! ```text
//! block   := entry* restart* num_restarts
//! entry   := shared varint | unshared varint | value_len varint | key[shared..] | value
//! restart := u32 LE offset of an entry whose key is stored whole (shared = 0)
//! num_restarts := u32 LE (at least 1)
//! ```
//! On disk every block is followed by a 4-byte trailer checksum (see `format.rs`).

use crate::coding::varint;
use std::cmp::Ordering;

/// Builds one block.
pub struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    counter: usize,
    last_key: Vec<u8>,
    entries: usize,
}

impl BlockBuilder {
    pub fn new(restart_interval: usize) -> BlockBuilder {
        BlockBuilder {
            buf: Vec::new(),
            restarts: vec![0],
            restart_interval: restart_interval.max(1),
            counter: 0,
            last_key: Vec::new(),
            entries: 0,
        }
    }

    /// Adds an entry; keys must be added in increasing order of the table's comparator.
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        let shared = if self.counter < self.restart_interval {
            self.last_key
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count()
        } else {
            self.restarts.push(self.buf.len() as u32);
            self.counter = 0;
            0
        };
        varint::put(&mut self.buf, shared as u64);
        varint::put(&mut self.buf, (key.len() - shared) as u64);
        varint::put(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.counter += 1;
        self.entries += 1;
    }

    /// Bytes the finished block would take.
    pub fn size_estimate(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    pub fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    /// Finishes the block into `out` and resets the builder.
    pub fn finish_into(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.buf);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        self.buf.clear();
        self.restarts.clear();
        self.restarts.push(0);
        self.counter = 0;
        self.last_key.clear();
        self.entries = 0;
    }
}

/// A cursor over a block's entries. Owns a reusable key buffer; the block bytes are passed to
/// each call, so one cursor serves many blocks without allocating.
///
/// Every method checks the bytes it reads: a malformed block yields `Err(reason)`, never a panic.
#[derive(Default)]
pub struct BlockCursor {
    restarts_off: usize,
    num_restarts: usize,
    /// Offset of the current entry, or `restarts_off` when exhausted.
    pos: usize,
    next: usize,
    key: Vec<u8>,
    value: (usize, usize),
}

/// A byte range of a block.
type Span = (usize, usize);

/// Parses the entry at offset `at` of a block's entry area, after a key of `prev_len` bytes:
/// its shared length and the spans of its key suffix and value.
fn parse_entry(entries: &[u8], at: usize, prev_len: usize) -> Result<(usize, Span, Span), String> {
    let mut p = at;
    let bad = |what: &str| format!("malformed entry at block offset {at}: {what}");
    let shared = varint::get(entries, &mut p).ok_or_else(|| bad("shared length"))? as usize;
    let unshared = varint::get(entries, &mut p).ok_or_else(|| bad("unshared length"))? as usize;
    let vlen = varint::get(entries, &mut p).ok_or_else(|| bad("value length"))? as usize;
    if shared > prev_len {
        return Err(bad("shares more bytes than the previous key has"));
    }
    let kend = p.checked_add(unshared).ok_or_else(|| bad("key length"))?;
    let vend = kend.checked_add(vlen).ok_or_else(|| bad("value length"))?;
    if vend > entries.len() {
        return Err(bad("runs past the entries"));
    }
    Ok((shared, (p, kend), (kend, vend)))
}

impl BlockCursor {
    /// Points the cursor at a block (before its first entry).
    pub fn reset(&mut self, block: &[u8]) -> Result<(), String> {
        if block.len() < 4 {
            return Err(format!(
                "block of {} bytes has no restart count",
                block.len()
            ));
        }
        let n = u32::from_le_bytes(block[block.len() - 4..].try_into().expect("4 bytes")) as usize;
        let max = (block.len() - 4) / 4;
        if n == 0 || n > max {
            return Err(format!(
                "block of {} bytes claims {n} restart points",
                block.len()
            ));
        }
        self.restarts_off = block.len() - 4 - 4 * n;
        self.num_restarts = n;
        self.pos = self.restarts_off;
        self.next = 0;
        self.key.clear();
        Ok(())
    }

    fn restart(&self, block: &[u8], i: usize) -> Result<usize, String> {
        let o = self.restarts_off + 4 * i;
        let r = u32::from_le_bytes(block[o..o + 4].try_into().expect("4 bytes")) as usize;
        if r >= self.restarts_off && !(r == 0 && self.restarts_off == 0) {
            return Err(format!("restart point {i} at {r} is past the entries"));
        }
        Ok(r)
    }

    /// True while the cursor is on an entry.
    pub fn valid(&self) -> bool {
        self.pos < self.restarts_off
    }

    pub fn key(&self) -> &[u8] {
        &self.key
    }

    pub fn value<'b>(&self, block: &'b [u8]) -> &'b [u8] {
        &block[self.value.0..self.value.1]
    }

    /// Decodes the entry at `self.next`, making it current.
    fn decode_at(&mut self, block: &[u8], at: usize) -> Result<(), String> {
        self.pos = at;
        if at >= self.restarts_off {
            self.pos = self.restarts_off;
            return Ok(());
        }
        let entries = &block[..self.restarts_off];
        let (shared, key, value) = parse_entry(entries, at, self.key.len())?;
        self.key.truncate(shared);
        self.key.extend_from_slice(&entries[key.0..key.1]);
        self.value = value;
        self.next = value.1;
        Ok(())
    }

    /// Moves to the first entry.
    pub fn seek_to_first(&mut self, block: &[u8]) -> Result<(), String> {
        self.key.clear();
        self.decode_at(block, 0)
    }

    /// Moves to the next entry.
    pub fn advance(&mut self, block: &[u8]) -> Result<(), String> {
        if !self.valid() {
            return Ok(());
        }
        let next = self.next;
        self.decode_at(block, next)
    }

    /// Moves to the last entry.
    pub fn seek_to_last(&mut self, block: &[u8]) -> Result<(), String> {
        let r = self.restart(block, self.num_restarts - 1)?;
        self.key.clear();
        self.decode_at(block, r)?;
        while self.valid() && self.next < self.restarts_off {
            self.advance(block)?;
        }
        Ok(())
    }

    /// Moves to the entry before the current one (off the block, so not valid, from the first).
    /// Decodes forward from the restart point before the current entry, as keys are stored
    /// relative to the previous one.
    pub fn prev(&mut self, block: &[u8]) -> Result<(), String> {
        let original = self.pos;
        // Restart points before `original`: restarts[..lo].
        let (mut lo, mut hi) = (0usize, self.num_restarts);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.restart(block, mid)? < original {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        self.key.clear();
        if lo == 0 {
            self.pos = self.restarts_off;
            return Ok(());
        }
        let r = self.restart(block, lo - 1)?;
        self.decode_at(block, r)?;
        while self.valid() && self.next < original {
            self.advance(block)?;
        }
        if !self.valid() || self.next != original {
            return Err(format!(
                "entries before block offset {original} do not end where it begins"
            ));
        }
        Ok(())
    }

    /// The key of the entry at restart point `i` (block offset `at`), which shares nothing with
    /// the key before it, borrowed from the block.
    fn whole_key_at<'b>(&self, block: &'b [u8], at: usize, i: usize) -> Result<&'b [u8], String> {
        if at >= self.restarts_off {
            return Err(format!("restart point {i} points at no entry"));
        }
        let entries = &block[..self.restarts_off];
        let (_, key, _) = parse_entry(entries, at, 0)?;
        Ok(&entries[key.0..key.1])
    }

    /// Moves to the first entry whose key is `>= target` under `cmp`.
    pub fn seek(
        &mut self,
        block: &[u8],
        target: &[u8],
        cmp: impl Fn(&[u8], &[u8]) -> Ordering,
    ) -> Result<(), String> {
        // Binary search for the last restart point whose key is < target.
        // A restart point's key is stored whole: it is compared where it lies, not copied.
        let (mut lo, mut hi) = (0usize, self.num_restarts - 1);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            let r = self.restart(block, mid)?;
            let key = self.whole_key_at(block, r, mid)?;
            if cmp(key, target) == Ordering::Less {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let r = self.restart(block, lo)?;
        self.key.clear();
        self.decode_at(block, r)?;
        while self.valid() && cmp(&self.key, target) == Ordering::Less {
            self.advance(block)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn build(entries: &[(Vec<u8>, Vec<u8>)], interval: usize) -> Vec<u8> {
        let mut b = BlockBuilder::new(interval);
        for (k, v) in entries {
            b.add(k, v);
        }
        let mut out = Vec::new();
        b.finish_into(&mut out);
        out
    }

    proptest! {
        #[test]
        fn block_round_trips_and_seeks(
            map in proptest::collection::btree_map(proptest::collection::vec(any::<u8>(), 0..12), proptest::collection::vec(any::<u8>(), 0..20), 0..60),
            interval in 1usize..20,
            probe in proptest::collection::vec(any::<u8>(), 0..12),
        ) {
            let entries: Vec<_> = map.clone().into_iter().collect();
            let block = build(&entries, interval);
            let mut c = BlockCursor::default();
            c.reset(&block).unwrap();
            c.seek_to_first(&block).unwrap();
            let mut got = Vec::new();
            while c.valid() {
                got.push((c.key().to_vec(), c.value(&block).to_vec()));
                c.advance(&block).unwrap();
            }
            prop_assert_eq!(&got, &entries);
            // Backward from the last entry gives the same entries reversed.
            c.seek_to_last(&block).unwrap();
            let mut back = Vec::new();
            while c.valid() {
                back.push((c.key().to_vec(), c.value(&block).to_vec()));
                c.prev(&block).unwrap();
            }
            back.reverse();
            prop_assert_eq!(&back, &entries);
            c.seek(&block, &probe, |a, b| a.cmp(b)).unwrap();
            let want = map.range(probe.clone()..).next();
            match want {
                Some((k, v)) => {
                    prop_assert!(c.valid());
                    prop_assert_eq!(c.key(), &k[..]);
                    prop_assert_eq!(c.value(&block), &v[..]);
                }
                None => prop_assert!(!c.valid()),
            }
        }

        #[test]
        fn garbage_blocks_never_panic(block in proptest::collection::vec(any::<u8>(), 0..200), probe in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut c = BlockCursor::default();
            if c.reset(&block).is_ok() {
                let _ = c.seek(&block, &probe, |a, b| a.cmp(b));
                if c.seek_to_first(&block).is_ok() {
                    for _ in 0..300 {
                        if !c.valid() || c.advance(&block).is_err() { break; }
                    }
                }
                if c.seek_to_last(&block).is_ok() {
                    for _ in 0..300 {
                        if !c.valid() || c.prev(&block).is_err() { break; }
                    }
                }
            }
        }
    }
}
