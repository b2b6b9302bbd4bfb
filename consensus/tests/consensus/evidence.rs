//! What a block carries for consensus besides its transactions: the parent's finality proof and
//! evidence of equivocation. The rules refuse each kind of bad content with its own error; a real
//! driver votes nil on a payload that breaks them, pools gossiped evidence (reporting a peer whose
//! evidence proves nothing), hands the pending evidence and its parent's proof to the app when it
//! proposes, and gives the app the carried signers and misbehaviour in `DecidedBlock`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyralog_consensus::app::{BlockContext, Misbehaviour, ProposalContext};
use pyralog_consensus::core::{ConsensusCore, Effect, Input, Millis};
use pyralog_consensus::driver::{
    ChainStore, ConsensusNet, Driver, DriverConfig, FetchedBlocks, MemoryStore, NetError, NetEvent,
    StoredBlock,
};
use pyralog_consensus::evidence::{
    BlockContextError, ContextRules, EvidenceError, MAX_EVIDENCE_AGE, MAX_EVIDENCE_PER_BLOCK,
};
use pyralog_consensus::finality::FinalityError;
use pyralog_consensus::testkit::{CountingApp, double_vote, marked_context, marked_payload};
use pyralog_consensus::vote::{Evidence, payload_id};
use pyralog_consensus::{
    BlockId, CommitCertificate, Engine, FinalityProof, Validator, ValidatorSet, Vote, VoteKind,
};
use pyralog_crypto::quorum::{QuorumError, SignatureShare};
use pyralog_crypto::{Digest, Keypair, PublicKey};

const CHAIN: &str = "pyralog-evidence-test";

fn keys() -> Vec<Keypair> {
    (1..=4u8).map(|i| Keypair::from_secret(&[i; 32])).collect()
}

fn set_of(keys: &[Keypair]) -> ValidatorSet {
    ValidatorSet::new(keys.iter().map(|k| Validator { key: k.public(), power: 1 })).unwrap()
}

fn precommit(chain: &str, height: u64, block: Option<BlockId>) -> Vote {
    Vote { chain_id: chain.into(), height, round: 0, kind: VoteKind::Precommit, block }
}

/// The precommits of `signers` for `block` at `height`.
fn proof(signers: &[Keypair], height: u64, block: BlockId) -> FinalityProof {
    let vote = precommit(CHAIN, height, Some(block));
    let signatures = signers.iter().map(|k| SignatureShare::sign(k, &vote)).collect();
    FinalityProof::quorum(Engine::Tendermint, CommitCertificate { message: vote, signatures })
}

fn context(last_commit: Option<FinalityProof>, evidence: Vec<Evidence>) -> BlockContext {
    BlockContext { time_ms: 0, proposer: None, last_commit, evidence }
}

#[test]
fn context_rules_refuse_each_bad_last_commit_and_evidence() {
    let keys = keys();
    let set = set_of(&keys);
    let at = |_| &set;
    let parent = Digest([4; 32]);
    let rules = ContextRules {
        chain_id: CHAIN,
        engine: Engine::Tendermint,
        height: 5,
        parent: &parent,
        parent_proof: None,
        validators_at: &at,
    };
    let good = proof(&keys[..3], 4, parent);
    let check = |carried: BlockContext| rules.check(&carried);

    assert_eq!(check(context(Some(good.clone()), vec![double_vote(&keys[3], CHAIN, 4)])), Ok(()));
    assert_eq!(check(context(None, Vec::new())), Ok(()), "an app whose payloads carry none");

    // Last commits: at height 1, for another block, short of a quorum, with a forged signature.
    let first = ContextRules { height: 1, ..rules };
    assert_eq!(
        first.check(&context(Some(good.clone()), Vec::new())),
        Err(BlockContextError::LastCommitAtFirstHeight)
    );
    let other = proof(&keys[..3], 4, Digest([5; 32]));
    assert!(matches!(
        check(context(Some(other), Vec::new())),
        Err(BlockContextError::LastCommit(FinalityError::WrongVote { height: 4, .. }))
    ));
    assert!(matches!(
        check(context(Some(proof(&keys[..2], 4, parent)), Vec::new())),
        Err(BlockContextError::LastCommit(FinalityError::Quorum(QuorumError::InsufficientWeight {
            signed: 2,
            total: 4,
            ..
        })))
    ));
    let mut forged = good.clone();
    let FinalityProof::Quorum { certificate, .. } = &mut forged else { unreachable!() };
    certificate.signatures[0].signature = SignatureShare::sign(&keys[3], &certificate.message).signature;
    assert_eq!(
        check(context(Some(forged), Vec::new())),
        Err(BlockContextError::LastCommit(FinalityError::Quorum(QuorumError::InvalidSignature(
            keys[0].public()
        ))))
    );

    // With the validator's own proof of the parent (keys 0-2), a carried one by keys 1-3 has only
    // key 3's signature checked; a forged signature it does not hold is still caught, and so is
    // a held signature moved onto another signer.
    let own = proof(&keys[..3], 4, parent);
    let given = ContextRules { parent_proof: Some(&own), ..rules };
    assert_eq!(given.check(&context(Some(proof(&keys[1..], 4, parent)), Vec::new())), Ok(()));
    let mut forged = proof(&keys[1..], 4, parent);
    let FinalityProof::Quorum { certificate, .. } = &mut forged else { unreachable!() };
    certificate.signatures[2].signature = SignatureShare::sign(&keys[0], &certificate.message).signature;
    assert_eq!(
        given.check(&context(Some(forged.clone()), Vec::new())),
        Err(BlockContextError::LastCommit(FinalityError::Quorum(QuorumError::InvalidSignature(
            keys[3].public()
        ))))
    );
    let FinalityProof::Quorum { certificate, .. } = &mut forged else { unreachable!() };
    certificate.signatures[2].signature = certificate.signatures[0].signature;
    assert_eq!(
        given.check(&context(Some(forged), Vec::new())),
        Err(BlockContextError::LastCommit(FinalityError::Quorum(QuorumError::InvalidSignature(
            keys[3].public()
        ))))
    );
    let elsewhere = proof(&keys[..3], 4, Digest([5; 32]));
    assert!(matches!(
        given.check(&context(Some(elsewhere), Vec::new())),
        Err(BlockContextError::LastCommit(FinalityError::WrongVote { .. }))
    ));

    // Evidence: forged, of another chain, not before the block, too old, against an outsider,
    // twice against one validator at one height, too much.
    let evidence_error = |evidence: Evidence| match check(context(None, vec![evidence])) {
        Err(BlockContextError::Evidence { index: 0, reason }) => reason,
        other => panic!("expected an evidence error, got {other:?}"),
    };
    let Evidence::DuplicateVote(mut unproven) = double_vote(&keys[3], CHAIN, 4) else { unreachable!() };
    unproven.second_signature = SignatureShare::sign(&keys[2], &unproven.second).signature;
    assert_eq!(evidence_error(Evidence::DuplicateVote(unproven)), EvidenceError::Unproven);
    assert_eq!(
        evidence_error(double_vote(&keys[3], "elsewhere", 4)),
        EvidenceError::WrongChain("elsewhere".into())
    );
    assert_eq!(
        evidence_error(double_vote(&keys[3], CHAIN, 5)),
        EvidenceError::NotBefore { height: 5, at: 5 }
    );
    let late = ContextRules { height: MAX_EVIDENCE_AGE + 2, ..rules };
    assert_eq!(
        late.check(&context(None, vec![double_vote(&keys[3], CHAIN, 1)])),
        Err(BlockContextError::Evidence {
            index: 0,
            reason: EvidenceError::Expired { height: 1, at: MAX_EVIDENCE_AGE + 2 }
        })
    );
    let outsider = Keypair::from_secret(&[9; 32]);
    assert_eq!(
        evidence_error(double_vote(&outsider, CHAIN, 4)),
        EvidenceError::NotValidator { validator: outsider.public(), height: 4 }
    );
    let twice = vec![
        double_vote(&keys[3], CHAIN, 4),
        double_vote(&keys[2], CHAIN, 4),
        double_vote(&keys[3], CHAIN, 4),
    ];
    assert_eq!(check(context(None, twice)), Err(BlockContextError::DuplicateEvidence { index: 2 }));
    let many: Vec<Evidence> =
        (1..=MAX_EVIDENCE_PER_BLOCK as u64 + 1).map(|h| double_vote(&keys[3], CHAIN, h % 4 + 1)).collect();
    assert_eq!(
        check(context(None, many)),
        Err(BlockContextError::TooMuchEvidence(MAX_EVIDENCE_PER_BLOCK + 1))
    );
}

/// What the scripted engine saw and what it should do next.
#[derive(Default)]
struct Script {
    /// Verdicts the driver returned for payloads handed to it as messages.
    verdicts: Vec<bool>,
    /// Payloads the app built when asked.
    built: Vec<Vec<Vec<u8>>>,
    height: u64,
}

/// An engine with no protocol: a message `check` + payload asks the driver to check the payload,
/// `propose` asks it to build one, and `commit` + proof decides the last payload built.
struct ScriptedEngine(Arc<Mutex<Script>>);

impl ConsensusCore for ScriptedEngine {
    fn handle(&mut self, _: Millis, input: Input) -> Vec<Effect> {
        let mut script = self.0.lock().unwrap();
        match input {
            Input::StartHeight { height, .. } => script.height = height,
            Input::PayloadChecked { valid, .. } => script.verdicts.push(valid),
            Input::PayloadBuilt { txs, .. } => script.built.push(txs),
            Input::Message { bytes, .. } => {
                let height = script.height;
                let (command, rest) =
                    bytes.split_at(bytes.iter().position(|b| *b == b' ').unwrap_or(bytes.len()));
                let rest = rest.get(1..).unwrap_or_default();
                return match command {
                    b"check" => {
                        let txs: Vec<Vec<u8>> = postcard::from_bytes(rest).unwrap();
                        vec![Effect::CheckPayload { height, block: payload_id(&txs), txs, on: None }]
                    }
                    b"propose" => {
                        vec![Effect::BuildPayload { height, proposer: keys()[0].public(), on: None }]
                    }
                    b"commit" => {
                        let txs = script.built.last().unwrap().clone();
                        let block = payload_id(&txs);
                        vec![Effect::CommitBlock {
                            height,
                            block,
                            txs,
                            proof: proof(&keys()[..3], height, block),
                        }]
                    }
                    _ => Vec::new(),
                };
            }
            _ => {}
        }
        Vec::new()
    }

    fn engine(&self) -> Engine {
        Engine::Tendermint
    }
}

/// A network that records what the driver gossips and whom it reports.
#[derive(Clone, Default)]
struct RecordingNet {
    gossiped: Arc<Mutex<Vec<Evidence>>>,
    reports: Arc<Mutex<Vec<(PublicKey, String)>>>,
}

impl ConsensusNet for RecordingNet {
    fn broadcast(&self, _: Vec<u8>) {}
    fn send_to(&self, _: PublicKey, _: Vec<u8>) {}
    fn fetch_blocks(
        &self,
        _: u64,
        _: u32,
    ) -> impl Future<Output = Result<FetchedBlocks, NetError>> + Send + 'static {
        std::future::ready(Err(NetError("no peers".into())))
    }
    fn gossip_tx(&self, _: Vec<u8>) {}
    fn gossip_evidence(&self, evidence: &Evidence) {
        self.gossiped.lock().unwrap().push(evidence.clone());
    }
    fn report(&self, peer: PublicKey, reason: String) {
        self.reports.lock().unwrap().push((peer, reason));
    }
    fn set_validators(&self, _: Vec<PublicKey>) {}
}

#[test]
fn a_driver_checks_carries_and_delivers_the_last_commit_and_evidence() {
    let keys = keys();
    // Block 1, stored with its proof: the driver starts at height 2 on it.
    let genesis_context = ProposalContext {
        height: 1,
        proposer: keys[0].public(),
        parent: BlockId::default(),
        time_ms: 1,
        last_commit: None,
        evidence: Vec::new(),
        unfinalised: Vec::new(),
    };
    let first = marked_payload(&genesis_context, Vec::new(), 1 << 20);
    let first_id = payload_id(&first);
    let first_proof = proof(&keys[1..], 1, first_id);
    let store = MemoryStore::new();
    store
        .put_block(&StoredBlock { height: 1, block: first_id, txs: first, proof: first_proof.clone() })
        .unwrap();

    let script = Arc::new(Mutex::new(Script::default()));
    let decided = Arc::new(Mutex::new(Vec::new()));
    let net = RecordingNet::default();
    let seen = decided.clone();
    let app = CountingApp::default().observed(move |block| seen.lock().unwrap().push(block.clone()));
    let config = DriverConfig {
        chain_id: CHAIN.into(),
        validators: set_of(&keys),
        sync_interval: Duration::from_secs(1),
        max_payload_bytes: 1 << 20,
        block_interval: Duration::ZERO,
        max_mempool_txs: 10,
        app_state: Vec::new(),
    };
    let (_, inbound) = tokio::sync::mpsc::channel(1);
    let mut driver = Driver::new(ScriptedEngine(script.clone()), app, net.clone(), store, config, inbound);
    driver.start().unwrap();
    let from = keys[1].public();
    let send = |driver: &mut Driver<_, _, _, _>, bytes: Vec<u8>| {
        driver.handle_net(NetEvent::Message { from, bytes }).unwrap();
    };

    // Payloads proposed at height 2: honest ones pass; a forged last commit or evidence against
    // an outsider gets a nil vote.
    let at_two = |last_commit: Option<FinalityProof>, evidence: Vec<Evidence>| {
        let context = ProposalContext {
            height: 2,
            parent: first_id,
            time_ms: 2,
            last_commit,
            evidence,
            ..genesis_context.clone()
        };
        [b"check ".to_vec(), postcard::to_allocvec(&marked_payload(&context, Vec::new(), 1 << 20)).unwrap()]
            .concat()
    };
    let outsider = Keypair::from_secret(&[9; 32]);
    send(&mut driver, at_two(Some(first_proof.clone()), Vec::new()));
    send(&mut driver, at_two(Some(proof(&keys[..2], 1, first_id)), Vec::new()));
    send(&mut driver, at_two(Some(proof(&keys[..3], 1, Digest([5; 32]))), Vec::new()));
    send(&mut driver, at_two(Some(first_proof.clone()), vec![double_vote(&outsider, CHAIN, 1)]));
    send(&mut driver, at_two(Some(first_proof.clone()), vec![double_vote(&keys[3], CHAIN, 1)]));
    assert_eq!(script.lock().unwrap().verdicts, [true, false, false, false, true]);

    // Gossiped evidence: pooled when it holds; a peer whose evidence proves nothing is reported.
    let evidence = double_vote(&keys[3], CHAIN, 1);
    let Evidence::DuplicateVote(mut unproven) = evidence.clone() else { unreachable!() };
    unproven.second.round = 1;
    for piece in [evidence.clone(), Evidence::DuplicateVote(unproven)] {
        driver.handle_net(NetEvent::Evidence { from, evidence: Box::new(piece) }).unwrap();
    }
    assert_eq!(driver.evidence(), std::slice::from_ref(&evidence));
    assert_eq!(
        *net.reports.lock().unwrap(),
        [(from, "gossiped evidence: the evidence does not prove an equivocation".to_string())]
    );

    // Proposing: the payload carries the parent's proof and the pooled evidence; once decided,
    // the app gets the signers and the misbehaviour, and the evidence leaves the pool.
    send(&mut driver, b"propose".to_vec());
    let built = script.lock().unwrap().built.last().unwrap().clone();
    let carried = marked_context(&built);
    assert_eq!((carried.last_commit, carried.evidence), (Some(first_proof.clone()), vec![evidence.clone()]));
    send(&mut driver, b"commit".to_vec());
    let two = decided.lock().unwrap().last().unwrap().clone();
    assert_eq!(two.height, 2);
    let mut signers: Vec<PublicKey> = keys[1..].iter().map(Keypair::public).collect();
    signers.sort();
    assert_eq!(two.last_commit_signers, signers);
    assert_eq!(two.evidence, vec![Misbehaviour::from(&evidence)]);
    send(&mut driver, b"propose".to_vec());
    let built = script.lock().unwrap().built.last().unwrap().clone();
    let carried = marked_context(&built);
    assert_eq!(carried.evidence, Vec::<Evidence>::new(), "committed evidence is not proposed again");
    assert_eq!(carried.last_commit.map(|p| p.signers().len()), Some(3), "block 2's proof");
    assert!(net.gossiped.lock().unwrap().is_empty(), "peers' evidence is not re-gossiped");
}
