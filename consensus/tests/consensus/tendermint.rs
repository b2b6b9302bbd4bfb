//! Tendermint (Malachite) engines wired to each other by a tiny in-test loop: instant delivery,
//! virtual time for timers, an app that builds and checks payloads. The seeded simulator with
//! delays, drops, partitions and Byzantine nodes comes with the driver; this checks the engine
//! itself: every honest validator commits the same blocks, with certificates that verify.

use pyralog_consensus::proposer::ProposerPriorities;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use pyralog_consensus::core::{ConsensusCore, Effect, Input, Signer, TimerId};
use pyralog_consensus::tendermint::{TendermintEngine, Timeouts};
use pyralog_consensus::{Engine, FinalityProof, Validator, ValidatorSet};
use pyralog_crypto::{Digest, Keypair};

const CHAIN: &str = "pyralog-sim";

/// A committed block: its id, payload and finality proof.
type Decided = (Digest, Vec<Vec<u8>>, FinalityProof);

struct Net {
    engines: Vec<TendermintEngine>,
    validators: ValidatorSet,
    now: u64,
    inbox: VecDeque<(usize, Input)>,
    timers: BTreeSet<(u64, usize, TimerId)>,
    /// Per node: height -> (block, payload, proof).
    committed: Vec<BTreeMap<u64, Decided>>,
    /// Nodes that receive and do nothing (crashed).
    down: BTreeSet<usize>,
    /// Nodes that propose payloads the app rejects.
    bad_proposers: BTreeSet<usize>,
    persisted_votes: usize,
    keys: Vec<Keypair>,
    fast: Timeouts,
    /// Per node: its WAL entries, in order.
    wal: Vec<Vec<Vec<u8>>>,
    /// Drop every precommit (no height is ever decided).
    drop_precommits: bool,
}

impl Net {
    fn new(n: usize) -> Self {
        let keys: Vec<Keypair> = (0..n).map(|_| Keypair::generate()).collect();
        let validators =
            ValidatorSet::new(keys.iter().map(|k| Validator { key: k.public(), power: 1 })).unwrap();
        let fast = Timeouts {
            propose: Duration::from_millis(300),
            prevote: Duration::from_millis(100),
            precommit: Duration::from_millis(100),
            rebroadcast: Duration::from_millis(1000),
            increase: Duration::from_millis(100),
        };
        Net {
            engines: keys.iter().map(|k| TendermintEngine::new(CHAIN, k.clone(), fast)).collect(),
            keys,
            fast,
            wal: vec![Vec::new(); n],
            drop_precommits: false,
            validators,
            now: 0,
            inbox: VecDeque::new(),
            timers: BTreeSet::new(),
            committed: vec![BTreeMap::new(); n],
            down: BTreeSet::new(),
            bad_proposers: BTreeSet::new(),
            persisted_votes: 0,
        }
    }

    fn perform(&mut self, node: usize, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Broadcast(bytes) => {
                    if self.drop_precommits && is_precommit(&bytes) {
                        continue;
                    }
                    let from = self.engines[node].public_key();
                    for to in (0..self.engines.len()).filter(|&to| to != node) {
                        self.inbox.push_back((to, Input::Message { from, bytes: bytes.clone() }));
                    }
                }
                Effect::SendTo { to, bytes } => {
                    let from = self.engines[node].public_key();
                    let to = self.engines.iter().position(|e| e.public_key() == to).unwrap();
                    self.inbox.push_back((to, Input::Message { from, bytes }));
                }
                Effect::SetTimer { id, after } => {
                    self.timers.retain(|(_, n, t)| !(*n == node && *t == id));
                    self.timers.insert((self.now + after.as_millis() as u64, node, id));
                }
                Effect::CancelTimer(id) => self.timers.retain(|(_, n, t)| !(*n == node && *t == id)),
                Effect::BuildPayload { height, .. } => {
                    let tx = if self.bad_proposers.contains(&node) { "bad" } else { "tx" };
                    let txs = vec![format!("{tx} h{height} by {node}").into_bytes()];
                    self.inbox.push_back((node, Input::PayloadBuilt { height, txs }));
                }
                Effect::CheckPayload { block, txs, .. } => {
                    let valid = txs.iter().all(|tx| !tx.starts_with(b"bad"));
                    self.inbox.push_back((node, Input::PayloadChecked { block, valid }));
                }
                Effect::CommitBlock { height, block, txs, proof } => {
                    let signed = proof
                        .verify(Engine::Tendermint, CHAIN, height, &block, &self.validators)
                        .expect("a verifying certificate");
                    assert!(self.validators.is_quorum(signed));
                    assert!(
                        self.committed[node].insert(height, (block, txs, proof)).is_none(),
                        "height {height} twice"
                    );
                    let validators = self.validators.clone();
                    self.inbox.push_back((
                        node,
                        Input::StartHeight {
                            height: height + 1,
                            proposers: ProposerPriorities::genesis(&validators),
                            validators,
                            last_commit: None,
                        },
                    ));
                }
                Effect::PersistWal { entry, .. } => {
                    self.persisted_votes += 1;
                    self.wal[node].push(entry);
                }
                Effect::Evidence(_) => {}
                Effect::PeerMisbehaved { peer, reason } => panic!("honest peer {peer} blamed: {reason}"),
                other @ (Effect::Mine(_) | Effect::Alarm(_)) => {
                    panic!("a BFT engine mined or alarmed: {other:?}")
                }
            }
        }
    }

    fn start(&mut self) {
        for node in 0..self.engines.len() {
            let validators = self.validators.clone();
            self.inbox.push_back((
                node,
                Input::StartHeight {
                    height: 1,
                    proposers: ProposerPriorities::genesis(&validators),
                    validators,
                    last_commit: None,
                },
            ));
        }
    }

    /// Runs until every node up has committed `height`, or `deadline_ms` of virtual time passed.
    fn run_until(&mut self, height: u64, deadline_ms: u64) {
        self.run_until_true(deadline_ms, |net| {
            (0..net.engines.len())
                .filter(|n| !net.down.contains(n))
                .all(|n| net.committed[n].contains_key(&height))
        });
    }

    /// Delivers messages and fires timers until `done` holds.
    fn run_until_true(&mut self, deadline_ms: u64, done: impl Fn(&Net) -> bool) {
        while self.now <= deadline_ms {
            if done(self) {
                return;
            }
            if let Some((to, input)) = self.inbox.pop_front() {
                if self.down.contains(&to) {
                    continue;
                }
                let effects = self.engines[to].handle(self.now, input);
                self.perform(to, effects);
            } else if let Some(&(due, node, id)) = self.timers.iter().next() {
                self.timers.remove(&(due, node, id));
                self.now = self.now.max(due);
                if !self.down.contains(&node) {
                    let effects = self.engines[node].handle(self.now, Input::TimeoutFired(id));
                    self.perform(node, effects);
                }
            } else {
                panic!("nothing left to do at {} ms", self.now);
            }
        }
        panic!("condition not reached by {deadline_ms} ms of virtual time");
    }

    /// Safety: nodes that committed a height committed the same block with the same payload.
    fn assert_agreement(&self) {
        let mut decided: BTreeMap<u64, (Digest, Vec<Vec<u8>>)> = BTreeMap::new();
        for node in &self.committed {
            for (height, (block, txs, _)) in node {
                let first = decided.entry(*height).or_insert((*block, txs.clone()));
                assert_eq!(first, &(*block, txs.clone()), "disagreement at height {height}");
            }
        }
    }
}

#[test]
fn four_validators_commit_the_same_blocks_with_verifying_certificates() {
    let mut net = Net::new(4);
    net.start();
    net.run_until(10, 60_000);
    net.assert_agreement();
    for node in &net.committed {
        for (height, (_, txs, _)) in node {
            assert_eq!(txs.len(), 1, "height {height}: the proposer's payload");
        }
    }
    assert!(net.persisted_votes > 0, "own votes go to the WAL before they are sent");
}

#[test]
fn a_crashed_validator_does_not_stop_the_other_three() {
    let mut net = Net::new(4);
    net.down.insert(2);
    net.start();
    net.run_until(8, 120_000);
    net.assert_agreement();
}

#[test]
fn an_invalid_payload_is_never_committed() {
    let mut net = Net::new(4);
    net.bad_proposers.insert(1);
    net.start();
    net.run_until(8, 120_000);
    net.assert_agreement();
    for node in &net.committed {
        for (height, (_, txs, _)) in node {
            assert!(
                txs.iter().all(|tx| !tx.starts_with(b"bad")),
                "height {height} committed an invalid payload"
            );
        }
    }
}

#[test]
fn undecodable_bytes_blame_their_sender_and_change_nothing() {
    let net = Net::new(4);
    let mut engine = TendermintEngine::new(CHAIN, net.keys[0].clone(), net.fast);
    let validators = net.validators.clone();
    engine.handle(
        0,
        Input::StartHeight {
            height: 1,
            proposers: ProposerPriorities::genesis(&validators),
            validators,
            last_commit: None,
        },
    );
    let sender = net.keys[2].public();
    let effects = engine.handle(1, Input::Message { from: sender, bytes: vec![0xff; 40] });
    assert!(
        matches!(effects.as_slice(), [Effect::PeerMisbehaved { peer, .. }] if *peer == sender),
        "{effects:?}"
    );
}

/// A vote or proposal whose signature does not verify is reported as the sending peer's
/// misbehaviour, naming what it was, and goes no further (it used to be dropped silently); the
/// same vote correctly signed is no offence.
#[test]
fn a_broken_signature_blames_the_peer_that_sent_it() {
    use malachitebft_core_consensus::SignedConsensusMsg;
    use malachitebft_core_types::{NilOrVal, Round, SignedMessage};
    use pyralog_consensus::tendermint::context::{Address, EngineVote, EngineVoteKind, Height, Sig};
    use pyralog_consensus::tendermint::wire;
    use pyralog_crypto::quorum::Signable;

    let net = Net::new(4);
    let mut engine = TendermintEngine::new(CHAIN, net.keys[0].clone(), net.fast);
    engine.handle(
        0,
        Input::StartHeight {
            height: 1,
            proposers: ProposerPriorities::genesis(&net.validators),
            validators: net.validators.clone(),
            last_commit: None,
        },
    );
    let voter = &net.keys[2];
    let vote = EngineVote {
        height: Height(1),
        round: Round::new(0),
        kind: EngineVoteKind::Prevote,
        value: NilOrVal::Nil,
        voter: Address(voter.public()),
    };
    let signature = voter.sign(&vote.signed_message(CHAIN).signing_bytes());
    let mut broken = Sig::from(signature).0;
    broken[0] ^= 1;
    let relay = net.keys[3].public();
    let bytes = wire::encode(&SignedConsensusMsg::Vote(SignedMessage::new(vote.clone(), Sig(broken))));
    let effects = engine.handle(1, Input::Message { from: relay, bytes });
    match effects.as_slice() {
        [Effect::PeerMisbehaved { peer, reason }] => {
            assert_eq!(*peer, relay, "the sender is blamed, not the named voter");
            assert!(
                reason.starts_with("a vote of ")
                    && reason.ends_with("height 1 round 0 with a signature that does not verify"),
                "{reason}"
            );
        }
        other => panic!("expected one PeerMisbehaved, got {other:?}"),
    }

    let good = wire::encode(&SignedConsensusMsg::Vote(SignedMessage::new(vote, Sig::from(signature))));
    let effects = engine.handle(2, Input::Message { from: relay, bytes: good });
    assert!(!effects.iter().any(|e| matches!(e, Effect::PeerMisbehaved { .. })), "{effects:?}");
}

/// A signer that counts what it signs (a stand-in for a remote signer).
struct CountingSigner {
    key: Keypair,
    signed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Signer for CountingSigner {
    fn public_key(&self) -> pyralog_crypto::PublicKey {
        self.key.public()
    }
    fn sign(&self, message: &[u8]) -> pyralog_crypto::Signature {
        self.signed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.key.sign(message)
    }
}

#[test]
fn an_engine_signs_through_its_signer() {
    let mut net = Net::new(4);
    let signed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let signer = CountingSigner { key: net.keys[0].clone(), signed: signed.clone() };
    net.engines[0] = TendermintEngine::new(CHAIN, signer, net.fast);
    net.start();
    net.run_until(4, 120_000);
    net.assert_agreement();
    // At least a prevote and a precommit per height, all through the signer.
    assert!(signed.load(std::sync::atomic::Ordering::Relaxed) >= 8);
}

#[test]
fn seven_validators_with_two_down_keep_committing() {
    let mut net = Net::new(7);
    net.down.extend([0, 4]);
    net.start();
    net.run_until(6, 120_000);
    net.assert_agreement();
}

fn is_precommit(bytes: &[u8]) -> bool {
    use malachitebft_core_consensus::SignedConsensusMsg;
    use pyralog_consensus::tendermint::context::EngineVoteKind;
    matches!(
        pyralog_consensus::tendermint::wire::decode(bytes),
        Ok(SignedConsensusMsg::Vote(v)) if v.kind == EngineVoteKind::Precommit
    )
}

/// Tendermint's safety rests on locks: a validator that precommitted a value in a round must not
/// prevote another one later unless a newer polka frees it. A restart must not forget the lock
/// ("amnesia"): the replayed WAL brings the engine back to the same lock.
#[test]
fn a_restarted_validator_keeps_its_lock() {
    let mut net = Net::new(4);
    net.drop_precommits = true; // polkas form, nothing is decided
    net.start();
    net.run_until_true(60_000, |net| net.engines.iter().any(|e| e.locked().is_some()));
    let node = net.engines.iter().position(|e| e.locked().is_some()).unwrap();
    let lock = net.engines[node].locked().unwrap();

    let validators = net.validators.clone();
    let mut restarted = TendermintEngine::new(CHAIN, net.keys[node].clone(), net.fast);
    restarted.restore_wal(net.wal[node].clone()).expect("the WAL this engine wrote reads back");
    let _ = restarted.handle(
        net.now,
        Input::StartHeight {
            height: 1,
            proposers: ProposerPriorities::genesis(&validators),
            validators: validators.clone(),
            last_commit: None,
        },
    );
    assert_eq!(restarted.locked(), Some(lock), "the lock is restored from the WAL");

    // Without the WAL the same validator would come back unlocked.
    let mut forgetful = TendermintEngine::new(CHAIN, net.keys[node].clone(), net.fast);
    let _ = forgetful.handle(
        net.now,
        Input::StartHeight {
            height: 1,
            proposers: ProposerPriorities::genesis(&validators),
            validators,
            last_commit: None,
        },
    );
    assert_eq!(forgetful.locked(), None);
}
