//! Kafka's wire protocol, spoken by a client nobody here wrote: `kcat` (librdkafka) lists the
//! topics, produces keyed records with headers, and consumes them back from a one-node cluster
//! with `[kafka] listen`; the records are the same ones JSON-RPC reads and the light client
//! verifies. Frames the broker cannot
//! read close the connection and change nothing. Skips, saying why, where `kcat` is missing.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse, ProduceRequest,
    ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use serde_json::json;

use crate::support::{Testnet, call, eventually, hex, start_with};

pub(crate) fn kcat_missing() -> bool {
    if Command::new("kcat").arg("-V").output().is_ok_and(|o| o.status.success()) {
        return false;
    }
    println!("SKIPPED: kcat is not installed (the Makefile installs it: make deps)");
    true
}

/// Runs `kcat` with `args` and `stdin`; its stdout, if it exited 0.
pub(crate) fn kcat(args: &[&str], stdin: &str) -> Option<String> {
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(stdin.as_bytes()).ok()?;
    let output = child.wait_with_output().ok()?;
    if !output.status.success() {
        println!("kcat {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A one-node cluster with its Kafka listener (none, saying why, without kcat).
async fn one_node() -> Option<(tempfile::TempDir, Testnet)> {
    if kcat_missing() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let net = start_with(dir.path(), 1, |config| config.to_owned()).await;
    Some((dir, net))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_produces_and_consumes_through_the_kafka_listener() {
    let Some((dir, net)) = one_node().await else { return };
    let (broker, rpc) = (net.kafka[0].clone(), &net.rpc[0]);
    call(rpc, "log_create", json!({"name": "events", "partitions": 1, "replicationFactor": 1}))
        .await
        .unwrap();

    // Metadata: the topic, with this node as the leader of its partition.
    let listing = {
        let broker = broker.clone();
        eventually("kcat sees the topic with a leader", async move || {
            let out = kcat(&["-L", "-J", "-b", &broker, "-t", "events"], "")?;
            let metadata: serde_json::Value = serde_json::from_str(&out).ok()?;
            let partition = &metadata["topics"][0]["partitions"][0];
            (partition["leader"].as_i64()? >= 0).then_some(metadata)
        })
        .await
    };
    assert_eq!(listing["topics"][0]["topic"], "events");

    // Produce five keyed records with a header, acks=all.
    let input: String = (1..=5).map(|i| format!("user-{}:event {i}\n", i % 2)).collect();
    let produced = kcat(
        &["-P", "-b", &broker, "-t", "events", "-p", "0", "-K", ":", "-H", "source=kcat", "-X", "acks=all"],
        &input,
    );
    assert!(produced.is_some(), "kcat could not produce");

    // The same records through JSON-RPC: keys, values, the header.
    let records = call(rpc, "log_read", json!({"log": "events", "partition": 0})).await.unwrap();
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 5, "{records:?}");
    for (i, record) in records.iter().enumerate() {
        let n = i + 1;
        assert_eq!(record["offset"], i as u64);
        assert_eq!(record["key"], hex(format!("user-{}", n % 2).as_bytes()));
        assert_eq!(record["value"], hex(format!("event {n}").as_bytes()));
        assert_eq!(record["headers"][0]["name"], "source");
        assert_eq!(record["headers"][0]["value"], hex(b"kcat"));
    }

    // Consumed back from the beginning: offsets, keys, values and the header.
    let consumed = kcat(
        &[
            "-C",
            "-b",
            &broker,
            "-t",
            "events",
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%o %k %s %h\n",
        ],
        "",
    )
    .expect("kcat consumes");
    let expected: String =
        (1..=5).map(|n| format!("{} user-{} event {n} source=kcat\n", n - 1, n % 2)).collect();
    assert_eq!(consumed, expected);

    // The light client verifies a record kcat wrote, end to end, against a certified checkpoint.
    eventually("a certified checkpoint of the five records", async || {
        let answer = call(rpc, "log_getCheckpoint", json!({"log": "events", "partition": 0})).await.ok()?;
        (answer["checkpoint"]["size"].as_u64()? >= 5).then_some(())
    })
    .await;
    let trust = dir.path().join("trust.json");
    let args =
        ["light", "verify-record", "--rpc", rpc, "--log", "events", "--partition", "0", "--offset", "2"];
    let out = Command::new(env!("CARGO_BIN_EXE_pyralog"))
        .args(args)
        .args(["--trust", trust.to_str().unwrap(), "--trust-on-first-use"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success() && report["verified"] == true, "{report}");
    assert_eq!(report["value"], hex(b"event 3"));
    assert_eq!(report["record"]["headers"][0]["name"], "source");

    // ListOffsets: kcat's query for the end of the partition.
    let end = kcat(&["-Q", "-b", &broker, "-t", "events:0:-1"], "").expect("kcat queries offsets");
    assert!(end.contains("offset 5"), "{end}");

    // Frames the broker cannot read close the connection and write nothing.
    for frame in [
        0x7fff_ffffu32.to_be_bytes().to_vec(), // a length past the cap: closed before allocating
        [&8u32.to_be_bytes()[..], &[0x7f, 0x7f, 0, 0, 0, 0, 0, 1]].concat(), // an unknown API key
        [&6u32.to_be_bytes()[..], &[0, 0, 0, 9, 0xff, 0xff]].concat(), // a truncated Produce
        // Metadata v0 claiming 2^31 - 1 topics: refused, not allocated for (this aborted the
        // node before third_party/kafka-protocol's patch).
        [&14u32.to_be_bytes()[..], &[0, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff]].concat(),
    ] {
        let mut stream = std::net::TcpStream::connect(&broker).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        stream.write_all(&frame).unwrap();
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer);
        assert!(read.is_ok() && answer.is_empty(), "closed without an answer: {read:?} {answer:?}");
    }
    let records = call(rpc, "log_read", json!({"log": "events", "partition": 0})).await.unwrap();
    assert_eq!(records.as_array().unwrap().len(), 5, "nothing written by refused frames");
}

/// One request over a fresh connection with the `kafka-protocol` crate's client codecs (for what
/// kcat cannot send: CreateTopics, a retried idempotent batch, a sequence gap).
pub(crate) fn request<Req, Resp>(broker: &str, api: ApiKey, version: i16, body: &Req) -> Resp
where
    Req: Encodable,
    Resp: Decodable,
{
    let mut buf = BytesMut::new();
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("pyralog-test")));
    header.encode(&mut buf, api.request_header_version(version)).unwrap();
    body.encode(&mut buf, version).unwrap();
    let mut stream = std::net::TcpStream::connect(broker).unwrap();
    // A join or sync waits for the rebalance; nothing waits longer than this.
    stream.set_read_timeout(Some(std::time::Duration::from_secs(90))).unwrap();
    stream.write_all(&(buf.len() as u32).to_be_bytes()).unwrap();
    stream.write_all(&buf).unwrap();
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).unwrap();
    let mut frame = vec![0u8; u32::from_be_bytes(length) as usize];
    stream.read_exact(&mut frame).unwrap();
    let mut frame = Bytes::from(frame);
    let header = ResponseHeader::decode(&mut frame, api.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 7);
    Resp::decode(&mut frame, version).unwrap()
}

/// A v2 record of producer `producer` (-1: none) with `sequence` (-1: none) at `offset` in its batch.
fn kafka_record(producer: i64, sequence: i32, offset: i64, value: Bytes) -> KafkaRecord {
    KafkaRecord {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: producer,
        producer_epoch: 0,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence,
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(value),
        headers: Default::default(),
    }
}

/// `records` as one v2 batch compressed with `compression`.
pub(crate) fn encode(records: &[KafkaRecord], compression: Compression) -> Bytes {
    let mut batch = BytesMut::new();
    RecordBatchEncoder::encode(&mut batch, records, &RecordEncodeOptions { version: 2, compression })
        .unwrap();
    batch.freeze()
}

/// `values` as one LZ4-compressed v2 batch of producer `producer` from sequence `first` (-1, -1:
/// no producer).
fn batch(producer: i64, first: i32, values: &[&str]) -> Bytes {
    let records: Vec<KafkaRecord> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let sequence = if first < 0 { -1 } else { first + i as i32 };
            kafka_record(producer, sequence, i as i64, Bytes::from(v.to_string()))
        })
        .collect();
    encode(&records, Compression::Lz4)
}

/// One record of 65 MiB of zeros, compressed with `compression` to a small part of that: a
/// decompression bomb.
fn bomb(compression: Compression) -> Bytes {
    encode(&[kafka_record(-1, -1, 0, Bytes::from(vec![0u8; 65 << 20]))], compression)
}

/// Produces `records` (batch bytes) to partition 0 of `topic`; the partition's answer (error
/// code, base offset).
fn produce_raw(broker: &str, topic: &str, records: Bytes) -> (i16, i64) {
    let partition = PartitionProduceData::default().with_index(0).with_records(Some(records));
    let data = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.into())))
        .with_partition_data(vec![partition]);
    let body = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![data]);
    let response: ProduceResponse = request(broker, ApiKey::Produce, 9, &body);
    let answer = &response.responses[0].partition_responses[0];
    (answer.error_code, answer.base_offset)
}

/// [`produce_raw`] of [`batch`].
fn produce_batch(broker: &str, topic: &str, producer: i64, first: i32, values: &[&str]) -> (i16, i64) {
    produce_raw(broker, topic, batch(producer, first, values))
}

/// CreateTopics makes a log (and refuses it twice); an idempotent producer's retried batch gets
/// its original offset and writes nothing twice, a sequence gap is refused with
/// OUT_OF_ORDER_SEQUENCE_NUMBER; kcat's own idempotent producer writes records that carry its
/// producer id and sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_and_idempotent_producers_never_write_twice() {
    let Some((_dir, net)) = one_node().await else { return };
    let (broker, rpc) = (net.kafka[0].clone(), &net.rpc[0]);

    let topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_static_str("orders")))
        .with_num_partitions(2)
        .with_replication_factor(-1);
    let create = CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(10_000);
    let b = broker.clone();
    let created: CreateTopicsResponse =
        tokio::task::spawn_blocking(move || request(&b, ApiKey::CreateTopics, 5, &create)).await.unwrap();
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    let logs = call(rpc, "log_list", json!({})).await.unwrap();
    let orders = logs.as_array().unwrap().iter().find(|l| l["name"] == "orders").cloned();
    assert_eq!(orders.map(|l| l["partitions"].clone()), Some(json!(2)), "{logs}");
    let again = CreateTopicsRequest::default()
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_num_partitions(3)
                .with_replication_factor(1),
        ])
        .with_timeout_ms(10_000);
    let b = broker.clone();
    let twice: CreateTopicsResponse =
        tokio::task::spawn_blocking(move || request(&b, ApiKey::CreateTopics, 5, &again)).await.unwrap();
    assert_eq!(twice.topics[0].error_code, 36, "TOPIC_ALREADY_EXISTS: {twice:?}");

    // The producer's first batch, the same batch again (a retry), then a gap.
    let b = broker.clone();
    let answers = eventually("partition 0 of orders takes writes", async move || {
        let b = b.clone();
        let first =
            tokio::task::spawn_blocking(move || produce_batch(&b, "orders", 4242, 0, &["a", "b", "c"]))
                .await
                .unwrap();
        (first.0 == 0).then_some(first)
    })
    .await;
    assert_eq!(answers, (0, 0));
    let b = broker.clone();
    let (retry, gap) = tokio::task::spawn_blocking(move || {
        (produce_batch(&b, "orders", 4242, 0, &["a", "b", "c"]), produce_batch(&b, "orders", 4242, 7, &["x"]))
    })
    .await
    .unwrap();
    assert_eq!(retry, (0, 0), "a retried batch gets its original offset");
    assert_eq!(gap.0, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER");
    // The producer bumps its epoch (librdkafka does after an unknown outcome) and starts its
    // sequences at 0 again: a new record, not a duplicate of epoch 0's first batch. An id this
    // broker never hands out (past 2^47) is refused.
    let bumped = |producer: i64, value: &str| {
        let mut record = kafka_record(producer, 0, 0, Bytes::from(value.to_owned()));
        record.producer_epoch = 1;
        encode(&[record], Compression::Lz4)
    };
    let (next_epoch, foreign) = (bumped(4242, "d"), bumped(1 << 47, "e"));
    let b = broker.clone();
    let (next_epoch, foreign) = tokio::task::spawn_blocking(move || {
        (produce_raw(&b, "orders", next_epoch), produce_raw(&b, "orders", foreign))
    })
    .await
    .unwrap();
    assert_eq!(next_epoch, (0, 3), "epoch 1's sequence 0 is written after a, b, c");
    assert_eq!(foreign.0, 59, "UNKNOWN_PRODUCER_ID");
    // A batch whose CRC does not match, and a topic that does not exist: refused, nothing written.
    let mut corrupt = batch(-1, -1, &["corrupt"]).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let b = broker.clone();
    let (crc, unknown) = tokio::task::spawn_blocking(move || {
        (produce_raw(&b, "orders", Bytes::from(corrupt)), produce_batch(&b, "no-such-topic", -1, -1, &["x"]))
    })
    .await
    .unwrap();
    assert_eq!(crc.0, 2, "CORRUPT_MESSAGE");
    assert_eq!(unknown.0, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    // Batches that inflate past the broker's bound (64 MiB), through a streaming codec and
    // through snappy's stated lengths: MESSAGE_TOO_LARGE, before they are inflated, nothing written.
    for compression in [Compression::Gzip, Compression::Snappy] {
        let b = broker.clone();
        let answer =
            tokio::task::spawn_blocking(move || produce_raw(&b, "orders", bomb(compression))).await.unwrap();
        assert_eq!(answer.0, 10, "MESSAGE_TOO_LARGE for a {compression:?} bomb");
    }
    // Refused by the bound, not after inflating (a 65 MiB record is also too large for the log).
    let log = std::fs::read_to_string(net.dir.join("node0.log")).unwrap();
    assert_eq!(log.matches("refused=TooLarge").count(), 2, "the bound refused both");
    // A batch header claiming 2^31 - 1 records (the decoder would reserve room for them):
    // refused before decoding, compressed (past the record bound) or not (past its bytes).
    for (compression, code) in [(Compression::Lz4, 10), (Compression::None, 2)] {
        let mut claim = encode(&[kafka_record(-1, -1, 0, Bytes::from_static(b"x"))], compression).to_vec();
        claim[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        let b = broker.clone();
        let answer =
            tokio::task::spawn_blocking(move || produce_raw(&b, "orders", Bytes::from(claim))).await.unwrap();
        assert_eq!(answer.0, code, "{compression:?} batch claiming 2^31 - 1 records");
    }
    let records = call(rpc, "log_read", json!({"log": "orders", "partition": 0})).await.unwrap();
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 4, "nothing written twice or past a gap: {records:?}");
    // A log with a constraint: a batch with a refused record is INVALID_RECORD (87), with the
    // contract's reason as the error message, and writes nothing.
    let constraint = pyralog_contracts::examples::wasm_of(pyralog_contracts::examples::JSON_ID.as_bytes());
    let params = json!({"name": "checked", "partitions": 1, "replicationFactor": 1,
        "constraint": crate::support::hex(&constraint.unwrap())});
    call(rpc, "log_create", params).await.unwrap();
    let b = broker.clone();
    let accepted = eventually("the checked log takes writes", async move || {
        let b = b.clone();
        let answer =
            tokio::task::spawn_blocking(move || produce_batch(&b, "checked", -1, -1, &[r#"{"id":1}"#]))
                .await
                .unwrap();
        (answer.0 == 0).then_some(answer)
    })
    .await;
    assert_eq!(accepted, (0, 0));
    let b = broker.clone();
    let refused = tokio::task::spawn_blocking(move || {
        produce_batch(&b, "checked", -1, -1, &[r#"{"id":2}"#, "not json"])
    })
    .await
    .unwrap();
    assert_eq!(refused, (87, -1), "INVALID_RECORD");
    let checked = call(rpc, "log_read", json!({"log": "checked", "partition": 0})).await.unwrap();
    assert_eq!(checked.as_array().unwrap().len(), 1, "nothing of the refused batch: {checked}");
    // A log whose access-control contract wants a signed writer: Kafka clients are anonymous,
    // so their batches are TOPIC_AUTHORIZATION_FAILED (29).
    let writer = pyralog_crypto::Keypair::generate().public();
    let acl = pyralog_contracts::examples::writer_allowlist(writer.as_bytes());
    let acl = pyralog_contracts::examples::wasm_of(acl.as_bytes()).unwrap();
    let params =
        json!({"name": "guarded", "partitions": 1, "replicationFactor": 1, "acl": crate::support::hex(&acl)});
    call(rpc, "log_create", params).await.unwrap();
    let b = broker.clone();
    let denied = eventually("the guarded log's leader", async move || {
        let b = b.clone();
        let answer =
            tokio::task::spawn_blocking(move || produce_batch(&b, "guarded", -1, -1, &["x"])).await.unwrap();
        (answer.0 != 6 && answer.0 != 5).then_some(answer)
    })
    .await;
    assert_eq!(denied, (29, -1), "TOPIC_AUTHORIZATION_FAILED");
    // Kafka's (producer id, epoch) is Pyralog's producer `id * 2^16 + epoch`.
    assert_eq!(records[2]["producer"], json!({"id": 4242u64 << 16, "seq": 2}));
    assert_eq!(records[3]["producer"], json!({"id": (4242u64 << 16) + 1, "seq": 0}));

    // kcat's idempotent producer (librdkafka: InitProducerId, then sequenced batches).
    let out = kcat(
        &["-P", "-b", &broker, "-t", "orders", "-p", "1", "-X", "enable.idempotence=true"],
        "one\ntwo\n",
    );
    assert!(out.is_some(), "kcat's idempotent producer failed");
    let records = call(rpc, "log_read", json!({"log": "orders", "partition": 1})).await.unwrap();
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[1]["producer"]["seq"], 1, "{records:?}");
    assert!(records[1]["producer"]["id"].as_u64().is_some(), "{records:?}");
}

/// Three nodes: Metadata through any of them names the partition's Raft leader as its leader and
/// lists every node as a broker; a batch sent to a follower gets NOT_LEADER_OR_FOLLOWER and
/// writes nothing; the leader takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_sent_to_a_follower_is_refused_and_metadata_names_the_leader() {
    if kcat_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let net = start_with(dir.path(), 3, |config| config.to_owned()).await;
    let rpc = &net.rpc[0];
    call(rpc, "log_create", json!({"name": "routed", "partitions": 1, "replicationFactor": 3}))
        .await
        .unwrap();
    let broker = net.kafka[1].clone();
    let metadata = eventually("kcat sees the partition's leader", async move || {
        let out = kcat(&["-L", "-J", "-b", &broker, "-t", "routed"], "")?;
        let metadata: serde_json::Value = serde_json::from_str(&out).ok()?;
        (metadata["topics"][0]["partitions"][0]["leader"].as_i64()? >= 0).then_some(metadata)
    })
    .await;
    assert_eq!(metadata["brokers"].as_array().unwrap().len(), 3, "{metadata}");
    let leader = metadata["topics"][0]["partitions"][0]["leader"].as_u64().unwrap() as usize;
    let follower = (leader + 1) % 3;
    let (to_follower, to_leader) = (net.kafka[follower].clone(), net.kafka[leader].clone());
    let (refused, taken) = tokio::task::spawn_blocking(move || {
        (
            produce_batch(&to_follower, "routed", -1, -1, &["x"]),
            produce_batch(&to_leader, "routed", -1, -1, &["y"]),
        )
    })
    .await
    .unwrap();
    assert_eq!(refused.0, 6, "NOT_LEADER_OR_FOLLOWER");
    assert_eq!(taken, (0, 0));
    let leader_rpc = net.rpc[leader].clone();
    let records = eventually("the leader's record", async || {
        let records = call(&leader_rpc, "log_read", json!({"log": "routed", "partition": 0})).await.ok()?;
        (!records.as_array()?.is_empty()).then_some(records)
    })
    .await;
    assert_eq!(records.as_array().unwrap().len(), 1, "nothing of the refused batch: {records}");
    assert_eq!(records[0]["value"], hex(b"y"));

    // Past the end: the leader, which has applied all it committed, says the offset is out of
    // range; a follower may only be behind, and says the offset is not available yet.
    let (to_follower, to_leader) = (net.kafka[follower].clone(), net.kafka[leader].clone());
    let past = tokio::task::spawn_blocking(move || {
        (
            fetch_error(&to_leader, "routed", 0),
            fetch_error(&to_leader, "routed", 5),
            fetch_error(&to_follower, "routed", 5),
        )
    })
    .await
    .unwrap();
    assert_eq!(past, (0, 1, 78), "none, OFFSET_OUT_OF_RANGE, OFFSET_NOT_AVAILABLE");
}

/// The error code of a Fetch (v4) of partition 0 of `topic` from `offset`.
fn fetch_error(broker: &str, topic: &str, offset: i64) -> i16 {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    let partition = FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(offset)
        .with_partition_max_bytes(1 << 20);
    let body = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.into())))
                .with_partitions(vec![partition]),
        ]);
    let response: FetchResponse = request(broker, ApiKey::Fetch, 4, &body);
    response.responses[0].partitions[0].error_code
}
