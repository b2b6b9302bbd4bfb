//! The chain light client's cost: verifying a record's whole path to finality (inclusion proof,
//! anchored checkpoint certified by 3 cluster members, its consistency with the previously
//! trusted anchor, two state proofs in a state of 10,000 accounts, the header and its commit
//! certificate signed by all 6 validators), one sequential header step, and one ed25519
//! verification as the yardstick. `make bench-chain`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pyralog_chain::block::{Header, validators_hash};
use pyralog_chain::state::StateStore;
use pyralog_chain::values::{Account, Anchor, ClusterRecord, account_key, anchor_key, cluster_key};
use pyralog_consensus::{Engine, FinalityProof};
use pyralog_consensus::{Validator, ValidatorSet, Vote, VoteKind};
use pyralog_crypto::light::RecordQuery;
use pyralog_crypto::merkle::{Blake3Merkle, MemoryNodeStore, MerkleTree};
use pyralog_crypto::quorum::SignatureShare;
use pyralog_crypto::{Checkpoint, ClusterId, Digest, Keypair, LogName, QuorumCertificate};
use pyralog_light::chain::{FinalityEvidence, ProvenValue, TrustedHead, verify_adjacent, verify_finality};

const CHAIN: &str = "pyralog-bench";
const RECORDS: u64 = 100_000;
const ACCOUNTS: usize = 10_000;
/// The client's clock (after every header's time).
const NOW: u64 = 1_800_000_000_000;

fn commit(header: &Header, keys: &[Keypair]) -> FinalityProof {
    let vote = Vote {
        chain_id: CHAIN.into(),
        height: header.height,
        round: 0,
        kind: VoteKind::Precommit,
        block: Some(header.block_id()),
    };
    let certificate = QuorumCertificate {
        signatures: keys.iter().map(|k| SignatureShare::sign(k, &vote)).collect(),
        message: vote,
    };
    FinalityProof::quorum(Engine::Tendermint, certificate)
}

fn header(height: u64, parent: Digest, state_root: Digest, set: &ValidatorSet) -> Header {
    Header {
        chain_id: CHAIN.into(),
        height,
        time_ms: 1_700_000_000_000 + height * 200,
        parent,
        tx_count: 0,
        tx_root: Digest([0; 32]),
        state_root,
        validators_hash: validators_hash(set.validators()),
        next_validators_hash: validators_hash(set.validators()),
        proposer: set.validators()[0].key,
        engine: Engine::Tendermint.name().into(),
    }
}

fn bench_light(c: &mut Criterion) {
    let validators: Vec<Keypair> = (0..6).map(|_| Keypair::generate()).collect();
    let set = ValidatorSet::new(validators.iter().map(|k| Validator { key: k.public(), power: 1 })).unwrap();
    let members: Vec<Keypair> = (0..3).map(|_| Keypair::generate()).collect();
    let (cluster, log) =
        (ClusterId::new("alpha".to_string()).unwrap(), LogName::new("orders".to_string()).unwrap());

    // The partition: RECORDS records; the client trusts the anchor at half of them.
    let mut tree = MerkleTree::<Blake3Merkle, _>::new(MemoryNodeStore::new());
    let record = |i: u64| format!("record {i:08} with a value of some realistic length").into_bytes();
    for i in 0..RECORDS {
        tree.append(&record(i)).unwrap();
    }
    let checkpoint = |size: u64| Checkpoint {
        cluster: cluster.clone(),
        log: log.clone(),
        partition: 0,
        epoch: 1,
        size,
        root: tree.root_at(size).unwrap(),
        time_ms: 1,
        zk_roots: Default::default(),
    };
    let (old, new) = (checkpoint(RECORDS / 2), checkpoint(RECORDS));
    let consistency = tree.consistency_proof(old.size, new.size).unwrap();
    let offset = RECORDS - 1_000;
    let certificate = QuorumCertificate {
        signatures: members.iter().map(|k| SignatureShare::sign(k, &new)).collect(),
        message: new,
    };

    // The chain state: ACCOUNTS accounts, the cluster, the anchor.
    let dir = tempfile::tempdir().unwrap();
    let state = StateStore::open(dir.path()).unwrap();
    let mut writes: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..ACCOUNTS)
        .map(|_| {
            let account = Account { balance: 1_000, nonce: 3 };
            (account_key(&Keypair::generate().public()), Some(postcard::to_allocvec(&account).unwrap()))
        })
        .collect();
    let registration = ClusterRecord {
        owner: members[0].public(),
        members: members.iter().map(|k| k.public()).collect(),
        peers: Vec::new(),
    };
    writes.push((cluster_key(&cluster), Some(postcard::to_allocvec(&registration).unwrap())));
    let anchor = Anchor { certificate, height: 41 };
    writes.push((anchor_key(&cluster, &log, 0), Some(postcard::to_allocvec(&anchor).unwrap())));
    let root = state.commit(0, writes).unwrap();
    let prove = |key: Vec<u8>| {
        let (value, proof) = state.get_with_proof(&key, 0).unwrap();
        ProvenValue { value, proof }
    };

    let head = header(42, Digest([7; 32]), Digest(root), &set);
    let evidence = FinalityEvidence {
        finality: commit(&head, &validators),
        header: head,
        cluster: prove(cluster_key(&cluster)),
        anchor: prove(anchor_key(&cluster, &log, 0)),
        record: record(offset),
        inclusion: tree.inclusion_proof(offset, RECORDS).unwrap(),
    };
    let trusted = TrustedHead {
        chain_id: CHAIN.into(),
        height: 41,
        block_id: Digest([7; 32]),
        time_ms: 1,
        next_validators: set.validators().to_vec(),
        engine: Engine::Tendermint,
        trusting_period_ms: None,
    };
    let query = RecordQuery { cluster, log, partition: 0, offset };
    verify_finality(&trusted, &query, &evidence, Some(&old), Some(&consistency), NOW)
        .expect("the path verifies");
    c.bench_function("light/verify_finality_path_6_validators", |b| {
        b.iter(|| {
            verify_finality(
                black_box(&trusted),
                &query,
                black_box(&evidence),
                Some(&old),
                Some(&consistency),
                NOW,
            )
            .unwrap()
        })
    });

    // The yardstick: one strict ed25519 verification, in the same run.
    let message = b"one message of realistic length for a signature yardstick";
    let signature = validators[0].sign(message);
    let key = validators[0].public();
    c.bench_function("light/one_ed25519_verification", |b| {
        b.iter(|| key.verify(black_box(message), black_box(&signature)).unwrap())
    });

    let next = header(42, trusted.block_id, Digest(root), &set);
    let next_commit = commit(&next, &validators);
    verify_adjacent(&trusted, &next, &next_commit, None, NOW).expect("the step verifies");
    c.bench_function("light/sequential_header_step_6_validators", |b| {
        b.iter(|| verify_adjacent(black_box(&trusted), black_box(&next), &next_commit, None, NOW).unwrap())
    });
}

criterion_group!(benches, bench_light);
criterion_main!(benches);
