//! The whole engine on loopback: three nodes with the global group and partition groups, on
//! disk or in memory. Logs, partition choice, reads (plain and Arrow), certified checkpoints and
//! proofs, epochs sealed in the global state across a leader failover, membership changes, and
//! typed errors for bad requests.

use std::time::Duration;

use pyralog_cluster::columnar::{batch_to_ipc, batch_to_records, ipc_to_batches};
use pyralog_cluster::engine::{AppendReceipt, ClusterError, ClusterNode, Role};
use pyralog_cluster::local::{LocalClusterNode, start_cluster};
use pyralog_cluster::model::{Header, LogConfig, ProducerSeq, Record, partition_for_key};
use pyralog_cluster::raft::{CHECKPOINT_THRESHOLD, Rejection, SealedEpoch};
use pyralog_cluster::storage::{AppendOutcome, PartitionId, StorageMode};
use pyralog_crypto::merkle::VerifyError;
use pyralog_crypto::quorum::QuorumCertificate;
use pyralog_crypto::{Checkpoint, ClusterId};

use crate::support::{DEADLINE, eventually, leader_of, running};

fn cluster_id() -> ClusterId {
    ClusterId::new("engine-test").unwrap()
}

fn log_config(name: &str, partitions: u32, replication_factor: u8) -> LogConfig {
    LogConfig { max_record_bytes: 1024, ..crate::support::log_config(name, partitions, replication_factor) }
}

fn record(key: Option<&str>, value: &str) -> Record {
    Record {
        key: key.map(|k| k.as_bytes().to_vec()),
        value: value.as_bytes().to_vec(),
        headers: vec![Header { name: "source".into(), value: b"test".to_vec() }],
        timestamp_ms: 1_700_000_000_000,
        ..Record::default()
    }
}

/// Appends through `entry`; records whose partition another node leads are retried there, at
/// the node named by the NotLeader hint.
async fn append_via_hints(
    nodes: &[LocalClusterNode],
    entry: &ClusterNode,
    log: &str,
    records: Vec<Record>,
) -> Vec<AppendReceipt> {
    let results = entry.append(log, records.clone()).await.unwrap();
    let mut receipts = Vec::new();
    for (record, result) in records.into_iter().zip(results) {
        let receipt = match result {
            Ok(receipt) => receipt,
            Err(err) => match &*err {
                ClusterError::NotLeader { partition: Some(partition), leader, leader_addr } => {
                    if let Some(leader) = leader {
                        let node = running(nodes).find(|n| n.id() == *leader).unwrap();
                        assert_eq!(
                            leader_addr.as_deref(),
                            Some(node.addr()),
                            "hint names the leader's address"
                        );
                    }
                    // The hint may be missing or stale by now: retry at whoever leads.
                    retry_at_leader(nodes, log, *partition, record).await
                }
                other => panic!("append failed: {other}"),
            },
        };
        receipts.push(receipt);
    }
    receipts
}

/// Writes `record` to `partition` at its current leader, following leadership changes.
async fn retry_at_leader(
    nodes: &[LocalClusterNode],
    log: &str,
    partition: PartitionId,
    record: Record,
) -> AppendReceipt {
    let started = tokio::time::Instant::now();
    loop {
        let leader = leader_of(nodes, partition).await;
        match leader.append_to(log, partition.partition, vec![record.clone()]).await {
            Ok(receipts) => return receipts[0],
            Err(ClusterError::NotLeader { .. }) if started.elapsed() < DEADLINE => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(err) => panic!("append at the leader of {partition} failed: {err}"),
        }
    }
}

async fn certified_at_least(
    node: &ClusterNode,
    log: &str,
    partition: u32,
    size: u64,
) -> QuorumCertificate<Checkpoint> {
    let mut certificate = None;
    eventually(&format!("a checkpoint of {log}/{partition} covering {size} records"), || {
        certificate = node.checkpoint(log, partition).unwrap().filter(|c| c.message.size >= size);
        certificate.is_some()
    })
    .await;
    certificate.unwrap()
}

fn offset(receipt: &AppendReceipt) -> u64 {
    match receipt.outcome {
        AppendOutcome::Appended { offset } => offset,
        other => panic!("not stored: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_are_partitioned_replicated_certified_and_provable() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(3, &cluster_id(), dir.path(), |_| {}).await.unwrap();
    let first = nodes[0].node();
    let info = first.create_log(log_config("orders", 3, 3)).await.unwrap();
    assert_eq!(info.placement.len(), 3);
    assert!(info.placement.iter().all(|replicas| replicas.len() == 3));
    for node in running(&nodes) {
        eventually("the log on every node", || node.log("orders").is_ok()).await;
    }
    assert!(first.wait_until_writable("orders", DEADLINE).await.unwrap());

    // Bad requests get typed errors and change nothing.
    assert!(matches!(
        first.create_log(log_config("orders", 1, 1)).await,
        Err(ClusterError::Rejected(Rejection::LogExists(_)))
    ));
    assert!(matches!(
        first.create_log(log_config("wide", 1, 5)).await,
        Err(ClusterError::Rejected(Rejection::NotEnoughMembers { needed: 5, members: 3 }))
    ));
    assert!(matches!(
        first.append("missing", vec![record(None, "x")]).await,
        Err(ClusterError::UnknownLog(_))
    ));
    let huge = Record { value: vec![7; 2000], ..Record::default() };
    assert!(matches!(
        first.append("orders", vec![record(None, "fine"), huge]).await,
        Err(ClusterError::RecordTooLarge { index: 1, max: 1024, .. })
    ));
    assert!(matches!(
        first.read("orders", 3, 0, 10),
        Err(ClusterError::UnknownPartition { partition: 3, .. })
    ));
    let bulky: Vec<Record> = (0..5000).map(|_| Record { value: vec![1; 900], ..Record::default() }).collect();
    assert!(matches!(first.append("orders", bulky).await, Err(ClusterError::BatchTooLarge { .. })));
    // Creating the same log again with the same settings is a successful retry.
    assert_eq!(first.create_log(log_config("orders", 3, 3)).await.unwrap(), info);

    // Keyed records go to their key's partition, the others round-robin.
    let keyed: Vec<Record> =
        (0..30).map(|i| record(Some(&format!("user-{}", i % 7)), &format!("v{i}"))).collect();
    let receipts = append_via_hints(&nodes, first, "orders", keyed.clone()).await;
    for (record, receipt) in keyed.iter().zip(&receipts) {
        assert_eq!(receipt.partition, partition_for_key(record.key.as_ref().unwrap(), 3));
        assert!(receipt.epoch >= 1 && receipt.scarab_id > 0);
    }
    let unkeyed: Vec<Record> = (0..6).map(|i| record(None, &format!("free {i}"))).collect();
    let receipts = append_via_hints(&nodes, first, "orders", unkeyed).await;
    let partitions: Vec<u32> = receipts.iter().map(|r| r.partition).collect();
    assert_eq!(partitions, vec![0, 1, 2, 0, 1, 2]);

    // Every replica serves the same records, the latest per key, and the same Arrow batch.
    let sizes: Vec<u64> = (0..3)
        .map(|p| {
            keyed.iter().filter(|r| partition_for_key(r.key.as_ref().unwrap(), 3) == p).count() as u64 + 2
        })
        .collect();
    for node in running(&nodes) {
        for p in 0..3 {
            let id = info.partition_id(p);
            let replica = node.replica(id).unwrap();
            let mut state = replica.subscribe();
            tokio::time::timeout(DEADLINE, state.wait_for(|s| s.size >= sizes[p as usize]))
                .await
                .unwrap()
                .unwrap();
            let records = node.read("orders", p, 0, 1000).unwrap();
            assert_eq!(records.len() as u64, sizes[p as usize]);
            let batch = node.read_arrow("orders", p, 0, 1000).unwrap();
            let decoded = ipc_to_batches(&batch_to_ipc(&batch).unwrap()).unwrap();
            assert_eq!(batch_to_records(&decoded[0]).unwrap(), records);
            assert!(matches!(node.read("orders", p, 1000, 1), Err(ClusterError::OffsetOutOfRange { .. })));
        }
        let latest = node.latest("orders", b"user-3").unwrap().unwrap();
        assert_eq!(latest.record.value, b"v24");
    }
    assert!(matches!(
        ipc_to_batches(b"not arrow"),
        Err(arrow_schema::ArrowError::ParseError(_) | arrow_schema::ArrowError::IpcError(_))
    ));

    // Checkpoints are certified by a majority of replicas; every served proof verifies, and a
    // tampered record does not.
    for p in 0..3 {
        let certificate = certified_at_least(first, "orders", p, sizes[p as usize]).await;
        let signers = first.checkpoint_signers("orders", p).unwrap();
        assert!(certificate.verify(&signers, CHECKPOINT_THRESHOLD).is_ok());
        for node in running(&nodes) {
            // Each node serves proofs once its copy of the global state has the certificate.
            certified_at_least(node, "orders", p, sizes[p as usize]).await;
            for offset in 0..sizes[p as usize] {
                let proof = node.proof("orders", p, offset).await.unwrap();
                let bytes = proof.record.encode().unwrap();
                assert_eq!(proof.certificate.message.verify_inclusion(&bytes, &proof.proof), Ok(()));
                let mut tampered = proof.record.clone();
                tampered.record.value.push(b'!');
                assert!(matches!(
                    proof.certificate.message.verify_inclusion(&tampered.encode().unwrap(), &proof.proof),
                    Err(VerifyError::RootMismatch { .. })
                ));
            }
        }
        let beyond = sizes[p as usize] + 5;
        assert!(matches!(first.proof("orders", p, beyond).await, Err(ClusterError::NotCertified { .. })));
    }

    // A later checkpoint extends the earlier one.
    let older = first.checkpoint("orders", 0).unwrap().unwrap();
    let leader = leader_of(&nodes, info.partition_id(0)).await;
    leader
        .append_to("orders", 0, (0..5).map(|i| record(None, &format!("more {i}"))).collect())
        .await
        .unwrap();
    let newer = certified_at_least(first, "orders", 0, older.message.size + 5).await;
    let proof = first.consistency_proof("orders", 0, older.message.size, newer.message.size).unwrap();
    assert_eq!(newer.message.verify_extends(&older.message, &proof), Ok(()));
    assert!(matches!(first.consistency_proof("orders", 0, 5, 4), Err(ClusterError::OffsetOutOfRange { .. })));
    assert!(matches!(
        first.consistency_proof("orders", 0, 1, 1_000_000),
        Err(ClusterError::OffsetOutOfRange { .. })
    ));

    // Each partition has one leader, and every node reports its replicas.
    for p in 0..3 {
        eventually(&format!("one leader of partition {p} in the status reports"), || {
            let leaders = running(&nodes)
                .flat_map(|n| n.status().partitions)
                .filter(|s| s.partition == p && s.role == Role::Leader)
                .count();
            leaders == 1
        })
        .await;
    }
    assert!(running(&nodes).all(|n| n.status().partitions.len() == 3 && n.status().members.len() == 3));

    // A log with one replica per partition: a node without the replica says who has it.
    let single = first.create_log(log_config("single", 1, 1)).await.unwrap();
    let host = single.placement[0][0];
    let other = running(&nodes).find(|n| n.id() != host).unwrap();
    eventually("the single log on every node", || other.log("single").is_ok()).await;
    assert!(
        matches!(other.read("single", 0, 0, 1), Err(ClusterError::NotReplica { replicas, .. }) if replicas == vec![host])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_failover_seals_the_epoch_and_keeps_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(3, &cluster_id(), dir.path(), |_| {}).await.unwrap();
    let info = nodes[0].node().create_log(log_config("events", 1, 3)).await.unwrap();
    assert!(nodes[0].node().wait_until_writable("events", DEADLINE).await.unwrap());
    let id = info.partition_id(0);
    let producer = |sequence| Some(ProducerSeq { producer: 9, sequence });
    let batch = |from: u64| -> Vec<Record> {
        (from..from + 10)
            .map(|s| Record { producer: producer(s), ..record(None, &format!("e{s}")) })
            .collect()
    };
    let first = leader_of(&nodes, id).await;
    let before = first.append_to("events", 0, batch(0)).await.unwrap();
    let old_epoch = before[0].epoch;
    let old_leader = first.id();

    // Kill the partition leader; another replica takes over and reports a new epoch.
    nodes[old_leader as usize].stop().await.unwrap();
    let survivor = running(&nodes).next().unwrap();
    eventually("the new epoch in the global state", || {
        survivor.global_state().borrow().partitions.get(&id).is_some_and(|r| r.epoch > old_epoch)
    })
    .await;
    let record = survivor.global_state().borrow().partitions[&id].clone();
    assert!(record.sealed.contains(&SealedEpoch { epoch: old_epoch, end: 10 }), "{:?}", record.sealed);
    assert_ne!(record.leader, Some(old_leader));

    // The producer retries its last batch at the new leader: stored once, at the original offsets.
    let second = leader_of(&nodes, id).await;
    let retried = second.append_to("events", 0, batch(0)).await.unwrap();
    // The partition remembers each producer's latest sequence and its offset.
    for (receipt, original) in retried.iter().zip(&before) {
        let original_offset = (offset(original) == 9).then_some(9);
        assert_eq!(receipt.outcome, AppendOutcome::Duplicate { original_offset });
    }
    let after = second.append_to("events", 0, batch(10)).await.unwrap();
    assert_eq!(after.iter().map(offset).collect::<Vec<_>>(), (10..20).collect::<Vec<_>>());
    assert!(after[0].epoch > old_epoch);
    let second_id = second.id();

    // The old leader restarts from disk and catches up to the same records and root.
    nodes[old_leader as usize].restart().await.unwrap();
    let second = nodes[second_id as usize].node();
    let back = nodes[old_leader as usize].node();
    eventually("the old leader's replica", || back.replica(id).is_some()).await;
    let mut state = back.replica(id).unwrap().subscribe();
    tokio::time::timeout(DEADLINE, state.wait_for(|s| s.size >= 20)).await.unwrap().unwrap();
    let records = back.read("events", 0, 0, 100).unwrap();
    assert_eq!(records, second.read("events", 0, 0, 100).unwrap());
    assert!(
        records[..10].iter().all(|r| r.epoch == old_epoch)
            && records[10..].iter().all(|r| r.epoch > old_epoch)
    );
    let size = certified_at_least(back, "events", 0, 20).await.message.size;
    assert_eq!(
        back.replica(id).unwrap().reader().root_at(size).unwrap(),
        second.replica(id).unwrap().reader().root_at(size).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_join_and_leave_in_memory_mode() {
    let dir = tempfile::tempdir().unwrap();
    let memory = |config: &mut pyralog_cluster::engine::NodeConfig| config.storage = StorageMode::Memory;
    let nodes = start_cluster(3, &cluster_id(), dir.path(), memory).await.unwrap();
    let mut leader = None;
    eventually("a global leader", || {
        leader = running(&nodes).find(|n| n.status().global_leader == Some(n.id())).map(|n| n.id());
        leader.is_some()
    })
    .await;
    let leader = nodes[leader.unwrap() as usize].node();
    let follower = running(&nodes).find(|n| n.id() != leader.id()).unwrap();

    let joining = LocalClusterNode::start(3, &cluster_id(), dir.path(), memory).await.unwrap();
    assert!(matches!(
        follower.add_member(3, joining.node().member()).await,
        Err(ClusterError::NotLeader { partition: None, .. })
    ));
    leader.add_member(3, joining.node().member()).await.unwrap();
    eventually("the new member's view of the cluster", || {
        joining.node().global_state().borrow().members.len() == 4
    })
    .await;

    // A member that hosts nothing leaves again.
    let mut passing = LocalClusterNode::start(4, &cluster_id(), dir.path(), memory).await.unwrap();
    leader.add_member(4, passing.node().member()).await.unwrap();
    leader.remove_member(4).await.unwrap();
    passing.stop().await.unwrap();
    assert!(!leader.global_state().borrow().members.contains_key(&4));
    assert!(!leader.global_state().borrow().members.is_empty());

    // A log replicated on all four nodes, written and read back in memory.
    let info = leader.create_log(log_config("wide", 2, 4)).await.unwrap();
    assert!(info.placement.iter().all(|r| r.contains(&3)));
    assert!(leader.wait_until_writable("wide", DEADLINE).await.unwrap());
    let all: Vec<LocalClusterNode> = nodes.into_iter().chain(std::iter::once(joining)).collect();
    let receipts =
        append_via_hints(&all, all[0].node(), "wide", (0..8).map(|i| record(None, &i.to_string())).collect())
            .await;
    assert_eq!(receipts.len(), 8);
    eventually("the records on the new member", || {
        (0..2).map(|p| all[3].node().read("wide", p, 0, 100).map_or(0, |r| r.len())).sum::<usize>() == 8
    })
    .await;

    // A member hosting replicas cannot leave; an unknown one is refused too.
    let mut leader = None;
    eventually("a global leader", || {
        leader = running(&all).find(|n| n.status().global_leader == Some(n.id()));
        leader.is_some()
    })
    .await;
    let leader = leader.unwrap();
    assert!(matches!(
        leader.remove_member(3).await,
        Err(ClusterError::Rejected(Rejection::MemberInUse(3, 2)))
    ));
    assert!(matches!(
        leader.remove_member(42).await,
        Err(ClusterError::Rejected(Rejection::UnknownMember(42)))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_node_recovers_both_groups_by_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    // Snapshot often and keep no log behind: a wiped node can only catch up by snapshots.
    let snapshotting = |config: &mut pyralog_cluster::engine::NodeConfig| {
        let raft = openraft::Config {
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(20),
            max_in_snapshot_log_to_keep: 0,
            ..(*config.raft).clone()
        };
        config.raft = std::sync::Arc::new(raft.validate().unwrap());
    };
    let mut nodes = start_cluster(3, &cluster_id(), dir.path(), snapshotting).await.unwrap();
    let info = nodes[0].node().create_log(log_config("wiped", 1, 3)).await.unwrap();
    assert!(nodes[0].node().wait_until_writable("wiped", DEADLINE).await.unwrap());
    let id = info.partition_id(0);
    let batch =
        |round: u64| -> Vec<Record> { (0..5).map(|i| record(None, &format!("r{round}-{i}"))).collect() };
    let leader = leader_of(&nodes, id).await;
    for round in 0..30 {
        leader.append_to("wiped", 0, batch(round)).await.unwrap();
    }
    let victim = running(&nodes).find(|n| n.id() != leader.id()).unwrap().id();
    let leader_id = leader.id();
    nodes[victim as usize].stop().await.unwrap();
    nodes[victim as usize].wipe().unwrap();
    let leader = nodes[leader_id as usize].node();
    for round in 30..40 {
        leader.append_to("wiped", 0, batch(round)).await.unwrap();
    }
    nodes[victim as usize].restart().await.unwrap();
    let (back, leader) = (nodes[victim as usize].node(), nodes[leader_id as usize].node());
    eventually("the wiped node's global state", || back.global_state().borrow().logs.len() == 1).await;
    eventually("the wiped node's replica", || back.replica(id).is_some()).await;
    let mut state = back.replica(id).unwrap().subscribe();
    tokio::time::timeout(DEADLINE, state.wait_for(|s| s.size >= 200)).await.unwrap().unwrap();
    assert_eq!(back.read("wiped", 0, 0, 1000).unwrap(), leader.read("wiped", 0, 0, 1000).unwrap());
    assert_eq!(
        back.replica(id).unwrap().reader().root_at(200).unwrap(),
        leader.replica(id).unwrap().reader().root_at(200).unwrap()
    );
    let (theirs, ours) = (leader.global_state().borrow().clone(), back.global_state().borrow().clone());
    assert_eq!((theirs.members, theirs.logs), (ours.members, ours.logs));
}

/// A write that arrives while its partition is electing a leader (right after a restart) waits
/// for the election within its timeout, as etcd's writes do, instead of failing at once with
/// "not the leader; leader is None"; and no error message shows Rust debug text.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_right_after_a_restart_waits_for_the_election() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(1, &cluster_id(), dir.path(), |_| {}).await.unwrap();
    nodes[0].node().create_log(log_config("restarts", 1, 1)).await.unwrap();
    assert!(nodes[0].node().wait_until_writable("restarts", DEADLINE).await.unwrap());
    nodes[0].node().append_to("restarts", 0, vec![record(None, "before")]).await.unwrap();
    for round in 0..3 {
        nodes[0].stop().await.unwrap();
        nodes[0].restart().await.unwrap();
        // No wait for writability: the write itself waits for the partition's leader.
        let receipts = nodes[0]
            .node()
            .append_to("restarts", 0, vec![record(None, &format!("after restart {round}"))])
            .await
            .unwrap_or_else(|err| panic!("a write right after restart {round} failed: {err}"));
        assert_eq!(offset(&receipts[0]), round + 1);
    }

    let id = PartitionId { log: 1, partition: 0 };
    let messages = [
        ClusterError::NotLeader { partition: Some(id), leader: None, leader_addr: None },
        ClusterError::NotLeader {
            partition: None,
            leader: Some(2),
            leader_addr: Some("127.0.0.1:7002".into()),
        },
        ClusterError::NoLeader { partition: id, waited: Duration::from_secs(10) },
        ClusterError::Timeout { partition: id, after: Duration::from_secs(30) },
    ]
    .map(|err| err.to_string());
    assert_eq!(
        messages,
        [
            "not the leader of partition 1/0; no leader is known",
            "not the leader of the global group; the leader is node 2 at 127.0.0.1:7002",
            "no leader of partition 1/0 was elected within 10000 ms; nothing was written",
            "no answer from partition 1/0 within 30000 ms; the write may or may not be stored",
        ]
    );
}
