//! The merge of a compaction: which versions survive. No shared state: it sees entries in
//! internal-key order (newest version of each key first) and says what to write.
//!
//! The tombstone rule: a tombstone (point or range) is dropped only when its deletion time is at
//! least `tombstone_grace` ago by the engine's clock, no level deeper than the output can hold
//! an older version of a key it hides, *and* no live snapshot can see what it hides. Anything
//! less lets deleted data come back.
//!
//! At the bottom (no deeper level holds a table over the compaction's key span) a value that
//! every live snapshot sees has its sequence number set to 0, as RocksDB does: nothing older
//! can lie below it, so no reader needs the number, and a run of zero bytes compresses away.
//! Not where a range tombstone of the inputs covers the key: a cover older than the value
//! would then hide it.
//! (Text cases: `tests/testdata/tombstone_rule.txt`.)

use crate::db::flush::snapshot_stripe;
use crate::error::{Error, Result};
use crate::key::{self, Kind};
use crate::planted::{self, Bug};
use crate::rangedel::Fragments;
use crate::version::{TableInfo, Version};
use std::path::PathBuf;

/// What the merge needs to know to apply the tombstone rule.
pub struct Rule<'a, T> {
    /// The version the compaction reads (the deeper levels it checks).
    pub version: &'a Version<T>,
    pub output_level: usize,
    pub now_ms: u64,
    pub grace_ms: u64,
    /// No level deeper than the output holds a table over the compaction's key span
    /// ([`Version::nothing_deeper`]): values every snapshot sees lose their sequence numbers.
    pub bottom: bool,
}

impl<T: TableInfo> Rule<'_, T> {
    /// True if a tombstone of `user_key` deleted at `deleted_at_ms` may be dropped.
    pub fn drops_tombstone(&self, user_key: &[u8], deleted_at_ms: u64) -> bool {
        let expired = self.now_ms >= deleted_at_ms.saturating_add(self.grace_ms)
            || planted::active(Bug::DropTombstonesIgnoringGrace);
        let deeper = if planted::active(Bug::TombstoneCheckMissesMovedTable) {
            // Planted: tables that arrived by a trivial move are not looked at.
            self.version
                .deeper_may_hold_where(self.output_level, user_key, |t| {
                    !planted::was_moved(t.meta().number)
                })
        } else {
            self.version.deeper_may_hold(self.output_level, user_key)
        };
        let bottom = !deeper || planted::active(Bug::DropTombstonesAtNonBottomLevel);
        expired && bottom
    }
}

/// Decides, entry by entry, what a compaction writes.
///
/// Versions of a key are grouped by *snapshot stripe* (the live snapshots that see them, see
/// [`snapshot_stripe`]): the newest version of each stripe survives, unless a newer range
/// tombstone in the same stripe covers it (no snapshot can see it then). A point tombstone is
/// dropped only in the oldest stripe (no snapshot can see what it hides) and by the tombstone
/// rule; a range tombstone likewise ([`Merge::output_ranges`]).
pub struct Merge<'a, T> {
    rule: Rule<'a, T>,
    snapshots: &'a [u64],
    /// The range tombstones of every input, fragmented together.
    ranges: &'a Fragments,
    /// The current key and the stripe of the last version of it considered.
    last: Option<(Vec<u8>, usize)>,
    /// With the planted bug `PreferOlderVersion`: the oldest version seen of the current key.
    pending: Option<(Vec<u8>, Vec<u8>)>,
    prefer_older: bool,
    ignore_snapshots: bool,
    pub tombstones_dropped: u64,
    pub covered_dropped: u64,
    pub kept_for_snapshots: u64,
    /// Values written with sequence number 0 (see the module comment).
    pub seqs_zeroed: u64,
    /// The internal key of a value whose sequence number is zeroed.
    zeroed_key: Vec<u8>,
}

impl<'a, T: TableInfo> Merge<'a, T> {
    pub fn new(rule: Rule<'a, T>, snapshots: &'a [u64], ranges: &'a Fragments) -> Merge<'a, T> {
        Merge {
            rule,
            snapshots,
            ranges,
            last: None,
            pending: None,
            prefer_older: planted::active(Bug::PreferOlderVersion),
            ignore_snapshots: planted::active(Bug::CompactionIgnoresSnapshots),
            tombstones_dropped: 0,
            covered_dropped: 0,
            kept_for_snapshots: 0,
            seqs_zeroed: 0,
            zeroed_key: Vec::new(),
        }
    }

    fn stripe(&self, seq: u64) -> usize {
        if self.ignore_snapshots {
            0
        } else {
            snapshot_stripe(self.snapshots, seq)
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
        let stripe = self.stripe(p.seq);
        let same_key = self
            .last
            .as_ref()
            .is_some_and(|(k, _)| k[..] == *p.user_key);
        if same_key && self.prefer_older {
            if p.kind == Kind::Delete {
                key::deletion_time(value)
                    .ok_or_else(|| malformed("tombstone without its 8-byte deletion time"))?;
            }
            self.pending = Some((ikey.to_vec(), value.to_vec()));
            return Ok(());
        }
        match &mut self.last {
            Some((_, s)) if same_key => {
                // Shadowed by a newer version seen by the same snapshots.
                if *s == stripe {
                    return Ok(());
                }
                *s = stripe;
                self.kept_for_snapshots += 1;
            }
            // A new key: the buffer of the last one is reused.
            Some((k, s)) => {
                k.clear();
                k.extend_from_slice(p.user_key);
                *s = stripe;
            }
            None => self.last = Some((p.user_key.to_vec(), stripe)),
        }
        if !same_key {
            if let Some((k, v)) = self.pending.take() {
                emit(&k, &v)?;
            }
        }
        // Covered by a newer range tombstone that the same snapshots see: gone for all of them.
        let fragment = self.ranges.fragment_at(p.user_key);
        if let Some(f) = fragment {
            let oldest_newer = f.covers.iter().rev().find(|c| c.seq > p.seq);
            if oldest_newer.is_some_and(|c| self.stripe(c.seq) == stripe) {
                self.covered_dropped += 1;
                return Ok(());
            }
        }
        if p.kind == Kind::Delete {
            let t = key::deletion_time(value)
                .ok_or_else(|| malformed("tombstone without its 8-byte deletion time"))?;
            if !self.prefer_older && stripe == 0 && self.rule.drops_tombstone(p.user_key, t) {
                self.tombstones_dropped += 1;
                return Ok(());
            }
        } else if p.kind == Kind::RangeDelete {
            return Err(malformed("range tombstone in a data block"));
        }
        if self.prefer_older {
            self.pending = Some((ikey.to_vec(), value.to_vec()));
            return Ok(());
        }
        let bottom = self.rule.bottom || planted::active(Bug::ZeroSeqAboveDeeperLevel);
        let seen_by_all = stripe == 0 || planted::active(Bug::ZeroSeqSeenBySnapshot);
        let uncovered = fragment.is_none() || planted::active(Bug::ZeroSeqUnderRangeTombstone);
        if p.kind == Kind::Put && p.seq != 0 && bottom && seen_by_all && uncovered {
            self.seqs_zeroed += 1;
            self.zeroed_key.clear();
            key::encode_into(&mut self.zeroed_key, p.user_key, 0, Kind::Put);
            return emit(&self.zeroed_key, value);
        }
        emit(ikey, value)
    }

    /// Emits what the merge still holds back.
    pub fn finish(
        mut self,
        emit: &mut impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<Merge<'a, T>> {
        if let Some((k, v)) = self.pending.take() {
            emit(&k, &v)?;
        }
        Ok(self)
    }

    /// The range tombstones the output keeps, and how many were dropped: a cover goes when a
    /// newer cover of the same piece is seen by the same snapshots (it hides nothing more), or
    /// when it is in the oldest stripe, its grace period has passed and no level below the
    /// output can hold a version it covers.
    pub fn output_ranges(&self) -> (Fragments, u64) {
        let mut out = self.ranges.clone();
        let before = out.cover_count();
        let grace_ignored = planted::active(Bug::DropRangeTombstonesIgnoringGrace);
        out.retain_covers(|f, c| {
            let stripe = self.stripe(c.seq);
            let shadowed = f
                .covers
                .iter()
                .any(|n| n.seq > c.seq && self.stripe(n.seq) == stripe);
            if shadowed {
                return false;
            }
            let expired =
                grace_ignored || self.rule.now_ms >= c.time_ms.saturating_add(self.rule.grace_ms);
            let bottom =
                !self
                    .rule
                    .version
                    .deeper_may_overlap(self.rule.output_level, &f.start, &f.end);
            !(stripe == 0 && expired && bottom)
        });
        let dropped = before - out.cover_count();
        (out, dropped)
    }
}
