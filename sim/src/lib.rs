//! # sedimentdb-sim
//!
//! The simulated world for sedimentdb: [`SimFs`], an in-memory filesystem that keeps, for every
//! file and directory, what reads see now (`current`) apart from what survives a power loss
//! (`durable`), exactly as `docs/FAULTS.md` defines; and [`SimClock`], a clock that moves only
//! when told to.

mod clock;
mod fs;
pub mod model;

pub use clock::SimClock;
pub use fs::{SimFs, SimFsStats, SyncFailure, TableWriteFault, PAGE_BYTES};

use sedimentdb::Env;
use std::sync::Arc;

/// A simulated world: a filesystem and a clock, and the `Env` that hands both to a `Db`.
#[derive(Clone)]
pub struct World {
    pub fs: Arc<SimFs>,
    pub clock: Arc<SimClock>,
}

impl World {
    pub fn new() -> World {
        World {
            fs: Arc::new(SimFs::new()),
            clock: Arc::new(SimClock::default()),
        }
    }

    pub fn env(&self) -> Env {
        Env::new(self.fs.clone(), self.clock.clone())
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

pub mod exhaustive;
pub mod harness;
pub mod runner;
pub mod shrink;
#[cfg(shuttle)]
pub mod threaded;
pub mod workload;

#[cfg(feature = "planted-bugs")]
pub use sedimentdb::internals::planted::Bug;

/// The bug planted on this thread, if any.
#[cfg(feature = "planted-bugs")]
pub fn planted_now() -> Option<sedimentdb::internals::planted::Bug> {
    sedimentdb::internals::planted::Bug::ALL
        .into_iter()
        .find(|b| sedimentdb::internals::planted::active(*b))
}
