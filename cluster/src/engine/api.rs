//! The library API the node binary wraps: logs, appends, reads, proofs, membership, status.
//!
//! Writes go to the partition's leader: a node that does not lead answers
//! [`ClusterError::NotLeader`] with the leader it knows. Reads are served by any replica from
//! what it has applied (like Kafka's follower fetching), so a read right after a write sees it
//! only on the leader.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, ServerState};
use pyralog_crypto::merkle::{Blake3Merkle, ConsistencyProof, InclusionProof};
use pyralog_crypto::quorum::{MemberSet, QuorumCertificate};
use pyralog_crypto::{Checkpoint, ClusterId, Digest, LogName, ZkTree};
use pyralog_zk::poseidon::Fr;
use pyralog_zk::rescue::RescueDigest;
use pyralog_zk::tree::AuthPath;

use super::route::{Route, WRITE_TIMEOUT, forward_append, route};
use super::{ClusterError, ClusterNode};
use crate::model::{LogConfig, Record, StoredRecord, partition_for_key};
use crate::raft::{
    GlobalCommand, GlobalReply, LogInfo, MAX_BATCH_BYTES, Member, NodeId, PartitionReplica, ProposeError,
};
use crate::storage::zk::record_blinding;
use crate::storage::{AppendOutcome, PartitionId, PartitionReader};
use crate::transport::Transport;

/// How long a follower waits to apply up to a certified checkpoint before serving a proof.
const APPLY_WAIT: Duration = Duration::from_secs(5);

/// Where one appended record went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendReceipt {
    /// The partition it was written to.
    pub partition: u32,
    /// The epoch of the write.
    pub epoch: u64,
    /// Its offset, or why it was not stored (idempotent-producer duplicates).
    pub outcome: AppendOutcome,
    /// The Scarab id the leader gave it.
    pub scarab_id: u64,
}

/// A record with a proof that it is in a certified checkpoint.
#[derive(Debug, Clone)]
pub struct RecordProof {
    /// The record.
    pub record: StoredRecord,
    /// Inclusion proof against the checkpoint's root.
    pub proof: InclusionProof<Blake3Merkle>,
    /// The certified checkpoint (verify with [`ClusterNode::checkpoint_signers`]).
    pub certificate: QuorumCertificate<Checkpoint>,
}

/// A replica's part in its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Leads the group.
    Leader,
    /// Follows a leader.
    Follower,
    /// Running an election.
    Candidate,
    /// Receives the log but does not vote.
    Learner,
    /// Stopped.
    Shutdown,
}

/// One partition replica on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStatus {
    /// The log.
    pub log: LogName,
    /// The partition.
    pub partition: u32,
    /// This replica's role.
    pub role: Role,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// The applied epoch.
    pub epoch: u64,
    /// Records applied.
    pub size: u64,
    /// Size of the latest certified checkpoint.
    pub certified_size: u64,
}

/// What a node reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node.
    pub id: NodeId,
    /// Its cluster.
    pub cluster: ClusterId,
    /// Its RPC address.
    pub addr: String,
    /// The global group's leader, as this node knows.
    pub global_leader: Option<NodeId>,
    /// The cluster's members.
    pub members: Vec<(NodeId, Member)>,
    /// The partition replicas on this node.
    pub partitions: Vec<PartitionStatus>,
}

impl<T: Transport> ClusterNode<T> {
    /// The cluster's logs.
    pub fn logs(&self) -> Vec<LogInfo> {
        self.shared.global.state().borrow().logs.values().cloned().collect()
    }

    /// The log named `name`.
    pub fn log(&self, name: &str) -> Result<LogInfo, ClusterError> {
        let unknown = || ClusterError::UnknownLog(name.to_owned());
        let name = LogName::new(name).map_err(|_| unknown())?;
        self.shared.global.state().borrow().logs.get(&name).cloned().ok_or_else(unknown)
    }

    /// Creates a log; its partitions start on the nodes of its placement. Creating a log that
    /// exists with the same settings returns it (so a retried create succeeds); other settings
    /// are refused with [`Rejection::LogExists`](crate::raft::Rejection::LogExists).
    pub async fn create_log(&self, config: LogConfig) -> Result<LogInfo, ClusterError> {
        match self.propose(GlobalCommand::CreateLog { config: config.clone() }).await? {
            GlobalReply::LogCreated(info) => Ok(info),
            GlobalReply::Rejected(rejection @ crate::raft::Rejection::LogExists(_)) => {
                match self.log(config.name.as_str()) {
                    Ok(existing) if existing.config == config => Ok(existing),
                    _ => Err(rejection.into()),
                }
            }
            GlobalReply::Rejected(rejection) => Err(rejection.into()),
            GlobalReply::Done => Err(ProposeError::Raft("create log answered without the log".into()).into()),
        }
    }

    /// Stores contract code in the global state (for a log's `constraint`) once it compiles as
    /// a constraint; returns its hash. Storing the same code again changes nothing.
    pub async fn store_contract_code(&self, wasm: Vec<u8>) -> Result<pyralog_crypto::Digest, ClusterError> {
        crate::constraint::check_code(&wasm).map_err(|err| ClusterError::InvalidContract(err.to_string()))?;
        let hash = crate::constraint::code_hash(&wasm);
        if self.shared.global.state().borrow().contract_code.contains_key(&hash) {
            return Ok(hash);
        }
        match self.propose(GlobalCommand::StoreContractCode { wasm }).await? {
            GlobalReply::Rejected(rejection) => Err(rejection.into()),
            _ => Ok(hash),
        }
    }

    /// Whether `caller` (a verified client key; none: anonymous) may do `operation` on `log`
    /// (`partition`, when the request names one): what the log's access-control contract
    /// decides, or yes for a log without one.
    pub fn authorize(
        &self,
        log: &str,
        caller: Option<&pyralog_crypto::PublicKey>,
        operation: crate::acl::Operation,
        partition: Option<u32>,
    ) -> Result<(), ClusterError> {
        let info = self.log(log)?;
        let Some(hash) = info.config.acl else { return Ok(()) };
        let cached = self.shared.acls.lock().expect("acl cache lock").get(&(info.id, hash)).cloned();
        let acl = match cached {
            Some(acl) => acl,
            None => {
                let wasm = self
                    .contract_code(&hash)
                    .ok_or_else(|| ClusterError::Io(format!("access-control code {hash} is not stored")))?;
                let acl = crate::acl::Acl::new(info.config.name.clone(), &wasm)
                    .map_err(|err| ClusterError::InvalidContract(err.to_string()))?;
                self.shared.acls.lock().expect("acl cache lock").insert((info.id, hash), acl.clone());
                acl
            }
        };
        acl.decide(caller, operation, partition).map_err(|reason| ClusterError::AccessDenied {
            log: log.to_owned(),
            operation: operation.name(),
            reason,
        })
    }

    /// Contract code the global state holds under `hash`.
    pub fn contract_code(&self, hash: &pyralog_crypto::Digest) -> Option<Vec<u8>> {
        self.shared.global.state().borrow().contract_code.get(hash).cloned()
    }

    /// Waits until every partition of `log` has reported a leader's epoch (the log accepts
    /// writes); `false` if that takes longer than `deadline`.
    pub async fn wait_until_writable(&self, log: &str, deadline: Duration) -> Result<bool, ClusterError> {
        let info = self.log(log)?;
        let mut state = self.shared.global.state();
        let writable = state.wait_for(|global| {
            (0..info.config.partitions)
                .all(|p| global.partitions.get(&info.partition_id(p)).is_some_and(|r| r.epoch > 0))
        });
        Ok(matches!(tokio::time::timeout(deadline, writable).await, Ok(Ok(_))))
    }

    /// Appends `records` to `log`: a keyed record goes to the partition its key hashes to, one
    /// without a key to the next partition round-robin. Checks every record first (nothing is
    /// written if one is too large); then each partition's records are written as one batch,
    /// so the result is per record: written, or the failure of its partition's write (shared by
    /// the partition's records).
    pub async fn append(
        &self,
        log: &str,
        records: Vec<Record>,
    ) -> Result<Vec<Result<AppendReceipt, Arc<ClusterError>>>, ClusterError> {
        let info = self.log(log)?;
        check_records(&info, &records)?;
        let count = records.len();
        let mut by_partition: std::collections::BTreeMap<u32, Vec<(usize, Record)>> = Default::default();
        for (index, record) in records.into_iter().enumerate() {
            let partition = match &record.key {
                Some(key) => partition_for_key(key, info.config.partitions),
                None => self.next_round_robin(&info),
            };
            by_partition.entry(partition).or_default().push((index, record));
        }
        let mut writes = Vec::new();
        for (partition, indexed) in by_partition {
            let (indices, records): (Vec<usize>, Vec<Record>) = indexed.into_iter().unzip();
            let write = self.write_partition(info.partition_id(partition), records);
            writes.push((indices, write));
        }
        let mut results: Vec<Option<Result<AppendReceipt, Arc<ClusterError>>>> = vec![None; count];
        // Partitions are written concurrently (each write is already a spawned batch).
        let handles: Vec<_> =
            writes.into_iter().map(|(indices, write)| (indices, tokio::spawn(write))).collect();
        for (indices, handle) in handles {
            let outcome = handle.await.map_err(|err| ClusterError::Io(err.to_string())).and_then(|r| r);
            match outcome {
                Ok(receipts) => indices.iter().zip(receipts).for_each(|(i, r)| results[*i] = Some(Ok(r))),
                Err(err) => {
                    let err = Arc::new(err);
                    indices.iter().for_each(|i| results[*i] = Some(Err(err.clone())));
                }
            }
        }
        Ok(results.into_iter().map(|r| r.expect("every record was written or failed")).collect())
    }

    /// Appends `records` to one partition of `log`, in one batch.
    pub async fn append_to(
        &self,
        log: &str,
        partition: u32,
        records: Vec<Record>,
    ) -> Result<Vec<AppendReceipt>, ClusterError> {
        let info = self.log(log)?;
        check_partition(&info, partition)?;
        check_records(&info, &records)?;
        self.write_partition(info.partition_id(partition), records).await
    }

    /// Up to `max` records of a partition from offset `from`, as applied on this node.
    pub fn read(
        &self,
        log: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<StoredRecord>, ClusterError> {
        let reader = self.reader(log, partition)?;
        if from > reader.size() {
            let id = self.log(log)?.partition_id(partition);
            return Err(ClusterError::OffsetOutOfRange { partition: id, offset: from, size: reader.size() });
        }
        Ok(reader.read(from, max)?)
    }

    /// Like [`ClusterNode::read`], as an Arrow record batch (see [`crate::columnar`]).
    pub fn read_arrow(
        &self,
        log: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<RecordBatch, ClusterError> {
        let records = self.read(log, partition, from, max)?;
        crate::columnar::records_to_batch(&records).map_err(|err| ClusterError::Arrow(err.to_string()))
    }

    /// The latest record written with `key` to `log`, as applied on this node (which must hold
    /// a replica of the key's partition).
    pub fn latest(&self, log: &str, key: &[u8]) -> Result<Option<StoredRecord>, ClusterError> {
        let info = self.log(log)?;
        let partition = partition_for_key(key, info.config.partitions);
        Ok(self.reader(log, partition)?.latest_by_key(key)?)
    }

    /// The latest certified checkpoint of a partition, if any.
    pub fn checkpoint(
        &self,
        log: &str,
        partition: u32,
    ) -> Result<Option<QuorumCertificate<Checkpoint>>, ClusterError> {
        let info = self.log(log)?;
        check_partition(&info, partition)?;
        let global = self.shared.global.state();
        let global = global.borrow();
        Ok(global.partitions.get(&info.partition_id(partition)).and_then(|p| p.checkpoint.clone()))
    }

    /// The keys whose majority certifies a partition's checkpoints.
    pub fn checkpoint_signers(&self, log: &str, partition: u32) -> Result<MemberSet, ClusterError> {
        let info = self.log(log)?;
        check_partition(&info, partition)?;
        Ok(self.shared.global.state().borrow().checkpoint_signers(info.partition_id(partition))?)
    }

    /// The record at `offset` with a proof against the latest certified checkpoint.
    pub async fn proof(&self, log: &str, partition: u32, offset: u64) -> Result<RecordProof, ClusterError> {
        let id = self.log(log)?.partition_id(partition);
        let certificate = self
            .checkpoint(log, partition)?
            .filter(|c| offset < c.message.size)
            .ok_or(ClusterError::NotCertified { partition: id, offset })?;
        let (record, proof) = self.proof_at(log, partition, offset, certificate.message.size).await?;
        Ok(RecordProof { record, proof, certificate })
    }

    /// The record at `offset` with its inclusion proof in the partition's first `size` records
    /// (an anchored checkpoint's size, say); waits briefly for this replica to apply that far.
    pub async fn proof_at(
        &self,
        log: &str,
        partition: u32,
        offset: u64,
        size: u64,
    ) -> Result<(StoredRecord, InclusionProof<Blake3Merkle>), ClusterError> {
        let id = self.log(log)?.partition_id(partition);
        if offset >= size {
            return Err(ClusterError::OffsetOutOfRange { partition: id, offset, size });
        }
        let reader = self
            .applied_reader(log, partition, size)
            .await?
            .ok_or(ClusterError::NotCertified { partition: id, offset })?;
        let record =
            reader.get(offset)?.ok_or(ClusterError::OffsetOutOfRange { partition: id, offset, size })?;
        Ok((record, reader.inclusion_proof(offset, size)?))
    }

    /// The roots of the log's zk trees when the partition had `size` records (default: what
    /// this replica has applied), with that size.
    pub async fn zk_roots(
        &self,
        log: &str,
        partition: u32,
        size: Option<u64>,
    ) -> Result<(u64, BTreeMap<ZkTree, Digest>), ClusterError> {
        let info = self.log(log)?;
        let reader = match size {
            Some(size) => self.reader_at(log, partition, size).await?,
            None => self.reader(log, partition)?,
        };
        let size = size.unwrap_or(reader.size());
        Ok((size, reader.zk_roots_at(&info.config.zk, size)?))
    }

    /// The Poseidon leaf of the record at `offset` and its path in the tree of `size` records:
    /// the witness of a Groth16 membership proof (with the record's key, value and blinding).
    pub async fn poseidon_path(
        &self,
        log: &str,
        partition: u32,
        offset: u64,
        size: u64,
    ) -> Result<(Fr, AuthPath<Fr>), ClusterError> {
        self.require_zk_tree(log, ZkTree::Poseidon)?;
        let reader = self.reader_at(log, partition, size).await?;
        Ok(reader.poseidon_path(offset, size)?)
    }

    /// What an append-batch STARK over records `from_size..to_size` needs: the Rescue tree's
    /// append path at `from_size` and the batch's leaves.
    pub async fn rescue_batch(
        &self,
        log: &str,
        partition: u32,
        from_size: u64,
        to_size: u64,
    ) -> Result<(Vec<RescueDigest>, Vec<RescueDigest>), ClusterError> {
        self.require_zk_tree(log, ZkTree::Rescue)?;
        let reader = self.reader_at(log, partition, to_size).await?;
        Ok(reader.rescue_batch(from_size, to_size)?)
    }

    fn require_zk_tree(&self, log: &str, tree: ZkTree) -> Result<(), ClusterError> {
        match self.log(log)?.config.zk.contains(&tree) {
            true => Ok(()),
            false => Err(ClusterError::ZkTreeNotKept { log: log.to_owned(), tree }),
        }
    }

    /// This replica's view of the partition once it has applied `size` records; waits briefly,
    /// `None` if it has not applied that far by then.
    async fn applied_reader(
        &self,
        log: &str,
        partition: u32,
        size: u64,
    ) -> Result<Option<PartitionReader>, ClusterError> {
        let replica = self.local_replica(log, partition)?;
        let mut applied = replica.subscribe();
        // The watch guard must not outlive this statement: it blocks the state machine.
        let caught_up =
            matches!(tokio::time::timeout(APPLY_WAIT, applied.wait_for(|s| s.size >= size)).await, Ok(Ok(_)));
        Ok(caught_up.then(|| replica.reader()))
    }

    /// [`Self::applied_reader`], a size not reached being out of range.
    async fn reader_at(&self, log: &str, partition: u32, size: u64) -> Result<PartitionReader, ClusterError> {
        match self.applied_reader(log, partition, size).await? {
            Some(reader) => Ok(reader),
            None => {
                let reader = self.reader(log, partition)?;
                let id = self.log(log)?.partition_id(partition);
                Err(ClusterError::OffsetOutOfRange { partition: id, offset: size, size: reader.size() })
            }
        }
    }

    /// Proof that a partition's first `old_size` records are a prefix of its first `new_size`.
    pub fn consistency_proof(
        &self,
        log: &str,
        partition: u32,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof<Blake3Merkle>, ClusterError> {
        let reader = self.reader(log, partition)?;
        if old_size > new_size || new_size > reader.size() {
            let id = self.log(log)?.partition_id(partition);
            let offset = if old_size > new_size { old_size } else { new_size };
            return Err(ClusterError::OffsetOutOfRange {
                partition: id,
                offset,
                size: reader.size().min(new_size),
            });
        }
        Ok(reader.consistency_proof(old_size, new_size)?)
    }

    /// Adds node `id` to the cluster (call on the global leader): registers its address and
    /// key, then makes it a voter of the global group once it has caught up.
    pub async fn add_member(&self, id: NodeId, member: Member) -> Result<(), ClusterError> {
        self.require_global_leader()?;
        let addr = member.addr.clone();
        if let GlobalReply::Rejected(rejection) =
            self.propose(GlobalCommand::AddMember { id, member }).await?
        {
            return Err(rejection.into());
        }
        let raft = self.shared.global.raft();
        raft.add_learner(id, BasicNode { addr }, true).await.map_err(|err| self.membership_error(err))?;
        raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(|err| self.membership_error(err))?;
        Ok(())
    }

    /// Removes node `id` from the cluster (call on the global leader). Refused while it still
    /// hosts partition replicas.
    pub async fn remove_member(&self, id: NodeId) -> Result<(), ClusterError> {
        self.require_global_leader()?;
        if let GlobalReply::Rejected(rejection) = self.propose(GlobalCommand::RemoveMember { id }).await? {
            return Err(rejection.into());
        }
        let raft = self.shared.global.raft();
        raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
            .await
            .map_err(|err| self.membership_error(err))?;
        Ok(())
    }

    /// The node, its view of the cluster, and its partition replicas.
    pub fn status(&self) -> NodeStatus {
        let global = self.shared.global.state();
        let global = global.borrow();
        let replicas: Vec<Arc<PartitionReplica>> =
            self.shared.replicas.read().expect("replica map lock").values().cloned().collect();
        let mut partitions: Vec<PartitionStatus> = replicas
            .iter()
            .filter_map(|replica| {
                let id = replica.partition();
                let log = global.log_by_id(id.log)?;
                let metrics = replica.raft().metrics().borrow().clone();
                let state = replica.state();
                Some(PartitionStatus {
                    log: log.config.name.clone(),
                    partition: id.partition,
                    role: role(metrics.state),
                    leader: metrics.current_leader,
                    epoch: state.epoch,
                    size: state.size,
                    certified_size: global.certified_size(id),
                })
            })
            .collect();
        partitions.sort_by(|a, b| (&a.log, a.partition).cmp(&(&b.log, b.partition)));
        NodeStatus {
            id: self.shared.id,
            cluster: self.shared.cluster.clone(),
            addr: self.shared.addr.clone(),
            global_leader: self.shared.global.raft().metrics().borrow().current_leader,
            members: global.members.iter().map(|(id, m)| (*id, m.clone())).collect(),
            partitions,
        }
    }

    fn next_round_robin(&self, info: &LogInfo) -> u32 {
        let mut next = self.shared.round_robin.lock().expect("round robin lock");
        let slot = next.entry(info.id).or_insert(0);
        let partition = *slot % info.config.partitions;
        *slot = slot.wrapping_add(1);
        partition
    }

    /// See [`write_partition`].
    fn write_partition(
        &self,
        id: PartitionId,
        records: Vec<Record>,
    ) -> impl Future<Output = Result<Vec<AppendReceipt>, ClusterError>> + Send + 'static {
        write_partition(self.shared.clone(), id, records)
    }

    fn local_replica(&self, log: &str, partition: u32) -> Result<Arc<PartitionReplica>, ClusterError> {
        let info = self.log(log)?;
        check_partition(&info, partition)?;
        let id = info.partition_id(partition);
        self.replica(id).ok_or_else(|| ClusterError::NotReplica {
            partition: id,
            replicas: info.placement[partition as usize].clone(),
        })
    }

    fn reader(&self, log: &str, partition: u32) -> Result<PartitionReader, ClusterError> {
        Ok(self.local_replica(log, partition)?.reader())
    }

    /// A failed membership change: leadership moved (retry at the leader), or Raft failed.
    fn membership_error(&self, err: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> ClusterError {
        match err {
            RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => self
                .require_global_leader()
                .err()
                .unwrap_or(ClusterError::NotLeader { partition: None, leader: None, leader_addr: None }),
            other => ClusterError::Global(ProposeError::Raft(other.to_string())),
        }
    }

    fn require_global_leader(&self) -> Result<(), ClusterError> {
        let leader = self.shared.global.raft().metrics().borrow().current_leader;
        if leader == Some(self.shared.id) {
            return Ok(());
        }
        let leader_addr =
            leader.and_then(|l| self.shared.global.state().borrow().members.get(&l).map(|m| m.addr.clone()));
        Err(ClusterError::NotLeader { partition: None, leader, leader_addr })
    }
}

fn check_partition(info: &LogInfo, partition: u32) -> Result<(), ClusterError> {
    match partition < info.config.partitions {
        true => Ok(()),
        false => Err(ClusterError::UnknownPartition {
            log: info.config.name.to_string(),
            partition,
            partitions: info.config.partitions,
        }),
    }
}

/// Every record must encode within the log's limit, and the batch within one request's.
fn check_records(info: &LogInfo, records: &[Record]) -> Result<(), ClusterError> {
    let mut total = 0;
    for (index, record) in records.iter().enumerate() {
        let stored = StoredRecord { offset: 0, epoch: 0, record: record.clone() };
        let size = stored.encode().map_err(|reason| ClusterError::InvalidRecord { index, reason })?.len();
        if size > info.config.max_record_bytes as usize {
            return Err(ClusterError::RecordTooLarge { index, size, max: info.config.max_record_bytes });
        }
        if info.config.zk.contains(&ZkTree::Poseidon) {
            record_blinding(record).map_err(|reason| ClusterError::BadZkBlinding { index, reason })?;
        }
        total += size;
    }
    if total > MAX_BATCH_BYTES {
        return Err(ClusterError::BatchTooLarge { bytes: total, max: MAX_BATCH_BYTES });
    }
    Ok(())
}

fn role(state: ServerState) -> Role {
    match state {
        ServerState::Leader => Role::Leader,
        ServerState::Follower => Role::Follower,
        ServerState::Candidate => Role::Candidate,
        ServerState::Learner => Role::Learner,
        ServerState::Shutdown => Role::Shutdown,
    }
}

/// Writes one partition's records: through the local replica when it leads, otherwise
/// forwarded (one hop) to the leader this node knows of. A partition between leaders (an
/// election after a restart or a failure) is waited for, within [`ELECTION_WAIT`], as etcd's
/// clients wait, rather than failed at once; then [`ClusterError::NoLeader`].
pub(super) async fn write_partition<T: Transport>(
    shared: Arc<super::Shared<T>>,
    id: PartitionId,
    records: Vec<Record>,
) -> Result<Vec<AppendReceipt>, ClusterError> {
    let written = match route(&shared, id).await? {
        Route::Local(replica) => {
            let written = tokio::time::timeout(WRITE_TIMEOUT, replica.append(records)).await;
            written.map_err(|_| ClusterError::Timeout { partition: id, after: WRITE_TIMEOUT })??
        }
        Route::Forward { leader, addr } => forward_append(&shared, id, leader, addr, records).await?,
    };
    Ok(written
        .outcomes
        .into_iter()
        .zip(written.scarab_ids)
        .map(|(outcome, scarab_id)| AppendReceipt {
            partition: id.partition,
            epoch: written.epoch,
            outcome,
            scarab_id,
        })
        .collect())
}
