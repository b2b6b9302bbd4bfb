//! Three replicas of a partition on loopback TCP, each with its own RocksDB: writes from many
//! tasks, the leader is killed, a new leader takes over with a new epoch, and every acknowledged
//! record is readable at its original offset, none duplicated.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use openraft::{Config, ServerState};
use pyralog_cluster::model::{ProducerSeq, Record};
use pyralog_cluster::raft::{PartitionCommand, PartitionReplica, PartitionReply};
use pyralog_cluster::storage::{AppendOutcome, PartitionId, PartitionStore, Storage, StorageMode};
use pyralog_cluster::transport::{PeerPool, RaftRouter, TcpTransport, serve};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

const PARTITION: PartitionId = PartitionId { log: 1, partition: 0 };
const DEADLINE: Duration = Duration::from_secs(60);

struct Node {
    id: u64,
    addr: String,
    storage: Storage,
    router: Arc<RaftRouter>,
    server: JoinHandle<()>,
    replica: Option<PartitionReplica>,
    dir: TempDir,
}

impl Node {
    /// Starts node `id` on `listener` with its database under `dir` (new or existing).
    async fn start(id: u64, dir: TempDir, listener: TcpListener, config: Arc<Config>) -> Node {
        let addr = listener.local_addr().unwrap().to_string();
        let storage = Storage::open(StorageMode::Disk(dir.path().join("db"))).unwrap();
        let router = Arc::new(RaftRouter::default());
        let server = tokio::spawn(serve(listener, router.clone()));
        let peers = Arc::new(PeerPool::new(TcpTransport));
        let replica = PartitionReplica::start(id, &storage, PARTITION, peers, &router, config)
            .await
            .unwrap();
        Node {
            id,
            addr,
            storage,
            router,
            server,
            replica: Some(replica),
            dir,
        }
    }

    /// Stops the replica and closes the server; the database closes when the last handle goes.
    async fn stop(&mut self) {
        self.server.abort();
        if let Some(replica) = self.replica.take() {
            replica.shutdown(&self.router).await;
        }
    }

    /// Starts a stopped node again on its directory and port, deleting its database first if
    /// `wipe` (a replaced disk).
    async fn reopen(self, config: Arc<Config>, wipe: bool) -> Node {
        assert!(self.replica.is_none(), "stop the node first");
        let Node {
            id,
            addr,
            dir,
            storage,
            ..
        } = self;
        drop(storage); // the database closes with its last handle
        if wipe {
            std::fs::remove_dir_all(dir.path().join("db")).unwrap();
        }
        Node::start(id, dir, bind_again(&addr).await, config).await
    }
}

/// Rebinds a port just released by a stopped node (retrying while the old socket closes).
async fn bind_again(addr: &str) -> TcpListener {
    let started = tokio::time::Instant::now();
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(err) => assert!(started.elapsed() < DEADLINE, "cannot rebind {addr}: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn config() -> Arc<Config> {
    let config = Config {
        cluster_name: "replication-test".into(),
        heartbeat_interval: 100,
        election_timeout_min: 500,
        election_timeout_max: 1000,
        ..Config::default()
    };
    Arc::new(config.validate().unwrap())
}

/// Snapshots every 50 entries and keeps no log behind them: a follower that lost its data can
/// only catch up by snapshot install.
fn snapshotting_config() -> Arc<Config> {
    let config = Config {
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(50),
        max_in_snapshot_log_to_keep: 0,
        ..(*config()).clone()
    };
    Arc::new(config.validate().unwrap())
}

async fn start_nodes(count: u64) -> (Vec<Node>, BTreeMap<u64, String>) {
    let mut listeners = Vec::new();
    let mut addrs = BTreeMap::new();
    for id in 0..count {
        // Port 0: the OS picks a free port.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.insert(id, listener.local_addr().unwrap().to_string());
        listeners.push(listener);
    }
    let mut nodes = Vec::new();
    for (id, listener) in (0..count).zip(listeners) {
        nodes.push(Node::start(id, tempfile::tempdir().unwrap(), listener, config()).await);
    }
    (nodes, addrs)
}

/// Waits until some live replica is leader and every live replica agrees.
async fn leader(nodes: &[Node]) -> u64 {
    let live: Vec<&Node> = nodes.iter().filter(|n| n.replica.is_some()).collect();
    let started = tokio::time::Instant::now();
    loop {
        let leaders: Vec<u64> = live
            .iter()
            .filter(|n| n.replica.as_ref().unwrap().raft().metrics().borrow().state == ServerState::Leader)
            .map(|n| n.id)
            .collect();
        if let [only] = leaders[..] {
            return only;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "no single leader within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a client saw acknowledged: offset -> value.
type Acked = Arc<Mutex<BTreeMap<u64, Vec<u8>>>>;

/// Writes `count` records as producer `writer`, retrying at whichever node leads, until each is
/// acknowledged. Retries reuse the producer sequence, so a retried write is stored once.
async fn writer(nodes: Arc<Mutex<Vec<Node>>>, writer: u64, count: u64, acked: Acked) {
    for seq in 0..count {
        let value = format!("writer {writer} seq {seq}").into_bytes();
        let record = Record {
            value: value.clone(),
            producer: Some(ProducerSeq {
                producer: writer,
                sequence: seq,
            }),
            ..Record::default()
        };
        let started = tokio::time::Instant::now();
        loop {
            assert!(
                started.elapsed() < DEADLINE,
                "write {writer}/{seq} not acknowledged within {DEADLINE:?}"
            );
            let attempt = {
                let nodes = nodes.lock().await;
                let mut result = None;
                for node in nodes.iter().filter(|n| n.replica.is_some()) {
                    let replica = node.replica.as_ref().unwrap();
                    if replica.raft().metrics().borrow().state == ServerState::Leader {
                        // Do not hold the node list across the write.
                        result = Some(replica.raft().clone());
                        break;
                    }
                }
                result
            };
            let Some(raft) = attempt else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            let written = raft
                .client_write(PartitionCommand::Append {
                    records: vec![record.clone()],
                })
                .await;
            match written.map(|r| r.data) {
                Ok(PartitionReply::Appended { outcomes, .. }) => {
                    let offset = match outcomes[0] {
                        AppendOutcome::Appended { offset } => offset,
                        AppendOutcome::Duplicate {
                            original_offset: Some(offset),
                        } => offset,
                        other => panic!("write {writer}/{seq}: {other:?}"),
                    };
                    let previous = acked.lock().await.insert(offset, value.clone());
                    assert!(
                        previous.is_none() || previous == Some(value.clone()),
                        "offset {offset} acknowledged twice"
                    );
                    break;
                }
                Ok(other) => panic!("unexpected reply {other:?}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await, // leader changed: retry
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_leader_failover() {
    let (nodes, addrs) = start_nodes(3).await;
    nodes[0]
        .replica
        .as_ref()
        .unwrap()
        .initialize(addrs)
        .await
        .unwrap();
    let first_leader = leader(&nodes).await;
    let nodes = Arc::new(Mutex::new(nodes));
    let acked: Acked = Arc::default();

    let writers: Vec<_> = (0..8)
        .map(|w| tokio::spawn(writer(nodes.clone(), w, 40, acked.clone())))
        .collect();
    // Let some writes land under the first leader, then kill it.
    let started = tokio::time::Instant::now();
    while acked.lock().await.len() < 60 {
        assert!(started.elapsed() < DEADLINE, "writes did not progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let epoch_before = {
        let mut nodes = nodes.lock().await;
        let node = nodes.iter_mut().find(|n| n.id == first_leader).unwrap();
        let epoch = node.replica.as_ref().unwrap().state().epoch;
        node.stop().await;
        epoch
    };
    for writer in writers {
        writer.await.unwrap();
    }

    let nodes = nodes.lock().await;
    let new_leader = leader(&nodes).await;
    assert_ne!(new_leader, first_leader);
    let acked = acked.lock().await.clone();
    assert_eq!(acked.len(), 8 * 40, "every write acknowledged exactly once");

    // On both survivors, once they have applied everything: every acknowledged record at its
    // offset, and no value stored twice.
    for node in nodes.iter().filter(|n| n.replica.is_some()) {
        let replica = node.replica.as_ref().unwrap();
        let mut state = replica.subscribe();
        tokio::time::timeout(DEADLINE, state.wait_for(|s| s.size >= acked.len() as u64))
            .await
            .unwrap()
            .unwrap();
        let store = PartitionStore::open(&node.storage, PARTITION).unwrap();
        let records = store.read(0, 10_000).unwrap();
        let mut seen = HashMap::new();
        for stored in &records {
            assert!(
                seen.insert(stored.record.value.clone(), stored.offset).is_none(),
                "duplicate value"
            );
        }
        for (offset, value) in &acked {
            assert_eq!(
                &records[*offset as usize].record.value, value,
                "node {} offset {offset}",
                node.id
            );
        }
        // A new leader started a new epoch, and records after the failover carry it.
        assert!(
            replica.state().epoch > epoch_before,
            "epoch {} after failover",
            replica.state().epoch
        );
        assert!(records.iter().any(|r| r.epoch > epoch_before));
        assert!(records.windows(2).all(|w| w[0].epoch <= w[1].epoch));
    }
}

/// What a replica holds once it has applied `size` records: state, root and every record.
async fn contents(
    node: &Node,
    size: u64,
) -> (
    u64,
    pyralog_crypto::Digest,
    Vec<pyralog_cluster::model::StoredRecord>,
) {
    let replica = node.replica.as_ref().unwrap();
    let mut state = replica.subscribe();
    let waited = tokio::time::timeout(DEADLINE, state.wait_for(|s| s.size >= size)).await;
    let metrics = replica.raft().metrics().borrow().clone();
    assert!(
        matches!(waited, Ok(Ok(_))),
        "node {} did not reach size {size}: {waited:?}; raft: {:?}",
        node.id,
        metrics.running_state
    );
    let store = PartitionStore::open(&node.storage, PARTITION).unwrap();
    (store.state().size, store.root(), store.read(0, 100_000).unwrap())
}

async fn write_all(nodes: Vec<Node>, writers: u64, each: u64, first_producer: u64) -> (Vec<Node>, Acked) {
    let nodes = Arc::new(Mutex::new(nodes));
    let acked: Acked = Arc::default();
    let tasks: Vec<_> = (0..writers)
        .map(|w| tokio::spawn(writer(nodes.clone(), first_producer + w, each, acked.clone())))
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let nodes = Arc::try_unwrap(nodes)
        .ok()
        .expect("writers finished")
        .into_inner();
    (nodes, acked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_from_disk_keeps_state_offsets_and_roots() {
    let (nodes, addrs) = start_nodes(3).await;
    nodes[0]
        .replica
        .as_ref()
        .unwrap()
        .initialize(addrs)
        .await
        .unwrap();
    leader(&nodes).await;
    let (mut nodes, acked) = write_all(nodes, 4, 50, 0).await;
    let total = acked.lock().await.len() as u64;
    let mut before = Vec::new();
    for node in &nodes {
        before.push(contents(node, total).await);
    }

    // Stop every node, then start every node again from its disk.
    for node in &mut nodes {
        node.stop().await;
    }
    let mut restarted = Vec::new();
    for node in nodes {
        restarted.push(node.reopen(config(), false).await);
    }
    for (node, expected) in restarted.iter().zip(&before) {
        let after = contents(node, total).await;
        assert_eq!(after.0, expected.0, "node {} size", node.id);
        assert_eq!(after.1, expected.1, "node {} Merkle root", node.id);
        assert_eq!(after.2, expected.2, "node {} records", node.id);
    }
    // The restarted cluster elects a leader and continues at the next offset.
    leader(&restarted).await;
    let (restarted, more) = write_all(restarted, 1, 5, 100).await;
    let offsets: Vec<u64> = more.lock().await.keys().copied().collect();
    assert_eq!(offsets, (total..total + 5).collect::<Vec<_>>());
    drop(restarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_follower_catches_up_by_snapshot_install() {
    let mut listeners = Vec::new();
    let mut addrs = BTreeMap::new();
    for id in 0..3u64 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.insert(id, listener.local_addr().unwrap().to_string());
        listeners.push(listener);
    }
    let mut nodes = Vec::new();
    for (id, listener) in (0..3).zip(listeners) {
        nodes.push(Node::start(id, tempfile::tempdir().unwrap(), listener, snapshotting_config()).await);
    }
    nodes[0]
        .replica
        .as_ref()
        .unwrap()
        .initialize(addrs)
        .await
        .unwrap();
    let first_leader = leader(&nodes).await;
    let (mut nodes, acked) = write_all(nodes, 4, 60, 0).await;
    let total = acked.lock().await.len() as u64;
    let reference = contents(nodes.iter().find(|n| n.id == first_leader).unwrap(), total).await;

    // Wipe a follower: stop it, delete its database, start it empty with the same id and port.
    let position = nodes.iter().position(|n| n.id != first_leader).unwrap();
    let mut follower = nodes.remove(position);
    follower.stop().await;
    let wiped = follower.reopen(snapshotting_config(), true).await;
    assert_eq!(
        wiped.replica.as_ref().unwrap().state().size,
        0,
        "the database really was wiped"
    );

    let caught_up = contents(&wiped, total).await;
    assert_eq!(caught_up.0, reference.0);
    assert_eq!(
        caught_up.1, reference.1,
        "Merkle roots match after snapshot install"
    );
    assert_eq!(caught_up.2, reference.2);
    // It came back through a snapshot: the log it holds starts after a purge.
    let metrics = wiped.replica.as_ref().unwrap().raft().metrics().borrow().clone();
    assert!(metrics.snapshot.is_some(), "no snapshot installed: {metrics:?}");
    drop(nodes);
}
