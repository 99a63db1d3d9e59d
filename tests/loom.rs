//! Loom models of the engine's concurrency, on its real code (the engine's locks, condition
//! variables and atomics are loom's under `--cfg loom`, see `src/sync.rs`):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test --release --test loom
//! ```
//!
//! The database runs on `SimFs` in `Background::Inline` mode, so every flush and compaction
//! happens in one of the model's threads, and loom explores how it interleaves with the others.
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use sedimentdb::{Background, Db, Options, WriteBatch, WriteOptions};
use sedimentdb_sim::World;
use std::time::Duration;

fn model(f: impl Fn() + Sync + Send + 'static) {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let mut b = loom::model::Builder::new();
    // No preemption bound: loom's partial-order reduction keeps these models exhaustive and
    // still under a few seconds.
    b.preemption_bound = None;
    let before = RUNS.load(std::sync::atomic::Ordering::Relaxed);
    b.check(move || {
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f()
    });
    let runs = RUNS.load(std::sync::atomic::Ordering::Relaxed) - before;
    println!("loom explored {runs} interleavings");
    // A model that ran once explored nothing: the engine's primitives would not be loom's.
    assert!(runs > 1, "loom explored a single interleaving");
}

fn opts(memtable: usize) -> Options {
    Options {
        memtable_size_bytes: memtable,
        block_size_bytes: 256,
        background: Background::Inline,
        l0_compaction_trigger: 1000,
        l0_slowdown_writes_trigger: 1000,
        l0_stop_writes_trigger: 1000,
        tombstone_grace: Duration::ZERO,
        ..Options::default()
    }
}

/// A reader racing a memtable switch and flush never misses a key acknowledged before its
/// read began, whether the key is in the active memtable, an immutable one, or a new table.
#[test]
fn reader_racing_memtable_switch_and_flush() {
    model(|| {
        let w = World::new();
        let db = Arc::new(Db::open_with(w.env(), "/db", opts(1024)).unwrap());
        db.put(b"before", vec![1u8; 600]).unwrap();
        let acked = Arc::new(AtomicBool::new(false));
        let writer = {
            let (db, acked) = (db.clone(), acked.clone());
            loom::thread::spawn(move || {
                // Fills the memtable: this put switches memtables and flushes inline.
                db.put(b"new", vec![2u8; 600]).unwrap();
                acked.store(true, Ordering::Release);
                db.put(b"newer", vec![3u8; 600]).unwrap();
            })
        };
        let was_acked = acked.load(Ordering::Acquire);
        assert_eq!(db.get(b"before").unwrap().as_deref(), Some(&[1u8; 600][..]));
        let new = db.get(b"new").unwrap();
        if was_acked {
            assert_eq!(
                new.as_deref(),
                Some(&[2u8; 600][..]),
                "missed an acknowledged key"
            );
        }
        writer.join().unwrap();
        assert!(db.get(b"newer").unwrap().is_some());
    });
}

/// A reader racing a compaction's version install and the removal of its input files never
/// reads a removed file (the filesystem is in strict-unlink mode: any use of a removed file's
/// handle fails) and always finds its data.
#[test]
fn reader_racing_compaction_install_and_file_removal() {
    model(|| {
        let w = World::new();
        w.fs.set_strict_unlink(true);
        let db = Arc::new(Db::open_with(w.env(), "/db", opts(64 << 10)).unwrap());
        db.put(b"a", b"1").unwrap();
        db.flush().unwrap();
        db.put(b"b", b"2").unwrap();
        db.flush().unwrap();
        let compactor = {
            let db = db.clone();
            loom::thread::spawn(move || db.compact_range::<&[u8], _>(..).unwrap())
        };
        assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
        let all: Vec<_> = db.iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(all.len(), 2);
        compactor.join().unwrap();
        assert_eq!(db.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(db.stats().tables, 1);
    });
}

/// Group commit: every waiter learns the true outcome of the fsync that covered its write. The
/// first WAL fsync fails; a writer told `Ok` must find its write after a power loss, and no
/// writer may be told `Ok` for a write whose fsync failed.
#[test]
fn group_commit_waiters_learn_the_true_fsync_outcome() {
    model(|| {
        let w = World::new();
        let db = Arc::new(Db::open_with(w.env(), "/db", opts(64 << 10)).unwrap());
        w.fs.fail_next_sync(sedimentdb_sim::SyncFailure::DropPages);
        let writers: Vec<_> = (0..2u8)
            .map(|i| {
                let db = db.clone();
                loom::thread::spawn(move || {
                    let mut b = WriteBatch::new();
                    b.put([b'k', i], [i]);
                    db.write(b, &WriteOptions { sync: true }).is_ok()
                })
            })
            .collect();
        let ok: Vec<bool> = writers.into_iter().map(|h| h.join().unwrap()).collect();
        // The failed fsync covered the first group: at least one writer saw it fail.
        assert!(
            ok.iter().any(|o| !o),
            "a failed fsync was reported to nobody"
        );
        w.fs.crash();
        drop(db);
        let db = Db::open_with(w.env(), "/db", opts(64 << 10)).unwrap();
        for (i, ok) in ok.iter().enumerate() {
            if *ok {
                assert_eq!(
                    db.get([b'k', i as u8]).unwrap().as_deref(),
                    Some(&[i as u8][..]),
                    "acknowledged write {i} lost"
                );
            }
        }
    });
}
