//! cargo-fuzz target: the `manifest_replay` harness, in `sim/src/harness/manifest_replay.rs`
//! (the same code `cargo test` runs through bolero).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sedimentdb_sim::harness::manifest_replay(data));
