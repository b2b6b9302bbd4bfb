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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Config, Raft, ServerState};
use pyralog_crypto::ZkTree;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::checkpoints::certify_checkpoints;
use super::{
    CheckpointContext, CheckpointSigner, CommitIndex, GlobalCommand, GroupCommand, GroupId,
    GroupNetworkFactory, GroupRaft, GroupReply, NodeId, PartitionCommand, PartitionReply,
    PartitionStateMachine, RocksLogStore,
};
use crate::constraint::{Constraint, Refusal};
use crate::model::Record;
use crate::sequencer::{ScarabGenerator, SystemClock};
use crate::storage::{AppendOutcome, PartitionId, PartitionReader, PartitionState, Storage, StorageError};
use crate::transport::{PeerPool, RaftRouter, Route, Transport};

/// Most records one Raft entry carries.
pub const MAX_BATCH_RECORDS: usize = 4096;
/// Most record bytes one Raft entry carries (one caller's batch may reach it alone). With
/// `max_payload_entries` of 12 an AppendEntries RPC stays well under the transport's 64 MiB frame.
pub const MAX_BATCH_BYTES: usize = 4 << 20;
/// Most batch entries proposed and not yet committed at once. One: appends that arrive while
/// an entry is being replicated and fsynced all join the next entry (group commit), and every
/// cost paid per entry (a Raft append on each replica, its share of an fsync, an AppendEntries
/// message, one apply write) is shared by more records. Under `make bench-etcd`'s load (64
/// clients over 3 partitions) four entries in flight made entries of about five records and cost
/// 448 µs of node CPU per write; one in flight made larger entries and cost 275 µs, with more
/// writes per second and a lower p99 (README, Benchmarks).
pub const MAX_IN_FLIGHT: usize = 1;

/// The node's Scarab id generator, shared by every partition it leads.
pub type IdGenerator = Arc<std::sync::Mutex<ScarabGenerator<SystemClock>>>;

/// A handle that queues appends for a replica's batcher (the replica's own `append`, and
/// appends forwarded by other nodes).
#[derive(Debug, Clone)]
pub struct Appender {
    partition: PartitionId,
    queue: mpsc::Sender<PendingAppend>,
}

impl Appender {
    /// See [`PartitionReplica::append`].
    pub async fn append(&self, records: Vec<Record>) -> AppendResult {
        let (reply, answer) = oneshot::channel();
        let stopped = || ReplicaError::Raft {
            group: GroupId::partition(self.partition),
            reason: "replica stopped".into(),
        };
        let bytes = records.iter().map(approximate_bytes).sum();
        self.queue.send(PendingAppend { records, bytes, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// What one [`PartitionReplica::append`] call wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Appended {
    /// The epoch the records were written in.
    pub epoch: u64,
    /// Per record, in order: its offset, or why it was not stored.
    pub outcomes: Vec<AppendOutcome>,
    /// Per record, in order: the Scarab id the leader stamped on it.
    pub scarab_ids: Vec<u64>,
}

type AppendResult = Result<Appended, ReplicaError>;

/// One caller's records waiting for the batcher.
struct PendingAppend {
    records: Vec<Record>,
    /// Approximate encoded size of the records.
    bytes: usize,
    reply: oneshot::Sender<AppendResult>,
}

/// About what `record` takes encoded (payload fields; the fixed part is small).
fn approximate_bytes(record: &Record) -> usize {
    let headers: usize = record.headers.iter().map(|h| h.name.len() + h.value.len() + 8).sum();
    64 + record.key.as_ref().map_or(0, Vec::len) + record.value.len() + headers
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
    /// The log's constraint contract refused a record; nothing of its batch was written.
    #[error("record {index} of the batch refused by constraint {constraint}: {reason}")]
    Refused {
        /// The partition.
        partition: PartitionId,
        /// The record's position in the batch.
        index: usize,
        /// The contract's reason.
        reason: String,
        /// The constraint's code hash.
        constraint: pyralog_crypto::Digest,
    },
}

/// A partition replica running on this node.
pub struct PartitionReplica {
    partition: PartitionId,
    storage: Storage,
    raft: Raft<GroupRaft>,
    state: watch::Receiver<PartitionState>,
    appender: Appender,
    commit_index: CommitIndex,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for PartitionReplica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionReplica").field("partition", &self.partition).finish_non_exhaustive()
    }
}

impl PartitionReplica {
    /// Starts the replica of `partition` (of a log keeping `zk_trees`, checked by `constraint`)
    /// on node `node` and routes its RPCs; `ids` stamps the
    /// records this node appends as leader. With `checkpoints`, the replica signs checkpoints,
    /// certifies them while it leads, and reports epochs and certificates.
    #[allow(clippy::too_many_arguments)]
    pub async fn start<T: Transport>(
        node: NodeId,
        storage: &Storage,
        partition: PartitionId,
        zk_trees: &BTreeSet<ZkTree>,
        constraint: Option<Arc<Constraint>>,
        peers: Arc<PeerPool<T>>,
        router: &RaftRouter,
        config: Arc<Config>,
        ids: IdGenerator,
        checkpoints: Option<CheckpointContext>,
    ) -> Result<Self, ReplicaError> {
        let group = GroupId::partition(partition);
        let machine = PartitionStateMachine::open(storage, partition, zk_trees)?;
        let state = machine.subscribe();
        let log = RocksLogStore::new(storage.clone(), group);
        let commit_index = log.commit_index();
        let network = GroupNetworkFactory::new(group, peers.clone());
        let raft = Raft::new(node, config, network, log, machine)
            .await
            .map_err(|err| ReplicaError::Raft { group, reason: err.to_string() })?;
        let signer = checkpoints.as_ref().map(|context| {
            let zk = zk_trees.clone();
            Arc::new(CheckpointSigner::new(partition, context.clone(), storage.clone(), state.clone(), zk))
        });
        let (queue, pending) = mpsc::channel(MAX_BATCH_RECORDS);
        let appender = Appender { partition, queue };
        let route = Route { raft: raft.clone(), signer: signer.clone(), appender: Some(appender.clone()) };
        router.insert(group, route);
        let reports = checkpoints.map(|context| context.reports);
        let mut tasks =
            vec![tokio::spawn(keep_epochs(node, partition, raft.clone(), state.clone(), reports))];
        if let Some(signer) = signer {
            tasks.push(tokio::spawn(certify_checkpoints(signer, raft.clone(), peers)));
        }
        let gate = constraint.map(|constraint| ConstraintGate {
            constraint,
            storage: storage.clone(),
            partition,
            state: state.clone(),
            caught_up_term: None,
        });
        tasks.push(tokio::spawn(batch_appends(partition, raft.clone(), pending, ids, gate)));
        Ok(PartitionReplica {
            partition,
            storage: storage.clone(),
            raft,
            state,
            appender,
            commit_index,
            tasks,
        })
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
        self.appender.append(records).await
    }

    /// The partition's applied state on this replica.
    pub fn state(&self) -> PartitionState {
        *self.state.borrow()
    }

    /// Follows the applied state.
    pub fn subscribe(&self) -> watch::Receiver<PartitionState> {
        self.state.clone()
    }

    /// A read-only view of what this replica has applied.
    pub fn reader(&self) -> PartitionReader {
        PartitionReader::new(self.storage.clone(), self.partition, self.state.borrow().size)
    }

    /// The leader this replica knows of, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// The group's Raft handle (metrics, membership changes).
    pub fn raft(&self) -> &Raft<GroupRaft> {
        &self.raft
    }

    /// The group's commit index as openraft last reported it (for metrics).
    pub fn commit_index(&self) -> Option<u64> {
        self.commit_index.get()
    }

    /// The partition this replica holds.
    pub fn partition(&self) -> PartitionId {
        self.partition
    }

    /// Stops the replica and its routing.
    pub async fn shutdown(&self, router: &RaftRouter) {
        for task in &self.tasks {
            task.abort();
        }
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
    raft: Raft<GroupRaft>,
    mut queue: mpsc::Receiver<PendingAppend>,
    ids: IdGenerator,
    mut gate: Option<ConstraintGate>,
) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    // A caller that did not fit the previous entry starts the next one.
    let mut held: Option<PendingAppend> = None;
    loop {
        let first = match held.take() {
            Some(pending) => pending,
            None => match queue.recv().await {
                Some(pending) => pending,
                None => return,
            },
        };
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        // Whatever queued while waiting for a permit joins this entry.
        let (mut count, mut bytes) = (first.records.len(), first.bytes);
        let mut batch = vec![first];
        while count < MAX_BATCH_RECORDS {
            match queue.try_recv() {
                Ok(next) if bytes + next.bytes > MAX_BATCH_BYTES => {
                    held = Some(next);
                    break;
                }
                Ok(next) => {
                    count += next.records.len();
                    bytes += next.bytes;
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        if let Some(gate) = &mut gate {
            batch = gate.admit(&raft, batch).await;
            if batch.is_empty() {
                continue;
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
        let scarab_ids: Vec<u64> = records.iter().map(|r| r.scarab_id).collect();
        let command = GroupCommand::Partition(PartitionCommand::Append { records });
        let queued = raft.client_write_ff(command).await;
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
            deliver(partition, batch, scarab_ids, written);
        });
    }
}

/// The log's constraint, run by the batcher on what this replica proposes as leader.
struct ConstraintGate {
    constraint: Arc<Constraint>,
    storage: Storage,
    partition: PartitionId,
    state: watch::Receiver<PartitionState>,
    /// The term in which this leader last caught up with what was committed before it.
    caught_up_term: Option<u64>,
}

impl ConstraintGate {
    /// The callers of `batch` whose records the constraint accepts, in order; the others are
    /// answered with the refusal (or with why the check could not run).
    async fn admit(&mut self, raft: &Raft<GroupRaft>, batch: Vec<PendingAppend>) -> Vec<PendingAppend> {
        let previous = match self.catch_up(raft).await {
            Ok(()) => self.tip_key().map_err(|err| ReplicaError::Raft {
                group: GroupId::partition(self.partition),
                reason: format!("reading the partition's last record: {err}"),
            }),
            Err(err) => Err(err),
        };
        let mut previous = match previous {
            Ok(previous) => previous,
            Err(err) => {
                for pending in batch {
                    let _ = pending.reply.send(Err(copy_error(&err)));
                }
                return Vec::new();
            }
        };
        let reader = PartitionReader::new(self.storage.clone(), self.partition, self.state.borrow().size);
        // Each producer's latest sequence, as this entry will leave it.
        let mut producers: HashMap<u64, Option<u64>> = HashMap::new();
        let mut admitted = Vec::with_capacity(batch.len());
        for pending in batch {
            match self.check(&reader, &pending.records, &previous, &producers) {
                Ok(Ok((last, seen))) => {
                    previous = last;
                    producers.extend(seen);
                    admitted.push(pending);
                }
                Ok(Err(refusal)) => {
                    let _ = pending.reply.send(Err(ReplicaError::Refused {
                        partition: self.partition,
                        index: refusal.index,
                        reason: refusal.reason,
                        constraint: self.constraint.hash(),
                    }));
                }
                Err(err) => {
                    let reason = format!("reading producer sequences: {err}");
                    let group = GroupId::partition(self.partition);
                    let _ = pending.reply.send(Err(ReplicaError::Raft { group, reason }));
                }
            }
        }
        admitted
    }

    /// Runs the constraint on one caller's `records`, after `previous` and `producers` (this
    /// entry's so far): the key and producer sequences they leave, or the refusal. A record the
    /// partition will not store (an idempotent producer's duplicate or out-of-order sequence) is
    /// not checked and moves nothing: a retried batch gets its duplicate answer, not a refusal.
    #[allow(clippy::type_complexity)]
    fn check(
        &self,
        reader: &PartitionReader,
        records: &[Record],
        previous: &Option<Vec<u8>>,
        producers: &HashMap<u64, Option<u64>>,
    ) -> Result<Result<(Option<Vec<u8>>, HashMap<u64, Option<u64>>), Refusal>, StorageError> {
        let mut previous = previous.clone();
        let mut seen: HashMap<u64, Option<u64>> = HashMap::new();
        for (index, record) in records.iter().enumerate() {
            if let Some(p) = record.producer {
                let last = match seen.get(&p.producer).or_else(|| producers.get(&p.producer)) {
                    Some(last) => *last,
                    None => reader.producer_sequence(p.producer)?,
                };
                if last.is_some_and(|last| p.sequence != last + 1) {
                    continue;
                }
                seen.insert(p.producer, Some(p.sequence));
            }
            if let Err(reason) = self.constraint.check(self.partition.partition, previous.as_deref(), record)
            {
                return Ok(Err(Refusal { index, reason }));
            }
            previous = record.key.clone();
        }
        Ok(Ok((previous, seen)))
    }

    /// Once per term: waits until this leader has applied everything committed before it (so
    /// the partition's last record is the one the constraint compares with). Entries go one at
    /// a time after that, each applied before the next is checked.
    async fn catch_up(&mut self, raft: &Raft<GroupRaft>) -> Result<(), ReplicaError> {
        let term = raft.metrics().borrow().current_term;
        if self.caught_up_term == Some(term) {
            return Ok(());
        }
        let group = GroupId::partition(self.partition);
        match raft.ensure_linearizable().await {
            Ok(_) => {
                self.caught_up_term = Some(term);
                Ok(())
            }
            Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(forward))) => {
                Err(ReplicaError::NotLeader { partition: self.partition, leader: forward.leader_id })
            }
            Err(err) => Err(ReplicaError::Raft { group, reason: err.to_string() }),
        }
    }

    /// The key of the partition's last applied record.
    fn tip_key(&self) -> Result<Option<Vec<u8>>, StorageError> {
        let size = self.state.borrow().size;
        let Some(last) = size.checked_sub(1) else { return Ok(None) };
        let reader = PartitionReader::new(self.storage.clone(), self.partition, size);
        Ok(reader.get(last)?.and_then(|stored| stored.record.key))
    }
}

/// One error for each of several callers.
fn copy_error(err: &ReplicaError) -> ReplicaError {
    match err {
        ReplicaError::NotLeader { partition, leader } => {
            ReplicaError::NotLeader { partition: *partition, leader: *leader }
        }
        ReplicaError::Raft { group, reason } => ReplicaError::Raft { group: *group, reason: reason.clone() },
        other => ReplicaError::Io(other.to_string()),
    }
}

/// Splits one entry's result among the callers whose records it carried.
fn deliver(
    partition: PartitionId,
    batch: Vec<PendingAppend>,
    scarab_ids: Vec<u64>,
    written: Result<
        openraft::raft::ClientWriteResponse<GroupRaft>,
        RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>,
    >,
) {
    let group = GroupId::partition(partition);
    match written {
        Ok(response) => match response.data {
            GroupReply::Partition(PartitionReply::Appended { epoch, outcomes }) => {
                let (mut outcomes, mut ids) = (outcomes.into_iter(), scarab_ids.into_iter());
                for pending in batch {
                    let n = pending.records.len();
                    let outcomes: Vec<AppendOutcome> = outcomes.by_ref().take(n).collect();
                    let scarab_ids: Vec<u64> = ids.by_ref().take(n).collect();
                    let _ = pending.reply.send(Ok(Appended { epoch, outcomes, scarab_ids }));
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

/// Proposes a new epoch each time this node becomes leader (see the module docs), and reports
/// each activation (which seals the previous epoch) to `reports`.
async fn keep_epochs(
    node: NodeId,
    partition: PartitionId,
    raft: Raft<GroupRaft>,
    state: watch::Receiver<PartitionState>,
    reports: Option<mpsc::UnboundedSender<GlobalCommand>>,
) {
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
            let activate =
                |epoch| GroupCommand::Partition(PartitionCommand::ActivateEpoch { epoch, leader: node });
            while let Ok(response) = raft.client_write(activate(epoch)).await {
                match response.data {
                    GroupReply::Partition(PartitionReply::StaleEpoch { current }) => epoch = current + 1,
                    GroupReply::Partition(PartitionReply::EpochActivated { epoch, size }) => {
                        if let Some(reports) = &reports {
                            let _ = reports.send(GlobalCommand::EpochChanged {
                                partition,
                                epoch,
                                leader: node,
                                size,
                            });
                        }
                        break;
                    }
                    _ => break,
                }
            }
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
