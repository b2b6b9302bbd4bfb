//! Metadata, ListOffsets and FindCoordinator: what a Kafka client asks before it reads, writes
//! or joins a group.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, MetadataResponse, TopicName,
};
use std::sync::Arc;

use kafka_protocol::protocol::StrBytes;
use openraft::ServerState;
use pyralog_cluster::raft::PartitionReplica;

use super::broker::Broker;
use super::codes::{
    COORDINATOR_NOT_AVAILABLE, INVALID_REQUEST, LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER,
    OFFSET_NOT_AVAILABLE, OFFSET_OUT_OF_RANGE, UNKNOWN_SERVER_ERROR, UNKNOWN_TOPIC_OR_PARTITION,
};

/// ListOffsets' special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

impl Broker {
    /// Topics are the cluster's logs; this node is the broker, and a partition's leader is its
    /// Raft leader.
    pub(crate) fn metadata(&self, request: MetadataRequest) -> MetadataResponse {
        let brokers = self
            .brokers
            .iter()
            .map(|b| {
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.id))
                    .with_host(StrBytes::from_string(b.host.clone()))
                    .with_port(b.port)
            })
            .collect();
        let logs = self.node.logs();
        let wanted: Option<Vec<String>> = request
            .topics
            .map(|topics| topics.into_iter().filter_map(|t| t.name.map(|n| n.0.to_string())).collect());
        let status = self.node.status();
        let names: Vec<String> = match wanted {
            Some(names) => names,
            None => logs.iter().map(|l| l.config.name.as_str().to_owned()).collect(),
        };
        let topics = names
            .into_iter()
            .map(|name| {
                let Some(log) = logs.iter().find(|l| l.config.name.as_str() == name) else {
                    return MetadataResponseTopic::default()
                        .with_name(Some(topic_name(&name)))
                        .with_error_code(UNKNOWN_TOPIC_OR_PARTITION);
                };
                let partitions = (0..log.config.partitions)
                    .map(|p| {
                        let replicas: Vec<BrokerId> = log
                            .placement
                            .get(p as usize)
                            .into_iter()
                            .flatten()
                            .filter_map(|id| i32::try_from(*id).ok().map(BrokerId))
                            .collect();
                        let leader = status
                            .partitions
                            .iter()
                            .find(|s| s.log.as_str() == name && s.partition == p)
                            .and_then(|s| s.leader)
                            .and_then(|id| i32::try_from(id).ok());
                        let partition = MetadataResponsePartition::default()
                            .with_partition_index(p as i32)
                            .with_replica_nodes(replicas.clone())
                            .with_isr_nodes(replicas);
                        match leader {
                            Some(id) => partition.with_leader_id(BrokerId(id)),
                            None => {
                                partition.with_leader_id(BrokerId(-1)).with_error_code(LEADER_NOT_AVAILABLE)
                            }
                        }
                    })
                    .collect();
                MetadataResponseTopic::default()
                    .with_name(Some(topic_name(&name)))
                    .with_partitions(partitions)
            })
            .collect();
        MetadataResponse::default()
            .with_brokers(brokers)
            .with_cluster_id(Some(StrBytes::from_string(status.cluster.to_string())))
            .with_controller_id(BrokerId(self.id))
            .with_topics(topics)
    }

    /// The coordinator of every group is the global group's leader; transactions have none.
    pub(crate) fn find_coordinator(
        &self,
        request: FindCoordinatorRequest,
        version: i16,
    ) -> FindCoordinatorResponse {
        const GROUP: i8 = 0;
        let leader = self.node.global_raft_metrics().current_leader;
        let coordinator = leader.and_then(|id| self.brokers.iter().find(|b| i64::from(b.id) == id as i64));
        let answer = |key: StrBytes| match (request.key_type, coordinator) {
            (GROUP, Some(broker)) => Coordinator::default()
                .with_key(key)
                .with_node_id(BrokerId(broker.id))
                .with_host(StrBytes::from_string(broker.host.clone()))
                .with_port(broker.port),
            (GROUP, None) => Coordinator::default()
                .with_key(key)
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(COORDINATOR_NOT_AVAILABLE),
            _ => Coordinator::default()
                .with_key(key)
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(INVALID_REQUEST)
                .with_error_message(Some(StrBytes::from_static_str("transactions are not supported"))),
        };
        if version >= 4 {
            let coordinators = request.coordinator_keys.into_iter().map(answer).collect();
            return FindCoordinatorResponse::default().with_coordinators(coordinators);
        }
        let one = answer(request.key);
        let response = FindCoordinatorResponse::default()
            .with_error_code(one.error_code)
            .with_node_id(one.node_id)
            .with_host(one.host)
            .with_port(one.port);
        if version >= 1 { response.with_error_message(one.error_message) } else { response }
    }

    /// Earliest is offset 0 (logs are never truncated), latest the committed size; a timestamp
    /// finds the first record at or after it.
    pub(crate) fn list_offsets(&self, request: ListOffsetsRequest) -> ListOffsetsResponse {
        let topics = request
            .topics
            .into_iter()
            .map(|topic| {
                let log = topic.name.0.to_string();
                let partitions = topic
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let answer =
                            ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                        let Ok(partition) = u32::try_from(p.partition_index) else {
                            return answer.with_error_code(UNKNOWN_TOPIC_OR_PARTITION);
                        };
                        match self.offset_for(&log, partition, p.timestamp) {
                            Ok((offset, timestamp)) => answer.with_offset(offset).with_timestamp(timestamp),
                            Err(code) => answer.with_error_code(code).with_offset(-1),
                        }
                    })
                    .collect();
                ListOffsetsTopicResponse::default().with_name(topic.name).with_partitions(partitions)
            })
            .collect();
        ListOffsetsResponse::default().with_topics(topics)
    }

    fn offset_for(&self, log: &str, partition: u32, timestamp: i64) -> Result<(i64, i64), i16> {
        let size = self.committed_size(log, partition)?;
        match timestamp {
            EARLIEST => Ok((0, -1)),
            LATEST => Ok((size as i64, -1)),
            at => {
                // The first record at or after `at` (records are read in pages).
                let mut from = 0;
                while from < size {
                    let page =
                        self.node.read(log, partition, from, 1000).map_err(|_| UNKNOWN_SERVER_ERROR)?;
                    if page.is_empty() {
                        break;
                    }
                    if let Some(record) = page.iter().find(|r| r.record.timestamp_ms as i64 >= at) {
                        return Ok((record.offset as i64, record.record.timestamp_ms as i64));
                    }
                    from += page.len() as u64;
                }
                Ok((-1, -1))
            }
        }
    }

    /// The partition's committed size on this node.
    pub(crate) fn committed_size(&self, log: &str, partition: u32) -> Result<u64, i16> {
        Ok(self.local_replica(log, partition)?.state().size)
    }

    /// What a Fetch from past this replica's end gets. `OFFSET_OUT_OF_RANGE` (clients then reset
    /// their position by `auto.offset.reset`) only where the offset is surely past the log's
    /// end: from a leader that has applied an entry of its own term (so everything committed
    /// before it), has applied all it knows committed, and heard from a quorum within an
    /// election timeout (so no newer leader can have committed more). Anywhere else the
    /// replica may simply not have the records yet (a follower; a leader just elected, restarted
    /// or cut off): `OFFSET_NOT_AVAILABLE`, which clients retry, as Kafka's lagging replicas
    /// answer (KIP-392). Logs are never truncated, so a position a client was given stays valid.
    pub(crate) fn past_the_end(&self, replica: &PartitionReplica) -> i16 {
        let metrics = replica.raft().metrics().borrow().clone();
        let lease = replica.raft().config().election_timeout_min;
        let leads = metrics.state == ServerState::Leader
            && metrics.last_applied.is_some_and(|applied| applied.leader_id.term == metrics.current_term)
            && metrics.millis_since_quorum_ack.is_some_and(|millis| millis < lease);
        let applied = replica.state().applied_index;
        match leads && replica.commit_index().is_some_and(|committed| applied >= committed) {
            true => OFFSET_OUT_OF_RANGE,
            false => OFFSET_NOT_AVAILABLE,
        }
    }

    /// This node's replica of a partition of `log` (looked up alone: Fetch polls it every 10 ms,
    /// where the node's whole status would walk every replica).
    pub(crate) fn local_replica(&self, log: &str, partition: u32) -> Result<Arc<PartitionReplica>, i16> {
        let info = self.node.log(log).map_err(|_| UNKNOWN_TOPIC_OR_PARTITION)?;
        if partition >= info.config.partitions {
            return Err(UNKNOWN_TOPIC_OR_PARTITION);
        }
        self.node.replica(info.partition_id(partition)).ok_or(NOT_LEADER_OR_FOLLOWER)
    }
}
