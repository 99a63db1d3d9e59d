//! cargo-fuzz target: the `wal_replay` harness of `sim/src/harness.rs` (the same code
//! `cargo test` runs through bolero).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sedimentdb_sim::harness::wal_replay(data));
