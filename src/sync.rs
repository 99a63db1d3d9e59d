//! The engine's synchronization primitives and threads, in one place: `std` normally,
//! `loom::sync` under `--cfg loom` (the loom models in `tests/loom.rs` explore the interleavings
//! of the engine's own locks, condition variables and atomics), and `shuttle` under
//! `--cfg shuttle` (the simulator's threaded runs: background threads and client threads
//! interleaved by a scheduler seeded from the run's seed, `sim/src/threaded/`).
//!
//! `Arc` stays std's: loom's `Arc` has no `strong_count` semantics we rely on for removing
//! obsolete tables. The memtable's size counters stay std atomics: they only decide when to
//! flush, never what a reader sees.

pub(crate) use std::sync::Arc;

#[cfg(not(any(loom, shuttle)))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(not(any(loom, shuttle)))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{
    Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};

#[cfg(shuttle)]
pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(shuttle)]
pub(crate) use shuttle::sync::{
    Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};

/// Threads: the background workers are spawned through this.
pub(crate) mod thread {
    #[cfg(shuttle)]
    pub(crate) use shuttle::thread::{Builder, JoinHandle};
    #[cfg(not(shuttle))]
    pub(crate) use std::thread::{Builder, JoinHandle};
}

/// Locks a mutex, ignoring poisoning: engine state is kept consistent by never panicking while
/// holding a lock, and a poisoned lock must not turn every later call into a panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn wait<'a, T>(c: &Condvar, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    c.wait(g).unwrap_or_else(|e| e.into_inner())
}

/// Lets other threads run (used to slow writers down).
pub(crate) fn yield_now() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(shuttle)]
    shuttle::thread::yield_now();
    #[cfg(not(any(loom, shuttle)))]
    std::thread::yield_now();
}
