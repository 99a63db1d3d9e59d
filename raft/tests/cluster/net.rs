//! The cluster's network: Raft's RPCs and the clients' requests as length-prefixed JSON over
//! turmoil's TCP.

use super::*;

pub(super) const PORT: u16 = 9000;

#[derive(Serialize, Deserialize)]
pub(super) enum Msg {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    Write(Request),
    Read(String),
}

#[derive(Serialize, Deserialize, Debug)]
pub(super) enum Reply {
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    Done(Option<String>),
    NotLeader(Option<NodeId>),
    Failed(String),
}

pub(super) async fn send(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_u32(bytes.len() as u32).await?;
    stream.write_all(bytes).await?;
    stream.flush().await
}

pub(super) async fn recv(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let n = stream.read_u32().await? as usize;
    let mut b = vec![0u8; n];
    stream.read_exact(&mut b).await?;
    Ok(b)
}

/// One request and its reply, within `limit`; `Err` if no reply came (the request may or may
/// not have arrived).
pub(super) async fn call(target: NodeId, msg: &Msg, limit: Duration) -> Result<Reply, String> {
    let fut = async {
        let mut s = TcpStream::connect((format!("n{target}"), PORT))
            .await
            .map_err(|e| e.to_string())?;
        send(&mut s, &serde_json::to_vec(msg).expect("encodes"))
            .await
            .map_err(|e| e.to_string())?;
        let b = recv(&mut s).await.map_err(|e| e.to_string())?;
        serde_json::from_slice::<Reply>(&b).map_err(|e| e.to_string())
    };
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err("timed out".into()),
    }
}

pub(super) struct Net;
pub(super) struct Conn(NodeId);

impl RaftNetworkFactory<TypeConfig> for Net {
    type Network = Conn;
    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Conn {
        Conn(target)
    }
}

pub(super) fn unreachable<E: std::error::Error>(why: String) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(why)))
}

pub(super) const RPC_LIMIT: Duration = Duration::from_millis(300);

/// One Raft RPC to `target`: the reply `pick` accepts, the remote node's error, or
/// unreachable (no reply, or a reply of another kind).
pub(super) async fn rpc_call<T, E: std::error::Error>(
    target: NodeId,
    msg: Msg,
    pick: impl FnOnce(Reply) -> Option<Result<T, RaftError<NodeId, E>>>,
) -> Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>> {
    match call(target, &msg, RPC_LIMIT).await.map(pick) {
        Ok(Some(r)) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(target, e))),
        Ok(None) => Err(unreachable("a reply of another kind".into())),
        Err(e) => Err(unreachable(e)),
    }
}

impl RaftNetwork<TypeConfig> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _o: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        rpc_call(self.0, Msg::Append(rpc), |r| match r {
            Reply::Append(r) => Some(r),
            _ => None,
        })
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _o: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        rpc_call(self.0, Msg::Snapshot(rpc), |r| match r {
            Reply::Snapshot(r) => Some(r),
            _ => None,
        })
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _o: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        rpc_call(self.0, Msg::Vote(rpc), |r| match r {
            Reply::Vote(r) => Some(r),
            _ => None,
        })
        .await
    }
}
