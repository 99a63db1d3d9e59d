//! The read API and checkpoints in the simulator: range deletes, reverse and prefix scans,
//! cursor walks against `BTreeMap` ranges, snapshots held across flushes and compactions, and
//! checkpoints opened on a copy of the filesystem after a power loss.

use super::report::FailureKind;
use super::{bound, Checked, Entries, Flow, Runner};
use crate::model::{first_difference, Op};
use crate::workload::key_bytes;
use crate::World;
use sedimentdb::{Background, Cursor, Db, Error, Options, ReadOptions, WriteBatch};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::PathBuf;

type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// Most snapshots held at once.
const SNAPSHOTS_MAX: usize = 3;

/// The model's answer to a cursor move: the entry it lands on, if any.
fn land(
    state: &State,
    lo: Bound<&Vec<u8>>,
    hi: Bound<&Vec<u8>>,
    forward: bool,
    from: Bound<&Vec<u8>>,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let within = |k: &Vec<u8>| {
        let above = match lo {
            Bound::Included(l) => k >= l,
            Bound::Excluded(l) => k > l,
            Bound::Unbounded => true,
        };
        let below = match hi {
            Bound::Included(h) => k <= h,
            Bound::Excluded(h) => k < h,
            Bound::Unbounded => true,
        };
        above && below
    };
    let hit = if forward {
        state
            .range::<Vec<u8>, _>((from, Bound::Unbounded))
            .find(|(k, _)| within(k))
    } else {
        state
            .range::<Vec<u8>, _>((Bound::Unbounded, from))
            .rev()
            .find(|(k, _)| within(k))
    };
    hit.map(|(k, v)| (k.clone(), v.clone()))
}

impl Runner {
    /// One range tombstone over the `width` keys from `from`.
    pub(super) fn delete_range(&mut self, from: u32, width: u32, sync: bool) -> Checked<Flow> {
        let (s, e) = (key_bytes(from), key_bytes(from + width));
        let mut b = WriteBatch::new();
        b.delete_range(s.clone()..e.clone());
        self.write(b, vec![Op::DeleteRange(s, e)], sync)
    }

    /// A descending scan (or one from both ends in turn) equals the model's range.
    pub(super) fn scan_rev(
        &mut self,
        from: Option<u32>,
        to: Option<u32>,
        zigzag: bool,
    ) -> Checked<Flow> {
        self.summary.ops += 1;
        let lo = from.map(key_bytes);
        let hi = to.map(key_bytes);
        // A zigzag scan leaves the block cache as it was (it still reads cached blocks).
        let opts = ReadOptions {
            fill_cache: !zigzag,
        };
        if zigzag && self.opts.block_cache_bytes > 0 {
            self.probe("scan that left the block cache as it was");
        }
        let mut scan = self
            .db()
            .scan_with::<&Vec<u8>, _>((bound(&lo, true), bound(&hi, false)), &opts);
        let (mut front, mut back): (Entries, Entries) = (Vec::new(), Vec::new());
        let mut turn = false;
        let got = loop {
            let take_front = zigzag && turn;
            turn = !turn;
            let e = if take_front {
                scan.next()
            } else {
                scan.next_back()
            };
            match e {
                None => break Ok(()),
                Some(Err(e)) => break Err(e),
                Some(Ok(kv)) if take_front => front.push(kv),
                Some(Ok(kv)) => back.push(kv),
            }
        };
        back.reverse();
        front.extend(back);
        self.check_scan(&lo, &hi, got.map(|()| front))
    }

    /// The keys starting with a prefix of a key, in either direction.
    pub(super) fn prefix(&mut self, key: u32, len: u32, rev: bool) -> Checked<Flow> {
        self.summary.ops += 1;
        let mut p = key_bytes(key);
        p.truncate(len as usize);
        let scan = self.db().prefix(&p);
        let got: Result<Entries, Error> = if rev {
            scan.rev().collect()
        } else {
            scan.collect()
        };
        let mut got = match got {
            Ok(g) => g,
            Err(e) => return self.on_error(e, "prefix scan"),
        };
        if rev {
            got.reverse();
        }
        let want: Entries = self
            .model
            .state()
            .iter()
            .filter(|(k, _)| k.starts_with(&p))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if got != want {
            return Err(self.fail(
                FailureKind::WrongRead,
                format!(
                    "prefix {:?} scan (reverse: {rev}) equal to the model",
                    String::from_utf8_lossy(&p)
                ),
                first_difference(&want.into_iter().collect(), &got.into_iter().collect()),
            ));
        }
        Ok(Flow::Continue)
    }

    /// A cursor walk: after every move the cursor is where a walk over the model's `BTreeMap`
    /// is (the database now, or the oldest held snapshot and its state).
    pub(super) fn cursor_walk(
        &mut self,
        lo: Option<u32>,
        hi: Option<u32>,
        snapshot: bool,
        moves: &[u32],
    ) -> Checked<Flow> {
        self.summary.ops += 1;
        let (lo, hi) = (lo.map(key_bytes), hi.map(key_bytes));
        let range = (bound(&lo, true), bound(&hi, false));
        let on_snapshot = snapshot && !self.snaps.is_empty();
        let (mut c, state): (Cursor, State) = if on_snapshot {
            let (s, st) = &self.snaps[0];
            (s.cursor::<&Vec<u8>, _>(range), st.clone())
        } else {
            (
                self.db().cursor::<&Vec<u8>, _>(range),
                self.model.state().clone(),
            )
        };
        let mut at: Option<(Vec<u8>, Vec<u8>)> = None;
        let mut last_dir = None;
        for (i, m) in moves.iter().enumerate() {
            let k = key_bytes(m / 6);
            let (lo_b, hi_b) = (bound(&lo, true), bound(&hi, false));
            let want = match m % 6 {
                0 => {
                    c.seek(&k);
                    land(&state, lo_b, hi_b, true, Bound::Included(&k))
                }
                1 => {
                    c.seek_for_prev(&k);
                    land(&state, lo_b, hi_b, false, Bound::Included(&k))
                }
                2 => {
                    c.seek_to_first();
                    land(&state, lo_b, hi_b, true, Bound::Unbounded)
                }
                3 => {
                    c.seek_to_last();
                    land(&state, lo_b, hi_b, false, Bound::Unbounded)
                }
                op => {
                    let forward = op == 4;
                    let Some((cur, _)) = at.clone() else {
                        continue; // next or prev on an unpositioned cursor does nothing
                    };
                    if last_dir == Some(!forward) {
                        self.probe("cursor changed direction");
                    }
                    last_dir = Some(forward);
                    if forward {
                        c.next();
                    } else {
                        c.prev();
                    }
                    land(&state, lo_b, hi_b, forward, Bound::Excluded(&cur))
                }
            };
            if m % 6 < 4 {
                last_dir = Some(m % 6 == 0 || m % 6 == 2);
            }
            if !c.valid() {
                if let Err(e) = c.status() {
                    drop(c);
                    return self.on_error(e, "cursor walk");
                }
            }
            let got = c.valid().then(|| (c.key().to_vec(), c.value().to_vec()));
            if got != want {
                let show = |e: &Option<(Vec<u8>, Vec<u8>)>| {
                    e.as_ref().map_or("not valid".to_string(), |(k, v)| {
                        format!("{:?} ({} bytes)", String::from_utf8_lossy(k), v.len())
                    })
                };
                return Err(self.fail(
                    FailureKind::WrongRead,
                    format!(
                        "cursor (snapshot: {on_snapshot}) after move {i} ({}) at {}",
                        [
                            "seek",
                            "seek_for_prev",
                            "seek_to_first",
                            "seek_to_last",
                            "next",
                            "prev"
                        ][(m % 6) as usize],
                        show(&want)
                    ),
                    show(&got),
                ));
            }
            at = want;
        }
        Ok(Flow::Continue)
    }

    /// Takes a snapshot with the model's state now.
    pub(super) fn snapshot_take(&mut self) -> Checked<Flow> {
        if self.snaps.len() < SNAPSHOTS_MAX {
            self.summary.ops += 1;
            let s = self.db().snapshot();
            self.snaps.push((s, self.model.state().clone()));
        }
        Ok(Flow::Continue)
    }

    pub(super) fn snapshot_release(&mut self, which: u32) -> Checked<Flow> {
        if !self.snaps.is_empty() {
            let i = which as usize % self.snaps.len();
            self.snaps.remove(i);
        }
        Ok(Flow::Continue)
    }

    /// Reads through a held snapshot: every key it held and some it did not, a forward and a
    /// reverse scan, each equal to the state when it was taken.
    pub(super) fn snapshot_read(&mut self, which: u32) -> Checked<Flow> {
        if self.snaps.is_empty() {
            return Ok(Flow::Continue);
        }
        self.summary.ops += 1;
        let st = self.db().stats();
        if st.versions_kept_for_snapshots > 0 {
            self.probe("snapshot read a version kept only for it");
        }
        if st.compactions > 0 {
            self.probe("snapshot read after a compaction");
        }
        if st.seqs_zeroed > 0 {
            self.probe("snapshot read after sequence numbers were zeroed");
        }
        let i = which as usize % self.snaps.len();
        let (snap, want) = &self.snaps[i];
        let fwd: Result<Entries, Error> = snap.iter().collect();
        let rev: Result<Entries, Error> = snap.iter().rev().collect();
        let mut gets = Vec::new();
        for (n, k) in want.keys().take(50).enumerate() {
            gets.push((k.clone(), snap.get(k)));
            let absent = key_bytes(n as u32 * 7 + 1);
            gets.push((absent.clone(), snap.get(&absent)));
        }
        let want = want.clone();
        let (fwd, rev) = match (fwd, rev) {
            (Ok(f), Ok(r)) => (f, r),
            (Err(e), _) | (_, Err(e)) => return self.on_error(e, "snapshot scan"),
        };
        let mut rev = rev;
        rev.reverse();
        for (name, got) in [("forward", fwd), ("reverse", rev)] {
            let got: State = got.into_iter().collect();
            if got != want {
                return Err(self.fail(
                    FailureKind::WrongRead,
                    format!("a {name} scan of snapshot {i} equal to the state when it was taken"),
                    first_difference(&want, &got),
                ));
            }
        }
        for (k, got) in gets {
            match got {
                Ok(v) if v.as_ref() == want.get(&k) => {}
                Ok(v) => {
                    return Err(self.fail(
                        FailureKind::WrongRead,
                        format!(
                            "snapshot {i} get {:?} = {:?} bytes",
                            String::from_utf8_lossy(&k),
                            want.get(&k).map(Vec::len)
                        ),
                        format!("{:?} bytes", v.map(|v| v.len())),
                    ))
                }
                Err(e) => return self.on_error(e, "snapshot get"),
            }
        }
        Ok(Flow::Continue)
    }

    /// A checkpoint into a new directory. Whatever the call returned, the directory is opened
    /// on a copy of the filesystem after a power loss: an acknowledged checkpoint must open and
    /// equal the acknowledged state at the call; an interrupted one must be refused (or not
    /// exist, or be empty) unless it is that same state.
    pub(super) fn checkpoint(&mut self) -> Checked<Flow> {
        if self.model.has_indeterminate() {
            // A write of unknown outcome may or may not be in the WAL the checkpoint copies.
            return Ok(Flow::Continue);
        }
        self.summary.ops += 1;
        self.checkpoints += 1;
        let dir = PathBuf::from(format!("/checkpoint-{}", self.checkpoints));
        let want = self.model.state().clone();
        let before = self.db().stats();
        let r = self.db().checkpoint(&dir);
        let after = self.db().stats();
        if after.checkpoint_tables_linked > before.checkpoint_tables_linked {
            self.probe("checkpoint with hard-linked tables");
        }
        if after.checkpoint_tables_copied > before.checkpoint_tables_copied {
            self.probe("checkpoint with copied tables");
        }
        if r.is_ok() && before.immutable_memtables > 0 {
            self.probe("checkpoint of waiting immutable memtables");
        }
        self.check_checkpoint(&dir, &want, r.is_ok())?;
        match r {
            Ok(()) => Ok(Flow::Continue),
            Err(e) => self.on_error(e, "checkpoint"),
        }
    }

    fn check_checkpoint(&mut self, dir: &PathBuf, want: &State, acknowledged: bool) -> Checked<()> {
        let fork = World {
            fs: std::sync::Arc::new(self.world.fs.fork()),
            clock: self.world.clock.clone(),
        };
        let c = &mut self.chooser;
        fork.fs.power_loss(&mut |n| c.choose(n));
        let opts = Options {
            create_if_missing: false,
            background: Background::Inline,
            ..self.opts.clone()
        };
        let opened = Db::open_with(fork.env(), dir, opts);
        let got: Result<State, Error> = opened.and_then(|db| {
            let s = db.iter().collect();
            drop(db);
            s
        });
        match got {
            Ok(got) if &got == want => Ok(()),
            Ok(got) => Err(self.fail(
                FailureKind::Checkpoint,
                format!(
                    "the checkpoint in {} to hold the {} keys acknowledged before it",
                    dir.display(),
                    want.len()
                ),
                first_difference(want, &got),
            )),
            // Tables are linked or copied as they are: damage injected into the source shows
            // in the checkpoint, and must be reported there.
            Err(Error::Corruption { .. }) if self.corrupted => {
                self.met("corruption detected in a checkpoint");
                Ok(())
            }
            Err(Error::IncompleteCheckpoint { .. }) | Err(Error::InvalidArgument(_))
                if !acknowledged =>
            {
                self.probe("interrupted checkpoint refused at open");
                Ok(())
            }
            Err(e) => Err(self.fail(
                FailureKind::Checkpoint,
                format!(
                    "the checkpoint in {} (acknowledged: {acknowledged}) to open after a power loss",
                    dir.display()
                ),
                format!("{e}"),
            )),
        }
    }
}
