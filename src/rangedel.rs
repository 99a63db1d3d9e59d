//! Range tombstones and their fragments.
//!
//! A range tombstone deletes every key in `[start, end)` written before it (at a lower sequence
//! number). Reads and compactions see range tombstones *fragmented*: cut at every start and end
//! into non-overlapping pieces, each listing every tombstone that covers it, newest first. A
//! lookup is then one binary search, whatever the number of tombstones (as Pebble's keyspan and
//! RocksDB's fragmented range tombstone lists do).
//!
//! The range-deletion block of a table (format version 2, `docs/format/sstable.md`) stores a
//! table's fragments:
//!
//! ```text
//! block    := count varint | fragment*count
//! fragment := start_len varint | start | end_len varint | end
//!             | covers varint | (seq varint | deleted_at_ms u64 LE)*covers
//! ```
//! Fragments are sorted, non-empty (`start < end`) and disjoint; each lists at least one cover,
//! sequence numbers strictly descending.

use crate::coding::varint;
use crate::key::SEQ_MAX;

/// One range tombstone: deletes `[start, end)` as of sequence `seq`, at wall-clock `time_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeTombstone {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
    pub seq: u64,
    pub time_ms: u64,
}

/// A tombstone covering a fragment: its sequence number and deletion time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cover {
    pub seq: u64,
    pub time_ms: u64,
}

/// A piece `[start, end)` of the key space and the tombstones covering all of it, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
    pub covers: Vec<Cover>,
}

impl Fragment {
    /// The newest cover visible at `read_seq`.
    pub fn visible(&self, read_seq: u64) -> Option<&Cover> {
        self.covers.iter().find(|c| c.seq <= read_seq)
    }
}

/// Sorted, disjoint fragments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fragments {
    frags: Vec<Fragment>,
}

impl Fragments {
    /// Fragments the tombstones (empty ranges cover nothing and are dropped).
    pub fn build(mut tombs: Vec<RangeTombstone>) -> Fragments {
        tombs.retain(|t| t.start < t.end);
        if tombs.is_empty() {
            return Fragments::default();
        }
        let mut points: Vec<&[u8]> = tombs
            .iter()
            .flat_map(|t| [&t.start[..], &t.end[..]])
            .collect();
        points.sort_unstable();
        points.dedup();
        let mut order: Vec<usize> = (0..tombs.len()).collect();
        order.sort_by(|a, b| tombs[*a].start.cmp(&tombs[*b].start));
        let mut active: Vec<usize> = Vec::new();
        let mut next = 0;
        let mut frags: Vec<Fragment> = Vec::new();
        for w in points.windows(2) {
            let (lo, hi) = (w[0], w[1]);
            active.retain(|&i| &tombs[i].end[..] > lo);
            while next < order.len() && &tombs[order[next]].start[..] <= lo {
                active.push(order[next]);
                next += 1;
            }
            if active.is_empty() {
                continue;
            }
            let mut covers: Vec<Cover> = active
                .iter()
                .map(|&i| Cover {
                    seq: tombs[i].seq,
                    time_ms: tombs[i].time_ms,
                })
                .collect();
            covers.sort_by_key(|c| std::cmp::Reverse(c.seq));
            covers.dedup_by_key(|c| c.seq);
            match frags.last_mut() {
                Some(prev) if prev.end == lo && prev.covers == covers => prev.end = hi.to_vec(),
                _ => frags.push(Fragment {
                    start: lo.to_vec(),
                    end: hi.to_vec(),
                    covers,
                }),
            }
        }
        Fragments { frags }
    }

    /// Fragments of several sets together (as if their tombstones had been built at once).
    pub fn merge<'a>(sets: impl IntoIterator<Item = &'a Fragments>) -> Fragments {
        let mut tombs = Vec::new();
        for s in sets {
            s.tombstones_into(&mut tombs);
        }
        Fragments::build(tombs)
    }

    /// Every (fragment, cover) pair as a tombstone.
    pub fn tombstones_into(&self, out: &mut Vec<RangeTombstone>) {
        for f in &self.frags {
            for c in &f.covers {
                out.push(RangeTombstone {
                    start: f.start.clone(),
                    end: f.end.clone(),
                    seq: c.seq,
                    time_ms: c.time_ms,
                });
            }
        }
    }

    pub fn fragments(&self) -> &[Fragment] {
        &self.frags
    }

    pub fn is_empty(&self) -> bool {
        self.frags.is_empty()
    }

    /// Number of (fragment, cover) pairs: what the block stores.
    pub fn cover_count(&self) -> u64 {
        self.frags.iter().map(|f| f.covers.len() as u64).sum()
    }

    /// The fragment holding `key`, if any.
    pub fn fragment_at(&self, key: &[u8]) -> Option<&Fragment> {
        let i = self.frags.partition_point(|f| &f.end[..] <= key);
        self.frags.get(i).filter(|f| &f.start[..] <= key)
    }

    /// The newest tombstone covering `key` visible at `read_seq`.
    pub fn covering(&self, key: &[u8], read_seq: u64) -> Option<Cover> {
        self.fragment_at(key)?.visible(read_seq).copied()
    }

    /// The sequence number of the newest tombstone covering `key` visible at `read_seq`, or 0.
    pub fn max_seq_at(&self, key: &[u8], read_seq: u64) -> u64 {
        self.covering(key, read_seq).map_or(0, |c| c.seq)
    }

    /// The smallest start and largest end, if any fragment exists.
    pub fn span(&self) -> Option<(&[u8], &[u8])> {
        Some((&self.frags.first()?.start, &self.frags.last()?.end))
    }

    /// The pieces inside `[lo, hi)` (either end open if `None`).
    pub fn clip(&self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> Fragments {
        let mut frags = Vec::new();
        for f in &self.frags {
            let start = match lo {
                Some(l) if l > &f.start[..] => l,
                _ => &f.start[..],
            };
            let end = match hi {
                Some(h) if h < &f.end[..] => h,
                _ => &f.end[..],
            };
            if start < end {
                frags.push(Fragment {
                    start: start.to_vec(),
                    end: end.to_vec(),
                    covers: f.covers.clone(),
                });
            }
        }
        Fragments { frags }
    }

    /// Keeps only the covers `keep` accepts (it sees the fragment with all its covers as they
    /// were), dropping fragments left with none.
    pub fn retain_covers(&mut self, mut keep: impl FnMut(&Fragment, &Cover) -> bool) {
        for f in &mut self.frags {
            let decisions: Vec<bool> = f.covers.iter().map(|c| keep(f, c)).collect();
            let mut d = decisions.into_iter();
            f.covers.retain(|_| d.next().unwrap_or(true));
        }
        self.frags.retain(|f| !f.covers.is_empty());
    }

    /// Appends the block encoding.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        varint::put(out, self.frags.len() as u64);
        for f in &self.frags {
            varint::put(out, f.start.len() as u64);
            out.extend_from_slice(&f.start);
            varint::put(out, f.end.len() as u64);
            out.extend_from_slice(&f.end);
            varint::put(out, f.covers.len() as u64);
            for c in &f.covers {
                varint::put(out, c.seq);
                out.extend_from_slice(&c.time_ms.to_le_bytes());
            }
        }
    }

    /// Decodes and checks a block; the error says what is malformed and at which block offset.
    pub fn decode(buf: &[u8]) -> Result<Fragments, String> {
        let mut p = 0;
        let count = varint::get(buf, &mut p).ok_or("missing fragment count")?;
        // Every fragment takes at least 5 bytes: a bound before anything is allocated.
        if count > (buf.len() / 5) as u64 {
            return Err(format!(
                "block of {} bytes claims {count} fragments",
                buf.len()
            ));
        }
        let mut frags: Vec<Fragment> = Vec::with_capacity(count as usize);
        for i in 0..count {
            let at = p;
            let bad = |what: &str| format!("fragment {i} at block offset {at}: {what}");
            let bytes = |p: &mut usize| -> Option<Vec<u8>> {
                let n = usize::try_from(varint::get(buf, p)?).ok()?;
                let s = buf.get(*p..p.checked_add(n)?)?.to_vec();
                *p += n;
                Some(s)
            };
            let start = bytes(&mut p).ok_or_else(|| bad("bad start key length"))?;
            let end = bytes(&mut p).ok_or_else(|| bad("bad end key length"))?;
            if start >= end {
                return Err(bad("start does not sort before end"));
            }
            if frags.last().is_some_and(|prev| prev.end > start) {
                return Err(bad("overlaps or precedes the fragment before it"));
            }
            let n = varint::get(buf, &mut p).ok_or_else(|| bad("bad cover count"))?;
            if n == 0 || n > (buf.len().saturating_sub(p) / 9) as u64 {
                return Err(bad(&format!("claims {n} covers")));
            }
            let mut covers = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let seq = varint::get(buf, &mut p).ok_or_else(|| bad("bad sequence number"))?;
                let t = buf
                    .get(p..p + 8)
                    .ok_or_else(|| bad("deletion time runs past the block"))?;
                p += 8;
                let time_ms = u64::from_le_bytes(t.try_into().expect("8 bytes"));
                if seq > SEQ_MAX || covers.last().is_some_and(|c: &Cover| c.seq <= seq) {
                    return Err(bad("sequence numbers not strictly descending"));
                }
                covers.push(Cover { seq, time_ms });
            }
            frags.push(Fragment { start, end, covers });
        }
        if p != buf.len() {
            return Err(format!(
                "{} trailing bytes after {count} fragments",
                buf.len() - p
            ));
        }
        Ok(Fragments { frags })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tomb(s: u8, e: u8, seq: u64) -> RangeTombstone {
        RangeTombstone {
            start: vec![s],
            end: vec![e],
            seq,
            time_ms: seq * 10,
        }
    }

    proptest! {
        /// For every key and read sequence, the fragments give the newest covering tombstone a
        /// linear search over the raw tombstones gives; the encoding round-trips and any cut or
        /// flipped block fails to decode or decodes to a well-formed set.
        #[test]
        fn fragments_answer_like_a_linear_search(
            raw in proptest::collection::vec((0u8..20, 0u8..20), 0..30),
            probes in proptest::collection::vec((0u8..21, 0u64..40), 1..40),
        ) {
            let tombs: Vec<_> = raw.iter().enumerate().map(|(i, (a, b))| tomb(*a, *b, i as u64 + 1)).collect();
            let f = Fragments::build(tombs.clone());
            for (k, s) in probes {
                let want = tombs.iter().filter(|t| t.start <= vec![k] && vec![k] < t.end && t.seq <= s).map(|t| t.seq).max().unwrap_or(0);
                prop_assert_eq!(f.max_seq_at(&[k], s), want);
            }
            let mut enc = Vec::new();
            f.encode_into(&mut enc);
            prop_assert_eq!(Fragments::decode(&enc).unwrap(), f.clone());
            for cut in 0..enc.len() {
                prop_assert!(Fragments::decode(&enc[..cut]).is_err() || cut == enc.len());
            }
            // Built again from its own fragments, the set is the same.
            prop_assert_eq!(Fragments::merge([&f]), f);
        }

        #[test]
        fn garbage_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Fragments::decode(&buf);
        }
    }

    #[test]
    fn clip_keeps_the_pieces_inside() {
        let f = Fragments::build(vec![tomb(2, 8, 1), tomb(5, 12, 2)]);
        let c = f.clip(Some(&[4]), Some(&[6]));
        assert_eq!(c.fragments().len(), 2);
        assert_eq!(c.span(), Some((&[4u8][..], &[6u8][..])));
        assert_eq!(c.max_seq_at(&[5], 10), 2);
        assert_eq!(c.max_seq_at(&[4], 10), 1);
        assert_eq!(c.max_seq_at(&[6], 10), 0);
    }
}
