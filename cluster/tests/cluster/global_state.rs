//! The global state machine's rules, without Raft: placement, validation, epochs, and
//! checkpoint certificates (forged, short, misaddressed or stale ones are refused and change
//! nothing), and Kafka consumer groups (bounded, never rolled back).

use pyralog_cluster::model::LogConfig;
use pyralog_cluster::raft::{
    CommittedOffset, GlobalCommand, GlobalReply, GlobalState, MAX_GROUP_MEMBERS, MAX_OFFSET_METADATA_BYTES,
    Member, Rejection, SealedEpoch, StoredGroup, StoredGroupMember,
};
use pyralog_cluster::storage::PartitionId;
use pyralog_crypto::quorum::{QuorumCertificate, SignatureShare};
use pyralog_crypto::{Checkpoint, ClusterId, Digest, Keypair, LogName};

fn cluster() -> ClusterId {
    ClusterId::new("c1").unwrap()
}

fn config(name: &str, partitions: u32, replication_factor: u8) -> LogConfig {
    LogConfig {
        name: LogName::new(name).unwrap(),
        partitions,
        replication_factor,
        max_record_bytes: 4096,
        zk: Default::default(),
        constraint: None,
        trigger: None,
        acl: None,
    }
}

/// A state with `n` members and their keys.
fn with_members(n: u64) -> (GlobalState, Vec<Keypair>) {
    let mut state = GlobalState::default();
    let keys: Vec<Keypair> = (0..n).map(|_| Keypair::generate()).collect();
    for (id, key) in keys.iter().enumerate() {
        let member = Member { addr: format!("127.0.0.1:{}", 7000 + id), key: key.public() };
        assert_eq!(
            state.apply(&cluster(), GlobalCommand::AddMember { id: id as u64, member }),
            GlobalReply::Done
        );
    }
    (state, keys)
}

/// Applies `command` and expects it refused without a change.
fn refused(state: &mut GlobalState, command: GlobalCommand) -> Rejection {
    let before = state.clone();
    let reply = state.apply(&cluster(), command);
    assert_eq!(*state, before, "a refused command changed the state");
    match reply {
        GlobalReply::Rejected(rejection) => rejection,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn logs_are_placed_on_distinct_members_and_validated() {
    let (mut state, _) = with_members(3);
    let GlobalReply::LogCreated(info) =
        state.apply(&cluster(), GlobalCommand::CreateLog { config: config("a", 6, 2) })
    else {
        panic!("not created")
    };
    assert_eq!(info.id, 0);
    let mut first_replicas = [0; 3];
    for replicas in &info.placement {
        assert_eq!(replicas.len(), 2);
        assert_ne!(replicas[0], replicas[1]);
        first_replicas[replicas[0] as usize] += 1;
    }
    assert_eq!(first_replicas, [2, 2, 2], "partition bootstrap (and first leadership) is spread");

    let bad = |partitions, rf, max| LogConfig { max_record_bytes: max, ..config("b", partitions, rf) };
    assert_eq!(
        refused(&mut state, GlobalCommand::CreateLog { config: config("a", 1, 1) }),
        Rejection::LogExists("a".into())
    );
    assert!(matches!(
        refused(&mut state, GlobalCommand::CreateLog { config: bad(0, 1, 10) }),
        Rejection::InvalidLog(_)
    ));
    assert!(matches!(
        refused(&mut state, GlobalCommand::CreateLog { config: bad(1, 0, 10) }),
        Rejection::InvalidLog(_)
    ));
    assert!(matches!(
        refused(&mut state, GlobalCommand::CreateLog { config: bad(1, 1, 0) }),
        Rejection::InvalidLog(_)
    ));
    assert!(matches!(
        refused(&mut state, GlobalCommand::CreateLog { config: bad(1, 1, u32::MAX) }),
        Rejection::InvalidLog(_)
    ));
    assert_eq!(
        refused(&mut state, GlobalCommand::CreateLog { config: bad(1, 4, 10) }),
        Rejection::NotEnoughMembers { needed: 4, members: 3 }
    );
}

#[test]
fn members_keep_their_keys_and_leave_only_when_unused() {
    let (mut state, _) = with_members(3);
    let impostor = Member { addr: "10.0.0.9:1".into(), key: Keypair::generate().public() };
    assert_eq!(
        refused(&mut state, GlobalCommand::AddMember { id: 1, member: impostor }),
        Rejection::KeyMismatch(1)
    );
    state.apply(&cluster(), GlobalCommand::CreateLog { config: config("a", 1, 2) });
    let host = state.logs.values().next().unwrap().placement[0][0];
    assert_eq!(
        refused(&mut state, GlobalCommand::RemoveMember { id: host }),
        Rejection::MemberInUse(host, 1)
    );
    assert_eq!(refused(&mut state, GlobalCommand::RemoveMember { id: 9 }), Rejection::UnknownMember(9));
    let idle = (0..3).find(|id| !state.logs.values().next().unwrap().placement[0].contains(id)).unwrap();
    assert_eq!(state.apply(&cluster(), GlobalCommand::RemoveMember { id: idle }), GlobalReply::Done);
    assert_eq!(state.members.len(), 2);
}

#[test]
fn epoch_changes_seal_the_previous_epoch() {
    let (mut state, _) = with_members(3);
    state.apply(&cluster(), GlobalCommand::CreateLog { config: config("a", 1, 3) });
    let partition = PartitionId { log: 0, partition: 0 };
    let change = |epoch, leader, size| GlobalCommand::EpochChanged { partition, epoch, leader, size };
    assert_eq!(state.apply(&cluster(), change(1, 0, 0)), GlobalReply::Done);
    assert_eq!(state.apply(&cluster(), change(3, 2, 40)), GlobalReply::Done);
    let record = &state.partitions[&partition];
    assert_eq!((record.epoch, record.leader), (3, Some(2)));
    assert_eq!(record.sealed, vec![SealedEpoch { epoch: 1, end: 40 }]);
    assert_eq!(refused(&mut state, change(3, 1, 50)), Rejection::StaleEpoch { current: 3, got: 3 });
    let unknown = GlobalCommand::EpochChanged {
        partition: PartitionId { log: 7, partition: 0 },
        epoch: 1,
        leader: 0,
        size: 0,
    };
    assert!(matches!(refused(&mut state, unknown), Rejection::UnknownLog(_)));
}

#[test]
fn only_genuine_majority_certificates_are_recorded() {
    let (mut state, keys) = with_members(3);
    state.apply(&cluster(), GlobalCommand::CreateLog { config: config("a", 1, 3) });
    let partition = PartitionId { log: 0, partition: 0 };
    let checkpoint = |size: u64| Checkpoint {
        cluster: cluster(),
        log: LogName::new("a").unwrap(),
        partition: 0,
        epoch: 1,
        size,
        root: Digest([size as u8; 32]),
        time_ms: 1,
        zk_roots: Default::default(),
    };
    let certify = |message: Checkpoint, signers: &[&Keypair]| QuorumCertificate {
        signatures: signers.iter().map(|k| SignatureShare::sign(k, &message)).collect(),
        message,
    };
    let record = |certificate| GlobalCommand::Checkpoint { partition, certificate };

    // One of three is not a majority.
    assert!(matches!(
        refused(&mut state, record(certify(checkpoint(5), &[&keys[0]]))),
        Rejection::BadCertificate(_)
    ));
    // A non-member's signature does not count.
    let outsider = Keypair::generate();
    assert!(matches!(
        refused(&mut state, record(certify(checkpoint(5), &[&keys[0], &outsider]))),
        Rejection::BadCertificate(_)
    ));
    // A root changed after signing breaks the signatures.
    let mut forged = certify(checkpoint(5), &[&keys[0], &keys[1]]);
    forged.message.root = Digest([0xee; 32]);
    assert!(matches!(refused(&mut state, record(forged)), Rejection::BadCertificate(_)));
    // Signed for another cluster or log.
    let elsewhere = Checkpoint { cluster: ClusterId::new("c2").unwrap(), ..checkpoint(5) };
    assert!(matches!(
        refused(&mut state, record(certify(elsewhere, &[&keys[0], &keys[1]]))),
        Rejection::BadCertificate(_)
    ));
    let other_log = Checkpoint { log: LogName::new("b").unwrap(), ..checkpoint(5) };
    assert!(matches!(
        refused(&mut state, record(certify(other_log, &[&keys[0], &keys[1]]))),
        Rejection::BadCertificate(_)
    ));

    // Two of three: recorded. The same size again, or a smaller one, is stale.
    assert_eq!(
        state.apply(&cluster(), record(certify(checkpoint(5), &[&keys[2], &keys[1]]))),
        GlobalReply::Done
    );
    assert_eq!(state.partitions[&partition].checkpoint.as_ref().unwrap().message.size, 5);
    assert_eq!(
        refused(&mut state, record(certify(checkpoint(5), &[&keys[0], &keys[1]]))),
        Rejection::StaleCheckpoint { have: 5, got: 5 }
    );
    assert_eq!(
        state.apply(&cluster(), record(certify(checkpoint(9), &keys.iter().collect::<Vec<_>>()))),
        GlobalReply::Done
    );
}

fn stored(generation: i32, members: usize) -> StoredGroup {
    let member = |i: usize| StoredGroupMember {
        member_id: format!("m{i}"),
        group_instance_id: None,
        client_id: "c".into(),
        client_host: "127.0.0.1".into(),
        session_timeout_ms: 30_000,
        rebalance_timeout_ms: 30_000,
        subscription: vec![1],
        assignment: vec![2],
    };
    StoredGroup {
        protocol_type: "consumer".into(),
        protocol: Some("range".into()),
        generation,
        leader: Some("m0".into()),
        members: (0..members).map(member).collect(),
    }
}

fn offset(offset: i64, metadata: &str) -> CommittedOffset {
    CommittedOffset { offset, leader_epoch: -1, metadata: metadata.into() }
}

#[test]
fn consumer_groups_are_bounded_and_never_rolled_back() {
    let (mut state, _) = with_members(1);
    state.apply(&cluster(), GlobalCommand::CreateLog { config: config("a", 2, 1) });
    let store = |name: &str, group| GlobalCommand::StoreConsumerGroup { name: name.into(), group };
    assert_eq!(state.apply(&cluster(), store("g", stored(2, 2))), GlobalReply::Done);
    assert_eq!(
        refused(&mut state, store("g", stored(1, 1))),
        Rejection::StaleGeneration { stored: 2, got: 1 },
        "a deposed coordinator's late write"
    );
    assert!(matches!(refused(&mut state, store("", stored(1, 1))), Rejection::InvalidConsumerGroup(_)));
    assert!(matches!(
        refused(&mut state, store("big", stored(1, MAX_GROUP_MEMBERS + 1))),
        Rejection::InvalidConsumerGroup(_)
    ));

    let p0 = PartitionId { log: 0, partition: 0 };
    let commit = |offsets| GlobalCommand::CommitOffsets { name: "g".into(), offsets };
    assert_eq!(state.apply(&cluster(), commit(vec![(p0, offset(42, "m"))])), GlobalReply::Done);
    let beyond = PartitionId { log: 0, partition: 2 };
    assert_eq!(
        refused(&mut state, commit(vec![(p0, offset(43, "")), (beyond, offset(1, ""))])),
        Rejection::UnknownLog(beyond.to_string()),
        "all or nothing"
    );
    let long = "x".repeat(MAX_OFFSET_METADATA_BYTES + 1);
    assert!(matches!(
        refused(&mut state, commit(vec![(p0, offset(1, &long))])),
        Rejection::InvalidConsumerGroup(_)
    ));
    let group = &state.consumer_groups["g"];
    assert_eq!(group.offsets[&p0], offset(42, "m"));
    assert_eq!(group.generation.as_ref().unwrap().generation, 2);
}
