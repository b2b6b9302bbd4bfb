//! The Proof-of-Work engine on its own, fed inputs by hand: what it refuses, reports, asks for,
//! restores from its WAL, and the alarm a deeper-than-k reorg raises.

use pyralog_consensus::core::{ConsensusCore, Effect, Input, MiningJob};
use pyralog_consensus::finality::{FinalityError, FinalityProof, Trust};
use pyralog_consensus::nakamoto::{PowEngine, PowMessage, SealedBlock};
use pyralog_consensus::pow::{PowRules, Seal, SealError, U256, target_from_bits};
use pyralog_consensus::testkit::{easy_pow_rules, mine_chain, mine_seal, miss_target};
use pyralog_consensus::vote::payload_id;
use pyralog_consensus::{Engine, ValidatorSet};
use pyralog_crypto::{Digest, Keypair, PublicKey};

const GENESIS_MS: u64 = 1_767_225_600_000;

/// Rules whose seals take about 16 hashes: tests search nonces for real.
fn rules(confirmations: u64) -> PowRules {
    easy_pow_rules(GENESIS_MS, confirmations)
}

fn peer() -> PublicKey {
    Keypair::from_secret(&[7; 32]).public()
}

/// Seals `txs` on `parent` at `time_ms` with the target the rules give, by search.
fn sealed(rules: &PowRules, parent: Option<&Seal>, txs: Vec<Vec<u8>>, time_ms: u64) -> SealedBlock {
    SealedBlock { seal: mine_seal(rules, parent, payload_id(&txs), time_ms), txs }
}

fn chain(rules: &PowRules, parent: Option<Seal>, length: u64, start_ms: u64, tag: &str) -> Vec<SealedBlock> {
    mine_chain(rules, parent, length, start_ms, tag)
}

fn started(rules: PowRules) -> PowEngine {
    let mut engine = PowEngine::new(rules);
    let validators = ValidatorSet::new([pyralog_consensus::Validator { key: peer(), power: 1 }]).unwrap();
    let proposers = pyralog_consensus::proposer::ProposerPriorities::genesis(&validators);
    engine.handle(GENESIS_MS, Input::StartHeight { height: 1, validators, proposers, last_commit: None });
    engine
}

fn message(block: &SealedBlock) -> Input {
    Input::Message { from: peer(), bytes: PowMessage::Block(block.clone()).encode() }
}

/// Delivers `block` and answers the app check it asks for with `valid`; returns every effect.
fn deliver(engine: &mut PowEngine, now: u64, block: &SealedBlock, valid: bool) -> Vec<Effect> {
    let mut effects = engine.handle(now, message(block));
    let checks: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::CheckPayload { block, on: Some(_), .. } => Some(*block),
            _ => None,
        })
        .collect();
    for block in checks {
        effects.extend(engine.handle(now, Input::PayloadChecked { block, valid }));
    }
    effects
}

fn commits(effects: &[Effect]) -> Vec<(u64, FinalityProof)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::CommitBlock { height, proof, .. } => Some((*height, proof.clone())),
            _ => None,
        })
        .collect()
}

fn reports(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::PeerMisbehaved { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_block_is_committed_k_deep_with_a_proof_of_its_seals() {
    let rules = rules(3);
    let mut engine = started(rules);
    let blocks = chain(&rules, None, 5, GENESIS_MS + 1000, "a");
    let mut committed = Vec::new();
    for block in &blocks {
        committed.extend(commits(&deliver(&mut engine, block.seal.time_ms + 10, block, true)));
    }
    // Five blocks with k = 3: blocks 1 and 2 are final.
    assert_eq!(committed.iter().map(|(h, _)| *h).collect::<Vec<_>>(), vec![1, 2]);
    let (_, proof) = &committed[1];
    let parent = blocks[0].seal;
    let trust = Trust::Work { rules: &rules, parent: Some(&parent) };
    let work = proof.verify(Engine::Pow, "any", 2, &blocks[1].seal.block, trust).unwrap();
    assert!(work >= 4 * 8, "four seals at about 16 hashes each, got {work}");
    assert_eq!(proof.seals().unwrap().len(), 4);
}

#[test]
fn a_work_proof_is_refused_when_a_seal_is_tampered_with() {
    let rules = rules(2);
    let blocks = chain(&rules, None, 4, GENESIS_MS + 1000, "a");
    let seals: Vec<Seal> = blocks.iter().skip(1).map(|b| b.seal).collect();
    let parent = blocks[0].seal;
    let block = blocks[1].seal.block;
    let trust = Trust::Work { rules: &rules, parent: Some(&parent) };
    let check = |seals: Vec<Seal>| {
        FinalityProof::Work { engine: Engine::Pow, seals }.verify(Engine::Pow, "any", 2, &block, trust)
    };
    assert!(check(seals.clone()).is_ok());
    assert_eq!(check(seals[..2].to_vec()), Err(FinalityError::Confirmations { confirmations: 2, got: 2 }));
    let mut unlinked = seals.clone();
    unlinked[2].parent = Digest([1; 32]);
    assert_eq!(check(unlinked), Err(FinalityError::Seal(SealError::BrokenLink { height: 4 })));
    let mut easier = seals.clone();
    easier[1].bits = rules.limit_bits;
    assert!(matches!(check(easier), Err(FinalityError::Seal(SealError::WrongTarget { height: 3, .. }))));
    let mut unmined = seals.clone();
    unmined[0] = miss_target(unmined[0]);
    // The second seal no longer links to the changed first one; the first fails on its own.
    assert!(matches!(check(unmined), Err(FinalityError::Seal(SealError::Work { height: 2, .. }))));
    // Another block, or the wrong parent trusted.
    assert!(matches!(
        FinalityProof::Work { engine: Engine::Pow, seals: seals.clone() }.verify(
            Engine::Pow,
            "any",
            2,
            &Digest([3; 32]),
            trust
        ),
        Err(FinalityError::WrongSealedBlock { .. })
    ));
    let wrong_parent = Trust::Work { rules: &rules, parent: Some(&blocks[2].seal) };
    assert!(matches!(
        FinalityProof::Work { engine: Engine::Pow, seals: seals.clone() }.verify(
            Engine::Pow,
            "any",
            2,
            &block,
            wrong_parent
        ),
        Err(FinalityError::Seal(SealError::BrokenLink { height: 2 }))
    ));
    // A validator set proves nothing about work, nor a work proof under another engine.
    let set = ValidatorSet::new([pyralog_consensus::Validator { key: peer(), power: 1 }]).unwrap();
    let proof = FinalityProof::Work { engine: Engine::Pow, seals };
    assert!(matches!(
        proof.verify(Engine::Pow, "any", 2, &block, &set),
        Err(FinalityError::WrongTrust { .. })
    ));
    assert!(matches!(
        proof.verify(Engine::Tendermint, "any", 2, &block, &set),
        Err(FinalityError::WrongEngine { .. })
    ));
}

#[test]
fn bad_seals_and_early_times_are_misbehaviour_and_future_times_are_not() {
    let rules = rules(3);
    let mut engine = started(rules);
    let good = sealed(&rules, None, vec![b"one".to_vec()], GENESIS_MS + 1000);
    // A payload that is not the sealed block.
    let mut swapped = good.clone();
    swapped.txs = vec![b"other".to_vec()];
    assert_eq!(reports(&deliver(&mut engine, GENESIS_MS + 2000, &swapped, true)).len(), 1);
    // A nonce that misses the target.
    let mut unmined = good.clone();
    unmined.seal = miss_target(unmined.seal);
    let reasons = reports(&deliver(&mut engine, GENESIS_MS + 2000, &unmined, true));
    assert!(reasons[0].contains("seal hash above its target"), "{reasons:?}");
    // A time not after the median of its ancestors (here: the genesis time).
    let early = sealed(&rules, None, vec![b"early".to_vec()], GENESIS_MS);
    let reasons = reports(&deliver(&mut engine, GENESIS_MS + 2000, &early, true));
    assert!(reasons[0].contains("is not after the median"), "{reasons:?}");
    // More than a minute ahead of this clock: dropped, not reported (maybe only our clock lags).
    let future = sealed(&rules, None, vec![b"future".to_vec()], GENESIS_MS + 200_000);
    let effects = deliver(&mut engine, GENESIS_MS + 2000, &future, true);
    assert!(
        reports(&effects).is_empty() && !effects.iter().any(|e| matches!(e, Effect::CheckPayload { .. }))
    );
    // A block the app refuses.
    let reasons = reports(&deliver(&mut engine, GENESIS_MS + 2000, &good, false));
    assert!(reasons[0].contains("its app refuses"), "{reasons:?}");
    // Bytes that are no message.
    let effects = engine.handle(GENESIS_MS, Input::Message { from: peer(), bytes: vec![9, 9, 9] });
    assert!(reports(&effects)[0].contains("undecodable"));
}

#[test]
fn a_block_whose_parent_is_unknown_waits_while_its_sender_is_asked_for_the_parent() {
    let rules = rules(3);
    let mut engine = started(rules);
    let blocks = chain(&rules, None, 3, GENESIS_MS + 1000, "a");
    let effects = deliver(&mut engine, GENESIS_MS + 5000, &blocks[2], true);
    let ask = PowMessage::GetBlock { seal: blocks[1].seal.hash() }.encode();
    assert!(
        effects.iter().any(|e| matches!(e, Effect::SendTo { to, bytes } if *to == peer() && *bytes == ask))
    );
    deliver(&mut engine, GENESIS_MS + 5000, &blocks[1], true);
    // Its parent, then the block itself: both go to the app once block 1 arrives.
    let mut effects = engine.handle(GENESIS_MS + 5000, message(&blocks[0]));
    let mut checked = 0;
    while let Some(block) = effects.iter().find_map(|e| match e {
        Effect::CheckPayload { block, .. } => Some(*block),
        _ => None,
    }) {
        checked += 1;
        effects = engine.handle(GENESIS_MS + 5000, Input::PayloadChecked { block, valid: true });
    }
    assert_eq!(checked, 3);
    assert_eq!(engine.best().map(|(h, _)| h), Some(3));
    // It serves what it holds.
    let effects = engine.handle(
        GENESIS_MS,
        Input::Message { from: peer(), bytes: PowMessage::GetBlock { seal: blocks[1].seal.hash() }.encode() },
    );
    let served = PowMessage::Block(blocks[1].clone()).encode();
    assert!(effects.iter().any(|e| matches!(e, Effect::SendTo { bytes, .. } if *bytes == served)));
}

#[test]
fn a_heavier_fork_from_below_the_final_block_is_refused_with_an_alarm() {
    let rules = rules(2);
    let mut engine = started(rules);
    let honest = chain(&rules, None, 5, GENESIS_MS + 1000, "honest");
    let mut effects = Vec::new();
    for block in &honest {
        effects.extend(deliver(&mut engine, block.seal.time_ms + 10, block, true));
    }
    assert_eq!(commits(&effects).len(), 3);
    let best = engine.best();
    // A longer private chain from genesis (block 1 onwards differs): heavier, but blocks 1-3 are final.
    let attack = chain(&rules, None, 8, GENESIS_MS + 900, "attack");
    let mut effects = Vec::new();
    for block in &attack {
        effects.extend(deliver(&mut engine, GENESIS_MS + 20_000, block, true));
    }
    let alarms: Vec<&String> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Alarm(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert!(alarms[0].contains("deeper than k = 2"), "{alarms:?}");
    assert!(commits(&effects).is_empty());
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::CheckPayload { .. })),
        "the fork never reaches the app"
    );
    assert_eq!(engine.best(), best);
}

#[test]
fn a_restarted_engine_resumes_its_unfinalised_blocks_from_the_wal() {
    let rules = rules(4);
    let mut engine = started(rules);
    let blocks = chain(&rules, None, 6, GENESIS_MS + 1000, "a");
    let mut wal = Vec::new();
    let mut committed = Vec::new();
    for block in &blocks {
        for effect in deliver(&mut engine, block.seal.time_ms + 10, block, true) {
            match effect {
                Effect::PersistWal { height, entry } => wal.push((height, entry)),
                Effect::CommitBlock { height, proof, .. } => committed.push((height, proof)),
                _ => {}
            }
        }
    }
    // Six blocks, k = 4: blocks 1 and 2 final; what the driver replays is the WAL from height 3.
    let (last, proof) = committed.last().cloned().unwrap();
    assert_eq!(last, 2);
    let replayed: Vec<Vec<u8>> = wal.iter().filter(|(h, _)| *h > last).map(|(_, e)| e.clone()).collect();
    let mut restarted = PowEngine::new(rules);
    restarted.restore_wal(replayed).unwrap();
    let validators = ValidatorSet::new([pyralog_consensus::Validator { key: peer(), power: 1 }]).unwrap();
    let proposers = pyralog_consensus::proposer::ProposerPriorities::genesis(&validators);
    let effects = restarted.handle(
        GENESIS_MS + 10_000,
        Input::StartHeight { height: last + 1, validators, proposers, last_commit: Some(proof) },
    );
    assert!(commits(&effects).is_empty());
    assert_eq!(restarted.best(), engine.best());
    // The next block is checked against the restored tree (its time against the medians too).
    let next = sealed(&rules, Some(&blocks[5].seal), vec![b"seven".to_vec()], GENESIS_MS + 7000);
    let effects = deliver(&mut restarted, GENESIS_MS + 7010, &next, true);
    assert_eq!(commits(&effects).iter().map(|(h, _)| *h).collect::<Vec<_>>(), vec![3]);
    // An entry it cannot read stops it.
    let mut broken = PowEngine::new(rules);
    assert_eq!(broken.restore_wal(vec![vec![0xff; 3]]).unwrap_err().index, 0);
}

#[test]
fn a_mining_engine_builds_on_its_best_block_and_keeps_what_it_sealed() {
    let rules = rules(3);
    let key = Keypair::from_secret(&[1; 32]);
    let mut engine = PowEngine::new(rules).mining(key.public());
    let validators = ValidatorSet::new([pyralog_consensus::Validator { key: peer(), power: 1 }]).unwrap();
    let proposers = pyralog_consensus::proposer::ProposerPriorities::genesis(&validators);
    let effects = engine
        .handle(GENESIS_MS + 500, Input::StartHeight { height: 1, validators, proposers, last_commit: None });
    let Some(Effect::BuildPayload { height: 1, proposer, on: Some(on) }) = effects.first() else {
        panic!("{effects:?}")
    };
    assert_eq!((*proposer, on.parent, on.time_ms), (key.public(), Digest([0; 32]), GENESIS_MS + 500));
    let txs = vec![b"mine".to_vec()];
    let effects = engine.handle(GENESIS_MS + 500, Input::PayloadBuilt { height: 1, txs: txs.clone() });
    let Some(Effect::Mine(MiningJob { seal, min_time_ms })) = effects.first().cloned() else {
        panic!("{effects:?}")
    };
    assert_eq!((seal.block, seal.bits, min_time_ms), (payload_id(&txs), rules.initial_bits, GENESIS_MS + 1));
    let mut found = seal;
    let target = target_from_bits(found.bits).unwrap();
    while U256::from_big_endian(&found.hash().0) > target {
        found.nonce += 1;
    }
    let effects = engine.handle(GENESIS_MS + 900, Input::Mined(found));
    let published = PowMessage::Block(SealedBlock { seal: found, txs }).encode();
    assert!(effects.iter().any(|e| matches!(e, Effect::PersistWal { height: 1, .. })));
    assert!(effects.iter().any(|e| *e == Effect::Broadcast(published.clone())));
    // The next job is on the new block.
    assert!(effects.iter().any(|e| matches!(e, Effect::BuildPayload { height: 2, .. })));
    assert_eq!(engine.best(), Some((1, found.hash())));
    // A seal for a job that is no longer current is dropped.
    let effects = engine.handle(GENESIS_MS + 950, Input::Mined(found));
    assert!(effects.is_empty(), "{effects:?}");
}
