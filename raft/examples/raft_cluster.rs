//! Three Raft nodes in one process over an in-process network, each on its own pair of
//! sedimentdb databases in a temporary directory: a small replicated key-value service (writes
//! and deletes through the leader, linearizable reads through openraft's read index), then the
//! replicated write rate with 1 and with 8 clients.
//!
//! `cargo run --release -p sedimentdb-raft --example raft_cluster [-- <writes per run>]`
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Config, Raft};
use sedimentdb_raft::{NodeId, Request, StateMachine, TypeConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Node = Raft<TypeConfig>;

/// Every node's Raft handle, by id: the "network".
#[derive(Clone, Default)]
struct Router(Arc<Mutex<BTreeMap<NodeId, Node>>>);

struct Conn {
    target: NodeId,
    router: Router,
}

impl Router {
    fn node(&self, id: NodeId) -> Option<Node> {
        self.0.lock().unwrap().get(&id).cloned()
    }
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Conn;
    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Conn {
        Conn {
            target,
            router: self.clone(),
        }
    }
}

fn unreachable<E: std::error::Error>(target: NodeId) -> RPCError<NodeId, BasicNode, E> {
    let e = std::io::Error::other(format!("node {target} is not running"));
    RPCError::Unreachable(Unreachable::new(&e))
}

impl RaftNetwork<TypeConfig> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _o: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let n = self
            .router
            .node(self.target)
            .ok_or_else(|| unreachable(self.target))?;
        n.append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _o: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let n = self
            .router
            .node(self.target)
            .ok_or_else(|| unreachable(self.target))?;
        n.install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _o: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let n = self
            .router
            .node(self.target)
            .ok_or_else(|| unreachable(self.target))?;
        n.vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let writes: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2000);
    let tmp = tempfile::tempdir()?;
    let router = Router::default();
    let config = Arc::new(
        Config {
            heartbeat_interval: 100,
            election_timeout_min: 300,
            election_timeout_max: 600,
            ..Config::default()
        }
        .validate()?,
    );
    let mut machines: BTreeMap<NodeId, StateMachine> = BTreeMap::new();
    for id in 1..=3u64 {
        let (log, sm) = sedimentdb_raft::open(&tmp.path().join(format!("node{id}")))?;
        machines.insert(id, sm.clone());
        let raft = Raft::new(id, config.clone(), router.clone(), log, sm).await?;
        router.0.lock().unwrap().insert(id, raft);
    }
    println!(
        "three nodes, each on its own sedimentdb databases in {}",
        tmp.path().display()
    );
    let members: BTreeSet<NodeId> = (1..=3).collect();
    router.node(1).unwrap().initialize(members).await?;
    let leader_id = router
        .node(1)
        .unwrap()
        .wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.current_leader.is_some(), "a leader")
        .await?
        .current_leader
        .unwrap();
    let leader = router.node(leader_id).unwrap();
    println!("leader: node {leader_id}");

    // The key-value service.
    leader
        .client_write(Request::Set {
            key: "greeting".into(),
            value: "hello".into(),
        })
        .await?;
    leader
        .client_write(Request::Set {
            key: "doomed".into(),
            value: "soon gone".into(),
        })
        .await?;
    leader
        .client_write(Request::Delete {
            key: "doomed".into(),
        })
        .await?;
    // A linearizable read: the leader confirms it still leads and its state machine has
    // applied everything committed before the read began.
    leader.ensure_linearizable().await?;
    let sm = &machines[&leader_id];
    println!(
        "read through the leader: greeting = {:?}, doomed = {:?}",
        sm.get("greeting")?,
        sm.get("doomed")?
    );

    for clients in [1usize, 8] {
        let per = writes / clients;
        let t = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let l = leader.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..per {
                    l.client_write(Request::Set {
                        key: format!("c{clients}-{c}-{i}"),
                        value: format!("value {i}"),
                    })
                    .await
                    .expect("replicated write");
                }
            }));
        }
        for t in tasks {
            t.await?;
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "{clients} client(s): {} replicated writes in {s:.2} s = {:.0}/s",
            per * clients,
            (per * clients) as f64 / s
        );
    }

    // Every node converges on the same state.
    let last = leader.metrics().borrow().last_log_index;
    for (id, sm) in &machines {
        router
            .node(*id)
            .unwrap()
            .wait(Some(Duration::from_secs(10)))
            .applied_index_at_least(last, "caught up")
            .await?;
        println!("node {id}: {} keys applied", sm.entries()?.len());
    }
    let first = machines[&1].entries()?;
    for sm in machines.values() {
        assert_eq!(sm.entries()?, first, "the replicas differ");
    }
    println!("ok: the three replicas hold the same {} keys", first.len());
    for id in 1..=3u64 {
        router.node(id).unwrap().shutdown().await?;
    }
    Ok(())
}
