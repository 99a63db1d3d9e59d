//! The clients' history and its check: single-key registers, linearizable (a small
//! Wing–Gong search with memoized states).

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    Write(String),
    Delete,
    Read(Option<String>),
}

/// One client operation: its key, what it did, when it was invoked and when it completed
/// (`None`: no answer, it may or may not have taken effect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Op {
    pub(super) key: u32,
    pub(super) kind: Kind,
    pub(super) invoke: Duration,
    pub(super) complete: Option<Duration>,
}

pub(super) fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

/// Whether one register's history has a linearization: each completed operation takes effect
/// once between its invocation and completion, an unanswered write at most once after its
/// invocation, and each read returns the value of the last write before it.
pub(super) fn linearizable(ops: &[Op]) -> bool {
    fn go(
        ops: &[Op],
        done: &mut Vec<bool>,
        state: Option<String>,
        seen: &mut BTreeSet<(Vec<bool>, Option<String>)>,
    ) -> bool {
        if ops
            .iter()
            .zip(done.iter())
            .all(|(o, d)| *d || o.complete.is_none())
        {
            return true;
        }
        if !seen.insert((done.clone(), state.clone())) {
            return false;
        }
        // The earliest completion among the operations not yet placed: nothing invoked after
        // it can come first.
        let bound = ops
            .iter()
            .zip(done.iter())
            .filter(|(_, d)| !**d)
            .filter_map(|(o, _)| o.complete)
            .min()
            .unwrap_or(Duration::MAX);
        for i in 0..ops.len() {
            if done[i] || ops[i].invoke > bound {
                continue;
            }
            let next = match &ops[i].kind {
                Kind::Write(v) => Some(Some(v.clone())),
                Kind::Delete => Some(None),
                Kind::Read(r) => (*r == state).then(|| state.clone()),
            };
            if let Some(s) = next {
                done[i] = true;
                if go(ops, done, s, seen) {
                    return true;
                }
                done[i] = false;
            }
        }
        false
    }
    let mut done = vec![false; ops.len()];
    go(ops, &mut done, None, &mut BTreeSet::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checker_rejects_a_stale_read_and_accepts_an_unknown_write() {
        let ms = Duration::from_millis;
        let op = |kind, i, c: Option<u64>| Op {
            key: 0,
            kind,
            invoke: ms(i),
            complete: c.map(ms),
        };
        let w = |v: &str| Kind::Write(v.to_string());
        let r = |v: Option<&str>| Kind::Read(v.map(str::to_string));
        // Write a, then write b, then a read of a: stale.
        assert!(!linearizable(&[
            op(w("a"), 0, Some(1)),
            op(w("b"), 2, Some(3)),
            op(r(Some("a")), 4, Some(5))
        ]));
        // A read overlapping the second write may see either.
        assert!(linearizable(&[
            op(w("a"), 0, Some(1)),
            op(w("b"), 2, Some(6)),
            op(r(Some("a")), 4, Some(5))
        ]));
        // An unanswered write may take effect later, or never.
        assert!(linearizable(&[
            op(w("a"), 0, None),
            op(r(None), 2, Some(3)),
            op(r(Some("a")), 4, Some(5))
        ]));
        assert!(linearizable(&[
            op(w("a"), 0, None),
            op(r(None), 2, Some(3))
        ]));
        // An acknowledged delete does not come back.
        assert!(!linearizable(&[
            op(w("a"), 0, Some(1)),
            op(Kind::Delete, 2, Some(3)),
            op(r(Some("a")), 4, Some(5))
        ]));
    }
}
