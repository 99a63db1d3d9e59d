//! The steps of a run and how each prints as Rust.

use std::fmt::Write as _;

/// In the operations of a `Batch` or `Group`, `(key, Some(RANGE_FLAG + w))` is a range delete
/// of the `w` keys from `key` (`key .. key + w`, end excluded; `w = 0` deletes nothing). Value
/// lengths stay far below it.
pub const RANGE_FLAG: u32 = 1 << 31;

/// One step of a run. Keys are indices into the key space, values are made from the step's tag,
/// so a step list prints as Rust (see [`Step::to_rust`]) and replays exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Put {
        key: u32,
        len: u32,
        tag: u32,
        sync: bool,
    },
    Delete {
        key: u32,
        sync: bool,
    },
    /// `(key, Some(len))` puts, `(key, None)` deletes, `(key, Some(RANGE_FLAG + w))` range
    /// deletes.
    Batch {
        ops: Vec<(u32, Option<u32>)>,
        tag: u32,
        sync: bool,
    },
    Get {
        key: u32,
    },
    Scan {
        from: Option<u32>,
        to: Option<u32>,
    },
    Sync,
    Flush,
    /// Clean close and reopen.
    Reopen,
    /// Power loss now, then reopen.
    PowerLoss,
    /// Process crash now (page cache survives), then reopen.
    ProcessCrash,
    /// The machine dies at the `calls`-th filesystem call from now (inside whatever runs then);
    /// the crash is applied when the engine reports the failure.
    CrashAfterCalls {
        calls: u32,
        power: bool,
    },
    /// The next fsync (of a file or directory; with `dir`, of a directory) fails with EIO.
    FailSync {
        drop_pages: bool,
        dir: bool,
    },
    /// The next append fails with EIO after writing `prefix` bytes.
    FailAppend {
        prefix: u32,
    },
    /// Only `free_bytes` more bytes fit on the disk.
    DiskFull {
        free_bytes: u32,
    },
    /// The disk has room again.
    SpaceReturns,
    /// Flip one bit of durable data in the `file`-th eligible file at `offset` (modulo its
    /// eligible length).
    FlipBit {
        file: u32,
        offset: u32,
        bit: u8,
    },
    /// Flip one bit in the newest records of the manifest that the engine acted on (its last
    /// `NEWEST_RECORDS_BYTES` durable bytes as of the last step), then restart: by a power
    /// loss, or a clean close and reopen. The damage hardest to tell from a torn write.
    FlipNewestEdit {
        offset: u32,
        bit: u8,
        power: bool,
    },
    /// The next append to a table file reports success but is lost, or lands at the end of
    /// another table file (`misdirect`).
    TableWriteFault {
        misdirect: bool,
    },
    /// The next `reads` reads of table files fail with EIO (a latent sector error).
    LatentReadError {
        reads: u32,
    },
    /// The clock moves forward.
    ClockForward {
        ms: u64,
    },
    /// The clock jumps backward a little.
    ClockBack {
        ms: u64,
    },
    /// One unit of maintenance (a flush if one waits, else a compaction if a level is over its
    /// target), as the seeded scheduler runs background work between operations.
    CompactStep,
    /// Compactions until every level is within its target.
    Compact,
    /// Compact a key range (both ends open: a full compaction) down to the last level.
    CompactRange {
        from: Option<u32>,
        to: Option<u32>,
    },
    /// Start a full scan and hold it open across what follows.
    ScanHold,
    /// Finish the held scan: it must equal the state when it started.
    ScanFinish,
    /// Read the raw view (tombstones with deletion times) and check the grace-period rule.
    RawScan,
    /// Several writers' batches queued at once (`(ops, sync)` each, ops as in `Batch`): they
    /// share group commits, each with its own outcome.
    Group {
        writes: Vec<GroupWrite>,
        tag: u32,
    },
    /// Delete the `width` keys from `from` with one range tombstone.
    DeleteRange {
        from: u32,
        width: u32,
        sync: bool,
    },
    /// A descending scan from `to` (exclusive) down to `from` (inclusive); with `zigzag`, taken
    /// from both ends in turn until they meet.
    ScanRev {
        from: Option<u32>,
        to: Option<u32>,
        zigzag: bool,
    },
    /// The keys starting with the first `len` bytes of key `key`, ascending or descending.
    Prefix {
        key: u32,
        len: u32,
        rev: bool,
    },
    /// A cursor walk within `lo..hi` over the database now (or the oldest held snapshot): each
    /// move is `m % 6` (seek, seek_for_prev, seek_to_first, seek_to_last, next, prev) with key
    /// `m / 6` for the seeks.
    CursorWalk {
        lo: Option<u32>,
        hi: Option<u32>,
        snapshot: bool,
        moves: Vec<u32>,
    },
    /// Take a snapshot (at most three are held).
    SnapshotTake,
    /// Read through held snapshot `which` (modulo those held): point reads, forward and
    /// reverse scans, each against the model's state when it was taken.
    SnapshotRead {
        which: u32,
    },
    /// Release held snapshot `which`.
    SnapshotRelease {
        which: u32,
    },
    /// Write a checkpoint into a new directory; it must open after a power loss and equal the
    /// acknowledged state (or, if the call failed, be refused or equal it).
    Checkpoint,
}

/// One writer of a `Group` step: its batch's operations (as in `Batch`) and whether it syncs.
pub type GroupWrite = (Vec<(u32, Option<u32>)>, bool);

fn ops_to_rust(ops: &[(u32, Option<u32>)]) -> String {
    let mut s = String::from("vec![");
    for (i, (k, v)) in ops.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = match v {
            Some(l) => write!(s, "({k}, Some({l}))"),
            None => write!(s, "({k}, None)"),
        };
    }
    s.push(']');
    s
}

impl Step {
    /// The step as a Rust expression.
    pub fn to_rust(&self) -> String {
        let b = |x: bool| if x { "true" } else { "false" };
        match self {
            Step::Put {
                key,
                len,
                tag,
                sync,
            } => {
                format!(
                    "Step::Put {{ key: {key}, len: {len}, tag: {tag}, sync: {} }}",
                    b(*sync)
                )
            }
            Step::Delete { key, sync } => {
                format!("Step::Delete {{ key: {key}, sync: {} }}", b(*sync))
            }
            Step::Batch { ops, tag, sync } => format!(
                "Step::Batch {{ ops: {}, tag: {tag}, sync: {} }}",
                ops_to_rust(ops),
                b(*sync)
            ),
            Step::Group { writes, tag } => {
                let ws: Vec<String> = writes
                    .iter()
                    .map(|(ops, sync)| format!("({}, {})", ops_to_rust(ops), b(*sync)))
                    .collect();
                format!(
                    "Step::Group {{ writes: vec![{}], tag: {tag} }}",
                    ws.join(", ")
                )
            }
            Step::Get { key } => format!("Step::Get {{ key: {key} }}"),
            Step::Scan { from, to } => format!("Step::Scan {{ from: {from:?}, to: {to:?} }}"),
            Step::Sync => "Step::Sync".into(),
            Step::Flush => "Step::Flush".into(),
            Step::Reopen => "Step::Reopen".into(),
            Step::PowerLoss => "Step::PowerLoss".into(),
            Step::ProcessCrash => "Step::ProcessCrash".into(),
            Step::CrashAfterCalls { calls, power } => {
                format!(
                    "Step::CrashAfterCalls {{ calls: {calls}, power: {} }}",
                    b(*power)
                )
            }
            Step::FailSync { drop_pages, dir } => format!(
                "Step::FailSync {{ drop_pages: {}, dir: {} }}",
                b(*drop_pages),
                b(*dir)
            ),
            Step::FailAppend { prefix } => format!("Step::FailAppend {{ prefix: {prefix} }}"),
            Step::DiskFull { free_bytes } => {
                format!("Step::DiskFull {{ free_bytes: {free_bytes} }}")
            }
            Step::SpaceReturns => "Step::SpaceReturns".into(),
            Step::FlipBit { file, offset, bit } => {
                format!("Step::FlipBit {{ file: {file}, offset: {offset}, bit: {bit} }}")
            }
            Step::FlipNewestEdit { offset, bit, power } => format!(
                "Step::FlipNewestEdit {{ offset: {offset}, bit: {bit}, power: {} }}",
                b(*power)
            ),
            Step::TableWriteFault { misdirect } => {
                format!("Step::TableWriteFault {{ misdirect: {} }}", b(*misdirect))
            }
            Step::LatentReadError { reads } => {
                format!("Step::LatentReadError {{ reads: {reads} }}")
            }
            Step::ClockForward { ms } => format!("Step::ClockForward {{ ms: {ms} }}"),
            Step::ClockBack { ms } => format!("Step::ClockBack {{ ms: {ms} }}"),
            Step::CompactStep => "Step::CompactStep".into(),
            Step::Compact => "Step::Compact".into(),
            Step::CompactRange { from, to } => {
                format!("Step::CompactRange {{ from: {from:?}, to: {to:?} }}")
            }
            Step::ScanHold => "Step::ScanHold".into(),
            Step::ScanFinish => "Step::ScanFinish".into(),
            Step::RawScan => "Step::RawScan".into(),
            Step::DeleteRange { from, width, sync } => format!(
                "Step::DeleteRange {{ from: {from}, width: {width}, sync: {} }}",
                b(*sync)
            ),
            Step::ScanRev { from, to, zigzag } => format!(
                "Step::ScanRev {{ from: {from:?}, to: {to:?}, zigzag: {} }}",
                b(*zigzag)
            ),
            Step::Prefix { key, len, rev } => format!(
                "Step::Prefix {{ key: {key}, len: {len}, rev: {} }}",
                b(*rev)
            ),
            Step::CursorWalk {
                lo,
                hi,
                snapshot,
                moves,
            } => format!(
                "Step::CursorWalk {{ lo: {lo:?}, hi: {hi:?}, snapshot: {}, moves: vec!{moves:?} }}",
                b(*snapshot)
            ),
            Step::SnapshotTake => "Step::SnapshotTake".into(),
            Step::SnapshotRead { which } => format!("Step::SnapshotRead {{ which: {which} }}"),
            Step::SnapshotRelease { which } => {
                format!("Step::SnapshotRelease {{ which: {which} }}")
            }
            Step::Checkpoint => "Step::Checkpoint".into(),
        }
    }

    /// True for steps that inject a fault.
    pub fn is_fault(&self) -> bool {
        matches!(
            self,
            Step::PowerLoss
                | Step::ProcessCrash
                | Step::CrashAfterCalls { .. }
                | Step::FailSync { .. }
                | Step::FailAppend { .. }
                | Step::DiskFull { .. }
                | Step::FlipBit { .. }
                | Step::FlipNewestEdit { .. }
                | Step::TableWriteFault { .. }
                | Step::LatentReadError { .. }
        )
    }
}
