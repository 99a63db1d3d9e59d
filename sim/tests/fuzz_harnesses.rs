//! The fuzz harnesses (`sim/src/harness/`) under `cargo test`: each runs on a bounded number
//! of random inputs through bolero (seeded by `BOLERO_RANDOM_SEED`, set in `.cargo/config.toml`;
//! a failure prints the seed that replays it), then on every committed corpus input and every
//! regression input a fuzzer ever found (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`).
use bolero::generator::*;
use sedimentdb_sim::harness;
use std::path::PathBuf;

/// Runs `f` on `n` random inputs of up to `max_len` bytes (bolero's own default tops out at 64).
fn random_inputs(n: usize, max_len: usize, f: fn(&[u8])) {
    bolero::check!()
        .with_generator(produce::<Vec<u8>>().with().len(0usize..max_len))
        .with_iterations(n)
        .for_each(|data: &Vec<u8>| f(data));
}

fn replay_committed(name: &str, f: fn(&[u8])) -> usize {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for kind in ["corpus", "regressions"] {
        let dir = root.join(kind).join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for p in files {
            let data = std::fs::read(&p).unwrap();
            let r = std::panic::catch_unwind(|| f(&data));
            assert!(r.is_ok(), "{name}: committed input {} fails", p.display());
            n += 1;
        }
    }
    n
}

#[test]
fn wal_replay() {
    random_inputs(3000, 4096, harness::wal_replay);
    assert!(
        replay_committed("wal_replay", harness::wal_replay) > 0,
        "no committed corpus"
    );
}

#[test]
fn sstable_open_and_read() {
    random_inputs(1500, 4096, harness::sstable_open_and_read);
    assert!(replay_committed("sstable_open_and_read", harness::sstable_open_and_read) > 0);
}

#[test]
fn manifest_replay() {
    random_inputs(2000, 2048, harness::manifest_replay);
    assert!(replay_committed("manifest_replay", harness::manifest_replay) > 0);
}

#[test]
fn block_and_filter() {
    random_inputs(3000, 4096, harness::block_and_filter);
    assert!(replay_committed("block_and_filter", harness::block_and_filter) > 0);
}

#[test]
fn ops_vs_model() {
    random_inputs(400, 1024, harness::ops_vs_model);
    assert!(replay_committed("ops_vs_model", harness::ops_vs_model) > 0);
}

#[test]
fn range_del_block() {
    random_inputs(3000, 2048, harness::range_del_block);
    assert!(replay_committed("range_del_block", harness::range_del_block) > 0);
}

/// The harnesses can fail: with a planted bug (reads skip checksums) the table harness must
/// catch wrong data coming out of a damaged table.
#[cfg(feature = "planted-bugs")]
#[test]
fn the_table_harness_catches_unchecked_reads() {
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    use sedimentdb::internals::planted::{plant, Bug};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    plant(Some(Bug::SkipReadChecksum));
    let mut caught = 0;
    for _ in 0..300 {
        let mut data = vec![0u8; 600];
        rng.fill_bytes(&mut data);
        if std::panic::catch_unwind(|| harness::sstable_open_and_read(&data)).is_err() {
            caught += 1;
        }
    }
    plant(None);
    assert!(
        caught > 0,
        "300 damaged tables read without checksums and the harness saw nothing"
    );
}
