//! The fixed seed set: every seed runs its own swarm-chosen workload with crashes, fsync
//! failures, I/O errors, disk full and bit flips, checked against the model. Together they must
//! inject every fault kind. Rerun one with `cargo run --release -p sedimentdb-sim -- --seed N`.
use sedimentdb_sim::runner::{run_seed, RunSummary, PROBES};

/// Seeds per test function; four functions let the test harness use both cores.
const SEEDS_PER_PART: u64 = 1000;

fn run_part(part: u64) -> RunSummary {
    let mut total = RunSummary::default();
    for seed in part * SEEDS_PER_PART..(part + 1) * SEEDS_PER_PART {
        match run_seed(seed) {
            Ok(s) => total.absorb(&s),
            Err(f) => panic!("{f}"),
        }
    }
    total
}

fn assert_kinds(total: &RunSummary, kinds: &[&str]) {
    for k in kinds {
        assert!(
            total.injected.get(*k).copied().unwrap_or(0) > 0,
            "no {k:?} injected: {:?}",
            total.injected
        );
    }
    assert!(total.crashes_recovered > 100, "{total:?}");
    // Every kind of step the workload draws ran.
    let steps_missing: Vec<_> = STEP_KINDS
        .iter()
        .filter(|k| total.step_kinds.get(**k).copied().unwrap_or(0) == 0)
        .collect();
    assert!(
        steps_missing.is_empty(),
        "steps never run: {steps_missing:?} (ran: {:?})",
        total.step_kinds
    );
    // Every code probe must be reached within one part's seeds.
    let missing: Vec<_> = PROBES
        .iter()
        .filter(|p| total.probes.get(**p).copied().unwrap_or(0) == 0)
        .collect();
    assert!(
        missing.is_empty(),
        "code probes never reached: {missing:?} (reached: {:?})",
        total.probes
    );
}

/// Every kind of step `workload::generate` draws.
const STEP_KINDS: &[&str] = &[
    "Step::Put",
    "Step::Delete",
    "Step::Batch",
    "Step::Get",
    "Step::Scan",
    "Step::Sync",
    "Step::Flush",
    "Step::Reopen",
    "Step::PowerLoss",
    "Step::ProcessCrash",
    "Step::CrashAfterCalls",
    "Step::FailSync",
    "Step::FailAppend",
    "Step::DiskFull",
    "Step::SpaceReturns",
    "Step::FlipBit",
    "Step::FlipNewestEdit",
    "Step::TableWriteFault",
    "Step::LatentReadError",
    "Step::ClockForward",
    "Step::ClockBack",
    "Step::CompactStep",
    "Step::Compact",
    "Step::CompactRange",
    "Step::ScanHold",
    "Step::ScanFinish",
    "Step::RawScan",
    "Step::Group",
    "Step::DeleteRange",
    "Step::ScanRev",
    "Step::Prefix",
    "Step::CursorWalk",
    "Step::SnapshotTake",
    "Step::SnapshotRead",
    "Step::SnapshotRelease",
    "Step::Checkpoint",
];

const ALL_KINDS: &[&str] = &[
    "power loss",
    "process crash",
    "crash point reached",
    "fsync error (pages kept)",
    "fsync error (pages dropped)",
    "directory fsync error",
    "write error",
    "short write",
    "disk full",
    "bit flip",
    "lost write",
    "misdirected write",
    "latent read error",
];

#[test]
fn seeds_0_to_999() {
    assert_kinds(&run_part(0), ALL_KINDS);
}

#[test]
fn seeds_1000_to_1999() {
    assert_kinds(&run_part(1), ALL_KINDS);
}

#[test]
fn seeds_2000_to_2999() {
    assert_kinds(&run_part(2), ALL_KINDS);
}

#[test]
fn seeds_3000_to_3999() {
    assert_kinds(&run_part(3), ALL_KINDS);
}
