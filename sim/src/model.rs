//! The oracle: a `BTreeMap` model of the acknowledged state, the history of acknowledged writes
//! since the last durability point, and the prefix-consistency check after a crash.

use sedimentdb::Db;
use std::collections::BTreeMap;

/// One operation of an acknowledged write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    /// Deletes every key in `[start, end)`.
    DeleteRange(Vec<u8>, Vec<u8>),
}

impl Op {
    /// True if the operation writes key `k`.
    pub fn touches(&self, k: &[u8]) -> bool {
        match self {
            Op::Put(key, _) | Op::Delete(key) => key == k,
            Op::DeleteRange(s, e) => &s[..] <= k && k < &e[..],
        }
    }

    /// What the operation leaves at `k` if it touches it: the value, or `None` (deleted).
    pub fn leaves(&self, k: &[u8]) -> Option<Option<&Vec<u8>>> {
        if !self.touches(k) {
            return None;
        }
        Some(match self {
            Op::Put(_, v) => Some(v),
            Op::Delete(_) | Op::DeleteRange(..) => None,
        })
    }
}

/// A range tombstone of the model: `[start, end)` deleted at `time_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeTomb {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
    pub time_ms: u64,
}

/// An acknowledged (or indeterminate) write: a batch of operations applied atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub ops: Vec<Op>,
    /// True if the call returned an error: it may or may not have happened.
    pub indeterminate: bool,
    /// The clock when it was written: the deletion time of its tombstones.
    pub time_ms: u64,
}

/// Keys and values, the deletion time of each key whose newest write is a point delete, and
/// every range delete in the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct State {
    kv: BTreeMap<Vec<u8>, Vec<u8>>,
    tombs: BTreeMap<Vec<u8>, u64>,
    ranges: Vec<RangeTomb>,
}

impl State {
    fn apply(&mut self, w: &Write) {
        for op in &w.ops {
            match op {
                Op::Put(k, v) => {
                    self.kv.insert(k.clone(), v.clone());
                    self.tombs.remove(k);
                }
                Op::Delete(k) => {
                    self.kv.remove(k);
                    self.tombs.insert(k.clone(), w.time_ms);
                }
                Op::DeleteRange(s, e) => {
                    if s >= e {
                        continue;
                    }
                    let keys: Vec<Vec<u8>> = self
                        .kv
                        .range::<Vec<u8>, _>(s..e)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in keys {
                        self.kv.remove(&k);
                    }
                    let keys: Vec<Vec<u8>> = self
                        .tombs
                        .range::<Vec<u8>, _>(s..e)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in keys {
                        self.tombs.remove(&k);
                    }
                    self.ranges.push(RangeTomb {
                        start: s.clone(),
                        end: e.clone(),
                        time_ms: w.time_ms,
                    });
                }
            }
        }
    }
}

/// The model: the state at the last point known durable, plus the writes acknowledged since.
#[derive(Debug, Clone, Default)]
pub struct Model {
    durable: State,
    pending: Vec<Write>,
    /// The acknowledged state (durable plus every determinate pending write).
    current: State,
    /// Writes refused (read-only) since the last recovery: none of them may ever appear. Kept
    /// only to tell an invented write from a lost one when a recovery check fails.
    refused: Vec<Write>,
}

/// Why a recovered state is no allowed prefix (see [`Model::classify_mismatch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// A key no uncertain write touched lacks what a write that had to survive left there.
    Lost,
    /// A key no uncertain write touched holds what a refused write would have left there.
    Invented,
    /// Only keys that uncertain writes touched differ: a hole, a reordering, half a batch.
    NotAPrefix,
}

/// What the check after a crash found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// How many of the pending writes survived.
    pub kept: usize,
    /// How many were pending.
    pub pending: usize,
}

impl Model {
    pub fn new() -> Model {
        Model::default()
    }

    /// Records an acknowledged write made when the clock read `time_ms`. `durable` is true if
    /// it was synced when acknowledged.
    pub fn ack(&mut self, ops: Vec<Op>, durable: bool, time_ms: u64) {
        let w = Write {
            ops,
            indeterminate: false,
            time_ms,
        };
        self.current.apply(&w);
        self.pending.push(w);
        if durable {
            self.mark_durable();
        }
    }

    /// Records a write whose call failed: after recovery it is either wholly there or absent.
    /// Until then reads may see it or not, so the model keeps it apart from `current`.
    pub fn failed(&mut self, ops: Vec<Op>, time_ms: u64) {
        self.pending.push(Write {
            ops,
            indeterminate: true,
            time_ms,
        });
    }

    /// Everything acknowledged so far is durable (a sync or flush returned `Ok`).
    /// Records a write the engine refused (read-only): it must never appear.
    pub fn refused(&mut self, ops: Vec<Op>, time_ms: u64) {
        self.refused.push(Write {
            ops,
            indeterminate: false,
            time_ms,
        });
    }

    /// Why `actual` matched no candidate in [`Model::recover_with`]: compares it with the state
    /// that had to survive (the acknowledged state without a power loss, the durable state
    /// with one), ignoring keys that writes still uncertain touched.
    /// `shown_ranges` are the range tombstones the recovered database shows (start, end,
    /// deletion time): an uncertain range delete explains a key only if it is among them.
    pub fn classify_mismatch(
        &self,
        actual: &BTreeMap<Vec<u8>, Vec<u8>>,
        keep_all_acked: bool,
        shown_ranges: &[(Vec<u8>, Vec<u8>, u64)],
        shown_tombs: &BTreeMap<Vec<u8>, u64>,
    ) -> Mismatch {
        let (base, uncertain): (&State, Vec<&Write>) = if keep_all_acked {
            (
                &self.current,
                self.pending.iter().filter(|w| w.indeterminate).collect(),
            )
        } else {
            (&self.durable, self.pending.iter().collect())
        };
        let shown = |k: &[u8], t: u64| {
            shown_ranges
                .iter()
                .any(|(s, e, time)| &s[..] <= k && k < &e[..] && *time == t)
        };
        let touches = |w: &Write, k: &[u8]| {
            w.ops.iter().any(|op| match op {
                Op::DeleteRange(..) => op.touches(k) && shown(k, w.time_ms),
                _ => op.touches(k),
            })
        };
        // What the last op of a refused write on `k` would have left: Some(value) or None.
        let refused_left = |k: &[u8]| -> Vec<Option<&Vec<u8>>> {
            let mut out = Vec::new();
            for w in &self.refused {
                out.extend(w.ops.iter().filter_map(|op| op.leaves(k)));
            }
            out
        };
        let mut invented = false;
        let keys: std::collections::BTreeSet<&Vec<u8>> =
            base.kv.keys().chain(actual.keys()).collect();
        for k in keys {
            let (want, got) = (base.kv.get(k), actual.get(k));
            if want == got || uncertain.iter().any(|w| touches(w, k)) {
                continue;
            }
            if refused_left(k).contains(&got) {
                invented = true;
            } else {
                return Mismatch::Lost;
            }
        }
        if invented {
            return Mismatch::Invented;
        }
        // Every key holds what it must, yet no candidate matched: a delete that had to survive
        // left no tombstone (or range tombstone) behind.
        let tomb_lost = base.tombs.keys().any(|k| !shown_tombs.contains_key(k))
            || base.ranges.iter().any(|r| {
                !shown_ranges
                    .iter()
                    .any(|(s, e, t)| *s <= r.start && r.start < *e && *t == r.time_ms)
            });
        if &base.kv == actual && tomb_lost {
            Mismatch::Lost
        } else {
            Mismatch::NotAPrefix
        }
    }

    pub fn mark_durable(&mut self) {
        if self.pending.iter().any(|w| w.indeterminate) {
            // An indeterminate write is never made durable by the model: recovery decides.
            return;
        }
        self.durable = self.current.clone();
        self.pending.clear();
    }

    /// The acknowledged state.
    pub fn state(&self) -> &BTreeMap<Vec<u8>, Vec<u8>> {
        &self.current.kv
    }

    /// Keys whose newest acknowledged write is a delete, with its time.
    pub fn tombstones(&self) -> &BTreeMap<Vec<u8>, u64> {
        &self.current.tombs
    }

    /// The acknowledged range deletes, oldest first.
    pub fn ranges(&self) -> &[RangeTomb] {
        &self.current.ranges
    }

    /// True if a write whose outcome is unknown waits for the next recovery.
    pub fn has_indeterminate(&self) -> bool {
        self.pending.iter().any(|w| w.indeterminate)
    }

    pub fn get(&self, key: &[u8]) -> Option<&Vec<u8>> {
        self.current.kv.get(key)
    }

    /// Writes acknowledged since the last durability point.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// After a crash and reopen: finds the prefix of pending writes the database holds (each
    /// indeterminate write either applied or not), or says why none matches. On success the
    /// model becomes that state, all durable.
    pub fn recover(
        &mut self,
        actual: &BTreeMap<Vec<u8>, Vec<u8>>,
        keep_all_acked: bool,
    ) -> Result<Recovered, String> {
        self.recover_with(actual, keep_all_acked, |_, _| true)
    }

    /// Like [`Model::recover`], with a further test of each candidate's tombstones (the keys
    /// deleted, with their deletion times), which the key-value state alone cannot tell apart:
    /// a delete of an absent key changes nothing a scan sees.
    pub fn recover_with(
        &mut self,
        actual: &BTreeMap<Vec<u8>, Vec<u8>>,
        keep_all_acked: bool,
        tombs_ok: impl Fn(&BTreeMap<Vec<u8>, u64>, &[RangeTomb]) -> bool,
    ) -> Result<Recovered, String> {
        let pending = self.pending.len();
        // With `keep_all_acked` (a process crash or clean reopen), every determinate write must
        // be there; only the indeterminate ones may go either way.
        let must_keep = if keep_all_acked {
            self.pending
                .iter()
                .rposition(|w| !w.indeterminate)
                .map_or(0, |i| i + 1)
        } else {
            0
        };
        // Candidate states: for each prefix length, with indeterminate writes in or out.
        let mut candidates = vec![self.durable.clone()];
        if must_keep == 0
            && &self.durable.kv == actual
            && tombs_ok(&self.durable.tombs, &self.durable.ranges)
        {
            let s = self.durable.clone();
            return Ok(self.settle(s, 0, pending));
        }
        for (i, w) in self.pending.iter().enumerate() {
            if w.indeterminate {
                let mut with = Vec::new();
                for c in &candidates {
                    let mut c2 = c.clone();
                    c2.apply(w);
                    with.push(c2);
                }
                candidates.extend(with);
                candidates.truncate(64);
            } else {
                for c in &mut candidates {
                    c.apply(w);
                }
            }
            if i + 1 >= must_keep {
                if let Some(c) = candidates
                    .iter()
                    .find(|c| &c.kv == actual && tombs_ok(&c.tombs, &c.ranges))
                {
                    let c = c.clone();
                    return Ok(self.settle(c, i + 1, pending));
                }
            }
        }
        let what = if keep_all_acked {
            "the full list"
        } else {
            "no prefix"
        };
        Err(format!(
            "the recovered state ({} keys) equals {what} of the {pending} writes pending since \
             the last durability point (durable state has {} keys); first difference from the \
             full acknowledged state: {}",
            actual.len(),
            self.durable.kv.len(),
            first_difference(&self.current.kv, actual)
        ))
    }

    fn settle(&mut self, s: State, kept: usize, pending: usize) -> Recovered {
        self.durable = s.clone();
        self.current = s;
        self.pending.clear();
        self.refused.clear();
        Recovered { kept, pending }
    }
}

/// Describes the first key where two states differ.
pub fn first_difference(
    want: &BTreeMap<Vec<u8>, Vec<u8>>,
    got: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> String {
    let keys: std::collections::BTreeSet<&Vec<u8>> = want.keys().chain(got.keys()).collect();
    for k in keys {
        let (w, g) = (want.get(k), got.get(k));
        if w != g {
            return format!(
                "key {:?}: model {:?}, database {:?}",
                String::from_utf8_lossy(k),
                w.map(|v| String::from_utf8_lossy(v).into_owned()),
                g.map(|v| String::from_utf8_lossy(v).into_owned())
            );
        }
    }
    "none".to_string()
}

/// Reads the whole database with a full scan.
pub fn snapshot(db: &Db) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, sedimentdb::Error> {
    db.iter().collect()
}
