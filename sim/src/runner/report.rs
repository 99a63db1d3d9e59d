//! What a run reports: [`RunSummary`], the counts of a passing run, and [`Failure`], the first
//! contract violation with everything needed to replay and shrink it.

use super::Runner;
use crate::SimFsStats;
use std::collections::BTreeMap;
use std::fmt;

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
    /// Code probes: how often each rare path was reached (see `PROBES`).
    pub probes: BTreeMap<String, u64>,
    /// Reopens after a crash whose result matched the model.
    pub crashes_recovered: u64,
    /// The run stopped early because the engine detected injected corruption.
    pub stopped_on_corruption: bool,
    /// Hash of every filesystem call: the same seed must give the same value.
    pub trace_hash: u64,
    pub fs_calls: u64,
    /// Steps run, by kind (`Step::Put`, `Step::CursorWalk`, ...).
    pub step_kinds: BTreeMap<String, u64>,
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
        for (k, v) in &o.step_kinds {
            *self.step_kinds.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.probes {
            *self.probes.entry(k.clone()).or_default() += v;
        }
        self.crashes_recovered += o.crashes_recovered;
        self.stopped_on_corruption |= o.stopped_on_corruption;
        self.fs_calls += o.fs_calls;
        self.trace_hash ^= o.trace_hash;
    }

    /// Takes in what the filesystem counted at the end of a run: the faults that fired, the
    /// crashes, the trace hash and the number of calls.
    pub(super) fn add_fs_stats(&mut self, st: &SimFsStats) {
        for (k, v) in &st.injected {
            *self.injected.entry(k.to_string()).or_default() += v;
        }
        if st.power_losses > 0 {
            self.injected.insert("power loss".into(), st.power_losses);
        }
        if st.process_crashes > 0 {
            self.injected
                .insert("process crash".into(), st.process_crashes);
        }
        self.trace_hash = st.trace_hash;
        self.fs_calls = st.calls;
    }
}

/// What kind of contract violation a failure is: planted bugs must each produce the kind
/// that proves them (`sim/tests/planted_bugs.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailureKind {
    /// After a reopen, a write that had to survive (durable, or acknowledged without a power
    /// loss) is missing or replaced by an older value.
    LostWrite,
    /// After a reopen, the database holds a write that was never acknowledged and was refused
    /// (nothing may have reached the disk).
    InventedWrite,
    /// After a reopen, the state is no prefix of the acknowledged writes for another reason (a
    /// hole, a reordering, half a batch).
    NotAPrefix,
    /// Without a crash, a read disagreed with the model.
    WrongRead,
    /// The engine returned an error that no injected fault explains (an I/O error without a
    /// fault, corruption without damage, an open that does not succeed).
    UnexpectedError,
    /// The table files on disk are not exactly the live tables.
    TableFiles,
    /// The raw view broke the tombstone or grace-period rules.
    RawView,
    /// A checkpoint did not open as the acknowledged state at its moment, or an interrupted
    /// one opened as something else.
    Checkpoint,
}

/// A violation of the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
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
            "FAILURE ({:?}): seed {} at step {}: {}",
            self.kind, self.seed, self.step, self.op
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

impl Runner {
    /// The failure at the current step: what the contract expected, what the engine did, and
    /// the faults so far.
    pub(super) fn fail(
        &self,
        kind: FailureKind,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Box<Failure> {
        Box::new(Failure {
            kind,
            seed: self.seed,
            step: self.step,
            op: self.op.clone(),
            expected: expected.into(),
            actual: actual.into(),
            faults: self.faults.clone(),
            planted: self.planted.clone(),
        })
    }
}
