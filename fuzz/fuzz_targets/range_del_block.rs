//! cargo-fuzz target: the `range_del_block` harness, in `sim/src/harness/range_del_block.rs`
//! (the same code `cargo test` runs through bolero).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sedimentdb_sim::harness::range_del_block(data));
