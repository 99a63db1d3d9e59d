//! cargo-fuzz target: the `threaded_schedule` harness in `sim/src/harness/mod.rs` (the threaded
//! engine and client threads, the interleaving chosen by the fuzzer's bytes). It needs
//! `--cfg shuttle`, which `fuzz/run` sets for this target; built without it the target is
//! empty.
#![no_main]
#[cfg(shuttle)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sedimentdb_sim::harness::threaded_schedule(data));
#[cfg(not(shuttle))]
libfuzzer_sys::fuzz_target!(|_data: &[u8]| {});
