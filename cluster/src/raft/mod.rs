//! Raft groups on openraft 0.9 (`storage-v2`, standard single-leader-per-term Raft via the
//! `single-term-leader` feature).
//!
//! Every group of the node (the global group and one per partition) keeps its log in the node's
//! one RocksDB ([`RocksLogStore`]); appends of all groups share the WAL syncer's fsyncs.

// openraft's storage traits fix the (large) error type these modules return.
mod checkpoints;
mod consumer_groups;
mod global;
#[allow(clippy::result_large_err)]
mod global_sm;
mod global_state;
#[allow(clippy::result_large_err)]
mod log_store;
mod network;
#[allow(clippy::result_large_err)]
mod partition_sm;
mod replica;
#[allow(clippy::result_large_err)]
mod sm_store;

pub use checkpoints::{CheckpointContext, CheckpointSigner, SignRefusal};
pub use consumer_groups::{
    CommittedOffset, ConsumerGroupRecord, MAX_CONSUMER_GROUPS, MAX_GROUP_MEMBERS, MAX_GROUP_NAME_BYTES,
    MAX_OFFSET_METADATA_BYTES, MAX_STORED_GROUP_BYTES, StoredGroup, StoredGroupMember,
};
pub use global::{GlobalReplica, ProposeError};
pub use global_sm::{GlobalSnapshotBuilder, GlobalStateMachine};
pub use global_state::{
    CHECKPOINT_THRESHOLD, GlobalCommand, GlobalReply, GlobalState, LogInfo, MAX_PARTITIONS,
    MAX_RECORD_BYTES_LIMIT, Member, PartitionRecord, Rejection, SealedEpoch, TriggerCursor,
};
pub use log_store::{CommitIndex, RocksLogStore};
pub use network::{GroupNetwork, GroupNetworkFactory};
pub use partition_sm::{PartitionSnapshotBuilder, PartitionStateMachine};
pub use replica::{
    Appended, Appender, IdGenerator, MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_IN_FLIGHT, PartitionReplica,
    ReplicaError,
};

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::model::Record;
use crate::storage::{AppendOutcome, PartitionId};

/// A node of the cluster.
pub type NodeId = u64;

/// A Raft group on this node: the global group or one partition's group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupId(pub u64);

impl GroupId {
    /// The cluster's global group (members, logs, placement, epochs, checkpoints).
    pub const GLOBAL: GroupId = GroupId(u64::MAX);

    /// The group of one partition.
    pub fn partition(id: PartitionId) -> Self {
        GroupId((u64::from(id.log) << 32) | u64::from(id.partition))
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GroupId::GLOBAL => f.write_str("global"),
            GroupId(id) => write!(f, "{}/{}", id >> 32, id & 0xffff_ffff),
        }
    }
}

/// A command replicated through a partition's Raft log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartitionCommand {
    /// Append records (a batch travels in one entry), tagged with the partition's current epoch.
    Append {
        /// The records, in order.
        records: Vec<Record>,
    },
    /// A new leader starts a new epoch; records written afterwards carry it.
    ActivateEpoch {
        /// The new epoch; must exceed the current one.
        epoch: u64,
        /// The leader that owns it.
        leader: NodeId,
    },
}

/// What applying a [`PartitionCommand`] produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartitionReply {
    /// Entries that carry no command (blank, membership).
    Nothing,
    /// One outcome per appended record, with the epoch they were written in.
    Appended {
        /// The epoch of the records.
        epoch: u64,
        /// Per record, in order.
        outcomes: Vec<AppendOutcome>,
    },
    /// The epoch is now active; the previous one ended (is sealed) at `size` records.
    EpochActivated {
        /// The active epoch.
        epoch: u64,
        /// Partition size when it started: the previous epoch's records are offsets below it.
        size: u64,
    },
    /// The epoch was not newer than the current one; nothing changed.
    StaleEpoch {
        /// The current epoch.
        current: u64,
    },
}

/// A command replicated through any group's Raft log. Every group shares one type config (one
/// log store, network and transport serve them all); a state machine rejects the other kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupCommand {
    /// For a partition group.
    Partition(PartitionCommand),
    /// For the global group.
    Global(GlobalCommand),
}

/// What applying a [`GroupCommand`] produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupReply {
    /// From a partition group.
    Partition(PartitionReply),
    /// From the global group.
    Global(GlobalReply),
    /// The command was for the other kind of group; nothing changed.
    WrongGroup,
}

#[allow(missing_docs, unreachable_pub)]
mod types {
    use super::*;

    openraft::declare_raft_types!(
        /// The Raft types of every group (global and partitions).
        pub GroupRaft:
            D = GroupCommand,
            R = GroupReply,
            NodeId = NodeId,
            Node = openraft::BasicNode,
            Entry = openraft::Entry<GroupRaft>,
            SnapshotData = Cursor<Vec<u8>>,
            AsyncRuntime = openraft::TokioRuntime,
    );
}

pub use types::GroupRaft;
