//! A manually advanced wall clock.

use sedimentdb::Clock;
use std::sync::atomic::{AtomicU64, Ordering};

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct SimClock {
    now_ms: AtomicU64,
}

impl SimClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: u64) -> SimClock {
        SimClock {
            now_ms: AtomicU64::new(start_ms),
        }
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Moves the clock back by `ms` (a backward jump), saturating at zero.
    pub fn rewind(&self, ms: u64) {
        let _ = self
            .now_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_sub(ms))
            });
    }

    /// Sets the clock.
    pub fn set(&self, ms: u64) {
        self.now_ms.store(ms, Ordering::SeqCst);
    }
}

impl Default for SimClock {
    /// 2026-01-01T00:00:00Z.
    fn default() -> Self {
        SimClock::new(1_767_225_600_000)
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}
