//! Fuzz harnesses, written once and run two ways: by `cargo test` through `bolero::check!`
//! (random inputs, `tests/fuzz_harnesses.rs`) and by the coverage-guided fuzzers in `fuzz/`
//! (one cargo-fuzz target per harness). Each takes arbitrary bytes and panics only when the
//! engine breaks its contract: a panic inside the engine, wrong data, or a corrupt input that is
//! accepted as something it is not.
//!
//! One file per harness (`wal_replay`, `sstable_open_and_read`, `manifest_replay`,
//! `block_and_filter`, `ops_vs_model`, `range_del_block`); this file holds what they share: [`Input`], which reads
//! structured choices from fuzzer bytes, the damage a mutation does to a valid file, what counts
//! as a clear error, and the table of every harness by name.

mod block_and_filter;
mod manifest_replay;
mod ops_vs_model;
mod range_del_block;
mod sstable_open_and_read;
mod wal_replay;

pub use block_and_filter::block_and_filter;
pub use manifest_replay::manifest_replay;
pub use ops_vs_model::{ops_vs_model, steps_from_bytes};
pub use range_del_block::range_del_block;
pub use sedimentdb::internals::MemFile;
pub use sstable_open_and_read::sstable_open_and_read;
pub use wal_replay::wal_replay;

/// `threaded_schedule` (built with `--cfg shuttle`): the fuzzer's bytes pick a threaded run's
/// plan (the first 8) and its thread interleaving (the rest, one byte a scheduling point),
/// checked by the threaded oracle.
#[cfg(shuttle)]
pub fn threaded_schedule(data: &[u8]) {
    if let Err(f) = crate::threaded::run_threaded_bytes(data) {
        panic!("{f}");
    }
}

use sedimentdb::Error;

/// Reads structured choices from fuzzer bytes; past the end every read is zero.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data, pos: 0 }
    }

    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    pub fn u16(&mut self) -> u16 {
        u16::from(self.u8()) | (u16::from(self.u8()) << 8)
    }

    pub fn u32(&mut self) -> u32 {
        u32::from(self.u16()) | (u32::from(self.u16()) << 16)
    }

    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = (self.u8() as usize).min(max);
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos += n;
        &self.data[start..end]
    }

    pub fn exhausted(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.pos.min(self.data.len())..]
    }
}

/// The little-endian `u64` at `at`, if the data is long enough.
fn le_u64(data: &[u8], at: usize) -> Option<u64> {
    data.get(at..at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

/// The choices of a mutation come from the input's last bytes, so they stay varied when the
/// front of the input is used up building the file.
fn mutation_choices(data: &[u8]) -> Input<'_> {
    Input::new(&data[data.len().saturating_sub(24)..])
}

/// A change to a valid file: what storage damage does.
fn mutate(bytes: &mut Vec<u8>, inp: &mut Input) {
    if bytes.is_empty() {
        return;
    }
    for _ in 0..1 + inp.u8() % 3 {
        let at = inp.u32() as usize % bytes.len();
        match inp.u8() % 4 {
            0 => bytes[at] ^= 1 << (inp.u8() % 8),
            1 => bytes.truncate(at),
            2 => {
                // Splice: copy a run of the file over another place (a misdirected write).
                let from = inp.u32() as usize % bytes.len();
                let n = (inp.u16() as usize % 512)
                    .min(bytes.len() - from)
                    .min(bytes.len() - at);
                let run = bytes[from..from + n].to_vec();
                bytes[at..at + n].copy_from_slice(&run);
            }
            _ => bytes[at..]
                .iter_mut()
                .take(1 + inp.u8() as usize)
                .for_each(|b| *b = 0),
        }
        if bytes.is_empty() {
            return;
        }
    }
}

/// An error that says plainly the input is bad: corruption, or a version or codec this build
/// can't read.
fn is_clear_error(e: &Error) -> bool {
    matches!(
        e,
        Error::Corruption { .. } | Error::UnsupportedVersion { .. } | Error::Unsupported { .. }
    )
}

/// A harness: arbitrary bytes in, a panic on a broken contract.
pub type Harness = fn(&[u8]);

/// Every harness by name, for the regression replayer and the fuzz targets.
pub const HARNESSES: [(&str, Harness); 6] = [
    ("wal_replay", wal_replay),
    ("sstable_open_and_read", sstable_open_and_read),
    ("manifest_replay", manifest_replay),
    ("block_and_filter", block_and_filter),
    ("ops_vs_model", ops_vs_model),
    ("range_del_block", range_del_block),
];
