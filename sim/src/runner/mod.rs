//! The runner: runs a list of steps against a `Db` on `SimFs`, checking every answer against the
//! model, and reports the first violation with everything needed to replay it.
//!
//! This file owns the run itself: the `Runner` state, the entry points ([`run_seed`],
//! [`run_steps`], [`run_steps_with`]), the [`Chooser`] that decides what survives a power loss,
//! and the drive loop. The rest has one file per idea:
//!
//! - `exec`: executes each [`Step`] against the `Db`, recording writes in the model;
//! - `faults`: arms the filesystem's faults, flips bits, and the one crash routine;
//! - `open`: opens and reopens the `Db`, retrying through the faults that fire meanwhile;
//! - `oracle`: every check against the model, and which engine errors are acceptable;
//! - `report`: [`RunSummary`], [`Failure`] and how a failure is shown.

mod exec;
mod faults;
mod open;
mod oracle;
mod reads;
mod report;

pub use report::{Failure, FailureKind, RunSummary};

use crate::model::Model;
use crate::workload::{Knobs, Step};
use crate::World;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sedimentdb::internals::filename::{self, FileKind};
use sedimentdb::{Background, Db, Options, Scan, Snapshot};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The code probes every long enough run of seeds must reach: rare paths of the engine that a
/// run reaching none of them would leave untested (`sim/tests/seeds.rs` fails naming any that
/// was never hit).
pub const PROBES: &[&str] = &[
    "commit group of 2 writers",
    "commit group of 3 or more writers",
    "several WALs replayed at open",
    "torn WAL tail cut at open",
    "writer stalled for a flush",
    "close with immutable memtables waiting",
    "crash inside recovery",
    "held scan kept a removed table",
    "read-only after a failed append",
    "read-only after a failed sync",
    "read-only after a failed sync_dir",
    "snapshot read a version kept only for it",
    "snapshot read after a compaction",
    "range tombstone in a table",
    "range tombstone dropped by compaction",
    "cursor changed direction",
    "checkpoint with hard-linked tables",
    "checkpoint with copied tables",
    "checkpoint of waiting immutable memtables",
    "interrupted checkpoint refused at open",
    "block cache hit",
    "block cache three quarters full",
    "scan that left the block cache as it was",
    "trivial move",
    "tables below an empty level 1",
    "data block compressed",
    "data block left raw as compression did not pay",
    "WAL records ended at pre-sized zeros at open",
    "pre-sized WAL grown",
    "WAL record compressed",
    "compressed WAL records replayed at open",
    "tombstone dropped by compaction",
    "tombstone dropped after a trivial move",
    "scan moved on to a level's next table",
    "scan moved back to a level's previous table",
    "sequence numbers zeroed at the bottom",
    "sequence numbers zeroed beside range tombstones in tables",
    "snapshot read after sequence numbers were zeroed",
];

/// What the last close or crash promises about the state a reopen must find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum CrashKind {
    /// A clean close: every acknowledged write must be there.
    Clean,
    /// A process crash: every acknowledged write must be there.
    Process,
    /// A power loss: a prefix holding every durable write.
    Power,
}

/// Whether the run goes on after a step.
enum Flow {
    Continue,
    Stop,
}

/// The state of one run.
struct Runner {
    seed: u64,
    world: World,
    opts: Options,
    db: Option<Db>,
    model: Model,
    chooser: Chooser,
    summary: RunSummary,
    corrupted: bool,
    /// Logs (WALs, manifests) holding a flipped bit no open has read yet. One flip per log at
    /// a time: two flips at a log's tail (the newest record and the one vouching for it) are
    /// the blind spot every log format shares (`docs/FAULTS.md`).
    damaged_logs: BTreeSet<String>,
    armed_crash: Option<bool>,
    faults: Vec<String>,
    step: usize,
    op: String,
    planted: Option<String>,
    /// Writes refused in a row because the database went read-only.
    refused: u32,
    /// A scan held open across other steps, and the state it must return.
    held: Option<(Scan, Entries)>,
    /// Snapshots held across other steps, oldest first, each with the model's state when it
    /// was taken.
    snaps: Vec<(Snapshot, KeyValues)>,
    /// Checkpoints taken so far (each goes into its own directory).
    checkpoints: u32,
    grace_ms: u64,
    /// The latest the clock has read: a compaction may have dropped a tombstone then, before a
    /// backward jump.
    clock_high: u64,
    /// Per manifest file, its durable length when the last step ended: every edit the engine
    /// acted on (deleting WALs and tables on its strength) lies below it, and must be vouched
    /// for by a synced record after it, so damage there must be reported, never cut.
    manifest_acted_len: BTreeMap<String, usize>,
    /// Write stalls the open `Db` has counted so far.
    stalls: u64,
    /// The database's directory on `SimFs`: absolute, under ancestors that do not exist yet,
    /// or relative (drawn per seed: the open must make every directory it creates durable).
    db_dir: PathBuf,
    /// Faults the filesystem had fired when the current step began: an I/O error is accepted
    /// only if one fired since.
    injected_before_step: u64,
}

/// A result whose error is a contract violation.
pub type Checked<T> = Result<T, Box<Failure>>;

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// A state of the model: every live key and its value.
type KeyValues = BTreeMap<Vec<u8>, Vec<u8>>;

/// Decides what survives a power loss: a seeded RNG, or a script of choices (for enumerating
/// every crash state).
pub enum Chooser {
    Rng(Box<ChaCha8Rng>),
    /// Follows `script`, then answers 0; records the arity of every choice it was asked.
    Script {
        script: Vec<u64>,
        asked: Vec<u64>,
    },
}

impl Chooser {
    fn choose(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        match self {
            Chooser::Rng(r) => r.next_u64() % n,
            Chooser::Script { script, asked } => {
                let i = asked.len();
                asked.push(n);
                script.get(i).copied().unwrap_or(0).min(n - 1)
            }
        }
    }
}

/// Runs `steps` with the engine options of `knobs`; `Ok` if every check passed.
pub fn run_steps(seed: u64, knobs: &Knobs, steps: &[Step]) -> Checked<RunSummary> {
    let chooser = Chooser::Rng(Box::new(ChaCha8Rng::seed_from_u64(
        seed ^ 0x6368_6f69_6365_7300,
    )));
    run_steps_with(seed, knobs, steps, chooser).0
}

/// Runs `steps` with a given chooser; returns the chooser too (a script records the arities
/// it was asked).
pub fn run_steps_with(
    seed: u64,
    knobs: &Knobs,
    steps: &[Step],
    chooser: Chooser,
) -> (Checked<RunSummary>, Chooser) {
    let opts = Options {
        memtable_size_bytes: knobs.memtable_size_bytes,
        block_size_bytes: knobs.block_size_bytes,
        background: if knobs.manual_background {
            Background::Manual
        } else {
            Background::Inline
        },
        l0_compaction_trigger: knobs.l0_compaction_trigger,
        l0_slowdown_writes_trigger: knobs.l0_compaction_trigger.max(8),
        l0_stop_writes_trigger: knobs.l0_compaction_trigger.max(12),
        level1_size_bytes: knobs.level1_size_bytes,
        table_size_bytes: knobs.table_size_bytes,
        tombstone_grace: std::time::Duration::from_millis(knobs.tombstone_grace_ms),
        block_cache_bytes: knobs.block_cache_bytes,
        dynamic_level_bytes: knobs.dynamic_level_bytes,
        compression_per_level: knobs.compression_per_level.clone(),
        wal_preallocate_bytes: knobs.wal_preallocate_bytes,
        wal_compression: knobs.wal_compression,
        ..Options::default()
    };
    let world = World::new();
    world.fs.set_strict_unlink(true);
    world.fs.set_links_supported(knobs.links_supported);
    let mut r = Runner {
        seed,
        world,
        opts,
        db: None,
        model: Model::new(),
        chooser,
        summary: RunSummary::default(),
        corrupted: false,
        damaged_logs: BTreeSet::new(),
        armed_crash: None,
        faults: Vec::new(),
        step: 0,
        op: "open".into(),
        planted: planted_name(),
        refused: 0,
        held: None,
        snaps: Vec::new(),
        checkpoints: 0,
        grace_ms: knobs.tombstone_grace_ms,
        clock_high: 0,
        manifest_acted_len: BTreeMap::new(),
        stalls: 0,
        injected_before_step: 0,
        db_dir: PathBuf::from(knobs.db_dir),
    };
    let result = r.drive(steps);
    (result, r.chooser)
}

/// Runs seed `seed` with its own knobs and steps.
pub fn run_seed(seed: u64) -> Checked<RunSummary> {
    let knobs = Knobs::for_seed(seed);
    let steps = crate::workload::generate(seed, &knobs);
    run_steps(seed, &knobs, &steps)
}

#[cfg(feature = "planted-bugs")]
fn planted_name() -> Option<String> {
    crate::planted_now().map(|b| format!("{b:?}"))
}

#[cfg(not(feature = "planted-bugs"))]
fn planted_name() -> Option<String> {
    None
}

/// A range end: open if `None`.
fn bound(k: &Option<Vec<u8>>, inclusive: bool) -> std::ops::Bound<&Vec<u8>> {
    match k {
        None => std::ops::Bound::Unbounded,
        Some(k) if inclusive => std::ops::Bound::Included(k),
        Some(k) => std::ops::Bound::Excluded(k),
    }
}

impl Runner {
    /// Opens the database, runs every step (a full scan every 20 and at the end), and adds up
    /// what the filesystem saw.
    fn drive(&mut self, steps: &[Step]) -> Checked<RunSummary> {
        if let Flow::Stop = self.open(CrashKind::Clean)? {
            return Ok(self.summary.clone());
        }
        for (i, s) in steps.iter().enumerate() {
            self.step = i;
            self.op = s.to_rust();
            self.summary.steps += 1;
            let kind = self
                .op
                .split([' ', '{'])
                .next()
                .unwrap_or_default()
                .to_string();
            *self.summary.step_kinds.entry(kind).or_default() += 1;
            self.injected_before_step = self.world.fs.stats().injected_total();
            if let Flow::Stop = self.exec(s)? {
                break;
            }
            self.note_manifest_lengths();
            self.note_stalls();
            if i % 20 == 19 {
                if let Flow::Stop = self.check_full()? {
                    break;
                }
            }
        }
        if !self.summary.stopped_on_corruption {
            self.check_full()?;
        }
        let st = self.world.fs.stats();
        self.summary.add_fs_stats(&st);
        Ok(self.summary.clone())
    }

    fn now(&self) -> u64 {
        sedimentdb::Clock::now_ms(&*self.world.clock)
    }

    /// Counts one way the engine met a fault.
    fn met(&mut self, what: &str) {
        *self.summary.met.entry(what.to_string()).or_default() += 1;
    }

    /// Probes a stall if the open `Db` counted one since the last look, and the range
    /// tombstones its tables hold and its compactions dropped.
    fn note_stalls(&mut self) {
        let Some(st) = self.db.as_ref().map(|db| db.stats()) else {
            return;
        };
        if st.write_stalls > self.stalls {
            self.probe("writer stalled for a flush");
        }
        self.stalls = st.write_stalls;
        if st.table_range_tombstones > 0 {
            self.probe("range tombstone in a table");
        }
        if st.range_tombstones_dropped > 0 {
            self.probe("range tombstone dropped by compaction");
        }
        if st.block_cache_hits > 0 {
            self.probe("block cache hit");
        }
        if st.trivial_moves > 0 {
            self.probe("trivial move");
        }
        if st.tombstones_dropped > 0 {
            self.probe("tombstone dropped by compaction");
            if st.trivial_moves > 0 {
                self.probe("tombstone dropped after a trivial move");
            }
        }
        if st.seqs_zeroed > 0 {
            self.probe("sequence numbers zeroed at the bottom");
            if st.table_range_tombstones > 0 {
                self.probe("sequence numbers zeroed beside range tombstones in tables");
            }
        }
        if st.level_table_steps[0] > 0 {
            self.probe("scan moved on to a level's next table");
        }
        if st.level_table_steps[1] > 0 {
            self.probe("scan moved back to a level's previous table");
        }
        if st.blocks_compressed > 0 {
            self.probe("data block compressed");
        }
        let step = self.opts.wal_preallocate_bytes as usize;
        if step > 0 {
            let fs = &self.world.fs;
            let grown = fs.names(self.db_dir.as_path()).iter().any(|n| {
                matches!(filename::parse(n), Some(FileKind::Wal(_)))
                    && fs.len_of(&self.db_dir.join(n)).is_some_and(|l| l > step)
            });
            if grown {
                self.probe("pre-sized WAL grown");
            }
        }
        if st.recovered_zero_tails > 0 {
            self.probe("WAL records ended at pre-sized zeros at open");
        }
        if st.wal_records_compressed > 0 {
            self.probe("WAL record compressed");
        }
        if st.recovered_compressed_records > 0 {
            self.probe("compressed WAL records replayed at open");
        }
        if st.blocks_stored_raw > 0 {
            self.probe("data block left raw as compression did not pay");
        }
        let deepest = st.levels.iter().rposition(|l| l.tables > 0).unwrap_or(0);
        if deepest >= 2 && st.levels.get(1).is_some_and(|l| l.tables == 0) {
            self.probe("tables below an empty level 1");
        }
        if st.block_cache_capacity > 0 && st.block_cache_bytes * 4 >= st.block_cache_capacity * 3 {
            self.probe("block cache three quarters full");
        }
    }

    /// Counts a rare path reached (a code probe, as FoundationDB's `CODE_PROBE`).
    fn probe(&mut self, what: &str) {
        *self.summary.probes.entry(what.to_string()).or_default() += 1;
    }

    /// Records a fault for the failure report.
    fn fault(&mut self, what: String) {
        self.faults.push(format!("step {}: {what}", self.step));
    }

    fn db(&self) -> &Db {
        self.db.as_ref().expect("open between steps")
    }
}
