//! The cluster's global state and the commands that change it: members, logs and their
//! partition placement, each partition's epochs and its latest certified checkpoint.
//!
//! [`GlobalState::apply`] is a pure function of the state and the command (signature checks
//! included), so every replica of the global group computes the same state.

use std::collections::BTreeMap;

use pyralog_crypto::quorum::{MemberSet, QuorumCertificate};
use pyralog_crypto::{Checkpoint, ClusterId, Digest, LogName, PublicKey};
use serde::{Deserialize, Serialize};

use super::NodeId;
use super::consumer_groups::{CommittedOffset, ConsumerGroupRecord, StoredGroup};
use crate::model::LogConfig;
use crate::storage::PartitionId;

/// Most partitions one log may have.
pub const MAX_PARTITIONS: u32 = 1024;
/// Largest `max_record_bytes` a log may set: one record fits one request and one Raft entry.
pub const MAX_RECORD_BYTES_LIMIT: u32 = 4 << 20;

/// Signatures a checkpoint needs (shared with light clients).
pub use pyralog_crypto::light::CHECKPOINT_THRESHOLD;

/// A node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Where its Raft RPC server listens.
    pub addr: String,
    /// The key it signs checkpoints with.
    pub key: PublicKey,
}

/// A log and where its partitions live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogInfo {
    /// Numeric id, used in storage keys and group ids.
    pub id: u32,
    /// Settings fixed at creation.
    pub config: LogConfig,
    /// Per partition, its replicas; the first one bootstraps the partition's group.
    pub placement: Vec<Vec<NodeId>>,
}

impl LogInfo {
    /// The storage id of partition `partition`.
    pub fn partition_id(&self, partition: u32) -> PartitionId {
        PartitionId { log: self.id, partition }
    }
}

/// An epoch that ended: its records are the offsets below `end` written after the previous
/// sealed epoch's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedEpoch {
    /// The epoch.
    pub epoch: u64,
    /// Partition size when the next epoch started.
    pub end: u64,
}

/// What the global group knows about one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// The active epoch (0 until a leader reports one).
    pub epoch: u64,
    /// The leader that activated it.
    pub leader: Option<NodeId>,
    /// Earlier epochs, oldest first.
    pub sealed: Vec<SealedEpoch>,
    /// The latest checkpoint signed by a majority of the partition's replicas.
    pub checkpoint: Option<QuorumCertificate<Checkpoint>>,
}

/// The global group's replicated state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalState {
    /// Nodes of the cluster.
    pub members: BTreeMap<NodeId, Member>,
    /// Logs by name.
    pub logs: BTreeMap<LogName, LogInfo>,
    /// The id the next log gets.
    pub next_log_id: u32,
    /// Partitions with reported epochs or checkpoints.
    pub partitions: BTreeMap<PartitionId, PartitionRecord>,
    /// Kafka consumer groups by name: stored generations and committed offsets.
    pub consumer_groups: BTreeMap<String, ConsumerGroupRecord>,
    /// Contract code by its hash (`contract_code` domain): what logs' constraints and
    /// triggers run.
    #[serde(default)]
    pub contract_code: BTreeMap<Digest, Vec<u8>>,
    /// How far each partition's trigger has run.
    #[serde(default)]
    pub triggers: BTreeMap<PartitionId, TriggerCursor>,
}

/// How far a partition's trigger has run: the next record to run it on, and the sequence its
/// next derived record gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerCursor {
    /// The offset of the next source record.
    pub next_offset: u64,
    /// The producer sequence of the next derived record.
    pub next_sequence: u64,
}

/// A change to the global state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GlobalCommand {
    /// Adds a node (or updates its address; its key never changes).
    AddMember {
        /// The node.
        id: NodeId,
        /// Its address and key.
        member: Member,
    },
    /// Removes a node that hosts no partition.
    RemoveMember {
        /// The node.
        id: NodeId,
    },
    /// Creates a log, placing its partitions on the members.
    CreateLog {
        /// Its settings.
        config: LogConfig,
    },
    /// A partition leader activated `epoch` when the partition had `size` records, sealing the
    /// previous epoch there.
    EpochChanged {
        /// The partition.
        partition: PartitionId,
        /// The new epoch.
        epoch: u64,
        /// Its leader.
        leader: NodeId,
        /// Partition size at activation.
        size: u64,
    },
    /// A checkpoint certified by the partition's replicas.
    Checkpoint {
        /// The partition.
        partition: PartitionId,
        /// The certificate.
        certificate: QuorumCertificate<Checkpoint>,
    },
    /// A consumer group's coordinator stores a generation (after a rebalance, or when the group
    /// empties).
    StoreConsumerGroup {
        /// The group.
        name: String,
        /// The generation.
        group: StoredGroup,
    },
    /// A consumer group commits offsets (all or none are stored).
    CommitOffsets {
        /// The group.
        name: String,
        /// The positions.
        offsets: Vec<(PartitionId, CommittedOffset)>,
    },
    /// Stores contract code under its hash (storing it again changes nothing). The node that
    /// proposes it has checked that it compiles.
    StoreContractCode {
        /// The WASM module.
        wasm: Vec<u8>,
    },
    /// A partition's trigger ran up to `cursor` (its derived records are written); a cursor
    /// behind the stored one changes nothing.
    AdvanceTrigger {
        /// The source partition.
        partition: PartitionId,
        /// Where it got to.
        cursor: TriggerCursor,
    },
}

/// What applying a [`GlobalCommand`] produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GlobalReply {
    /// Applied.
    Done,
    /// The log was created.
    LogCreated(LogInfo),
    /// Refused; nothing changed.
    Rejected(Rejection),
}

/// Why the global group refused a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// A log with this name exists.
    #[error("log {0} already exists")]
    LogExists(String),
    /// No log has this id or name.
    #[error("unknown log {0}")]
    UnknownLog(String),
    /// The log's settings are out of range.
    #[error("invalid log settings: {0}")]
    InvalidLog(String),
    /// Fewer members than the replication factor.
    #[error("replication factor {needed} needs as many members; the cluster has {members}")]
    NotEnoughMembers {
        /// Replicas asked for.
        needed: u8,
        /// Members there are.
        members: usize,
    },
    /// No member has this id.
    #[error("unknown member {0}")]
    UnknownMember(NodeId),
    /// The member's key differs from the one registered (keys never change).
    #[error("member {0} is registered with another key")]
    KeyMismatch(NodeId),
    /// The member still hosts partitions.
    #[error("member {0} still hosts {1} partition replicas")]
    MemberInUse(NodeId, usize),
    /// The epoch is not newer than the active one.
    #[error("epoch {got} is not newer than the active epoch {current}")]
    StaleEpoch {
        /// Active epoch.
        current: u64,
        /// Reported epoch.
        got: u64,
    },
    /// The certificate does not verify for this partition.
    #[error("bad checkpoint certificate: {0}")]
    BadCertificate(String),
    /// A consumer group request is out of bounds (name, members, sizes, group count).
    #[error("invalid consumer group: {0}")]
    InvalidConsumerGroup(String),
    /// A consumer group generation older than the stored one.
    #[error("generation {got} is older than the stored generation {stored}")]
    StaleGeneration {
        /// Stored generation.
        stored: i32,
        /// Offered generation.
        got: i32,
    },
    /// A checkpoint of at least this size is already certified.
    #[error("checkpoint of size {got} is not newer than the certified size {have}")]
    StaleCheckpoint {
        /// Certified size.
        have: u64,
        /// Offered size.
        got: u64,
    },
    /// Contract code over the size limit.
    #[error("invalid contract code: {0}")]
    InvalidContract(String),
}

impl GlobalState {
    /// The log with numeric id `id`.
    pub fn log_by_id(&self, id: u32) -> Option<&LogInfo> {
        self.logs.values().find(|log| log.id == id)
    }

    /// The replicas of `partition`, if it exists.
    pub fn replicas(&self, partition: PartitionId) -> Option<&[NodeId]> {
        let log = self.log_by_id(partition.log)?;
        log.placement.get(partition.partition as usize).map(Vec::as_slice)
    }

    /// Size of `partition`'s latest certified checkpoint (0 before the first).
    pub fn certified_size(&self, partition: PartitionId) -> u64 {
        self.partitions.get(&partition).and_then(|p| p.checkpoint.as_ref()).map_or(0, |c| c.message.size)
    }

    /// The keys that sign `partition`'s checkpoints (its replicas', equal weight).
    pub fn checkpoint_signers(&self, partition: PartitionId) -> Result<MemberSet, Rejection> {
        let replicas = self.replicas(partition).ok_or(Rejection::UnknownLog(partition.to_string()))?;
        let keys = replicas
            .iter()
            .map(|id| self.members.get(id).map(|m| m.key).ok_or(Rejection::UnknownMember(*id)))
            .collect::<Result<Vec<_>, _>>()?;
        MemberSet::equal(keys).map_err(|err| Rejection::BadCertificate(err.to_string()))
    }

    /// Applies `command` for cluster `cluster`; a rejected command changes nothing.
    pub fn apply(&mut self, cluster: &ClusterId, command: GlobalCommand) -> GlobalReply {
        let outcome = match command {
            GlobalCommand::AddMember { id, member } => self.add_member(id, member),
            GlobalCommand::RemoveMember { id } => self.remove_member(id),
            GlobalCommand::CreateLog { config } => return self.create_log(config),
            GlobalCommand::EpochChanged { partition, epoch, leader, size } => {
                self.change_epoch(partition, epoch, leader, size)
            }
            GlobalCommand::Checkpoint { partition, certificate } => {
                self.record_checkpoint(cluster, partition, certificate)
            }
            GlobalCommand::StoreConsumerGroup { name, group } => self.store_consumer_group(&name, group),
            GlobalCommand::CommitOffsets { name, offsets } => self.commit_offsets(&name, offsets),
            GlobalCommand::StoreContractCode { wasm } => self.store_contract_code(wasm),
            GlobalCommand::AdvanceTrigger { partition, cursor } => {
                let stored = self.triggers.entry(partition).or_default();
                if cursor.next_offset > stored.next_offset {
                    *stored = cursor;
                }
                Ok(())
            }
        };
        match outcome {
            Ok(()) => GlobalReply::Done,
            Err(rejection) => GlobalReply::Rejected(rejection),
        }
    }

    fn store_contract_code(&mut self, wasm: Vec<u8>) -> Result<(), Rejection> {
        if wasm.len() > crate::constraint::MAX_CODE_BYTES {
            return Err(Rejection::InvalidContract(format!(
                "{} bytes, the limit is {}",
                wasm.len(),
                crate::constraint::MAX_CODE_BYTES
            )));
        }
        self.contract_code.insert(crate::constraint::code_hash(&wasm), wasm);
        Ok(())
    }

    fn add_member(&mut self, id: NodeId, member: Member) -> Result<(), Rejection> {
        if self.members.get(&id).is_some_and(|known| known.key != member.key) {
            return Err(Rejection::KeyMismatch(id));
        }
        self.members.insert(id, member);
        Ok(())
    }

    fn remove_member(&mut self, id: NodeId) -> Result<(), Rejection> {
        if !self.members.contains_key(&id) {
            return Err(Rejection::UnknownMember(id));
        }
        let hosted = self.logs.values().flat_map(|log| &log.placement).filter(|r| r.contains(&id)).count();
        if hosted > 0 {
            return Err(Rejection::MemberInUse(id, hosted));
        }
        self.members.remove(&id);
        Ok(())
    }

    fn create_log(&mut self, config: LogConfig) -> GlobalReply {
        if let Err(rejection) = self.check_new_log(&config) {
            return GlobalReply::Rejected(rejection);
        }
        let id = self.next_log_id;
        // Spread replicas round-robin over the members, shifted per log so partition 0 of every
        // log does not land on the same node.
        let nodes: Vec<NodeId> = self.members.keys().copied().collect();
        let placement = (0..config.partitions as usize)
            .map(|p| {
                (0..usize::from(config.replication_factor))
                    .map(|r| nodes[(id as usize + p + r) % nodes.len()])
                    .collect()
            })
            .collect();
        let info = LogInfo { id, config, placement };
        self.next_log_id += 1;
        self.logs.insert(info.config.name.clone(), info.clone());
        GlobalReply::LogCreated(info)
    }

    fn check_new_log(&self, config: &LogConfig) -> Result<(), Rejection> {
        if self.logs.contains_key(&config.name) {
            return Err(Rejection::LogExists(config.name.to_string()));
        }
        if !(1..=MAX_PARTITIONS).contains(&config.partitions) {
            return Err(Rejection::InvalidLog(format!("partitions must be 1..={MAX_PARTITIONS}")));
        }
        if config.replication_factor == 0 {
            return Err(Rejection::InvalidLog("replication factor must be at least 1".into()));
        }
        if !(1..=MAX_RECORD_BYTES_LIMIT).contains(&config.max_record_bytes) {
            return Err(Rejection::InvalidLog(format!(
                "max record bytes must be 1..={MAX_RECORD_BYTES_LIMIT}"
            )));
        }
        if usize::from(config.replication_factor) > self.members.len() {
            return Err(Rejection::NotEnoughMembers {
                needed: config.replication_factor,
                members: self.members.len(),
            });
        }
        if self.next_log_id == u32::MAX {
            return Err(Rejection::InvalidLog("log ids exhausted".into()));
        }
        if let Some(hash) = &config.constraint
            && !self.contract_code.contains_key(hash)
        {
            return Err(Rejection::InvalidLog(format!("constraint code {hash} is not stored")));
        }
        if let Some(hash) = &config.acl
            && !self.contract_code.contains_key(hash)
        {
            return Err(Rejection::InvalidLog(format!("access-control code {hash} is not stored")));
        }
        if let Some(trigger) = &config.trigger {
            if !self.contract_code.contains_key(&trigger.code) {
                return Err(Rejection::InvalidLog(format!("trigger code {} is not stored", trigger.code)));
            }
            if trigger.target == config.name || !self.logs.contains_key(&trigger.target) {
                return Err(Rejection::InvalidLog(format!(
                    "a trigger's target is another existing log, not {}",
                    trigger.target
                )));
            }
        }
        Ok(())
    }

    fn change_epoch(
        &mut self,
        partition: PartitionId,
        epoch: u64,
        leader: NodeId,
        size: u64,
    ) -> Result<(), Rejection> {
        self.replicas(partition).ok_or(Rejection::UnknownLog(partition.to_string()))?;
        let record = self.partitions.entry(partition).or_default();
        if epoch <= record.epoch {
            return Err(Rejection::StaleEpoch { current: record.epoch, got: epoch });
        }
        if record.epoch > 0 {
            record.sealed.push(SealedEpoch { epoch: record.epoch, end: size });
        }
        record.epoch = epoch;
        record.leader = Some(leader);
        Ok(())
    }

    fn record_checkpoint(
        &mut self,
        cluster: &ClusterId,
        partition: PartitionId,
        certificate: QuorumCertificate<Checkpoint>,
    ) -> Result<(), Rejection> {
        let log = self.log_by_id(partition.log).ok_or(Rejection::UnknownLog(partition.to_string()))?;
        let checkpoint = &certificate.message;
        if checkpoint.cluster != *cluster
            || checkpoint.log != log.config.name
            || checkpoint.partition != partition.partition
        {
            return Err(Rejection::BadCertificate(format!(
                "checkpoint names {}/{}/{}, expected {cluster}/{}/{}",
                checkpoint.cluster,
                checkpoint.log,
                checkpoint.partition,
                log.config.name,
                partition.partition
            )));
        }
        if !checkpoint.zk_roots.keys().eq(log.config.zk.iter()) {
            return Err(Rejection::BadCertificate(format!(
                "checkpoint carries zk roots {:?}, the log keeps {:?}",
                checkpoint.zk_roots.keys().collect::<Vec<_>>(),
                log.config.zk
            )));
        }
        let signers = self.checkpoint_signers(partition)?;
        certificate
            .verify(&signers, CHECKPOINT_THRESHOLD)
            .map_err(|err| Rejection::BadCertificate(err.to_string()))?;
        let record = self.partitions.entry(partition).or_default();
        if let Some(have) = &record.checkpoint
            && checkpoint.size <= have.message.size
        {
            return Err(Rejection::StaleCheckpoint { have: have.message.size, got: checkpoint.size });
        }
        record.checkpoint = Some(certificate);
        Ok(())
    }
}
