//! The `ops_vs_model` harness: fuzzer bytes decoded into simulator steps and knobs, run by the
//! simulator's runner and checked against the model.

use super::Input;
use crate::runner::run_steps;
use crate::workload::{Knobs, Step};

/// Steps one input decodes to at most: short runs keep the fuzzer fast (hundreds of inputs a
/// second), and the seeded simulator covers long ones.
const STEPS_MAX: usize = 120;

/// Decodes fuzzer bytes into simulator steps (two to four bytes a step).
pub fn steps_from_bytes(data: &[u8]) -> (Knobs, Vec<Step>) {
    let mut inp = Input::new(data);
    let knobs = knobs_from(&mut inp);
    let mut steps = Vec::new();
    while !inp.exhausted() && steps.len() < STEPS_MAX {
        let op = inp.u8();
        let key = u32::from(inp.u8() % 32);
        let s = step_from(op, key, steps.len() as u32, &mut inp);
        steps.push(s);
    }
    (knobs, steps)
}

/// The engine options, from the input's first seven bytes.
fn knobs_from(inp: &mut Input) -> Knobs {
    Knobs {
        memtable_size_bytes: [2048, 8192, 65536][inp.u8() as usize % 3],
        block_size_bytes: [64, 512, 4096][inp.u8() as usize % 3],
        l0_compaction_trigger: [1, 2, 4, 1000][inp.u8() as usize % 4],
        level1_size_bytes: [4096, 65536][inp.u8() as usize % 2],
        table_size_bytes: [1024, 16384][inp.u8() as usize % 2],
        tombstone_grace_ms: [0, 1000, 3_600_000][inp.u8() as usize % 3],
        manual_background: inp.u8() % 2 == 1,
        ..Knobs::default()
    }
}

/// One step from its opcode byte `op` and key, reading any further argument from the input;
/// `tag` (the step's index) makes written values unique.
fn step_from(op: u8, key: u32, tag: u32, inp: &mut Input) -> Step {
    match op % 34 {
        0..=5 => Step::Put {
            key,
            len: u32::from(inp.u8()) * 4,
            tag,
            sync: op & 0x80 != 0,
        },
        6..=7 => Step::Delete {
            key,
            sync: op & 0x80 != 0,
        },
        8 => Step::Batch {
            ops: (0..1 + inp.u8() % 5)
                .map(|i| (u32::from(inp.u8() % 32), (i % 2 == 0).then_some(16)))
                .collect(),
            tag,
            sync: op & 0x80 != 0,
        },
        9..=10 => Step::Get { key },
        11 => Step::Scan {
            from: (op & 0x40 != 0).then_some(key),
            to: (op & 0x80 != 0).then_some(key + 8),
        },
        12 => Step::Sync,
        13 => Step::Flush,
        14 => Step::Reopen,
        15 => Step::PowerLoss,
        16 => Step::ProcessCrash,
        17 => Step::CrashAfterCalls {
            calls: 1 + u32::from(inp.u8()),
            power: op & 0x80 != 0,
        },
        18 => Step::FailSync {
            drop_pages: op & 0x80 != 0,
            dir: op & 0x40 != 0,
        },
        19 => Step::FailAppend {
            prefix: u32::from(inp.u8()),
        },
        20 => Step::ClockForward {
            ms: u64::from(inp.u32()),
        },
        21 => Step::CompactStep,
        22 => Step::CompactRange {
            from: None,
            to: None,
        },
        23 => {
            if op & 0x80 != 0 {
                Step::ScanHold
            } else {
                Step::ScanFinish
            }
        }
        24 => Step::RawScan,
        // Several writers queued at once, sharing commit groups: the interleaving of writers
        // at the group-commit queue, chosen by the fuzzer.
        25 => Step::Group {
            writes: (0..2 + inp.u8() % 7)
                .map(|_| {
                    let b = inp.u8();
                    let ops = vec![(u32::from(b % 32), (b & 0x20 == 0).then_some(24))];
                    (ops, b & 0x80 != 0)
                })
                .collect(),
            tag,
        },
        26 => match inp.u8() % 3 {
            0 => Step::TableWriteFault {
                misdirect: op & 0x80 != 0,
            },
            1 => Step::LatentReadError {
                reads: 1 + u32::from(op >> 6),
            },
            _ => Step::FlipNewestEdit {
                offset: u32::from(inp.u16()),
                bit: inp.u8() % 8,
                power: op & 0x80 != 0,
            },
        },
        // The read API: range deletes, reverse and prefix scans, cursor walks, snapshots and
        // checkpoints.
        28 => Step::DeleteRange {
            from: key,
            width: u32::from(inp.u8() % 12),
            sync: op & 0x80 != 0,
        },
        29 => Step::ScanRev {
            from: (op & 0x40 != 0).then_some(key),
            to: (op & 0x80 != 0).then_some(key + 8),
            zigzag: op & 0x20 != 0,
        },
        30 => Step::Prefix {
            key,
            len: 3 + u32::from(inp.u8() % 7),
            rev: op & 0x80 != 0,
        },
        31 => Step::CursorWalk {
            lo: (op & 0x40 != 0).then_some(key),
            hi: (op & 0x80 != 0).then_some(key + 10),
            snapshot: op & 0x20 != 0,
            moves: (0..1 + inp.u8() % 12)
                .map(|_| u32::from(inp.u8()))
                .collect(),
        },
        32 => match op >> 6 {
            0 => Step::SnapshotTake,
            1 => Step::SnapshotRelease { which: 0 },
            _ => Step::SnapshotRead {
                which: u32::from(op & 3),
            },
        },
        33 => Step::Checkpoint,
        _ => {
            if op & 0x80 != 0 {
                Step::DiskFull {
                    free_bytes: u32::from(inp.u16()),
                }
            } else {
                Step::SpaceReturns
            }
        }
    }
}

/// `ops_vs_model`: an arbitrary sequence of operations and faults on `SimFs`, checked against
/// the model by the simulator's oracle: the fuzzer-driven twin of the seeded simulator.
pub fn ops_vs_model(data: &[u8]) {
    let (knobs, steps) = steps_from_bytes(data);
    if let Err(f) = run_steps(0, &knobs, &steps) {
        panic!(
            "{f}\nsteps: {}",
            steps
                .iter()
                .map(|s| s.to_rust())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
