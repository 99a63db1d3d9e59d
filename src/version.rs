//! The immutable set of live tables. A reader holds an `Arc<Version>` for as long as it reads,
//! which keeps every table it names open.

use crate::manifest::NUM_LEVELS;
use crate::sstable::Table;
use std::sync::Arc;

/// Live tables by level. Level 0 is ordered newest first (its tables may overlap); deeper
/// levels are ordered by key and do not overlap.
#[derive(Clone, Default)]
pub struct Version {
    pub levels: [Vec<Arc<Table>>; NUM_LEVELS],
}

impl Version {
    /// A version with `table` added as the newest table of level 0.
    pub fn with_l0(&self, table: Arc<Table>) -> Version {
        let mut v = self.clone();
        v.levels[0].insert(0, table);
        v
    }

    /// Every table, level by level.
    pub fn tables(&self) -> impl Iterator<Item = &Arc<Table>> {
        self.levels.iter().flatten()
    }
}
