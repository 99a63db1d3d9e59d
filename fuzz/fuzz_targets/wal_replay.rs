//! cargo-fuzz target: the `wal_replay` harness, in `sim/src/harness/wal_replay.rs`
//! (the same code `cargo test` runs through bolero).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sedimentdb_sim::harness::wal_replay(data));
