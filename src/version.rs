//! The immutable set of live tables, by level, and the rules of their order.
//!
//! A reader holds an `Arc<Version>` for as long as it reads, which keeps every table it names
//! open (and its file on disk: see `db/obsolete.rs`). `Version` is generic over what it holds so
//! the pure policies over it (compaction picking, the tombstone rule's "deeper level" check)
//! can be tested on bare [`TableMeta`]s (`tests/testdata/`).

use crate::key;
use crate::sstable::{Table, TableMeta};
use std::sync::Arc;

/// Number of levels: level 0 (overlapping tables, newest first) and six sorted levels below it.
pub const NUM_LEVELS: usize = 7;

/// Anything that describes a table: the engine's open tables, or bare metadata in tests.
pub trait TableInfo: Clone {
    fn meta(&self) -> &TableMeta;
}

impl TableInfo for Arc<Table> {
    fn meta(&self) -> &TableMeta {
        Table::meta(self)
    }
}

impl TableInfo for TableMeta {
    fn meta(&self) -> &TableMeta {
        self
    }
}

/// The user-key range of a table: smallest and largest user keys. The largest is excluded when
/// the table's largest key is a range sentinel (its range tombstones end just before it; see
/// [`hi_excluded`]); treating it as included over-approximates, which is safe for picking work
/// but not for the disjointness of a level.
pub fn user_range<T: TableInfo>(t: &T) -> (&[u8], &[u8]) {
    let m = t.meta();
    (key::user_key(&m.smallest), key::user_key(&m.largest))
}

/// True if the table's largest user key is not in its range (a range tombstone's exclusive end).
pub fn hi_excluded<T: TableInfo>(t: &T) -> bool {
    key::is_range_sentinel(&t.meta().largest)
}

/// True if `user_key` lies in the table's range.
pub fn holds_key<T: TableInfo>(t: &T, user_key: &[u8]) -> bool {
    let (lo, hi) = user_range(t);
    lo <= user_key && (user_key < hi || (user_key == hi && !hi_excluded(t)))
}

/// True if every key of `a`'s range sorts before every key of `b`'s.
pub fn entirely_before<T: TableInfo>(a: &T, b: &T) -> bool {
    let (ahi, blo) = (user_range(a).1, user_range(b).0);
    ahi < blo || (ahi == blo && hi_excluded(a))
}

/// Puts a level's tables in the level's order: level 0 newest (highest number) first, because
/// its tables may overlap and the newest must win; deeper levels by smallest key, because they
/// do not overlap and lookups binary-search them.
pub fn sort_level<T: TableInfo>(level: usize, tables: &mut [T]) {
    if level == 0 {
        tables.sort_by_key(|t| std::cmp::Reverse(t.meta().number));
    } else {
        tables.sort_by(|a, b| key::compare(&a.meta().smallest, &b.meta().smallest));
    }
}

/// Live tables by level, each level in the order [`sort_level`] gives.
#[derive(Clone)]
pub struct Version<T = Arc<Table>> {
    pub levels: [Vec<T>; NUM_LEVELS],
}

impl<T> Default for Version<T> {
    fn default() -> Self {
        Version {
            levels: std::array::from_fn(|_| Vec::new()),
        }
    }
}

impl<T: TableInfo> Version<T> {
    /// A version holding `tables` (level, table), each level sorted.
    pub fn from_tables(tables: impl IntoIterator<Item = (usize, T)>) -> Version<T> {
        let mut v = Version::default();
        for (level, t) in tables {
            v.levels[level].push(t);
        }
        for (level, l) in v.levels.iter_mut().enumerate() {
            sort_level(level, l);
        }
        v
    }

    /// A version with `table` added as the newest table of level 0.
    pub fn with_l0(&self, table: T) -> Version<T> {
        self.apply(&[], 0, vec![table])
    }

    /// A version with `removed` (by table number) taken out and `added` put in at `level`.
    pub fn apply(&self, removed: &[u64], level: usize, added: Vec<T>) -> Version<T> {
        let mut v = self.clone();
        for l in v.levels.iter_mut() {
            l.retain(|t| !removed.contains(&t.meta().number));
        }
        v.levels[level].extend(added);
        sort_level(level, &mut v.levels[level]);
        debug_assert!(
            v.levels_are_disjoint(),
            "levels 1 and deeper must not overlap"
        );
        v
    }

    /// Every table, level by level.
    pub fn tables(&self) -> impl Iterator<Item = &T> {
        self.levels.iter().flatten()
    }

    /// Bytes of the tables of `level`.
    pub fn level_bytes(&self, level: usize) -> u64 {
        self.levels[level].iter().map(|t| t.meta().size_bytes).sum()
    }

    /// Tables of `level` whose user-key range intersects `[lo, hi]` (either end open if `None`).
    pub fn overlapping(&self, level: usize, lo: Option<&[u8]>, hi: Option<&[u8]>) -> Vec<T> {
        self.levels[level]
            .iter()
            .filter(|t| {
                let (s, l) = user_range(*t);
                lo.is_none_or(|lo| l >= lo) && hi.is_none_or(|hi| s <= hi)
            })
            .cloned()
            .collect()
    }

    /// The one table of a sorted level (1 or deeper) whose range may hold `user_key`.
    pub fn table_for_key(&self, level: usize, user_key: &[u8]) -> Option<&T> {
        debug_assert!(level >= 1, "level 0 tables overlap: probe each");
        let l = &self.levels[level];
        let i = l.partition_point(|t| {
            let hi = user_range(t).1;
            hi < user_key || (hi == user_key && hi_excluded(t))
        });
        l.get(i).filter(|t| user_range(*t).0 <= user_key)
    }

    /// True if some level deeper than `level` has a table whose range holds `user_key`: an
    /// older version of the key may live there.
    pub fn deeper_may_hold(&self, level: usize, user_key: &[u8]) -> bool {
        self.deeper_may_hold_where(level, user_key, |_| true)
    }

    /// [`Version::deeper_may_hold`], counting only the tables `counts` accepts.
    pub fn deeper_may_hold_where(
        &self,
        level: usize,
        user_key: &[u8],
        counts: impl Fn(&T) -> bool,
    ) -> bool {
        (level + 1..NUM_LEVELS).any(|l| self.table_for_key(l, user_key).is_some_and(&counts))
    }

    /// True if some level deeper than `level` has a table whose range meets `[start, end)`: an
    /// older version of a key a range tombstone covers may live there.
    pub fn deeper_may_overlap(&self, level: usize, start: &[u8], end: &[u8]) -> bool {
        (level + 1..NUM_LEVELS).any(|l| {
            self.levels[l].iter().any(|t| {
                let (lo, hi) = user_range(t);
                lo < end && hi >= start
            })
        })
    }

    /// True if no level deeper than `level` has a table whose user-key range meets
    /// `[lo, hi]` (both included): nothing older than what a compaction over that span writes
    /// can lie below its output.
    pub fn nothing_deeper(&self, level: usize, lo: &[u8], hi: &[u8]) -> bool {
        (level + 1..NUM_LEVELS).all(|l| self.overlapping(l, Some(lo), Some(hi)).is_empty())
    }

    /// The deepest level holding any table (0 if none).
    pub fn deepest_level(&self) -> usize {
        self.levels.iter().rposition(|l| !l.is_empty()).unwrap_or(0)
    }

    /// Checks that levels 1 and deeper are sorted and non-overlapping.
    pub fn levels_are_disjoint(&self) -> bool {
        self.levels
            .iter()
            .skip(1)
            .all(|l| l.windows(2).all(|w| entirely_before(&w[0], &w[1])))
    }
}
