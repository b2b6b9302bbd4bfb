//! The group requests of Kafka's classic consumer protocol, decoded into [`Group`] steps and
//! encoded back for the version the client speaks: JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! ListGroups and DescribeGroups.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DescribeGroupsRequest, DescribeGroupsResponse, GroupId, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use pyralog_cluster::raft::{MAX_CONSUMER_GROUPS, MAX_GROUP_NAME_BYTES};

use super::group::{Group, GroupState, JoinAnswer, JoinRequest, Reply, SyncAnswer};
use super::{Client, Coordinator, SESSION_TIMEOUTS};
use crate::kafka::codes::{
    INVALID_GROUP_ID, INVALID_REQUEST, INVALID_SESSION_TIMEOUT, NONE, NOT_COORDINATOR, UNKNOWN_MEMBER_ID,
};
use crate::kafka::ids::random_id;

/// The longest client id (and static instance id) a group keeps.
const MAX_CLIENT_ID_BYTES: usize = 255;

/// `s` cut to at most `max` bytes, on a character boundary.
fn truncated(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// The group name, if Kafka would accept it.
pub(super) fn group_name(id: &GroupId) -> Result<String, i16> {
    let name = id.0.to_string();
    if name.is_empty() || name.len() > MAX_GROUP_NAME_BYTES {
        return Err(INVALID_GROUP_ID);
    }
    Ok(name)
}

/// Waits for a deferred answer, at most `limit` (a dropped sender or an expired limit: the
/// coordinator moved or lost the group; the client looks for it again).
async fn answer<T>(reply: Reply<T>, limit: Duration, lost: impl FnOnce() -> T) -> T {
    match reply {
        Reply::Now(answer) => answer,
        Reply::Later(receiver) => match tokio::time::timeout(limit, receiver).await {
            Ok(Ok(answer)) => answer,
            _ => lost(),
        },
    }
}

fn join_response(answer: JoinAnswer, version: i16) -> JoinGroupResponse {
    let members = answer
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            JoinGroupResponseMember::default()
                .with_member_id(text(&id))
                .with_group_instance_id(instance.filter(|_| version >= 5).map(|i| text(&i)))
                .with_metadata(metadata)
        })
        .collect();
    let protocol_name = match (answer.protocol, version >= 7) {
        (Some(p), _) => Some(text(&p)),
        (None, true) => None,
        (None, false) => Some(StrBytes::default()),
    };
    JoinGroupResponse::default()
        .with_error_code(answer.error)
        .with_generation_id(answer.generation)
        .with_protocol_type(answer.protocol_type.filter(|_| version >= 7).map(|t| text(&t)))
        .with_protocol_name(protocol_name)
        .with_leader(text(&answer.leader))
        .with_member_id(text(&answer.member_id))
        .with_members(members)
}

fn sync_response(answer: SyncAnswer, version: i16) -> SyncGroupResponse {
    let v5 = version >= 5;
    SyncGroupResponse::default()
        .with_error_code(answer.error)
        .with_protocol_type(answer.protocol_type.filter(|_| v5).map(|t| text(&t)))
        .with_protocol_name(answer.protocol.filter(|_| v5).map(|p| text(&p)))
        .with_assignment(answer.assignment)
}

impl Coordinator {
    /// JoinGroup: answered when the join phase completes (or at once for errors and for members
    /// whose generation is current).
    pub(crate) async fn join_group(
        self: &Arc<Self>,
        request: JoinGroupRequest,
        version: i16,
        client: &Client,
    ) -> JoinGroupResponse {
        let member_id = request.member_id.to_string();
        let fail = |code: i16| join_response(JoinAnswer::error(code, &member_id), version);
        let name = match group_name(&request.group_id) {
            Ok(name) => name,
            Err(code) => return fail(code),
        };
        let session_timeout = Duration::from_millis(request.session_timeout_ms.max(0) as u64);
        if !SESSION_TIMEOUTS.contains(&session_timeout) {
            return fail(INVALID_SESSION_TIMEOUT);
        }
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        let rebalance_timeout = match version {
            0 => session_timeout,
            _ => Duration::from_millis(request.rebalance_timeout_ms.max(0) as u64),
        };
        if request.group_instance_id.as_ref().is_some_and(|id| id.len() > MAX_CLIENT_ID_BYTES) {
            return fail(INVALID_REQUEST);
        }
        // Client ids are free text; what a group keeps of one (and its member ids) is bounded.
        let client_id = truncated(&client.id, MAX_CLIENT_ID_BYTES);
        let join = JoinRequest {
            member_id: member_id.clone(),
            fresh_member_id: format!("{client_id}-{:016x}", random_id(b"kafka member id")),
            require_known_member: version >= 4,
            group_instance_id: request.group_instance_id.map(|i| i.to_string()),
            client_id,
            client_host: client.host.clone(),
            session_timeout,
            rebalance_timeout,
            protocol_type: request.protocol_type.to_string(),
            protocols: request.protocols.into_iter().map(|p| (p.name.to_string(), p.metadata)).collect(),
        };
        let (reply, store) = {
            let mut loaded = match self.groups().await {
                Ok(loaded) => loaded,
                Err(code) => return fail(code),
            };
            if !loaded.groups.contains_key(&name) && loaded.groups.len() >= MAX_CONSUMER_GROUPS {
                tracing::info!(group = %name, "kafka JoinGroup refused: the cluster keeps at most {MAX_CONSUMER_GROUPS} groups");
                return fail(INVALID_GROUP_ID);
            }
            let group = loaded.groups.entry(name.clone()).or_insert_with(Group::empty);
            let outcome = group.join(join, Instant::now());
            // A refused first join leaves nothing behind.
            if group.is_idle() {
                loaded.groups.remove(&name);
            }
            outcome
        };
        if let Some(store) = store {
            self.store(name, store);
        }
        let limit = rebalance_timeout * 2 + Duration::from_secs(10);
        let answer = answer(reply, limit, || JoinAnswer::error(NOT_COORDINATOR, &member_id)).await;
        join_response(answer, version)
    }

    /// SyncGroup: members get their assignment once the leader's is stored.
    pub(crate) async fn sync_group(
        self: &Arc<Self>,
        request: SyncGroupRequest,
        version: i16,
    ) -> SyncGroupResponse {
        let fail = |code: i16| sync_response(SyncAnswer::error(code), version);
        let name = match group_name(&request.group_id) {
            Ok(name) => name,
            Err(code) => return fail(code),
        };
        let protocol_type = request.protocol_type.map(|t| t.to_string());
        let protocol = request.protocol_name.map(|p| p.to_string());
        let assignments: Vec<(String, Bytes)> =
            request.assignments.into_iter().map(|a| (a.member_id.to_string(), a.assignment)).collect();
        let (reply, store) = {
            let mut loaded = match self.groups().await {
                Ok(loaded) => loaded,
                Err(code) => return fail(code),
            };
            let Some(group) = loaded.groups.get_mut(&name) else {
                return fail(UNKNOWN_MEMBER_ID);
            };
            group.sync(
                request.generation_id,
                &request.member_id,
                (protocol_type.as_deref(), protocol.as_deref()),
                assignments,
            )
        };
        if let Some(store) = store {
            self.store(name, store);
        }
        let answer = answer(reply, Duration::from_secs(60), || SyncAnswer::error(NOT_COORDINATOR)).await;
        sync_response(answer, version)
    }

    /// Heartbeat.
    pub(crate) async fn heartbeat(&self, request: HeartbeatRequest) -> HeartbeatResponse {
        let code = match group_name(&request.group_id) {
            Err(code) => code,
            Ok(name) => match self.groups().await {
                Err(code) => code,
                Ok(mut loaded) => match loaded.groups.get_mut(&name) {
                    None => UNKNOWN_MEMBER_ID,
                    Some(group) => group.heartbeat(request.generation_id, &request.member_id, Instant::now()),
                },
            },
        };
        HeartbeatResponse::default().with_error_code(code)
    }

    /// LeaveGroup (one member before v3, a batch from v3).
    pub(crate) async fn leave_group(
        self: &Arc<Self>,
        request: LeaveGroupRequest,
        version: i16,
    ) -> LeaveGroupResponse {
        let leaving: Vec<(StrBytes, Option<StrBytes>)> = match version {
            0..=2 => vec![(request.member_id.clone(), None)],
            _ => request.members.iter().map(|m| (m.member_id.clone(), m.group_instance_id.clone())).collect(),
        };
        let name = match group_name(&request.group_id) {
            Ok(name) => name,
            Err(code) => return LeaveGroupResponse::default().with_error_code(code),
        };
        let mut results = Vec::new();
        let mut stores = Vec::new();
        {
            let mut loaded = match self.groups().await {
                Ok(loaded) => loaded,
                Err(code) => return LeaveGroupResponse::default().with_error_code(code),
            };
            let now = Instant::now();
            for (member, instance) in leaving {
                let code = match loaded.groups.get_mut(&name) {
                    None => UNKNOWN_MEMBER_ID,
                    Some(group) => {
                        let (code, store) = group.leave(&member, now);
                        stores.extend(store);
                        code
                    }
                };
                results.push(
                    MemberResponse::default()
                        .with_member_id(member)
                        .with_group_instance_id(instance)
                        .with_error_code(code),
                );
            }
        }
        for store in stores {
            self.store(name.clone(), store);
        }
        match version {
            0..=2 => {
                LeaveGroupResponse::default().with_error_code(results.first().map_or(NONE, |r| r.error_code))
            }
            _ => LeaveGroupResponse::default().with_members(results),
        }
    }

    /// ListGroups: every group, here on the coordinator (other brokers list none, as Kafka's
    /// brokers list only the groups they coordinate).
    pub(crate) async fn list_groups(&self, request: ListGroupsRequest, version: i16) -> ListGroupsResponse {
        let Ok(loaded) = self.groups().await else {
            return ListGroupsResponse::default();
        };
        let states: Vec<String> = request.states_filter.iter().map(|s| s.to_lowercase()).collect();
        let mut groups: Vec<ListedGroup> = loaded
            .groups
            .iter()
            .filter(|(_, group)| states.is_empty() || states.contains(&group.state().name().to_lowercase()))
            .filter(|_| {
                request.types_filter.is_empty()
                    || request.types_filter.iter().any(|t| t.eq_ignore_ascii_case("classic"))
            })
            .map(|(name, group)| {
                let listed = ListedGroup::default()
                    .with_group_id(GroupId(text(name)))
                    .with_protocol_type(text(group.protocol_type().unwrap_or("consumer")));
                let listed =
                    if version >= 4 { listed.with_group_state(text(group.state().name())) } else { listed };
                if version >= 5 { listed.with_group_type(text("classic")) } else { listed }
            })
            .collect();
        groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
        ListGroupsResponse::default().with_groups(groups)
    }

    /// DescribeGroups: state, protocol and members of each group (unknown groups are "Dead").
    pub(crate) async fn describe_groups(
        &self,
        request: DescribeGroupsRequest,
        version: i16,
    ) -> DescribeGroupsResponse {
        let loaded = self.groups().await;
        // Each group once: repeating one must not multiply its member list in the answer.
        let mut asked = std::collections::BTreeSet::new();
        let groups = request
            .groups
            .into_iter()
            .filter(|id| asked.insert(id.0.clone()))
            .map(|id| {
                let described = DescribedGroup::default().with_group_id(id.clone());
                let loaded = match &loaded {
                    Ok(loaded) => loaded,
                    Err(code) => return described.with_error_code(*code),
                };
                let Some(group) = group_name(&id).ok().and_then(|name| loaded.groups.get(&name)) else {
                    return described.with_group_state(text("Dead"));
                };
                let members = match group.state() {
                    GroupState::Empty => Vec::new(),
                    _ => group
                        .describe_members()
                        .into_iter()
                        .map(|(member, instance, client, host, metadata, assignment)| {
                            DescribedGroupMember::default()
                                .with_member_id(text(&member))
                                .with_group_instance_id(instance.filter(|_| version >= 4).map(|i| text(&i)))
                                .with_client_id(text(&client))
                                .with_client_host(text(&host))
                                .with_member_metadata(metadata)
                                .with_member_assignment(assignment)
                        })
                        .collect(),
                };
                described
                    .with_group_state(text(group.state().name()))
                    .with_protocol_type(text(group.protocol_type().unwrap_or_default()))
                    .with_protocol_data(text(group.protocol().unwrap_or_default()))
                    .with_members(members)
            })
            .collect();
        DescribeGroupsResponse::default().with_groups(groups)
    }
}
