//! What the cluster's multi-node tests share: polling for observable state, the running nodes
//! and a partition's leader, a log's settings.

use std::time::Duration;

use pyralog_cluster::engine::ClusterNode;
use pyralog_cluster::local::LocalClusterNode;
use pyralog_cluster::model::LogConfig;
use pyralog_cluster::storage::PartitionId;
use pyralog_crypto::LogName;

/// How long any awaited state may take.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

/// Polls `check` until it holds; panics with `what` after the deadline.
pub(crate) async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = tokio::time::Instant::now();
    while !check() {
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The nodes that are up.
pub(crate) fn running(nodes: &[LocalClusterNode]) -> impl Iterator<Item = &ClusterNode> {
    nodes.iter().filter(|n| n.is_running()).map(|n| n.node())
}

/// The running node that leads `partition`.
pub(crate) async fn leader_of(nodes: &[LocalClusterNode], partition: PartitionId) -> &ClusterNode {
    let leads = |node: &ClusterNode| {
        node.replica(partition)
            .is_some_and(|r| r.raft().metrics().borrow().state == openraft::ServerState::Leader)
    };
    eventually(&format!("a leader of {partition}"), || running(nodes).any(leads)).await;
    running(nodes).find(|n| leads(n)).unwrap()
}

/// A log of `partitions` partitions with `replication_factor` replicas and no contracts.
pub(crate) fn log_config(name: &str, partitions: u32, replication_factor: u8) -> LogConfig {
    LogConfig {
        name: LogName::new(name).unwrap(),
        partitions,
        replication_factor,
        max_record_bytes: 1 << 20,
        zk: Default::default(),
        constraint: None,
        trigger: None,
        acl: None,
    }
}
