//! Engine bugs the simulator found, kept as explicit step lists so they stay fixed whatever
//! the workload generator does in the future. (Found by seeds 190 and 2180 of the first seed
//! set; shrunk by hand to the steps below.)
use sedimentdb_sim::runner::run_steps;
use sedimentdb_sim::workload::{Knobs, Step};

fn must_pass(seed: u64, steps: &[Step]) -> sedimentdb_sim::runner::RunSummary {
    let knobs = Knobs::default();
    match run_steps(seed, &knobs, steps) {
        Ok(s) => s,
        Err(f) => panic!("{f}"),
    }
}

/// A bit flip in CURRENT's version field was reported as "unsupported version 1025" instead of
/// corruption (rule 6), because the version was read before the checksum. On a fresh database
/// CURRENT is the only file whose bytes are all vouched for, so `file: 0` targets it.
#[test]
fn seed_190_flipped_version_in_current_is_corruption() {
    let s = must_pass(
        190,
        &[
            Step::Put {
                key: 1,
                len: 10,
                tag: 0,
                sync: true,
            },
            Step::FlipBit {
                file: 0,
                offset: 9,
                bit: 2,
            },
            Step::Reopen,
        ],
    );
    assert!(
        s.stopped_on_corruption,
        "the damage must be detected: {s:?}"
    );
    assert_eq!(s.met.get("corruption detected at open"), Some(&1));
}

/// Five flipped bits in CURRENT's magic made the directory look like someone else's ("not a
/// database") although it held our manifest and WAL: that is damage, and must be corruption.
#[test]
fn seed_2180_damaged_current_magic_beside_our_files_is_corruption() {
    let mut steps: Vec<Step> = (0..5)
        .map(|i| Step::FlipBit {
            file: 0,
            offset: i,
            bit: 0,
        })
        .collect();
    steps.push(Step::Reopen);
    let s = must_pass(2180, &steps);
    assert!(
        s.stopped_on_corruption,
        "the damage must be detected: {s:?}"
    );
}
