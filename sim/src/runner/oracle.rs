//! The oracle: every check of the engine's answers against the model — point reads, scans,
//! held scans, the full scan, the raw view and its tombstones (rule 5), the state recovered by
//! an open (rules 1 and 2, no orphaned tables) — and which errors the engine may return
//! (`on_error`), with how the run reacts to each.

use super::open::Opened;
use super::report::FailureKind;
use super::{bound, Checked, CrashKind, Entries, Flow, Runner};
use crate::model::{first_difference, snapshot};
use crate::model::{Mismatch, RangeTomb};
use sedimentdb::internals::filename::{self, FileKind};
use sedimentdb::{Db, Error, RawEntry, RawValue};
use std::collections::{BTreeMap, BTreeSet};

fn show(v: Option<&Vec<u8>>) -> String {
    match v {
        None => "absent".into(),
        Some(v) if v.len() > 24 => format!("{} bytes {:?}...", v.len(), &v[..24]),
        Some(v) => format!("{v:?}"),
    }
}

impl Runner {
    /// Reacts to an error from the engine: a crash point reached, detected corruption, a
    /// read-only refusal and an I/O error are all acceptable; any other error is a violation.
    pub(super) fn on_error(&mut self, e: Error, what: &str) -> Checked<Flow> {
        if let Some(u) = self.world.fs.stats().first_unlinked_use {
            return Err(self.fail(
                FailureKind::UnexpectedError,
                format!("{what}: no file read after its removal"),
                format!("strict-unlink violation: {u} ({e})"),
            ));
        }
        if self.world.fs.is_dead() {
            self.met("error at the crash point");
            return self.crash_and_reopen(None);
        }
        match e {
            Error::Corruption { .. } if self.corrupted => {
                self.met("corruption detected");
                self.summary.stopped_on_corruption = true;
                Ok(Flow::Stop)
            }
            Error::ReadOnly { ref cause } => {
                if let Error::Io { op, .. } = &**cause {
                    self.probe(&format!("read-only after a failed {op}"));
                }
                self.met("write refused while read-only");
                self.refused += 1;
                if self.refused < 3 {
                    return Ok(Flow::Continue);
                }
                // As an application would: reopen to recover from what is on disk.
                self.refused = 0;
                self.met("reopened after read-only");
                self.close_and_reopen()
            }
            Error::Io { .. } if self.fault_fired_this_step() => {
                self.met("I/O error returned");
                Ok(Flow::Continue)
            }
            e @ Error::Io { .. } => Err(self.fail(
                FailureKind::UnexpectedError,
                format!("{what} to succeed: no fault was injected in this step"),
                format!("{e}"),
            )),
            e => Err(self.fail(
                FailureKind::UnexpectedError,
                format!("{what} to succeed or fail with an I/O error"),
                format!("{e}"),
            )),
        }
    }

    /// True if the filesystem fired a fault (an I/O error, a short write, a full disk) since
    /// the current step began: only then may the engine return an I/O error.
    pub(super) fn fault_fired_this_step(&self) -> bool {
        self.world.fs.stats().injected_total() > self.injected_before_step
    }

    /// What an open recovered after a close or crash of `kind` agrees with the model, and the
    /// table files on disk are exactly the live ones. Returns the database.
    pub(super) fn check_recovery(&mut self, kind: CrashKind, opened: Opened) -> Checked<Db> {
        let Opened { db, actual, raw } = opened;
        self.check_recovered_state(kind, &actual, raw)?;
        if kind != CrashKind::Clean {
            self.summary.crashes_recovered += 1;
            self.met("crash recovered");
        }
        self.check_table_files(&db)?;
        Ok(db)
    }

    /// Rules 1 and 2: after a clean close or a process crash, every acknowledged write; after a
    /// power loss, a prefix of them holding every durable one. The tombstones must be the
    /// candidate's, less those past their grace period.
    fn check_recovered_state(
        &mut self,
        kind: CrashKind,
        actual: &BTreeMap<Vec<u8>, Vec<u8>>,
        raw: Vec<RawEntry>,
    ) -> Checked<()> {
        let keep_all = kind != CrashKind::Power;
        let raw_ranges = range_pieces(&raw);
        let raw_tombs: BTreeMap<Vec<u8>, u64> = raw
            .into_iter()
            .filter_map(|e| match e.value {
                RawValue::Tombstone { deleted_at_ms } => Some((e.key, deleted_at_ms)),
                RawValue::Put(_) | RawValue::RangeTombstone { .. } => None,
            })
            .collect();
        let (now, high, grace) = (self.now(), self.clock_high, self.grace_ms);
        // The engine's tombstones are the candidate's, less those past their grace period,
        // which a compaction may have dropped.
        let tombs_ok = |want: &BTreeMap<Vec<u8>, u64>, ranges: &[RangeTomb]| {
            raw_tombs.iter().all(|(k, t)| want.get(k) == Some(t))
                && want.iter().all(|(k, t)| {
                    raw_tombs.contains_key(k) || high.max(now) >= t.saturating_add(grace)
                })
                && ranges_agree(&raw_ranges, ranges, high.max(now), grace).is_ok()
        };
        if let Err(msg) = self.model.recover_with(actual, keep_all, tombs_ok) {
            return Err(self.fail(
                match self
                    .model
                    .classify_mismatch(actual, keep_all, &raw_ranges, &raw_tombs)
                {
                    Mismatch::Lost => FailureKind::LostWrite,
                    Mismatch::Invented => FailureKind::InventedWrite,
                    Mismatch::NotAPrefix => FailureKind::NotAPrefix,
                },
                match kind {
                    CrashKind::Power => {
                        "a prefix of the acknowledged writes holding every durable one (rule 2)"
                    }
                    _ => "every acknowledged write (no power loss)",
                },
                msg,
            ));
        }
        Ok(())
    }

    /// No orphaned and no doubly counted tables: the files on disk are exactly the live ones.
    fn check_table_files(&self, db: &Db) -> Checked<()> {
        let files = self
            .world
            .fs
            .names(self.db_dir.as_path())
            .iter()
            .filter(|n| matches!(filename::parse(n), Some(FileKind::Table(_))))
            .count();
        let live = db.stats().tables;
        if files != live {
            return Err(self.fail(
                FailureKind::TableFiles,
                format!("{live} table files after open, one per live table"),
                format!("{files} table files"),
            ));
        }
        Ok(())
    }

    /// Point reads of every model key agree with the model.
    pub(super) fn check_points(&mut self) -> Checked<Flow> {
        let keys: Vec<Vec<u8>> = self.model.state().keys().take(300).cloned().collect();
        for k in keys {
            match self.db().get(&k) {
                Ok(v) if v.as_ref() == self.model.get(&k) => {}
                Ok(v) => {
                    return Err(self.fail(
                        FailureKind::WrongRead,
                        format!(
                            "get {:?} = {}",
                            String::from_utf8_lossy(&k),
                            show(self.model.get(&k))
                        ),
                        show(v.as_ref()),
                    ))
                }
                Err(e) => return self.on_error(e, "get"),
            }
        }
        Ok(Flow::Continue)
    }

    /// A full scan equals the model.
    pub(super) fn check_full(&mut self) -> Checked<Flow> {
        if self.db.is_none() {
            return Ok(Flow::Continue);
        }
        match snapshot(self.db()) {
            Ok(actual) if &actual == self.model.state() => Ok(Flow::Continue),
            Ok(actual) => Err(self.fail(
                FailureKind::WrongRead,
                format!(
                    "full scan equal to the model ({} keys)",
                    self.model.state().len()
                ),
                first_difference(self.model.state(), &actual),
            )),
            Err(e) => self.on_error(e, "full scan"),
        }
    }

    /// A point read (of the `get` step) agrees with the model.
    pub(super) fn check_get(
        &mut self,
        k: &[u8],
        got: Result<Option<Vec<u8>>, Error>,
    ) -> Checked<Flow> {
        match got {
            Ok(v) if v.as_ref() == self.model.get(k) => Ok(Flow::Continue),
            Ok(v) => Err(self.fail(
                FailureKind::WrongRead,
                format!("get = {}", show(self.model.get(k))),
                show(v.as_ref()),
            )),
            Err(e) => self.on_error(e, "get"),
        }
    }

    /// A scan from `lo` (inclusive) to `hi` (exclusive) equals the model's range.
    pub(super) fn check_scan(
        &mut self,
        lo: &Option<Vec<u8>>,
        hi: &Option<Vec<u8>>,
        got: Result<Entries, Error>,
    ) -> Checked<Flow> {
        let got = match got {
            Ok(got) => got,
            Err(e) => return self.on_error(e, "scan"),
        };
        let want: Entries = match (lo, hi) {
            (Some(l), Some(h)) if l >= h => Vec::new(),
            _ => self
                .model
                .state()
                .range::<Vec<u8>, _>((bound(lo, true), bound(hi, false)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        if got == want {
            Ok(Flow::Continue)
        } else {
            let g: BTreeMap<_, _> = got.into_iter().collect();
            let w: BTreeMap<_, _> = want.into_iter().collect();
            Err(self.fail(
                FailureKind::WrongRead,
                "scan equal to the model",
                first_difference(&w, &g),
            ))
        }
    }

    /// A scan held open across other steps returns the state as of its start.
    pub(super) fn check_held_scan(
        &mut self,
        want: Entries,
        got: Result<Entries, Error>,
    ) -> Checked<Flow> {
        match got {
            Ok(got) if got == want => Ok(Flow::Continue),
            Ok(got) => {
                let g: BTreeMap<_, _> = got.into_iter().collect();
                let w: BTreeMap<_, _> = want.into_iter().collect();
                Err(self.fail(
                    FailureKind::WrongRead,
                    "a held scan to return the state as of its start",
                    first_difference(&w, &g),
                ))
            }
            Err(e) => self.on_error(e, "held scan"),
        }
    }

    /// Rule 5 on the raw view: every entry agrees with the model; every tombstone younger than
    /// the grace period is there with its deletion time; after a full compaction, no older one.
    pub(super) fn check_raw(&mut self, after_full_compaction: bool) -> Checked<Flow> {
        let raw: Result<Vec<_>, _> = self.db().scan_raw::<&[u8], _>(..).collect();
        let raw = match raw {
            Ok(r) => r,
            Err(e) => return self.on_error(e, "raw scan"),
        };
        let now = self.now();
        let mut seen = BTreeSet::new();
        let ranges = range_pieces(&raw);
        for e in &raw {
            self.check_raw_entry(e, now, after_full_compaction)?;
            if let RawValue::Tombstone { .. } = e.value {
                seen.insert(e.key.clone());
            }
        }
        let live = raw
            .iter()
            .filter(|e| matches!(e.value, RawValue::Put(_)))
            .count();
        if live != self.model.state().len() {
            return Err(self.fail(
                FailureKind::RawView,
                format!("{} live keys in the raw view", self.model.state().len()),
                format!("{live}"),
            ));
        }
        self.check_young_tombstones(&seen, now)?;
        self.check_raw_ranges(&ranges, now, after_full_compaction)?;
        Ok(Flow::Continue)
    }

    /// The raw view's range tombstones (start, end, deletion time): each is a piece of an
    /// acknowledged range delete with that time, in order; wherever the newest range delete of
    /// the model is younger than the grace period, the view shows it; after a full compaction,
    /// none is past its grace period.
    fn check_raw_ranges(
        &mut self,
        ranges: &[(Vec<u8>, Vec<u8>, u64)],
        now: u64,
        after_full_compaction: bool,
    ) -> Checked<()> {
        let show = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
        if !ranges.is_empty() {
            self.probe("range tombstone in the raw view");
        }
        let high = self.clock_high.max(now);
        if let Err((expected, actual)) =
            ranges_agree(ranges, self.model.ranges(), high, self.grace_ms)
        {
            return Err(self.fail(FailureKind::RawView, expected, actual));
        }
        for (s, e, t) in ranges {
            if after_full_compaction && now >= t.saturating_add(self.grace_ms) {
                return Err(self.fail(
                    FailureKind::RawView,
                    "no range tombstone past its grace period after a full compaction",
                    format!(
                        "{}..{} deleted at {t}, now {now}, grace {} ms",
                        show(s),
                        show(e),
                        self.grace_ms
                    ),
                ));
            }
        }
        Ok(())
    }

    /// One entry of the raw view: a value the model holds, or a tombstone the model holds with
    /// the same deletion time (and, after a full compaction, still within its grace period).
    fn check_raw_entry(&self, e: &RawEntry, now: u64, after_full_compaction: bool) -> Checked<()> {
        match &e.value {
            // Checked with the others by `check_raw_ranges`.
            RawValue::RangeTombstone { .. } => {}
            RawValue::Put(v) => {
                if self.model.get(&e.key) != Some(v) {
                    return Err(self.fail(
                        FailureKind::RawView,
                        format!(
                            "raw view value of {:?} = {}",
                            String::from_utf8_lossy(&e.key),
                            show(self.model.get(&e.key))
                        ),
                        show(Some(v)),
                    ));
                }
            }
            RawValue::Tombstone { deleted_at_ms } => {
                let want = self.model.tombstones().get(&e.key);
                if self.model.get(&e.key).is_some() || want != Some(deleted_at_ms) {
                    return Err(self.fail(
                        FailureKind::RawView,
                        format!(
                            "tombstone of {:?} deleted at {want:?}",
                            String::from_utf8_lossy(&e.key)
                        ),
                        format!("tombstone deleted at {deleted_at_ms}"),
                    ));
                }
                if after_full_compaction && now >= deleted_at_ms.saturating_add(self.grace_ms) {
                    return Err(self.fail(
                        FailureKind::RawView,
                        "no tombstone past its grace period after a full compaction (rule 5)",
                        format!(
                            "{:?} deleted at {deleted_at_ms}, now {now}, grace {} ms",
                            String::from_utf8_lossy(&e.key),
                            self.grace_ms
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every tombstone of the model younger than the grace period (by the latest the clock has
    /// read) was `seen` in the raw view.
    fn check_young_tombstones(&self, seen: &BTreeSet<Vec<u8>>, now: u64) -> Checked<()> {
        let high = self.clock_high.max(now);
        for (k, t) in self.model.tombstones() {
            if high < t.saturating_add(self.grace_ms) && !seen.contains(k) {
                return Err(self.fail(
                    FailureKind::RawView,
                    "every tombstone younger than the grace period in the raw view (rule 5)",
                    format!(
                        "{:?} deleted at {t} is missing at {now} (grace {} ms)",
                        String::from_utf8_lossy(k),
                        self.grace_ms
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The range tombstones of a raw view: (start, end, deletion time), in order.
fn range_pieces(raw: &[RawEntry]) -> Vec<(Vec<u8>, Vec<u8>, u64)> {
    raw.iter()
        .filter_map(|e| match &e.value {
            RawValue::RangeTombstone { end, deleted_at_ms } => {
                Some((e.key.clone(), end.clone(), *deleted_at_ms))
            }
            _ => None,
        })
        .collect()
}

/// Whether the range tombstones a raw view shows (start, end, deletion time, in order) agree
/// with the model's range deletes: each shown piece lies inside a range delete written with
/// its time, and wherever the newest range delete covering a key is younger than the grace
/// period by `high` (the latest the clock read), the view shows it there. Otherwise what was
/// expected and what was found.
pub(super) fn ranges_agree(
    ranges: &[(Vec<u8>, Vec<u8>, u64)],
    model: &[RangeTomb],
    high: u64,
    grace_ms: u64,
) -> Result<(), (String, String)> {
    let show = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
    for (i, (s, e, t)) in ranges.iter().enumerate() {
        let ordered = i == 0 || ranges[i - 1].1 <= *s;
        let written = model
            .iter()
            .any(|r| r.start <= *s && *e <= r.end && r.time_ms == *t);
        if !ordered || s >= e || !written {
            return Err((
                "each range tombstone of the raw view a piece of a range delete written with \
                 its deletion time, in order"
                    .into(),
                format!("{}..{} deleted at {t}", show(s), show(e)),
            ));
        }
    }
    let mut points: Vec<&Vec<u8>> = model.iter().flat_map(|r| [&r.start, &r.end]).collect();
    points.sort();
    points.dedup();
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        let Some(newest) = model.iter().rev().find(|r| r.start <= *a && *b <= r.end) else {
            continue;
        };
        if high >= newest.time_ms.saturating_add(grace_ms) {
            continue;
        }
        // The view must cover [a, b) with pieces deleted at the newest one's time.
        let mut x = a.clone();
        while x < *b {
            match ranges.iter().find(|(s, e, _)| *s <= x && x < *e) {
                Some((_, e, t)) if *t == newest.time_ms => x = e.clone(),
                found => {
                    return Err((
                        format!(
                            "the range delete {}..{} deleted at {} (younger than the grace \
                             period of {grace_ms} ms, the newest over {}) in the raw view",
                            show(&newest.start),
                            show(&newest.end),
                            newest.time_ms,
                            show(&x)
                        ),
                        format!("{found:?}"),
                    ));
                }
            }
        }
    }
    Ok(())
}
