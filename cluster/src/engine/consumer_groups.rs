//! What a Kafka group coordinator needs of the engine: whether this node leads the global group
//! (the coordinator of every group is that leader), a linearizable view of the global state after
//! leadership changes, and the two commands that store groups and offsets.

use openraft::ServerState;

use super::{ClusterError, ClusterNode};
use crate::raft::{
    CommittedOffset, ConsumerGroupRecord, GlobalCommand, GlobalReply, ProposeError, StoredGroup,
};
use crate::storage::PartitionId;
use crate::transport::Transport;

impl<T: Transport> ClusterNode<T> {
    /// The global group's term while this node leads it, else `None`. A coordinator that saw
    /// another term must reload what it keeps in memory.
    pub fn global_leader_term(&self) -> Option<u64> {
        let metrics = self.shared.global.raft().metrics();
        let metrics = metrics.borrow();
        (metrics.state == ServerState::Leader && metrics.current_leader == Some(self.shared.id))
            .then_some(metrics.current_term)
    }

    /// Waits until this node, as leader, has applied everything committed before now, so the
    /// global state it shows is current (a new leader calls this before serving groups).
    pub async fn sync_global(&self) -> Result<(), ClusterError> {
        self.shared
            .global
            .raft()
            .ensure_linearizable()
            .await
            .map(|_| ())
            .map_err(|err| ClusterError::Global(ProposeError::Raft(err.to_string())))
    }

    /// The consumer group `name` as the global state keeps it.
    pub fn consumer_group(&self, name: &str) -> Option<ConsumerGroupRecord> {
        self.shared.global.state().borrow().consumer_groups.get(name).cloned()
    }

    /// Every consumer group the global state keeps, with its last stored generation.
    pub fn consumer_groups(&self) -> Vec<(String, Option<StoredGroup>)> {
        let state = self.shared.global.state();
        let state = state.borrow();
        state.consumer_groups.iter().map(|(name, record)| (name.clone(), record.generation.clone())).collect()
    }

    /// Stores a generation of group `name` through the global group.
    pub async fn store_consumer_group(&self, name: String, group: StoredGroup) -> Result<(), ClusterError> {
        self.expect_done(self.propose(GlobalCommand::StoreConsumerGroup { name, group }).await?)
    }

    /// Commits offsets of group `name` through the global group (all or none).
    pub async fn commit_offsets(
        &self,
        name: String,
        offsets: Vec<(PartitionId, CommittedOffset)>,
    ) -> Result<(), ClusterError> {
        self.expect_done(self.propose(GlobalCommand::CommitOffsets { name, offsets }).await?)
    }

    fn expect_done(&self, reply: GlobalReply) -> Result<(), ClusterError> {
        match reply {
            GlobalReply::Done => Ok(()),
            GlobalReply::Rejected(rejection) => Err(rejection.into()),
            GlobalReply::LogCreated(_) => Err(ProposeError::Raft("unexpected reply".into()).into()),
        }
    }
}
