//! One node of the cluster: its start-up (with the promises a restart must keep), its
//! server, and what the test counts.

use super::*;

/// Serves one request. With `stale`, reads are answered from the local state machine without
/// the read index (the planted bug that proves the checker).
pub(super) async fn serve(
    raft: Raft<TypeConfig>,
    sm: StateMachine,
    mut s: TcpStream,
    stale: bool,
    counts: Arc<Counts>,
    fs: Arc<SimFs>,
) {
    let id = raft.metrics().borrow().id;
    let mut sm = sm;
    observe(id, &mut sm, &counts).await;
    let Ok(b) = recv(&mut s).await else { return };
    let Ok(msg) = serde_json::from_slice::<Msg>(&b) else {
        return;
    };
    let reply = match msg {
        Msg::Append(r) => Reply::Append(raft.append_entries(r).await),
        Msg::Vote(r) => {
            let r = raft.vote(r).await;
            if let Ok(v) = &r {
                if v.vote_granted {
                    // Granted: the vote was saved, and must survive anything.
                    let mut p = counts.promised.lock().unwrap();
                    let e = p.entry(id).or_default();
                    if e.0.is_none_or(|old| v.vote > old) {
                        e.0 = Some(v.vote);
                    }
                }
            }
            Reply::Vote(r)
        }
        Msg::Snapshot(r) => {
            if r.done {
                counts.installs.fetch_add(1, Ordering::Relaxed);
                // The nemesis: half the snapshots that arrive whole meet a power loss at the
                // node's next sync, the install's own.
                if counts.rng.lock().unwrap().below(2) == 0 {
                    fs.die_at_sync(1);
                    counts.install_power_losses.fetch_add(1, Ordering::Relaxed);
                }
            }
            Reply::Snapshot(raft.install_snapshot(r).await)
        }
        Msg::Write(req) => match raft.client_write(req).await {
            Ok(r) => {
                // Applied, so its commit was saved: a restart recovers at least this far.
                let mut p = counts.promised.lock().unwrap();
                let e = p.entry(id).or_default();
                e.1 = e.1.max(r.log_id.index + 1);
                Reply::Done(r.data.value)
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Reply::NotLeader(f.leader_id)
            }
            Err(e) => Reply::Failed(e.to_string()),
        },
        Msg::Read(key) => {
            let ok = if stale {
                Ok(())
            } else {
                raft.ensure_linearizable().await.map(|_| ())
            };
            match ok {
                Ok(()) => match sm.get(&key) {
                    Ok(v) => Reply::Done(v),
                    Err(e) => Reply::Failed(e.to_string()),
                },
                Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(
                    f,
                ))) => Reply::NotLeader(f.leader_id),
                Err(e) => Reply::Failed(e.to_string()),
            }
        }
    };
    let _ = send(&mut s, &serde_json::to_vec(&reply).expect("encodes")).await;
}

pub(super) fn db_options() -> Options {
    Options {
        memtable_size_bytes: 16 << 10,
        background: sedimentdb::Background::Inline,
        wal_preallocate_bytes: 4 << 10,
        ..Options::default()
    }
}

/// A node's promises: the newest vote it granted, one past the newest index it acknowledged.
pub(super) type Promise = (Option<Vote<NodeId>>, u64);

/// A state machine's map, in key order.
pub(super) type Map = Vec<(String, String)>;

/// What the cluster test counts.
#[derive(Default, Debug)]
pub(super) struct Counts {
    pub(super) ops: AtomicU64,
    pub(super) acknowledged: AtomicU64,
    pub(super) indeterminate: AtomicU64,
    pub(super) partitions: AtomicU64,
    pub(super) lossy_periods: AtomicU64,
    pub(super) power_losses: AtomicU64,
    /// Mid-run power losses of every node.
    pub(super) cluster_power_losses: AtomicU64,
    /// Power losses armed at a node's next few syncs.
    pub(super) sync_power_losses: AtomicU64,
    pub(super) restarts: AtomicU64,
    pub(super) leader_changes: AtomicU64,
    /// Snapshots received whole, and those met by a power loss at the install.
    pub(super) installs: AtomicU64,
    pub(super) install_power_losses: AtomicU64,
    /// Seeds whose replicas caught up at the end (and were compared).
    pub(super) converged: AtomicU64,
    /// Nodes that could not start although their disk was up.
    pub(super) boot_errors: std::sync::Mutex<Vec<String>>,
    /// Per node: the newest vote it granted, and one past the newest index it acknowledged to
    /// a client. A restart must keep both.
    pub(super) promised: std::sync::Mutex<BTreeMap<NodeId, Promise>>,
    /// Promises a restarted node did not keep, and replicas that disagree at the end.
    pub(super) broken_promises: std::sync::Mutex<Vec<String>>,
    /// Each node's running Raft and state machine.
    pub(super) live: Live,
    /// The nemesis's choices made inside the nodes (seeded with the run).
    pub(super) rng: std::sync::Mutex<Rng>,
    /// A state machine's map seen at each applied index, and the node it was seen on.
    pub(super) states: std::sync::Mutex<BTreeMap<u64, (NodeId, Map)>>,
}

/// The running nodes, for the check that replicas agree at the end.
#[derive(Default)]
pub(super) struct Live(
    pub(super) std::sync::Mutex<BTreeMap<NodeId, (Raft<TypeConfig>, StateMachine)>>,
);

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} nodes", self.0.lock().unwrap().len())
    }
}

/// One node's host: open its databases on its `SimFs`, start Raft (node 1 initializes the
/// cluster on its first boot), and serve.
pub(super) fn node(
    id: NodeId,
    fs: Arc<SimFs>,
    clock: Arc<SimClock>,
    counts: Arc<Counts>,
    last_leader: Arc<AtomicU64>,
    stale: bool,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = turmoil::Result>>> {
    move || {
        let (fs, clock, counts, last_leader) = (
            fs.clone(),
            clock.clone(),
            counts.clone(),
            last_leader.clone(),
        );
        Box::pin(async move {
            // A node whose disk died while it started waits, powerless, for the nemesis to
            // restart it; it never fails the simulation.
            let (f2, c2) = (fs.clone(), counts.clone());
            if let Err(e) = boot(id, fs, clock, counts, last_leader, stale).await {
                // Unless the power is out, a node that cannot start is a failure of the run.
                if !f2.is_dead() {
                    c2.boot_errors
                        .lock()
                        .unwrap()
                        .push(format!("node {id}: {e}"));
                }
                std::future::pending::<()>().await;
            }
            Ok(())
        })
    }
}

/// Records the state machine's map at its applied index: every replica must hold the same map
/// at the same index, at any time (a state machine is deterministic).
pub(super) async fn observe(id: NodeId, sm: &mut StateMachine, counts: &Counts) {
    let (Ok((applied, _)), Ok(map)) = (sm.applied_state().await, sm.entries()) else {
        return;
    };
    let Some(at) = applied.map(|l| l.index) else {
        return;
    };
    let mut seen = counts.states.lock().unwrap();
    match seen.get(&at) {
        None => {
            seen.insert(at, (id, map));
        }
        Some((other, m)) if *m != map => {
            let msg = format!(
                "node {id} holds {map:?} at applied index {at}, node {other} held {m:?} there"
            );
            counts.broken_promises.lock().unwrap().push(msg);
        }
        Some(_) => {}
    }
}

pub(super) async fn boot(
    id: NodeId,
    fs: Arc<SimFs>,
    clock: Arc<SimClock>,
    counts: Arc<Counts>,
    last_leader: Arc<AtomicU64>,
    stale: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let env = Env::new(fs.clone(), clock);
    let (mut log, mut sm) = sedimentdb_raft::open_with(env, Path::new("/"), db_options())?;
    // What this node promised before it went down: a vote it granted, and writes it
    // acknowledged (their commit saved before they were applied).
    let (vote, acked) = counts
        .promised
        .lock()
        .unwrap()
        .get(&id)
        .copied()
        .unwrap_or_default();
    let stored = log.read_vote().await?;
    // A vote that is neither newer nor equal was lost (Raft never moves a vote sideways).
    if vote.is_some()
        && !matches!(
            stored.partial_cmp(&vote),
            Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
        )
    {
        counts.broken_promises.lock().unwrap().push(format!(
            "node {id} granted vote {vote:?}, restarted with {stored:?}"
        ));
    }
    observe(id, &mut sm, &counts).await;
    let committed = log.read_committed().await?;
    let (applied, _) = sm.applied_state().await?;
    let recovers_to = committed.max(applied).map_or(0, |l| l.index + 1);
    if recovers_to < acked {
        counts.broken_promises.lock().unwrap().push(format!(
            "node {id} acknowledged a write at index {}, restarted knowing only indexes below {recovers_to} committed",
            acked - 1
        ));
    }
    // Fixed election timeouts (min..min+1), different per node: openraft draws them
    // from the thread's RNG, which would make runs irreproducible.
    let t = 300 + 100 * id;
    let config = Arc::new(
        Config {
            heartbeat_interval: 50,
            election_timeout_min: t,
            election_timeout_max: t + 1,
            // Snapshots and purges often, so a restarted node is caught up by a
            // snapshot install and the log is purged under the faults.
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(20),
            max_in_snapshot_log_to_keep: 5,
            purge_batch_size: 1,
            // Snapshots stream in small chunks, so an install spans several messages.
            snapshot_max_chunk_size: 64,
            ..Config::default()
        }
        .validate()?,
    );
    let raft = Raft::new(id, config, Net, log, sm.clone()).await?;
    counts
        .live
        .0
        .lock()
        .unwrap()
        .insert(id, (raft.clone(), sm.clone()));
    if id == 1 && !raft.is_initialized().await? {
        let members: BTreeSet<NodeId> = (1..=3).collect();
        let _ = raft.initialize(members).await;
    }
    let mut metrics = raft.metrics();
    let counts2 = counts.clone();
    tokio::spawn(async move {
        let counts = counts2;
        while metrics.changed().await.is_ok() {
            let leader = metrics.borrow().current_leader;
            if let Some(l) = leader {
                if last_leader.swap(l, Ordering::Relaxed) != l {
                    counts.leader_changes.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    let listener = TcpListener::bind(("0.0.0.0", PORT)).await?;
    loop {
        let (s, _) = listener.accept().await?;
        let (fs, counts) = (fs.clone(), counts.clone());
        tokio::spawn(serve(raft.clone(), sm.clone(), s, stale, counts, fs));
    }
}
