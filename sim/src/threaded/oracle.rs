//! The check after a threaded run: per client thread, the reopened database holds a prefix of
//! that thread's writes that includes every write it had to keep.

use super::client::{ClientLog, ClientWrite};
use sedimentdb::Db;
use std::collections::BTreeMap;

type Kv = BTreeMap<Vec<u8>, Vec<u8>>;

fn apply(state: &mut Kv, w: &ClientWrite) {
    for (k, v) in &w.ops {
        match v {
            Some(v) => state.insert(k.clone(), v.clone()),
            None => state.remove(k),
        };
    }
}

/// Checks `db` against every client's log. Without a power loss every acknowledged write must
/// be there; with one, every durable write. A failed write (a client's last) may go either way.
pub(super) fn check(db: &Db, logs: &[ClientLog], power_lost: bool) -> Result<(), String> {
    let all: Result<Kv, _> = db.iter().collect();
    let all = all.map_err(|e| format!("the full scan failed: {e}"))?;
    // Durable for every thread: what any thread's synced write or sync covered.
    let durable_for_all = logs.iter().map(|l| l.durable_for_all).max().unwrap_or(0);
    // Per thread, the fewest and the most of its writes the recovered state can hold.
    let mut kept: Vec<(usize, usize)> = Vec::with_capacity(logs.len());
    for (t, log) in logs.iter().enumerate() {
        let prefix = format!("t{t}-").into_bytes();
        let actual: Kv = all
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let acknowledged = log.writes.iter().filter(|w| w.acknowledged).count();
        // This thread's writes acknowledged before another thread's synced call began are
        // durable too: they sit in earlier WAL records than that call's.
        let covered = log
            .writes
            .iter()
            .take_while(|w| w.acknowledged && w.ack_no <= durable_for_all)
            .count();
        let must = if power_lost {
            log.durable.max(covered)
        } else {
            acknowledged
        };
        let mut state = Kv::new();
        let mut range: Option<(usize, usize)> = (must == 0 && actual.is_empty()).then_some((0, 0));
        for (i, w) in log.writes.iter().enumerate() {
            apply(&mut state, w);
            if i + 1 >= must && state == actual {
                range = Some(range.map_or((i + 1, i + 1), |(lo, _)| (lo, i + 1)));
            }
        }
        if let Some(r) = range {
            kept.push(r);
        } else {
            let want =
                log.writes[..must.min(log.writes.len())]
                    .iter()
                    .fold(Kv::new(), |mut s, w| {
                        apply(&mut s, w);
                        s
                    });
            let diff = want
                .iter()
                .find(|(k, v)| actual.get(*k) != Some(*v))
                .map(|(k, v)| {
                    format!(
                        "key {:?}: wanted {} bytes, found {:?}",
                        String::from_utf8_lossy(k),
                        v.len(),
                        actual
                            .get(k)
                            .map(|x| String::from_utf8_lossy(x).into_owned())
                    )
                })
                .unwrap_or_else(|| "a key present that no kept prefix holds".into());
            return Err(format!(
                "client thread {t}: the database holds no prefix of its {} writes ({acknowledged} \
                 acknowledged, {} durable) that keeps the {must} it must; first difference: {diff}",
                log.writes.len(),
                log.durable
            ));
        }
    }
    // One WAL, one order: a write that survived was preceded in the WAL by every write
    // acknowledged before it began, in every thread, so those survived too (no hole across
    // threads). Checked leniently: the last write a thread must have kept against the most
    // each other thread can have kept.
    for (b, log) in logs.iter().enumerate() {
        let Some(last) = kept[b].0.checked_sub(1).map(|i| &log.writes[i]) else {
            continue;
        };
        for (a, other) in logs.iter().enumerate() {
            let before = other
                .writes
                .iter()
                .take_while(|w| w.acknowledged && w.ack_no <= last.began)
                .count();
            if before > kept[a].1 {
                return Err(format!(
                    "a hole across threads: client thread {b} kept a write that began after \
                     {before} writes of thread {a} were acknowledged, but thread {a} kept at \
                     most {}",
                    kept[a].1
                ));
            }
        }
    }
    Ok(())
}
