//! Runs a list of steps against a `Db` on `SimFs`, checking every answer against the model, and
//! reports the first violation with everything needed to replay it.

use crate::model::{first_difference, snapshot, Model, Op};
use crate::workload::{key_bytes, value_bytes, Knobs, Step};
use crate::{SyncFailure, World};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sedimentdb::internals::filename::{self, FileKind};
use sedimentdb::internals::record::proven_synced_len;
use sedimentdb::{Background, Db, Error, Options, RawValue, Scan, WriteBatch, WriteOptions};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

const DB_DIR: &str = "/db";

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub steps: usize,
    /// Calls made on the `Db`.
    pub ops: u64,
    /// Faults injected by kind: armed by the workload and fired in the filesystem.
    pub injected: BTreeMap<String, u64>,
    /// How the engine met them: errors it returned, read-only refusals, recoveries.
    pub met: BTreeMap<String, u64>,
    /// Reopens after a crash whose result matched the model.
    pub crashes_recovered: u64,
    /// The run stopped early because the engine detected injected corruption.
    pub stopped_on_corruption: bool,
    /// Hash of every filesystem call: the same seed must give the same value.
    pub trace_hash: u64,
    pub fs_calls: u64,
}

impl RunSummary {
    /// Adds another run's counts into this one.
    pub fn absorb(&mut self, o: &RunSummary) {
        self.steps += o.steps;
        self.ops += o.ops;
        for (k, v) in &o.injected {
            *self.injected.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.met {
            *self.met.entry(k.clone()).or_default() += v;
        }
        self.crashes_recovered += o.crashes_recovered;
        self.stopped_on_corruption |= o.stopped_on_corruption;
        self.fs_calls += o.fs_calls;
        self.trace_hash ^= o.trace_hash;
    }
}

/// A violation of the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub seed: u64,
    pub step: usize,
    pub op: String,
    pub expected: String,
    pub actual: String,
    pub faults: Vec<String>,
    /// The planted bug, if any (for the replay command).
    pub planted: Option<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "FAILURE: seed {} at step {}: {}",
            self.seed, self.step, self.op
        )?;
        writeln!(f, "  expected: {}", self.expected)?;
        writeln!(f, "  actual:   {}", self.actual)?;
        if self.faults.is_empty() {
            writeln!(f, "  faults so far: none")?;
        } else {
            writeln!(f, "  faults so far:")?;
            for x in &self.faults {
                writeln!(f, "    {x}")?;
            }
        }
        let (feat, plant) = match &self.planted {
            Some(b) => (
                " --features planted-bugs".to_string(),
                format!(" --plant {b}"),
            ),
            None => (String::new(), String::new()),
        };
        writeln!(
            f,
            "  replay: cargo run --release -p sedimentdb-sim{feat} -- --seed {}{plant}",
            self.seed
        )?;
        write!(
            f,
            "  shrink: cargo run --release -p sedimentdb-sim{feat} -- --seed {}{plant} --shrink",
            self.seed
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum CrashKind {
    /// A clean close: every acknowledged write must be there.
    Clean,
    /// A process crash: every acknowledged write must be there.
    Process,
    /// A power loss: a prefix holding every durable write.
    Power,
}

enum Flow {
    Continue,
    Stop,
}

struct Runner {
    seed: u64,
    world: World,
    opts: Options,
    db: Option<Db>,
    model: Model,
    chooser: Chooser,
    summary: RunSummary,
    corrupted: bool,
    armed_crash: Option<bool>,
    faults: Vec<String>,
    step: usize,
    op: String,
    planted: Option<String>,
    /// Writes refused in a row because the database went read-only.
    refused: u32,
    /// A scan held open across other steps, and the state it must return.
    held: Option<(Scan, Entries)>,
    grace_ms: u64,
    /// The latest the clock has read: a compaction may have dropped a tombstone then, before a
    /// backward jump.
    clock_high: u64,
}

/// A result whose error is a contract violation.
pub type Checked<T> = Result<T, Box<Failure>>;

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

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
        background: Background::Inline,
        l0_compaction_trigger: knobs.l0_compaction_trigger,
        l0_slowdown_writes_trigger: knobs.l0_compaction_trigger.max(8),
        l0_stop_writes_trigger: knobs.l0_compaction_trigger.max(12),
        level1_size_bytes: knobs.level1_size_bytes,
        table_size_bytes: knobs.table_size_bytes,
        tombstone_grace: std::time::Duration::from_millis(knobs.tombstone_grace_ms),
        ..Options::default()
    };
    let world = World::new();
    world.fs.set_strict_unlink(true);
    let mut r = Runner {
        seed,
        world,
        opts,
        db: None,
        model: Model::new(),
        chooser,
        summary: RunSummary::default(),
        corrupted: false,
        armed_crash: None,
        faults: Vec::new(),
        step: 0,
        op: "open".into(),
        planted: planted_name(),
        refused: 0,
        held: None,
        grace_ms: knobs.tombstone_grace_ms,
        clock_high: 0,
    };
    let result = r.drive(steps);
    (result, r.chooser)
}

impl Runner {
    fn drive(&mut self, steps: &[Step]) -> Checked<RunSummary> {
        let r = self;
        if let Flow::Stop = r.open(CrashKind::Clean)? {
            return Ok(r.summary.clone());
        }
        for (i, s) in steps.iter().enumerate() {
            r.step = i;
            r.op = s.to_rust();
            r.summary.steps += 1;
            if let Flow::Stop = r.exec(s)? {
                break;
            }
            if i % 20 == 19 {
                if let Flow::Stop = r.check_full()? {
                    break;
                }
            }
        }
        if !r.summary.stopped_on_corruption {
            r.check_full()?;
        }
        let st = r.world.fs.stats();
        for (k, v) in &st.injected {
            *r.summary.injected.entry(k.to_string()).or_default() += v;
        }
        if st.power_losses > 0 {
            r.summary
                .injected
                .insert("power loss".into(), st.power_losses);
        }
        if st.process_crashes > 0 {
            r.summary
                .injected
                .insert("process crash".into(), st.process_crashes);
        }
        r.summary.trace_hash = st.trace_hash;
        r.summary.fs_calls = st.calls;
        Ok(r.summary.clone())
    }
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

fn show(v: Option<&Vec<u8>>) -> String {
    match v {
        None => "absent".into(),
        Some(v) if v.len() > 24 => format!("{} bytes {:?}...", v.len(), &v[..24]),
        Some(v) => format!("{v:?}"),
    }
}

impl Runner {
    fn fail(&self, expected: impl Into<String>, actual: impl Into<String>) -> Box<Failure> {
        Box::new(Failure {
            seed: self.seed,
            step: self.step,
            op: self.op.clone(),
            expected: expected.into(),
            actual: actual.into(),
            faults: self.faults.clone(),
            planted: self.planted.clone(),
        })
    }

    fn now(&self) -> u64 {
        sedimentdb::Clock::now_ms(&*self.world.clock)
    }

    fn met(&mut self, what: &str) {
        *self.summary.met.entry(what.to_string()).or_default() += 1;
    }

    fn fault(&mut self, what: String) {
        self.faults.push(format!("step {}: {what}", self.step));
    }

    fn db(&self) -> &Db {
        self.db.as_ref().expect("open between steps")
    }

    /// Reacts to an error from the engine.
    fn on_error(&mut self, e: Error, what: &str) -> Checked<Flow> {
        if self.world.fs.is_dead() {
            self.met("error at the crash point");
            return self.crash_now(None);
        }
        match e {
            Error::Corruption { .. } if self.corrupted => {
                self.met("corruption detected");
                self.summary.stopped_on_corruption = true;
                Ok(Flow::Stop)
            }
            Error::ReadOnly { .. } => {
                self.met("write refused while read-only");
                self.refused += 1;
                if self.refused < 3 {
                    return Ok(Flow::Continue);
                }
                // As an application would: reopen to recover from what is on disk.
                self.refused = 0;
                self.met("reopened after read-only");
                self.close_and_reopen()
            }
            Error::Io { .. } => {
                self.met("I/O error returned");
                Ok(Flow::Continue)
            }
            e => Err(self.fail(
                format!("{what} to succeed or fail with an I/O error"),
                format!("{e}"),
            )),
        }
    }

    /// Applies the armed (or given) crash and reopens.
    fn crash_now(&mut self, power: Option<bool>) -> Checked<Flow> {
        let power = power.or(self.armed_crash.take()).unwrap_or(true);
        let kind = if power {
            let c = &mut self.chooser;
            self.world.fs.power_loss(&mut |n| c.choose(n));
            CrashKind::Power
        } else {
            self.world.fs.process_crash();
            CrashKind::Process
        };
        self.fault(if power {
            "power loss".into()
        } else {
            "process crash".into()
        });
        drop(self.db.take());
        self.open(kind)
    }

    /// Applies the crash armed at a crash point (a power loss unless a process crash was armed).
    fn apply_armed_crash(&mut self, kind: &mut CrashKind, during: &str) {
        let power = self.armed_crash.take().unwrap_or(true);
        if power {
            let c = &mut self.chooser;
            self.world.fs.power_loss(&mut |n| c.choose(n));
            *kind = CrashKind::Power;
        } else {
            self.world.fs.process_crash();
            *kind = (*kind).max(CrashKind::Process);
        }
        let what = if power { "power loss" } else { "process crash" };
        self.fault(format!("{what} during {during}"));
    }

    fn open(&mut self, mut kind: CrashKind) -> Checked<Flow> {
        let mut attempts = 0;
        let (db, actual, raw) = loop {
            attempts += 1;
            self.summary.ops += 1;
            let e = match Db::open_with(self.world.env(), DB_DIR, self.opts.clone()) {
                Ok(db) => {
                    let raw: Result<Vec<_>, _> = db.scan_raw::<&[u8], _>(..).collect();
                    match (snapshot(&db), raw) {
                        (Ok(actual), Ok(raw)) => break (db, actual, raw),
                        (Err(e), _) | (_, Err(e)) => {
                            drop(db);
                            e
                        }
                    }
                }
                Err(e) => e,
            };
            if attempts > 6 {
                return Err(self.fail(
                    "open and a full scan to succeed once faults are cleared",
                    format!("{e}"),
                ));
            }
            if self.world.fs.is_dead() {
                self.apply_armed_crash(&mut kind, "open");
                continue;
            }
            match e {
                Error::Corruption { .. } if self.corrupted => {
                    self.met("corruption detected at open");
                    self.summary.stopped_on_corruption = true;
                    return Ok(Flow::Stop);
                }
                Error::Io { .. } => {
                    self.met("open failed on an I/O fault, retried");
                    self.world.fs.clear_faults();
                    self.world.fs.set_quota(None);
                }
                e => return Err(self.fail("open and a full scan to succeed", format!("{e}"))),
            }
        };
        let keep_all = kind != CrashKind::Power;
        let raw_tombs: BTreeMap<Vec<u8>, u64> = raw
            .into_iter()
            .filter_map(|e| match e.value {
                RawValue::Tombstone { deleted_at_ms } => Some((e.key, deleted_at_ms)),
                RawValue::Put(_) => None,
            })
            .collect();
        let (now, high, grace) = (self.now(), self.clock_high, self.grace_ms);
        // The engine's tombstones are the candidate's, less those past their grace period,
        // which a compaction may have dropped.
        let tombs_ok = |want: &BTreeMap<Vec<u8>, u64>| {
            raw_tombs.iter().all(|(k, t)| want.get(k) == Some(t))
                && want.iter().all(|(k, t)| {
                    raw_tombs.contains_key(k) || high.max(now) >= t.saturating_add(grace)
                })
        };
        if let Err(msg) = self.model.recover_with(&actual, keep_all, tombs_ok) {
            return Err(self.fail(
                match kind {
                    CrashKind::Power => {
                        "a prefix of the acknowledged writes holding every durable one (rule 2)"
                    }
                    _ => "every acknowledged write (no power loss)",
                },
                msg,
            ));
        }
        if kind != CrashKind::Clean {
            self.summary.crashes_recovered += 1;
            self.met("crash recovered");
        }
        // No orphaned and no doubly counted tables: the files on disk are exactly the live ones.
        let files = self
            .world
            .fs
            .names(Path::new(DB_DIR))
            .iter()
            .filter(|n| matches!(filename::parse(n), Some(FileKind::Table(_))))
            .count();
        let live = db.stats().tables;
        if files != live {
            return Err(self.fail(
                format!("{live} table files after open, one per live table"),
                format!("{files} table files"),
            ));
        }
        self.db = Some(db);
        self.check_points()
    }

    /// Point reads of every model key agree with the model.
    fn check_points(&mut self) -> Checked<Flow> {
        let keys: Vec<Vec<u8>> = self.model.state().keys().take(300).cloned().collect();
        for k in keys {
            match self.db().get(&k) {
                Ok(v) if v.as_ref() == self.model.get(&k) => {}
                Ok(v) => {
                    return Err(self.fail(
                        format!(
                            "get {:?} = {}",
                            String::from_utf8_lossy(&k),
                            show(self.model.get(&k))
                        ),
                        show(v.as_ref()),
                    ))
                }
                Err(e) => return self.on_error(e, "get"),
            }
        }
        Ok(Flow::Continue)
    }

    /// A full scan equals the model.
    fn check_full(&mut self) -> Checked<Flow> {
        if self.db.is_none() {
            return Ok(Flow::Continue);
        }
        match snapshot(self.db()) {
            Ok(actual) if &actual == self.model.state() => Ok(Flow::Continue),
            Ok(actual) => Err(self.fail(
                format!(
                    "full scan equal to the model ({} keys)",
                    self.model.state().len()
                ),
                first_difference(self.model.state(), &actual),
            )),
            Err(e) => self.on_error(e, "full scan"),
        }
    }

    /// The outcome of a call that makes every acknowledged write durable when it succeeds.
    fn made_durable(&mut self, r: Result<(), Error>, what: &str) -> Checked<Flow> {
        self.summary.ops += 1;
        match r {
            Ok(()) => {
                self.model.mark_durable();
                Ok(Flow::Continue)
            }
            Err(e) => self.on_error(e, what),
        }
    }

    /// Closes the database cleanly and opens it again (an application's restart).
    fn close_and_reopen(&mut self) -> Checked<Flow> {
        self.held = None;
        let db = self.db.take().expect("open between steps");
        if db.close().is_err() {
            if self.world.fs.is_dead() {
                return self.crash_now(None);
            }
            self.met("close reported an error");
        }
        self.open(CrashKind::Clean)
    }

    fn write(&mut self, b: WriteBatch, ops: Vec<Op>, sync: bool) -> Checked<Flow> {
        self.summary.ops += 1;
        let time = sedimentdb::Clock::now_ms(&*self.world.clock);
        match self.db().write(b, &WriteOptions { sync }) {
            Ok(()) => {
                self.model.ack(ops, sync, time);
                Ok(Flow::Continue)
            }
            Err(e @ Error::ReadOnly { .. }) => self.on_error(e, "write"),
            Err(e) => {
                // The write may or may not have reached the disk.
                self.model.failed(ops, time);
                self.on_error(e, "write")
            }
        }
    }

    /// Rule 5 on the raw view: every entry agrees with the model; every tombstone younger than
    /// the grace period is there with its deletion time; after a full compaction, no older one.
    fn check_raw(&mut self, after_full_compaction: bool) -> Checked<Flow> {
        let raw: Result<Vec<_>, _> = self.db().scan_raw::<&[u8], _>(..).collect();
        let raw = match raw {
            Ok(r) => r,
            Err(e) => return self.on_error(e, "raw scan"),
        };
        let now = sedimentdb::Clock::now_ms(&*self.world.clock);
        let mut seen = std::collections::BTreeSet::new();
        for e in &raw {
            match &e.value {
                RawValue::Put(v) => {
                    if self.model.get(&e.key) != Some(v) {
                        return Err(self.fail(
                            format!(
                                "raw view value of {:?} = {}",
                                String::from_utf8_lossy(&e.key),
                                show(self.model.get(&e.key))
                            ),
                            show(Some(v)),
                        ));
                    }
                }
                RawValue::Tombstone { deleted_at_ms } => {
                    let want = self.model.tombstones().get(&e.key);
                    if self.model.get(&e.key).is_some() || want != Some(deleted_at_ms) {
                        return Err(self.fail(
                            format!(
                                "tombstone of {:?} deleted at {want:?}",
                                String::from_utf8_lossy(&e.key)
                            ),
                            format!("tombstone deleted at {deleted_at_ms}"),
                        ));
                    }
                    if after_full_compaction && now >= deleted_at_ms.saturating_add(self.grace_ms) {
                        return Err(self.fail(
                            "no tombstone past its grace period after a full compaction (rule 5)",
                            format!(
                                "{:?} deleted at {deleted_at_ms}, now {now}, grace {} ms",
                                String::from_utf8_lossy(&e.key),
                                self.grace_ms
                            ),
                        ));
                    }
                    seen.insert(e.key.clone());
                }
            }
        }
        let live = raw
            .iter()
            .filter(|e| matches!(e.value, RawValue::Put(_)))
            .count();
        if live != self.model.state().len() {
            return Err(self.fail(
                format!("{} live keys in the raw view", self.model.state().len()),
                format!("{live}"),
            ));
        }
        let high = self.clock_high.max(now);
        for (k, t) in self.model.tombstones() {
            if high < t.saturating_add(self.grace_ms) && !seen.contains(k) {
                return Err(self.fail(
                    "every tombstone younger than the grace period in the raw view (rule 5)",
                    format!(
                        "{:?} deleted at {t} is missing at {now} (grace {} ms)",
                        String::from_utf8_lossy(k),
                        self.grace_ms
                    ),
                ));
            }
        }
        Ok(Flow::Continue)
    }

    fn exec(&mut self, s: &Step) -> Checked<Flow> {
        if self.db.is_none() {
            if let Flow::Stop = self.open(CrashKind::Clean)? {
                return Ok(Flow::Stop);
            }
        }
        match s {
            Step::Put {
                key,
                len,
                tag,
                sync,
            } => {
                let (k, v) = (key_bytes(*key), value_bytes(*key, *tag, *len));
                let mut b = WriteBatch::new();
                b.put(&k, &v);
                self.write(b, vec![Op::Put(k, v)], *sync)
            }
            Step::Delete { key, sync } => {
                let k = key_bytes(*key);
                let mut b = WriteBatch::new();
                b.delete(&k);
                self.write(b, vec![Op::Delete(k)], *sync)
            }
            Step::Batch { ops, tag, sync } => {
                let mut b = WriteBatch::new();
                let mut mops = Vec::new();
                for (key, v) in ops {
                    let k = key_bytes(*key);
                    match v {
                        Some(len) => {
                            let v = value_bytes(*key, *tag, *len);
                            b.put(&k, &v);
                            mops.push(Op::Put(k, v));
                        }
                        None => {
                            b.delete(&k);
                            mops.push(Op::Delete(k));
                        }
                    }
                }
                self.write(b, mops, *sync)
            }
            Step::Get { key } => {
                self.summary.ops += 1;
                let k = key_bytes(*key);
                match self.db().get(&k) {
                    Ok(v) if v.as_ref() == self.model.get(&k) => Ok(Flow::Continue),
                    Ok(v) => Err(self.fail(
                        format!("get = {}", show(self.model.get(&k))),
                        show(v.as_ref()),
                    )),
                    Err(e) => self.on_error(e, "get"),
                }
            }
            Step::Scan { from, to } => {
                self.summary.ops += 1;
                let lo = from.map(key_bytes);
                let hi = to.map(key_bytes);
                let range = (bound(&lo, true), bound(&hi, false));
                let got: Result<Vec<_>, _> = self.db().scan::<&Vec<u8>, _>(range).collect();
                match got {
                    Ok(got) => {
                        let want: Vec<(Vec<u8>, Vec<u8>)> = match (&lo, &hi) {
                            (Some(l), Some(h)) if l >= h => Vec::new(),
                            _ => self
                                .model
                                .state()
                                .range::<Vec<u8>, _>(range)
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                        };
                        if got == want {
                            Ok(Flow::Continue)
                        } else {
                            let g: BTreeMap<_, _> = got.into_iter().collect();
                            let w: BTreeMap<_, _> = want.into_iter().collect();
                            Err(self.fail("scan equal to the model", first_difference(&w, &g)))
                        }
                    }
                    Err(e) => self.on_error(e, "scan"),
                }
            }
            Step::Sync => {
                let r = self.db().sync();
                self.made_durable(r, "sync")
            }
            Step::Flush => {
                let r = self.db().flush();
                self.made_durable(r, "flush")
            }
            Step::Reopen => {
                self.summary.ops += 1;
                self.close_and_reopen()
            }
            Step::PowerLoss => self.crash_now(Some(true)),
            Step::ProcessCrash => self.crash_now(Some(false)),
            Step::CrashAfterCalls { calls, power } => {
                self.world.fs.die_after_calls(u64::from(*calls));
                self.armed_crash = Some(*power);
                self.fault(format!(
                    "armed: {} at the {calls}-th filesystem call from here",
                    if *power {
                        "power loss"
                    } else {
                        "process crash"
                    }
                ));
                Ok(Flow::Continue)
            }
            Step::FailSync { drop_pages } => {
                self.world.fs.fail_next_sync(if *drop_pages {
                    SyncFailure::DropPages
                } else {
                    SyncFailure::KeepPages
                });
                self.fault(format!(
                    "armed: next fsync fails (drop pages: {drop_pages})"
                ));
                Ok(Flow::Continue)
            }
            Step::FailAppend { prefix } => {
                self.world.fs.fail_next_append(Some(*prefix as usize));
                self.fault(format!("armed: next append fails after {prefix} bytes"));
                Ok(Flow::Continue)
            }
            Step::DiskFull { free_bytes } => {
                let used = self.world.fs.used_bytes();
                self.world.fs.set_quota(Some(used + u64::from(*free_bytes)));
                self.fault(format!("disk full: {free_bytes} bytes free"));
                Ok(Flow::Continue)
            }
            Step::SpaceReturns => {
                self.world.fs.set_quota(None);
                Ok(Flow::Continue)
            }
            Step::FlipBit { file, offset, bit } => {
                self.flip(*file, *offset, *bit);
                Ok(Flow::Continue)
            }
            Step::ClockForward { ms } => {
                self.world.clock.advance(*ms);
                Ok(Flow::Continue)
            }
            Step::ClockBack { ms } => {
                self.clock_high = self.clock_high.max(self.now());
                self.world.clock.rewind(*ms);
                Ok(Flow::Continue)
            }
            Step::CompactStep => {
                self.summary.ops += 1;
                match self.db().maintenance_step() {
                    Ok(_) => Ok(Flow::Continue),
                    Err(e) => self.on_error(e, "maintenance step"),
                }
            }
            Step::Compact => {
                self.summary.ops += 1;
                match self.db().compact() {
                    Ok(()) => Ok(Flow::Continue),
                    Err(e) => self.on_error(e, "compact"),
                }
            }
            Step::CompactRange { from, to } => {
                self.summary.ops += 1;
                let lo = from.map(key_bytes);
                let hi = to.map(key_bytes);
                let range = (bound(&lo, true), bound(&hi, true));
                match self.db().compact_range::<&Vec<u8>, _>(range) {
                    Ok(()) => {
                        // compact_range flushes first: everything acknowledged is durable.
                        self.model.mark_durable();
                        self.check_raw(from.is_none() && to.is_none())
                    }
                    Err(e) => self.on_error(e, "compact_range"),
                }
            }
            Step::ScanHold => {
                if self.held.is_none() {
                    let want: Vec<_> = self
                        .model
                        .state()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    self.held = Some((self.db().iter(), want));
                }
                Ok(Flow::Continue)
            }
            Step::ScanFinish => {
                let Some((scan, want)) = self.held.take() else {
                    return Ok(Flow::Continue);
                };
                self.summary.ops += 1;
                let got: Result<Vec<_>, _> = scan.collect();
                match got {
                    Ok(got) if got == want => Ok(Flow::Continue),
                    Ok(got) => {
                        let g: BTreeMap<_, _> = got.into_iter().collect();
                        let w: BTreeMap<_, _> = want.into_iter().collect();
                        Err(self.fail(
                            "a held scan to return the state as of its start",
                            first_difference(&w, &g),
                        ))
                    }
                    Err(e) => self.on_error(e, "held scan"),
                }
            }
            Step::RawScan => {
                self.summary.ops += 1;
                self.check_raw(false)
            }
        }
    }

    /// Flips a bit in durable data that every checksum must cover: anywhere in a table or
    /// `CURRENT`, and in a log below the length its records vouch was synced (past it, damage
    /// and a torn write look the same to any log format).
    fn flip(&mut self, file: u32, offset: u32, bit: u8) {
        let fs = &self.world.fs;
        let mut eligible: Vec<(String, usize)> = Vec::new();
        for name in fs.names(Path::new(DB_DIR)) {
            let path = Path::new(DB_DIR).join(&name);
            let Some(durable) = fs.durable_len(&path) else {
                continue;
            };
            let len = match filename::parse(&name) {
                Some(FileKind::Table(_) | FileKind::Current) => durable,
                Some(FileKind::Wal(n) | FileKind::Manifest(n)) => {
                    let data = fs.read_file(&path).unwrap_or_default();
                    let data = &data[..durable.min(data.len())];
                    proven_synced_len(data, n) as usize
                }
                _ => 0,
            };
            if len > 0 {
                eligible.push((name, len));
            }
        }
        if eligible.is_empty() {
            return;
        }
        let (name, len) = &eligible[file as usize % eligible.len()];
        let off = offset as usize % len;
        if fs.flip_bit(&Path::new(DB_DIR).join(name), off, bit) {
            self.corrupted = true;
            let name = name.clone();
            self.fault(format!("bit {bit} flipped at offset {off} of {name}"));
        }
    }
}
