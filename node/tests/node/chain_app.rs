//! The chain application: transfers, nonces and fees; cluster registration; checkpoint anchors
//! that must be certified by the cluster and extend the previous anchor.

use pyralog_chain::app::ChainApp;
use pyralog_chain::block::{ConsensusInfo, Header};
use pyralog_chain::proof::verify_state_proof;
use pyralog_chain::state::StateStore;
use pyralog_chain::tx::{Action, SignedTx, Tx};
use pyralog_chain::values::{Account, ClusterRecord, Genesis, account_key, codes};
use pyralog_consensus::app::{
    BlockContext, CheckContext, DecidedBlock, PayloadVerdict, ProposalContext, ReplicatedApp,
};
use pyralog_consensus::testkit::double_vote;
use pyralog_consensus::vote::{Evidence, Vote, VoteKind, payload_id};
use pyralog_consensus::{CommitCertificate, Engine, FinalityProof};
use pyralog_crypto::merkle::{Blake3Merkle, MemoryNodeStore, MerkleTree};
use pyralog_crypto::quorum::SignatureShare;
use pyralog_crypto::{Checkpoint, ClusterId, Keypair, LogName, QuorumCertificate};

const CHAIN: &str = "pyralog-chain-test";

pub(super) struct Chain {
    pub(super) app: ChainApp,
    /// The one validator (the app's proposer).
    proposer: pyralog_crypto::PublicKey,
    height: u64,
    _dir: tempfile::TempDir,
}

impl Chain {
    pub(super) fn new(accounts: &[(&Keypair, u64)]) -> Chain {
        let dir = tempfile::tempdir().unwrap();
        let proposer = Keypair::generate().public();
        let mut app = ChainApp::new(CHAIN, StateStore::open(dir.path()).unwrap(), proposer);
        let genesis = Genesis {
            accounts: accounts.iter().map(|(k, b)| (k.public(), *b)).collect(),
            ..Genesis::default()
        };
        let validators = [pyralog_consensus::Validator { key: proposer, power: 1 }];
        app.init_chain(CHAIN, &validators, &postcard::to_allocvec(&genesis).unwrap()).unwrap();
        Chain { app, proposer, height: 0, _dir: dir }
    }

    /// Runs one block of `txs` (after the header and consensus info a proposer would build);
    /// returns their result codes.
    pub(super) fn block(&mut self, txs: Vec<Vec<u8>>) -> Vec<u32> {
        self.block_results(txs).into_iter().map(|r| r.code).collect()
    }

    /// [`Chain::block`], returning the transactions' results (codes and logs).
    pub(super) fn block_results(&mut self, txs: Vec<Vec<u8>>) -> Vec<pyralog_consensus::app::TxResult> {
        self.height += 1;
        let rest: Vec<Vec<u8>> =
            std::iter::once(info_at(self.height, Vec::new()).encode()).chain(txs).collect();
        let header = self.app.build_header(self.height, &rest, now_ms()).unwrap();
        let payload: Vec<Vec<u8>> = std::iter::once(header.encode()).chain(rest).collect();
        assert_eq!(payload_id(&payload), header.block_id(), "the header alone rebuilds the block id");
        let block = DecidedBlock {
            height: self.height,
            id: header.block_id(),
            time_ms: 0,
            proposer: None,
            txs: payload,
            last_commit_signers: Vec::new(),
            evidence: Vec::new(),
        };
        let finalized = self.app.finalize(&block).unwrap();
        assert_eq!(self.app.commit().unwrap(), self.height);
        assert_eq!(finalized.app_hash, self.app.state().root(self.height).unwrap().to_vec());
        assert_eq!(finalized.tx_results[0].log, "header");
        assert_eq!(finalized.tx_results[1].log, "consensus info");
        finalized.tx_results[2..].to_vec()
    }

    pub(super) fn account(&self, key: &Keypair) -> Account {
        let version = self.app.state().latest_version().unwrap().unwrap();
        let (value, proof) = self.app.state().get_with_proof(&account_key(&key.public()), version).unwrap();
        let root = self.app.state().root(version).unwrap();
        verify_state_proof(&root, &account_key(&key.public()), value.as_deref(), &proof).unwrap();
        value.map(|v| postcard::from_bytes(&v).unwrap()).unwrap_or_default()
    }
}

/// A finality proof of the block before `height` as a proposer would carry it (the app does not
/// verify it: the driver does, against the validator sets).
fn last_commit_before(height: u64, signer: &Keypair) -> FinalityProof {
    let vote = Vote {
        chain_id: CHAIN.into(),
        height: height - 1,
        round: 0,
        kind: VoteKind::Precommit,
        block: Some(pyralog_crypto::Digest([7; 32])),
    };
    let signatures = vec![SignatureShare::sign(signer, &vote)];
    FinalityProof::quorum(Engine::Tendermint, CommitCertificate { message: vote, signatures })
}

/// The consensus info of a block at `height`: a last commit after height 1, and `evidence`.
fn info_at(height: u64, evidence: Vec<Evidence>) -> ConsensusInfo {
    let last_commit = (height > 1).then(|| last_commit_before(height, &Keypair::from_secret(&[5; 32])));
    ConsensusInfo { last_commit, evidence }
}

pub(super) fn tx(sender: &Keypair, nonce: u64, fee: u64, action: Action) -> Vec<u8> {
    SignedTx::sign(Tx { chain_id: CHAIN.into(), sender: sender.public(), nonce, fee, action }, sender)
        .encode()
}

fn transfer(sender: &Keypair, nonce: u64, to: &Keypair, amount: u64) -> Vec<u8> {
    tx(sender, nonce, 1, Action::Transfer { to: to.public(), amount })
}

#[test]
fn transfers_take_fees_and_nonces_and_refuse_replays_and_forgeries() {
    let (alice, bob) = (Keypair::generate(), Keypair::generate());
    let mut chain = Chain::new(&[(&alice, 100)]);
    let first = transfer(&alice, 0, &bob, 30);
    assert_eq!(chain.app.check_tx(&first).unwrap(), Ok(()));
    assert_eq!(chain.block(vec![first.clone()]), vec![codes::OK]);
    assert_eq!(chain.account(&alice), Account { balance: 69, nonce: 1 });
    assert_eq!(chain.account(&bob), Account { balance: 30, nonce: 0 });

    let accounts = (chain.account(&alice), chain.account(&bob));
    let mut forged = SignedTx::sign(
        Tx {
            chain_id: CHAIN.into(),
            sender: alice.public(),
            nonce: 1,
            fee: 1,
            action: Action::Transfer { to: bob.public(), amount: 60 },
        },
        &bob,
    );
    let other_chain =
        SignedTx::sign(Tx { chain_id: "elsewhere".into(), ..forged.tx.clone() }, &alice).encode();
    forged.tx.nonce = 1;
    let results = chain.block(vec![
        first,                                                               // replayed: nonce 0 was used
        forged.encode(),                                                     // signed by bob in alice's name
        other_chain,                                                         // for another chain
        transfer(&bob, 0, &alice, 0)[..10].to_vec(),                         // truncated
        tx(&bob, 0, 31, Action::Transfer { to: alice.public(), amount: 1 }), // fee over the balance
    ]);
    assert_eq!(results, vec![codes::BAD_NONCE, codes::INVALID, codes::INVALID, codes::INVALID, codes::FEE]);
    // Nothing changed but the block record (the next header's parent).
    assert_eq!((chain.account(&alice), chain.account(&bob)), accounts);

    // A failing action still costs its fee and nonce; the next nonce then works.
    let results = chain.block(vec![transfer(&bob, 0, &alice, 1_000), transfer(&bob, 1, &alice, 9)]);
    assert_eq!(results, vec![codes::ACTION_FAILED, codes::OK]);
    assert_eq!(chain.account(&bob), Account { balance: 30 - 1 - 1 - 9, nonce: 2 });
    assert_eq!(chain.account(&alice).balance, 69 + 9);
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[test]
fn payloads_need_the_right_header_and_valid_transactions() {
    let (alice, bob) = (Keypair::generate(), Keypair::generate());
    let mut chain = Chain::new(&[(&alice, 10)]);
    chain.block(Vec::new());
    let ok = transfer(&alice, 0, &bob, 1);
    let now = now_ms();
    let info = info_at(2, Vec::new()).encode();
    let header = chain.app.build_header(2, &[info.clone(), ok.clone()], now).unwrap();
    let payload = |header: &Header, txs: &[Vec<u8>]| -> Vec<Vec<u8>> {
        [header.encode(), info.clone()].into_iter().chain(txs.iter().cloned()).collect()
    };
    let check = CheckContext { height: 2, parent: header.parent, now_ms: now, on_unfinalised: false };
    assert_eq!(
        chain.app.process_payload(&check, &payload(&header, std::slice::from_ref(&ok))).unwrap(),
        PayloadVerdict::Accept
    );
    // The same payload checked against another parent than the validator's last block.
    let elsewhere = CheckContext { parent: pyralog_crypto::Digest([9; 32]), ..check.clone() };
    assert_eq!(
        chain.app.process_payload(&elsewhere, &payload(&header, std::slice::from_ref(&ok))).unwrap(),
        PayloadVerdict::Reject
    );
    // Garbage after a matching header, or no header at all.
    let with_garbage =
        chain.app.build_header(2, &[info.clone(), ok.clone(), b"garbage".to_vec()], now).unwrap();
    assert_eq!(
        chain
            .app
            .process_payload(&check, &payload(&with_garbage, &[ok.clone(), b"garbage".to_vec()]))
            .unwrap(),
        PayloadVerdict::Reject
    );
    assert_eq!(chain.app.process_payload(&check, std::slice::from_ref(&ok)).unwrap(), PayloadVerdict::Reject);
    // Each header field that lies: refused, with the reason.
    let lies: Vec<(&str, Header)> = vec![
        ("height", Header { height: 3, ..header.clone() }),
        ("parent", Header { parent: pyralog_crypto::Digest([1; 32]), ..header.clone() }),
        ("state root", Header { state_root: pyralog_crypto::Digest([2; 32]), ..header.clone() }),
        ("tx count", Header { tx_count: 3, ..header.clone() }),
        ("tx root", Header { tx_root: pyralog_crypto::Digest([3; 32]), ..header.clone() }),
        ("validators", Header { validators_hash: pyralog_crypto::Digest([4; 32]), ..header.clone() }),
        ("engine", Header { engine: "pow".into(), ..header.clone() }),
        ("chain", Header { chain_id: "elsewhere".into(), ..header.clone() }),
        ("time ahead", Header { time_ms: now + 60_000, ..header.clone() }),
        ("time before the parent", Header { time_ms: 1, ..header.clone() }),
        ("proposer", Header { proposer: Keypair::generate().public(), ..header.clone() }),
    ];
    for (what, lie) in lies {
        let verdict = chain.app.check_payload(2, &payload(&lie, std::slice::from_ref(&ok)), now).unwrap();
        let reason = verdict.expect_err(&format!("a header with a wrong {what} was accepted"));
        let expected = match what {
            "engine" => "a pow block, but the chain runs tendermint".to_owned(),
            "time ahead" => format!("block time {} is ahead of this clock ({now})", now + 60_000),
            "time before the parent" => "block time 1 is not after the parent's".to_owned(),
            "proposer" => "is not a validator".to_owned(),
            _ => "differs from the expected".to_owned(),
        };
        assert!(reason.contains(&expected), "wrong {what}: {reason}");
    }
    // The consensus info must follow the header, decode, and carry the parent's proof after
    // height 1.
    let header_only = chain.app.build_header(2, &[], now).unwrap();
    assert_eq!(
        chain.app.check_payload(2, &[header_only.encode()], now).unwrap(),
        Err("no consensus info".into())
    );
    let no_info = chain.app.build_header(2, std::slice::from_ref(&ok), now).unwrap();
    let reason = chain.app.check_payload(2, &[no_info.encode(), ok.clone()], now).unwrap().unwrap_err();
    assert!(
        reason.starts_with("undecodable consensus info") || reason.starts_with("non-canonical"),
        "{reason}"
    );
    let bare = ConsensusInfo::default().encode();
    let bare_header = chain.app.build_header(2, std::slice::from_ref(&bare), now).unwrap();
    assert_eq!(
        chain.app.check_payload(2, &[bare_header.encode(), bare], now).unwrap(),
        Err("a block at height 2 carries a last commit only after height 1".into())
    );
    // A proposer takes a sender's consecutive nonces in order and skips what cannot apply.
    let candidates = vec![
        transfer(&alice, 1, &bob, 1),
        ok.clone(),
        transfer(&alice, 1, &bob, 1),
        transfer(&alice, 5, &bob, 1),
    ];
    // The header carries the context the driver supplies, and the driver reads it back.
    let last_commit = last_commit_before(2, &Keypair::generate());
    let context = ProposalContext {
        height: 2,
        proposer: chain.proposer,
        parent: header.parent,
        time_ms: now + 1,
        last_commit: Some(last_commit.clone()),
        evidence: Vec::new(),
        unfinalised: Vec::new(),
    };
    let picked = chain.app.prepare_payload(&context, candidates.clone(), 1 << 20).unwrap();
    assert_eq!(picked[2..], [candidates[1].clone(), candidates[2].clone()]);
    assert_eq!(
        chain.app.process_payload(&CheckContext { now_ms: now + 1, ..check }, &picked).unwrap(),
        PayloadVerdict::Accept,
        "its own header checks out"
    );
    assert_eq!(
        chain.app.block_context(&picked),
        BlockContext {
            time_ms: now + 1,
            proposer: Some(chain.proposer),
            last_commit: Some(last_commit),
            evidence: Vec::new()
        }
    );
    assert_eq!(chain.app.block_context(&[b"no header".to_vec()]), BlockContext::default());
    // A driver whose parent is not the app's last block is a bug: the app says so.
    let wrong_parent = ProposalContext { parent: pyralog_crypto::Digest([9; 32]), ..context };
    assert!(matches!(
        chain.app.prepare_payload(&wrong_parent, candidates, 1 << 20),
        Err(pyralog_chain::app::AppError::Context(_))
    ));
}

/// A cluster of three replicas with a real Merkle tree, certifying checkpoints.
struct Cluster {
    id: ClusterId,
    replicas: Vec<Keypair>,
    tree: MerkleTree<Blake3Merkle, MemoryNodeStore>,
}

impl Cluster {
    fn new(name: &str) -> Cluster {
        Cluster {
            id: ClusterId::new(name).unwrap(),
            replicas: (0..3).map(|_| Keypair::generate()).collect(),
            tree: MerkleTree::new(MemoryNodeStore::default()),
        }
    }

    fn append(&mut self, records: usize) {
        for i in 0..records {
            self.tree.append(format!("record {}", self.tree.size() + i as u64).as_bytes()).unwrap();
        }
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            cluster: self.id.clone(),
            log: LogName::new("events").unwrap(),
            partition: 0,
            epoch: 1,
            size: self.tree.size(),
            root: self.tree.root(),
            time_ms: 0,
            zk_roots: Default::default(),
        }
    }

    /// `checkpoint` signed by the first `signers` replicas.
    fn certify(&self, checkpoint: Checkpoint, signers: usize) -> QuorumCertificate<Checkpoint> {
        let signatures =
            self.replicas[..signers].iter().map(|k| SignatureShare::sign(k, &checkpoint)).collect();
        QuorumCertificate { message: checkpoint, signatures }
    }

    fn register(&self, owner: &Keypair, nonce: u64) -> Vec<u8> {
        let members = self.replicas.iter().map(|k| k.public()).collect();
        tx(owner, nonce, 1, Action::RegisterCluster { cluster: self.id.clone(), members, peers: Vec::new() })
    }
}

fn anchor(
    sender: &Keypair,
    nonce: u64,
    certificate: QuorumCertificate<Checkpoint>,
    consistency: Option<pyralog_crypto::merkle::ConsistencyProof<Blake3Merkle>>,
) -> Vec<u8> {
    tx(sender, nonce, 1, Action::AnchorCheckpoint { certificate, consistency })
}

#[test]
fn anchors_must_be_certified_by_the_cluster_and_extend_the_previous_one() {
    let owner = Keypair::generate();
    let mut chain = Chain::new(&[(&owner, 1_000)]);
    let mut cluster = Cluster::new("cluster-a");
    cluster.append(5);

    // Unregistered clusters cannot anchor; registered ones can, with a majority of signatures.
    let first = cluster.checkpoint();
    assert_eq!(
        chain.block(vec![anchor(&owner, 0, cluster.certify(first.clone(), 2), None)]),
        vec![codes::ACTION_FAILED]
    );
    assert_eq!(chain.block(vec![cluster.register(&owner, 1)]), vec![codes::OK]);
    let results = chain.block(vec![
        anchor(&owner, 2, cluster.certify(first.clone(), 1), None), // 1 of 3 signed
        anchor(&owner, 3, cluster.certify(first.clone(), 2), None), // 2 of 3
    ]);
    assert_eq!(results, vec![codes::ACTION_FAILED, codes::OK]);

    // Growth needs a consistency proof from the anchored checkpoint.
    cluster.append(4);
    let grown = cluster.checkpoint();
    let proof = cluster.tree.consistency_proof(first.size, grown.size).unwrap();
    let results = chain.block(vec![
        anchor(&owner, 4, cluster.certify(grown.clone(), 2), None),
        anchor(&owner, 5, cluster.certify(grown.clone(), 3), Some(proof.clone())),
    ]);
    assert_eq!(results, vec![codes::ACTION_FAILED, codes::OK]);

    // A checkpoint that contradicts the anchor is refused even with every signature: a fork (a
    // different tree of the same size), a rollback (smaller), and a forged extension proof.
    let mut fork = Cluster::new("cluster-a");
    fork.replicas = cluster.replicas.clone();
    fork.append(12);
    let forked =
        Checkpoint { size: grown.size, root: fork.tree.root_at(grown.size).unwrap(), ..grown.clone() };
    let rollback = Checkpoint { size: first.size, root: first.root, ..grown.clone() };
    let grown_fork = fork.checkpoint();
    let wrong_proof = fork.tree.consistency_proof(grown.size, grown_fork.size).unwrap();
    let before = chain.app.state().root(chain.height).unwrap();
    let results = chain.block(vec![
        anchor(&owner, 6, cluster.certify(forked, 3), None),
        anchor(&owner, 7, cluster.certify(rollback, 3), None),
        anchor(&owner, 8, fork.certify(grown_fork, 3), Some(wrong_proof)),
    ]);
    assert_eq!(results, vec![codes::ACTION_FAILED; 3]);
    // Only fees and nonces moved: the anchor is still the grown checkpoint.
    let anchored = chain.app.query("state", b"anchor/cluster-a/events/0").unwrap();
    let anchored: pyralog_chain::values::Anchor = postcard::from_bytes(&anchored).unwrap();
    assert_eq!(anchored.certificate.message, grown);
    assert_ne!(chain.app.state().root(chain.height).unwrap(), before, "fees were charged");

    // Only the owner may re-register the cluster.
    let intruder = Keypair::generate();
    let mut chain_with_intruder = Chain::new(&[(&owner, 10), (&intruder, 10)]);
    assert_eq!(chain_with_intruder.block(vec![cluster.register(&owner, 0)]), vec![codes::OK]);
    assert_eq!(chain_with_intruder.block(vec![cluster.register(&intruder, 0)]), vec![codes::ACTION_FAILED]);
}

#[test]
fn the_app_resumes_from_its_store() {
    let (alice, bob) = (Keypair::generate(), Keypair::generate());
    let dir = tempfile::tempdir().unwrap();
    let genesis =
        postcard::to_allocvec(&Genesis { accounts: vec![(alice.public(), 50)], ..Genesis::default() })
            .unwrap();
    let hash = {
        let mut app =
            ChainApp::new(CHAIN, StateStore::open(dir.path()).unwrap(), Keypair::generate().public());
        app.init_chain(CHAIN, &[], &genesis).unwrap();
        let block = DecidedBlock {
            height: 1,
            id: pyralog_crypto::Digest([0; 32]),
            time_ms: 0,
            proposer: None,
            txs: vec![transfer(&alice, 0, &bob, 5)],
            last_commit_signers: Vec::new(),
            evidence: Vec::new(),
        };
        let hash = app.finalize(&block).unwrap().app_hash;
        assert_eq!(app.commit().unwrap(), 1);
        hash
    };
    let mut app = ChainApp::new(CHAIN, StateStore::open(dir.path()).unwrap(), Keypair::generate().public());
    let info = app.info().unwrap();
    assert_eq!((info.last_height, info.last_app_hash), (1, hash.clone()));
    // init_chain on an initialized store changes nothing.
    app.init_chain(CHAIN, &[], &genesis).unwrap();
    assert_eq!(app.info().unwrap().last_app_hash, hash);
    assert_eq!(app.check_tx(&transfer(&alice, 0, &bob, 5)).unwrap().unwrap_err(), "nonce 0 outside 1..65");
    // The next nonces queue up in the mempool; far future ones do not.
    assert_eq!(app.check_tx(&transfer(&alice, 3, &bob, 5)).unwrap(), Ok(()));
    assert_eq!(app.check_tx(&transfer(&alice, 65, &bob, 5)).unwrap(), Err("nonce 65 outside 1..65".into()));
}

/// A genesis cluster without members, with a member twice, or registered twice is refused at
/// `init_chain` (and by `GenesisFile::load`, through the same check): it used to be accepted,
/// and the first anchor for it panicked every validator in `finalize`.
#[test]
fn a_genesis_with_an_invalid_cluster_is_refused() {
    let owner = Keypair::generate();
    let member = Keypair::generate().public();
    let record = |members: Vec<_>| ClusterRecord { owner: owner.public(), members, peers: Vec::new() };
    let alpha = ClusterId::new("alpha").unwrap();
    let cases = [
        (vec![(alpha.clone(), record(Vec::new()))], "cluster alpha: a cluster has 1 to 16 members, not 0"),
        (vec![(alpha.clone(), record(vec![member, member]))], "cluster alpha: members must be distinct"),
        (
            vec![(alpha.clone(), record(vec![member])), (alpha.clone(), record(vec![member]))],
            "cluster alpha is registered twice",
        ),
    ];
    for (clusters, expected) in cases {
        let genesis = Genesis { accounts: Vec::new(), clusters, ..Genesis::default() };
        assert_eq!(genesis.check(), Err(expected.to_string()));
        let dir = tempfile::tempdir().unwrap();
        let mut app = ChainApp::new(CHAIN, StateStore::open(dir.path()).unwrap(), owner.public());
        let err = app.init_chain(CHAIN, &[], &postcard::to_allocvec(&genesis).unwrap()).unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
        assert_eq!(app.state().latest_version().unwrap(), None, "nothing was written");
    }
}

/// ABCI's rule: `finalize` computes the new state without writing it; only `commit` does. A
/// crash between the two leaves the app at the previous height, and replaying the block gives
/// the same app hash (it used to be written by `finalize`).
#[test]
fn a_crash_between_finalize_and_commit_replays_to_the_same_app_hash() {
    let (alice, bob) = (Keypair::generate(), Keypair::generate());
    let dir = tempfile::tempdir().unwrap();
    let genesis =
        postcard::to_allocvec(&Genesis { accounts: vec![(alice.public(), 50)], ..Genesis::default() })
            .unwrap();
    let block = DecidedBlock {
        height: 1,
        id: pyralog_crypto::Digest([1; 32]),
        time_ms: 0,
        proposer: None,
        txs: vec![transfer(&alice, 0, &bob, 5)],
        last_commit_signers: Vec::new(),
        evidence: Vec::new(),
    };
    let open = || ChainApp::new(CHAIN, StateStore::open(dir.path()).unwrap(), Keypair::generate().public());
    let (genesis_hash, first) = {
        let mut app = open();
        let genesis_hash = app.init_chain(CHAIN, &[], &genesis).unwrap();
        let first = app.finalize(&block).unwrap().app_hash;
        assert_eq!(app.info().unwrap().last_height, 0, "finalize wrote nothing");
        (genesis_hash, first)
        // Dropped here without commit: the crash.
    };
    let mut app = open();
    let info = app.info().unwrap();
    assert_eq!((info.last_height, info.last_app_hash), (0, genesis_hash));
    let replayed = app.finalize(&block).unwrap().app_hash;
    assert_eq!(replayed, first, "the replay reaches the same app hash");
    assert_eq!(app.commit().unwrap(), 1);
    assert_eq!(app.info().unwrap().last_app_hash, first);
    assert_eq!(app.check_tx(&transfer(&alice, 0, &bob, 5)).unwrap().unwrap_err(), "nonce 0 outside 1..65");
}

/// `"engine": "pbft"` is all it takes to run PBFT; its view timer base is checked, and is refused
/// on a chain of another engine; an engine this build does not know is refused by name.
#[test]
fn a_genesis_names_its_engine_and_the_engines_settings() {
    use pyralog_chain::genesis::{ConsensusGenesisError, GenesisFile};

    let validator = Keypair::generate();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("genesis.json");
    let load = |consensus: serde_json::Value| {
        let genesis = serde_json::json!({
            "chainId": CHAIN,
            "validators": [{ "publicKey": validator.public().to_string(), "power": 1 }],
            "consensus": consensus,
        });
        std::fs::write(&path, genesis.to_string()).unwrap();
        GenesisFile::load(&path)
    };
    let pbft = load(serde_json::json!({ "engine": "pbft" })).unwrap();
    assert_eq!(
        (pbft.consensus.engine(), pbft.consensus.view_timeout()),
        (Engine::Pbft, std::time::Duration::from_secs(2))
    );
    let tuned = load(serde_json::json!({ "engine": "pbft", "viewTimeoutMs": 1500 })).unwrap();
    assert_eq!(tuned.consensus.view_timeout(), std::time::Duration::from_millis(1500));
    let typed = |consensus| {
        load(consensus).unwrap_err().root_cause().downcast_ref::<ConsensusGenesisError>().cloned()
    };
    assert_eq!(
        typed(serde_json::json!({ "engine": "pbft", "viewTimeoutMs": 50 })),
        Some(ConsensusGenesisError::ViewTimeoutOutOfRange(50))
    );
    assert_eq!(
        typed(serde_json::json!({ "engine": "tendermint", "viewTimeoutMs": 1500 })),
        Some(ConsensusGenesisError::NotThisEngine { setting: "viewTimeoutMs", engine: Engine::Tendermint })
    );
    let unknown = load(serde_json::json!({ "engine": "hotstuff" })).unwrap_err();
    assert!(format!("{unknown:#}").contains("unknown variant `hotstuff`"), "{unknown:#}");
}

/// A chain id is 1 to 128 bytes: a genesis naming a longer one is refused with a typed error
/// (signing a vote under a chain id past 65,535 bytes used to panic), and signing bytes of a
/// made-up longer one do not panic.
#[test]
fn a_genesis_with_an_oversized_chain_id_is_refused() {
    use pyralog_chain::genesis::GenesisFile;
    use pyralog_consensus::vote::{ChainIdError, MAX_CHAIN_ID_BYTES, check_chain_id};
    use pyralog_crypto::quorum::Signable;

    assert_eq!(check_chain_id(""), Err(ChainIdError::Empty));
    assert_eq!(check_chain_id(&"c".repeat(MAX_CHAIN_ID_BYTES)), Ok(()));
    assert_eq!(
        check_chain_id(&"c".repeat(MAX_CHAIN_ID_BYTES + 1)),
        Err(ChainIdError::TooLong { len: MAX_CHAIN_ID_BYTES + 1 })
    );
    let validator = Keypair::generate();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("genesis.json");
    let write = |chain_id: String| {
        let genesis = serde_json::json!({
            "chainId": chain_id,
            "validators": [{ "publicKey": validator.public().to_string(), "power": 1 }],
        });
        std::fs::write(&path, genesis.to_string()).unwrap();
    };
    write("c".repeat(70_000));
    let err = GenesisFile::load(&path).unwrap_err();
    assert_eq!(
        err.root_cause().downcast_ref::<ChainIdError>(),
        Some(&ChainIdError::TooLong { len: 70_000 }),
        "{err:#}"
    );
    write(CHAIN.into());
    assert_eq!(GenesisFile::load(&path).unwrap().chain_id, CHAIN);

    let vote = pyralog_consensus::Vote {
        chain_id: "c".repeat(70_000),
        height: 1,
        round: 0,
        kind: pyralog_consensus::VoteKind::Precommit,
        block: None,
    };
    assert!(vote.signing_bytes().len() > 70_000);
}

/// A block's consensus info reaches the state: each misbehaviour it proves is recorded once
/// (provably, under `misbehaviour/<validator><height>`), and the parent's signers under
/// `meta/last_commit`. A proposer leaves out evidence already punished, and a payload that
/// carries it anyway is refused.
#[test]
fn evidence_and_last_commit_signers_reach_the_state_once() {
    use pyralog_chain::values::{LastCommit, MisbehaviourKind, MisbehaviourRecord, misbehaviour_key};
    use pyralog_consensus::app::Misbehaviour;

    let mut chain = Chain::new(&[]);
    chain.block(Vec::new());
    let accused = Keypair::generate();
    let evidence = double_vote(&accused, CHAIN, 1);
    let signer = Keypair::generate();
    let now = now_ms();
    let parent = chain.app.build_header(2, &[], now).unwrap().parent;
    let context = ProposalContext {
        height: 2,
        proposer: chain.proposer,
        parent,
        time_ms: now,
        last_commit: Some(last_commit_before(2, &signer)),
        evidence: vec![evidence.clone()],
        unfinalised: Vec::new(),
    };
    let payload = chain.app.prepare_payload(&context, Vec::new(), 1 << 20).unwrap();
    let check = CheckContext { height: 2, parent, now_ms: now, on_unfinalised: false };
    assert_eq!(chain.app.process_payload(&check, &payload).unwrap(), PayloadVerdict::Accept);
    let carried = chain.app.block_context(&payload);
    assert_eq!(carried.evidence, vec![evidence.clone()]);
    let header = Header::decode(&payload[0]).unwrap();
    let block = DecidedBlock {
        height: 2,
        id: header.block_id(),
        time_ms: header.time_ms,
        proposer: Some(header.proposer),
        txs: payload,
        last_commit_signers: vec![signer.public()],
        evidence: vec![Misbehaviour::from(&evidence)],
    };
    chain.app.finalize(&block).unwrap();
    chain.app.commit().unwrap();
    chain.height = 2;

    let key = misbehaviour_key(&accused.public(), 1);
    let (value, proof) = chain.app.state().get_with_proof(&key, 2).unwrap();
    verify_state_proof(&chain.app.state().root(2).unwrap(), &key, value.as_deref(), &proof).unwrap();
    let record: MisbehaviourRecord = postcard::from_bytes(&value.unwrap()).unwrap();
    assert_eq!(record, MisbehaviourRecord { kind: MisbehaviourKind::DuplicateVote, included_at: 2 });
    let last: LastCommit =
        postcard::from_bytes(&chain.app.query("state", b"meta/last_commit").unwrap()).unwrap();
    assert_eq!(last, LastCommit { height: 1, signers: vec![signer.public()] });

    // Height 3: the proposer leaves the punished evidence out; a payload carrying it is refused.
    let parent = header.block_id();
    let context = ProposalContext { height: 3, parent, time_ms: now + 1, ..context };
    let payload = chain.app.prepare_payload(&context, Vec::new(), 1 << 20).unwrap();
    assert_eq!(chain.app.block_context(&payload).evidence, Vec::<Evidence>::new());
    let again = ConsensusInfo { last_commit: context.last_commit.clone(), evidence: vec![evidence] }.encode();
    let header = chain.app.build_header(3, std::slice::from_ref(&again), now + 1).unwrap();
    let reason = chain.app.check_payload(3, &[header.encode(), again], now + 1).unwrap().unwrap_err();
    assert_eq!(reason, format!("evidence against {} at height 1 was already punished", accused.public()));
}
