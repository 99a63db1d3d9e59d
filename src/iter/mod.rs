//! The merging iterator behind scans and cursors: one ordered stream over the memtables and
//! tables, newest version first for each key, movable in both directions.

mod level;

pub(crate) use level::LevelIter;

use crate::error::Result;
use crate::filename::wal_name;
use crate::memtable::{Chunk, Memtable};
use crate::planted::{self, Bug};
use crate::sstable::TableIter;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;

/// Entries fetched from a memtable at a time.
const MEM_CHUNK_ENTRIES: usize = 64;

/// An ordered stream of (encoded internal key, value), movable both ways.
pub(crate) enum Source {
    Mem(MemSource),
    Table(Box<TableIter>),
    /// A sorted level's tables (level 1 or deeper).
    Level(Box<LevelIter>),
}

/// A memtable read in chunks: `buf` holds consecutive entries in ascending order.
pub(crate) struct MemSource {
    mem: Arc<Memtable>,
    buf: Chunk,
    /// The bound key of a refill (reused).
    edge: Vec<u8>,
    idx: usize,
    valid: bool,
    /// Whether the memtable may hold entries after / before the buffer.
    more_after: bool,
    more_before: bool,
}

impl MemSource {
    pub fn new(mem: Arc<Memtable>) -> MemSource {
        MemSource {
            mem,
            buf: Chunk::default(),
            edge: Vec::new(),
            idx: 0,
            valid: false,
            more_after: false,
            more_before: false,
        }
    }

    fn fill_forward(&mut self, from: Bound<&[u8]>) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        self.mem.chunk(from, MEM_CHUNK_ENTRIES, &mut buf);
        self.more_after = buf.len() == MEM_CHUNK_ENTRIES;
        self.more_before = true;
        self.valid = !buf.is_empty();
        self.buf = buf;
        self.idx = 0;
    }

    fn fill_backward(&mut self, before: Option<&[u8]>) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        self.mem.chunk_back(before, MEM_CHUNK_ENTRIES, &mut buf);
        buf.reverse();
        self.more_before = buf.len() == MEM_CHUNK_ENTRIES;
        self.more_after = true;
        self.valid = !buf.is_empty();
        self.idx = buf.len().saturating_sub(1);
        self.buf = buf;
    }

    /// Refills after (`forward`) or before entry `i`, whose key is copied first: the refill
    /// replaces the buffer it lies in.
    fn refill_from(&mut self, i: usize, forward: bool) {
        let mut edge = std::mem::take(&mut self.edge);
        edge.clear();
        edge.extend_from_slice(self.buf.key(i));
        if forward {
            self.fill_forward(Bound::Excluded(&edge));
        } else {
            self.fill_backward(Some(&edge));
        }
        self.edge = edge;
    }

    fn next(&mut self) {
        if self.idx + 1 < self.buf.len() {
            self.idx += 1;
        } else if self.more_after {
            self.refill_from(self.idx, true);
        } else {
            self.valid = false;
        }
    }

    fn prev(&mut self) {
        if self.idx > 0 {
            self.idx -= 1;
        } else if self.more_before {
            self.refill_from(0, false);
        } else {
            self.valid = false;
        }
    }
}

impl Source {
    /// Moves to the first entry `>= ikey` (the first entry if `None`).
    pub fn seek(&mut self, ikey: Option<&[u8]>) -> Result<()> {
        match self {
            Source::Mem(m) => {
                m.fill_forward(ikey.map_or(Bound::Unbounded, Bound::Included));
                Ok(())
            }
            Source::Table(t) => match ikey {
                Some(k) => t.seek(k),
                None => t.seek_to_first(),
            },
            Source::Level(l) => l.seek(ikey),
        }
    }

    /// Moves to the last entry.
    pub fn seek_to_last(&mut self) -> Result<()> {
        match self {
            Source::Mem(m) => {
                m.fill_backward(None);
                Ok(())
            }
            Source::Table(t) => t.seek_to_last(),
            Source::Level(l) => l.seek_to_last(),
        }
    }

    pub fn valid(&self) -> bool {
        match self {
            Source::Mem(m) => m.valid,
            Source::Table(t) => t.valid(),
            Source::Level(l) => l.valid(),
        }
    }

    pub fn key(&self) -> &[u8] {
        match self {
            Source::Mem(m) => m.buf.key(m.idx),
            Source::Table(t) => t.key(),
            Source::Level(l) => l.key(),
        }
    }

    pub fn value(&self) -> &[u8] {
        match self {
            Source::Mem(m) => m.buf.value(m.idx),
            Source::Table(t) => t.value(),
            Source::Level(l) => l.value(),
        }
    }

    /// Where the current entry lives: a table file and block offset, or the memtable (named by
    /// its WAL). For error messages.
    pub fn origin(&self) -> (PathBuf, u64) {
        match self {
            Source::Mem(m) => (
                PathBuf::from(format!("memtable of {}", wal_name(m.mem.wal_number()))),
                0,
            ),
            Source::Table(t) => t.origin(),
            Source::Level(l) => l.origin(),
        }
    }

    /// Moves to the next entry. Only on a valid source.
    pub fn advance(&mut self) -> Result<()> {
        match self {
            Source::Mem(m) => {
                m.next();
                Ok(())
            }
            Source::Table(t) => t.advance(),
            Source::Level(l) => l.advance(),
        }
    }

    /// Moves to the previous entry. Only on a valid source.
    pub fn prev(&mut self) -> Result<()> {
        match self {
            Source::Mem(m) => {
                m.prev();
                Ok(())
            }
            Source::Table(t) => t.prev(),
            Source::Level(l) => l.prev(),
        }
    }
}

/// Merges sources; on equal keys the source listed first wins (sources are listed newest first,
/// and internal keys are unique, so this only matters for malformed data).
///
/// Moving forward, every source other than the current one is positioned after the current
/// key; moving backward, before it. A change of direction repositions every other source
/// first: skipping that is the classic merging-iterator bug, which yields a key twice or skips
/// one.
pub(crate) struct MergingIter {
    sources: Vec<Source>,
    current: Option<usize>,
    /// The runner-up: the source that comes first among the others (`None` if no other is
    /// valid). Moving on from the current entry, only the current source changes, so when its
    /// next key still comes before the runner-up's it stays current after one comparison
    /// (long runs from one source, as in a scan over a mostly compacted database, cost no
    /// full pick).
    second: Option<usize>,
    forward: bool,
}

impl MergingIter {
    pub fn new(sources: Vec<Source>) -> MergingIter {
        MergingIter {
            sources,
            current: None,
            second: None,
            forward: true,
        }
    }

    /// True if source `i`'s key comes before source `j`'s in the direction of travel (on
    /// equal keys, the source listed first).
    fn before(&self, i: usize, j: usize) -> bool {
        let c = crate::key::compare(self.sources[i].key(), self.sources[j].key());
        let c = if self.forward { c } else { c.reverse() };
        c.is_lt() || (c.is_eq() && i < j)
    }

    /// Finds the current source and the runner-up among all of them.
    fn pick(&mut self) {
        let best = self.first_except(None);
        self.current = best;
        self.second = best.and_then(|b| self.first_except(Some(b)));
    }

    /// The valid source that comes first, leaving `skip` out.
    fn first_except(&self, skip: Option<usize>) -> Option<usize> {
        let mut best: Option<usize> = None;
        for i in 0..self.sources.len() {
            if Some(i) == skip || !self.sources[i].valid() {
                continue;
            }
            if best.is_none_or(|b| self.before(i, b)) {
                best = Some(i);
            }
        }
        best
    }

    /// After the current source `cur` moved one entry: a full pick if the others moved too
    /// (the direction `turned`), else [`MergingIter::repick`].
    fn repick_after(&mut self, cur: usize, turned: bool) {
        if turned {
            self.pick();
        } else {
            self.repick(cur);
        }
    }

    /// After the current source `cur` moved one entry on (and no other moved): it stays
    /// current if it still comes before the runner-up; otherwise the runner-up, which came
    /// first among the others, becomes current, and only a new runner-up is looked for.
    fn repick(&mut self, cur: usize) {
        let Some(s) = self.second else {
            // No other source is valid.
            if !self.sources[cur].valid() {
                self.current = None;
            }
            return;
        };
        // Planted: the current source stays current without a look at the runner-up.
        if self.sources[cur].valid()
            && (planted::active(Bug::MergeSkipsRunnerUp) || self.before(cur, s))
        {
            return;
        }
        self.current = Some(s);
        self.second = self.first_except(Some(s));
    }

    /// How often its sorted levels moved into their next table and into their previous one.
    pub fn level_steps(&self) -> [u64; 2] {
        let mut all = [0; 2];
        for s in &self.sources {
            if let Source::Level(l) = s {
                let [f, b] = l.steps();
                all[0] += f;
                all[1] += b;
            }
        }
        all
    }

    /// Moves to the first entry `>= ikey` (the first entry if `None`).
    pub fn seek(&mut self, ikey: Option<&[u8]>) -> Result<()> {
        for s in &mut self.sources {
            s.seek(ikey)?;
        }
        self.forward = true;
        self.pick();
        Ok(())
    }

    /// Moves to the last entry.
    pub fn seek_to_last(&mut self) -> Result<()> {
        for s in &mut self.sources {
            s.seek_to_last()?;
        }
        self.forward = false;
        self.pick();
        Ok(())
    }

    pub fn valid(&self) -> bool {
        self.current.is_some()
    }

    pub fn key(&self) -> &[u8] {
        self.current.map_or(&[][..], |i| self.sources[i].key())
    }

    pub fn value(&self) -> &[u8] {
        self.current.map_or(&[][..], |i| self.sources[i].value())
    }

    /// Where the current entry lives (see [`Source::origin`]).
    pub fn origin(&self) -> (PathBuf, u64) {
        self.current
            .map_or((PathBuf::new(), 0), |i| self.sources[i].origin())
    }

    /// Moves to the next entry.
    pub fn advance(&mut self) -> Result<()> {
        let Some(cur) = self.current else {
            return Ok(());
        };
        let turned = !self.forward;
        if turned {
            // Every other source is before the current key: put each after it.
            let key = self.sources[cur].key().to_vec();
            for (i, s) in self.sources.iter_mut().enumerate() {
                if i == cur {
                    continue;
                }
                s.seek(Some(&key))?;
                if s.valid() && crate::key::compare(s.key(), &key).is_eq() {
                    s.advance()?;
                }
            }
            self.forward = true;
        }
        self.sources[cur].advance()?;
        self.repick_after(cur, turned);
        Ok(())
    }

    /// Moves to the previous entry.
    pub fn prev(&mut self) -> Result<()> {
        let Some(cur) = self.current else {
            return Ok(());
        };
        let turned = self.forward;
        if turned {
            // Every other source is after the current key: put each before it.
            if !planted::active(Bug::ReverseWithoutRepositioning) {
                let key = self.sources[cur].key().to_vec();
                for (i, s) in self.sources.iter_mut().enumerate() {
                    if i == cur {
                        continue;
                    }
                    s.seek(Some(&key))?;
                    if s.valid() {
                        s.prev()?;
                    } else {
                        s.seek_to_last()?;
                    }
                }
            }
            self.forward = false;
        }
        self.sources[cur].prev()?;
        self.repick_after(cur, turned);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{self, Kind};
    use proptest::prelude::*;

    proptest! {
        /// The merge of several sorted sources equals one sorted list of all their entries, and
        /// the first entry of each user key is its newest version.
        #[test]
        fn merge_equals_a_sorted_merge_with_newest_first(
            entries in proptest::collection::vec((0u8..20, any::<bool>(), 0usize..4), 0..120),
        ) {
            let mems: Vec<Arc<Memtable>> = (0..4).map(|i| Arc::new(Memtable::new(i))).collect();
            let mut all = Vec::new();
            for (seq, (k, del, src)) in entries.iter().enumerate() {
                let seq = seq as u64 + 1;
                let kind = if *del { Kind::Delete } else { Kind::Put };
                let v = seq.to_le_bytes();
                mems[*src].insert(&[*k], seq, kind, &v);
                all.push(key::encode(&[*k], seq, kind));
            }
            all.sort_by(|a, b| key::compare(a, b));
            let mut m = MergingIter::new(mems.iter().map(|m| Source::Mem(MemSource::new(m.clone()))).collect());
            m.seek(None).unwrap();
            let mut got = Vec::new();
            while m.valid() {
                got.push(m.key().to_vec());
                m.advance().unwrap();
            }
            prop_assert_eq!(&got, &all);
            // Newest wins: the first entry of each user key has that key's largest sequence.
            let mut newest = std::collections::BTreeMap::new();
            for (seq, (k, _, _)) in entries.iter().enumerate() {
                newest.insert(*k, seq as u64 + 1);
            }
            let mut seen = std::collections::BTreeSet::new();
            for ik in &got {
                let p = key::parse(ik).unwrap();
                if seen.insert(p.user_key.to_vec()) {
                    prop_assert_eq!(Some(&p.seq), newest.get(&p.user_key[0]));
                }
            }
        }

        /// Moving both ways in any order (the runner-up kept across moves, rebuilt at each
        /// change of direction) visits the entries of one sorted list of all of them.
        #[test]
        fn moves_both_ways_follow_the_sorted_merge(
            entries in proptest::collection::vec((0u8..12, 0usize..4), 1..80),
            start in any::<prop::sample::Index>(),
            moves in proptest::collection::vec(any::<bool>(), 0..200),
        ) {
            let mems: Vec<Arc<Memtable>> = (0..4).map(|i| Arc::new(Memtable::new(i))).collect();
            let mut all = Vec::new();
            for (seq, (k, src)) in entries.iter().enumerate() {
                let seq = seq as u64 + 1;
                mems[*src].insert(&[*k], seq, Kind::Put, &seq.to_le_bytes());
                all.push(key::encode(&[*k], seq, Kind::Put));
            }
            all.sort_by(|a, b| key::compare(a, b));
            let mut m = MergingIter::new(mems.iter().map(|m| Source::Mem(MemSource::new(m.clone()))).collect());
            let mut at = start.index(all.len());
            m.seek(Some(&all[at])).unwrap();
            for forward in moves {
                prop_assert_eq!(m.key(), &all[at][..]);
                if forward {
                    m.advance().unwrap();
                    at += 1;
                } else if at == 0 {
                    m.prev().unwrap();
                    prop_assert!(!m.valid());
                    break;
                } else {
                    m.prev().unwrap();
                    at -= 1;
                }
                if at == all.len() {
                    prop_assert!(!m.valid());
                    break;
                }
            }
        }
    }
}
