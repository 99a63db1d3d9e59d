//! Files no version names any more, and their removal.
//!
//! A compaction's inputs leave the version when its manifest edit is durable, but readers that
//! took the super version earlier (a scan, a `get` in flight) may still read them. Each such
//! table waits in `Shared::obsolete` until its `Arc` is the last one, then its file is removed.
//! A failed removal is counted and retried as an orphan at the next open.

use super::shared::Shared;
use crate::planted::{self, Bug};
use crate::sstable::Table;
use crate::stats::Counters;
use crate::sync::{self, Arc};

/// Queues tables that left the version; their files go once no reader holds them.
pub(crate) fn retire(shared: &Shared, tables: impl IntoIterator<Item = Arc<Table>>) {
    sync::lock(&shared.obsolete).extend(tables);
    purge(shared);
}

/// Removes the files of obsolete tables that no reader holds any more.
pub(crate) fn purge(shared: &Shared) {
    let dead: Vec<Arc<Table>> = {
        let mut obs = sync::lock(&shared.obsolete);
        let (dead, live): (Vec<_>, Vec<_>) = obs.drain(..).partition(|t| {
            Arc::strong_count(t) == 1 || planted::active(Bug::RemoveTablesHeldByReaders)
        });
        *obs = live;
        dead
    };
    for t in dead {
        // The manifest edit that dropped this table is durable and no version names it; if
        // the removal fails, the next open removes it as an orphan.
        if shared.env.fs.remove_file(t.path()).is_err() {
            Counters::add(&shared.counters.obsolete_file_errors, 1);
        }
    }
}
