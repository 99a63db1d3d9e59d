//! cargo-fuzz target: the `block_and_filter` harness, in `sim/src/harness/block_and_filter.rs`
//! (the same code `cargo test` runs through bolero).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sedimentdb_sim::harness::block_and_filter(data));
