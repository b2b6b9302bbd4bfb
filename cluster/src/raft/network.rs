//! openraft's network for partition groups, over the node's shared [`PeerPool`].

use std::sync::Arc;

use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use super::{GroupId, NodeId, PartitionRaft};
use crate::transport::{CallError, PeerPool, RaftRequest, RaftResponse, Transport};

/// Creates [`PartitionNetwork`]s for one group.
pub struct PartitionNetworkFactory<T: Transport> {
    group: GroupId,
    peers: Arc<PeerPool<T>>,
}

impl<T: Transport> PartitionNetworkFactory<T> {
    /// The network of `group` over `peers`.
    pub fn new(group: GroupId, peers: Arc<PeerPool<T>>) -> Self {
        PartitionNetworkFactory { group, peers }
    }
}

/// One group's RPC client to one peer.
pub struct PartitionNetwork<T: Transport> {
    group: GroupId,
    target: NodeId,
    addr: String,
    peers: Arc<PeerPool<T>>,
}

impl<T: Transport> RaftNetworkFactory<PartitionRaft> for PartitionNetworkFactory<T> {
    type Network = PartitionNetwork<T>;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        PartitionNetwork { group: self.group, target, addr: node.addr.clone(), peers: self.peers.clone() }
    }
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, E>>;

impl<T: Transport> PartitionNetwork<T> {
    async fn call(&self, body: RaftRequest, option: &RPCOption) -> Result<RaftResponse, CallError> {
        self.peers.call(&self.addr, self.group, body, option.hard_ttl()).await
    }
}

/// A peer that cannot be reached, or does not run the group yet, is `Unreachable`: openraft
/// backs off instead of retrying at once.
fn failed<E: std::error::Error>(err: CallError) -> RPCError<NodeId, BasicNode, E> {
    match err {
        CallError::Unreachable(_) => RPCError::Unreachable(Unreachable::new(&err)),
        CallError::Timeout { .. } => RPCError::Network(NetworkError::new(&err)),
    }
}

fn unexpected<E: std::error::Error>(group: GroupId, answer: &RaftResponse) -> RPCError<NodeId, BasicNode, E> {
    let reason = match answer {
        RaftResponse::UnknownGroup(_) => format!("peer does not run group {group} yet"),
        other => format!("mismatched answer {other:?}"),
    };
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(reason)))
}

impl<T: Transport> RaftNetwork<PartitionRaft> for PartitionNetwork<T> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<PartitionRaft>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        match self.call(RaftRequest::Append(rpc), &option).await {
            Ok(RaftResponse::Append(Ok(answer))) => Ok(answer),
            Ok(RaftResponse::Append(Err(err))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, err)))
            }
            Ok(other) => Err(unexpected(self.group, &other)),
            Err(err) => Err(failed(err)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<PartitionRaft>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        match self.call(RaftRequest::InstallSnapshot(rpc), &option).await {
            Ok(RaftResponse::InstallSnapshot(Ok(answer))) => Ok(answer),
            Ok(RaftResponse::InstallSnapshot(Err(err))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, err)))
            }
            Ok(other) => Err(unexpected(self.group, &other)),
            Err(err) => Err(failed(err)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, RaftError<NodeId>> {
        match self.call(RaftRequest::Vote(rpc), &option).await {
            Ok(RaftResponse::Vote(Ok(answer))) => Ok(answer),
            Ok(RaftResponse::Vote(Err(err))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, err)))
            }
            Ok(other) => Err(unexpected(self.group, &other)),
            Err(err) => Err(failed(err)),
        }
    }
}
