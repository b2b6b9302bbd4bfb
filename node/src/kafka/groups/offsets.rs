//! OffsetCommit and OffsetFetch: consumer positions, committed through the global group (so they
//! survive any node) and read back from the replicated state on the coordinator.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use pyralog_cluster::engine::ClusterError;
use pyralog_cluster::raft::{CommittedOffset, MAX_CONSUMER_GROUPS, MAX_OFFSET_METADATA_BYTES, Rejection};
use pyralog_cluster::storage::PartitionId;

use super::Coordinator;
use super::group::Group;
use super::requests::group_name;
use crate::kafka::codes::{
    INVALID_GROUP_ID, NONE, NOT_COORDINATOR, OFFSET_METADATA_TOO_LARGE, UNKNOWN_MEMBER_ID,
    UNKNOWN_TOPIC_OR_PARTITION,
};

/// One partition's committed position as OffsetFetch reports it.
struct Position {
    offset: i64,
    leader_epoch: i32,
    metadata: String,
}

impl Position {
    const NONE: Position = Position { offset: -1, leader_epoch: -1, metadata: String::new() };
}

/// OffsetFetch's topics from [`Coordinator::positions`]: the same fields in the single-group
/// (before v8) and the several-groups (v8+) message types.
macro_rules! fetched_topics {
    ($topics:expr, $topic:ident, $partition:ident, $with_epoch:expr) => {
        $topics
            .into_iter()
            .map(|(name, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|(index, p, code): (i32, Position, i16)| {
                        $partition::default()
                            .with_partition_index(index)
                            .with_committed_offset(p.offset)
                            .with_committed_leader_epoch(if $with_epoch { p.leader_epoch } else { -1 })
                            .with_metadata(Some(StrBytes::from_string(p.metadata)))
                            .with_error_code(code)
                    })
                    .collect();
                $topic::default().with_name(name).with_partitions(partitions)
            })
            .collect()
    };
}

impl Coordinator {
    /// OffsetCommit: the member and generation are checked as Kafka checks them, then every
    /// valid partition's position is committed in one global-group command.
    pub(crate) async fn offset_commit(
        self: &Arc<Self>,
        request: OffsetCommitRequest,
    ) -> OffsetCommitResponse {
        let mut codes: Vec<(TopicName, Vec<(i32, i16)>)> = request
            .topics
            .iter()
            .map(|t| (t.name.clone(), t.partitions.iter().map(|p| (p.partition_index, NONE)).collect()))
            .collect();
        let refusal = self.check_commit(&request).await;
        let mut offsets = Vec::new();
        if refusal.is_none() {
            for (topic, (_, partition_codes)) in request.topics.iter().zip(codes.iter_mut()) {
                let log = self.node.log(&topic.name.0).ok();
                for (partition, (_, code)) in topic.partitions.iter().zip(partition_codes.iter_mut()) {
                    let id = log.as_ref().and_then(|log| {
                        let index = u32::try_from(partition.partition_index).ok()?;
                        (index < log.config.partitions).then(|| log.partition_id(index))
                    });
                    let metadata = partition.committed_metadata.as_deref().unwrap_or_default();
                    *code = match id {
                        None => UNKNOWN_TOPIC_OR_PARTITION,
                        Some(_) if metadata.len() > MAX_OFFSET_METADATA_BYTES => OFFSET_METADATA_TOO_LARGE,
                        Some(id) => {
                            offsets.push((
                                id,
                                CommittedOffset {
                                    offset: partition.committed_offset,
                                    leader_epoch: partition.committed_leader_epoch,
                                    metadata: metadata.to_owned(),
                                },
                            ));
                            NONE
                        }
                    };
                }
            }
        }
        let outcome = match refusal {
            Some(code) => code,
            None if offsets.is_empty() => NONE,
            None => match self.node.commit_offsets(request.group_id.0.to_string(), offsets).await {
                Ok(()) => NONE,
                Err(ClusterError::Rejected(Rejection::UnknownLog(_))) => UNKNOWN_TOPIC_OR_PARTITION,
                Err(ClusterError::Rejected(Rejection::InvalidConsumerGroup(_))) => INVALID_GROUP_ID,
                Err(err) => {
                    tracing::info!(%err, "kafka offset commit failed");
                    NOT_COORDINATOR
                }
            },
        };
        let topics = codes
            .into_iter()
            .map(|(name, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|(index, code)| {
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(index)
                            .with_error_code(if code == NONE { outcome } else { code })
                    })
                    .collect();
                OffsetCommitResponseTopic::default().with_name(name).with_partitions(partitions)
            })
            .collect();
        OffsetCommitResponse::default().with_topics(topics)
    }

    /// Whether this commit may go ahead (`Some`: the code every partition gets).
    async fn check_commit(&self, request: &OffsetCommitRequest) -> Option<i16> {
        let name = match group_name(&request.group_id) {
            Ok(name) => name,
            Err(code) => return Some(code),
        };
        let mut loaded = match self.groups().await {
            Ok(loaded) => loaded,
            Err(code) => return Some(code),
        };
        let generation = request.generation_id_or_member_epoch;
        let now = Instant::now();
        let full = loaded.groups.len() >= MAX_CONSUMER_GROUPS;
        match loaded.groups.get_mut(&name) {
            Some(group) => group.check_commit(generation, &request.member_id, now).err(),
            None if full => Some(INVALID_GROUP_ID),
            None if generation < 0 && request.member_id.is_empty() => {
                loaded.groups.insert(name, Group::empty());
                None
            }
            None => Some(UNKNOWN_MEMBER_ID),
        }
    }

    /// OffsetFetch of one group (before v8) or of several (v8+).
    pub(crate) async fn offset_fetch(
        &self,
        request: OffsetFetchRequest,
        version: i16,
    ) -> OffsetFetchResponse {
        if version < 8 {
            let wanted = request
                .topics
                .map(|topics| topics.into_iter().map(|t| (t.name, t.partition_indexes)).collect());
            let (code, topics) = self.positions(&request.group_id, wanted).await;
            // The leader epoch is answered from v5.
            let topics =
                fetched_topics!(topics, OffsetFetchResponseTopic, OffsetFetchResponsePartition, version >= 5);
            let response = OffsetFetchResponse::default().with_topics(topics);
            return if version >= 2 { response.with_error_code(code) } else { response };
        }
        let mut groups = Vec::new();
        for group in request.groups {
            let wanted = group
                .topics
                .map(|topics| topics.into_iter().map(|t| (t.name, t.partition_indexes)).collect());
            let (code, topics) = self.positions(&group.group_id, wanted).await;
            let topics =
                fetched_topics!(topics, OffsetFetchResponseTopics, OffsetFetchResponsePartitions, true);
            groups.push(
                OffsetFetchResponseGroup::default()
                    .with_group_id(group.group_id)
                    .with_topics(topics)
                    .with_error_code(code),
            );
        }
        OffsetFetchResponse::default().with_groups(groups)
    }

    /// A group's committed positions: the partitions asked for (`None`: every partition it has
    /// committed), each with its position and code; the first value is the group's code.
    #[allow(clippy::type_complexity)]
    async fn positions(
        &self,
        group: &GroupId,
        wanted: Option<Vec<(TopicName, Vec<i32>)>>,
    ) -> (i16, Vec<(TopicName, Vec<(i32, Position, i16)>)>) {
        let name = match group_name(group) {
            Ok(name) => name,
            Err(code) => return (code, Vec::new()),
        };
        if let Err(code) = self.groups().await.map(drop) {
            return (code, Vec::new());
        }
        let committed = self.node.consumer_group(&name).map(|g| g.offsets).unwrap_or_default();
        let logs = self.node.logs();
        let position = |id: PartitionId| {
            committed.get(&id).map_or(Position::NONE, |c| Position {
                offset: c.offset,
                leader_epoch: c.leader_epoch,
                metadata: c.metadata.clone(),
            })
        };
        let topics = match wanted {
            // Each topic and partition once: repeating them must not multiply the answer.
            Some(topics) => dedup_topics(topics)
                .into_iter()
                .map(|(topic, partitions)| {
                    let log = logs.iter().find(|l| l.config.name.as_str() == &*topic.0);
                    let partitions = partitions
                        .into_iter()
                        .map(|index| {
                            let id = log.and_then(|log| {
                                let p = u32::try_from(index).ok()?;
                                (p < log.config.partitions).then(|| log.partition_id(p))
                            });
                            match id {
                                Some(id) => (index, position(id), NONE),
                                None => (index, Position::NONE, UNKNOWN_TOPIC_OR_PARTITION),
                            }
                        })
                        .collect();
                    (topic, partitions)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<(i32, Position, i16)>> = BTreeMap::new();
                for id in committed.keys() {
                    if let Some(log) = logs.iter().find(|l| l.id == id.log) {
                        by_topic.entry(log.config.name.as_str().to_owned()).or_default().push((
                            id.partition as i32,
                            position(*id),
                            NONE,
                        ));
                    }
                }
                by_topic
                    .into_iter()
                    .map(|(topic, partitions)| (TopicName(StrBytes::from_string(topic)), partitions))
                    .collect()
            }
        };
        (NONE, topics)
    }
}

/// The topics asked for, each once with its partitions each once, in first-asked order.
fn dedup_topics(topics: Vec<(TopicName, Vec<i32>)>) -> Vec<(TopicName, std::collections::BTreeSet<i32>)> {
    let mut merged: Vec<(TopicName, std::collections::BTreeSet<i32>)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (topic, partitions) in topics {
        match index.get(topic.0.as_str()) {
            Some(&at) => merged[at].1.extend(partitions),
            None => {
                index.insert(topic.0.to_string(), merged.len());
                merged.push((topic, partitions.into_iter().collect()));
            }
        }
    }
    merged
}
