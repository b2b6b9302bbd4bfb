//! openraft's network for partition groups, over the node's shared [`PeerPool`].

use std::sync::Arc;

use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use super::{GroupId, GroupRaft, NodeId};
use crate::transport::{CallError, PeerPool, RaftRequest, RaftResponse, Transport};

/// Creates [`GroupNetwork`]s for one group.
pub struct GroupNetworkFactory<T: Transport> {
    group: GroupId,
    peers: Arc<PeerPool<T>>,
}

impl<T: Transport> GroupNetworkFactory<T> {
    /// The network of `group` over `peers`.
    pub fn new(group: GroupId, peers: Arc<PeerPool<T>>) -> Self {
        GroupNetworkFactory { group, peers }
    }
}

/// One group's RPC client to one peer.
pub struct GroupNetwork<T: Transport> {
    group: GroupId,
    target: NodeId,
    addr: String,
    peers: Arc<PeerPool<T>>,
}

impl<T: Transport> RaftNetworkFactory<GroupRaft> for GroupNetworkFactory<T> {
    type Network = GroupNetwork<T>;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        GroupNetwork { group: self.group, target, addr: node.addr.clone(), peers: self.peers.clone() }
    }
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, E>>;

impl<T: Transport> GroupNetwork<T> {
    async fn call(&self, body: RaftRequest, option: &RPCOption) -> Result<RaftResponse, CallError> {
        self.peers.call(&self.addr, self.group, body, option.hard_ttl()).await
    }
}

/// A peer that cannot be reached, or does not run the group yet, is `Unreachable`: openraft
/// backs off instead of retrying at once.
fn failed<E: std::error::Error>(err: CallError) -> RPCError<NodeId, BasicNode, E> {
    match err {
        CallError::Unreachable(_) => RPCError::Unreachable(Unreachable::new(&err)),
        CallError::Broken(_) | CallError::Timeout { .. } => RPCError::Network(NetworkError::new(&err)),
    }
}

fn unexpected<E: std::error::Error>(group: GroupId, unknown_group: bool) -> RPCError<NodeId, BasicNode, E> {
    let reason = match unknown_group {
        true => format!("peer does not run group {group} yet"),
        false => format!("peer answered a different RPC for group {group}"),
    };
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(reason)))
}

impl<T: Transport> GroupNetwork<T> {
    /// Sends `request` and maps the outcome to what openraft expects: the peer's answer, its
    /// Raft error as a remote error, or a transport failure.
    async fn exchange<R, E: std::error::Error>(
        &self,
        request: RaftRequest,
        option: &RPCOption,
        unpack: impl FnOnce(RaftResponse) -> Option<Result<R, E>>,
    ) -> RpcResult<R, E> {
        let response = self.call(request, option).await.map_err(failed)?;
        let unknown_group = matches!(response, RaftResponse::UnknownGroup(_));
        match unpack(response) {
            Some(Ok(answer)) => Ok(answer),
            Some(Err(err)) => Err(RPCError::RemoteError(RemoteError::new(self.target, err))),
            None => Err(unexpected(self.group, unknown_group)),
        }
    }
}

impl<T: Transport> RaftNetwork<GroupRaft> for GroupNetwork<T> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<GroupRaft>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        self.exchange(RaftRequest::Append(rpc), &option, |response| match response {
            RaftResponse::Append(answer) => Some(answer),
            _ => None,
        })
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<GroupRaft>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        self.exchange(RaftRequest::InstallSnapshot(rpc), &option, |response| match response {
            RaftResponse::InstallSnapshot(answer) => Some(answer),
            _ => None,
        })
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, RaftError<NodeId>> {
        self.exchange(RaftRequest::Vote(rpc), &option, |response| match response {
            RaftResponse::Vote(answer) => Some(answer),
            _ => None,
        })
        .await
    }
}
