//! `Snapshot`: a registered sequence number. Reads through it see the database exactly as it
//! was when it was taken; flushes and compactions keep every version it can see while it lives.

use super::cursor::{owned_bounds, prefix_bounds, Cursor, View};
use super::read;
use super::scan::Scan;
use super::shared::Shared;
use crate::error::Result;
use crate::sync::Arc;
use std::ops::RangeBounds;

/// A consistent point-in-time view of the database, from [`crate::Db::snapshot`]. Owned,
/// `Send + Sync`, and released when dropped. Reads through it see exactly the writes
/// acknowledged before it was taken, whatever is written, flushed or compacted afterwards.
///
/// What it costs: while it lives, flushes and compactions keep, for every key, the newest
/// version it can see (and the point and range tombstones that hide older ones from it), so
/// the space it pins is the versions overwritten or deleted since it was taken, never more.
/// `Stats::live_snapshots` and `Stats::oldest_snapshot_seq` show what is held.
///
/// A snapshot does not survive closing the database: reads through it then fail with
/// [`crate::Error::Closed`].
///
/// ```
/// use sedimentdb::{Db, Options};
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Db::open(dir.path().join("db"), Options::default())?;
/// db.put("k", "old")?;
/// let snap = db.snapshot();
/// db.put("k", "new")?;
/// db.flush()?;
/// db.compact_range::<&[u8], _>(..)?;
/// assert_eq!(snap.get("k")?, Some(b"old".to_vec()));
/// assert_eq!(db.get("k")?, Some(b"new".to_vec()));
/// # Ok::<(), sedimentdb::Error>(())
/// ```
pub struct Snapshot {
    shared: Arc<Shared>,
    seq: u64,
}

impl Snapshot {
    pub(crate) fn new(shared: &Arc<Shared>) -> Snapshot {
        Snapshot {
            seq: shared.register_snapshot(),
            shared: shared.clone(),
        }
    }

    /// The sequence number of the newest write the snapshot sees.
    pub fn sequence(&self) -> u64 {
        self.seq
    }

    /// The value of `key` as of the snapshot, or `None` if it was absent or deleted.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.shared.check_open()?;
        read::get(&self.shared, key.as_ref(), Some(self.seq))
    }

    /// The live entries in `range` as of the snapshot, ascending (or descending with `rev`).
    pub fn scan<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Scan {
        Scan::new(self.cursor(range))
    }

    /// Every live entry as of the snapshot.
    pub fn iter(&self) -> Scan {
        self.scan::<&[u8], _>(..)
    }

    /// Every live entry whose key starts with `prefix`, as of the snapshot.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Scan {
        let b = prefix_bounds(prefix.as_ref());
        Scan::new(Cursor::new(
            &self.shared,
            View::new(&self.shared, Some(self.seq), b),
        ))
    }

    /// A cursor over the snapshot, within `range`.
    pub fn cursor<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Cursor {
        let view = View::new(&self.shared, Some(self.seq), owned_bounds(&range));
        Cursor::new(&self.shared, view)
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.shared.release_snapshot(self.seq);
    }
}
