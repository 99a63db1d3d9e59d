//! openraft's own storage test suite, on the real filesystem in temporary directories.
//!
//! The suite drives the log store on its own: it purges entries that no state machine ever
//! applied. A linked pair (`sedimentdb_raft::open`) waits, by design, until its state machine
//! covers a purge, so the suite runs on the two stores opened apart; `tests/crash.rs` checks
//! the linked pair under power loss with openraft's own start-up.
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use sedimentdb_raft::{LogStore, NodeId, StateMachine, TypeConfig};
use tempfile::TempDir;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = TempDir::new().expect("a temporary directory");
        let log = LogStore::open(&dir.path().join("log")).expect("the log database opens");
        let sm = StateMachine::open(&dir.path().join("sm")).expect("the state database opens");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    if let Err(e) = Suite::test_all(Builder) {
        panic!("openraft's storage suite failed: {e}");
    }
}
