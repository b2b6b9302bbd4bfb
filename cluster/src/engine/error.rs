//! The engine's errors, by fault: the caller's (unknown names, bad ranges, oversized records),
//! placement (not the leader, not a replica: retry elsewhere), and the node's own (storage,
//! Raft).

use pyralog_crypto::ZkTree;

use crate::model::{RecordEncodeError, zk_option};
use crate::raft::{NodeId, ProposeError, Rejection, ReplicaError};
use crate::storage::{PartitionId, StorageError};

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// No log has this name.
    #[error("unknown log {0:?}")]
    UnknownLog(String),
    /// The log has no such partition.
    #[error("log {log:?} has {partitions} partitions; there is no partition {partition}")]
    UnknownPartition {
        /// The log.
        log: String,
        /// The partition asked for.
        partition: u32,
        /// How many it has.
        partitions: u32,
    },
    /// The offset is past the partition's end (or, for proofs, past what is certified).
    #[error("offset {offset} is out of range for partition {partition} (size {size})")]
    OffsetOutOfRange {
        /// The partition.
        partition: PartitionId,
        /// The offset asked for.
        offset: u64,
        /// The size it was checked against.
        size: u64,
    },
    /// An encoded record exceeds the log's limit; nothing of the batch was written.
    #[error("record {index} of the batch is {size} bytes encoded; the log's limit is {max}")]
    RecordTooLarge {
        /// Position in the batch.
        index: usize,
        /// Its encoded size.
        size: usize,
        /// The log's `max_record_bytes`.
        max: u32,
    },
    /// A record cannot be encoded (too many headers, name too long, ...).
    #[error("record {index} of the batch is invalid: {reason}")]
    InvalidRecord {
        /// Position in the batch.
        index: usize,
        /// What is wrong.
        reason: RecordEncodeError,
    },
    /// A record's zk blinding header is malformed (a Poseidon log's records carry at most one,
    /// of 32 bytes).
    #[error("record {index} of the batch is invalid: {reason}")]
    BadZkBlinding {
        /// Position in the batch.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The log does not keep this zk tree (it was created without it).
    #[error("log {log:?} keeps no {tree:?} tree; create it with zk [{}]", zk_option(*tree))]
    ZkTreeNotKept {
        /// The log.
        log: String,
        /// The tree asked for.
        tree: ZkTree,
    },
    /// This node does not lead the partition (or the global group, if `partition` is `None`);
    /// retry at the hinted leader.
    #[error("not the leader of {}; {}", partition.map_or("the global group".to_owned(), |p| format!("partition {p}")), leader_hint(*leader, leader_addr.as_deref()))]
    NotLeader {
        /// The partition; `None` for the global group.
        partition: Option<PartitionId>,
        /// The leader this node knows of.
        leader: Option<NodeId>,
        /// Its RPC address, if known.
        leader_addr: Option<String>,
    },
    /// No leader was elected for the partition within the write's timeout (an election that
    /// does not end: too few replicas up). Nothing was written.
    #[error("no leader of partition {partition} was elected within {} ms; nothing was written", waited.as_millis())]
    NoLeader {
        /// The partition.
        partition: PartitionId,
        /// How long the write waited for an election.
        waited: std::time::Duration,
    },
    /// This node holds no replica of the partition; ask one of `replicas`.
    #[error("this node has no replica of partition {partition}; replicas are {replicas:?}")]
    NotReplica {
        /// The partition.
        partition: PartitionId,
        /// Nodes that hold it.
        replicas: Vec<NodeId>,
    },
    /// No checkpoint covering the record is certified yet; retry shortly.
    #[error("no certified checkpoint of partition {partition} covers offset {offset} yet")]
    NotCertified {
        /// The partition.
        partition: PartitionId,
        /// The offset asked for.
        offset: u64,
    },
    /// The batch's records together exceed what one request may carry; nothing was written.
    #[error("the batch is {bytes} bytes; one request carries at most {max}")]
    BatchTooLarge {
        /// Its size (record bytes).
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The write got no answer in time: it may or may not be stored. Retry with an idempotent
    /// producer to avoid a duplicate.
    #[error("no answer from partition {partition} within {} ms; the write may or may not be stored", after.as_millis())]
    Timeout {
        /// The partition.
        partition: PartitionId,
        /// How long the node waited.
        after: std::time::Duration,
    },
    /// The connection to the partition leader this write was forwarded to broke after the
    /// write was sent, before the leader answered: it may or may not be stored. Retry with an
    /// idempotent producer to avoid a duplicate.
    #[error(
        "the connection to node {leader}, the leader of partition {partition}, broke before it answered; the write may or may not be stored"
    )]
    Interrupted {
        /// The partition.
        partition: PartitionId,
        /// The leader the write went to.
        leader: NodeId,
    },
    /// The partition leader this write was forwarded to failed it.
    #[error("node {node} failed the forwarded write: {reason}")]
    Remote {
        /// The leader.
        node: NodeId,
        /// What it said.
        reason: String,
    },
    /// The log's constraint contract refused a record; nothing of its batch was written.
    #[error("record {index} of the batch refused by the log's constraint ({constraint}): {reason}")]
    Refused {
        /// The partition.
        partition: PartitionId,
        /// The record's position in the partition's batch.
        index: usize,
        /// The contract's reason.
        reason: String,
        /// The constraint's code hash.
        constraint: pyralog_crypto::Digest,
    },
    /// The log's access-control contract denied the request; nothing was written or read.
    #[error("{operation} on log {log} denied by its access-control contract: {reason}")]
    AccessDenied {
        /// The log.
        log: String,
        /// `append` or `read`.
        operation: &'static str,
        /// The contract's reason.
        reason: String,
    },
    /// Contract code that does not compile (a log's constraint).
    #[error("invalid contract: {0}")]
    InvalidContract(String),
    /// The global group refused the change.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// Local storage failed or holds corrupt data.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A partition replica failed.
    #[error(transparent)]
    Replica(ReplicaError),
    /// The global group could not be reached or failed.
    #[error(transparent)]
    Global(#[from] ProposeError),
    /// Arrow encoding failed.
    #[error("arrow: {0}")]
    Arrow(String),
    /// A socket or file operation failed.
    #[error("i/o: {0}")]
    Io(String),
}

impl From<ReplicaError> for ClusterError {
    fn from(err: ReplicaError) -> Self {
        match err {
            ReplicaError::NotLeader { partition, leader } => {
                ClusterError::NotLeader { partition: Some(partition), leader, leader_addr: None }
            }
            ReplicaError::Storage(err) => ClusterError::Storage(err),
            ReplicaError::Refused { partition, index, reason, constraint } => {
                ClusterError::Refused { partition, index, reason, constraint }
            }
            other => ClusterError::Replica(other),
        }
    }
}

/// "the leader is node 2 at 127.0.0.1:7001", or what of it is known.
fn leader_hint(leader: Option<NodeId>, addr: Option<&str>) -> String {
    match (leader, addr) {
        (Some(leader), Some(addr)) => format!("the leader is node {leader} at {addr}"),
        (Some(leader), None) => format!("the leader is node {leader} (address unknown)"),
        (None, _) => "no leader is known".to_owned(),
    }
}
