//! Threaded runs: the real threaded engine (`Background::Threads`: a flush thread and
//! compaction threads) with 1 to 8 client threads on `SimFs`, every lock, condition variable,
//! atomic and thread interleaved by shuttle's random scheduler seeded from the run's seed
//! (built with `--cfg shuttle`, which maps the engine's `sync` module to shuttle). The same seed
//! gives the same interleaving and the same trace of filesystem calls.
//!
//! Each client thread writes its own keys, so its writes form a history of their own: after the
//! run ends in a crash (at any filesystem call of any thread, a flush or compaction included),
//! a clean close, or a close followed by a power loss, the reopened database must hold, for
//! every thread, its writes up to some point that includes every write of that thread that was
//! durable (a synced write, or any write before a `sync` that returned `Ok`), and every write it
//! acknowledged unless power was lost; a failed write is wholly in or out (`oracle.rs`).

mod client;
mod oracle;
mod schedule;

use crate::{SyncFailure, World};
use client::{run_client, ClientLog};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sedimentdb::{Background, Db, Options};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

const DB_DIR: &str = "/db";

/// What a threaded run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadedSummary {
    pub client_threads: u64,
    /// Writes acknowledged by clients.
    pub writes: u64,
    /// WAL records written: `writes - wal_records` writes rode in another writer's group.
    pub wal_records: u64,
    /// Commit groups by number of writers (1, 2, 3 to 4, 5 or more).
    pub groups_by_size: [u64; 4],
    /// WALs holding records that the reopen replayed.
    pub wals_replayed: u64,
    pub write_stalls: u64,
    pub flushes: u64,
    /// Flushes that finished while a compaction ran (a probe: the race is reached).
    pub flushes_during_compaction: u64,
    pub compactions: u64,
    /// Compactions that started while another ran (a probe: `compaction_threads > 1` ran two
    /// at once).
    pub parallel_compactions: u64,
    /// How the run ended: "clean close", "power loss after close", "crash point: power loss",
    /// "crash point: process crash".
    pub ending: String,
    /// Faults the filesystem fired, by kind.
    pub injected: BTreeMap<String, u64>,
    pub trace_hash: u64,
    pub fs_calls: u64,
}

impl ThreadedSummary {
    /// Adds another run's counts into this one (the ending is counted by kind in `endings`).
    pub fn absorb(&mut self, o: &ThreadedSummary, endings: &mut BTreeMap<String, u64>) {
        self.client_threads += o.client_threads;
        self.writes += o.writes;
        self.wal_records += o.wal_records;
        for (a, b) in self.groups_by_size.iter_mut().zip(o.groups_by_size) {
            *a += b;
        }
        self.wals_replayed += o.wals_replayed;
        self.write_stalls += o.write_stalls;
        self.flushes_during_compaction += o.flushes_during_compaction;
        self.flushes += o.flushes;
        self.compactions += o.compactions;
        self.parallel_compactions += o.parallel_compactions;
        for (k, v) in &o.injected {
            *self.injected.entry(k.clone()).or_default() += v;
        }
        *endings.entry(o.ending.clone()).or_default() += 1;
        self.fs_calls += o.fs_calls;
        self.trace_hash ^= o.trace_hash;
    }
}

/// The knobs of one threaded run, drawn from its seed.
struct Plan {
    clients: usize,
    ops_per_client: usize,
    opts: Options,
    /// The machine dies at this filesystem call (power loss if `power`), if any.
    crash_at: Option<(u64, bool)>,
    sync_failure: Option<SyncFailure>,
    /// A WAL fsync fails after this many succeeded (one that may overlap another group's).
    wal_sync_failure: Option<(u64, SyncFailure)>,
    /// The next append fails after writing this many bytes.
    append_failure: Option<usize>,
    /// Only this many bytes fit on the disk (from the first client write on).
    quota_bytes: Option<u64>,
    /// A chaos thread flips a bit in a table's durable bytes after yielding this many times.
    flip_after_yields: Option<u32>,
    /// After a clean close: cut the power before reopening.
    power_loss_after_close: bool,
}

fn plan(seed: u64) -> Plan {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7468_7265_6164_7300);
    let mut below = |n: u64| rng.next_u64() % n;
    let clients = 1 + below(8) as usize;
    let opts = Options {
        memtable_size_bytes: [1024, 2048, 8192][below(3) as usize],
        max_immutable_memtables: 1 + below(2) as usize,
        block_size_bytes: 256,
        background: Background::Threads,
        compaction_threads: 1 + below(3) as usize,
        l0_compaction_trigger: 2,
        l0_slowdown_writes_trigger: 3,
        l0_stop_writes_trigger: 4 + below(3) as usize,
        level1_size_bytes: 8 << 10,
        table_size_bytes: 2 << 10,
        ..Options::default()
    };
    let crash_at = (below(3) != 0).then(|| (1 + below(800), below(4) != 0));
    let sync_failure = match below(6) {
        0 => Some(SyncFailure::KeepPages),
        1 => Some(SyncFailure::DropPages),
        _ => None,
    };
    let append_failure = (below(6) == 0).then(|| below(100) as usize);
    let quota_bytes = (below(8) == 0).then(|| 20_000 + below(60_000));
    let flip_after_yields = (below(6) == 0).then(|| below(400) as u32);
    // Drawn last: a third of the seeds get a steep, tiny tree, so deeper levels are over their
    // targets while level 0 compacts, and several compaction threads find disjoint work.
    let mut opts = opts;
    if below(3) == 0 {
        opts.level1_size_bytes = 2 << 10;
        opts.level_size_multiplier = 2;
        opts.table_size_bytes = 1 << 10;
    }
    let wal_sync_failure = (below(5) == 0).then(|| {
        let mode = [SyncFailure::KeepPages, SyncFailure::DropPages][below(2) as usize];
        (below(40), mode)
    });
    // After everything above, so the other draws stay what they were for each seed: a third
    // of the seeds write their WAL payloads uncompressed.
    if below(3) == 0 {
        opts.wal_compression = sedimentdb::Compression::None;
    }
    Plan {
        wal_sync_failure,
        flip_after_yields,
        append_failure,
        quota_bytes,
        clients,
        ops_per_client: 10 + below(50) as usize,
        opts,
        crash_at,
        sync_failure,
        power_loss_after_close: below(2) == 0,
    }
}

/// Runs threaded seed `seed`: `Ok` with what it did, or the contract violation.
pub fn run_threaded_seed(seed: u64) -> Result<ThreadedSummary, String> {
    run_with(
        shuttle::scheduler::RandomScheduler::new_from_seed(seed, 1),
        move || run_once(seed),
    )
    .unwrap_or_else(|why| Err(format!("threaded seed {seed}: {why}")))
}

/// Runs a threaded run whose plan and client operations come from the first 8 bytes of `data`
/// and whose thread schedule comes from the rest: each byte picks the next thread to run at a
/// scheduling point (then a seeded RNG takes over). For coverage-guided fuzzing of schedules.
pub fn run_threaded_bytes(data: &[u8]) -> Result<ThreadedSummary, String> {
    let mut head = [0u8; 8];
    let n = data.len().min(8);
    head[..n].copy_from_slice(&data[..n]);
    let seed = u64::from_le_bytes(head);
    let scheduler = schedule::BytesScheduler::new(data.get(8..).unwrap_or(&[]).to_vec(), seed);
    run_with(scheduler, move || run_once(seed))
        .unwrap_or_else(|why| Err(format!("threaded bytes (seed {seed}): {why}")))
}

/// Runs `f` once under shuttle's random scheduler seeded with `seed` (under `--cfg shuttle`
/// every engine primitive must run inside such an execution), returning what it returned.
pub fn under_scheduler<T: Send + 'static>(
    seed: u64,
    f: impl Fn() -> T + Send + Sync + 'static,
) -> Option<T> {
    run_with(
        shuttle::scheduler::RandomScheduler::new_from_seed(seed, 1),
        f,
    )
    .ok()
}

/// Runs `f` once under `scheduler`. Fails if the run did not finish: a deadlock (every thread
/// blocked), a panic, or too many steps (shuttle's message says which).
fn run_with<T: Send + 'static>(
    scheduler: impl shuttle::scheduler::Scheduler + 'static,
    f: impl Fn() -> T + Send + Sync + 'static,
) -> Result<T, String> {
    let out: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
    let slot = out.clone();
    let mut config = shuttle::Config::new();
    config.stack_size = 4 << 20;
    config.silence_warnings = true;
    config.max_steps = shuttle::MaxSteps::FailAfter(20_000_000);
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        shuttle::Runner::new(scheduler, config).run(move || {
            let r = f();
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        })
    }));
    if let Err(payload) = ran {
        let why = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into());
        return Err(format!("the run did not finish: {why}"));
    }
    let r = out.lock().unwrap_or_else(|e| e.into_inner()).take();
    r.ok_or_else(|| "the run did not finish".into())
}

/// One run, inside the scheduler.
fn run_once(seed: u64) -> Result<ThreadedSummary, String> {
    let plan = plan(seed);
    let world = World::new();
    world.fs.set_strict_unlink(true);
    let fail = |what: String| format!("threaded seed {seed}: {what}");
    let db = Db::open_with(world.env(), DB_DIR, plan.opts.clone())
        .map_err(|e| fail(format!("first open failed: {e}")))?;
    let db = Arc::new(db);
    // The order of acknowledgements across the clients (a std atomic: not a scheduling point).
    let acks = Arc::new(std::sync::atomic::AtomicU64::new(0));
    if let Some((calls, _)) = plan.crash_at {
        world.fs.die_after_calls(calls);
    }
    if let Some(mode) = plan.sync_failure {
        world.fs.fail_next_sync(mode);
    }
    if let Some((after, mode)) = plan.wal_sync_failure {
        world.fs.fail_wal_sync(after, mode);
    }
    if let Some(prefix) = plan.append_failure {
        world.fs.fail_next_append(Some(prefix));
    }
    if let Some(q) = plan.quota_bytes {
        world.fs.set_quota(Some(world.fs.used_bytes() + q));
    }
    let chaos = plan.flip_after_yields.map(|n| {
        let fs = world.fs.clone();
        shuttle::thread::spawn(move || flip_a_table_bit(&fs, seed, n))
    });
    let mut handles = Vec::new();
    for t in 0..plan.clients {
        let (db, fs, acks) = (db.clone(), world.fs.clone(), acks.clone());
        let ops = plan.ops_per_client;
        handles.push(shuttle::thread::spawn(move || {
            run_client(seed, t, ops, &db, &fs, &acks)
        }));
    }
    // Every client is joined before any error returns: a thread left running would drop its
    // `Db` outside the scheduler.
    let joined: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
    if let Some(c) = chaos {
        let _ = c.join();
    }
    let mut logs: Vec<ClientLog> = Vec::new();
    for j in joined {
        logs.push(j.map_err(|_| fail("a client thread panicked".into()))??);
    }
    let st = db.stats();
    if let Some(u) = world.fs.stats().first_unlinked_use {
        return Err(fail(format!(
            "a removed table was still read (strict unlink): {u}"
        )));
    }
    let db = Arc::try_unwrap(db).map_err(|_| fail("the Db is still shared".into()))?;
    let closed = db.close();
    let ending = if world.fs.is_dead() {
        let power = plan.crash_at.is_none_or(|(_, p)| p);
        crash(&world, seed, power);
        if power {
            "crash point: power loss"
        } else {
            "crash point: process crash"
        }
    } else if plan.power_loss_after_close {
        // Even after a failed close: what a synced write was promised must survive it.
        crash(&world, seed, true);
        if closed.is_ok() {
            "power loss after close"
        } else {
            "power loss after a failed close"
        }
    } else {
        "clean close"
    };
    let power_lost = ending.contains("power loss");
    world.fs.clear_faults();
    world.fs.set_quota(None);
    let reopened = Db::open_with(
        world.env(),
        DB_DIR,
        Options {
            background: Background::Inline,
            ..plan.opts.clone()
        },
    );
    let reopened = match reopened {
        Ok(db) => db,
        // The flipped bit was found: reported, never served. The run ends there.
        Err(e) if e.is_corruption() && flipped(&world.fs) => {
            return Ok(summary(
                &world,
                &plan,
                &st,
                0,
                "corruption detected at open",
            ))
        }
        Err(e) => return Err(fail(format!("reopen after \"{ending}\" failed: {e}"))),
    };
    match oracle::check(&reopened, &logs, power_lost) {
        Ok(()) => {}
        Err(e) if e.contains("corruption") && flipped(&world.fs) => {
            return Ok(summary(
                &world,
                &plan,
                &st,
                0,
                "corruption detected on read",
            ))
        }
        Err(e) => return Err(fail(format!("after {ending}: {e}"))),
    }
    let tables = world
        .fs
        .names(Path::new(DB_DIR))
        .iter()
        .filter(|n| n.ends_with(".sst"))
        .count();
    if tables != reopened.stats().tables {
        return Err(fail(format!(
            "{tables} table files after the reopen, {} live tables",
            reopened.stats().tables
        )));
    }
    let wals_replayed = reopened.stats().recovered_wals;
    drop(reopened);
    Ok(summary(&world, &plan, &st, wals_replayed, ending))
}

/// What a run did, from the first `Db`'s stats and the filesystem's.
fn summary(
    world: &World,
    plan: &Plan,
    st: &sedimentdb::Stats,
    wals_replayed: u64,
    ending: &str,
) -> ThreadedSummary {
    let fs_stats = world.fs.stats();
    ThreadedSummary {
        client_threads: plan.clients as u64,
        writes: st.writes,
        wal_records: st.wal_records,
        groups_by_size: st.commit_groups_by_size,
        wals_replayed,
        write_stalls: st.write_stalls,
        flushes_during_compaction: st.flushes_during_compaction,
        flushes: st.flushes,
        compactions: st.compactions,
        parallel_compactions: st.parallel_compactions,
        ending: ending.into(),
        injected: fs_stats
            .injected
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        trace_hash: fs_stats.trace_hash,
        fs_calls: fs_stats.calls,
    }
}

/// True once a bit was flipped in this run.
fn flipped(fs: &crate::SimFs) -> bool {
    fs.stats().injected.contains_key("bit flip")
}

/// The chaos thread: lets the others run `yields` times, then flips one bit somewhere in the
/// durable bytes of one table file (if any exists by then).
fn flip_a_table_bit(fs: &crate::SimFs, seed: u64, yields: u32) {
    for _ in 0..yields {
        shuttle::thread::yield_now();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x666c_6970_0000_0000);
    let tables: Vec<String> = fs
        .names(Path::new(DB_DIR))
        .into_iter()
        .filter(|n| n.ends_with(".sst"))
        .collect();
    if tables.is_empty() {
        return;
    }
    let name = &tables[rng.next_u64() as usize % tables.len()];
    let path = Path::new(DB_DIR).join(name);
    let len = fs.durable_len(&path).unwrap_or(0);
    if len > 0 {
        fs.flip_bit(
            &path,
            rng.next_u64() as usize % len,
            (rng.next_u64() % 8) as u8,
        );
    }
}

/// A power loss (what survives drawn from the seed) or a process crash.
fn crash(world: &World, seed: u64, power: bool) {
    if power {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x706f_7765_7200_0000);
        world
            .fs
            .power_loss(&mut |n| if n == 0 { 0 } else { rng.next_u64() % n });
    } else {
        world.fs.process_crash();
    }
}
