//! One consumer group as its coordinator runs it: Kafka's classic rebalance protocol (Empty,
//! PreparingRebalance, CompletingRebalance, Stable), sans I/O. Every step takes the time from its
//! caller, answers at once or through a channel the caller awaits, and returns the generations to
//! store through the global group; the coordinator does the I/O and ticks the timers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pyralog_cluster::raft::{MAX_GROUP_MEMBERS, MAX_STORED_GROUP_BYTES, StoredGroup, StoredGroupMember};
use tokio::sync::oneshot;

use crate::kafka::codes::{
    GROUP_MAX_SIZE_REACHED, ILLEGAL_GENERATION, INCONSISTENT_GROUP_PROTOCOL, INVALID_REQUEST,
    MEMBER_ID_REQUIRED, NONE, REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID,
};

/// The most protocol metadata one member may bring (a consumer's subscriptions are a few KiB).
pub(crate) const MAX_MEMBER_METADATA_BYTES: usize = 64 << 10;
/// The most metadata, and separately the most assignment bytes, one group holds: together they
/// stay within what the global group stores for it.
const MAX_GROUP_PAYLOAD_BYTES: usize = MAX_STORED_GROUP_BYTES / 2;

/// Where a group is in its rebalance cycle (Kafka's names, shown by DescribeGroups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupState {
    /// No members.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
}

impl GroupState {
    /// Kafka's name of the state.
    pub(crate) fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

/// A JoinGroup request, decoded.
#[derive(Debug, Clone)]
pub(crate) struct JoinRequest {
    /// The member's id, empty for a new member.
    pub(crate) member_id: String,
    /// The id handed to a new member (used when `member_id` is empty).
    pub(crate) fresh_member_id: String,
    /// A new member must first learn its id (JoinGroup v4+: MEMBER_ID_REQUIRED).
    pub(crate) require_known_member: bool,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) session_timeout: Duration,
    pub(crate) rebalance_timeout: Duration,
    pub(crate) protocol_type: String,
    /// Protocols the member supports, preferred first, with its metadata for each.
    pub(crate) protocols: Vec<(String, Bytes)>,
}

/// A JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct JoinAnswer {
    pub(crate) error: i16,
    pub(crate) generation: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol: Option<String>,
    pub(crate) leader: String,
    pub(crate) member_id: String,
    /// For the leader only: every member, its instance id and its metadata.
    pub(crate) members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinAnswer {
    /// A refusal with Kafka's code `error` (generation -1).
    pub(crate) fn error(error: i16, member_id: &str) -> Self {
        JoinAnswer { error, generation: -1, member_id: member_id.to_owned(), ..Default::default() }
    }
}

/// A SyncGroup answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SyncAnswer {
    pub(crate) error: i16,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol: Option<String>,
    pub(crate) assignment: Bytes,
}

impl SyncAnswer {
    /// A refusal with Kafka's code `error`.
    pub(crate) fn error(error: i16) -> Self {
        SyncAnswer { error, ..Default::default() }
    }
}

/// An answer now, or one the caller awaits.
#[derive(Debug)]
pub(crate) enum Reply<T> {
    /// Answered.
    Now(T),
    /// Answered when the rebalance gets there (a dropped sender: the coordinator moved).
    Later(oneshot::Receiver<T>),
}

/// A generation the coordinator must store through the global group; the result goes back to
/// [`Group::stored`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Store {
    pub(crate) generation: i32,
    pub(crate) group: StoredGroup,
}

#[derive(Debug)]
struct Member {
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    last_heartbeat: Instant,
    awaiting_join: Option<oneshot::Sender<JoinAnswer>>,
    awaiting_sync: Option<oneshot::Sender<SyncAnswer>>,
}

impl Member {
    fn metadata(&self, protocol: Option<&str>) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| Some(name.as_str()) == protocol)
            .map_or_else(Bytes::new, |p| p.1.clone())
    }
}

/// A consumer group on its coordinator.
#[derive(Debug)]
pub(crate) struct Group {
    state: GroupState,
    protocol_type: Option<String>,
    protocol: Option<String>,
    generation: i32,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED, until they join or expire.
    pending: BTreeMap<String, Instant>,
    rebalance_deadline: Option<Instant>,
}

impl Group {
    /// A group nobody has joined.
    pub(crate) fn empty() -> Self {
        Group {
            state: GroupState::Empty,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            pending: BTreeMap::new(),
            rebalance_deadline: None,
        }
    }

    /// The group as stored by an earlier coordinator: its members keep their generation and
    /// assignments, with fresh session timers (as a Kafka coordinator loads a group).
    pub(crate) fn from_stored(stored: StoredGroup, now: Instant) -> Self {
        let members: BTreeMap<String, Member> = stored
            .members
            .into_iter()
            .map(|m| {
                let protocol = stored.protocol.clone().unwrap_or_default();
                let member = Member {
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout: Duration::from_millis(m.session_timeout_ms.max(0) as u64),
                    rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64),
                    protocols: vec![(protocol, Bytes::from(m.subscription))],
                    assignment: Bytes::from(m.assignment),
                    last_heartbeat: now,
                    awaiting_join: None,
                    awaiting_sync: None,
                };
                (m.member_id, member)
            })
            .collect();
        Group {
            state: if members.is_empty() { GroupState::Empty } else { GroupState::Stable },
            protocol_type: Some(stored.protocol_type).filter(|t| !t.is_empty()),
            protocol: stored.protocol,
            generation: stored.generation,
            leader: stored.leader,
            members,
            pending: BTreeMap::new(),
            rebalance_deadline: None,
        }
    }

    /// Nobody joined it and it never completed a generation: nothing to keep in memory.
    pub(crate) fn is_idle(&self) -> bool {
        self.state == GroupState::Empty
            && self.members.is_empty()
            && self.pending.is_empty()
            && self.generation == 0
    }

    pub(crate) fn state(&self) -> GroupState {
        self.state
    }

    pub(crate) fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub(crate) fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The members as DescribeGroups shows them: id, instance id, client id, host, metadata of
    /// the chosen protocol, assignment.
    pub(crate) fn describe_members(&self) -> Vec<(String, Option<String>, String, String, Bytes, Bytes)> {
        self.members
            .iter()
            .map(|(id, m)| {
                (
                    id.clone(),
                    m.group_instance_id.clone(),
                    m.client_id.clone(),
                    m.client_host.clone(),
                    m.metadata(self.protocol.as_deref()),
                    m.assignment.clone(),
                )
            })
            .collect()
    }

    /// JoinGroup.
    pub(crate) fn join(&mut self, request: JoinRequest, now: Instant) -> (Reply<JoinAnswer>, Option<Store>) {
        let brought: usize =
            request.protocols.iter().map(|(name, metadata)| name.len() + metadata.len()).sum();
        if brought > MAX_MEMBER_METADATA_BYTES {
            return (Reply::Now(JoinAnswer::error(INVALID_REQUEST, &request.member_id)), None);
        }
        let held: usize = self
            .members
            .iter()
            .filter(|(id, _)| **id != request.member_id)
            .flat_map(|(_, m)| m.protocols.iter().map(|(name, metadata)| name.len() + metadata.len()))
            .sum();
        if held + brought > MAX_GROUP_PAYLOAD_BYTES {
            return (Reply::Now(JoinAnswer::error(GROUP_MAX_SIZE_REACHED, &request.member_id)), None);
        }
        if !self.protocols_fit(&request) {
            return (Reply::Now(JoinAnswer::error(INCONSISTENT_GROUP_PROTOCOL, &request.member_id)), None);
        }
        let member_id = if request.member_id.is_empty() {
            if self.members.len() + self.pending.len() >= MAX_GROUP_MEMBERS {
                return (Reply::Now(JoinAnswer::error(GROUP_MAX_SIZE_REACHED, "")), None);
            }
            if request.require_known_member {
                // KIP-394: the id is handed out first, so a retried join cannot add a second
                // member for one consumer.
                self.pending.insert(request.fresh_member_id.clone(), now + request.session_timeout);
                return (Reply::Now(JoinAnswer::error(MEMBER_ID_REQUIRED, &request.fresh_member_id)), None);
            }
            request.fresh_member_id.clone()
        } else if self.pending.remove(&request.member_id).is_some() {
            request.member_id.clone()
        } else if self.members.contains_key(&request.member_id) {
            return self.rejoin(request, now);
        } else {
            return (Reply::Now(JoinAnswer::error(UNKNOWN_MEMBER_ID, &request.member_id)), None);
        };
        let (sender, receiver) = oneshot::channel();
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        self.members.insert(
            member_id,
            Member {
                group_instance_id: request.group_instance_id,
                client_id: request.client_id,
                client_host: request.client_host,
                session_timeout: request.session_timeout,
                rebalance_timeout: request.rebalance_timeout,
                protocols: request.protocols,
                assignment: Bytes::new(),
                last_heartbeat: now,
                awaiting_join: Some(sender),
                awaiting_sync: None,
            },
        );
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now);
        }
        (Reply::Later(receiver), self.complete_join_if_ready(now))
    }

    /// A known member joins again: it gets the current generation back unless something changed.
    fn rejoin(&mut self, request: JoinRequest, now: Instant) -> (Reply<JoinAnswer>, Option<Store>) {
        let id = request.member_id.clone();
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        let member = self.members.get_mut(&id).expect("checked by the caller");
        let unchanged = member.protocols == request.protocols;
        member.protocols = request.protocols;
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = request.rebalance_timeout;
        member.last_heartbeat = now;
        let current = match self.state {
            GroupState::CompletingRebalance => unchanged,
            GroupState::Stable => unchanged && !is_leader,
            GroupState::PreparingRebalance | GroupState::Empty => false,
        };
        if current {
            return (Reply::Now(self.join_answer(&id)), None);
        }
        let (sender, receiver) = oneshot::channel();
        member.awaiting_join = Some(sender);
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now);
        }
        (Reply::Later(receiver), self.complete_join_if_ready(now))
    }

    /// The member's protocol type is the group's, and it shares a protocol with every member.
    fn protocols_fit(&self, request: &JoinRequest) -> bool {
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(request.protocol_type.as_str()) {
            return false;
        }
        request.protocols.iter().any(|(name, _)| {
            self.members
                .iter()
                .filter(|(id, _)| **id != request.member_id)
                .all(|(_, m)| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    fn prepare_rebalance(&mut self, now: Instant) {
        if self.state == GroupState::CompletingRebalance {
            for member in self.members.values_mut() {
                if let Some(waiter) = member.awaiting_sync.take() {
                    let _ = waiter.send(SyncAnswer::error(REBALANCE_IN_PROGRESS));
                }
            }
        }
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
        }
        let wait = self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or_default();
        self.rebalance_deadline = Some(now + wait);
        self.state = GroupState::PreparingRebalance;
    }

    fn complete_join_if_ready(&mut self, now: Instant) -> Option<Store> {
        let ready = self.state == GroupState::PreparingRebalance
            && self.members.values().all(|m| m.awaiting_join.is_some());
        ready.then(|| self.complete_join(now)).flatten()
    }

    /// Ends the join phase: members that did not rejoin are dropped, the generation advances and
    /// every waiting member hears of it (the leader with the member list).
    fn complete_join(&mut self, now: Instant) -> Option<Store> {
        self.members.retain(|_, m| m.awaiting_join.is_some());
        self.generation = self.generation.wrapping_add(1).max(1);
        self.rebalance_deadline = None;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.leader = None;
            return Some(self.store());
        }
        self.protocol = self.vote_protocol();
        if !self.leader.as_ref().is_some_and(|l| self.members.contains_key(l)) {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = GroupState::CompletingRebalance;
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let answer = self.join_answer(&id);
            let member = self.members.get_mut(&id).expect("listed above");
            member.last_heartbeat = now;
            if let Some(waiter) = member.awaiting_join.take() {
                let _ = waiter.send(answer);
            }
        }
        None
    }

    /// The protocol every member supports that most members prefer (ties: by name).
    fn vote_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| self.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == name)))
            .collect();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member.protocols.iter().find(|(n, _)| candidates.contains(&n.as_str())) {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let most = votes.values().copied().max()?;
        votes.into_iter().find(|(_, count)| *count == most).map(|(name, _)| name.to_owned())
    }

    fn join_answer(&self, member_id: &str) -> JoinAnswer {
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .iter()
                .map(|(id, m)| {
                    (id.clone(), m.group_instance_id.clone(), m.metadata(self.protocol.as_deref()))
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinAnswer {
            error: NONE,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader,
            member_id: member_id.to_owned(),
            members,
        }
    }

    /// SyncGroup: the leader brings the assignment, which is stored before anyone gets theirs.
    pub(crate) fn sync(
        &mut self,
        generation: i32,
        member_id: &str,
        protocol: (Option<&str>, Option<&str>),
        assignments: Vec<(String, Bytes)>,
    ) -> (Reply<SyncAnswer>, Option<Store>) {
        let Some(member) = self.members.get_mut(member_id) else {
            return (Reply::Now(SyncAnswer::error(UNKNOWN_MEMBER_ID)), None);
        };
        if generation != self.generation {
            return (Reply::Now(SyncAnswer::error(ILLEGAL_GENERATION)), None);
        }
        let (protocol_type, protocol_name) = protocol;
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|p| Some(p) != self.protocol.as_deref())
        {
            return (Reply::Now(SyncAnswer::error(INCONSISTENT_GROUP_PROTOCOL)), None);
        }
        match self.state {
            GroupState::Empty => (Reply::Now(SyncAnswer::error(UNKNOWN_MEMBER_ID)), None),
            GroupState::PreparingRebalance => (Reply::Now(SyncAnswer::error(REBALANCE_IN_PROGRESS)), None),
            GroupState::Stable => {
                let answer = self.sync_answer(member_id);
                (Reply::Now(answer), None)
            }
            GroupState::CompletingRebalance => {
                let (sender, receiver) = oneshot::channel();
                member.awaiting_sync = Some(sender);
                if self.leader.as_deref() != Some(member_id) {
                    return (Reply::Later(receiver), None);
                }
                if assignments.iter().map(|(_, a)| a.len()).sum::<usize>() > MAX_GROUP_PAYLOAD_BYTES {
                    member.awaiting_sync = None;
                    return (Reply::Now(SyncAnswer::error(INVALID_REQUEST)), None);
                }
                let mut assignments: BTreeMap<String, Bytes> = assignments.into_iter().collect();
                for (id, member) in &mut self.members {
                    member.assignment = assignments.remove(id).unwrap_or_default();
                }
                (Reply::Later(receiver), Some(self.store()))
            }
        }
    }

    fn sync_answer(&self, member_id: &str) -> SyncAnswer {
        SyncAnswer {
            error: NONE,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            assignment: self.members.get(member_id).map(|m| m.assignment.clone()).unwrap_or_default(),
        }
    }

    /// What storing `store` came to: the rebalance it belongs to completes, or every waiting
    /// member hears `error` and the group rebalances again.
    pub(crate) fn stored(&mut self, generation: i32, outcome: Result<(), i16>, now: Instant) {
        if self.state != GroupState::CompletingRebalance || self.generation != generation {
            return;
        }
        match outcome {
            Ok(()) => {
                self.state = GroupState::Stable;
                let ids: Vec<String> = self.members.keys().cloned().collect();
                for id in ids {
                    let answer = self.sync_answer(&id);
                    if let Some(waiter) = self.members.get_mut(&id).and_then(|m| m.awaiting_sync.take()) {
                        let _ = waiter.send(answer);
                    }
                }
            }
            Err(error) => {
                for member in self.members.values_mut() {
                    if let Some(waiter) = member.awaiting_sync.take() {
                        let _ = waiter.send(SyncAnswer::error(error));
                    }
                }
                self.prepare_rebalance(now);
            }
        }
    }

    fn store(&self) -> Store {
        let members = self
            .members
            .iter()
            .map(|(id, m)| StoredGroupMember {
                member_id: id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout_ms: m.session_timeout.as_millis().min(i32::MAX as u128) as i32,
                rebalance_timeout_ms: m.rebalance_timeout.as_millis().min(i32::MAX as u128) as i32,
                subscription: m.metadata(self.protocol.as_deref()).to_vec(),
                assignment: m.assignment.to_vec(),
            })
            .collect();
        Store {
            generation: self.generation,
            group: StoredGroup {
                protocol_type: self.protocol_type.clone().unwrap_or_default(),
                protocol: self.protocol.clone(),
                generation: self.generation,
                leader: self.leader.clone(),
                members,
            },
        }
    }

    /// Heartbeat: keeps the member's session, and tells it when to rejoin.
    pub(crate) fn heartbeat(&mut self, generation: i32, member_id: &str, now: Instant) -> i16 {
        let Some(member) = self.members.get_mut(member_id) else {
            return UNKNOWN_MEMBER_ID;
        };
        if generation != self.generation {
            return ILLEGAL_GENERATION;
        }
        member.last_heartbeat = now;
        match self.state {
            GroupState::PreparingRebalance => REBALANCE_IN_PROGRESS,
            GroupState::Empty => UNKNOWN_MEMBER_ID,
            GroupState::CompletingRebalance | GroupState::Stable => NONE,
        }
    }

    /// LeaveGroup of one member.
    pub(crate) fn leave(&mut self, member_id: &str, now: Instant) -> (i16, Option<Store>) {
        if self.pending.remove(member_id).is_some() {
            return (NONE, None);
        }
        if !self.members.contains_key(member_id) {
            return (UNKNOWN_MEMBER_ID, None);
        }
        (NONE, self.remove_member(member_id, now))
    }

    fn remove_member(&mut self, member_id: &str, now: Instant) -> Option<Store> {
        if let Some(member) = self.members.remove(member_id) {
            if let Some(waiter) = member.awaiting_join {
                let _ = waiter.send(JoinAnswer::error(UNKNOWN_MEMBER_ID, member_id));
            }
            if let Some(waiter) = member.awaiting_sync {
                let _ = waiter.send(SyncAnswer::error(UNKNOWN_MEMBER_ID));
            }
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now),
            GroupState::PreparingRebalance | GroupState::Empty => {}
        }
        self.complete_join_if_ready(now)
    }

    /// Whether an offset commit by this member and generation is allowed (`Err`: Kafka's code).
    /// Generation -1 with no member id is an admin's commit, allowed while the group is empty.
    pub(crate) fn check_commit(&mut self, generation: i32, member_id: &str, now: Instant) -> Result<(), i16> {
        if generation < 0 && member_id.is_empty() && self.state == GroupState::Empty {
            return Ok(());
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(REBALANCE_IN_PROGRESS);
        }
        let Some(member) = self.members.get_mut(member_id) else {
            return Err(UNKNOWN_MEMBER_ID);
        };
        if generation != self.generation {
            return Err(ILLEGAL_GENERATION);
        }
        member.last_heartbeat = now;
        Ok(())
    }

    /// Runs the timers: expired member ids and sessions, and a join phase past its deadline.
    pub(crate) fn tick(&mut self, now: Instant) -> Option<Store> {
        self.pending.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| {
                m.awaiting_join.is_none()
                    && m.awaiting_sync.is_none()
                    && m.last_heartbeat + m.session_timeout <= now
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut store = None;
        for id in expired {
            tracing::info!(member = %id, "kafka group member's session expired");
            store = self.remove_member(&id, now).or(store);
        }
        if self.state == GroupState::PreparingRebalance && self.rebalance_deadline.is_some_and(|d| d <= now) {
            store = self.complete_join(now).or(store);
        }
        store
    }
}
