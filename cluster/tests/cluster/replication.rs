//! Three replicas of a partition on loopback TCP, each with its own RocksDB: writes from many
//! tasks, leader failover, restart from disk, and a wiped follower catching up by snapshot.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use openraft::{Config, SnapshotPolicy};
use pyralog_cluster::local::{LocalNode, start_replica_set, wait_for_leader};
use pyralog_cluster::model::{ProducerSeq, Record, StoredRecord};
use pyralog_cluster::raft::{Appended, GroupCommand, GroupReply, PartitionCommand, PartitionReply};
use pyralog_cluster::sequencer::ScarabId;
use pyralog_cluster::storage::{AppendOutcome, PartitionId, PartitionStore};
use pyralog_crypto::Digest;
use tokio::sync::Mutex;

const PARTITION: PartitionId = PartitionId { log: 1, partition: 0 };
const DEADLINE: Duration = Duration::from_secs(60);

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
        snapshot_policy: SnapshotPolicy::LogsSinceLast(50),
        max_in_snapshot_log_to_keep: 0,
        ..(*config()).clone()
    };
    Arc::new(config.validate().unwrap())
}

async fn leader(nodes: &[LocalNode]) -> u64 {
    wait_for_leader(nodes, DEADLINE).await.expect("a single leader")
}

/// What clients saw acknowledged: offset -> value.
type Acked = Arc<Mutex<BTreeMap<u64, Vec<u8>>>>;

/// Writes `count` records as producer `producer`, retrying at whichever node leads until each
/// is acknowledged. Retries reuse the producer sequence, so a retried write is stored once.
async fn writer(nodes: Arc<Mutex<Vec<LocalNode>>>, producer: u64, count: u64, acked: Acked) {
    for sequence in 0..count {
        let value = format!("producer {producer} seq {sequence}").into_bytes();
        let record = Record {
            value: value.clone(),
            producer: Some(ProducerSeq { producer, sequence }),
            ..Record::default()
        };
        let started = tokio::time::Instant::now();
        loop {
            assert!(started.elapsed() < DEADLINE, "write {producer}/{sequence} not acknowledged in time");
            // Do not hold the node list across the write.
            let raft = nodes
                .lock()
                .await
                .iter()
                .find(|n| n.is_leader())
                .map(|n| n.replica().unwrap().raft().clone());
            let Some(raft) = raft else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            let command = GroupCommand::Partition(PartitionCommand::Append { records: vec![record.clone()] });
            let written = raft.client_write(command).await;
            match written.map(|r| r.data) {
                Ok(GroupReply::Partition(PartitionReply::Appended { outcomes, .. })) => {
                    let offset = match outcomes[0] {
                        AppendOutcome::Appended { offset } => offset,
                        AppendOutcome::Duplicate { original_offset: Some(offset) } => offset,
                        other => panic!("write {producer}/{sequence}: {other:?}"),
                    };
                    let previous = acked.lock().await.insert(offset, value.clone());
                    assert!(
                        previous.is_none() || previous == Some(value.clone()),
                        "offset {offset} given twice"
                    );
                    break;
                }
                Ok(other) => panic!("unexpected reply {other:?}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await, // leader changed: retry
            }
        }
    }
}

async fn write_all(
    nodes: Vec<LocalNode>,
    writers: u64,
    each: u64,
    first_producer: u64,
) -> (Vec<LocalNode>, Acked) {
    let nodes = Arc::new(Mutex::new(nodes));
    let acked: Acked = Arc::default();
    let tasks: Vec<_> = (0..writers)
        .map(|w| tokio::spawn(writer(nodes.clone(), first_producer + w, each, acked.clone())))
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let nodes = Arc::try_unwrap(nodes).expect("writers finished").into_inner();
    (nodes, acked)
}

/// A replica's size, root and records once it has applied `size` records.
async fn contents(node: &LocalNode, size: u64) -> (u64, Digest, Vec<StoredRecord>) {
    let replica = node.replica().unwrap();
    let mut state = replica.subscribe();
    let waited = tokio::time::timeout(DEADLINE, state.wait_for(|s| s.size >= size)).await;
    let running = replica.raft().metrics().borrow().running_state.clone();
    assert!(
        matches!(waited, Ok(Ok(_))),
        "node {} did not reach size {size}: {waited:?}; raft: {running:?}",
        node.id
    );
    let store = PartitionStore::open(&node.storage, PARTITION).unwrap();
    (store.state().size, store.root(), store.reader().read(0, 100_000).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_leader_failover() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_replica_set(3, dir.path(), PARTITION, config()).await.unwrap();
    let first_leader = leader(&nodes).await;
    let nodes = Arc::new(Mutex::new(nodes));
    let acked: Acked = Arc::default();

    let writers: Vec<_> = (0..8).map(|w| tokio::spawn(writer(nodes.clone(), w, 40, acked.clone()))).collect();
    // Let some writes land under the first leader, then kill it.
    let started = tokio::time::Instant::now();
    while acked.lock().await.len() < 60 {
        assert!(started.elapsed() < DEADLINE, "writes did not progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let epoch_before = {
        let mut nodes = nodes.lock().await;
        let node = nodes.iter_mut().find(|n| n.id == first_leader).unwrap();
        let epoch = node.replica().unwrap().state().epoch;
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

    // On both survivors: every acknowledged record at its offset, no value stored twice.
    for node in nodes.iter().filter(|n| n.replica().is_some()) {
        let (_, _, records) = contents(node, acked.len() as u64).await;
        let mut seen = HashMap::new();
        for stored in &records {
            assert!(seen.insert(stored.record.value.clone(), stored.offset).is_none(), "duplicate value");
        }
        for (offset, value) in &acked {
            assert_eq!(&records[*offset as usize].record.value, value, "node {} offset {offset}", node.id);
        }
        // A new leader started a new epoch, and records after the failover carry it.
        let epoch = node.replica().unwrap().state().epoch;
        assert!(epoch > epoch_before, "epoch {epoch} after failover, {epoch_before} before");
        assert!(records.iter().any(|r| r.epoch > epoch_before));
        assert!(records.windows(2).all(|w| w[0].epoch <= w[1].epoch));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_from_disk_keeps_state_offsets_and_roots() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_replica_set(3, dir.path(), PARTITION, config()).await.unwrap();
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
        restarted.push(node.reopen(config(), false).await.unwrap());
    }
    for (node, expected) in restarted.iter().zip(&before) {
        let after = contents(node, total).await;
        assert_eq!(after.0, expected.0, "node {} size", node.id);
        assert_eq!(after.1, expected.1, "node {} Merkle root", node.id);
        assert_eq!(after.2, expected.2, "node {} records", node.id);
    }
    // The restarted cluster elects a leader and continues at the next offset.
    leader(&restarted).await;
    let (_restarted, more) = write_all(restarted, 1, 5, 100).await;
    let offsets: Vec<u64> = more.lock().await.keys().copied().collect();
    assert_eq!(offsets, (total..total + 5).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_follower_catches_up_by_snapshot_install() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_replica_set(3, dir.path(), PARTITION, snapshotting_config()).await.unwrap();
    let first_leader = leader(&nodes).await;
    let (mut nodes, acked) = write_all(nodes, 4, 60, 0).await;
    let total = acked.lock().await.len() as u64;
    let reference = contents(nodes.iter().find(|n| n.id == first_leader).unwrap(), total).await;

    // Wipe a follower: stop it, delete its database, start it empty with the same id and port.
    let position = nodes.iter().position(|n| n.id != first_leader).unwrap();
    let mut follower = nodes.remove(position);
    follower.stop().await;
    let wiped = follower.reopen(snapshotting_config(), true).await.unwrap();
    assert_eq!(wiped.replica().unwrap().state().size, 0, "the database really was wiped");

    let caught_up = contents(&wiped, total).await;
    assert_eq!(caught_up.0, reference.0);
    assert_eq!(caught_up.1, reference.1, "Merkle roots match after snapshot install");
    assert_eq!(caught_up.2, reference.2);
    let metrics = wiped.replica().unwrap().raft().metrics().borrow().clone();
    assert!(metrics.snapshot.is_some(), "caught up without a snapshot install: {metrics:?}");
}

/// Concurrent appends share Raft entries, yet every caller gets exactly its own outcomes, in
/// order, and its records sit at the offsets it was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batched_appends_give_each_caller_its_own_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_replica_set(3, dir.path(), PARTITION, config()).await.unwrap();
    let leader_id = leader(&nodes).await;
    let nodes = Arc::new(nodes);
    let callers: Vec<_> = (0..64u64)
        .map(|caller| {
            let nodes = nodes.clone();
            tokio::spawn(async move {
                let leader = nodes.iter().find(|n| n.id == leader_id).unwrap().replica().unwrap();
                // Callers send 1 to 3 records each.
                let records: Vec<Record> = (0..1 + caller % 3)
                    .map(|i| Record {
                        value: format!("caller {caller} record {i}").into_bytes(),
                        ..Record::default()
                    })
                    .collect();
                let Appended { outcomes, .. } = leader.append(records.clone()).await.unwrap();
                assert_eq!(outcomes.len(), records.len());
                let offsets: Vec<u64> = outcomes
                    .iter()
                    .map(|o| match o {
                        AppendOutcome::Appended { offset } => *offset,
                        other => panic!("{other:?}"),
                    })
                    .collect();
                // One caller's records are contiguous: they travelled in one entry.
                assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1), "{offsets:?}");
                (records, offsets)
            })
        })
        .collect();
    let mut expected = BTreeMap::new();
    for caller in callers {
        let (records, offsets) = caller.await.unwrap();
        for (record, offset) in records.into_iter().zip(offsets) {
            assert!(expected.insert(offset, record.value).is_none(), "offset {offset} given twice");
        }
    }
    let total = expected.len() as u64;
    assert_eq!(expected.keys().copied().collect::<Vec<_>>(), (0..total).collect::<Vec<_>>());
    let leader = nodes.iter().find(|n| n.id == leader_id).unwrap();
    let (_, _, stored) = contents(leader, total).await;
    for (offset, value) in expected {
        assert_eq!(stored[offset as usize].record.value, value);
    }
    // The leader stamped Scarab ids: increasing with offsets, issued by its coordinator id.
    let ids: Vec<ScarabId> = stored.iter().map(|r| ScarabId(r.record.scarab_id)).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids do not increase with offsets");
    assert!(ids.iter().all(|id| u64::from(id.coordinator()) == leader_id), "ids from another coordinator");
}
