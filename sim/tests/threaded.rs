//! Threaded simulator runs: the real threaded engine and 1 to 8 client threads under shuttle's
//! scheduler, seeded. Built only with `--cfg shuttle` (`.ci/run` runs it):
//! `RUSTFLAGS="--cfg shuttle" CARGO_TARGET_DIR=target/shuttle cargo test --release -p sedimentdb-sim --test threaded`.
//! Rerun one seed with `SEDIMENTDB_THREADED_SEED=<n>`; more seeds with `SEDIMENTDB_THREADED_SEEDS=<n>`.
#![cfg(shuttle)]
use sedimentdb_sim::threaded::{run_threaded_seed, ThreadedSummary};
use std::collections::BTreeMap;

fn seeds() -> std::ops::Range<u64> {
    if let Some(s) = std::env::var("SEDIMENTDB_THREADED_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return s..s + 1;
    }
    let n = std::env::var("SEDIMENTDB_THREADED_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    0..n
}

#[test]
fn threaded_seeds_keep_every_write_they_must() {
    let mut total = ThreadedSummary::default();
    let mut endings = BTreeMap::new();
    for seed in seeds() {
        match run_threaded_seed(seed) {
            Ok(s) => total.absorb(&s, &mut endings),
            Err(f) => panic!("{f}\n  replay: SEDIMENTDB_THREADED_SEED={seed} RUSTFLAGS=\"--cfg shuttle\" CARGO_TARGET_DIR=target/shuttle cargo test --release -p sedimentdb-sim --test threaded"),
        }
    }
    println!("{total:#?}\nendings: {endings:?}");
    // The races the threaded runs exist for must be reached, or the run proved nothing.
    assert!(
        total.groups_by_size[2] + total.groups_by_size[3] > 0,
        "no commit group of 3 or more"
    );
    assert!(
        total.flushes_during_compaction > 0,
        "no flush raced a compaction"
    );
    assert!(total.wals_replayed > 0, "no WAL replayed");
    assert!(
        total.parallel_compactions > 0,
        "no two compactions ran at once"
    );
    assert!(total.write_stalls > 0, "no writer stalled");
    for ending in [
        "clean close",
        "crash point: power loss",
        "crash point: process crash",
        "power loss after close",
    ] {
        assert!(endings.contains_key(ending), "no run ended in {ending}");
    }
}

#[test]
fn a_threaded_seed_replays_bit_for_bit() {
    for seed in [3, 17, 101] {
        let a = run_threaded_seed(seed).expect("passes");
        let b = run_threaded_seed(seed).expect("passes");
        assert_eq!(a, b, "threaded seed {seed} gave two different runs");
    }
}

/// The bugs only concurrent writers or several WALs in flight reach, found by threaded seeds.
#[cfg(feature = "planted-bugs")]
#[test]
fn threaded_seeds_find_the_concurrency_plants() {
    use sedimentdb::internals::planted::{plant, Bug};
    for bug in [
        Bug::LeaderOnlyInRecord,
        Bug::ReplayOnlyOldestWal,
        Bug::AckBeforeWalSync,
        Bug::DeleteWalBeforeTableDurable,
        Bug::RemoveTablesHeldByReaders,
        Bug::InstallOnStaleVersion,
        Bug::SkipReadChecksum,
        Bug::SkipWalSyncAtRotation,
        Bug::PickClaimedTable,
        Bug::LeadHandOffLost,
    ] {
        plant(Some(bug));
        let found = (0..500).find(|&s| run_threaded_seed(s).is_err());
        plant(None);
        println!(
            "| {bug:?} | {} |",
            found.map_or("not found".into(), |s| (s + 1).to_string())
        );
        assert!(found.is_some(), "{bug:?} survived 500 threaded seeds");
    }
}

/// The fuzzer's twin: random bytes choose the plan and every scheduling decision (bolero,
/// seeded by `BOLERO_RANDOM_SEED` from `.cargo/config.toml`).
#[test]
fn byte_driven_schedules_keep_every_write_they_must() {
    bolero::check!()
        .with_iterations(200)
        .with_max_len(2048)
        .for_each(|data: &[u8]| sedimentdb_sim::harness::threaded_schedule(data));
}
