//! `Cursor`: a movable position over one consistent view (a super version read at one sequence
//! number), in either direction, within optional bounds. `Scan` and `RawScan` are built on it.
//!
//! The internal merging iterator yields every version of every key, newest first per key. The
//! cursor turns that into user entries: moving forward, the first version of a key at or below
//! the read sequence is its newest visible one; moving backward, versions of a key come oldest
//! first, so the cursor keeps the last visible one it passed before the key changes (LevelDB's
//! `DBIter`). A key is live if that version is a value no newer range tombstone covers.
//!
//! Changing direction re-seeks the merging iterator to the current key, so it never depends
//! on where the sources were left.

use super::obsolete;
use super::shared::{Shared, SuperVersion};
use crate::error::{Error, Result};
use crate::iter::{LevelIter, MemSource, MergingIter, Source};
use crate::key::{self, Kind};
use crate::rangedel::Fragments;
use crate::sstable::TableIter;
use crate::stats::Counters;
use crate::sync::{Arc, Ordering};
use crate::version::user_range;
use std::ops::{Bound, RangeBounds};

/// Bounds of a cursor, owned.
pub(crate) type Bounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Owns the bounds of any range of byte strings.
pub(crate) fn owned_bounds<K: AsRef<[u8]>, R: RangeBounds<K>>(range: &R) -> Bounds {
    let own = |b: Bound<&K>| match b {
        Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    };
    (own(range.start_bound()), own(range.end_bound()))
}

/// The smallest key after every key starting with `prefix` (`None` if there is none: the
/// prefix is all 0xff bytes, or empty).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The smallest key after `k` (`k` followed by a zero byte): turns an excluded lower bound or
/// an included upper bound into the other kind.
pub(crate) fn key_after(k: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(k.len() + 1);
    v.extend_from_slice(k);
    v.push(0);
    v
}

/// The bounds of every key starting with `prefix`.
pub(crate) fn prefix_bounds(prefix: &[u8]) -> Bounds {
    (
        Bound::Included(prefix.to_vec()),
        prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded),
    )
}

/// What a cursor reads: the super version it pins, the sequence it reads at, and the range
/// tombstones of every source, fragmented together.
#[derive(Clone)]
pub(crate) struct View {
    pub sv: Arc<SuperVersion>,
    pub seq: u64,
    pub ranges: Arc<Fragments>,
    pub bounds: Arc<Bounds>,
    /// Whether the blocks read are added to the block cache.
    pub fill_cache: bool,
}

impl View {
    /// The current super version, read at `snapshot` or the newest visible sequence. The range
    /// tombstones gathered are those of sources that meet the bounds.
    pub fn new(shared: &Shared, snapshot: Option<u64>, bounds: Bounds) -> View {
        // The super version first, then the sequence (see `read::get`).
        let sv = shared.super_version();
        let seq = snapshot.unwrap_or_else(|| shared.visible_seq.load(Ordering::Acquire));
        let mut sets: Vec<Arc<Fragments>> = std::iter::once(&sv.mem)
            .chain(sv.imms.iter())
            .filter_map(|m| m.range_fragments())
            .collect();
        let meets = |lo: &[u8], hi: &[u8]| {
            let above = match &bounds.0 {
                Bound::Included(b) | Bound::Excluded(b) => hi >= &b[..],
                Bound::Unbounded => true,
            };
            let below = match &bounds.1 {
                Bound::Included(b) | Bound::Excluded(b) => lo <= &b[..],
                Bound::Unbounded => true,
            };
            above && below
        };
        let mut tables = Vec::new();
        for t in sv.version.tables() {
            let (lo, hi) = user_range(t);
            if !t.range_dels().is_empty() && meets(lo, hi) {
                tables.push(t.clone());
            }
        }
        let ranges = if sets.is_empty() && tables.is_empty() {
            Arc::new(Fragments::default())
        } else if sets.len() == 1 && tables.is_empty() {
            sets.pop().unwrap_or_default()
        } else {
            let all = sets
                .iter()
                .map(|s| &**s)
                .chain(tables.iter().map(|t| t.range_dels()));
            Arc::new(Fragments::merge(all))
        };
        View {
            sv,
            seq,
            ranges,
            bounds: Arc::new(bounds),
            fill_cache: true,
        }
    }

    fn merging_iter(&self) -> MergingIter {
        let sv = &self.sv;
        let mut sources = vec![Source::Mem(MemSource::new(sv.mem.clone()))];
        sources.extend(
            sv.imms
                .iter()
                .map(|m| Source::Mem(MemSource::new(m.clone()))),
        );
        // Level 0's tables may overlap: each is a source. A deeper level's do not: the level
        // is one source, which opens one table at a time.
        let fill = self.fill_cache;
        sources.extend(
            sv.version.levels[0]
                .iter()
                .map(|t| Source::Table(Box::new(TableIter::with_fill(t.clone(), fill)))),
        );
        sources.extend(
            sv.version.levels[1..]
                .iter()
                .filter(|l| !l.is_empty())
                .map(|l| Source::Level(Box::new(LevelIter::new(l.clone(), fill)))),
        );
        MergingIter::new(sources)
    }

    /// True if a range tombstone visible at the view's sequence and newer than `seq` covers
    /// `user_key`.
    pub fn covered(&self, user_key: &[u8], seq: u64) -> bool {
        !self.ranges.is_empty() && self.ranges.max_seq_at(user_key, self.seq) > seq
    }

    fn below_lower(&self, k: &[u8]) -> bool {
        match &self.bounds.0 {
            Bound::Included(b) => k < &b[..],
            Bound::Excluded(b) => k <= &b[..],
            Bound::Unbounded => false,
        }
    }

    fn above_upper(&self, k: &[u8]) -> bool {
        match &self.bounds.1 {
            Bound::Included(b) => k > &b[..],
            Bound::Excluded(b) => k >= &b[..],
            Bound::Unbounded => false,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Reverse,
}

/// A cursor over the live entries of a consistent view, within optional bounds (from
/// [`crate::Db::cursor`] or [`crate::Snapshot::cursor`]).
///
/// It starts unpositioned: call a `seek` first. After any move, [`Cursor::valid`] says whether
/// it is on an entry; when it is not, [`Cursor::status`] says whether it ran off the end
/// (`Ok`) or reading failed (the error, with the file and offset). An error ends the walk:
/// the cursor stays invalid until the next seek.
///
/// ```
/// use sedimentdb::{Db, Options};
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Db::open(dir.path().join("db"), Options::default())?;
/// for k in ["a", "b", "c", "d"] {
///     db.put(k, k.to_uppercase())?;
/// }
/// let mut c = db.cursor(&b"b"[..]..);
/// c.seek_to_last();
/// assert_eq!(c.key(), b"d");
/// c.prev();
/// assert_eq!((c.key(), c.value()), (&b"c"[..], &b"C"[..]));
/// c.seek_for_prev(b"a"); // before the lower bound
/// assert!(!c.valid());
/// c.status()?;
/// c.seek(b"bb");
/// assert_eq!(c.key(), b"c");
/// c.next();
/// c.next();
/// assert!(!c.valid());
/// # Ok::<(), sedimentdb::Error>(())
/// ```
pub struct Cursor {
    view: View,
    merge: MergingIter,
    dir: Direction,
    valid: bool,
    key: Vec<u8>,
    /// The current value when moving backward (the merging iterator has moved past it).
    /// Moving forward the merging iterator stays on the entry, and the value is read there,
    /// with no copy.
    value: Vec<u8>,
    kind: Kind,
    status: Option<Error>,
    /// Yield point tombstones too (the raw view), forward only.
    raw: bool,
    /// Last: purges after the view is released.
    purge: PurgeOnDrop,
}

impl Cursor {
    pub(crate) fn new(shared: &Arc<Shared>, view: View) -> Cursor {
        let status = shared.closed().then_some(Error::Closed);
        Cursor {
            merge: view.merging_iter(),
            view,
            dir: Direction::Forward,
            valid: false,
            key: Vec::new(),
            value: Vec::new(),
            kind: Kind::Put,
            status,
            raw: false,
            purge: PurgeOnDrop(shared.clone()),
        }
    }

    /// A cursor over the same view (for the other end of a double-ended scan).
    pub(crate) fn fork(&self) -> Cursor {
        let mut c = Cursor::new(&self.purge.0, self.view.clone());
        c.raw = self.raw;
        c
    }

    pub(crate) fn set_raw(&mut self) {
        self.raw = true;
    }

    pub(crate) fn view(&self) -> &View {
        &self.view
    }

    /// True while the cursor is on an entry.
    pub fn valid(&self) -> bool {
        self.valid
    }

    /// The current key (empty when not [`Cursor::valid`]).
    pub fn key(&self) -> &[u8] {
        if self.valid {
            &self.key
        } else {
            &[]
        }
    }

    /// The current value (empty when not [`Cursor::valid`]).
    pub fn value(&self) -> &[u8] {
        match (self.valid, self.dir) {
            (false, _) => &[],
            (true, Direction::Forward) => self.merge.value(),
            (true, Direction::Reverse) => &self.value,
        }
    }

    /// The kind of the current entry: `Put`, or `Delete` in the raw view.
    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// `Ok` unless reading failed (then the error, with the file and offset) or the database
    /// was closed before the cursor was made.
    pub fn status(&self) -> Result<()> {
        match &self.status {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Runs a move; an error makes the cursor invalid and is kept for [`Cursor::status`].
    fn run(&mut self, f: impl FnOnce(&mut Cursor) -> Result<()>) {
        if matches!(self.status, Some(Error::Closed)) {
            self.valid = false;
            return;
        }
        self.status = None;
        if let Err(e) = f(self) {
            self.valid = false;
            self.status = Some(e);
        }
    }

    /// Moves to the first key `>= target` (and within the bounds).
    pub fn seek(&mut self, target: impl AsRef<[u8]>) {
        let target = target.as_ref().to_vec();
        self.run(|c| {
            let t = match &c.view.bounds.0 {
                Bound::Included(b) if b > &target => b.clone(),
                Bound::Excluded(b) if b >= &target => key_after(b),
                _ => target,
            };
            c.merge.seek(Some(&key::range_sentinel(&t)))?;
            c.dir = Direction::Forward;
            c.find_next(false)
        });
    }

    /// Moves to the first key within the bounds.
    pub fn seek_to_first(&mut self) {
        match self.view.bounds.0.clone() {
            Bound::Included(b) => self.seek(b),
            Bound::Excluded(b) => self.seek(key_after(&b)),
            Bound::Unbounded => self.run(|c| {
                c.merge.seek(None)?;
                c.dir = Direction::Forward;
                c.find_next(false)
            }),
        }
    }

    /// Moves to the last key within the bounds.
    pub fn seek_to_last(&mut self) {
        let upper = self.view.bounds.1.clone();
        self.run(|c| {
            c.position_before(upper)?;
            c.find_prev()
        });
    }

    /// Moves to the last key `<= target` (and within the bounds).
    pub fn seek_for_prev(&mut self, target: impl AsRef<[u8]>) {
        let target = target.as_ref().to_vec();
        let limit = match &self.view.bounds.1 {
            Bound::Excluded(u) if &target >= u => Bound::Excluded(u.clone()),
            Bound::Included(u) if &target > u => Bound::Included(u.clone()),
            _ => Bound::Included(target),
        };
        self.run(|c| {
            c.position_before(limit)?;
            c.find_prev()
        });
    }

    /// Moves to the next key. On an invalid cursor, does nothing.
    pub fn next(&mut self) {
        if !self.valid {
            return;
        }
        self.run(|c| {
            if c.dir == Direction::Reverse {
                c.merge.seek(Some(&key::range_sentinel(&c.key)))?;
                c.dir = Direction::Forward;
            }
            c.find_next(true)
        });
    }

    /// Moves to the previous key. On an invalid cursor, does nothing.
    pub fn prev(&mut self) {
        if !self.valid {
            return;
        }
        self.run(|c| {
            if c.dir == Direction::Forward {
                let cur = c.key.clone();
                c.position_before(Bound::Excluded(cur))?;
            }
            c.find_prev()
        });
    }

    /// The current value, moved out (the cursor keeps its key): for iterators that hand the
    /// entry over and move on.
    pub(crate) fn take_value(&mut self) -> Vec<u8> {
        if self.valid && self.dir == Direction::Forward {
            self.merge.value().to_vec()
        } else {
            std::mem::take(&mut self.value)
        }
    }

    /// Puts the merging iterator on the last entry whose user key is below `limit`, moving
    /// backward.
    fn position_before(&mut self, limit: Bound<Vec<u8>>) -> Result<()> {
        self.dir = Direction::Reverse;
        let exclusive = match limit {
            Bound::Unbounded => return self.merge.seek_to_last(),
            Bound::Excluded(u) => u,
            Bound::Included(u) => key_after(&u),
        };
        self.merge.seek(Some(&key::range_sentinel(&exclusive)))?;
        if self.merge.valid() {
            self.merge.prev()
        } else {
            self.merge.seek_to_last()
        }
    }

    fn malformed(&self) -> Error {
        let (file, offset) = self.merge.origin();
        Error::corruption(file, offset, "malformed internal key")
    }

    /// True if the newest visible version of a key, of `kind` at `seq`, is shown.
    fn shows(&self, user_key: &[u8], kind: Kind, seq: u64) -> bool {
        let shown = kind == Kind::Put || (self.raw && kind == Kind::Delete);
        shown && !self.view.covered(user_key, seq)
    }

    /// Forward from the merging iterator's position (skipping every version of the key in
    /// `self.key` if `skip`) to the next shown key; leaves the merging iterator on it.
    fn find_next(&mut self, mut skip: bool) -> Result<()> {
        self.valid = false;
        while self.merge.valid() {
            let p = key::parse(self.merge.key()).ok_or_else(|| self.malformed())?;
            if self.view.above_upper(p.user_key) {
                return Ok(());
            }
            if p.seq > self.view.seq || (skip && p.user_key == &self.key[..]) {
                self.merge.advance()?;
                continue;
            }
            self.key.clear();
            self.key.extend_from_slice(p.user_key);
            if self.shows(p.user_key, p.kind, p.seq) {
                self.kind = p.kind;
                self.valid = true;
                return Ok(());
            }
            // Deleted: every older version of the key is hidden too.
            skip = true;
            self.merge.advance()?;
        }
        Ok(())
    }

    /// Backward from the merging iterator's position to the previous shown key; leaves the
    /// merging iterator before all of its versions.
    fn find_prev(&mut self) -> Result<()> {
        self.valid = false;
        // The newest visible version passed so far of the key being read (in `self.key`):
        // its kind and sequence number.
        let mut saved: Option<(Kind, u64)> = None;
        while self.merge.valid() {
            let p = key::parse(self.merge.key()).ok_or_else(|| self.malformed())?;
            if self.view.below_lower(p.user_key) {
                break;
            }
            if let Some((kind, seq)) = saved {
                if p.user_key != &self.key[..] {
                    if self.shows(&self.key, kind, seq) {
                        self.kind = kind;
                        self.valid = true;
                        return Ok(());
                    }
                    saved = None;
                }
            }
            if p.seq <= self.view.seq {
                self.key.clear();
                self.key.extend_from_slice(p.user_key);
                self.value.clear();
                self.value.extend_from_slice(self.merge.value());
                saved = Some((p.kind, p.seq));
            }
            self.merge.prev()?;
        }
        if let Some((kind, seq)) = saved {
            if self.shows(&self.key, kind, seq) {
                self.kind = kind;
                self.valid = true;
            }
        }
        Ok(())
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        let [forward, backward] = self.merge.level_steps();
        let c = &self.purge.0.counters;
        Counters::add(&c.level_table_steps[0], forward);
        Counters::add(&c.level_table_steps[1], backward);
    }
}

/// Removes the files of tables only a finished reader was holding. Declared as a reader's last
/// field, it runs after the reader's view is dropped.
pub(crate) struct PurgeOnDrop(pub Arc<Shared>);

impl Drop for PurgeOnDrop {
    fn drop(&mut self) {
        obsolete::purge(&self.0);
    }
}
