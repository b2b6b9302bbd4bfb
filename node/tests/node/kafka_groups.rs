//! Kafka consumer groups on three nodes, over the wire with the `kafka-protocol` crate's client
//! codecs: the coordinator is the global group's leader; two members join, split the partitions,
//! rebalance when one leaves; offsets are committed and fetched; bad requests get Kafka's codes;
//! and after the coordinator is killed (SIGKILL), the next one serves the same group, generation
//! and offsets. kcat's balanced consumer (librdkafka) consumes as a group and resumes from its
//! committed offsets.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use crate::kafka::{kcat, kcat_missing, request};
use crate::support::{call, eventually, start_with};

const GROUP: &str = "shop";
const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OFFSET_METADATA_TOO_LARGE: i16 = 12;
const NOT_COORDINATOR: i16 = 16;
const ILLEGAL_GENERATION: i16 = 22;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const INVALID_GROUP_ID: i16 = 24;
const UNKNOWN_MEMBER_ID: i16 = 25;
const INVALID_SESSION_TIMEOUT: i16 = 26;
const INVALID_REQUEST: i16 = 42;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn group(name: &str) -> GroupId {
    GroupId(text(name))
}

fn find_coordinator(broker: &str) -> FindCoordinatorResponse {
    let body = FindCoordinatorRequest::default().with_key(text(GROUP));
    request(broker, ApiKey::FindCoordinator, 3, &body)
}

/// JoinGroup v5 (`session_ms` session timeout, 5 s rebalance timeout, protocol "range").
fn join_as(
    broker: &str,
    name: &str,
    member: &str,
    protocol_type: &str,
    session_ms: i32,
) -> JoinGroupResponse {
    let protocol = JoinGroupRequestProtocol::default()
        .with_name(text("range"))
        .with_metadata(Bytes::from(member.to_owned()));
    let body = JoinGroupRequest::default()
        .with_group_id(group(name))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(5_000)
        .with_member_id(text(member))
        .with_protocol_type(text(protocol_type))
        .with_protocols(vec![protocol]);
    request(broker, ApiKey::JoinGroup, 5, &body)
}

fn join(broker: &str, member: &str) -> JoinGroupResponse {
    join_as(broker, GROUP, member, "consumer", 30_000)
}

/// A new member's id: the first join hands it out (JoinGroup v4+).
fn new_member(broker: &str) -> String {
    let first = join(broker, "");
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED);
    assert!(!first.member_id.is_empty());
    first.member_id.to_string()
}

fn sync(broker: &str, generation: i32, member: &str, assignments: &[(&str, &str)]) -> SyncGroupResponse {
    let assignments = assignments
        .iter()
        .map(|(m, a)| {
            SyncGroupRequestAssignment::default()
                .with_member_id(text(m))
                .with_assignment(Bytes::from(a.to_string()))
        })
        .collect();
    let body = SyncGroupRequest::default()
        .with_group_id(group(GROUP))
        .with_generation_id(generation)
        .with_member_id(text(member))
        .with_assignments(assignments);
    request(broker, ApiKey::SyncGroup, 3, &body)
}

fn heartbeat(broker: &str, generation: i32, member: &str) -> i16 {
    let body = HeartbeatRequest::default()
        .with_group_id(group(GROUP))
        .with_generation_id(generation)
        .with_member_id(text(member));
    let response: HeartbeatResponse = request(broker, ApiKey::Heartbeat, 3, &body);
    response.error_code
}

/// Commits `offsets` (topic, partition, offset, metadata) as `member` of `generation`; the code
/// of each partition.
fn commit(broker: &str, generation: i32, member: &str, offsets: &[(&str, i32, i64, &str)]) -> Vec<i16> {
    let topics = offsets
        .iter()
        .map(|(topic, partition, offset, metadata)| {
            let partition = OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset)
                .with_committed_metadata(Some(text(metadata)));
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(text(topic)))
                .with_partitions(vec![partition])
        })
        .collect();
    let body = OffsetCommitRequest::default()
        .with_group_id(group(GROUP))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(text(member))
        .with_topics(topics);
    let response: OffsetCommitResponse = request(broker, ApiKey::OffsetCommit, 7, &body);
    response.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code)).collect()
}

/// The committed offsets of partitions 0..4 of "orders" (OffsetFetch v7), or the group's code.
fn committed(broker: &str) -> Result<Vec<i64>, i16> {
    let topic = OffsetFetchRequestTopic::default()
        .with_name(TopicName(text("orders")))
        .with_partition_indexes(vec![0, 1, 2, 3]);
    let body = OffsetFetchRequest::default().with_group_id(group(GROUP)).with_topics(Some(vec![topic]));
    let response: OffsetFetchResponse = request(broker, ApiKey::OffsetFetch, 7, &body);
    if response.error_code != NONE {
        return Err(response.error_code);
    }
    Ok(response.topics[0].partitions.iter().map(|p| p.committed_offset).collect())
}

fn describe(broker: &str) -> DescribeGroupsResponse {
    let body = DescribeGroupsRequest::default().with_groups(vec![group(GROUP), group("nobody")]);
    request(broker, ApiKey::DescribeGroups, 4, &body)
}

/// Runs `f` on a thread of its own (a join or sync blocks until the rebalance gets there).
fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    std::thread::spawn(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_groups_rebalance_commit_offsets_and_survive_the_coordinators_death() {
    if kcat_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut net = start_with(dir.path(), 3, |config| config.to_owned()).await;
    call(&net.rpc[0], "log_create", json!({"name": "orders", "partitions": 4, "replicationFactor": 3}))
        .await
        .unwrap();

    // The coordinator is the global group's leader, whichever broker is asked.
    let health = call(&net.rpc[1], "system_health", json!({})).await.unwrap();
    let leader = health["globalLeader"].as_u64().unwrap() as usize;
    let found = find_coordinator(&net.kafka[(leader + 1) % 3]);
    assert_eq!((found.error_code, found.node_id.0 as usize), (NONE, leader));
    assert_eq!(format!("{}:{}", found.host, found.port), net.kafka[leader]);
    let coordinator = net.kafka[leader].clone();
    let other = net.kafka[(leader + 1) % 3].clone();
    assert_eq!(heartbeat(&other, 1, "x"), NOT_COORDINATOR);

    let outcome = tokio::task::spawn_blocking(move || {
        // One member: generation 1, its own leader.
        let a = new_member(&coordinator);
        let joined = join(&coordinator, &a);
        assert_eq!(
            (joined.error_code, joined.generation_id, joined.leader.to_string()),
            (NONE, 1, a.clone())
        );
        assert_eq!(joined.protocol_name.as_deref(), Some("range"));
        assert_eq!(joined.members.len(), 1);
        let synced = sync(&coordinator, 1, &a, &[(&a, "all")]);
        assert_eq!((synced.error_code, &synced.assignment[..]), (NONE, &b"all"[..]));
        assert_eq!(heartbeat(&coordinator, 1, &a), NONE);
        assert_eq!(heartbeat(&coordinator, 7, &a), ILLEGAL_GENERATION);
        assert_eq!(heartbeat(&coordinator, 1, "stranger"), UNKNOWN_MEMBER_ID);

        // Offsets: stored per partition; unknown partitions and oversized metadata refused.
        let big = "m".repeat(5000);
        let codes = commit(
            &coordinator,
            1,
            &a,
            &[("orders", 0, 42, "m"), ("orders", 9, 1, ""), ("nope", 0, 1, ""), ("orders", 1, 7, &big)],
        );
        assert_eq!(
            codes,
            [NONE, UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_OR_PARTITION, OFFSET_METADATA_TOO_LARGE]
        );
        assert_eq!(commit(&coordinator, 5, &a, &[("orders", 1, 7, "")]), [ILLEGAL_GENERATION]);
        assert_eq!(committed(&coordinator), Ok(vec![42, -1, -1, -1]));

        // A second member: the first hears of the rebalance in its heartbeat and rejoins; the
        // leader gets both members and hands out the assignment.
        let b = new_member(&coordinator);
        let b_joins = spawn({
            let (coordinator, b) = (coordinator.clone(), b.clone());
            move || join(&coordinator, &b)
        });
        let started = std::time::Instant::now();
        while heartbeat(&coordinator, 1, &a) != REBALANCE_IN_PROGRESS {
            assert!(started.elapsed() < Duration::from_secs(60), "no rebalance");
            std::thread::sleep(Duration::from_millis(50));
        }
        let a_joined = join(&coordinator, &a);
        let b_joined = b_joins.join().unwrap();
        assert_eq!((a_joined.error_code, a_joined.generation_id), (NONE, 2));
        assert_eq!((b_joined.error_code, b_joined.generation_id), (NONE, 2));
        assert_eq!(a_joined.leader.to_string(), a, "the leader stays the leader");
        assert_eq!((a_joined.members.len(), b_joined.members.len()), (2, 0));
        let b_syncs = spawn({
            let (coordinator, b) = (coordinator.clone(), b.clone());
            move || sync(&coordinator, 2, &b, &[])
        });
        let a_synced = sync(&coordinator, 2, &a, &[(&a, "p0,p1"), (&b, "p2,p3")]);
        let b_synced = b_syncs.join().unwrap();
        assert_eq!((a_synced.error_code, &a_synced.assignment[..]), (NONE, &b"p0,p1"[..]));
        assert_eq!((b_synced.error_code, &b_synced.assignment[..]), (NONE, &b"p2,p3"[..]));

        let described = describe(&coordinator);
        let shop = &described.groups[0];
        assert_eq!(
            (shop.error_code, shop.group_state.as_str(), shop.protocol_data.as_str()),
            (NONE, "Stable", "range")
        );
        assert_eq!(shop.members.len(), 2);
        assert!(
            shop.members
                .iter()
                .all(|m| m.client_host.as_str() == "127.0.0.1" && m.client_id.as_str() == "pyralog-test")
        );
        assert_eq!(described.groups[1].group_state.as_str(), "Dead", "an unknown group");
        let listed: ListGroupsResponse =
            request(&coordinator, ApiKey::ListGroups, 4, &ListGroupsRequest::default());
        let states: Vec<(String, String)> =
            listed.groups.iter().map(|g| (g.group_id.0.to_string(), g.group_state.to_string())).collect();
        assert_eq!(states, [(GROUP.to_owned(), "Stable".to_owned())]);

        // Requests Kafka refuses, refused with its codes.
        assert_eq!(join_as(&coordinator, GROUP, "", "consumer", 100).error_code, INVALID_SESSION_TIMEOUT);
        assert_eq!(join_as(&coordinator, "", "", "consumer", 30_000).error_code, INVALID_GROUP_ID);
        assert_eq!(
            join_as(&coordinator, GROUP, "", "connect", 30_000).error_code,
            INCONSISTENT_GROUP_PROTOCOL
        );
        assert_eq!(sync(&coordinator, 2, "stranger", &[]).error_code, UNKNOWN_MEMBER_ID);
        // A member whose subscription metadata passes the bound (64 KiB), and a refused join of a
        // new group name, which leaves no group behind.
        let protocol = JoinGroupRequestProtocol::default()
            .with_name(text("range"))
            .with_metadata(Bytes::from(vec![0u8; 70_000]));
        let body = JoinGroupRequest::default()
            .with_group_id(group("other"))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(5_000)
            .with_protocol_type(text("consumer"))
            .with_protocols(vec![protocol]);
        let oversized: JoinGroupResponse = request(&coordinator, ApiKey::JoinGroup, 5, &body);
        assert_eq!(oversized.error_code, INVALID_REQUEST);
        let listed: ListGroupsResponse =
            request(&coordinator, ApiKey::ListGroups, 4, &ListGroupsRequest::default());
        assert_eq!(listed.groups.len(), 1, "the refused join of \"other\" left no group");

        // The second member leaves: the first rejoins alone in generation 3.
        let leave = LeaveGroupRequest::default()
            .with_group_id(group(GROUP))
            .with_members(vec![MemberIdentity::default().with_member_id(text(&b))]);
        let left: LeaveGroupResponse = request(&coordinator, ApiKey::LeaveGroup, 3, &leave);
        assert_eq!((left.error_code, left.members[0].error_code), (NONE, NONE));
        assert_eq!(heartbeat(&coordinator, 2, &a), REBALANCE_IN_PROGRESS);
        let alone = join(&coordinator, &a);
        assert_eq!((alone.error_code, alone.generation_id, alone.members.len()), (NONE, 3, 1));
        assert_eq!(sync(&coordinator, 3, &a, &[(&a, "all")]).error_code, NONE);
        assert_eq!(commit(&coordinator, 3, &a, &[("orders", 0, 43, ""), ("orders", 3, 9, "")]), [NONE, NONE]);
        a
    });
    let a = outcome.await.unwrap();

    // The coordinator dies; the next global leader coordinates the same group: the member keeps
    // its generation, the offsets are there.
    net.children[leader].kill().unwrap();
    net.children[leader].wait().unwrap();
    let survivor = net.kafka[(leader + 1) % 3].clone();
    let next = eventually("another coordinator", async || {
        let survivor = survivor.clone();
        let found = tokio::task::spawn_blocking(move || find_coordinator(&survivor)).await.ok()?;
        (found.error_code == NONE && found.node_id.0 as usize != leader).then_some(found.node_id.0 as usize)
    })
    .await;
    let coordinator = net.kafka[next].clone();
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        loop {
            match committed(&coordinator) {
                Ok(offsets) => {
                    assert_eq!(offsets, [43, -1, -1, 9]);
                    break;
                }
                Err(code) => {
                    assert!(started.elapsed() < Duration::from_secs(60), "offsets unreadable: {code}")
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(heartbeat(&coordinator, 3, &a), NONE, "the member kept its generation");
        let described = describe(&coordinator);
        assert_eq!(described.groups[0].group_state.as_str(), "Stable");
        assert_eq!(described.groups[0].members[0].member_id.as_str(), a);
        assert_eq!(&described.groups[0].members[0].member_assignment[..], b"all");
        // OffsetFetch v8 (several groups per request) reads the same.
        let topics = OffsetFetchRequestTopics::default()
            .with_name(TopicName(text("orders")))
            .with_partition_indexes(vec![0]);
        let body = OffsetFetchRequest::default().with_groups(vec![
            OffsetFetchRequestGroup::default().with_group_id(group(GROUP)).with_topics(Some(vec![topics])),
        ]);
        let fetched: OffsetFetchResponse = request(&coordinator, ApiKey::OffsetFetch, 8, &body);
        assert_eq!(fetched.groups[0].topics[0].partitions[0].committed_offset, 43);
    })
    .await
    .unwrap();
}

/// kcat's balanced consumer (`-G`, librdkafka's group consumer) reads every record, commits its
/// offsets, and a second run of the same group starts where the first stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_consumes_as_a_group_and_resumes_from_committed_offsets() {
    if kcat_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let net = start_with(dir.path(), 1, |config| config.to_owned()).await;
    let broker = net.kafka[0].clone();
    call(&net.rpc[0], "log_create", json!({"name": "feed", "partitions": 2, "replicationFactor": 1}))
        .await
        .unwrap();
    {
        let broker = broker.clone();
        eventually("kcat sees both partitions' leaders", async move || {
            let out = kcat(&["-L", "-J", "-b", &broker, "-t", "feed"], "")?;
            let metadata: serde_json::Value = serde_json::from_str(&out).ok()?;
            let partitions = metadata["topics"][0]["partitions"].as_array()?.clone();
            (partitions.len() == 2 && partitions.iter().all(|p| p["leader"].as_i64() >= Some(0)))
                .then_some(())
        })
        .await;
    }
    let produce = |range: std::ops::Range<u32>| {
        let input: String = range.map(|i| format!("k{i}:v{i}\n")).collect();
        kcat(&["-P", "-b", &broker, "-t", "feed", "-K", ":"], &input).expect("kcat produces");
    };
    produce(0..6);
    let mut expected: Vec<String> = (0..6).map(|i| format!("v{i}")).collect();
    expected.sort();
    assert_eq!(group_consume(broker.clone()).await, expected);
    produce(6..9);
    assert_eq!(
        group_consume(broker).await,
        ["v6", "v7", "v8"],
        "the second run starts at the committed offsets"
    );
}

/// The values kcat's group consumer "readers" reads until the end of every partition, sorted.
async fn group_consume(broker: String) -> Vec<String> {
    tokio::task::spawn_blocking(move || {
        let args = [
            "-b",
            &broker,
            "-G",
            "readers",
            "-e",
            "-q",
            "-f",
            "%s\n",
            "-X",
            "auto.offset.reset=earliest",
            "feed",
        ];
        let out = kcat(&args, "").expect("kcat consumes as a group");
        let mut values: Vec<String> = out.lines().map(str::to_owned).collect();
        values.sort();
        values
    })
    .await
    .unwrap()
}
