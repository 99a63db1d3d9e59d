//! `Scan` and `RawScan`: iterators over a consistent view of a key range, built on
//! [`Cursor`].

use super::cursor::{key_after, Cursor, View};
use crate::error::Result;
use crate::key::{self, Kind};
use crate::rangedel::Fragments;
use std::ops::Bound;

/// Iterator over live `(key, value)` pairs in ascending key order, or descending from the back
/// (`scan.rev()`), over one consistent view taken when it was made. Both ends may be used: they
/// meet without yielding a key twice. Yields `Err` once and then ends if reading fails (an I/O
/// error or corruption).
///
/// ```
/// use sedimentdb::{Db, Options};
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Db::open(dir.path().join("db"), Options::default())?;
/// for k in ["a1", "a2", "b1"] {
///     db.put(k, "v")?;
/// }
/// let desc: Vec<_> = db.iter().rev().map(|e| e.map(|(k, _)| k)).collect::<Result<_, _>>()?;
/// assert_eq!(desc, vec![b"b1".to_vec(), b"a2".to_vec(), b"a1".to_vec()]);
/// let a: Vec<_> = db.prefix(b"a").map(|e| e.map(|(k, _)| k)).collect::<Result<_, _>>()?;
/// assert_eq!(a, vec![b"a1".to_vec(), b"a2".to_vec()]);
/// # Ok::<(), sedimentdb::Error>(())
/// ```
pub struct Scan {
    front: Cursor,
    back: Option<Cursor>,
    front_started: bool,
    back_started: bool,
    /// Each cursor stays on the last key its end yielded: the ends stop where they meet.
    done: bool,
}

impl Scan {
    pub(crate) fn new(cursor: Cursor) -> Scan {
        Scan {
            front: cursor,
            back: None,
            front_started: false,
            back_started: false,
            done: false,
        }
    }

    /// Ends the scan after `c`'s status: an error once, or the end.
    fn finish(done: &mut bool, c: &Cursor) -> Option<Result<(Vec<u8>, Vec<u8>)>> {
        *done = true;
        c.status().err().map(Err)
    }
}

impl Iterator for Scan {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.front_started {
            self.front.next();
        } else {
            self.front_started = true;
            self.front.seek_to_first();
        }
        if !self.front.valid() {
            return Scan::finish(&mut self.done, &self.front);
        }
        if let Some(back) = self.back.as_ref().filter(|b| b.valid()) {
            if self.front.key() >= back.key() {
                self.done = true;
                return None;
            }
        }
        let k = self.front.key().to_vec();
        Some(Ok((k, self.front.take_value())))
    }
}

impl DoubleEndedIterator for Scan {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let back = self.back.get_or_insert_with(|| self.front.fork());
        if self.back_started {
            back.prev();
        } else {
            self.back_started = true;
            back.seek_to_last();
        }
        if !back.valid() {
            return Scan::finish(&mut self.done, back);
        }
        if self.front_started && self.front.valid() && back.key() <= self.front.key() {
            self.done = true;
            return None;
        }
        let k = back.key().to_vec();
        Some(Ok((k, back.take_value())))
    }
}

/// What the raw view holds for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawValue {
    /// The key's value.
    Put(Vec<u8>),
    /// The key was deleted at this wall-clock time (milliseconds since the Unix epoch).
    Tombstone { deleted_at_ms: u64 },
    /// Every key from this entry's key up to `end` (excluded) was deleted at this time by a
    /// range delete. Shown where it is the newest range tombstone, cut into pieces where a
    /// newer range tombstone covers part of it. (Keys written after it in that range are
    /// shown as entries of their own.)
    RangeTombstone { end: Vec<u8>, deleted_at_ms: u64 },
}

/// One entry of the raw view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub key: Vec<u8>,
    pub value: RawValue,
}

/// Iterator over the raw view: the newest version of each key in range, tombstones included,
/// and the live range tombstones (as [`RawValue::RangeTombstone`]) in order of their start.
/// A version a newer range tombstone covers is not shown.
pub struct RawScan {
    cursor: Cursor,
    started: bool,
    /// The range tombstones to show, in order, and the next one.
    ranges: Vec<RawEntry>,
    next_range: usize,
    done: bool,
}

impl RawScan {
    pub(crate) fn new(mut cursor: Cursor) -> RawScan {
        cursor.set_raw();
        let ranges = raw_ranges(cursor.view());
        RawScan {
            cursor,
            started: false,
            ranges,
            next_range: 0,
            done: false,
        }
    }
}

/// The view's range tombstones within its bounds, each piece with its newest visible cover,
/// adjacent pieces of the same tombstone joined.
fn raw_ranges(view: &View) -> Vec<RawEntry> {
    let (lo, hi) = &*view.bounds;
    let lo = match lo {
        Bound::Included(b) => Some(b.clone()),
        Bound::Excluded(b) => Some(key_after(b)),
        Bound::Unbounded => None,
    };
    let hi = match hi {
        Bound::Included(b) => Some(key_after(b)),
        Bound::Excluded(b) => Some(b.clone()),
        Bound::Unbounded => None,
    };
    let clipped: Fragments = view.ranges.clip(lo.as_deref(), hi.as_deref());
    let mut out: Vec<(Vec<u8>, Vec<u8>, u64, u64)> = Vec::new();
    for f in clipped.fragments() {
        let Some(c) = f.visible(view.seq) else {
            continue;
        };
        match out.last_mut() {
            Some(last) if last.1 == f.start && last.2 == c.seq => last.1 = f.end.clone(),
            _ => out.push((f.start.clone(), f.end.clone(), c.seq, c.time_ms)),
        }
    }
    out.into_iter()
        .map(|(start, end, _, deleted_at_ms)| RawEntry {
            key: start,
            value: RawValue::RangeTombstone { end, deleted_at_ms },
        })
        .collect()
}

impl Iterator for RawScan {
    type Item = Result<RawEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if !self.started {
            self.started = true;
            self.cursor.seek_to_first();
        }
        if !self.cursor.valid() {
            if let Err(e) = self.cursor.status() {
                self.done = true;
                return Some(Err(e));
            }
        }
        // A range tombstone comes before the points at or after its start.
        if let Some(r) = self.ranges.get(self.next_range) {
            if !self.cursor.valid() || r.key[..] <= *self.cursor.key() {
                self.next_range += 1;
                return Some(Ok(r.clone()));
            }
        }
        if !self.cursor.valid() {
            self.done = true;
            return None;
        }
        let key = self.cursor.key().to_vec();
        let value = match self.cursor.kind() {
            // Entries from disk were checked when read, memtable entries when written: a
            // tombstone's value is always its 8-byte time here.
            Kind::Delete | Kind::RangeDelete => RawValue::Tombstone {
                deleted_at_ms: key::deletion_time(self.cursor.value()).unwrap_or_default(),
            },
            Kind::Put => RawValue::Put(self.cursor.value().to_vec()),
        };
        self.cursor.next();
        Some(Ok(RawEntry { key, value }))
    }
}
