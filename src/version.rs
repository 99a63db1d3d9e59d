//! The immutable set of live tables. A reader holds an `Arc<Version>` for as long as it reads,
//! which keeps every table it names open (and its file on disk: see `Inner::purge_obsolete`).

use crate::key;
use crate::sstable::Table;
use std::sync::Arc;

/// Number of levels: level 0 (overlapping tables, newest first) and six sorted levels below it.
pub const NUM_LEVELS: usize = 7;

/// Live tables by level. Level 0 is ordered newest first (its tables may overlap); deeper
/// levels are ordered by key and do not overlap.
#[derive(Clone, Default)]
pub struct Version {
    pub levels: [Vec<Arc<Table>>; NUM_LEVELS],
}

/// The user-key range of a table.
pub fn user_range(t: &Table) -> (&[u8], &[u8]) {
    let m = t.meta();
    (key::user_key(&m.smallest), key::user_key(&m.largest))
}

impl Version {
    /// A version with `table` added as the newest table of level 0.
    pub fn with_l0(&self, table: Arc<Table>) -> Version {
        let mut v = self.clone();
        v.levels[0].insert(0, table);
        v
    }

    /// A version with `removed` (by table number) taken out and `added` put in at `level`.
    pub fn apply(&self, removed: &[u64], level: usize, added: Vec<Arc<Table>>) -> Version {
        let mut v = self.clone();
        for l in v.levels.iter_mut() {
            l.retain(|t| !removed.contains(&t.meta().number));
        }
        v.levels[level].extend(added);
        if level == 0 {
            v.levels[0].sort_by_key(|t| std::cmp::Reverse(t.meta().number));
        } else {
            v.levels[level].sort_by(|a, b| key::compare(&a.meta().smallest, &b.meta().smallest));
        }
        debug_assert!(
            v.levels_are_disjoint(),
            "levels 1 and deeper must not overlap"
        );
        v
    }

    /// Every table, level by level.
    pub fn tables(&self) -> impl Iterator<Item = &Arc<Table>> {
        self.levels.iter().flatten()
    }

    /// Tables of `level` whose user-key range intersects `[lo, hi]` (either end open if `None`).
    pub fn overlapping(
        &self,
        level: usize,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
    ) -> Vec<Arc<Table>> {
        self.levels[level]
            .iter()
            .filter(|t| {
                let (s, l) = user_range(t);
                lo.is_none_or(|lo| l >= lo) && hi.is_none_or(|hi| s <= hi)
            })
            .cloned()
            .collect()
    }

    /// True if some level deeper than `level` has a table whose range holds `user_key`: an
    /// older version of the key may live there.
    pub fn deeper_may_hold(&self, level: usize, user_key: &[u8]) -> bool {
        self.levels.iter().skip(level + 1).any(|l| {
            let i = l.partition_point(|t| user_range(t).1 < user_key);
            l.get(i).is_some_and(|t| user_range(t).0 <= user_key)
        })
    }

    /// The deepest level holding any table (0 if none).
    pub fn deepest_level(&self) -> usize {
        self.levels.iter().rposition(|l| !l.is_empty()).unwrap_or(0)
    }

    /// Checks that levels 1 and deeper are sorted and non-overlapping.
    pub fn levels_are_disjoint(&self) -> bool {
        self.levels.iter().skip(1).all(|l| {
            l.windows(2)
                .all(|w| user_range(&w[0]).1 < user_range(&w[1]).0)
        })
    }
}
