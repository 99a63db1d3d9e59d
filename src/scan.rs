//! `Scan`: the iterator returned by `Db::scan`, a consistent snapshot of a key range.

use crate::db::{Inner, SuperVersion};
use crate::error::{Error, Result};
use crate::iter::{MemSource, MergingIter, Source};
use crate::key::{self, Kind, SEQ_MAX};
use crate::sstable::TableIter;
use crate::sync::{Arc, Ordering};
use std::ops::{Bound, RangeBounds};

/// Iterator over live `(key, value)` pairs in ascending key order. Yields `Err` once and then
/// ends if reading fails (an I/O error or corruption).
pub struct Scan {
    merge: MergingIter,
    seq: u64,
    end: Bound<Vec<u8>>,
    start: Bound<Vec<u8>>,
    started: bool,
    last_user_key: Vec<u8>,
    has_last: bool,
    done: bool,
    pending_error: Option<Error>,
    /// Keeps the memtables and tables of the snapshot alive.
    _sv: Arc<SuperVersion>,
}

fn owned(b: Bound<&impl AsRef<[u8]>>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Scan {
    pub(crate) fn new<K: AsRef<[u8]>, R: RangeBounds<K>>(inner: &Inner, range: R) -> Scan {
        let seq = inner.visible_seq.load(Ordering::Acquire);
        let sv = inner.super_version();
        let mut sources = vec![Source::Mem(MemSource::new(sv.mem.clone()))];
        sources.extend(
            sv.imms
                .iter()
                .map(|m| Source::Mem(MemSource::new(m.clone()))),
        );
        sources.extend(
            sv.version
                .tables()
                .map(|t| Source::Table(Box::new(TableIter::new(t.clone())))),
        );
        let pending_error = if inner.closed() {
            Some(Error::Closed)
        } else {
            None
        };
        Scan {
            merge: MergingIter::new(sources),
            seq,
            start: owned(range.start_bound()),
            end: owned(range.end_bound()),
            started: false,
            last_user_key: Vec::new(),
            has_last: false,
            done: false,
            pending_error,
            _sv: sv,
        }
    }

    fn start(&mut self) -> Result<()> {
        self.started = true;
        match &self.start {
            Bound::Included(k) | Bound::Excluded(k) => {
                let target = key::encode(k, SEQ_MAX, Kind::Put);
                self.merge.seek(Some(&target))?;
                if let Bound::Excluded(k) = &self.start {
                    self.last_user_key = k.clone();
                    self.has_last = true;
                }
                Ok(())
            }
            Bound::Unbounded => self.merge.seek(None),
        }
    }

    fn past_end(&self, user_key: &[u8]) -> bool {
        match &self.end {
            Bound::Included(e) => user_key > &e[..],
            Bound::Excluded(e) => user_key >= &e[..],
            Bound::Unbounded => false,
        }
    }

    fn step(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        if !self.started {
            self.start()?;
        }
        while self.merge.valid() {
            let ikey = self.merge.key();
            let p = key::parse(ikey)
                .ok_or_else(|| Error::corruption("<scan>", 0, "malformed internal key"))?;
            let skip = p.seq > self.seq || (self.has_last && p.user_key == &self.last_user_key[..]);
            if skip {
                self.merge.advance()?;
                continue;
            }
            if self.past_end(p.user_key) {
                return Ok(None);
            }
            self.last_user_key.clear();
            self.last_user_key.extend_from_slice(p.user_key);
            self.has_last = true;
            let out = match p.kind {
                Kind::Put => Some((p.user_key.to_vec(), self.merge.value().to_vec())),
                Kind::Delete => None,
            };
            self.merge.advance()?;
            if out.is_some() {
                return Ok(out);
            }
        }
        Ok(None)
    }
}

impl Iterator for Scan {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(e) = self.pending_error.take() {
            self.done = true;
            return Some(Err(e));
        }
        match self.step() {
            Ok(Some(kv)) => Some(Ok(kv)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
