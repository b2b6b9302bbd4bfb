//! Checkpoints: every replica signs the partition state it has applied; the partition leader
//! gathers a majority of the replicas' signatures into a certificate and reports it to the
//! global group, which checks it again before recording it.
//!
//! A replica signs a checkpoint only for a size it has applied and a root it computed itself, so
//! a certificate means a majority holds exactly those records.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openraft::{Raft, ServerState};
use pyralog_crypto::quorum::{CertificateBuilder, SignatureShare};
use pyralog_crypto::{Checkpoint, ClusterId, Digest, Keypair, LogName, ZkTree};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::global_state::CHECKPOINT_THRESHOLD;
use super::{GlobalCommand, GlobalState, GroupId, GroupRaft};
use crate::storage::{PartitionId, PartitionReader, PartitionState, Storage};
use crate::transport::{PeerPool, RaftRequest, RaftResponse, Transport};

/// How long a replica waits to apply up to a checkpoint it is asked to sign.
const SIGN_WAIT: Duration = Duration::from_secs(5);

/// What a partition replica needs to take part in checkpoints and report to the global group.
#[derive(Clone)]
pub struct CheckpointContext {
    /// The cluster.
    pub cluster: ClusterId,
    /// The partition's log.
    pub log: LogName,
    /// This node's signing key.
    pub keypair: Arc<Keypair>,
    /// The global state (replicas' keys and addresses, the certified checkpoint).
    pub global: watch::Receiver<GlobalState>,
    /// Where epoch changes and certificates go; the node proposes them to the global group.
    pub reports: mpsc::UnboundedSender<GlobalCommand>,
    /// Least time between two checkpoints of the partition.
    pub interval: Duration,
}

impl std::fmt::Debug for CheckpointContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointContext").field("cluster", &self.cluster).field("log", &self.log).finish()
    }
}

/// Why a replica refused to sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum SignRefusal {
    /// The replica does not sign checkpoints for this group.
    #[error("this replica does not sign checkpoints")]
    NotSigning,
    /// The checkpoint names another cluster, log or partition.
    #[error("checkpoint is for another partition")]
    WrongPartition,
    /// The replica has not applied that many records in time.
    #[error("applied only {applied} records")]
    Behind {
        /// Records applied.
        applied: u64,
    },
    /// The replica computes another root for that size.
    #[error("root differs from this replica's")]
    RootMismatch,
    /// The replica computes other zk roots for that size (or the log keeps other zk trees).
    #[error("zk roots differ from this replica's")]
    ZkRootMismatch,
    /// The checkpoint's epoch is newer than any this replica applied.
    #[error("epoch {epoch} is newer than this replica's {applied}")]
    FutureEpoch {
        /// The checkpoint's epoch.
        epoch: u64,
        /// This replica's epoch.
        applied: u64,
    },
    /// Reading the partition failed.
    #[error("storage: {0}")]
    Storage(String),
}

/// Signs checkpoints of one partition that this replica has applied.
#[derive(Debug)]
pub struct CheckpointSigner {
    partition: PartitionId,
    context: CheckpointContext,
    storage: Storage,
    state: watch::Receiver<PartitionState>,
    zk_trees: BTreeSet<ZkTree>,
}

impl CheckpointSigner {
    /// A signer for `partition` (of a log keeping `zk_trees`), following its applied `state`.
    pub fn new(
        partition: PartitionId,
        context: CheckpointContext,
        storage: Storage,
        state: watch::Receiver<PartitionState>,
        zk_trees: BTreeSet<ZkTree>,
    ) -> Self {
        CheckpointSigner { partition, context, storage, state, zk_trees }
    }

    /// The roots of the log's zk trees at `size`, from `reader`.
    fn zk_roots(&self, reader: &PartitionReader, size: u64) -> Result<BTreeMap<ZkTree, Digest>, SignRefusal> {
        reader.zk_roots_at(&self.zk_trees, size).map_err(|err| SignRefusal::Storage(err.to_string()))
    }

    /// Signs `checkpoint` once this replica has applied its size, if the root matches.
    pub async fn sign(&self, checkpoint: &Checkpoint) -> Result<SignatureShare, SignRefusal> {
        if checkpoint.cluster != self.context.cluster
            || checkpoint.log != self.context.log
            || checkpoint.partition != self.partition.partition
        {
            return Err(SignRefusal::WrongPartition);
        }
        let mut state = self.state.clone();
        let applied = tokio::time::timeout(SIGN_WAIT, state.wait_for(|s| s.size >= checkpoint.size)).await;
        let applied = match applied {
            Ok(Ok(state)) => *state,
            _ => return Err(SignRefusal::Behind { applied: self.state.borrow().size }),
        };
        if checkpoint.epoch > applied.epoch {
            return Err(SignRefusal::FutureEpoch { epoch: checkpoint.epoch, applied: applied.epoch });
        }
        let reader = PartitionReader::new(self.storage.clone(), self.partition, applied.size);
        let root = reader.root_at(checkpoint.size).map_err(|err| SignRefusal::Storage(err.to_string()))?;
        if root != checkpoint.root {
            return Err(SignRefusal::RootMismatch);
        }
        if self.zk_roots(&reader, checkpoint.size)? != checkpoint.zk_roots {
            return Err(SignRefusal::ZkRootMismatch);
        }
        Ok(SignatureShare::sign(&self.context.keypair, checkpoint))
    }

    /// The checkpoint of everything applied now.
    fn current(&self) -> Result<Checkpoint, SignRefusal> {
        let state = *self.state.borrow();
        let reader = PartitionReader::new(self.storage.clone(), self.partition, state.size);
        let root = reader.root_at(state.size).map_err(|err| SignRefusal::Storage(err.to_string()))?;
        let zk_roots = self.zk_roots(&reader, state.size)?;
        let time_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Ok(Checkpoint {
            cluster: self.context.cluster.clone(),
            log: self.context.log.clone(),
            partition: self.partition.partition,
            epoch: state.epoch,
            size: state.size,
            root,
            time_ms,
            zk_roots,
        })
    }
}

/// A certificate counts as recorded once the global group has it; until then it is certified
/// again after this long (the report may have been lost).
const REPORT_GRACE: Duration = Duration::from_secs(2);
/// A leader also checks this often without new writes (a lost report, the tail of a burst).
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// While this replica leads, certifies the applied state whenever it is ahead of the recorded
/// checkpoint (at most once per interval) and reports each certificate.
pub(crate) async fn certify_checkpoints<T: Transport>(
    signer: Arc<CheckpointSigner>,
    raft: Raft<GroupRaft>,
    peers: Arc<PeerPool<T>>,
) {
    let partition = signer.partition;
    let mut state = signer.state.clone();
    // The size of the last certificate reported, and when.
    let mut pending: Option<(u64, Instant)> = None;
    loop {
        tokio::select! {
            changed = state.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(IDLE_CHECK) => {}
        }
        tokio::time::sleep(signer.context.interval).await;
        let leads = raft.metrics().borrow().state == ServerState::Leader;
        let size = state.borrow_and_update().size;
        let recorded = signer.context.global.borrow().certified_size(partition);
        let reported = pending.is_some_and(|(s, at)| s >= size && at.elapsed() < REPORT_GRACE);
        if !leads || size <= recorded || reported {
            continue;
        }
        if let Some(certificate) = certify_once(&signer, &peers).await {
            pending = Some((certificate.message.size, Instant::now()));
            let report = GlobalCommand::Checkpoint { partition, certificate };
            if signer.context.reports.send(report).is_err() {
                return;
            }
        }
    }
}

/// One round: sign the current state, ask the other replicas, stop at a majority.
async fn certify_once<T: Transport>(
    signer: &Arc<CheckpointSigner>,
    peers: &Arc<PeerPool<T>>,
) -> Option<pyralog_crypto::quorum::QuorumCertificate<Checkpoint>> {
    let partition = signer.partition;
    let checkpoint = signer.current().ok()?;
    let (signers, others) = {
        let global = signer.context.global.borrow();
        let signers = global.checkpoint_signers(partition).ok()?;
        let me = signer.context.keypair.public();
        let others: Vec<String> = global
            .replicas(partition)?
            .iter()
            .filter_map(|id| global.members.get(id))
            .filter(|member| member.key != me)
            .map(|member| member.addr.clone())
            .collect();
        (signers, others)
    };
    let mut builder = CertificateBuilder::new(checkpoint.clone(), &signers, CHECKPOINT_THRESHOLD);
    let own = SignatureShare::sign(&signer.context.keypair, &checkpoint);
    if builder.add(own).ok()? {
        return builder.finish().ok();
    }
    let mut asks = JoinSet::new();
    for addr in others {
        let (peers, checkpoint) = (peers.clone(), checkpoint.clone());
        asks.spawn(async move {
            let request = RaftRequest::SignCheckpoint(checkpoint);
            peers.call(&addr, GroupId::partition(partition), request, SIGN_WAIT * 2).await
        });
    }
    while let Some(answer) = asks.join_next().await {
        if let Ok(Ok(RaftResponse::Signed(Ok(share)))) = answer {
            // A share that does not verify is dropped; the others may still make a quorum.
            if let Ok(true) = builder.add(share) {
                return builder.finish().ok();
            }
        }
    }
    None
}
