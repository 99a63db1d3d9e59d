//! cargo-fuzz target: the `block_and_filter` harness of `sim/src/harness.rs` (the same code
//! `cargo test` runs through bolero).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sedimentdb_sim::harness::block_and_filter(data));
