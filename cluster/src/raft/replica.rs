//! A running partition replica: the group's Raft, its routing, and the epoch keeper.
//!
//! Epochs: when this node becomes the group's leader it proposes `ActivateEpoch` with the
//! partition's current epoch + 1 (read from the applied state, retried if another activation won
//! the race). The epoch is state-machine data; the Raft term is never used as the epoch.

use std::collections::BTreeMap;
use std::sync::Arc;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Config, Raft, ServerState};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{
    GroupId, NodeId, PartitionCommand, PartitionNetworkFactory, PartitionRaft, PartitionReply,
    PartitionStateMachine, RocksLogStore,
};
use crate::model::Record;
use crate::storage::{AppendOutcome, PartitionId, PartitionState, Storage, StorageError};
use crate::transport::{PeerPool, RaftRouter, Transport};

/// Why a replica operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    /// This node is not the partition's leader; retry at the hinted leader.
    #[error("not the leader of partition {partition}; leader is {leader:?}")]
    NotLeader {
        /// The partition.
        partition: PartitionId,
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// Local storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A socket or file operation failed.
    #[error("i/o: {0}")]
    Io(String),
    /// Raft stopped or failed (fatal for this replica).
    #[error("raft group {group}: {reason}")]
    Raft {
        /// The group.
        group: GroupId,
        /// What failed.
        reason: String,
    },
}

/// A partition replica running on this node.
pub struct PartitionReplica {
    partition: PartitionId,
    raft: Raft<PartitionRaft>,
    state: watch::Receiver<PartitionState>,
    epoch_keeper: JoinHandle<()>,
}

impl std::fmt::Debug for PartitionReplica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionReplica")
            .field("partition", &self.partition)
            .finish_non_exhaustive()
    }
}

impl PartitionReplica {
    /// Starts the replica of `partition` on node `node` and routes its RPCs.
    pub async fn start<T: Transport>(
        node: NodeId,
        storage: &Storage,
        partition: PartitionId,
        peers: Arc<PeerPool<T>>,
        router: &RaftRouter,
        config: Arc<Config>,
    ) -> Result<Self, ReplicaError> {
        let group = GroupId::partition(partition);
        let machine = PartitionStateMachine::open(storage, partition)?;
        let state = machine.subscribe();
        let log = RocksLogStore::new(storage.clone(), group);
        let network = PartitionNetworkFactory::new(group, peers);
        let raft = Raft::new(node, config, network, log, machine)
            .await
            .map_err(|err| ReplicaError::Raft {
                group,
                reason: err.to_string(),
            })?;
        router.insert(group, raft.clone());
        let epoch_keeper = tokio::spawn(keep_epochs(node, raft.clone(), state.clone()));
        Ok(PartitionReplica {
            partition,
            raft,
            state,
            epoch_keeper,
        })
    }

    /// Makes `members` (node id -> RPC address) the group's first voters. Call on one node once.
    pub async fn initialize(&self, members: BTreeMap<NodeId, String>) -> Result<(), ReplicaError> {
        let nodes: BTreeMap<NodeId, BasicNode> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode { addr }))
            .collect();
        match self.raft.initialize(nodes).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
            Err(err) => Err(self.raft_error(err)),
        }
    }

    /// Appends `records` as one Raft entry; returns when the entry is committed (durable on a
    /// quorum) and applied here, with the epoch and one outcome per record.
    pub async fn append(&self, records: Vec<Record>) -> Result<(u64, Vec<AppendOutcome>), ReplicaError> {
        let written = self.raft.client_write(PartitionCommand::Append { records }).await;
        match written {
            Ok(response) => match response.data {
                PartitionReply::Appended { epoch, outcomes } => Ok((epoch, outcomes)),
                other => Err(ReplicaError::Raft {
                    group: GroupId::partition(self.partition),
                    reason: format!("append answered with {other:?}"),
                }),
            },
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                Err(ReplicaError::NotLeader {
                    partition: self.partition,
                    leader: forward.leader_id,
                })
            }
            Err(err) => Err(self.raft_error(err)),
        }
    }

    /// The partition's applied state on this replica.
    pub fn state(&self) -> PartitionState {
        *self.state.borrow()
    }

    /// Follows the applied state.
    pub fn subscribe(&self) -> watch::Receiver<PartitionState> {
        self.state.clone()
    }

    /// The group's Raft handle (metrics, membership changes).
    pub fn raft(&self) -> &Raft<PartitionRaft> {
        &self.raft
    }

    /// Stops the replica and its routing.
    pub async fn shutdown(self, router: &RaftRouter) {
        self.epoch_keeper.abort();
        router.remove(GroupId::partition(self.partition));
        let _ = self.raft.shutdown().await;
    }

    fn raft_error(&self, err: impl std::fmt::Display) -> ReplicaError {
        ReplicaError::Raft {
            group: GroupId::partition(self.partition),
            reason: err.to_string(),
        }
    }
}

/// Proposes a new epoch each time this node becomes leader (see the module docs).
async fn keep_epochs(node: NodeId, raft: Raft<PartitionRaft>, state: watch::Receiver<PartitionState>) {
    let mut metrics = raft.metrics();
    let mut led_term = None;
    loop {
        let (is_leader, term) = {
            let m = metrics.borrow_and_update();
            (m.state == ServerState::Leader, m.current_term)
        };
        if is_leader && led_term != Some(term) {
            led_term = Some(term);
            let mut epoch = state.borrow().epoch + 1;
            // Retry above a newer epoch if another activation won; stop when no longer leader.
            while let Ok(response) = raft
                .client_write(PartitionCommand::ActivateEpoch { epoch, leader: node })
                .await
            {
                match response.data {
                    PartitionReply::StaleEpoch { current } => epoch = current + 1,
                    _ => break,
                }
            }
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
