//! Known bugs the simulator must find, planted one at a time (cargo feature `planted-bugs`, off
//! by default). Each removes or bends exactly one safety measure of the engine.
//!
//! The switch is per thread: under simulation the engine runs inline on the caller's thread, so
//! a test that plants a bug affects only its own runs. Without the feature, [`active`] is a
//! constant `false` and the checks compile away.

/// A planted bug. The `Skip...Sync` bugs each remove exactly one durability point (an fsync of
/// a file or a directory; `docs/design.md` lists them); the others bend one safety rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bug {
    /// Acknowledge a synced write without fsyncing the WAL.
    AckBeforeWalSync,
    /// On a failed WAL fsync, retry it and acknowledge if the retry succeeds.
    RetryFailedFsync,
    /// Skip the fsyncs of the old WAL when rotating to a new one (its seal marker is written but
    /// never synced).
    SkipWalSyncAtRotation,
    /// Skip the directory fsync after creating a WAL.
    SkipWalDirSync,
    /// `Db::sync` returns without fsyncing the WAL.
    SkipSyncInSync,
    /// `Db::close` returns without fsyncing the WAL and its close marker.
    SkipSyncAtClose,
    /// Skip the fsync of a finished table file.
    SkipTableSync,
    /// Skip the directory fsync after creating a table at a flush.
    SkipTableDirSync,
    /// Skip the directory fsync after writing a compaction's output tables.
    SkipCompactionDirSync,
    /// Skip the fsync of a manifest edit.
    SkipManifestSync,
    /// Skip the fsync of the empty edit that vouches for the manifest edit before it.
    SkipManifestVouchSync,
    /// Skip the fsync of `CURRENT.tmp` before renaming it over `CURRENT`.
    SkipCurrentSync,
    /// Skip the fsync of the parent directory after creating a database directory.
    SkipNewDirSync,
    /// Sync only the database directory's own parent after creating it (none for a relative
    /// path), though the open created missing ancestors too.
    SyncOnlyImmediateParent,
    /// Group commit writes only the leader's batch in the group's WAL record, though every
    /// member's batch goes into the memtable and is acknowledged.
    LeaderOnlyInRecord,
    /// Recovery replays only the oldest WAL the manifest needs and removes the newer ones.
    ReplayOnlyOldestWal,
    /// Delete a memtable's WAL before its table and manifest edit are durable.
    DeleteWalBeforeTableDurable,
    /// Drop tombstones when flushing a memtable to a table.
    DropTombstonesAtFlush,
    /// Skip checksum verification when reading table blocks.
    SkipReadChecksum,
    /// Compaction drops expired-or-not tombstones, ignoring the grace period.
    DropTombstonesIgnoringGrace,
    /// Compaction drops expired tombstones at any level, though older versions may lie deeper.
    DropTombstonesAtNonBottomLevel,
    /// Compaction deletes its input tables before its manifest edit is durable.
    DeleteInputsBeforeManifestDurable,
    /// Install a compaction's result on the version the compaction read, not the current one,
    /// forgetting a table a concurrent flush added meanwhile.
    InstallOnStaleVersion,
    /// Remove an obsolete table's file while a reader (a scan) still holds the table.
    RemoveTablesHeldByReaders,
    /// Compaction keeps the oldest version of a key instead of the newest.
    PreferOlderVersion,
    /// Flush and compaction keep only the newest version of each key, dropping versions a live
    /// snapshot still reads.
    CompactionIgnoresSnapshots,
    /// Point lookups ignore the range tombstones of tables in level 1 and deeper.
    IgnoreRangeTombstonesBelowLevel0,
    /// The merging iterator, switching from forward to backward, steps back only the source it
    /// is on instead of repositioning every source before the current key.
    ReverseWithoutRepositioning,
    /// Compaction drops range tombstones at the bottom whatever their age, ignoring the grace
    /// period.
    DropRangeTombstonesIgnoringGrace,
    /// A checkpoint copies the live WAL only up to its last fsync, missing acknowledged
    /// unsynced writes.
    CheckpointMissesWalTail,
    /// A checkpoint does not fsync the tables and the WAL it copies.
    SkipCheckpointCopySync,
    /// A checkpoint returns without fsyncing its directory after removing its pending marker.
    SkipCheckpointFinalDirSync,
    /// The block cache keys blocks by offset alone, not by table: a block of one table (even a
    /// removed one) is served for another.
    CacheKeyWithoutTableNumber,
    /// Compaction moves a table into the next level by a manifest edit even when it overlaps a
    /// table there (a trivial move that is not one).
    MoveOverlappingTable,
    /// Under dynamic level targets, level 0 compacts into the base level even when a level
    /// above it holds older versions of the same keys.
    Level0SkipsOverlappingLevel,
    /// A data block that compression did not shrink enough is stored raw but keeps the level's
    /// codec byte, so reading it decompresses bytes that were never compressed.
    RawBlockMarkedCompressed,
    /// A pre-sized WAL's records are written where the file ends (its pre-sized length), not
    /// where the last record ended: recovery stops at the zeros before them.
    WalOffsetFromFileLength,
    /// Compaction's "no deeper level holds this key" check, before it drops an expired
    /// tombstone, skips the tables that reached their level by a trivial move since the open
    /// (as a check over what compactions wrote would): their older versions come back.
    TombstoneCheckMissesMovedTable,
    /// With several compaction threads, a compaction may pick tables another running one
    /// claimed (or write a key range it writes): one table compacted twice, or overlapping
    /// outputs in a level.
    PickClaimedTable,
    /// The memtable's arena places each entry one byte before the end of the previous one in
    /// the same block, so the previous entry's last byte (of its value, or of its trailer if
    /// the value is empty) is overwritten.
    ArenaOverlapsLastEntry,
    /// A group-commit leader gives up the lead without waking the writer at the head of the
    /// queue: the writes queued during its group wait for a leader forever.
    LeadHandOffLost,
    /// A scan's seek into a sorted level opens the first table whose smallest key is at or
    /// after the target, not the one whose range holds it: the rest of that table is skipped.
    LevelSeekBySmallest,
    /// Compaction sets a bottom value's sequence number to 0 even where a range tombstone of
    /// its inputs covers the key: a cover older than the value then hides it.
    ZeroSeqUnderRangeTombstone,
    /// Compaction sets a bottom value's sequence number to 0 even when a live snapshot does
    /// not see it: the snapshot reads a value written after it was taken.
    ZeroSeqSeenBySnapshot,
    /// Compaction sets values' sequence numbers to 0 at any level, though older versions of
    /// their keys may lie deeper: a merge across levels then takes the older for the newer.
    ZeroSeqAboveDeeperLevel,
    /// The WAL writer's LZ4 input is not cleared between records, so a compressed record holds
    /// the previous record's payload too and decodes to more than its raw length.
    WalCompressionInputKept,
    /// A WAL record says every byte before it was synced, though the last sync was earlier: a
    /// torn write before it then reads as damage to synced data.
    WalVouchesForUnsyncedBytes,
    /// The merging iterator keeps the source it just moved as current without comparing its
    /// next key with the runner-up's: a scan yields keys out of order or skips versions.
    MergeSkipsRunnerUp,
    /// The memtable's 8-byte key prefix is read little-endian: where two keys' first 8 bytes
    /// differ, the memtable orders them by the last differing byte instead of the first.
    MemtablePrefixLittleEndian,
    /// A table index's binary search takes a block whose last key has the target's 8-byte
    /// prefix to end at or after the target, without comparing the keys: a lookup can read
    /// the block before the one that holds its key.
    IndexPrefixTieTakenAsAfter,
}

impl Bug {
    /// Every planted bug.
    #[cfg_attr(not(feature = "planted-bugs"), allow(dead_code))]
    pub const ALL: [Bug; 50] = [
        Bug::AckBeforeWalSync,
        Bug::RetryFailedFsync,
        Bug::SkipWalSyncAtRotation,
        Bug::SkipWalDirSync,
        Bug::SkipSyncInSync,
        Bug::SkipSyncAtClose,
        Bug::SkipTableSync,
        Bug::SkipTableDirSync,
        Bug::SkipCompactionDirSync,
        Bug::SkipManifestSync,
        Bug::SkipManifestVouchSync,
        Bug::SkipCurrentSync,
        Bug::SkipNewDirSync,
        Bug::SyncOnlyImmediateParent,
        Bug::LeaderOnlyInRecord,
        Bug::ReplayOnlyOldestWal,
        Bug::DeleteWalBeforeTableDurable,
        Bug::DropTombstonesAtFlush,
        Bug::SkipReadChecksum,
        Bug::DropTombstonesIgnoringGrace,
        Bug::DropTombstonesAtNonBottomLevel,
        Bug::DeleteInputsBeforeManifestDurable,
        Bug::InstallOnStaleVersion,
        Bug::RemoveTablesHeldByReaders,
        Bug::PreferOlderVersion,
        Bug::CompactionIgnoresSnapshots,
        Bug::IgnoreRangeTombstonesBelowLevel0,
        Bug::ReverseWithoutRepositioning,
        Bug::DropRangeTombstonesIgnoringGrace,
        Bug::CheckpointMissesWalTail,
        Bug::SkipCheckpointCopySync,
        Bug::SkipCheckpointFinalDirSync,
        Bug::CacheKeyWithoutTableNumber,
        Bug::MoveOverlappingTable,
        Bug::Level0SkipsOverlappingLevel,
        Bug::RawBlockMarkedCompressed,
        Bug::WalOffsetFromFileLength,
        Bug::TombstoneCheckMissesMovedTable,
        Bug::PickClaimedTable,
        Bug::ArenaOverlapsLastEntry,
        Bug::LevelSeekBySmallest,
        Bug::LeadHandOffLost,
        Bug::ZeroSeqUnderRangeTombstone,
        Bug::ZeroSeqSeenBySnapshot,
        Bug::ZeroSeqAboveDeeperLevel,
        Bug::WalCompressionInputKept,
        Bug::WalVouchesForUnsyncedBytes,
        Bug::MergeSkipsRunnerUp,
        Bug::MemtablePrefixLittleEndian,
        Bug::IndexPrefixTieTakenAsAfter,
    ];
}

#[cfg(feature = "planted-bugs")]
thread_local! {
    static ACTIVE: std::cell::Cell<Option<Bug>> = const { std::cell::Cell::new(None) };
}

/// Plants `bug` (or none) for engine work on this thread.
#[cfg(feature = "planted-bugs")]
pub fn plant(bug: Option<Bug>) {
    ACTIVE.with(|a| a.set(bug));
}

#[cfg(feature = "planted-bugs")]
thread_local! {
    /// Tables trivially moved since the open, for `TombstoneCheckMissesMovedTable`.
    static MOVED: std::cell::RefCell<std::collections::BTreeSet<u64>> =
        const { std::cell::RefCell::new(std::collections::BTreeSet::new()) };
}

/// Notes (only while `TombstoneCheckMissesMovedTable` is planted) that table `number` was
/// trivially moved; `forget` clears the notes (at an open).
pub fn note_moved(number: Option<u64>) {
    #[cfg(feature = "planted-bugs")]
    if active(Bug::TombstoneCheckMissesMovedTable) {
        MOVED.with(|m| match number {
            Some(n) => {
                m.borrow_mut().insert(n);
            }
            None => m.borrow_mut().clear(),
        });
    }
    #[cfg(not(feature = "planted-bugs"))]
    let _ = number;
}

/// True if table `number` was noted as trivially moved.
pub fn was_moved(number: u64) -> bool {
    #[cfg(feature = "planted-bugs")]
    {
        MOVED.with(|m| m.borrow().contains(&number))
    }
    #[cfg(not(feature = "planted-bugs"))]
    {
        let _ = number;
        false
    }
}

/// True if `bug` is planted on this thread.
#[inline]
pub fn active(bug: Bug) -> bool {
    #[cfg(feature = "planted-bugs")]
    {
        ACTIVE.with(|a| a.get() == Some(bug))
    }
    #[cfg(not(feature = "planted-bugs"))]
    {
        let _ = bug;
        false
    }
}
