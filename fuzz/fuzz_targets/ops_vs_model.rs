//! cargo-fuzz target: the `ops_vs_model` harness, in `sim/src/harness/ops_vs_model.rs`
//! (the same code `cargo test` runs through bolero).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sedimentdb_sim::harness::ops_vs_model(data));
