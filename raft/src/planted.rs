//! Planted bugs in the adapter (feature `planted-bugs`, test-only): each must be found by the
//! crash test (`tests/crash.rs`). Without the feature nothing is ever active.

/// A known bug that can be planted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// `append` reports its entries flushed without syncing them, leaving the sync to a later
    /// synced write.
    AppendAckBeforeSync,
    /// `save_vote` writes the vote unsynced.
    VoteUnsynced,
    /// `purge` deletes the entries in one batch and records the last purged id in another:
    /// a crash between leaves a hole below the first entry.
    PurgeLeavesHole,
    /// `install_snapshot` removes the old keys in one batch and writes the new state in
    /// another: a crash between leaves neither.
    InstallMixesState,
    /// `purge` does not wait for the state machine to cover what it purges: after a snapshot
    /// is received, a power loss may keep the purge and lose the install.
    PurgeBeforeStateMachine,
    /// `save_committed` writes unsynced: after a power loss a leader restarted in the same term
    /// knows less committed than it applied and acknowledged, and serves stale reads.
    CommittedUnsynced,
}

impl Bug {
    pub const ALL: [Bug; 6] = [
        Bug::AppendAckBeforeSync,
        Bug::VoteUnsynced,
        Bug::PurgeLeavesHole,
        Bug::InstallMixesState,
        Bug::PurgeBeforeStateMachine,
        Bug::CommittedUnsynced,
    ];
}

// Per thread: tests run in parallel, and each drives its storage (through a current-thread
// runtime or turmoil's single-threaded simulation) on its own thread.
#[cfg(feature = "planted-bugs")]
thread_local! {
    static PLANTED: std::cell::Cell<Option<Bug>> = const { std::cell::Cell::new(None) };
}

/// Plants `bug` (or none) for the calling thread.
#[cfg(feature = "planted-bugs")]
pub fn plant(bug: Option<Bug>) {
    PLANTED.with(|p| p.set(bug));
}

pub(crate) fn active(bug: Bug) -> bool {
    #[cfg(feature = "planted-bugs")]
    {
        PLANTED.with(|p| p.get()) == Some(bug)
    }
    #[cfg(not(feature = "planted-bugs"))]
    {
        let _ = bug;
        false
    }
}
