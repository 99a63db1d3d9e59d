//! `Scan` and `RawScan`: iterators over a consistent snapshot of a key range.

use super::obsolete;
use super::shared::{Shared, SuperVersion};
use crate::error::{Error, Result};
use crate::iter::{MemSource, MergingIter, Source};
use crate::key::{self, Kind, SEQ_MAX};
use crate::sstable::TableIter;
use crate::sync::{Arc, Ordering};
use std::ops::{Bound, RangeBounds};

/// A key's newest visible version: key, kind, and the value or 8-byte deletion time.
type Newest = (Vec<u8>, Kind, Vec<u8>);

/// The newest version of each key in range, tombstones included.
struct Core {
    merge: MergingIter,
    seq: u64,
    end: Bound<Vec<u8>>,
    start: Bound<Vec<u8>>,
    started: bool,
    last_user_key: Vec<u8>,
    has_last: bool,
    done: bool,
    pending_error: Option<Error>,
    /// Keeps the memtables and tables of the snapshot alive; dropped before `shared` purges.
    sv: Option<Arc<SuperVersion>>,
    shared: Arc<Shared>,
}

fn owned(b: Bound<&impl AsRef<[u8]>>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Core {
    fn new<K: AsRef<[u8]>, R: RangeBounds<K>>(shared: &Arc<Shared>, range: R) -> Core {
        // The super version first, then the sequence (see `read::get`).
        let sv = shared.super_version();
        let seq = shared.visible_seq.load(Ordering::Acquire);
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
        let pending_error = shared.closed().then_some(Error::Closed);
        Core {
            merge: MergingIter::new(sources),
            seq,
            start: owned(range.start_bound()),
            end: owned(range.end_bound()),
            started: false,
            last_user_key: Vec::new(),
            has_last: false,
            done: false,
            pending_error,
            sv: Some(sv),
            shared: shared.clone(),
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

    /// The next key's newest visible version: (key, kind, value or deletion time).
    fn step(&mut self) -> Result<Option<Newest>> {
        if !self.started {
            self.start()?;
        }
        while self.merge.valid() {
            let ikey = self.merge.key();
            let p = key::parse(ikey).ok_or_else(|| {
                let (file, offset) = self.merge.origin();
                Error::corruption(file, offset, "malformed internal key")
            })?;
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
            let out = (p.user_key.to_vec(), p.kind, self.merge.value().to_vec());
            self.merge.advance()?;
            return Ok(Some(out));
        }
        Ok(None)
    }

    fn next_entry(&mut self) -> Option<Result<Newest>> {
        if self.done {
            return None;
        }
        if let Some(e) = self.pending_error.take() {
            self.done = true;
            return Some(Err(e));
        }
        match self.step() {
            Ok(Some(e)) => Some(Ok(e)),
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

impl Drop for Core {
    fn drop(&mut self) {
        // Release the snapshot, then remove the files of tables only it was holding.
        self.merge = MergingIter::new(Vec::new());
        self.sv = None;
        obsolete::purge(&self.shared);
    }
}

/// Iterator over live `(key, value)` pairs in ascending key order. Yields `Err` once and then
/// ends if reading fails (an I/O error or corruption).
pub struct Scan {
    core: Core,
}

impl Scan {
    pub(crate) fn new<K: AsRef<[u8]>, R: RangeBounds<K>>(shared: &Arc<Shared>, range: R) -> Scan {
        Scan {
            core: Core::new(shared, range),
        }
    }
}

impl Iterator for Scan {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.core.next_entry()? {
                Ok((k, Kind::Put, v)) => return Some(Ok((k, v))),
                Ok((_, Kind::Delete, _)) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// What the raw view holds for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawValue {
    /// The key's value.
    Put(Vec<u8>),
    /// The key was deleted at this wall-clock time (milliseconds since the Unix epoch).
    Tombstone { deleted_at_ms: u64 },
}

/// One entry of the raw view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub key: Vec<u8>,
    pub value: RawValue,
}

/// Iterator over the raw view: the newest version of each key in range, tombstones included.
pub struct RawScan {
    core: Core,
}

impl RawScan {
    pub(crate) fn new<K: AsRef<[u8]>, R: RangeBounds<K>>(
        shared: &Arc<Shared>,
        range: R,
    ) -> RawScan {
        RawScan {
            core: Core::new(shared, range),
        }
    }
}

impl Iterator for RawScan {
    type Item = Result<RawEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.core.next_entry()?.map(|(key, kind, v)| {
            let value = match kind {
                Kind::Put => RawValue::Put(v),
                // Entries from disk were checked when read, memtable entries when written: a
                // tombstone's value is always its 8-byte time here.
                Kind::Delete => RawValue::Tombstone {
                    deleted_at_ms: key::deletion_time(&v).unwrap_or_default(),
                },
            };
            RawEntry { key, value }
        }))
    }
}
