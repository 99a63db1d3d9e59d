//! Known bugs the simulator must find, planted one at a time (cargo feature `planted-bugs`, off
//! by default). Each removes or bends exactly one safety measure of the engine.
//!
//! The switch is per thread: under simulation the engine runs inline on the caller's thread, so
//! a test that plants a bug affects only its own runs. Without the feature, [`active`] is a
//! constant `false` and the checks compile away.

/// A planted bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bug {
    /// Acknowledge a synced write without fsyncing the WAL.
    AckBeforeWalSync,
    /// Skip the directory fsync after creating a table.
    SkipTableDirSync,
    /// Delete a memtable's WAL before its table and manifest edit are durable.
    DeleteWalBeforeTableDurable,
    /// Drop tombstones when flushing a memtable to a table.
    DropTombstonesAtFlush,
    /// On a failed WAL fsync, retry it and acknowledge if the retry succeeds.
    RetryFailedFsync,
    /// Skip checksum verification when reading table blocks.
    SkipReadChecksum,
    /// Compaction drops expired-or-not tombstones, ignoring the grace period.
    DropTombstonesIgnoringGrace,
    /// Compaction drops expired tombstones at any level, though older versions may lie deeper.
    DropTombstonesAtNonBottomLevel,
    /// Compaction deletes its input tables before its manifest edit is durable.
    DeleteInputsBeforeManifestDurable,
    /// Compaction keeps the oldest version of a key instead of the newest.
    PreferOlderVersion,
}

impl Bug {
    /// Every planted bug.
    #[cfg_attr(not(feature = "planted-bugs"), allow(dead_code))]
    pub const ALL: [Bug; 10] = [
        Bug::AckBeforeWalSync,
        Bug::SkipTableDirSync,
        Bug::DeleteWalBeforeTableDurable,
        Bug::DropTombstonesAtFlush,
        Bug::RetryFailedFsync,
        Bug::SkipReadChecksum,
        Bug::DropTombstonesIgnoringGrace,
        Bug::DropTombstonesAtNonBottomLevel,
        Bug::DeleteInputsBeforeManifestDurable,
        Bug::PreferOlderVersion,
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
