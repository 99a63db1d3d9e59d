//! cargo-fuzz target: the `manifest_replay` harness of `sim/src/harness.rs` (the same code
//! `cargo test` runs through bolero).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sedimentdb_sim::harness::manifest_replay(data));
