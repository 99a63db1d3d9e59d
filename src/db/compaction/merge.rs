//! The merge of a compaction: which versions survive. No shared state: it sees entries in
//! internal-key order (newest version of each key first) and says what to write.
//!
//! The tombstone rule: a tombstone is dropped only when its deletion time is at least
//! `tombstone_grace` ago by the engine's clock *and* no level deeper than the output can hold
//! an older version of its key. Anything less lets deleted data come back.
//! (Text cases: `tests/testdata/tombstone_rule.txt`.)

use crate::error::{Error, Result};
use crate::key::{self, Kind};
use crate::planted::{self, Bug};
use crate::version::{TableInfo, Version};
use std::path::PathBuf;

/// What the merge needs to know to apply the tombstone rule.
pub struct Rule<'a, T> {
    /// The version the compaction reads (the deeper levels it checks).
    pub version: &'a Version<T>,
    pub output_level: usize,
    pub now_ms: u64,
    pub grace_ms: u64,
}

impl<T: TableInfo> Rule<'_, T> {
    /// True if a tombstone of `user_key` deleted at `deleted_at_ms` may be dropped.
    pub fn drops_tombstone(&self, user_key: &[u8], deleted_at_ms: u64) -> bool {
        let expired = self.now_ms >= deleted_at_ms.saturating_add(self.grace_ms)
            || planted::active(Bug::DropTombstonesIgnoringGrace);
        let bottom = !self.version.deeper_may_hold(self.output_level, user_key)
            || planted::active(Bug::DropTombstonesAtNonBottomLevel);
        expired && bottom
    }
}

/// Decides, entry by entry, what a compaction writes.
pub struct Merge<'a, T> {
    rule: Rule<'a, T>,
    last_user_key: Option<Vec<u8>>,
    /// With the planted bug `PreferOlderVersion`: the oldest version seen of the current key.
    pending: Option<(Vec<u8>, Vec<u8>)>,
    prefer_older: bool,
    pub tombstones_dropped: u64,
}

impl<'a, T: TableInfo> Merge<'a, T> {
    pub fn new(rule: Rule<'a, T>) -> Merge<'a, T> {
        Merge {
            rule,
            last_user_key: None,
            pending: None,
            prefer_older: planted::active(Bug::PreferOlderVersion),
            tombstones_dropped: 0,
        }
    }

    /// Offers the next entry (in internal-key order); calls `emit` for what is to be written.
    /// `origin` names where the entry came from (file and offset), for the error if it is
    /// malformed.
    pub fn offer(
        &mut self,
        ikey: &[u8],
        value: &[u8],
        origin: impl Fn() -> (PathBuf, u64),
        emit: &mut impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<()> {
        let malformed = |what: &str| {
            let (file, offset) = origin();
            Error::corruption(file, offset, format!("compaction input: {what}"))
        };
        let p = key::parse(ikey).ok_or_else(|| malformed("malformed internal key"))?;
        let shadowed = self.last_user_key.as_deref() == Some(p.user_key);
        if shadowed && !self.prefer_older {
            return Ok(());
        }
        if !shadowed {
            self.last_user_key = Some(p.user_key.to_vec());
            if let Some((k, v)) = self.pending.take() {
                emit(&k, &v)?;
            }
        }
        if p.kind == Kind::Delete {
            let t = key::deletion_time(value)
                .ok_or_else(|| malformed("tombstone without its 8-byte deletion time"))?;
            if !self.prefer_older && self.rule.drops_tombstone(p.user_key, t) {
                self.tombstones_dropped += 1;
                return Ok(());
            }
        }
        if self.prefer_older {
            self.pending = Some((ikey.to_vec(), value.to_vec()));
            return Ok(());
        }
        emit(ikey, value)
    }

    /// Emits what the merge still holds back.
    pub fn finish(mut self, emit: &mut impl FnMut(&[u8], &[u8]) -> Result<()>) -> Result<u64> {
        if let Some((k, v)) = self.pending.take() {
            emit(&k, &v)?;
        }
        Ok(self.tombstones_dropped)
    }
}
