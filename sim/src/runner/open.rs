//! Opening the `Db`: at the start, after a clean close and after a crash. An open is retried
//! through the faults that fire meanwhile (an I/O fault, a crash point reached during recovery),
//! then what it recovered goes to the oracle.

use super::report::FailureKind;
use super::{Checked, CrashKind, Flow, Runner};
use crate::model::snapshot;
use sedimentdb::{Db, Error, RawEntry};
use std::collections::BTreeMap;

/// A database that opened and could be read in full.
pub(super) struct Opened {
    pub(super) db: Db,
    /// A full scan.
    pub(super) actual: BTreeMap<Vec<u8>, Vec<u8>>,
    /// A full raw scan (with tombstones).
    pub(super) raw: Vec<RawEntry>,
}

impl Runner {
    /// Opens the database after a close or crash of `kind`, checks what it recovered against
    /// the model, and keeps it open for the steps that follow.
    pub(super) fn open(&mut self, mut kind: CrashKind) -> Checked<Flow> {
        let Some(opened) = self.open_retrying(&mut kind)? else {
            return Ok(Flow::Stop);
        };
        self.damaged_logs.clear();
        let st = opened.db.stats();
        if st.recovered_wals >= 2 {
            self.probe("several WALs replayed at open");
        }
        if st.recovered_torn_bytes > 0 {
            self.probe("torn WAL tail cut at open");
        }
        self.stalls = st.write_stalls;
        let db = self.check_recovery(kind, opened)?;
        self.db = Some(db);
        self.check_points()
    }

    /// Closes the database cleanly and opens it again (an application's restart).
    pub(super) fn close_and_reopen(&mut self) -> Checked<Flow> {
        self.held = None;
        self.snaps.clear();
        let db = self.db.take().expect("open between steps");
        if db.stats().immutable_memtables > 0 {
            self.probe("close with immutable memtables waiting");
        }
        if db.close().is_err() {
            if self.world.fs.is_dead() {
                return self.crash_and_reopen(None);
            }
            self.met("close reported an error");
        } else {
            // A clean close makes every acknowledged write durable: a power loss right after
            // it must lose none of them.
            self.crash(Some(true), Some("the reopen after a clean close"));
        }
        self.open(CrashKind::Clean)
    }

    /// Opens until an open and its full scans succeed: a crash point reached meanwhile is
    /// applied (and raises `kind` to what it promises), an I/O fault is cleared. `None` if the
    /// engine detected injected corruption, which ends the run.
    fn open_retrying(&mut self, kind: &mut CrashKind) -> Checked<Option<Opened>> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.summary.ops += 1;
            let e = match self.try_open() {
                Ok(opened) => return Ok(Some(opened)),
                Err(e) => e,
            };
            if attempts > 6 {
                return Err(self.fail(
                    FailureKind::UnexpectedError,
                    "open and a full scan to succeed once faults are cleared",
                    format!("{e}"),
                ));
            }
            if self.world.fs.is_dead() {
                self.probe("crash inside recovery");
                *kind = (*kind).max(self.crash(None, Some("open")));
                continue;
            }
            match e {
                Error::Corruption { .. } if self.corrupted => {
                    self.met("corruption detected at open");
                    self.summary.stopped_on_corruption = true;
                    return Ok(None);
                }
                Error::Io { .. } if self.fault_fired_this_step() => {
                    self.met("open failed on an I/O fault, retried");
                    self.world.fs.clear_faults();
                    self.world.fs.set_quota(None);
                }
                e => {
                    return Err(self.fail(
                        FailureKind::UnexpectedError,
                        "open and a full scan to succeed",
                        format!("{e}"),
                    ))
                }
            }
        }
    }

    /// One open, then a raw and a full scan; the database is dropped if either scan fails.
    fn try_open(&self) -> Result<Opened, Error> {
        let db = Db::open_with(self.world.env(), &self.db_dir, self.opts.clone())?;
        let raw: Result<Vec<_>, _> = db.scan_raw::<&[u8], _>(..).collect();
        match (snapshot(&db), raw) {
            (Ok(actual), Ok(raw)) => Ok(Opened { db, actual, raw }),
            (Err(e), _) | (_, Err(e)) => {
                drop(db);
                Err(e)
            }
        }
    }
}
