//! The running replica of the cluster's global group. Any member can propose: a command sent to
//! a follower is forwarded (one hop) to the leader it knows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Config, Raft};
use pyralog_crypto::ClusterId;
use tokio::sync::watch;

use super::{
    CommitIndex, GlobalCommand, GlobalReply, GlobalState, GlobalStateMachine, GroupCommand, GroupId,
    GroupNetworkFactory, GroupRaft, GroupReply, NodeId, RocksLogStore,
};
use crate::storage::Storage;
use crate::transport::{ForwardRefusal, PeerPool, RaftRequest, RaftResponse, RaftRouter, Route, Transport};

/// How long [`GlobalReplica::propose`] keeps looking for a leader.
const PROPOSE_DEADLINE: Duration = Duration::from_secs(15);

/// Why a proposal to the global group failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProposeError {
    /// No leader accepted the command within the deadline.
    #[error("no global group leader within {0:?}")]
    NoLeader(Duration),
    /// The leader took the command but did not answer in time: it may or may not apply.
    #[error("global group did not answer within {0:?}; the command may still apply")]
    Timeout(Duration),
    /// Raft failed (fatal for this replica).
    #[error("global group: {0}")]
    Raft(String),
}

/// This node's replica of the global group.
pub struct GlobalReplica<T: Transport> {
    raft: Raft<GroupRaft>,
    state: watch::Receiver<GlobalState>,
    peers: Arc<PeerPool<T>>,
    commit_index: CommitIndex,
}

impl<T: Transport> std::fmt::Debug for GlobalReplica<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalReplica").finish_non_exhaustive()
    }
}

impl<T: Transport> GlobalReplica<T> {
    /// Starts node `node`'s replica of cluster `cluster`'s global group and routes its RPCs.
    pub async fn start(
        node: NodeId,
        storage: &Storage,
        cluster: ClusterId,
        peers: Arc<PeerPool<T>>,
        router: &RaftRouter,
        config: Arc<Config>,
    ) -> Result<Self, ProposeError> {
        let group = GroupId::GLOBAL;
        let machine =
            GlobalStateMachine::open(storage, cluster).map_err(|err| ProposeError::Raft(err.to_string()))?;
        let state = machine.subscribe();
        let log = RocksLogStore::new(storage.clone(), group);
        let commit_index = log.commit_index();
        let network = GroupNetworkFactory::new(group, peers.clone());
        let raft = Raft::new(node, config, network, log, machine)
            .await
            .map_err(|err| ProposeError::Raft(err.to_string()))?;
        router.insert(group, Route { raft: raft.clone(), signer: None, appender: None });
        Ok(GlobalReplica { raft, state, peers, commit_index })
    }

    /// Makes `members` (node id -> RPC address) the group's first voters; a no-op if the group
    /// was initialized before.
    pub async fn initialize(&self, members: BTreeMap<NodeId, String>) -> Result<(), ProposeError> {
        let nodes: BTreeMap<NodeId, BasicNode> =
            members.into_iter().map(|(id, addr)| (id, BasicNode { addr })).collect();
        match self.raft.initialize(nodes).await {
            Ok(()) | Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
            Err(err) => Err(ProposeError::Raft(err.to_string())),
        }
    }

    /// The group's commit index as openraft last reported it (for metrics).
    pub fn commit_index(&self) -> Option<u64> {
        self.commit_index.get()
    }

    /// The applied global state on this node.
    pub fn state(&self) -> watch::Receiver<GlobalState> {
        self.state.clone()
    }

    /// The group's Raft handle (metrics, membership changes).
    pub fn raft(&self) -> &Raft<GroupRaft> {
        &self.raft
    }

    /// Proposes `command` here or at the leader and returns what applying it produced (a
    /// rejection is a reply, not an error). Retries while leadership is unsettled.
    pub async fn propose(&self, command: GlobalCommand) -> Result<GlobalReply, ProposeError> {
        let started = tokio::time::Instant::now();
        while started.elapsed() < PROPOSE_DEADLINE {
            let written = tokio::time::timeout(
                PROPOSE_DEADLINE,
                self.raft.client_write(GroupCommand::Global(command.clone())),
            );
            let leader = match written.await.map_err(|_| ProposeError::Timeout(PROPOSE_DEADLINE))? {
                Ok(response) => return global_reply(response.data),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(to))) => to.leader_node,
                Err(err) => return Err(ProposeError::Raft(err.to_string())),
            };
            if let Some(leader) = leader {
                let request = RaftRequest::Forward(GroupCommand::Global(command.clone()));
                match self.peers.call(&leader.addr, GroupId::GLOBAL, request, PROPOSE_DEADLINE).await {
                    Ok(RaftResponse::Forwarded(Ok(reply))) => return global_reply(reply),
                    Ok(RaftResponse::Forwarded(Err(ForwardRefusal::Failed(reason)))) => {
                        return Err(ProposeError::Raft(reason));
                    }
                    // Leadership moved, or the leader is unreachable: look again.
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(ProposeError::NoLeader(PROPOSE_DEADLINE))
    }

    /// Stops the replica and its routing.
    pub async fn shutdown(self, router: &RaftRouter) {
        router.remove(GroupId::GLOBAL);
        let _ = self.raft.shutdown().await;
    }
}

fn global_reply(reply: GroupReply) -> Result<GlobalReply, ProposeError> {
    match reply {
        GroupReply::Global(reply) => Ok(reply),
        other => Err(ProposeError::Raft(format!("global group answered {other:?}"))),
    }
}
