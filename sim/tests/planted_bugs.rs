//! Proof that the simulator finds bugs: each planted bug must make some seed fail within the
//! stated bound. Run with `cargo test -p sedimentdb-sim --release --features planted-bugs`.
#![cfg(feature = "planted-bugs")]
use sedimentdb::internals::planted::{plant, Bug};
use sedimentdb_sim::runner::run_seed;

/// Seeds each bug may take before the simulator must have found it.
const BOUND: u64 = 500;

/// Bugs the simulator finds too rarely for the bound: each weakens only the reporting of
/// damage to the newest manifest edit (the next fsync still makes it durable), so only a bit
/// flip in that edit before the next one, then a reopen, shows it (`SkipManifestVouchSync`
/// first failed at seed 3,187 of 5,000 in one measurement; `SkipManifestSync` at none). Listed
/// so the test fails both when another bug survives and when one of these starts being found.
const NOT_YET_FOUND: [Bug; 2] = [Bug::SkipManifestSync, Bug::SkipManifestVouchSync];

fn seeds_to_failure(bug: Bug) -> Option<u64> {
    plant(Some(bug));
    let found = (0..BOUND).find(|&s| run_seed(s).is_err());
    plant(None);
    found.map(|s| s + 1)
}

#[test]
fn every_planted_bug_is_found() {
    let mut table = Vec::new();
    let mut survivors = Vec::new();
    for bug in Bug::ALL {
        let n = seeds_to_failure(bug);
        table.push(format!(
            "| {bug:?} | {} |",
            n.map_or("not found".into(), |n| n.to_string())
        ));
        if n.is_none() {
            survivors.push(bug);
        }
    }
    println!(
        "| planted bug | seeds to first failure |\n|---|---|\n{}",
        table.join("\n")
    );
    assert_eq!(
        survivors, NOT_YET_FOUND,
        "the bugs that survived {BOUND} seeds are not the known ones"
    );
    // And with no bug planted, the same seeds pass.
    for s in 0..20 {
        if let Err(f) = run_seed(s) {
            panic!("{f}");
        }
    }
}
