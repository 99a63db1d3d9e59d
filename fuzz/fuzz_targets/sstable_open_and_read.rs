//! cargo-fuzz target: the `sstable_open_and_read` harness, in `sim/src/harness/sstable_open_and_read.rs`
//! (the same code `cargo test` runs through bolero).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sedimentdb_sim::harness::sstable_open_and_read(data));
