//! A cluster node: the engine the `pyralog` binary wraps. One process runs the global group's
//! replica and one replica per partition placed on it, over one RocksDB, one peer pool and one
//! RPC listener.
//!
//! The node follows the global state: when a log is created, every node its placement names
//! starts the partition's replica, and the first replica named bootstraps the partition's group.
//! Partition leaders report epoch changes and certified checkpoints, which the node proposes to
//! the global group, and run their logs' triggers (`triggers`).

mod api;
mod consumer_groups;
mod error;
mod route;
mod triggers;

pub use api::{AppendReceipt, NodeStatus, PartitionStatus, RecordProof, Role};
pub use error::ClusterError;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use openraft::Config;
use pyralog_crypto::{ClusterId, Keypair};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::raft::{
    CheckpointContext, GlobalCommand, GlobalReplica, GlobalState, IdGenerator, LogInfo, Member, NodeId,
    PartitionReplica, ProposeError,
};
use crate::sequencer::{ScarabGenerator, SystemClock};
use crate::storage::{PartitionId, Storage, StorageMode};
use crate::transport::{Listener, PeerPool, RaftRouter, TcpTransport, Transport, serve};

/// How a node is set up.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The node's id in the cluster (also its Scarab coordinator id, modulo 1024).
    pub id: NodeId,
    /// The cluster it belongs to.
    pub cluster: ClusterId,
    /// Where its database lives (disk, or memory for tests and ephemeral nodes).
    pub storage: StorageMode,
    /// The Scarab time high-water-mark file (kept apart from the database).
    pub scarab_path: PathBuf,
    /// Raft timing, shared by every group.
    pub raft: Arc<Config>,
    /// Least time between two checkpoints of a partition.
    pub checkpoint_interval: Duration,
}

impl NodeConfig {
    /// Defaults for node `id` of `cluster` with its files under `dir` (on disk).
    pub fn on_disk(id: NodeId, cluster: ClusterId, dir: &std::path::Path) -> Self {
        NodeConfig {
            id,
            cluster,
            storage: StorageMode::Disk(dir.join("db")),
            scarab_path: dir.join("scarab.hwm"),
            raft: Arc::new(default_raft_config()),
            checkpoint_interval: Duration::from_millis(100),
        }
    }
}

/// Raft timing for loopback and LAN clusters.
pub fn default_raft_config() -> Config {
    Config {
        heartbeat_interval: 100,
        election_timeout_min: 400,
        election_timeout_max: 800,
        // Entries carry up to MAX_BATCH_BYTES: keep an AppendEntries under the 64 MiB frame.
        max_payload_entries: 12,
        ..Config::default()
    }
}

/// What the node's tasks share.
pub(crate) struct Shared<T: Transport> {
    id: NodeId,
    cluster: ClusterId,
    addr: String,
    keypair: Arc<Keypair>,
    storage: Storage,
    router: Arc<RaftRouter>,
    peers: Arc<PeerPool<T>>,
    raft_config: Arc<Config>,
    checkpoint_interval: Duration,
    ids: IdGenerator,
    global: GlobalReplica<T>,
    replicas: RwLock<HashMap<PartitionId, Arc<PartitionReplica>>>,
    reports: mpsc::UnboundedSender<GlobalCommand>,
    /// Next round-robin partition per log id, for records without a key.
    round_robin: Mutex<HashMap<u32, u32>>,
    /// Compiled access-control contracts by log id and code hash (a contract knows its log).
    acls: Mutex<HashMap<(u32, pyralog_crypto::Digest), Arc<crate::acl::Acl>>>,
}

/// A running cluster node. See the module docs.
pub struct ClusterNode<T: Transport = TcpTransport> {
    shared: Arc<Shared<T>>,
    tasks: Vec<JoinHandle<()>>,
}

impl<T: Transport> std::fmt::Debug for ClusterNode<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode").field("id", &self.shared.id).field("addr", &self.shared.addr).finish()
    }
}

impl<T: Transport> ClusterNode<T> {
    /// Opens the node's storage and starts its global replica, its RPC server on `listener`,
    /// and the replicas of partitions already placed on it.
    pub async fn start<L: Listener>(
        config: NodeConfig,
        keypair: Keypair,
        listener: L,
        transport: T,
    ) -> Result<Self, ClusterError> {
        let addr = listener.local_addr().map_err(|err| ClusterError::Io(err.to_string()))?.to_string();
        if let Some(parent) = config.scarab_path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|err| ClusterError::Io(format!("{}: {err}", parent.display())))?;
        }
        let storage = Storage::open(config.storage.clone())?;
        let ids = ScarabGenerator::open(&config.scarab_path, (config.id % 1024) as u16, SystemClock, 1000)
            .map_err(|err| ClusterError::Io(err.to_string()))?;
        let router = Arc::new(RaftRouter::default());
        let peers = Arc::new(PeerPool::new(transport));
        let global = GlobalReplica::start(
            config.id,
            &storage,
            config.cluster.clone(),
            peers.clone(),
            &router,
            config.raft.clone(),
        )
        .await?;
        let (reports, pending_reports) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            id: config.id,
            cluster: config.cluster,
            addr,
            keypair: Arc::new(keypair),
            storage,
            router: router.clone(),
            peers,
            raft_config: config.raft,
            checkpoint_interval: config.checkpoint_interval,
            ids: Arc::new(Mutex::new(ids)),
            global,
            replicas: RwLock::default(),
            reports,
            round_robin: Mutex::default(),
            acls: Mutex::default(),
        });
        let tasks = vec![
            tokio::spawn(serve(listener, router)),
            tokio::spawn(place_replicas(shared.clone())),
            tokio::spawn(pump_reports(shared.clone(), pending_reports)),
            tokio::spawn(triggers::run_triggers(shared.clone())),
        ];
        Ok(ClusterNode { shared, tasks })
    }

    /// Starts a new cluster whose first members are `members` (this node among them): makes
    /// them the global group's voters and registers their addresses and keys. Call on one node,
    /// once; calling it again is harmless.
    pub async fn bootstrap(&self, members: BTreeMap<NodeId, Member>) -> Result<(), ClusterError> {
        let voters = members.iter().map(|(id, m)| (*id, m.addr.clone())).collect();
        self.shared.global.initialize(voters).await?;
        for (id, member) in members {
            self.propose(GlobalCommand::AddMember { id, member }).await?;
        }
        Ok(())
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.shared.id
    }

    /// Where this node's RPC server listens.
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// This node as a cluster member (address and key).
    pub fn member(&self) -> Member {
        Member { addr: self.shared.addr.clone(), key: self.shared.keypair.public() }
    }

    /// The node's storage.
    pub fn storage(&self) -> &Storage {
        &self.shared.storage
    }

    /// Raft metrics of this node's global-group replica (term, log and apply indexes, role).
    pub fn global_raft_metrics(&self) -> openraft::RaftMetrics<NodeId, openraft::BasicNode> {
        self.shared.global.raft().metrics().borrow().clone()
    }

    /// The global group's commit index as openraft last reported it (for metrics).
    pub fn global_commit_index(&self) -> Option<u64> {
        self.shared.global.commit_index()
    }

    /// The global state as applied on this node.
    pub fn global_state(&self) -> watch::Receiver<GlobalState> {
        self.shared.global.state()
    }

    /// This node's replica of `partition`, if it runs one.
    pub fn replica(&self, partition: PartitionId) -> Option<Arc<PartitionReplica>> {
        self.shared.replicas.read().expect("replica map lock").get(&partition).cloned()
    }

    /// Stops every replica and the server. The database closes when the last handle is gone
    /// (see [`Storage::handles`]).
    pub async fn shutdown(self) {
        for task in &self.tasks {
            task.abort();
        }
        let replicas: Vec<_> = self.shared.replicas.write().expect("replica map lock").drain().collect();
        for (_, replica) in replicas {
            replica.shutdown(&self.shared.router).await;
        }
        let _ = self.shared.global.raft().shutdown().await;
    }

    async fn propose(&self, command: GlobalCommand) -> Result<crate::raft::GlobalReply, ClusterError> {
        Ok(self.shared.global.propose(command).await?)
    }
}

/// Starts the replicas the global state places on this node, as the state changes.
async fn place_replicas<T: Transport>(shared: Arc<Shared<T>>) {
    let mut state = shared.global.state();
    loop {
        let wanted: Vec<(LogInfo, u32)> = {
            let global = state.borrow_and_update();
            let running = shared.replicas.read().expect("replica map lock");
            global
                .logs
                .values()
                .flat_map(|log| (0..log.config.partitions).map(move |p| (log, p)))
                .filter(|(log, p)| log.placement[*p as usize].contains(&shared.id))
                .filter(|(log, p)| !running.contains_key(&log.partition_id(*p)))
                .map(|(log, p)| (log.clone(), p))
                .collect()
        };
        for (log, partition) in wanted {
            if let Err(err) = start_replica(&shared, &log, partition).await {
                tracing::warn!(node = shared.id, log = %log.config.name, partition, %err, "cannot start partition replica");
            }
        }
        if state.changed().await.is_err() {
            return;
        }
    }
}

async fn start_replica<T: Transport>(
    shared: &Arc<Shared<T>>,
    log: &LogInfo,
    partition: u32,
) -> Result<(), ClusterError> {
    let id = log.partition_id(partition);
    let context = CheckpointContext {
        cluster: shared.cluster.clone(),
        log: log.config.name.clone(),
        keypair: shared.keypair.clone(),
        global: shared.global.state(),
        reports: shared.reports.clone(),
        interval: shared.checkpoint_interval,
    };
    let constraint = match &log.config.constraint {
        None => None,
        Some(hash) => {
            let wasm = shared.global.state().borrow().contract_code.get(hash).cloned();
            let wasm =
                wasm.ok_or_else(|| ClusterError::Io(format!("constraint code {hash} is not stored")))?;
            let constraint = crate::constraint::Constraint::new(log.config.name.clone(), &wasm)
                .map_err(|err| ClusterError::Io(format!("constraint code {hash}: {err}")))?;
            Some(constraint)
        }
    };
    let replica = PartitionReplica::start(
        shared.id,
        &shared.storage,
        id,
        &log.config.zk,
        constraint,
        shared.peers.clone(),
        &shared.router,
        shared.raft_config.clone(),
        shared.ids.clone(),
        Some(context),
    )
    .await?;
    let replica = Arc::new(replica);
    // Registered before bootstrapping, so a failed bootstrap still stops with the node.
    shared.replicas.write().expect("replica map lock").insert(id, replica.clone());
    // The first replica bootstraps a new partition's group. Once a leader has reported an
    // epoch the group exists, and a replica that lost its disk must rejoin, not re-initialize.
    let replicas = &log.placement[partition as usize];
    let bootstrap = {
        let global = shared.global.state();
        let global = global.borrow();
        let is_new = global.partitions.get(&id).is_none_or(|record| record.epoch == 0);
        (is_new && replicas.first() == Some(&shared.id)).then(|| {
            replicas.iter().filter_map(|r| global.members.get(r).map(|m| (*r, m.addr.clone()))).collect()
        })
    };
    if let Some(members) = bootstrap {
        replica.initialize(members).await?;
    }
    Ok(())
}

/// Proposes what partition replicas report (epoch changes, certificates) to the global group.
/// Stale reports are rejected by the group and dropped here.
async fn pump_reports<T: Transport>(
    shared: Arc<Shared<T>>,
    mut reports: mpsc::UnboundedReceiver<GlobalCommand>,
) {
    while let Some(report) = reports.recv().await {
        // Without a global leader the report waits (in order) until there is one.
        loop {
            match shared.global.propose(report.clone()).await {
                Ok(_) => break,
                Err(err @ (ProposeError::NoLeader(_) | ProposeError::Timeout(_))) => {
                    tracing::warn!(node = shared.id, %err, "global group unavailable; report kept");
                }
                Err(err) => {
                    tracing::warn!(node = shared.id, %err, "report to the global group failed");
                    break;
                }
            }
        }
    }
}
