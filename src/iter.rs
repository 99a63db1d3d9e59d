//! The merging iterator behind `scan`: one ordered stream over the memtables and tables,
//! newest version first for each key.

use crate::error::Result;
use crate::filename::wal_name;
use crate::memtable::{Memtable, OwnedEntry};
use crate::sstable::TableIter;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;

/// Entries fetched from a memtable at a time.
const MEM_CHUNK_ENTRIES: usize = 64;

/// An ordered stream of (encoded internal key, value).
pub(crate) enum Source {
    Mem(MemSource),
    Table(Box<TableIter>),
}

pub(crate) struct MemSource {
    mem: Arc<Memtable>,
    buf: Vec<OwnedEntry>,
    idx: usize,
    exhausted: bool,
}

impl MemSource {
    pub fn new(mem: Arc<Memtable>) -> MemSource {
        MemSource {
            mem,
            buf: Vec::new(),
            idx: 0,
            exhausted: true,
        }
    }

    fn fill(&mut self, from: Bound<&[u8]>) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        self.mem.chunk(from, MEM_CHUNK_ENTRIES, &mut buf);
        self.exhausted = buf.len() < MEM_CHUNK_ENTRIES;
        self.buf = buf;
        self.idx = 0;
    }
}

impl Source {
    pub fn seek(&mut self, ikey: Option<&[u8]>) -> Result<()> {
        match self {
            Source::Mem(m) => {
                m.fill(ikey.map_or(Bound::Unbounded, Bound::Included));
                Ok(())
            }
            Source::Table(t) => match ikey {
                Some(k) => t.seek(k),
                None => t.seek_to_first(),
            },
        }
    }

    pub fn valid(&self) -> bool {
        match self {
            Source::Mem(m) => m.idx < m.buf.len(),
            Source::Table(t) => t.valid(),
        }
    }

    pub fn key(&self) -> &[u8] {
        match self {
            Source::Mem(m) => &m.buf[m.idx].0,
            Source::Table(t) => t.key(),
        }
    }

    pub fn value(&self) -> &[u8] {
        match self {
            Source::Mem(m) => &m.buf[m.idx].1,
            Source::Table(t) => t.value(),
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
        }
    }

    pub fn advance(&mut self) -> Result<()> {
        match self {
            Source::Mem(m) => {
                m.idx += 1;
                if m.idx >= m.buf.len() && !m.exhausted {
                    let last = m.buf.last().map(|e| e.0.clone()).unwrap_or_default();
                    m.fill(Bound::Excluded(&last));
                }
                Ok(())
            }
            Source::Table(t) => t.advance(),
        }
    }
}

/// Merges sources; on equal keys the source listed first wins (sources are listed newest first,
/// and internal keys are unique, so this only matters for malformed data).
pub(crate) struct MergingIter {
    sources: Vec<Source>,
    current: Option<usize>,
}

impl MergingIter {
    pub fn new(sources: Vec<Source>) -> MergingIter {
        MergingIter {
            sources,
            current: None,
        }
    }

    fn pick(&mut self) {
        let mut best: Option<usize> = None;
        for (i, s) in self.sources.iter().enumerate() {
            if !s.valid() {
                continue;
            }
            best = match best {
                Some(b) if crate::key::compare(self.sources[b].key(), s.key()).is_le() => Some(b),
                _ => Some(i),
            };
        }
        self.current = best;
    }

    pub fn seek(&mut self, ikey: Option<&[u8]>) -> Result<()> {
        for s in &mut self.sources {
            s.seek(ikey)?;
        }
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

    pub fn advance(&mut self) -> Result<()> {
        if let Some(i) = self.current {
            self.sources[i].advance()?;
            self.pick();
        }
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
    }
}
