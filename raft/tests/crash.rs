//! The adapter under power loss, on the simulator's filesystem: seeded runs of appends, votes,
//! truncations, purges and snapshot installs, a power loss at a seeded filesystem call, then a
//! reopen and the contract: every entry reported flushed is there (unless a truncate or purge
//! was attempted over it), the newest vote acknowledged is read back, the log has no hole
//! below its first entry, and the state machine holds one whole state (the last installed, or
//! the one being installed). `SEDIMENTDB_RAFT_SEEDS` sets the number of seeds (default 300);
//! a failure names its seed. With `--features planted-bugs`, each planted adapter bug must be
//! found.
mod common;
use common::Rng;
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::log_id;
use openraft::{
    Entry, EntryPayload, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta, StoredMembership, Vote,
};
use sedimentdb::Options;
use sedimentdb_raft::{LogStore, Request, StateMachine, TypeConfig};
use sedimentdb_sim::World;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::rc::Rc;

fn opts() -> Options {
    Options {
        memtable_size_bytes: 8 << 10,
        background: sedimentdb::Background::Inline,
        wal_preallocate_bytes: 4 << 10,
        ..Options::default()
    }
}

type State = Vec<(String, String)>;

fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, 1, index),
        payload: EntryPayload::Normal(Request::Set {
            key: format!("k{index}"),
            value: format!("v{term}-{index}"),
        }),
    }
}

/// What the run was told is durable, and what it attempted.
#[derive(Default)]
struct Model {
    /// Entries reported flushed, by index.
    acked: BTreeMap<u64, (u64, u64)>,
    /// Indices at or above which a truncate was attempted, and at or below which a purge was.
    truncated_from: Option<u64>,
    purged_to: Option<u64>,
    vote_acked: Option<Vote<u64>>,
    /// The installed state acknowledged last, and the one in flight (if the crash hit it).
    installed: State,
    installing: Option<State>,
}

fn run_seed(seed: u64) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let w = World::new();
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let (lp, sp) = (Path::new("/node/log"), Path::new("/node/sm"));
    let mut log = LogStore::open_with(w.env(), lp, opts()).map_err(|e| e.to_string())?;
    let mut sm = StateMachine::open_with(w.env(), sp, opts()).map_err(|e| e.to_string())?;
    w.fs.die_after_calls(1 + rng.below(600));
    let mut m = Model::default();
    let mut next = 1u64;
    let mut term = 1u64;
    let mut installs = 0u64;
    let acks = Rc::new(RefCell::new(Vec::new()));
    for _ in 0..200 {
        if w.fs.is_dead() {
            break;
        }
        match rng.below(10) {
            0..=4 => {
                let n = 1 + rng.below(5);
                let es: Vec<_> = (next..next + n).map(|i| entry(term, i)).collect();
                next += n;
                let a = acks.clone();
                let ids: Vec<(u64, u64)> = es.iter().map(|e| (e.log_id.index, term)).collect();
                let _ = log.append_entries(es, move |r| {
                    if r.is_ok() {
                        a.borrow_mut().extend(ids);
                    }
                });
                for (i, t) in acks.borrow_mut().drain(..) {
                    m.acked.insert(i, (t, i));
                }
            }
            5 => {
                term += 1;
                let v = Vote::new(term, 1);
                if rt.block_on(log.save_vote(&v)).is_ok() {
                    m.vote_acked = Some(v);
                }
            }
            // As Raft does: truncate only above what was purged, purge only forward.
            6 if next > m.purged_to.map_or(1, |p| p + 1) + 1 => {
                let low = m.purged_to.map_or(1, |p| p + 1);
                let at = low + rng.below(next - low);
                m.truncated_from = Some(m.truncated_from.map_or(at, |t| t.min(at)));
                if rt.block_on(log.truncate(log_id(term, 1, at))).is_ok() {
                    next = at;
                    m.acked.retain(|i, _| *i < at);
                }
            }
            7 if next > 2 => {
                let to = rng.below(next - 1);
                if m.acked.contains_key(&to) && m.purged_to.is_none_or(|p| to > p) {
                    m.purged_to = Some(m.purged_to.map_or(to, |p| p.max(to)));
                    let _ = rt.block_on(log.purge(log_id(m.acked[&to].0, 1, to)));
                }
            }
            _ => {
                installs += 1;
                let state: State = (0..rng.below(6))
                    .map(|i| (format!("s{installs}-{i}"), format!("x{i}")))
                    .collect();
                let meta = SnapshotMeta {
                    last_log_id: Some(log_id(term, 1, installs)),
                    last_membership: StoredMembership::default(),
                    snapshot_id: format!("snap{installs}"),
                };
                let data = serde_json::to_vec(&state).unwrap();
                m.installing = Some(state.clone());
                if rt
                    .block_on(sm.install_snapshot(&meta, Box::new(Cursor::new(data))))
                    .is_ok()
                {
                    m.installed = state;
                    m.installing = None;
                }
            }
        }
    }
    drop((log, sm));
    w.fs.power_loss(&mut |n| rng.below(n));
    let mut log = LogStore::open_with(w.env(), lp, opts()).map_err(|e| format!("reopen: {e}"))?;
    let mut sm =
        StateMachine::open_with(w.env(), sp, opts()).map_err(|e| format!("reopen: {e}"))?;
    let vote = rt.block_on(log.read_vote()).map_err(|e| e.to_string())?;
    if let Some(v) = m.vote_acked {
        if vote.is_none_or(|got| got < v) {
            return Err(format!("vote {v} was acknowledged, read back {vote:?}"));
        }
    }
    let state = rt
        .block_on(log.get_log_state())
        .map_err(|e| e.to_string())?;
    let entries = rt
        .block_on(log.try_get_log_entries(..))
        .map_err(|e| e.to_string())?;
    for w in entries.windows(2) {
        if w[1].log_id.index != w[0].log_id.index + 1 {
            return Err(format!(
                "a hole between {} and {}",
                w[0].log_id, w[1].log_id
            ));
        }
    }
    if let (Some(p), Some(first)) = (state.last_purged_log_id, entries.first()) {
        if first.log_id.index != p.index + 1 {
            return Err(format!(
                "last purged {p}, but the first entry is {}: a hole",
                first.log_id
            ));
        }
    }
    if state.last_purged_log_id.is_none() {
        if let Some(first) = entries.first() {
            if first.log_id.index != 1 {
                return Err(format!(
                    "nothing purged, but the log starts at {}",
                    first.log_id
                ));
            }
        }
    }
    let present: BTreeMap<u64, u64> = entries
        .iter()
        .map(|e| (e.log_id.index, e.log_id.leader_id.term))
        .collect();
    for (i, (t, _)) in &m.acked {
        let maybe_gone =
            m.truncated_from.is_some_and(|f| *i >= f) || m.purged_to.is_some_and(|p| *i <= p);
        if !maybe_gone && present.get(i) != Some(t) {
            return Err(format!(
                "entry {i} (term {t}) was reported flushed, after the crash: {:?}",
                present.get(i)
            ));
        }
    }
    let got = sm.entries().map_err(|e| e.to_string())?;
    let whole = got == m.installed || m.installing.as_ref() == Some(&got);
    if !whole {
        return Err(format!(
            "the state machine holds {got:?}: neither the installed {:?} nor the one being installed {:?}",
            m.installed, m.installing
        ));
    }
    let _ = rt.block_on(sm.applied_state()).map_err(|e| e.to_string())?;
    Ok(())
}

/// A node's life as openraft drives a linked pair (`sedimentdb_raft::open_with`): entries
/// appended, applied unsynced, snapshots built and the log purged behind them, and snapshots
/// received, whose purge openraft runs next to the install (modelled by joining the two, with
/// the appends that follow the purge). After a power loss at a seeded call, openraft's own
/// start-up (`StorageHelper::get_initial_state`) must succeed on what survived, and the
/// committed log id saved last must be read back.
fn run_linked_seed(seed: u64) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let w = World::new();
    let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
    let dir = Path::new("/node");
    let (mut log, mut sm) =
        sedimentdb_raft::open_with(w.env(), dir, opts()).map_err(|e| e.to_string())?;
    w.fs.die_after_calls(1 + rng.below(800));
    // The next index to append and to apply (openraft's log starts at 0).
    let (mut next, mut apply_next) = (0u64, 0u64);
    // The newest committed log id whose save was acknowledged.
    let mut committed = None;
    let append = |log: &LogStore, from: u64, n: u64| {
        let es: Vec<_> = (from..from + n).map(|i| entry(1, i)).collect();
        log.append_entries(es, |_| {}).is_ok()
    };
    for _ in 0..150 {
        if w.fs.is_dead() {
            break;
        }
        match rng.below(8) {
            0..=3 => {
                let n = 1 + rng.below(4);
                if append(&log, next, n) {
                    next += n;
                }
            }
            4 | 5 if apply_next < next => {
                let to = apply_next + rng.below(next - apply_next);
                let es: Vec<_> = (apply_next..=to).map(|i| entry(1, i)).collect();
                if rt.block_on(sm.apply(es)).is_ok() {
                    apply_next = to + 1;
                    if rt
                        .block_on(log.save_committed(Some(log_id(1, 1, to))))
                        .is_ok()
                    {
                        committed = Some(to);
                    }
                }
            }
            6 if apply_next > 0 => {
                // A snapshot of what is applied, then the log purged behind it.
                let mut b = rt.block_on(sm.get_snapshot_builder());
                if let Ok(s) = rt.block_on(b.build_snapshot()) {
                    if let Some(l) = s.meta.last_log_id {
                        let _ = rt.block_on(log.purge(l));
                    }
                }
            }
            _ => {
                // A snapshot received from a leader, ahead of this log.
                let at = next + rng.below(10);
                let state: State = (0..1 + rng.below(4))
                    .map(|i| (format!("r{at}-{i}"), format!("x{i}")))
                    .collect();
                let meta = SnapshotMeta {
                    last_log_id: Some(log_id(1, 1, at)),
                    last_membership: StoredMembership::default(),
                    snapshot_id: format!("recv{at}"),
                };
                let data = serde_json::to_vec(&state).unwrap();
                let n = 1 + rng.below(3);
                let mut log2 = log.clone();
                let (core, installed) = rt.block_on(async {
                    tokio::join!(
                        // openraft's core: the purge, then the next appends.
                        async {
                            log2.purge(log_id(1, 1, at)).await.is_ok() && append(&log2, at + 1, n)
                        },
                        sm.install_snapshot(&meta, Box::new(Cursor::new(data)))
                    )
                });
                if installed.is_err() || !core {
                    break;
                }
                apply_next = at + 1;
                next = at + 1 + n;
            }
        }
    }
    drop((log, sm));
    w.fs.power_loss(&mut |n| rng.below(n));
    let (mut log, mut sm) =
        sedimentdb_raft::open_with(w.env(), dir, opts()).map_err(|e| format!("reopen: {e}"))?;
    let got = rt
        .block_on(log.read_committed())
        .map_err(|e| e.to_string())?
        .map(|l| l.index);
    if got < committed {
        return Err(format!(
            "committed index {committed:?} was saved, read back {got:?}"
        ));
    }
    rt.block_on(openraft::storage::StorageHelper::new(&mut log, &mut sm).get_initial_state())
        .map(|_| ())
        .map_err(|e| format!("openraft cannot start from what survived: {e}"))
}

#[test]
fn openraft_starts_after_a_power_loss_on_a_linked_pair() {
    for seed in 0..seeds() {
        if let Err(e) = run_linked_seed(seed) {
            panic!("seed {seed}: {e}\n  rerun: SEDIMENTDB_RAFT_SEEDS={} cargo test --release -p sedimentdb-raft --test crash", seed + 1);
        }
    }
}

fn seeds() -> u64 {
    common::seeds("SEDIMENTDB_RAFT_SEEDS", 300)
}

#[test]
fn acknowledged_log_entries_votes_and_installs_survive_power_loss() {
    for seed in 0..seeds() {
        if let Err(e) = run_seed(seed) {
            panic!("seed {seed}: {e}\n  rerun: SEDIMENTDB_RAFT_SEEDS={} cargo test --release -p sedimentdb-raft --test crash", seed + 1);
        }
    }
}

#[cfg(feature = "planted-bugs")]
#[test]
fn every_planted_adapter_bug_is_found() {
    use sedimentdb_raft::planted::{plant, Bug};
    let mut table = Vec::new();
    for bug in Bug::ALL {
        plant(Some(bug));
        // These two need the linked pair and the committed id.
        let run = if matches!(bug, Bug::PurgeBeforeStateMachine | Bug::CommittedUnsynced) {
            run_linked_seed
        } else {
            run_seed
        };
        let found = (0..2000).find_map(|s| run(s).err().map(|e| (s, e)));
        plant(None);
        table.push(format!("{bug:?}: {:?}", found.as_ref().map(|f| f.0)));
        assert!(found.is_some(), "{bug:?} survived 2000 seeds");
    }
    println!("{}", table.join("\n"));
}
