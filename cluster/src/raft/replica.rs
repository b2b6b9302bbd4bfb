//! A running partition replica: the group's Raft, its routing, the append batcher and the epoch
//! keeper.
//!
//! Batching: concurrent [`PartitionReplica::append`] calls queue up; the batcher proposes what is
//! waiting as one Raft entry (up to [`MAX_BATCH_RECORDS`] records, [`MAX_IN_FLIGHT`] entries in
//! flight) and hands each caller its own outcomes. openraft 0.9 fsyncs once per append within a
//! group, so records per entry is what raises a partition's throughput.
//!
//! Epochs: when this node becomes the group's leader it proposes `ActivateEpoch` with the
//! partition's current epoch + 1 (read from the applied state, retried if another activation won
//! the race). The epoch is state-machine data; the Raft term is never used as the epoch.

use std::collections::BTreeMap;
use std::sync::Arc;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Config, Raft, ServerState};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::{
    GroupId, NodeId, PartitionCommand, PartitionNetworkFactory, PartitionRaft, PartitionReply,
    PartitionStateMachine, RocksLogStore,
};
use crate::model::Record;
use crate::sequencer::{ScarabGenerator, SystemClock};
use crate::storage::{AppendOutcome, PartitionId, PartitionState, Storage, StorageError};
use crate::transport::{PeerPool, RaftRouter, Transport};

/// Most records one Raft entry carries.
pub const MAX_BATCH_RECORDS: usize = 4096;
/// Most batch entries proposed and not yet committed at once.
pub const MAX_IN_FLIGHT: usize = 4;

/// The node's Scarab id generator, shared by every partition it leads.
pub type IdGenerator = Arc<std::sync::Mutex<ScarabGenerator<SystemClock>>>;

/// What a caller of [`PartitionReplica::append`] gets back.
type AppendResult = Result<(u64, Vec<AppendOutcome>), ReplicaError>;

/// One caller's records waiting for the batcher.
struct PendingAppend {
    records: Vec<Record>,
    reply: oneshot::Sender<AppendResult>,
}

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
    /// The node's id generator failed (fatal for the generator; see `sequencer`).
    #[error("scarab id generator: {0}")]
    Sequencer(String),
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
    appends: mpsc::Sender<PendingAppend>,
    batcher: JoinHandle<()>,
    epoch_keeper: JoinHandle<()>,
}

impl std::fmt::Debug for PartitionReplica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionReplica").field("partition", &self.partition).finish_non_exhaustive()
    }
}

impl PartitionReplica {
    /// Starts the replica of `partition` on node `node` and routes its RPCs; `ids` stamps the
    /// records this node appends as leader.
    pub async fn start<T: Transport>(
        node: NodeId,
        storage: &Storage,
        partition: PartitionId,
        peers: Arc<PeerPool<T>>,
        router: &RaftRouter,
        config: Arc<Config>,
        ids: IdGenerator,
    ) -> Result<Self, ReplicaError> {
        let group = GroupId::partition(partition);
        let machine = PartitionStateMachine::open(storage, partition)?;
        let state = machine.subscribe();
        let log = RocksLogStore::new(storage.clone(), group);
        let network = PartitionNetworkFactory::new(group, peers);
        let raft = Raft::new(node, config, network, log, machine)
            .await
            .map_err(|err| ReplicaError::Raft { group, reason: err.to_string() })?;
        router.insert(group, raft.clone());
        let epoch_keeper = tokio::spawn(keep_epochs(node, raft.clone(), state.clone()));
        let (appends, queue) = mpsc::channel(MAX_BATCH_RECORDS);
        let batcher = tokio::spawn(batch_appends(partition, raft.clone(), queue, ids));
        Ok(PartitionReplica { partition, raft, state, appends, batcher, epoch_keeper })
    }

    /// Makes `members` (node id -> RPC address) the group's first voters. Call on one node once.
    pub async fn initialize(&self, members: BTreeMap<NodeId, String>) -> Result<(), ReplicaError> {
        let nodes: BTreeMap<NodeId, BasicNode> =
            members.into_iter().map(|(id, addr)| (id, BasicNode { addr })).collect();
        match self.raft.initialize(nodes).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
            Err(err) => Err(self.raft_error(err)),
        }
    }

    /// Appends `records` (batched with concurrent callers' into one Raft entry); returns when the
    /// entry is committed (durable on a quorum) and applied here, with the epoch and one outcome
    /// per record, in order.
    pub async fn append(&self, records: Vec<Record>) -> AppendResult {
        let (reply, answer) = oneshot::channel();
        let stopped = || self.raft_error("replica stopped");
        self.appends.send(PendingAppend { records, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
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
        self.batcher.abort();
        router.remove(GroupId::partition(self.partition));
        let _ = self.raft.shutdown().await;
    }

    fn raft_error(&self, err: impl std::fmt::Display) -> ReplicaError {
        ReplicaError::Raft { group: GroupId::partition(self.partition), reason: err.to_string() }
    }
}

/// Drains queued appends into entries (see the module docs). Records get their Scarab ids here,
/// and entries are handed to Raft in the same order, so ids increase with offsets under one
/// leader.
async fn batch_appends(
    partition: PartitionId,
    raft: Raft<PartitionRaft>,
    mut queue: mpsc::Receiver<PendingAppend>,
    ids: IdGenerator,
) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(first) = queue.recv().await {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        // Whatever queued while waiting for a permit joins this entry.
        let mut batch = vec![first];
        let mut count = batch[0].records.len();
        while count < MAX_BATCH_RECORDS {
            match queue.try_recv() {
                Ok(next) => {
                    count += next.records.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let mut records: Vec<Record> = batch.iter().flat_map(|p| p.records.iter().cloned()).collect();
        let stamped = {
            let mut ids = ids.lock().expect("id generator lock");
            records.iter_mut().try_for_each(|record| ids.next_id().map(|id| record.scarab_id = id.0))
        };
        if let Err(err) = stamped {
            for pending in batch {
                let _ = pending.reply.send(Err(ReplicaError::Sequencer(err.to_string())));
            }
            continue;
        }
        // Enqueue in order; wait for the outcome off the loop.
        let queued = raft.client_write_ff(PartitionCommand::Append { records }).await;
        tokio::spawn(async move {
            let written = match queued {
                Err(fatal) => Err(RaftError::Fatal(fatal)),
                Ok(answer) => match answer.await {
                    Ok(Ok(response)) => Ok(response),
                    Ok(Err(api)) => Err(RaftError::APIError(api)),
                    Err(_) => Err(RaftError::Fatal(openraft::error::Fatal::Stopped)),
                },
            };
            drop(permit);
            deliver(partition, batch, written);
        });
    }
}

/// Splits one entry's result among the callers whose records it carried.
fn deliver(
    partition: PartitionId,
    batch: Vec<PendingAppend>,
    written: Result<
        openraft::raft::ClientWriteResponse<PartitionRaft>,
        RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>,
    >,
) {
    let group = GroupId::partition(partition);
    match written {
        Ok(response) => match response.data {
            PartitionReply::Appended { epoch, outcomes } => {
                let mut outcomes = outcomes.into_iter();
                for pending in batch {
                    let mine: Vec<AppendOutcome> = outcomes.by_ref().take(pending.records.len()).collect();
                    let _ = pending.reply.send(Ok((epoch, mine)));
                }
            }
            other => {
                for pending in batch {
                    let reason = format!("append answered with {other:?}");
                    let _ = pending.reply.send(Err(ReplicaError::Raft { group, reason }));
                }
            }
        },
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
            for pending in batch {
                let _ =
                    pending.reply.send(Err(ReplicaError::NotLeader { partition, leader: forward.leader_id }));
            }
        }
        Err(err) => {
            for pending in batch {
                let _ = pending.reply.send(Err(ReplicaError::Raft { group, reason: err.to_string() }));
            }
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
            while let Ok(response) =
                raft.client_write(PartitionCommand::ActivateEpoch { epoch, leader: node }).await
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
