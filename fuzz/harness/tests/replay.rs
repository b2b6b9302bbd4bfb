//! Replays every kept input (`fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`) through
//! its target's check on the stable toolchain: what the fuzzer once found stays fixed, and the
//! seeds stay valid inputs.

use std::path::Path;

use pyralog_fuzz_harness::TARGETS;

#[test]
fn every_kept_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut replayed = 0;
    for (name, check) in TARGETS {
        for folder in ["corpus", "regressions"] {
            let dir = root.join(folder).join(name);
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries {
                let path = entry.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| check(&bytes));
                assert!(outcome.is_ok(), "{} fails {name}", path.display());
                replayed += 1;
            }
        }
    }
    println!("replayed {replayed} kept inputs over {} targets", TARGETS.len());
    assert!(replayed >= TARGETS.len(), "every target has a seed");
}

/// Random bytes, and seeds with bytes flipped, never panic (a short, fixed-seed run of what
/// `make fuzz` does for minutes).
#[test]
fn random_and_mutated_bytes_never_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (name, check) in TARGETS {
        let seeds: Vec<Vec<u8>> = std::fs::read_dir(root.join(name))
            .map(|entries| entries.map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect())
            .unwrap_or_default();
        for round in 0..2_000 {
            let mut bytes = match seeds.get(round % seeds.len().max(1)) {
                Some(seed) if round % 2 == 0 => seed.clone(),
                _ => (0..(next() % 200)).map(|_| next() as u8).collect(),
            };
            if !bytes.is_empty() {
                for _ in 0..(next() % 4) {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] ^= next() as u8;
                }
            }
            let outcome = std::panic::catch_unwind(|| check(&bytes));
            assert!(outcome.is_ok(), "{name} panicked on {bytes:02x?}");
        }
    }
}

/// Writes the transaction seeds (`cargo test --manifest-path fuzz/harness/Cargo.toml -- --ignored`):
/// a transfer and a create-validator signed by a fixed key on the chain the target checks.
#[test]
#[ignore = "writes seeds into fuzz/corpus; run by hand"]
fn write_transaction_seeds() {
    use pyralog_chain::tx::{Action, SignedTx, Tx};
    use pyralog_crypto::Keypair;
    let key = Keypair::from_secret(&[7; 32]);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/chain_tx");
    let actions = [
        ("transfer", Action::Transfer { to: Keypair::from_secret(&[8; 32]).public(), amount: 5 }),
        (
            "create-validator",
            Action::CreateValidator {
                consensus_key: key.public(),
                self_bond: 1_000,
                commission_bps: 100,
                max_commission_bps: 2_000,
                description: "seed".into(),
            },
        ),
    ];
    for (name, action) in actions {
        let tx = Tx { chain_id: "fuzz-chain".into(), sender: key.public(), nonce: 0, fee: 1, action };
        std::fs::write(dir.join(name), SignedTx::sign(tx, &key).encode()).unwrap();
    }
}

/// Writes the seeds of the peer and answer targets (`cargo test -p pyralog-fuzz-harness --
/// --ignored`): cluster transport frames (a forwarded write, a vote request, answers), overlay
/// requests and responses through the node's codec, and the JSON objects of the verifier vectors
/// (records, certificates, finality evidence) as server answers.
#[test]
#[ignore = "writes seeds into fuzz/corpus; run by hand"]
fn write_peer_and_answer_seeds() {
    use futures::executor::block_on;
    use libp2p::request_response::Codec;
    use pyralog_cluster::model::Record;
    use pyralog_cluster::raft::GroupId;
    use pyralog_cluster::transport::{RaftRequest, RaftResponse, RequestFrame, ResponseFrame, write_frame};
    use pyralog_p2p::{FrameCodec, Request, Response};

    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let write = |target: &str, name: &str, bytes: Vec<u8>| {
        std::fs::create_dir_all(corpus.join(target)).unwrap();
        std::fs::write(corpus.join(target).join(name), bytes).unwrap();
    };
    let record = Record { value: b"seed".to_vec(), timestamp_ms: 1, ..Record::default() };
    let append = RequestFrame { id: 1, group: GroupId(7), body: RaftRequest::AppendRecords(vec![record]) };
    let mut out = vec![0u8];
    block_on(write_frame(&mut out, &append)).unwrap();
    write("cluster_frame", "append-records", out);
    let unknown = ResponseFrame { id: 1, body: RaftResponse::UnknownGroup(GroupId(7)) };
    let mut out = vec![1u8];
    block_on(write_frame(&mut out, &unknown)).unwrap();
    write("cluster_frame", "unknown-group", out);

    let protocol = libp2p::StreamProtocol::new("/pyralog/fuzz/1");
    let mut codec = FrameCodec::new(64 * 1024, 64 * 1024);
    let requests = [
        ("blocks", Request::Blocks { from_height: 5, max: 10 }),
        ("query", Request::Query { path: "state".into(), data: vec![1, 2, 3] }),
        ("consensus", Request::Consensus(vec![0; 8])),
    ];
    for (name, request) in requests {
        let mut out = futures::io::Cursor::new(vec![0u8]);
        out.set_position(1);
        block_on(codec.write_request(&protocol, &mut out, request)).unwrap();
        write("p2p_frame", name, out.into_inner());
    }
    for (name, response) in [("ack", Response::Ack), ("answer", Response::Answer(vec![9; 4]))] {
        let mut out = futures::io::Cursor::new(vec![1u8]);
        out.set_position(1);
        block_on(codec.write_response(&protocol, &mut out, response)).unwrap();
        write("p2p_frame", name, out.into_inner());
    }

    let vectors: serde_json::Value = serde_json::from_slice(
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/verifier-vectors.json"))
            .unwrap(),
    )
    .unwrap();
    for (name, value) in vectors.as_object().unwrap() {
        if value.is_object() {
            write("light_answer", name, serde_json::to_vec(value).unwrap());
        }
    }
    for (i, record) in vectors["records"].as_array().unwrap().iter().enumerate() {
        write("light_answer", &format!("record-{i}"), serde_json::to_vec(record).unwrap());
    }
}

/// Writes the seeds of the Kafka targets (`cargo test -p pyralog-fuzz-harness -- --ignored`):
/// a request of every API the broker serves at its newest version (a Produce carrying an LZ4
/// batch), and one batch per codec. The `config_toml` seeds are configs `pyralog init` and
/// `pyralog testnet` wrote.
#[test]
#[ignore = "writes seeds into fuzz/corpus; run by hand"]
fn write_client_seeds() {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    use pyralog_kafka_wire::{Request, supported};

    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        std::fs::create_dir_all(corpus.join(target)).unwrap();
        std::fs::write(corpus.join(target).join(name), bytes).unwrap();
    };
    let records: Vec<Record> = (0..3)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: 5,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: i as i32,
            timestamp: 1_700_000_000_000 + i,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("value-{i}"))),
            headers: [(StrBytes::from_static_str("h"), Some(Bytes::from_static(b"1")))].into_iter().collect(),
        })
        .collect();
    let batch = |compression: Compression| {
        let mut out = BytesMut::new();
        RecordBatchEncoder::encode(&mut out, &records, &RecordEncodeOptions { version: 2, compression })
            .unwrap();
        out.freeze()
    };
    for (name, compression) in [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        write("kafka_batch", name, &batch(compression));
    }

    let topic = || TopicName(StrBytes::from_static_str("orders"));
    let produce = ProduceRequest::default().with_acks(-1).with_timeout_ms(5_000).with_topic_data(
        [TopicProduceData::default().with_name(topic()).with_partition_data(vec![
            PartitionProduceData::default().with_index(0).with_records(Some(batch(Compression::Lz4))),
        ])]
        .into_iter()
        .collect(),
    );
    let bodies =
        [
            (ApiKey::ApiVersions, RequestKind::ApiVersions(ApiVersionsRequest::default())),
            (ApiKey::Metadata, RequestKind::Metadata(MetadataRequest::default())),
            (ApiKey::Produce, RequestKind::Produce(produce)),
            (ApiKey::Fetch, RequestKind::Fetch(FetchRequest::default().with_max_wait_ms(100))),
            (ApiKey::ListOffsets, RequestKind::ListOffsets(ListOffsetsRequest::default())),
            (ApiKey::CreateTopics, RequestKind::CreateTopics(CreateTopicsRequest::default())),
            (ApiKey::InitProducerId, RequestKind::InitProducerId(InitProducerIdRequest::default())),
            (ApiKey::DescribeConfigs, RequestKind::DescribeConfigs(DescribeConfigsRequest::default())),
            (ApiKey::FindCoordinator, RequestKind::FindCoordinator(FindCoordinatorRequest::default())),
            (ApiKey::JoinGroup, RequestKind::JoinGroup(JoinGroupRequest::default())),
            (ApiKey::SyncGroup, RequestKind::SyncGroup(SyncGroupRequest::default())),
            (ApiKey::Heartbeat, RequestKind::Heartbeat(HeartbeatRequest::default())),
            (ApiKey::LeaveGroup, RequestKind::LeaveGroup(LeaveGroupRequest::default())),
            (ApiKey::OffsetCommit, RequestKind::OffsetCommit(OffsetCommitRequest::default())),
            (ApiKey::OffsetFetch, RequestKind::OffsetFetch(OffsetFetchRequest::default())),
            (ApiKey::ListGroups, RequestKind::ListGroups(ListGroupsRequest::default())),
            (ApiKey::DescribeGroups, RequestKind::DescribeGroups(DescribeGroupsRequest::default())),
            (
                ApiKey::SaslHandshake,
                RequestKind::SaslHandshake(
                    SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("OAUTHBEARER")),
                ),
            ),
            (
                ApiKey::SaslAuthenticate,
                RequestKind::SaslAuthenticate(SaslAuthenticateRequest::default().with_auth_bytes(
                    Bytes::from_static(b"n,,\x01auth=Bearer e30.e30.\x01pyralogkey=x\x01\x01"),
                )),
            ),
        ];
    for (api, body) in bodies {
        let (min, max) = supported(api).unwrap();
        for version in [min, max] {
            let header = RequestHeader::default()
                .with_request_api_key(api as i16)
                .with_request_api_version(version)
                .with_correlation_id(1)
                .with_client_id(Some(StrBytes::from_static_str("seed")));
            let request = Request { api, version, header, body: body.clone() };
            write("kafka_request", &format!("{api:?}-v{version}"), &request.encode().unwrap());
        }
    }
}

/// Inner packets from the tunnel target's peer: a TCP SYN to the listening port and to a closed
/// one, a UDP datagram, an ICMP echo, and a SYN from an address the peer does not own.
fn tunnel_seed_packets() -> Vec<(&'static str, Vec<u8>)> {
    use pyralog_p2p::tunnel::fuzzing::DatagramTarget;

    fn checksum(bytes: &[u8]) -> u16 {
        let mut sum: u32 =
            bytes.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }
    /// An IPv4 packet of `protocol` from `src` to `dst` carrying `payload` (whose checksum at
    /// `checksum_at`, when given, covers the pseudo-header).
    fn ipv4(
        src: [u8; 4],
        dst: [u8; 4],
        protocol: u8,
        mut payload: Vec<u8>,
        checksum_at: Option<usize>,
    ) -> Vec<u8> {
        if let Some(at) = checksum_at {
            let mut pseudo =
                [&src[..], &dst[..], &[0, protocol], &(payload.len() as u16).to_be_bytes()].concat();
            pseudo.extend_from_slice(&payload);
            payload[at..at + 2].copy_from_slice(&checksum(&pseudo).to_be_bytes());
        }
        let total = (20 + payload.len()) as u16;
        let mut header = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, protocol, 0, 0];
        header[2..4].copy_from_slice(&total.to_be_bytes());
        header.extend_from_slice(&src);
        header.extend_from_slice(&dst);
        let sum = checksum(&header);
        header[10..12].copy_from_slice(&sum.to_be_bytes());
        [header, payload].concat()
    }
    let syn = |port: u16| {
        let mut tcp = vec![0xc3, 0x50, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0];
        tcp[2..4].copy_from_slice(&port.to_be_bytes());
        tcp
    };
    let (local, peer, port) = DatagramTarget::new().addresses();
    let (local, peer) = (local.octets(), peer.octets());
    vec![
        ("syn-listening", ipv4(peer, local, 6, syn(port), Some(16))),
        ("syn-closed", ipv4(peer, local, 6, syn(port + 1), Some(16))),
        ("udp", ipv4(peer, local, 17, vec![0x13, 0x88, 0x13, 0x89, 0, 12, 0, 0, 1, 2, 3, 4], Some(6))),
        ("icmp-echo", ipv4(peer, local, 1, vec![8, 0, 0xf7, 0xfe, 0, 1, 0, 0], None)),
        ("syn-spoofed-source", ipv4([10, 9, 9, 9], local, 6, syn(port), Some(16))),
    ]
}

/// Writes the seeds of the tunnel target (`cargo test -p pyralog-fuzz-harness -- --ignored`):
/// each of [`tunnel_seed_packets`] as an inner packet, all of them in sequence, and a raw
/// datagram.
#[test]
#[ignore = "writes seeds into fuzz/corpus; run by hand"]
fn write_tunnel_seeds() {
    let packets = tunnel_seed_packets();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/tunnel_datagram");
    std::fs::create_dir_all(&dir).unwrap();
    let record = |mode: u8, bytes: &[u8]| [&[mode][..], &(bytes.len() as u16).to_be_bytes(), bytes].concat();
    for (name, packet) in &packets {
        std::fs::write(dir.join(name), record(1, packet)).unwrap();
    }
    let all: Vec<u8> = packets.iter().flat_map(|(_, packet)| record(1, packet)).collect();
    std::fs::write(dir.join("all-in-sequence"), all).unwrap();
    std::fs::write(dir.join("raw"), record(0, &[4, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])).unwrap();
}

/// The tunnel target reaches past decryption: the peer's packets from its own overlay address
/// are taken, one from an address it does not own is dropped as invalid.
#[test]
fn tunnel_seeds_reach_past_decryption() {
    use pyralog_p2p::tunnel::fuzzing::DatagramTarget;
    for (seed, packet) in tunnel_seed_packets() {
        let mut target = DatagramTarget::new();
        target.inner_packet(&packet);
        let invalid = u64::from(seed == "syn-spoofed-source");
        assert_eq!(target.dropped_invalid(), invalid, "{seed}");
    }
}

#[test]
#[ignore = "writes seeds into fuzz/corpus; run by hand"]
fn write_rpc_arrow_and_structured_seeds() {
    use pyralog_cluster::columnar::{batch_to_ipc, records_to_batch};
    use pyralog_record::{Header, ProducerSeq, Record, StoredRecord};
    use pyralog_rpc_params::{METHODS, MethodParams};

    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        std::fs::create_dir_all(corpus.join(target)).unwrap();
        std::fs::write(corpus.join(target).join(name), bytes).unwrap();
    };
    let key = pyralog_crypto::Keypair::from_secret(&[7; 32]).public().to_string();
    let hex32 = format!("0x{}", "11".repeat(32));
    let examples = [
        ("admin_addMember", format!(r#"{{"id":4,"raftAddr":"10.0.0.4:7400","publicKey":"{key}"}}"#)),
        ("admin_removeMember", r#"{"id":4}"#.to_owned()),
        (
            "admin_addTunnelPeer",
            r#"{"wireguardPublicKey":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","endpoint":"10.77.0.4:7400","rosenpassPublicKey":"AAECAw=="}"#.to_owned(),
        ),
        ("debug_setFailpoint", r#"{"name":"wal-fsync","actions":"sleep(1500)"}"#.to_owned()),
        ("log_create", r#"{"name":"demo","partitions":3,"replicationFactor":3,"zk":["groth16","stark"]}"#.to_owned()),
        (
            "log_append",
            r#"{"log":"demo","records":[{"key":"0x6b","value":"0x76","headers":[{"name":"h","value":"0x31"}],"timestampMs":1,"producer":{"id":7,"seq":0}}],"partition":1}"#.to_owned(),
        ),
        ("log_read", r#"{"log":"demo","partition":0,"from":5,"max":20,"format":"arrow"}"#.to_owned()),
        ("log_getLatest", r#"{"log":"demo","key":"0x6b6579"}"#.to_owned()),
        ("log_getCheckpoint", r#"{"log":"demo","partition":2}"#.to_owned()),
        ("log_getProof", r#"{"log":"demo","partition":0,"offset":3,"cluster":"alpha","finality":true,"trustedSize":2}"#.to_owned()),
        ("log_getConsistencyProof", r#"{"log":"demo","partition":0,"oldSize":2,"newSize":9}"#.to_owned()),
        ("log_getZkRoots", r#"{"log":"demo","partition":0,"size":4}"#.to_owned()),
        ("log_getZkPath", r#"{"log":"demo","partition":0,"offset":1,"size":4}"#.to_owned()),
        ("zk_proveMembership", format!(r#"{{"log":"demo","partition":0,"offset":1,"nonce":"{hex32}","discloseKey":true}}"#)),
        ("zk_proveAppends", r#"{"log":"demo","partition":0,"fromSize":0,"toSize":64}"#.to_owned()),
        ("zk_verify", r#"{"proof":{"system":"groth16","bytes":"0x00"},"verifyingKey":"0x00"}"#.to_owned()),
        ("log_subscribeRecords", r#"{"log":"demo","partition":0,"from":10}"#.to_owned()),
        ("log_subscribeCheckpoints", r#"{"log":"demo","partition":0}"#.to_owned()),
        ("chain_getHeader", r#"{"height":3}"#.to_owned()),
        ("chain_getBlock", "[]".to_owned()),
        ("chain_getCommit", String::new()),
        ("chain_getFinality", r#"{"height":null}"#.to_owned()),
        ("chain_getSeals", r#"{"from":1,"count":10}"#.to_owned()),
        ("chain_getCometLightBlock", r#"{"height":3}"#.to_owned()),
        ("chain_getValidators", r#"{}"#.to_owned()),
        ("state_get", r#"{"keyText":"anchor/alpha/demo/0","height":2}"#.to_owned()),
        ("state_getProof", r#"{"key":"0x616e63686f72"}"#.to_owned()),
        ("tx_submit", r#"{"tx":"0x0102"}"#.to_owned()),
        ("tx_status", format!(r#"{{"id":"{hex32}"}}"#)),
        ("staking_params", r#"{"height":1}"#.to_owned()),
        ("staking_validators", "[]".to_owned()),
        ("staking_validator", format!(r#"{{"operator":"{key}","height":1}}"#)),
        ("staking_delegations", format!(r#"{{"delegator":"{key}"}}"#)),
        ("staking_unbonding", format!(r#"{{"delegator":"{key}","validator":"{key}"}}"#)),
        ("staking_signingInfo", format!(r#"{{"consensusKey":"{key}"}}"#)),
        ("contract_deploy", r#"{"tx":"0x0102"}"#.to_owned()),
        ("contract_call", r#"{"tx":"0x0304"}"#.to_owned()),
        (
            "contract_query",
            format!(r#"{{"contract":"{hex32}","entry":"tally","input":"0x01","caller":"{key}","height":4}}"#),
        ),
        ("contract_getCode", format!(r#"{{"code":"{hex32}"}}"#)),
        ("contract_get", format!(r#"{{"contract":"{hex32}","height":2}}"#)),
        ("contract_getStorage", format!(r#"{{"contract":"{hex32}","key":"0x6b"}}"#)),
    ];
    assert_eq!(examples.len(), METHODS.len(), "one example per method");
    for (method, params) in &examples {
        let index = METHODS.iter().position(|m| m == method).expect("a method with params");
        let decoded = MethodParams::decode(method, (!params.is_empty()).then_some(params.as_str()));
        assert!(matches!(decoded, Some(Ok(_))), "{method}: {decoded:?}");
        let mut bytes = vec![u8::try_from(index).unwrap()];
        bytes.extend_from_slice(params.as_bytes());
        write("rpc_params", method, &bytes);
    }

    let records: Vec<StoredRecord> = (0..3)
        .map(|i| StoredRecord {
            offset: 10 + i,
            epoch: 2,
            record: Record {
                key: (i % 2 == 0).then(|| format!("key-{i}").into_bytes()),
                value: format!("value-{i}").into_bytes(),
                headers: vec![Header { name: "h".into(), value: vec![i as u8] }],
                timestamp_ms: 1_700_000_000_000 + i,
                scarab_id: 42 + i,
                producer: (i == 1).then_some(ProducerSeq { producer: 7, sequence: 0 }),
            },
        })
        .collect();
    write("arrow_ipc", "three-records", &batch_to_ipc(&records_to_batch(&records).unwrap()).unwrap());
    write("arrow_ipc", "empty", &batch_to_ipc(&records_to_batch(&[]).unwrap()).unwrap());

    // Structured inputs are read by `Unstructured`: any bytes build a value; these pick each kind.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for kind in 0u8..5 {
        let mut bytes = vec![kind];
        bytes.extend((0..400).map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        }));
        write("structured", &format!("kind-{kind}"), &bytes);
    }
}
