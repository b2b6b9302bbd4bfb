//! The vectors, computed with the code.

use super::common::*;

/// The client's clock when the vectors are verified (after every header's time).
const NOW: u64 = BASE_MS + 100_000;

/// A state write of the vectors: its name in the file, its key, its value.
pub(super) type StateEntry = (&'static str, Vec<u8>, Option<Vec<u8>>);

pub(super) fn key_json(name: &str, seed: u8) -> Value {
    let key = Keypair::from_secret(&[seed; 32]);
    json!({ "name": name, "secret": hx(&[seed; 32]), "public": hx(key.public().as_bytes()), "text": key.public().to_string() })
}

pub(super) fn record(offset: u64) -> StoredRecord {
    let proven = offset == 3;
    StoredRecord {
        offset,
        epoch: if offset < 4 { 1 } else { 2 },
        record: Record {
            key: (offset.is_multiple_of(2) || proven).then(|| format!("user-{offset}").into_bytes()),
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

pub(super) fn record_json(stored: &StoredRecord) -> Value {
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

pub(super) fn checkpoint_json(checkpoint: &Checkpoint) -> Value {
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

pub(super) fn shares_json(shares: &[SignatureShare]) -> Vec<Value> {
    shares
        .iter()
        .map(|s| json!({ "signer": hx(s.signer.as_bytes()), "signature": hx(&s.signature.to_bytes()) }))
        .collect()
}

pub(super) fn vote_json(vote: &Vote) -> Value {
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

pub(super) fn build() -> Value {
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

    // §11.3: the next block's consensus info: block 42's finality proof, and the validator of
    // power 10 proven to have prevoted block 42 and nil in one round.
    let prevote = Vote { block: Some(block_id), ..nil_prevote.clone() };
    let double_sign = DuplicateVote {
        validator: validator_keys[0].public(),
        first_signature: SignatureShare::sign(&validator_keys[0], &prevote).signature,
        second_signature: SignatureShare::sign(&validator_keys[0], &nil_prevote).signature,
        first: prevote.clone(),
        second: nil_prevote.clone(),
    };
    let info = ConsensusInfo {
        last_commit: Some(finality.clone()),
        evidence: vec![Evidence::DuplicateVote(double_sign.clone())],
    };
    assert!(info.evidence[0].verify());
    assert_eq!(ConsensusInfo::decode(&info.encode()).as_ref(), Ok(&info));

    // §12: the light client's steps and the whole path.
    let trusted = TrustedHead {
        chain_id: CHAIN.into(),
        height: 41,
        block_id: trusted_id,
        time_ms: BASE_MS + 41_000,
        next_validators: set.validators().to_vec(),
        engine: Engine::Tendermint,
        trusting_period_ms: None,
    };
    let after =
        verify_adjacent(&trusted, &header, &finality, None, NOW).expect("the sequential step verifies");
    assert_eq!((after.height, after.block_id), (42, block_id));
    let genesis = TrustedHead::genesis(CHAIN, Engine::Tendermint, &set);
    let skipped = verify_skipping(&genesis, &header, &finality, set.validators(), None, NOW)
        .expect("skipping verifies");
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
        verify_finality(&trusted, &query, &evidence, Some(&trusted_checkpoint), Some(&consistency), NOW)
            .expect("the finality path verifies");
    assert_eq!(verified, anchored);
    // The same path behind CometBFT (§12.9): CometBFT's header at the head's height carries the
    // head's state root as its app hash.
    let comet_evidence = pyralog_light::comet::CometEvidence {
        height: header.height,
        cluster: evidence.cluster.clone(),
        anchor: evidence.anchor.clone(),
        record: evidence.record.clone(),
        inclusion: evidence.inclusion.clone(),
    };
    let state = pyralog_light::chain::AnchoredState {
        cluster: &comet_evidence.cluster,
        anchor: &comet_evidence.anchor,
        record: &comet_evidence.record,
        inclusion: &comet_evidence.inclusion,
    };
    let under_root = pyralog_light::chain::verify_under_state_root(
        &header.state_root.0,
        &query,
        &state,
        Some(&trusted_checkpoint),
        Some(&consistency),
    )
    .expect("the record path under the app hash verifies");
    assert_eq!(under_root, anchored);

    let mut out = serde_json::Map::new();
    let mut put = |name: &str, value: Value| out.insert(name.to_owned(), value);
    put(
        "description",
        json!(
            "Pyralog verifier test vectors: see docs/verifier-spec.md section 13. Generated by node/tests/node/spec_vectors/; PYRALOG_WRITE_VECTORS=1 rewrites this file. Hex is lowercase without 0x."
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
    // The same certificate as a PBFT proof (PBFT's COMMITs are precommits whose round is the
    // view): only the engine index differs, and it verifies only for a PBFT chain.
    let pbft = FinalityProof::quorum(Engine::Pbft, commit.clone());
    assert_eq!(pbft.verify(Engine::Pbft, CHAIN, 42, &block_id, &set), Ok(70));
    assert!(pbft.verify(Engine::Tendermint, CHAIN, 42, &block_id, &set).is_err());
    put(
        "finality_proof_pbft",
        json!({
            "engine": Engine::Pbft.name(),
            "postcard": hx(&postcard::to_allocvec(&pbft).unwrap()),
        }),
    );
    put(
        "consensus_info",
        json!({
            "accused": hx(double_sign.validator.as_bytes()),
            "first": vote_json(&prevote),
            "first_signature": hx(&double_sign.first_signature.to_bytes()),
            "second_signature": hx(&double_sign.second_signature.to_bytes()),
            "postcard": hx(&info.encode()),
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
            "comet_app_hash": hx(&header.state_root.0),
            "comet_evidence": hx(&postcard::to_allocvec(&comet_evidence).unwrap()),
        }),
    );
    put("contracts", super::contracts::contract_vectors());
    put("pow", super::work::pow_vectors());
    Value::Object(out)
}
