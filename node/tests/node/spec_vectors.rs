//! The verifier specification's test vectors (`docs/verifier-spec.md`, `docs/verifier-vectors.json`).
//!
//! Builds deterministic objects (keys from fixed seeds, fixed times) along the whole verification
//! path, computes every encoding, hash and signature the specification describes with the code,
//! and compares them with the committed vector file (`PYRALOG_WRITE_VECTORS=1` rewrites it). Then
//! it checks the vectors a second time from the specification's rules alone: BLAKE3 keyed with keys
//! derived from the context strings the document gives, postcard and the fixed encodings built byte
//! by byte, RFC 9162's own inclusion and consistency algorithms, a JMT proof checker written from the
//! document, and Ed25519 verification of the hex bytes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pyralog_cluster::model::{Header as RecordHeader, ProducerSeq, Record, StoredRecord};
use pyralog_consensus::validators::QUORUM;
use pyralog_consensus::vote::payload_id;
use pyralog_consensus::{CommitCertificate, Engine, FinalityProof, Validator, ValidatorSet, Vote, VoteKind};
use pyralog_crypto::light::RecordQuery;
use pyralog_crypto::merkle::{Blake3Merkle, MemoryNodeStore, MerkleHasher, MerkleTree};
use pyralog_crypto::quorum::{Signable, SignatureShare};
use pyralog_crypto::{
    Checkpoint, ClusterId, Digest, Domain, Keypair, LogName, MemberSet, PublicKey, QuorumCertificate,
    Signature, Threshold, ZkTree,
};
use pyralog_node::chain::app::{Account, Anchor, ClusterRecord, account_key, anchor_key, cluster_key};
use pyralog_node::chain::block::{Header, transactions_root, validators_hash};
use pyralog_node::chain::light::{
    FinalityEvidence, ProvenValue, TrustedHead, verify_adjacent, verify_finality, verify_skipping,
};
use pyralog_node::chain::state::{StateStore, verify_state_proof};
use serde_json::{Value, json};

/// The context strings exactly as the specification writes them (§3.1).
const DOMAINS: [(&str, &str, Domain); 6] = [
    ("merkle", "pyralog 2026-11-23 merkle tree v1", Domain::Merkle),
    ("checkpoint", "pyralog 2026-11-23 checkpoint id v1", Domain::Checkpoint),
    ("partition_key", "pyralog 2026-11-23 partition key v1", Domain::PartitionKey),
    ("consensus_value", "pyralog 2026-11-23 consensus value v1", Domain::ConsensusValue),
    ("chain_state", "pyralog 2026-11-23 chain state v1", Domain::ChainState),
    ("chain_tx", "pyralog 2026-11-23 chain transaction v1", Domain::ChainTx),
];
const MERKLE: &str = DOMAINS[0].1;
const CHECKPOINT: &str = DOMAINS[1].1;
const CONSENSUS_VALUE: &str = DOMAINS[3].1;
const CHAIN_STATE: &str = DOMAINS[4].1;

/// The signing contexts as the specification writes them (§3.2), `\0` being one zero byte.
const CHECKPOINT_CONTEXT: &[u8] = b"pyralog checkpoint signature v1\0";
const VOTE_CONTEXT: &[u8] = b"pyralog/consensus/vote/v1\0";

const CHAIN: &str = "pyralog-spec";
/// 2026-01-01T00:00:00Z in Unix ms (the Scarab epoch).
const BASE_MS: u64 = 1_767_225_600_000;

fn hx(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn unhex(value: &Value) -> Vec<u8> {
    hex::decode(value.as_str().unwrap_or_else(|| panic!("not a hex string: {value}"))).expect("hex")
}

fn arr<const N: usize>(value: &Value) -> [u8; N] {
    unhex(value).try_into().unwrap_or_else(|_| panic!("not {N} bytes: {value}"))
}

fn num(value: &Value) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("not a number: {value}"))
}

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/verifier-vectors.json")
}

fn spec_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/verifier-spec.md")
}

#[test]
fn spec_vectors_match_the_code_and_the_document() {
    let vectors = build();
    let path = vectors_path();
    if std::env::var("PYRALOG_WRITE_VECTORS").as_deref() == Ok("1") {
        std::fs::write(&path, serde_json::to_string_pretty(&vectors).unwrap() + "\n").unwrap();
    } else {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (PYRALOG_WRITE_VECTORS=1 writes it)", path.display()));
        let committed: Value = serde_json::from_str(&text).expect("the vector file is JSON");
        let (have, want) = (committed.as_object().unwrap(), vectors.as_object().unwrap());
        assert_eq!(have.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "vector sections");
        for (section, value) in want {
            assert_eq!(
                &have[section], value,
                "vectors `{section}` differ from the code: a wire-format change? \
                 (PYRALOG_WRITE_VECTORS=1 rewrites docs/verifier-vectors.json)"
            );
        }
    }
    check_independently(&vectors);
    check_document(&vectors);
}

// ---------------------------------------------------------------------------------------------
// The vectors, computed with the code.
// ---------------------------------------------------------------------------------------------

/// A state write of the vectors: its name in the file, its key, its value.
type StateEntry = (&'static str, Vec<u8>, Option<Vec<u8>>);

fn key_json(name: &str, seed: u8) -> Value {
    let key = Keypair::from_secret(&[seed; 32]);
    json!({ "name": name, "secret": hx(&[seed; 32]), "public": hx(key.public().as_bytes()), "text": key.public().to_string() })
}

fn record(offset: u64) -> StoredRecord {
    let proven = offset == 3;
    StoredRecord {
        offset,
        epoch: if offset < 4 { 1 } else { 2 },
        record: Record {
            key: (offset % 2 == 0 || proven).then(|| format!("user-{offset}").into_bytes()),
            value: format!("value {offset}").into_bytes(),
            headers: match proven {
                true => vec![
                    RecordHeader { name: "content-type".into(), value: b"text/plain".to_vec() },
                    RecordHeader { name: "trace".into(), value: vec![0, 1, 2, 3] },
                ],
                false => Vec::new(),
            },
            timestamp_ms: BASE_MS + 1_000 * offset,
            scarab_id: ((1_000 * offset) << 23) | (5 << 13) | offset,
            producer: proven.then_some(ProducerSeq { producer: 77, sequence: 3 }),
        },
    }
}

fn record_json(stored: &StoredRecord) -> Value {
    let r = &stored.record;
    let encoded = stored.encode().unwrap();
    json!({
        "offset": stored.offset,
        "epoch": stored.epoch,
        "timestamp_ms": r.timestamp_ms,
        "scarab_id": r.scarab_id,
        "key": r.key.as_deref().map(hx),
        "value": hx(&r.value),
        "headers": r.headers.iter().map(|h| json!({ "name": h.name, "value": hx(&h.value) })).collect::<Vec<_>>(),
        "producer": r.producer.map(|p| json!({ "id": p.producer, "sequence": p.sequence })),
        "encoded": hx(&encoded),
        "leaf_hash": hx(stored.leaf_hash().unwrap().as_bytes()),
    })
}

fn checkpoint_json(checkpoint: &Checkpoint) -> Value {
    assert_eq!(Checkpoint::decode(&checkpoint.encode()).as_ref(), Ok(checkpoint));
    let zk: BTreeMap<String, String> = checkpoint
        .zk_roots
        .iter()
        .map(|(tree, root)| (serde_json::to_value(tree).unwrap().as_str().unwrap().to_owned(), hx(&root.0)))
        .collect();
    json!({
        "cluster": checkpoint.cluster.as_str(),
        "log": checkpoint.log.as_str(),
        "partition": checkpoint.partition,
        "epoch": checkpoint.epoch,
        "size": checkpoint.size,
        "root": hx(&checkpoint.root.0),
        "time_ms": checkpoint.time_ms,
        "zk_roots": zk,
        "encoded": hx(&checkpoint.encode()),
        "id": hx(&checkpoint.id().0),
        "signing_bytes": hx(&checkpoint.signing_bytes()),
        "postcard": hx(&postcard::to_allocvec(checkpoint).unwrap()),
    })
}

fn shares_json(shares: &[SignatureShare]) -> Vec<Value> {
    shares
        .iter()
        .map(|s| json!({ "signer": hx(s.signer.as_bytes()), "signature": hx(&s.signature.to_bytes()) }))
        .collect()
}

fn vote_json(vote: &Vote) -> Value {
    json!({
        "chain_id": vote.chain_id,
        "height": vote.height,
        "round": vote.round,
        "kind": match vote.kind { VoteKind::Prevote => "prevote", VoteKind::Precommit => "precommit" },
        "block": vote.block.map(|b| hx(&b.0)),
        "signing_bytes": hx(&vote.signing_bytes()),
        "postcard": hx(&postcard::to_allocvec(vote).unwrap()),
    })
}

fn build() -> Value {
    let validator_keys: Vec<Keypair> = (1..=4u8).map(|n| Keypair::from_secret(&[n; 32])).collect();
    let member_keys: Vec<Keypair> = (0x21..=0x23u8).map(|n| Keypair::from_secret(&[n; 32])).collect();
    let mut keys: Vec<Value> = (1..=4u8).map(|n| key_json(&format!("validator-{n}"), n)).collect();
    keys.extend((1..=3u8).map(|n| key_json(&format!("member-{n}"), 0x20 + n)));

    // §3.3 postcard and §3.4 thresholds.
    let postcard_examples = [
        ("u64 0", postcard::to_allocvec(&0u64).unwrap()),
        ("u64 127", postcard::to_allocvec(&127u64).unwrap()),
        ("u64 128", postcard::to_allocvec(&128u64).unwrap()),
        ("u64 300", postcard::to_allocvec(&300u64).unwrap()),
        ("u64 18446744073709551615 (u64::MAX)", postcard::to_allocvec(&u64::MAX).unwrap()),
        ("string \"ab\"", postcard::to_allocvec("ab").unwrap()),
        ("Vec<u8> [1, 2, 3]", postcard::to_allocvec(&vec![1u8, 2, 3]).unwrap()),
        ("Option<u64> None", postcard::to_allocvec(&None::<u64>).unwrap()),
        ("Option<u64> Some(5)", postcard::to_allocvec(&Some(5u64)).unwrap()),
        ("Digest [0xab; 32] (no length prefix)", postcard::to_allocvec(&Digest([0xab; 32])).unwrap()),
    ];
    let postcard_json: Vec<Value> =
        postcard_examples.iter().map(|(what, bytes)| json!({ "value": what, "bytes": hx(bytes) })).collect();
    let one_third = Threshold::more_than(1, 3);
    let threshold_cases = [
        (QUORUM, 66, 100),
        (QUORUM, 67, 100),
        (QUORUM, 2, 3),
        (QUORUM, 3, 4),
        (QUORUM, 70, 100),
        (QUORUM, u64::MAX / 3, u64::MAX / 3),
        (Threshold::MAJORITY, 1, 2),
        (Threshold::MAJORITY, 2, 3),
        (Threshold::MAJORITY, 2, 4),
        (one_third, 33, 100),
        (one_third, 34, 100),
        (one_third, 1, 3),
        (one_third, 2, 4),
    ];
    let thresholds: Vec<Value> = threshold_cases
        .iter()
        .map(|(t, signed, total)| {
            json!({ "rule": t.to_string(), "signed": signed, "total": total, "met": t.is_met(*signed, *total) })
        })
        .collect();

    // §4, §5: seven records in one partition and their tree.
    let records: Vec<StoredRecord> = (0..7).map(record).collect();
    let mut tree = MerkleTree::<Blake3Merkle, _>::new(MemoryNodeStore::new());
    for r in &records {
        tree.append(&r.encode().unwrap()).unwrap();
    }
    let roots: Vec<Value> =
        (1..=7).map(|size| json!({ "size": size, "root": hx(&tree.root_at(size).unwrap().0) })).collect();
    let inclusion = tree.inclusion_proof(3, 7).unwrap();
    let consistency = tree.consistency_proof(3, 7).unwrap();
    let consistency_4 = tree.consistency_proof(4, 7).unwrap();
    let consistency_json = |p: &pyralog_crypto::merkle::ConsistencyProof<Blake3Merkle>| {
        json!({
            "old_size": p.old_size, "new_size": p.new_size,
            "old_root": hx(&tree.root_at(p.old_size).unwrap().0), "new_root": hx(&tree.root_at(p.new_size).unwrap().0),
            "path": p.path.iter().map(|d| hx(&d.0)).collect::<Vec<_>>(),
        })
    };

    // §6: checkpoints; §7: the anchored one certified by 2 of the 3 members.
    let (cluster, log) = (ClusterId::new("alpha").unwrap(), LogName::new("orders").unwrap());
    let checkpoint = |epoch: u64, size: u64, time_ms: u64| Checkpoint {
        cluster: cluster.clone(),
        log: log.clone(),
        partition: 0,
        epoch,
        size,
        root: tree.root_at(size).unwrap(),
        time_ms,
        zk_roots: BTreeMap::new(),
    };
    let anchored = checkpoint(2, 7, BASE_MS + 10_000);
    let trusted_checkpoint = checkpoint(1, 3, BASE_MS + 5_000);
    let mut with_zk = anchored.clone();
    with_zk.zk_roots.insert(ZkTree::Poseidon, Digest([0x11; 32]));
    with_zk.zk_roots.insert(ZkTree::Rescue, Digest([0x22; 32]));
    anchored.verify_inclusion(&records[3].encode().unwrap(), &inclusion).unwrap();
    anchored.verify_extends(&trusted_checkpoint, &consistency).unwrap();
    let certificate = QuorumCertificate {
        signatures: member_keys[..2].iter().map(|k| SignatureShare::sign(k, &anchored)).collect(),
        message: anchored.clone(),
    };
    let members = MemberSet::equal(member_keys.iter().map(|k| k.public())).unwrap();
    assert_eq!(certificate.verify(&members, Threshold::MAJORITY), Ok(2));

    // §9: the validator set.
    let set = ValidatorSet::new(
        validator_keys.iter().zip([10, 20, 30, 40]).map(|(k, power)| Validator { key: k.public(), power }),
    )
    .unwrap();
    let vhash = validators_hash(set.validators());

    // §10: the chain state holding the account, the cluster, the anchor and the validators.
    let registration = ClusterRecord {
        owner: member_keys[0].public(),
        members: member_keys.iter().map(|k| k.public()).collect(),
        peers: vec!["/ip4/127.0.0.1/tcp/40333".into()],
    };
    let anchor = Anchor { certificate: certificate.clone(), height: 41 };
    let account = Account { balance: 1_000, nonce: 3 };
    let entries: Vec<StateEntry> = vec![
        ("account", account_key(&validator_keys[0].public()), Some(postcard::to_allocvec(&account).unwrap())),
        ("cluster", cluster_key(&cluster), Some(postcard::to_allocvec(&registration).unwrap())),
        ("anchor", anchor_key(&cluster, &log, 0), Some(postcard::to_allocvec(&anchor).unwrap())),
        ("validators", b"meta/validators".to_vec(), Some(postcard::to_allocvec(set.validators()).unwrap())),
    ];
    let dir = tempfile::tempdir().unwrap();
    let state = StateStore::open(dir.path()).unwrap();
    let root = state.commit(0, entries.iter().map(|(_, k, v)| (k.clone(), v.clone()))).unwrap();
    let absent = ClusterId::new("beta").unwrap();
    let mut proven = BTreeMap::new();
    let mut proofs = Vec::new();
    let all_keys =
        entries.iter().map(|(name, key, _)| (*name, key.clone())).chain([("absent", cluster_key(&absent))]);
    for (name, key) in all_keys {
        let (value, proof) = state.get_with_proof(&key, 0).unwrap();
        verify_state_proof(&root, &key, value.as_deref(), &proof).unwrap();
        let hash = |bytes: &[u8]| hx(&Domain::ChainState.hash(bytes).0);
        proofs.push(json!({
            "name": name,
            "key": hx(&key),
            "key_text": String::from_utf8(key.clone()).ok(),
            "key_hash": hash(&key),
            "value": value.as_deref().map(hx),
            "value_hash": value.as_deref().map(hash),
            "proof": hx(&postcard::to_allocvec(&proof).unwrap()),
        }));
        proven.insert(name, ProvenValue { value, proof });
    }

    // §11: the header of height 42 and its block id; §8: its commit certificate.
    let txs = vec![b"opaque transaction a".to_vec(), b"opaque transaction b".to_vec()];
    let trusted_id = Digest([0x41; 32]);
    let header = Header {
        chain_id: CHAIN.into(),
        height: 42,
        time_ms: BASE_MS + 42_000,
        parent: trusted_id,
        tx_count: txs.len() as u64,
        tx_root: transactions_root(&txs),
        state_root: Digest(root),
        validators_hash: vhash,
        next_validators_hash: vhash,
        proposer: validator_keys[3].public(),
        engine: Engine::Tendermint.name().into(),
    };
    assert_eq!(Header::decode(&header.encode()).as_ref(), Ok(&header));
    let block_id = header.block_id();
    let payload: Vec<Vec<u8>> = std::iter::once(header.encode()).chain(txs.iter().cloned()).collect();
    assert_eq!(payload_id(&payload), block_id, "the header alone gives the payload's id");
    let vote = Vote {
        chain_id: CHAIN.into(),
        height: 42,
        round: 1,
        kind: VoteKind::Precommit,
        block: Some(block_id),
    };
    let nil_prevote =
        Vote { chain_id: CHAIN.into(), height: 42, round: 0, kind: VoteKind::Prevote, block: None };
    let commit: CommitCertificate = QuorumCertificate {
        signatures: [3, 2].iter().map(|&i| SignatureShare::sign(&validator_keys[i], &vote)).collect(),
        message: vote.clone(),
    };
    let finality = FinalityProof::quorum(Engine::Tendermint, commit.clone());
    assert_eq!(finality.verify(Engine::Tendermint, CHAIN, 42, &block_id, &set), Ok(70));

    // §12: the light client's steps and the whole path.
    let trusted = TrustedHead {
        chain_id: CHAIN.into(),
        height: 41,
        block_id: trusted_id,
        time_ms: BASE_MS + 41_000,
        next_validators: set.validators().to_vec(),
        engine: Engine::Tendermint,
    };
    let after = verify_adjacent(&trusted, &header, &finality, None).expect("the sequential step verifies");
    assert_eq!((after.height, after.block_id), (42, block_id));
    let genesis = TrustedHead::genesis(CHAIN, Engine::Tendermint, &set);
    let skipped =
        verify_skipping(&genesis, &header, &finality, set.validators(), None).expect("skipping verifies");
    assert_eq!(skipped, after);
    let evidence = FinalityEvidence {
        header: header.clone(),
        finality: finality.clone(),
        cluster: proven.remove("cluster").unwrap(),
        anchor: proven.remove("anchor").unwrap(),
        record: records[3].encode().unwrap(),
        inclusion: inclusion.clone(),
    };
    let query = RecordQuery { cluster: cluster.clone(), log: log.clone(), partition: 0, offset: 3 };
    let verified =
        verify_finality(&trusted, &query, &evidence, Some(&trusted_checkpoint), Some(&consistency))
            .expect("the finality path verifies");
    assert_eq!(verified, anchored);

    let mut out = serde_json::Map::new();
    let mut put = |name: &str, value: Value| out.insert(name.to_owned(), value);
    put(
        "description",
        json!(
            "Pyralog verifier test vectors: see docs/verifier-spec.md section 13. Generated by node/tests/node/spec_vectors.rs; PYRALOG_WRITE_VECTORS=1 rewrites this file. Hex is lowercase without 0x."
        ),
    );
    let domains = DOMAINS
        .iter()
        .map(|(name, context, domain)| json!({ "name": name, "context": context, "key": hx(domain.key()) }));
    put("domains", Value::Array(domains.collect()));
    put(
        "signing_contexts",
        json!([
            { "name": "checkpoint", "bytes": hx(Checkpoint::SIGNING_CONTEXT) },
            { "name": "vote", "bytes": hx(Vote::SIGNING_CONTEXT) },
        ]),
    );
    put("keys", Value::Array(keys));
    put("postcard", Value::Array(postcard_json));
    put("thresholds", Value::Array(thresholds));
    put("records", Value::Array(records.iter().map(record_json).collect()));
    let inclusion_json = json!({
        "index": inclusion.index, "size": inclusion.size,
        "leaf_hash": hx(records[3].leaf_hash().unwrap().as_bytes()),
        "path": inclusion.path.iter().map(|d| hx(&d.0)).collect::<Vec<_>>(),
        "root": hx(&tree.root_at(7).unwrap().0),
    });
    put(
        "merkle",
        json!({
            "empty_root": hx(&Blake3Merkle::empty_root().0),
            "roots": roots,
            "inclusion": inclusion_json,
            "consistency": [consistency_json(&consistency), consistency_json(&consistency_4)],
        }),
    );
    put(
        "checkpoints",
        json!({
            "anchored": checkpoint_json(&anchored),
            "trusted": checkpoint_json(&trusted_checkpoint),
            "with_zk_roots": checkpoint_json(&with_zk),
        }),
    );
    put(
        "checkpoint_certificate",
        json!({
            "checkpoint": "anchored",
            "members": member_keys.iter().map(|k| hx(k.public().as_bytes())).collect::<Vec<_>>(),
            "signatures": shares_json(&certificate.signatures),
            "postcard": hx(&postcard::to_allocvec(&certificate).unwrap()),
        }),
    );
    let set_json: Vec<Value> = set
        .validators()
        .iter()
        .map(|v| json!({ "public": hx(v.key.as_bytes()), "power": v.power }))
        .collect();
    put(
        "validators",
        json!({
            "set": set_json,
            "total_power": set.total_power(),
            "postcard": hx(&postcard::to_allocvec(set.validators()).unwrap()),
            "hash": hx(&vhash.0),
        }),
    );
    let header_fields = json!({
        "chain_id": header.chain_id, "height": header.height, "time_ms": header.time_ms,
        "parent": hx(&header.parent.0), "tx_count": header.tx_count, "tx_root": hx(&header.tx_root.0),
        "state_root": hx(&header.state_root.0), "validators_hash": hx(&header.validators_hash.0),
        "next_validators_hash": hx(&header.next_validators_hash.0),
        "proposer": hx(header.proposer.as_bytes()), "engine": header.engine,
    });
    put(
        "block",
        json!({
            "header": header_fields,
            "encoded": hx(&header.encode()),
            "transactions": txs.iter().map(|t| hx(t)).collect::<Vec<_>>(),
            "block_id": hx(&block_id.0),
        }),
    );
    put("vote", vote_json(&vote));
    put("nil_prevote", vote_json(&nil_prevote));
    put(
        "commit_certificate",
        json!({
            "signatures": shares_json(&commit.signatures),
            "signed_power": 70,
            "total_power": set.total_power(),
            "postcard": hx(&postcard::to_allocvec(&commit).unwrap()),
        }),
    );
    put(
        "finality_proof",
        json!({
            "engine": Engine::Tendermint.name(),
            "postcard": hx(&postcard::to_allocvec(&finality).unwrap()),
        }),
    );
    put("state", json!({ "version": 0, "root": hx(&root), "proofs": proofs }));
    let trusted_json = json!({
        "chain_id": trusted.chain_id, "height": trusted.height, "block_id": hx(&trusted.block_id.0),
        "time_ms": trusted.time_ms, "engine": trusted.engine.name(),
    });
    let consistency_path: Vec<String> = consistency.path.iter().map(|d| hx(&d.0)).collect();
    put(
        "finality",
        json!({
            "trusted_head": trusted_json,
            "query": { "cluster": "alpha", "log": "orders", "partition": 0, "offset": 3 },
            "trusted_anchor": hx(&trusted_checkpoint.encode()),
            "consistency": {
                "old_size": consistency.old_size, "new_size": consistency.new_size, "path": consistency_path,
            },
            "evidence": hx(&postcard::to_allocvec(&evidence).unwrap()),
        }),
    );
    Value::Object(out)
}

// ---------------------------------------------------------------------------------------------
// The specification's rules, written again from the document (no Pyralog encoder or hasher).
// ---------------------------------------------------------------------------------------------

/// `H_d(parts...)`: BLAKE3 keyed with the key derived from the context string (§3.1).
fn h(context: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_keyed(&blake3::derive_key(context, &[]));
    for part in parts {
        hasher.update(part);
    }
    *hasher.finalize().as_bytes()
}

fn leaf_hash(data: &[u8]) -> [u8; 32] {
    h(MERKLE, &[&[0x00], data])
}

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    h(MERKLE, &[&[0x01], left, right])
}

/// RFC 9162 MTH over leaf hashes.
fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => h(MERKLE, &[]),
        1 => leaves[0],
        n => {
            let k = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// RFC 9162 §2.1.3.2, as the RFC writes it.
fn rfc9162_inclusion(index: u64, size: u64, leaf: [u8; 32], path: &[[u8; 32]], root: [u8; 32]) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnn, mut sn, mut r) = (index, size - 1, leaf);
    for p in path {
        if sn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == sn {
            r = node_hash(p, &r);
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == root
}

/// RFC 9162 §2.1.4.2, as the RFC writes it (for 0 < first < second).
fn rfc9162_consistency(
    first: u64,
    second: u64,
    first_hash: [u8; 32],
    second_hash: [u8; 32],
    path: &[[u8; 32]],
) -> bool {
    let mut path = path.to_vec();
    if first.is_power_of_two() {
        path.insert(0, first_hash);
    }
    let (mut fnn, mut sn) = (first - 1, second - 1);
    while fnn & 1 == 1 {
        fnn >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    fr == first_hash && sr == second_hash && sn == 0
}

/// Postcard's varint (§3.3).
fn varint(out: &mut Vec<u8>, mut x: u64) {
    loop {
        let low = (x & 0x7f) as u8;
        x >>= 7;
        if x == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// Postcard's length-prefixed bytes or string.
fn pbytes(out: &mut Vec<u8>, bytes: &[u8]) {
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// §4.1, from the vector's fields.
fn record_by_hand(r: &Value) -> Vec<u8> {
    let mut out = vec![1];
    out.extend_from_slice(&num(&r["epoch"]).to_be_bytes());
    out.extend_from_slice(&num(&r["timestamp_ms"]).to_be_bytes());
    out.extend_from_slice(&num(&r["scarab_id"]).to_be_bytes());
    out.push(u8::from(!r["key"].is_null()) | (u8::from(!r["producer"].is_null()) << 1));
    if !r["key"].is_null() {
        let key = unhex(&r["key"]);
        out.extend_from_slice(&(key.len() as u32).to_be_bytes());
        out.extend_from_slice(&key);
    }
    if !r["producer"].is_null() {
        out.extend_from_slice(&num(&r["producer"]["id"]).to_be_bytes());
        out.extend_from_slice(&num(&r["producer"]["sequence"]).to_be_bytes());
    }
    let value = unhex(&r["value"]);
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(&value);
    let headers = r["headers"].as_array().unwrap();
    out.extend_from_slice(&(headers.len() as u16).to_be_bytes());
    for header in headers {
        let (name, value) = (header["name"].as_str().unwrap().as_bytes(), unhex(&header["value"]));
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(&value);
    }
    out
}

/// §6.1 and §6.4, from the vector's fields: (canonical encoding, postcard form).
fn checkpoint_by_hand(c: &Value) -> (Vec<u8>, Vec<u8>) {
    let zk = c["zk_roots"].as_object().unwrap();
    let (cluster, log) = (c["cluster"].as_str().unwrap().as_bytes(), c["log"].as_str().unwrap().as_bytes());
    let trees = [("poseidon", 1u8, 0u64), ("rescue", 2, 1)];
    let mut canonical = vec![if zk.is_empty() { 1 } else { 2 }, cluster.len() as u8];
    canonical.extend_from_slice(cluster);
    canonical.push(log.len() as u8);
    canonical.extend_from_slice(log);
    canonical.extend_from_slice(&(num(&c["partition"]) as u32).to_be_bytes());
    for field in ["epoch", "size"] {
        canonical.extend_from_slice(&num(&c[field]).to_be_bytes());
    }
    canonical.extend_from_slice(&unhex(&c["root"]));
    canonical.extend_from_slice(&num(&c["time_ms"]).to_be_bytes());
    let mut post = Vec::new();
    pbytes(&mut post, cluster);
    pbytes(&mut post, log);
    for field in ["partition", "epoch", "size"] {
        varint(&mut post, num(&c[field]));
    }
    post.extend_from_slice(&unhex(&c["root"]));
    varint(&mut post, num(&c["time_ms"]));
    varint(&mut post, zk.len() as u64);
    if !zk.is_empty() {
        canonical.push(zk.len() as u8);
    }
    for (name, id, variant) in trees {
        if let Some(root) = zk.get(name) {
            canonical.push(id);
            canonical.extend_from_slice(&unhex(root));
            varint(&mut post, variant);
            post.extend_from_slice(&unhex(root));
        }
    }
    (canonical, post)
}

/// §8.1 and §8.2, from the vector's fields: (signing bytes, postcard form).
fn vote_by_hand(v: &Value) -> (Vec<u8>, Vec<u8>) {
    let chain = v["chain_id"].as_str().unwrap().as_bytes();
    let (signing_kind, postcard_kind) = match v["kind"].as_str().unwrap() {
        "prevote" => (1, 0),
        "precommit" => (2, 1),
        other => panic!("kind {other}"),
    };
    let mut signing = VOTE_CONTEXT.to_vec();
    signing.extend_from_slice(&(chain.len() as u16).to_be_bytes());
    signing.extend_from_slice(chain);
    signing.extend_from_slice(&num(&v["height"]).to_be_bytes());
    signing.extend_from_slice(&(num(&v["round"]) as u32).to_be_bytes());
    signing.push(signing_kind);
    let mut post = Vec::new();
    pbytes(&mut post, chain);
    varint(&mut post, num(&v["height"]));
    varint(&mut post, num(&v["round"]));
    varint(&mut post, postcard_kind);
    match &v["block"] {
        Value::Null => {
            signing.push(0);
            post.push(0);
        }
        block => {
            for out in [&mut signing, &mut post] {
                out.push(1);
                out.extend_from_slice(&unhex(block));
            }
        }
    }
    (signing, post)
}

/// §7: a certificate's postcard form from its message's postcard form and its shares.
fn certificate_by_hand(message: &[u8], shares: &Value) -> Vec<u8> {
    let shares = shares.as_array().unwrap();
    let mut out = message.to_vec();
    varint(&mut out, shares.len() as u64);
    for share in shares {
        out.extend_from_slice(&unhex(&share["signer"]));
        out.extend_from_slice(&unhex(&share["signature"]));
    }
    out
}

/// Ed25519 verification of hex bytes (§3.2).
fn signature_verifies(signer: &Value, message: &[u8], signature: &Value) -> bool {
    let key = PublicKey::from_bytes(&arr::<32>(signer)).expect("a valid public key");
    key.verify(message, &Signature::from_bytes(&arr::<64>(signature))).is_ok()
}

/// §11.1, from the vector's fields.
fn header_by_hand(f: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    pbytes(&mut out, f["chain_id"].as_str().unwrap().as_bytes());
    varint(&mut out, num(&f["height"]));
    varint(&mut out, num(&f["time_ms"]));
    out.extend_from_slice(&unhex(&f["parent"]));
    varint(&mut out, num(&f["tx_count"]));
    for field in ["tx_root", "state_root", "validators_hash", "next_validators_hash", "proposer"] {
        out.extend_from_slice(&unhex(&f[field]));
    }
    pbytes(&mut out, f["engine"].as_str().unwrap().as_bytes());
    out
}

/// A JMT sibling (§10.2).
enum SmtNode {
    Null,
    Internal([u8; 32], [u8; 32]),
    Leaf([u8; 32], [u8; 32]),
}

const PLACEHOLDER: [u8; 32] = *b"SPARSE_MERKLE_PLACEHOLDER_HASH__";

fn smt_leaf(key_hash: &[u8; 32], value_hash: &[u8; 32]) -> [u8; 32] {
    h(CHAIN_STATE, &[b"JMT::LeafNode", key_hash, value_hash])
}

fn smt_internal(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    h(CHAIN_STATE, &[b"JMT::IntrnalNode", left, right])
}

fn take<const N: usize>(input: &mut &[u8]) -> [u8; N] {
    let (head, rest) = input.split_first_chunk::<N>().expect("truncated proof");
    *input = rest;
    *head
}

fn take_varint(input: &mut &[u8]) -> u64 {
    let mut out = 0;
    for i in 0..10 {
        let [byte] = take::<1>(input);
        out |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return out;
        }
    }
    panic!("varint too long")
}

/// Parses §10.2's postcard form.
#[allow(clippy::type_complexity)]
fn parse_state_proof(mut input: &[u8]) -> (Option<([u8; 32], [u8; 32])>, Vec<SmtNode>) {
    let leaf = match take::<1>(&mut input) {
        [0] => None,
        [1] => Some((take(&mut input), take(&mut input))),
        other => panic!("leaf tag {other:?}"),
    };
    let count = take_varint(&mut input);
    let siblings = (0..count)
        .map(|_| match take_varint(&mut input) {
            0 => SmtNode::Null,
            1 => SmtNode::Internal(take(&mut input), take(&mut input)),
            2 => SmtNode::Leaf(take(&mut input), take(&mut input)),
            other => panic!("node tag {other}"),
        })
        .collect();
    assert!(input.is_empty(), "bytes after the proof");
    (leaf, siblings)
}

/// §10.3, as the document writes it.
fn state_proof_verifies(root: &[u8; 32], key: &[u8], value: Option<&[u8]>, proof: &[u8]) -> bool {
    let (leaf, siblings) = parse_state_proof(proof);
    let kh = h(CHAIN_STATE, &[key]);
    let n = siblings.len();
    let bit = |hash: &[u8; 32], i: usize| (hash[i / 8] >> (7 - i % 8)) & 1 == 1;
    if n > 256 {
        return false;
    }
    match (value, leaf) {
        (Some(v), Some((k, vh))) if k != kh || vh != h(CHAIN_STATE, &[v]) => return false,
        (Some(_), None) => return false,
        (None, Some((k, _)))
            if k == kh || (0..256).take_while(|&i| bit(&k, i) == bit(&kh, i)).count() < n =>
        {
            return false;
        }
        _ => {}
    }
    let mut current = leaf.map_or(PLACEHOLDER, |(k, vh)| smt_leaf(&k, &vh));
    for (i, sibling) in siblings.iter().enumerate() {
        let s = match sibling {
            SmtNode::Null => PLACEHOLDER,
            SmtNode::Internal(l, r) => smt_internal(l, r),
            SmtNode::Leaf(k, vh) => smt_leaf(k, vh),
        };
        current = if bit(&kh, n - 1 - i) { smt_internal(&s, &current) } else { smt_internal(&current, &s) };
    }
    current == *root
}

/// Re-derives the vectors from the specification's rules.
fn check_independently(v: &Value) {
    // §3.1: the domain keys are BLAKE3 derive_key of the context strings, empty key material.
    for d in v["domains"].as_array().unwrap() {
        assert_eq!(unhex(&d["key"]), blake3::derive_key(d["context"].as_str().unwrap(), &[]), "{d}");
    }
    let contexts = v["signing_contexts"].as_array().unwrap();
    assert_eq!(unhex(&contexts[0]["bytes"]), CHECKPOINT_CONTEXT);
    assert_eq!(unhex(&contexts[1]["bytes"]), VOTE_CONTEXT);
    for k in v["keys"].as_array().unwrap() {
        let parsed: PublicKey = k["text"].as_str().unwrap().parse().unwrap();
        assert_eq!(parsed.as_bytes().as_slice(), unhex(&k["public"]), "Bech32m text of {k}");
    }

    // §3.3: varint examples; §3.4: thresholds in integers.
    let examples: Vec<(u64, &str)> =
        vec![(0, "00"), (127, "7f"), (128, "8001"), (300, "ac02"), (u64::MAX, "ffffffffffffffffff01")];
    for (i, (x, bytes)) in examples.iter().enumerate() {
        let mut out = Vec::new();
        varint(&mut out, *x);
        assert_eq!((hx(&out).as_str(), v["postcard"][i]["bytes"].as_str().unwrap()), (*bytes, *bytes));
    }
    assert_eq!(v["postcard"][9]["bytes"].as_str().unwrap(), "ab".repeat(32), "a digest has no length prefix");
    for t in v["thresholds"].as_array().unwrap() {
        let (signed, total) = (u128::from(num(&t["signed"])), u128::from(num(&t["total"])));
        let met = match t["rule"].as_str().unwrap() {
            "> 2/3" => signed * 3 > total * 2,
            "> 1/2" => signed * 2 > total,
            "> 1/3" => signed * 3 > total,
            other => panic!("rule {other}"),
        };
        assert_eq!(t["met"].as_bool().unwrap(), met, "{t}");
    }

    // §4.1 and §5.1: records, leaves, roots.
    let records = v["records"].as_array().unwrap();
    let mut leaves = Vec::new();
    for r in records {
        let encoded = record_by_hand(r);
        assert_eq!(hx(&encoded), r["encoded"].as_str().unwrap(), "record {}", r["offset"]);
        assert_eq!(hx(&leaf_hash(&encoded)), r["leaf_hash"].as_str().unwrap());
        leaves.push(leaf_hash(&encoded));
    }
    let m = &v["merkle"];
    assert_eq!(unhex(&m["empty_root"]), mth(&[]));
    for root in m["roots"].as_array().unwrap() {
        assert_eq!(unhex(&root["root"]), mth(&leaves[..num(&root["size"]) as usize]));
    }

    // §5.2 and §5.3 with RFC 9162's own algorithms.
    let digests = |list: &Value| list.as_array().unwrap().iter().map(arr::<32>).collect::<Vec<_>>();
    let inc = &m["inclusion"];
    let path = digests(&inc["path"]);
    let (index, size) = (num(&inc["index"]), num(&inc["size"]));
    assert!(rfc9162_inclusion(index, size, arr(&inc["leaf_hash"]), &path, arr(&inc["root"])));
    assert!(!rfc9162_inclusion(index, size, leaves[2], &path, arr(&inc["root"])), "another leaf");
    assert!(!rfc9162_inclusion(index, size, arr(&inc["leaf_hash"]), &path[..2], arr(&inc["root"])), "short");
    for c in m["consistency"].as_array().unwrap() {
        let (old, new) = (num(&c["old_size"]), num(&c["new_size"]));
        let (old_root, new_root, path) = (arr(&c["old_root"]), arr(&c["new_root"]), digests(&c["path"]));
        assert!(rfc9162_consistency(old, new, old_root, new_root, &path), "{old} -> {new}");
        assert!(!rfc9162_consistency(old, new, new_root, new_root, &path), "a forged old root");
        assert_eq!(path.len(), if old == 3 { 4 } else { 1 }, "RFC 9162 section 2.1.5's proof lengths");
    }

    // §6: checkpoints: encodings, ids, signing bytes.
    for (name, c) in v["checkpoints"].as_object().unwrap() {
        let (canonical, post) = checkpoint_by_hand(c);
        assert_eq!(hx(&canonical), c["encoded"].as_str().unwrap(), "checkpoint {name}");
        assert_eq!(hx(&post), c["postcard"].as_str().unwrap(), "checkpoint {name} postcard");
        assert_eq!(unhex(&c["id"]), h(CHECKPOINT, &[&canonical]));
        assert_eq!(unhex(&c["signing_bytes"]), [CHECKPOINT_CONTEXT, canonical.as_slice()].concat());
    }
    let anchored = &v["checkpoints"]["anchored"];
    assert_eq!(unhex(&anchored["root"]), mth(&leaves));

    // §7: the checkpoint certificate: distinct members, valid signatures, a majority.
    let cert = &v["checkpoint_certificate"];
    let members: Vec<String> =
        cert["members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_owned()).collect();
    let signing = unhex(&anchored["signing_bytes"]);
    let mut signers = std::collections::BTreeSet::new();
    for share in cert["signatures"].as_array().unwrap() {
        assert!(members.contains(&share["signer"].as_str().unwrap().to_owned()));
        assert!(signers.insert(share["signer"].as_str().unwrap()));
        assert!(signature_verifies(&share["signer"], &signing, &share["signature"]));
        assert!(!signature_verifies(&share["signer"], &unhex(&anchored["encoded"]), &share["signature"]));
    }
    assert!(signers.len() * 2 > members.len(), "a majority of the members");
    let (_, checkpoint_postcard) = checkpoint_by_hand(anchored);
    assert_eq!(
        hx(&certificate_by_hand(&checkpoint_postcard, &cert["signatures"])),
        cert["postcard"].as_str().unwrap()
    );

    // §9: the validator set: canonical order, postcard, hash.
    let vs = &v["validators"];
    let set = vs["set"].as_array().unwrap();
    let order: Vec<(u64, Vec<u8>)> = set.iter().map(|x| (num(&x["power"]), unhex(&x["public"]))).collect();
    let mut sorted = order.clone();
    sorted.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    assert_eq!(order, sorted, "canonical order: power down, then key bytes up");
    let mut validators_postcard = Vec::new();
    varint(&mut validators_postcard, set.len() as u64);
    for (power, key) in &order {
        validators_postcard.extend_from_slice(key);
        varint(&mut validators_postcard, *power);
    }
    assert_eq!(hx(&validators_postcard), vs["postcard"].as_str().unwrap());
    let vhash = h(CHAIN_STATE, &[b"validators\0", &validators_postcard]);
    assert_eq!(hx(&vhash), vs["hash"].as_str().unwrap());
    let total: u64 = order.iter().map(|(p, _)| p).sum();
    assert_eq!(total, num(&vs["total_power"]));

    // §11: the header, its transactions root and its block id.
    let block = &v["block"];
    let fields = &block["header"];
    let header_bytes = header_by_hand(fields);
    assert_eq!(hx(&header_bytes), block["encoded"].as_str().unwrap());
    let tx_leaves: Vec<[u8; 32]> =
        block["transactions"].as_array().unwrap().iter().map(|t| leaf_hash(&unhex(t))).collect();
    assert_eq!(unhex(&fields["tx_root"]), mth(&tx_leaves));
    assert_eq!(num(&fields["tx_count"]), tx_leaves.len() as u64);
    let count = (num(&fields["tx_count"]) + 1).to_be_bytes();
    let block_id = h(CONSENSUS_VALUE, &[&count, &leaf_hash(&header_bytes), &unhex(&fields["tx_root"])]);
    assert_eq!(hx(&block_id), block["block_id"].as_str().unwrap());
    assert_eq!(unhex(&fields["validators_hash"]), vhash);
    assert_eq!(unhex(&fields["state_root"]), unhex(&v["state"]["root"]));

    // §8: votes, the commit certificate (more than 2/3 of the power), the finality proof.
    for name in ["vote", "nil_prevote"] {
        let (signing, post) = vote_by_hand(&v[name]);
        assert_eq!(hx(&signing), v[name]["signing_bytes"].as_str().unwrap(), "{name}");
        assert_eq!(hx(&post), v[name]["postcard"].as_str().unwrap(), "{name}");
    }
    let vote = &v["vote"];
    assert_eq!(vote["block"], block["block_id"]);
    assert_eq!(
        (num(&vote["height"]), vote["chain_id"].clone()),
        (num(&fields["height"]), fields["chain_id"].clone())
    );
    let commit = &v["commit_certificate"];
    let (vote_signing, vote_postcard) = vote_by_hand(vote);
    let mut power = 0u64;
    let mut seen = std::collections::BTreeSet::new();
    for share in commit["signatures"].as_array().unwrap() {
        let signer = unhex(&share["signer"]);
        assert!(seen.insert(signer.clone()), "distinct signers");
        power += order.iter().find(|(_, k)| *k == signer).expect("a validator").0;
        assert!(signature_verifies(&share["signer"], &vote_signing, &share["signature"]));
    }
    assert_eq!(power, num(&commit["signed_power"]));
    assert!(u128::from(power) * 3 > u128::from(total) * 2, "more than 2/3 of the power");
    let commit_postcard = certificate_by_hand(&vote_postcard, &commit["signatures"]);
    assert_eq!(hx(&commit_postcard), commit["postcard"].as_str().unwrap());
    let finality_postcard = [[0u8, 0].as_slice(), commit_postcard.as_slice()].concat();
    assert_eq!(hx(&finality_postcard), v["finality_proof"]["postcard"].as_str().unwrap());

    // §10: state proofs, keys and values.
    let root: [u8; 32] = arr(&v["state"]["root"]);
    let mut values = BTreeMap::new();
    for p in v["state"]["proofs"].as_array().unwrap() {
        let (key, proof) = (unhex(&p["key"]), unhex(&p["proof"]));
        let value = (!p["value"].is_null()).then(|| unhex(&p["value"]));
        assert_eq!(unhex(&p["key_hash"]), h(CHAIN_STATE, &[&key]));
        if let Some(value) = &value {
            assert_eq!(unhex(&p["value_hash"]), h(CHAIN_STATE, &[value]));
        }
        assert!(state_proof_verifies(&root, &key, value.as_deref(), &proof), "proof of {}", p["name"]);
        // Any other answer is refused: another value, or the opposite presence.
        assert!(!state_proof_verifies(&root, &key, Some(b"forged"), &proof), "forged {}", p["name"]);
        if value.is_some() {
            assert!(!state_proof_verifies(&root, &key, None, &proof), "absence of {}", p["name"]);
        }
        values.insert(p["name"].as_str().unwrap().to_owned(), (key, value, proof));
    }
    let text_key = |name: &str| String::from_utf8(values[name].0.clone()).unwrap();
    assert_eq!(text_key("cluster"), "cluster/alpha");
    assert_eq!(text_key("anchor"), "anchor/alpha/orders/0");
    assert_eq!(text_key("validators"), "meta/validators");
    assert_eq!(text_key("absent"), "cluster/beta");
    assert_eq!(values["account"].0, [b"account/".as_slice(), unhex(&set[3]["public"]).as_slice()].concat());
    assert_eq!(values["account"].1.as_deref(), Some([0xe8, 0x07, 0x03].as_slice()), "balance 1000, nonce 3");
    assert_eq!(values["validators"].1.as_deref(), Some(validators_postcard.as_slice()));
    let mut registration = unhex(&v["keys"][4]["public"]);
    varint(&mut registration, 3);
    for member in &members {
        registration.extend_from_slice(&hex::decode(member).unwrap());
    }
    varint(&mut registration, 1);
    pbytes(&mut registration, b"/ip4/127.0.0.1/tcp/40333");
    assert_eq!(values["cluster"].1.as_deref(), Some(registration.as_slice()));
    let mut anchor_value = unhex(&cert["postcard"]);
    varint(&mut anchor_value, 41);
    assert_eq!(values["anchor"].1.as_deref(), Some(anchor_value.as_slice()));

    // §12.6: the evidence container, assembled from the parts.
    let f = &v["finality"];
    let mut evidence = header_bytes.clone();
    evidence.extend_from_slice(&finality_postcard);
    for name in ["cluster", "anchor"] {
        let (_, value, proof) = &values[name];
        evidence.push(1);
        pbytes(&mut evidence, value.as_ref().unwrap());
        evidence.extend_from_slice(proof);
    }
    pbytes(&mut evidence, &unhex(&records[3]["encoded"]));
    varint(&mut evidence, index);
    varint(&mut evidence, size);
    varint(&mut evidence, path.len() as u64);
    path.iter().for_each(|d| evidence.extend_from_slice(d));
    assert_eq!(hx(&evidence), f["evidence"].as_str().unwrap());
    assert_eq!(f["trusted_anchor"], v["checkpoints"]["trusted"]["encoded"]);
    assert_eq!(f["trusted_head"]["block_id"], fields["parent"]);
    assert_eq!(f["consistency"]["path"], m["consistency"][0]["path"]);

    // §3.3: postcard's decoder is not canonical, so verifiers re-encode.
    assert_eq!(postcard::from_bytes::<u64>(&[0x80, 0x00]).unwrap(), 0, "an overlong varint decodes");
    assert_eq!(postcard::from_bytes::<u8>(&[1, 2]).unwrap(), 1, "trailing bytes are ignored");
    assert!(
        Header::decode(&[header_bytes.as_slice(), [0u8].as_slice()].concat()).is_err(),
        "headers are canonical"
    );
}

/// The document states what the vectors hold: its contexts, derived keys and regeneration command.
fn check_document(v: &Value) {
    let doc = std::fs::read_to_string(spec_path()).expect("docs/verifier-spec.md");
    assert!(!doc.contains("@@"), "placeholders left in the specification");
    for d in v["domains"].as_array().unwrap() {
        for field in ["context", "key"] {
            let text = d[field].as_str().unwrap();
            assert!(doc.contains(&format!("`{text}`")), "the specification lacks {field} {text}");
        }
    }
    for context in ["pyralog checkpoint signature v1\\0", "pyralog/consensus/vote/v1\\0"] {
        assert!(doc.contains(context), "the specification lacks {context}");
    }
    // The worked examples: every hex string of 8 bytes or more in the document is a piece of a
    // vector, so an example cannot go stale when the vectors change.
    let vectors_text = v.to_string();
    for run in doc.split(|c: char| !matches!(c, '0'..='9' | 'a'..='f')).filter(|run| run.len() >= 16) {
        assert!(vectors_text.contains(run), "the specification shows {run}, which no vector holds");
    }
    let shown = [
        &v["records"][3]["leaf_hash"],
        &v["checkpoints"]["anchored"]["id"],
        &v["checkpoints"]["with_zk_roots"]["id"],
        &v["validators"]["hash"],
        &v["block"]["block_id"],
        &v["state"]["root"],
        &v["state"]["proofs"][4]["key_hash"],
    ];
    for value in shown {
        assert!(doc.contains(value.as_str().unwrap()), "the specification's examples lack {value}");
    }
    for needle in [
        "docs/verifier-vectors.json",
        "PYRALOG_WRITE_VECTORS=1 cargo test --locked -p pyralog-node --test node spec_vectors",
        "JMT::LeafNode",
        "JMT::IntrnalNode",
        "SPARSE_MERKLE_PLACEHOLDER_HASH__",
        "validators\\0",
    ] {
        assert!(doc.contains(needle), "the specification lacks {needle}");
    }
}
