//! Clusters and bare partition replica sets on one machine: loopback TCP, one RocksDB per node
//! under a directory the caller owns. For tests, benchmarks and development clusters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openraft::{Config, ServerState};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use pyralog_crypto::{ClusterId, Keypair};

use crate::engine::{ClusterError, ClusterNode, NodeConfig};
use crate::raft::{Member, NodeId, PartitionReplica, ReplicaError};
use crate::sequencer::{ScarabGenerator, SystemClock};
use crate::storage::{PartitionId, Storage, StorageMode};
use crate::transport::{PeerPool, RaftRouter, TcpTransport, serve};

/// One node of a local replica set, running one partition's replica.
pub struct LocalNode {
    /// The node id.
    pub id: NodeId,
    /// Its Raft RPC address.
    pub addr: String,
    /// Its database directory.
    pub dir: PathBuf,
    /// Its storage (open while the node is).
    pub storage: Storage,
    partition: PartitionId,
    router: Arc<RaftRouter>,
    server: JoinHandle<()>,
    replica: Option<PartitionReplica>,
}

impl std::fmt::Debug for LocalNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalNode").field("id", &self.id).field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl LocalNode {
    /// Starts node `id` serving on `listener`, with its database in `dir` (new or existing).
    pub async fn start(
        id: NodeId,
        dir: PathBuf,
        listener: TcpListener,
        partition: PartitionId,
        config: Arc<Config>,
    ) -> Result<Self, ReplicaError> {
        let addr = listener.local_addr().map_err(|err| io_error(&err))?.to_string();
        let storage = Storage::open(StorageMode::Disk(dir.clone()))?;
        let router = Arc::new(RaftRouter::default());
        let server = tokio::spawn(serve(listener, router.clone()));
        let peers = Arc::new(PeerPool::new(TcpTransport));
        // The high-water mark sits beside the database, so a wiped database keeps it.
        let mut hwm = dir.clone().into_os_string();
        hwm.push(".scarab");
        let ids = ScarabGenerator::open(PathBuf::from(hwm), (id % 1024) as u16, SystemClock, 1000)
            .map_err(|err| ReplicaError::Sequencer(err.to_string()))?;
        let ids = Arc::new(std::sync::Mutex::new(ids));
        let replica = PartitionReplica::start(
            id,
            &storage,
            partition,
            &Default::default(),
            None,
            peers,
            &router,
            config,
            ids,
            None,
        )
        .await?;
        Ok(LocalNode { id, addr, dir, storage, partition, router, server, replica: Some(replica) })
    }

    /// The running replica, if the node is up.
    pub fn replica(&self) -> Option<&PartitionReplica> {
        self.replica.as_ref()
    }

    /// Whether this node currently leads its partition.
    pub fn is_leader(&self) -> bool {
        self.replica.as_ref().is_some_and(|r| r.raft().metrics().borrow().state == ServerState::Leader)
    }

    /// Stops the replica and the server (like a crash of the process, minus the OS).
    pub async fn stop(&mut self) {
        self.server.abort();
        if let Some(replica) = self.replica.take() {
            replica.shutdown(&self.router).await;
        }
    }

    /// Starts a stopped node again on its directory and port; deletes the database first if
    /// `wipe` (a replaced disk).
    pub async fn reopen(self, config: Arc<Config>, wipe: bool) -> Result<Self, ReplicaError> {
        assert!(self.replica.is_none(), "stop the node before reopening it");
        let LocalNode { id, addr, dir, storage, partition, .. } = self;
        // Tasks of the stopped replica (state machine worker, snapshot builder) may still hold
        // the database for a moment: wait until ours is the last handle, so dropping it closes
        // RocksDB before the directory is wiped or reopened.
        close_database(storage, id).await.map_err(ReplicaError::Io)?;
        if wipe {
            std::fs::remove_dir_all(&dir).map_err(|err| io_error(&err))?;
        }
        let listener = bind_again(&addr).await?;
        LocalNode::start(id, dir, listener, partition, config).await
    }
}

/// Starts `count` nodes under `base` (one subdirectory each) on free loopback ports and makes
/// them the partition's voters.
pub async fn start_replica_set(
    count: u64,
    base: &Path,
    partition: PartitionId,
    config: Arc<Config>,
) -> Result<Vec<LocalNode>, ReplicaError> {
    let mut listeners = Vec::new();
    let mut members = BTreeMap::new();
    for id in 0..count {
        // Port 0: the OS picks a free port.
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|err| io_error(&err))?;
        members.insert(id, listener.local_addr().map_err(|err| io_error(&err))?.to_string());
        listeners.push(listener);
    }
    let mut nodes = Vec::new();
    for (id, listener) in (0..count).zip(listeners) {
        nodes.push(
            LocalNode::start(id, base.join(format!("node{id}")), listener, partition, config.clone()).await?,
        );
    }
    nodes[0].replica().expect("just started").initialize(members).await?;
    Ok(nodes)
}

/// Waits until exactly one running node leads; `None` if none does within `deadline`.
pub async fn wait_for_leader(nodes: &[LocalNode], deadline: Duration) -> Option<NodeId> {
    let started = tokio::time::Instant::now();
    loop {
        let leaders: Vec<NodeId> = nodes.iter().filter(|n| n.is_leader()).map(|n| n.id).collect();
        if let [only] = leaders[..] {
            return Some(only);
        }
        if started.elapsed() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `storage` is the database's last handle (tasks of a stopped node may hold it for
/// a moment), then drops it, which closes RocksDB.
async fn close_database(storage: Storage, node: NodeId) -> Result<(), String> {
    let started = tokio::time::Instant::now();
    while storage.handles() > 1 {
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!("database of node {node} still in use after 30 s"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(storage); // the last handle
    Ok(())
}

/// Rebinds a port a stopped node just released, retrying for a while as the old socket closes.
async fn bind_again(addr: &str) -> Result<TcpListener, ReplicaError> {
    let started = tokio::time::Instant::now();
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(err) if started.elapsed() > Duration::from_secs(30) => return Err(io_error(&err)),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

fn io_error(err: &std::io::Error) -> ReplicaError {
    ReplicaError::Io(err.to_string())
}

/// One node of a local cluster: what it needs to restart as itself (config, key, port).
pub struct LocalClusterNode {
    /// Its settings.
    pub config: NodeConfig,
    /// Its key.
    pub keypair: Keypair,
    /// Its RPC address.
    pub addr: String,
    node: Option<ClusterNode>,
}

impl std::fmt::Debug for LocalClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalClusterNode").field("id", &self.config.id).field("addr", &self.addr).finish()
    }
}

impl LocalClusterNode {
    /// Starts a node of `cluster` on a free loopback port, with its files under `dir`;
    /// `configure` adjusts the defaults (memory mode, Raft timing).
    pub async fn start(
        id: NodeId,
        cluster: &ClusterId,
        dir: &Path,
        configure: impl Fn(&mut NodeConfig),
    ) -> Result<Self, ClusterError> {
        let listener =
            TcpListener::bind("127.0.0.1:0").await.map_err(|err| ClusterError::Io(err.to_string()))?;
        let addr = listener.local_addr().map_err(|err| ClusterError::Io(err.to_string()))?.to_string();
        let mut config = NodeConfig::on_disk(id, cluster.clone(), &dir.join(format!("node{id}")));
        configure(&mut config);
        let keypair = Keypair::generate();
        let node = ClusterNode::start(config.clone(), keypair.clone(), listener, TcpTransport).await?;
        Ok(LocalClusterNode { config, keypair, addr, node: Some(node) })
    }

    /// The running node; panics if it is stopped (a test bug).
    pub fn node(&self) -> &ClusterNode {
        self.node.as_ref().expect("node is running")
    }

    /// Whether the node runs.
    pub fn is_running(&self) -> bool {
        self.node.is_some()
    }

    /// Stops the node and waits until its database is closed.
    pub async fn stop(&mut self) -> Result<(), ClusterError> {
        let Some(node) = self.node.take() else { return Ok(()) };
        let storage = node.storage().clone();
        node.shutdown().await;
        close_database(storage, self.config.id).await.map_err(ClusterError::Io)
    }

    /// Deletes the stopped node's database, as if its disk was replaced; its key and Scarab
    /// high-water mark stay.
    pub fn wipe(&self) -> Result<(), ClusterError> {
        assert!(self.node.is_none(), "stop the node before wiping it");
        match &self.config.storage {
            StorageMode::Disk(path) => {
                std::fs::remove_dir_all(path).map_err(|err| ClusterError::Io(err.to_string()))
            }
            StorageMode::Memory => Ok(()),
        }
    }

    /// Starts the stopped node again, as itself, on its port and data.
    pub async fn restart(&mut self) -> Result<(), ClusterError> {
        assert!(self.node.is_none(), "stop the node before restarting it");
        let listener = bind_again(&self.addr).await.map_err(|err| ClusterError::Io(err.to_string()))?;
        let node =
            ClusterNode::start(self.config.clone(), self.keypair.clone(), listener, TcpTransport).await?;
        self.node = Some(node);
        Ok(())
    }
}

/// Starts `count` nodes of `cluster` under `base` and bootstraps the cluster with all of them
/// from node 0.
pub async fn start_cluster(
    count: u64,
    cluster: &ClusterId,
    base: &Path,
    configure: impl Fn(&mut NodeConfig),
) -> Result<Vec<LocalClusterNode>, ClusterError> {
    let mut nodes = Vec::new();
    for id in 0..count {
        nodes.push(LocalClusterNode::start(id, cluster, base, &configure).await?);
    }
    let members: BTreeMap<NodeId, Member> = nodes.iter().map(|n| (n.config.id, n.node().member())).collect();
    nodes[0].node().bootstrap(members).await?;
    Ok(nodes)
}
