//! Faults: arming the filesystem's faults for a fault step (a crash at a later call, a failing
//! fsync or append, a full disk), flipping a bit in durable data, and the one crash routine that
//! every crash goes through — a crash step, an error once an armed crash point has killed the
//! filesystem, and a crash point reached while opening.

use super::{Checked, CrashKind, Flow, Runner};
use crate::{SyncFailure, TableWriteFault};
use sedimentdb::internals::filename::{self, FileKind};
use sedimentdb::internals::record::{proven_synced_len, FILE_HEADER_LEN};

/// How far back from the end of what the engine acted on `FlipNewestEdit` aims: the newest
/// edit and the record vouching for it.
const NEWEST_RECORDS_BYTES: usize = 160;

/// The name of a crash in the fault list.
fn crash_name(power: bool) -> &'static str {
    if power {
        "power loss"
    } else {
        "process crash"
    }
}

impl Runner {
    /// Crashes the filesystem: a power loss (what survives is up to the chooser) or a process
    /// crash. `power` says which; `None` takes the armed crash, a power loss if none was armed.
    /// Either way the armed crash is disarmed. `during` names what was running, for the fault
    /// list. Returns what the crash promises a reopen.
    pub(super) fn crash(&mut self, power: Option<bool>, during: Option<&str>) -> CrashKind {
        // The crashed process's scan and snapshots die with it.
        self.held = None;
        self.snaps.clear();
        let armed = self.armed_crash.take();
        let power = power.or(armed).unwrap_or(true);
        let kind = if power {
            let c = &mut self.chooser;
            self.world.fs.power_loss(&mut |n| c.choose(n));
            CrashKind::Power
        } else {
            self.world.fs.process_crash();
            CrashKind::Process
        };
        let what = crash_name(power);
        self.fault(match during {
            Some(d) => format!("{what} during {d}"),
            None => what.into(),
        });
        kind
    }

    /// Crashes now (see [`Runner::crash`]), drops the `Db` and reopens.
    pub(super) fn crash_and_reopen(&mut self, power: Option<bool>) -> Checked<Flow> {
        let kind = self.crash(power, None);
        drop(self.db.take());
        self.open(kind)
    }

    /// The filesystem dies at the `calls`-th call from here; the crash is applied when the
    /// engine reports the failure.
    pub(super) fn arm_crash(&mut self, calls: u32, power: bool) -> Checked<Flow> {
        self.world.fs.die_after_calls(u64::from(calls));
        self.armed_crash = Some(power);
        self.fault(format!(
            "armed: {} at the {calls}-th filesystem call from here",
            crash_name(power)
        ));
        Ok(Flow::Continue)
    }

    /// The next fsync fails, keeping or dropping the dirty pages.
    pub(super) fn arm_sync_failure(&mut self, drop_pages: bool, dir: bool) -> Checked<Flow> {
        let mode = if drop_pages {
            SyncFailure::DropPages
        } else {
            SyncFailure::KeepPages
        };
        if dir {
            self.world.fs.fail_next_dir_sync(mode);
        } else {
            self.world.fs.fail_next_sync(mode);
        }
        let what = if dir { "directory fsync" } else { "fsync" };
        self.fault(format!(
            "armed: next {what} fails (drop pages: {drop_pages})"
        ));
        Ok(Flow::Continue)
    }

    /// The next append fails after writing `prefix` bytes.
    pub(super) fn arm_append_failure(&mut self, prefix: u32) -> Checked<Flow> {
        self.world.fs.fail_next_append(Some(prefix as usize));
        self.fault(format!("armed: next append fails after {prefix} bytes"));
        Ok(Flow::Continue)
    }

    /// Only `free_bytes` more bytes fit on the disk.
    pub(super) fn disk_full(&mut self, free_bytes: u32) -> Checked<Flow> {
        let used = self.world.fs.used_bytes();
        self.world.fs.set_quota(Some(used + u64::from(free_bytes)));
        self.fault(format!("disk full: {free_bytes} bytes free"));
        Ok(Flow::Continue)
    }

    /// The disk has room again.
    pub(super) fn space_returns(&mut self) -> Checked<Flow> {
        self.world.fs.set_quota(None);
        Ok(Flow::Continue)
    }

    /// Flips a bit in durable data that every checksum must cover: anywhere in a table or
    /// `CURRENT`; in a WAL below the length its records vouch was synced (past it, damage and
    /// a torn write look the same to any log format); in a manifest below what was durable
    /// when the last step ended.
    pub(super) fn flip(&mut self, file: u32, offset: u32, bit: u8) -> Checked<Flow> {
        let eligible = self.flippable();
        if eligible.is_empty() {
            return Ok(Flow::Continue);
        }
        let (name, len) = &eligible[file as usize % eligible.len()];
        let off = offset as usize % len;
        if self
            .world
            .fs
            .flip_bit(&self.db_dir.as_path().join(name), off, bit)
        {
            self.corrupted = true;
            let name = name.clone();
            self.note_damaged_log(&name);
            self.fault(format!("bit {bit} flipped at offset {off} of {name}"));
        }
        Ok(Flow::Continue)
    }

    /// Flips a bit in the last `NEWEST_RECORDS_BYTES` of the manifest's bytes the engine acted
    /// on, then restarts (a power loss, or a clean close and reopen).
    pub(super) fn flip_newest_edit(&mut self, offset: u32, bit: u8, power: bool) -> Checked<Flow> {
        let fs = &self.world.fs;
        let manifest = fs
            .names(self.db_dir.as_path())
            .into_iter()
            .find(|n| matches!(filename::parse(n), Some(FileKind::Manifest(_))));
        if let Some(name) = manifest.filter(|n| !self.damaged_logs.contains(n)) {
            let path = self.db_dir.join(&name);
            let durable = fs.durable_len(&path).unwrap_or(0);
            let len = durable.min(self.manifest_acted_len.get(&name).copied().unwrap_or(0));
            let start = len
                .saturating_sub(NEWEST_RECORDS_BYTES)
                .max(FILE_HEADER_LEN);
            if start < len {
                let off = start + offset as usize % (len - start);
                if fs.flip_bit(&path, off, bit) {
                    self.corrupted = true;
                    self.damaged_logs.insert(name.clone());
                    self.fault(format!("bit {bit} flipped at offset {off} of {name}"));
                }
            }
        }
        self.summary.ops += 1;
        if power {
            self.crash_and_reopen(Some(true))
        } else {
            self.close_and_reopen()
        }
    }

    /// Remembers that log `name` holds a flipped bit (no more flips go there until an open).
    fn note_damaged_log(&mut self, name: &str) {
        if let Some(FileKind::Wal(_) | FileKind::Manifest(_)) = filename::parse(name) {
            self.damaged_logs.insert(name.to_string());
        }
    }

    /// The next table append reports success but is lost or misdirected: the disk lied, so
    /// from here corruption is an acceptable answer (never wrong data).
    pub(super) fn table_write_fault(&mut self, misdirect: bool) -> Checked<Flow> {
        let fault = if misdirect {
            TableWriteFault::Misdirected
        } else {
            TableWriteFault::Lost
        };
        self.world.fs.fault_next_table_write(fault);
        self.corrupted = true;
        self.fault(format!("armed: the next table write is {fault:?}"));
        Ok(Flow::Continue)
    }

    /// Notes each manifest's durable length now, between steps (see `manifest_acted_len`).
    pub(super) fn note_manifest_lengths(&mut self) {
        let fs = &self.world.fs;
        for name in fs.names(self.db_dir.as_path()) {
            if let Some(FileKind::Manifest(_)) = filename::parse(&name) {
                let len = fs
                    .durable_len(&self.db_dir.as_path().join(&name))
                    .unwrap_or(0);
                self.manifest_acted_len.insert(name, len);
            }
        }
    }

    /// The files a bit may be flipped in, each with the length of its covered data.
    fn flippable(&self) -> Vec<(String, usize)> {
        let fs = &self.world.fs;
        let mut eligible: Vec<(String, usize)> = Vec::new();
        for name in fs.names(self.db_dir.as_path()) {
            let path = self.db_dir.as_path().join(&name);
            let Some(durable) = fs.durable_len(&path) else {
                continue;
            };
            if self.damaged_logs.contains(&name) {
                continue;
            }
            let len = match filename::parse(&name) {
                Some(FileKind::Table(_) | FileKind::Current) => durable,
                // A manifest: every edit the engine acted on must be vouched for, so damage
                // anywhere below what was durable when the last step ended must be reported.
                // (Measured by what the simulator saw, not by what the log claims: a log that
                // failed to sync its vouching record would otherwise hide the damage.)
                Some(FileKind::Manifest(_)) => {
                    durable.min(self.manifest_acted_len.get(&name).copied().unwrap_or(0))
                }
                Some(FileKind::Wal(n)) => {
                    let data = fs.read_file(&path).unwrap_or_default();
                    let data = &data[..durable.min(data.len())];
                    proven_synced_len(data, n) as usize
                }
                _ => 0,
            };
            if len > 0 {
                eligible.push((name, len));
            }
        }
        eligible
    }
}
