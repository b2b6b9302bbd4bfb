//! Kafka consumer groups as the global group keeps them: each group's last stored generation
//! (its members and their assignments, written when a rebalance completes or the group empties)
//! and its committed offsets. The coordinator that runs Kafka's join/sync protocol lives in the
//! node and keeps its timers in memory; this is the part that survives the coordinator's death,
//! as Kafka keeps it in `__consumer_offsets`.
//!
//! The global state is written whole per applied batch, so everything here is bounded.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{GlobalState, Rejection};
use crate::storage::PartitionId;

/// Most consumer groups a cluster keeps.
pub const MAX_CONSUMER_GROUPS: usize = 10_000;
/// Longest group name, in bytes.
pub const MAX_GROUP_NAME_BYTES: usize = 255;
/// Most members one group may have.
pub const MAX_GROUP_MEMBERS: usize = 1_000;
/// Most bytes one stored group may carry (subscriptions, assignments, ids and names).
pub const MAX_STORED_GROUP_BYTES: usize = 1 << 20;
/// Longest metadata string of one committed offset (Kafka's `offset.metadata.max.bytes`).
pub const MAX_OFFSET_METADATA_BYTES: usize = 4096;

/// A member of a stored generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredGroupMember {
    /// The id the coordinator gave it.
    pub member_id: String,
    /// Its static instance id, if it set one.
    pub group_instance_id: Option<String>,
    /// Its client id.
    pub client_id: String,
    /// The address it connected from.
    pub client_host: String,
    /// How long it may go without a heartbeat.
    pub session_timeout_ms: i32,
    /// How long a rebalance waits for it to rejoin.
    pub rebalance_timeout_ms: i32,
    /// Its metadata for the group's protocol (a consumer's subscription).
    pub subscription: Vec<u8>,
    /// What the leader assigned it.
    pub assignment: Vec<u8>,
}

/// One generation of a group, as its coordinator stored it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredGroup {
    /// The protocol type (`consumer` for Kafka consumers).
    pub protocol_type: String,
    /// The protocol (assignor) chosen, none while empty.
    pub protocol: Option<String>,
    /// The generation.
    pub generation: i32,
    /// The member that computed the assignment.
    pub leader: Option<String>,
    /// The members (none: the group is empty).
    pub members: Vec<StoredGroupMember>,
}

impl StoredGroup {
    /// Every byte the stored group carries, strings included.
    fn payload_bytes(&self) -> usize {
        let strings = self.protocol_type.len()
            + self.protocol.as_ref().map_or(0, String::len)
            + self.leader.as_ref().map_or(0, String::len);
        let members: usize = self
            .members
            .iter()
            .map(|m| {
                m.member_id.len()
                    + m.group_instance_id.as_ref().map_or(0, String::len)
                    + m.client_id.len()
                    + m.client_host.len()
                    + m.subscription.len()
                    + m.assignment.len()
            })
            .sum();
        strings + members
    }
}

/// A committed consumer position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    /// The next offset to consume.
    pub offset: i64,
    /// The leader epoch the client saw (-1: none).
    pub leader_epoch: i32,
    /// The client's note.
    pub metadata: String,
}

/// What the cluster keeps of one consumer group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerGroupRecord {
    /// The last stored generation (none for groups that only ever committed offsets).
    pub generation: Option<StoredGroup>,
    /// Committed offsets by partition.
    pub offsets: BTreeMap<PartitionId, CommittedOffset>,
}

fn check_name(name: &str) -> Result<(), Rejection> {
    if name.is_empty() || name.len() > MAX_GROUP_NAME_BYTES {
        return Err(Rejection::InvalidConsumerGroup(format!(
            "a group name has 1..={MAX_GROUP_NAME_BYTES} bytes"
        )));
    }
    Ok(())
}

impl GlobalState {
    /// The group record to change, created if the cluster has room for another group.
    fn consumer_group_entry(&mut self, name: &str) -> Result<&mut ConsumerGroupRecord, Rejection> {
        check_name(name)?;
        if !self.consumer_groups.contains_key(name) && self.consumer_groups.len() >= MAX_CONSUMER_GROUPS {
            return Err(Rejection::InvalidConsumerGroup(format!(
                "the cluster keeps at most {MAX_CONSUMER_GROUPS} groups"
            )));
        }
        Ok(self.consumer_groups.entry(name.to_owned()).or_default())
    }

    pub(super) fn store_consumer_group(&mut self, name: &str, group: StoredGroup) -> Result<(), Rejection> {
        if group.members.len() > MAX_GROUP_MEMBERS {
            return Err(Rejection::InvalidConsumerGroup(format!(
                "{} members; a group has at most {MAX_GROUP_MEMBERS}",
                group.members.len()
            )));
        }
        if group.payload_bytes() > MAX_STORED_GROUP_BYTES {
            return Err(Rejection::InvalidConsumerGroup(format!(
                "the group's members, subscriptions and assignments exceed {MAX_STORED_GROUP_BYTES} bytes"
            )));
        }
        let record = self.consumer_group_entry(name)?;
        // A deposed coordinator's late write must not roll a group back.
        if let Some(stored) = &record.generation
            && group.generation < stored.generation
        {
            return Err(Rejection::StaleGeneration { stored: stored.generation, got: group.generation });
        }
        record.generation = Some(group);
        Ok(())
    }

    pub(super) fn commit_offsets(
        &mut self,
        name: &str,
        offsets: Vec<(PartitionId, CommittedOffset)>,
    ) -> Result<(), Rejection> {
        for (partition, committed) in &offsets {
            self.replicas(*partition).ok_or(Rejection::UnknownLog(partition.to_string()))?;
            if committed.metadata.len() > MAX_OFFSET_METADATA_BYTES {
                return Err(Rejection::InvalidConsumerGroup(format!(
                    "offset metadata exceeds {MAX_OFFSET_METADATA_BYTES} bytes"
                )));
            }
        }
        let record = self.consumer_group_entry(name)?;
        record.offsets.extend(offsets);
        Ok(())
    }
}
