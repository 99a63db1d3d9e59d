//! Scheduling flushes and compactions: on background threads ([`Background::Threads`]), or in
//! the caller's thread after it released every lock ([`Background::Inline`], and
//! `Db::maintenance_step` for a scheduler that picks when each step runs).
//!
//! The work itself is one step at a time (`flush::flush_oldest`, `compaction::step`); this
//! module only decides who runs it and when. A failed step makes the database read-only.

use super::compaction;
use super::flush;
use super::shared::{BgState, Shared};
use crate::error::{Error, Result};
use crate::options::Background;
use crate::sync::thread::JoinHandle;
use crate::sync::{self, Arc};

/// Starts the flush thread and the compaction threads.
pub(crate) fn spawn(shared: &Arc<Shared>) -> Result<Vec<JoinHandle<()>>> {
    let mut threads = Vec::new();
    let mut start = |name: String, f: fn(&Shared)| -> Result<()> {
        let s = shared.clone();
        let h = crate::sync::thread::Builder::new()
            .name(name)
            .spawn(move || f(&s))
            .map_err(|e| Error::io("spawn background thread for", &shared.dir, e))?;
        threads.push(h);
        Ok(())
    };
    start("sedimentdb-flush".into(), flush_loop)?;
    for n in 0..shared.opts.compaction_threads {
        start(format!("sedimentdb-compact-{n}"), compaction_loop)?;
    }
    // Tables left over the targets by the last run get compacted now.
    shared.signal_compaction();
    Ok(threads)
}

/// Stops the background threads and waits for them.
pub(crate) fn stop(shared: &Shared, threads: Vec<JoinHandle<()>>) {
    {
        let mut bg = sync::lock(&shared.bg);
        bg.shutdown = true;
        shared.bg_cv.notify_all();
        shared.progress.notify_all();
    }
    for h in threads {
        let _ = h.join();
    }
}

/// Runs the work a rotation queued, in this thread: every flush, then compactions until none
/// is due. Under [`Background::Inline`] only.
pub(crate) fn run_inline(shared: &Shared) -> Result<()> {
    let r = flush::flush_all(shared);
    shared.fail_on_err(r)?;
    after_flush(shared)
}

/// After a flush: compact inline (under `Inline`), or wake the compaction threads.
pub(crate) fn after_flush(shared: &Shared) -> Result<()> {
    match shared.opts.background {
        Background::Inline => loop {
            let r = compaction::step(shared);
            if !shared.fail_on_err(r)? {
                return Ok(());
            }
        },
        Background::Threads => {
            shared.signal_compaction();
            Ok(())
        }
        Background::Manual => Ok(()),
    }
}

/// One unit of work: the oldest flush if one waits, else one compaction if one is due.
/// Returns whether there was work.
pub(crate) fn step(shared: &Shared) -> Result<bool> {
    let r = flush::flush_oldest(shared);
    if shared.fail_on_err(r)? {
        return Ok(true);
    }
    let r = compaction::step(shared);
    shared.fail_on_err(r)
}

/// Waits until the flag `flag` picks is set, then clears it. False at shutdown.
fn wait_for_work(shared: &Shared, flag: fn(&mut BgState) -> &mut bool) -> bool {
    let mut bg = sync::lock(&shared.bg);
    while !*flag(&mut bg) && !bg.shutdown {
        bg = sync::wait(&shared.bg_cv, bg);
    }
    if bg.shutdown {
        return false;
    }
    *flag(&mut bg) = false;
    true
}

fn flush_loop(shared: &Shared) {
    while wait_for_work(shared, |bg| &mut bg.flush_pending) {
        if shared.read_only_cause().is_some() {
            continue;
        }
        let r = flush::flush_all(shared);
        if shared.fail_on_err(r).is_ok() {
            shared.signal_compaction();
        }
    }
}

fn compaction_loop(shared: &Shared) {
    while wait_for_work(shared, |bg| &mut bg.compact_pending) {
        while shared.read_only_cause().is_none() && !shared.closed() {
            let r = compaction::step(shared);
            match shared.fail_on_err(r) {
                Ok(true) => continue,
                _ => break,
            }
        }
    }
}
