//! Executing steps: each [`Step`] runs against the `Db`, one helper per kind of step. Writes are
//! recorded in the model as acknowledged or failed, calls that make writes durable mark them so;
//! answers go to the oracle, fault steps to `faults`.

use super::{bound, Checked, CrashKind, Flow, Runner};
use crate::model::Op;
use crate::workload::{key_bytes, value_bytes, GroupWrite, Step, RANGE_FLAG};
use sedimentdb::{Error, WriteBatch, WriteOptions};

impl Runner {
    /// Runs one step (opening the database first if a failed reopen left it closed).
    pub(super) fn exec(&mut self, s: &Step) -> Checked<Flow> {
        if self.db.is_none() {
            if let Flow::Stop = self.open(CrashKind::Clean)? {
                return Ok(Flow::Stop);
            }
        }
        match s {
            Step::Put {
                key,
                len,
                tag,
                sync,
            } => self.put(*key, *len, *tag, *sync),
            Step::Delete { key, sync } => self.delete(*key, *sync),
            Step::Batch { ops, tag, sync } => self.batch(ops, *tag, *sync),
            Step::Get { key } => self.get(*key),
            Step::Scan { from, to } => self.scan(*from, *to),
            Step::Sync => {
                let r = self.db().sync();
                self.made_durable(r, "sync")
            }
            Step::Flush => {
                let r = self.db().flush();
                self.made_durable(r, "flush")
            }
            Step::Reopen => {
                self.summary.ops += 1;
                self.close_and_reopen()
            }
            Step::PowerLoss => self.crash_and_reopen(Some(true)),
            Step::ProcessCrash => self.crash_and_reopen(Some(false)),
            Step::CrashAfterCalls { calls, power } => self.arm_crash(*calls, *power),
            Step::FailSync { drop_pages, dir } => self.arm_sync_failure(*drop_pages, *dir),
            Step::FailAppend { prefix } => self.arm_append_failure(*prefix),
            Step::DiskFull { free_bytes } => self.disk_full(*free_bytes),
            Step::SpaceReturns => self.space_returns(),
            Step::FlipBit { file, offset, bit } => self.flip(*file, *offset, *bit),
            Step::TableWriteFault { misdirect } => self.table_write_fault(*misdirect),
            Step::LatentReadError { reads } => {
                self.world.fs.fail_table_reads(*reads);
                self.fault(format!("armed: the next {reads} table reads fail (latent)"));
                Ok(Flow::Continue)
            }
            Step::FlipNewestEdit { offset, bit, power } => {
                self.flip_newest_edit(*offset, *bit, *power)
            }
            Step::ClockForward { ms } => self.clock_forward(*ms),
            Step::ClockBack { ms } => self.clock_back(*ms),
            Step::CompactStep => self.compact_step(),
            Step::Compact => self.compact(),
            Step::CompactRange { from, to } => self.compact_range(*from, *to),
            Step::ScanHold => self.scan_hold(),
            Step::ScanFinish => self.scan_finish(),
            Step::RawScan => {
                self.summary.ops += 1;
                self.check_raw(false)
            }
            Step::Group { writes, tag } => self.group(writes, *tag),
            Step::DeleteRange { from, width, sync } => self.delete_range(*from, *width, *sync),
            Step::ScanRev { from, to, zigzag } => self.scan_rev(*from, *to, *zigzag),
            Step::Prefix { key, len, rev } => self.prefix(*key, *len, *rev),
            Step::CursorWalk {
                lo,
                hi,
                snapshot,
                moves,
            } => self.cursor_walk(*lo, *hi, *snapshot, moves),
            Step::SnapshotTake => self.snapshot_take(),
            Step::SnapshotRead { which } => self.snapshot_read(*which),
            Step::SnapshotRelease { which } => self.snapshot_release(*which),
            Step::Checkpoint => self.checkpoint(),
        }
    }

    /// The batch and model operations of `(key, Some(len))` puts and `(key, None)` deletes.
    fn make_batch(ops: &[(u32, Option<u32>)], tag: u32) -> (WriteBatch, Vec<Op>) {
        let mut b = WriteBatch::new();
        let mut mops = Vec::new();
        for (key, v) in ops {
            let k = key_bytes(*key);
            match v {
                Some(w) if *w >= RANGE_FLAG => {
                    let (s, e) = (k, key_bytes(key + (w - RANGE_FLAG)));
                    b.delete_range(s.clone()..e.clone());
                    mops.push(Op::DeleteRange(s, e));
                }
                Some(len) => {
                    let v = value_bytes(*key, tag, *len);
                    b.put(&k, &v);
                    mops.push(Op::Put(k, v));
                }
                None => {
                    b.delete(&k);
                    mops.push(Op::Delete(k));
                }
            }
        }
        (b, mops)
    }

    /// Several writers at once: every batch is queued before any is committed, so they share
    /// group commits; each outcome goes to the model in queue order (the WAL's order).
    fn group(&mut self, writes: &[GroupWrite], tag: u32) -> Checked<Flow> {
        self.summary.ops += writes.len() as u64;
        let time = self.now();
        let made: Vec<_> = writes
            .iter()
            .map(|(ops, sync)| (Self::make_batch(ops, tag), *sync))
            .collect();
        let records_before = self.db().stats().wal_records;
        let results = self.db().write_group(
            made.iter()
                .map(|((b, _), sync)| (b.clone(), *sync))
                .collect(),
        );
        let records = self.db().stats().wal_records - records_before;
        let mut first_error = None;
        // The failed writes of one commit group are one WAL record: after recovery wholly in
        // or wholly out, so the model takes them as one indeterminate write. (A group holds up
        // to 1 MiB of batches; the simulator's groups are far smaller, so all are one group.)
        let mut failed = Vec::new();
        for (((_, mops), sync), r) in made.into_iter().zip(results) {
            match r {
                Ok(()) => self.model.ack(mops, sync, time),
                Err(e @ Error::ReadOnly { .. }) => {
                    self.model.refused(mops, time);
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    failed.extend(mops);
                    first_error.get_or_insert(e);
                }
            }
        }
        if !failed.is_empty() {
            self.model.failed(failed, time);
        }
        if first_error.is_none() {
            let size = match writes.len() {
                n if records == 1 && n >= 3 => "commit group of 3 or more writers",
                _ if records == 1 => "commit group of 2 writers",
                _ => "writers split over several commit groups",
            };
            self.probe(size);
        }
        match first_error {
            None => Ok(Flow::Continue),
            Some(e) => self.on_error(e, "group write"),
        }
    }

    fn put(&mut self, key: u32, len: u32, tag: u32, sync: bool) -> Checked<Flow> {
        let (k, v) = (key_bytes(key), value_bytes(key, tag, len));
        let mut b = WriteBatch::new();
        b.put(&k, &v);
        self.write(b, vec![Op::Put(k, v)], sync)
    }

    fn delete(&mut self, key: u32, sync: bool) -> Checked<Flow> {
        let k = key_bytes(key);
        let mut b = WriteBatch::new();
        b.delete(&k);
        self.write(b, vec![Op::Delete(k)], sync)
    }

    /// `(key, Some(len))` puts, `(key, None)` deletes, in one batch.
    fn batch(&mut self, ops: &[(u32, Option<u32>)], tag: u32, sync: bool) -> Checked<Flow> {
        let (b, mops) = Self::make_batch(ops, tag);
        self.write(b, mops, sync)
    }

    /// Writes a batch; the model takes it as acknowledged, or as maybe written if it failed
    /// other than by a read-only refusal.
    pub(super) fn write(&mut self, b: WriteBatch, ops: Vec<Op>, sync: bool) -> Checked<Flow> {
        self.summary.ops += 1;
        let time = self.now();
        match self.db().write(b, &WriteOptions { sync }) {
            Ok(()) => {
                self.model.ack(ops, sync, time);
                Ok(Flow::Continue)
            }
            Err(e @ Error::ReadOnly { .. }) => {
                self.model.refused(ops, time);
                self.on_error(e, "write")
            }
            Err(e) => {
                // The write may or may not have reached the disk.
                self.model.failed(ops, time);
                self.on_error(e, "write")
            }
        }
    }

    /// The outcome of a call that makes every acknowledged write durable when it succeeds.
    fn made_durable(&mut self, r: Result<(), Error>, what: &str) -> Checked<Flow> {
        self.summary.ops += 1;
        match r {
            Ok(()) => {
                self.model.mark_durable();
                Ok(Flow::Continue)
            }
            Err(e) => self.on_error(e, what),
        }
    }

    fn get(&mut self, key: u32) -> Checked<Flow> {
        self.summary.ops += 1;
        let k = key_bytes(key);
        let got = self.db().get(&k);
        self.check_get(&k, got)
    }

    /// A scan from `from` (inclusive) to `to` (exclusive), either end open if `None`.
    fn scan(&mut self, from: Option<u32>, to: Option<u32>) -> Checked<Flow> {
        self.summary.ops += 1;
        let lo = from.map(key_bytes);
        let hi = to.map(key_bytes);
        let range = (bound(&lo, true), bound(&hi, false));
        let got: Result<Vec<_>, _> = self.db().scan::<&Vec<u8>, _>(range).collect();
        self.check_scan(&lo, &hi, got)
    }

    /// Starts a full scan, unless one is held already, and keeps it with the state it must
    /// return.
    fn scan_hold(&mut self) -> Checked<Flow> {
        if self.held.is_none() {
            let want: Vec<_> = self
                .model
                .state()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            self.held = Some((self.db().iter(), want));
        }
        Ok(Flow::Continue)
    }

    /// Finishes the held scan, if any.
    fn scan_finish(&mut self) -> Checked<Flow> {
        let Some((scan, want)) = self.held.take() else {
            return Ok(Flow::Continue);
        };
        if self.db().stats().obsolete_tables_pending > 0 {
            self.probe("held scan kept a removed table");
        }
        self.summary.ops += 1;
        let got: Result<Vec<_>, _> = scan.collect();
        self.check_held_scan(want, got)
    }

    fn compact_step(&mut self) -> Checked<Flow> {
        self.summary.ops += 1;
        match self.db().maintenance_step() {
            Ok(_) => Ok(Flow::Continue),
            Err(e) => self.on_error(e, "maintenance step"),
        }
    }

    fn compact(&mut self) -> Checked<Flow> {
        self.summary.ops += 1;
        match self.db().compact() {
            Ok(()) => Ok(Flow::Continue),
            Err(e) => self.on_error(e, "compact"),
        }
    }

    /// Compacts `from..=to` (either end open if `None`), then checks the raw view; with both
    /// ends open it was a full compaction, after which no expired tombstone may remain.
    fn compact_range(&mut self, from: Option<u32>, to: Option<u32>) -> Checked<Flow> {
        self.summary.ops += 1;
        let lo = from.map(key_bytes);
        let hi = to.map(key_bytes);
        let range = (bound(&lo, true), bound(&hi, true));
        match self.db().compact_range::<&Vec<u8>, _>(range) {
            Ok(()) => {
                // compact_range flushes first: everything acknowledged is durable.
                self.model.mark_durable();
                // Live snapshots may keep expired tombstones: what they hide is still visible.
                let full = from.is_none() && to.is_none() && self.snaps.is_empty();
                self.check_raw(full)
            }
            Err(e) => self.on_error(e, "compact_range"),
        }
    }

    fn clock_forward(&mut self, ms: u64) -> Checked<Flow> {
        self.world.clock.advance(ms);
        Ok(Flow::Continue)
    }

    /// The clock jumps back; the latest it read is remembered (a compaction may have dropped a
    /// tombstone by then).
    fn clock_back(&mut self, ms: u64) -> Checked<Flow> {
        self.clock_high = self.clock_high.max(self.now());
        self.world.clock.rewind(ms);
        Ok(Flow::Continue)
    }
}
