//! The oracle: a `BTreeMap` model of the acknowledged state, the history of acknowledged writes
//! since the last durability point, and the prefix-consistency check after a crash.

use sedimentdb::Db;
use std::collections::BTreeMap;

/// One operation of an acknowledged write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

/// An acknowledged (or indeterminate) write: a batch of operations applied atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub ops: Vec<Op>,
    /// True if the call returned an error: it may or may not have happened.
    pub indeterminate: bool,
}

/// The model: the state at the last point known durable, plus the writes acknowledged since.
#[derive(Debug, Clone, Default)]
pub struct Model {
    durable: BTreeMap<Vec<u8>, Vec<u8>>,
    pending: Vec<Write>,
    /// The acknowledged state (durable plus every determinate pending write).
    current: BTreeMap<Vec<u8>, Vec<u8>>,
}

fn apply(state: &mut BTreeMap<Vec<u8>, Vec<u8>>, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Put(k, v) => {
                state.insert(k.clone(), v.clone());
            }
            Op::Delete(k) => {
                state.remove(k);
            }
        }
    }
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

    /// Records an acknowledged write. `durable` is true if it was synced when acknowledged.
    pub fn ack(&mut self, ops: Vec<Op>, durable: bool) {
        apply(&mut self.current, &ops);
        self.pending.push(Write {
            ops,
            indeterminate: false,
        });
        if durable {
            self.mark_durable();
        }
    }

    /// Records a write whose call failed: after recovery it is either wholly there or absent.
    /// Until then reads may see it or not, so the model keeps it apart from `current`.
    pub fn failed(&mut self, ops: Vec<Op>) {
        self.pending.push(Write {
            ops,
            indeterminate: true,
        });
    }

    /// Everything acknowledged so far is durable (a sync or flush returned `Ok`).
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
        &self.current
    }

    pub fn get(&self, key: &[u8]) -> Option<&Vec<u8>> {
        self.current.get(key)
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
        let mut state = self.durable.clone();
        let pending = self.pending.len();
        // Candidate states: for each prefix length, with indeterminate writes in or out. Only
        // the determinate writes count toward "kept"; an indeterminate write is tried both ways.
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
        let mut candidates = vec![state.clone()];
        if must_keep == 0 && &state == actual {
            return Ok(self.settle(actual, 0, pending));
        }
        for (i, w) in self.pending.iter().enumerate() {
            if w.indeterminate {
                let mut with = Vec::new();
                for c in &candidates {
                    let mut c2 = c.clone();
                    apply(&mut c2, &w.ops);
                    with.push(c2);
                }
                candidates.extend(with);
                candidates.truncate(64);
            } else {
                for c in &mut candidates {
                    apply(c, &w.ops);
                }
                apply(&mut state, &w.ops);
            }
            if i + 1 >= must_keep && candidates.iter().any(|c| c == actual) {
                return Ok(self.settle(actual, i + 1, pending));
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
            self.durable.len(),
            first_difference(&self.current, actual)
        ))
    }

    fn settle(
        &mut self,
        actual: &BTreeMap<Vec<u8>, Vec<u8>>,
        kept: usize,
        pending: usize,
    ) -> Recovered {
        self.durable = actual.clone();
        self.current = actual.clone();
        self.pending.clear();
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
