//! Validator sets, the quorum rule and commit certificates: what a light client relies on.

use proptest::prelude::*;
use pyralog_consensus::validators::{MAX_TOTAL_POWER, ValidatorSetError};
use pyralog_consensus::vote::FinalityError;
use pyralog_consensus::{CommitCertificate, Engine, FinalityProof, Validator, ValidatorSet, Vote, VoteKind};
use pyralog_crypto::quorum::{QuorumError, SignatureShare};
use pyralog_crypto::{Digest, Keypair};

const CHAIN: &str = "pyralog-test";

fn keys(n: usize) -> Vec<Keypair> {
    (0..n).map(|_| Keypair::generate()).collect()
}

fn set(keys: &[Keypair], powers: &[u64]) -> ValidatorSet {
    ValidatorSet::new(keys.iter().zip(powers).map(|(k, &power)| Validator { key: k.public(), power }))
        .unwrap()
}

fn precommit(height: u64, block: Digest) -> Vote {
    Vote { chain_id: CHAIN.into(), height, round: 0, kind: VoteKind::Precommit, block: Some(block) }
}

fn certificate(vote: Vote, signers: &[&Keypair]) -> FinalityProof {
    let signatures = signers.iter().map(|k| SignatureShare::sign(k, &vote)).collect();
    FinalityProof::quorum(Engine::Tendermint, CommitCertificate { message: vote, signatures })
}

const BLOCK: Digest = Digest([7; 32]);

#[test]
fn the_order_of_a_set_does_not_depend_on_the_input_order() {
    let k = keys(4);
    let a = set(&k, &[5, 10, 5, 1]);
    let reversed: Vec<Keypair> = k.iter().rev().cloned().collect();
    let b = set(&reversed, &[1, 5, 10, 5]);
    assert_eq!(a.validators(), b.validators());
    assert_eq!(a.validators()[0].power, 10);
    assert_eq!(a.total_power(), 21);
}

#[test]
fn invalid_sets_are_refused_with_the_reason() {
    let k = keys(2);
    assert_eq!(ValidatorSet::new([]), Err(ValidatorSetError::Empty));
    let zero = [Validator { key: k[0].public(), power: 0 }];
    assert_eq!(ValidatorSet::new(zero), Err(ValidatorSetError::ZeroPower(k[0].public())));
    let twice = [Validator { key: k[0].public(), power: 1 }, Validator { key: k[0].public(), power: 2 }];
    assert_eq!(ValidatorSet::new(twice), Err(ValidatorSetError::Duplicate(k[0].public())));
    let huge = [
        Validator { key: k[0].public(), power: MAX_TOTAL_POWER },
        Validator { key: k[1].public(), power: 1 },
    ];
    assert_eq!(ValidatorSet::new(huge), Err(ValidatorSetError::PowerOverflow));
}

proptest! {
    /// A quorum is exactly "more than 2/3 of the power", even for the largest totals.
    #[test]
    fn quorum_is_more_than_two_thirds(powers in prop::collection::vec(1u64..=MAX_TOTAL_POWER / 8, 1..8), pick in any::<u64>()) {
        let k = keys(powers.len());
        let set = set(&k, &powers);
        let total = set.total_power();
        let signed = pick % (total + 1);
        prop_assert_eq!(set.is_quorum(signed), 3 * u128::from(signed) > 2 * u128::from(total));
        prop_assert_eq!(set.is_one_third(signed), 3 * u128::from(signed) > u128::from(total));
    }
}

#[test]
fn a_quorum_of_precommits_finalizes_the_block() {
    let k = keys(4);
    let validators = set(&k, &[1, 1, 1, 1]);
    let proof = certificate(precommit(9, BLOCK), &[&k[0], &k[2], &k[3]]);
    assert_eq!(proof.verify(Engine::Tendermint, CHAIN, 9, &BLOCK, &validators), Ok(3));
}

#[test]
fn two_thirds_exactly_is_not_enough() {
    // 4 equal validators: 2 of 4 is a half; with 3 validators 2 of 3 is exactly 2/3, not more.
    let k = keys(3);
    let validators = set(&k, &[1, 1, 1]);
    let proof = certificate(precommit(9, BLOCK), &[&k[0], &k[1]]);
    assert!(matches!(
        proof.verify(Engine::Tendermint, CHAIN, 9, &BLOCK, &validators),
        Err(FinalityError::Quorum(QuorumError::InsufficientWeight { signed: 2, total: 3, .. }))
    ));
}

#[test]
fn power_counts_not_heads() {
    let k = keys(4);
    let validators = set(&k, &[70, 10, 10, 10]);
    let big = validators.validators()[0].key;
    let big = k.iter().find(|kp| kp.public() == big).unwrap();
    assert_eq!(
        certificate(precommit(1, BLOCK), &[big]).verify(Engine::Tendermint, CHAIN, 1, &BLOCK, &validators),
        Ok(70)
    );
    let small: Vec<&Keypair> = k.iter().filter(|kp| kp.public() != big.public()).collect();
    assert!(
        certificate(precommit(1, BLOCK), &small)
            .verify(Engine::Tendermint, CHAIN, 1, &BLOCK, &validators)
            .is_err()
    );
}

#[test]
fn forged_foreign_and_duplicate_signatures_are_rejected() {
    let k = keys(4);
    let validators = set(&k, &[1, 1, 1, 1]);
    let vote = precommit(5, BLOCK);

    // A signature over another vote, presented as one over this vote.
    let mut forged = vec![SignatureShare::sign(&k[0], &vote), SignatureShare::sign(&k[1], &vote)];
    let other = precommit(5, Digest([8; 32]));
    forged.push(SignatureShare {
        signer: k[2].public(),
        signature: SignatureShare::sign(&k[2], &other).signature,
    });
    let proof = FinalityProof::quorum(
        Engine::Tendermint,
        CommitCertificate { message: vote.clone(), signatures: forged },
    );
    assert!(matches!(
        proof.verify(Engine::Tendermint, CHAIN, 5, &BLOCK, &validators),
        Err(FinalityError::Quorum(QuorumError::InvalidSignature(_)))
    ));

    // A non-validator's signature.
    let outsider = Keypair::generate();
    let proof = certificate(vote.clone(), &[&k[0], &k[1], &outsider]);
    assert!(matches!(
        proof.verify(Engine::Tendermint, CHAIN, 5, &BLOCK, &validators),
        Err(FinalityError::Quorum(QuorumError::UnknownSigner(_)))
    ));

    // One validator counted twice.
    let proof = certificate(vote, &[&k[0], &k[1], &k[1]]);
    assert!(matches!(
        proof.verify(Engine::Tendermint, CHAIN, 5, &BLOCK, &validators),
        Err(FinalityError::Quorum(QuorumError::DuplicateSigner(_)))
    ));
}

#[test]
fn a_certificate_proves_only_its_own_vote() {
    let k = keys(4);
    let validators = set(&k, &[1, 1, 1, 1]);
    let all: Vec<&Keypair> = k.iter().collect();
    let proof = certificate(precommit(5, BLOCK), &all);
    assert!(matches!(
        proof.verify(Engine::Tendermint, CHAIN, 6, &BLOCK, &validators),
        Err(FinalityError::WrongVote { .. })
    ));
    assert!(matches!(
        proof.verify(Engine::Tendermint, CHAIN, 5, &Digest([9; 32]), &validators),
        Err(FinalityError::WrongVote { .. })
    ));
    assert!(matches!(
        proof.verify(Engine::Tendermint, "other-chain", 5, &BLOCK, &validators),
        Err(FinalityError::WrongVote { .. })
    ));
    let prevote = Vote { kind: VoteKind::Prevote, ..precommit(5, BLOCK) };
    assert!(matches!(
        certificate(prevote, &all).verify(Engine::Tendermint, CHAIN, 5, &BLOCK, &validators),
        Err(FinalityError::WrongVote { .. })
    ));
    let nil = Vote { block: None, ..precommit(5, BLOCK) };
    assert!(matches!(
        certificate(nil, &all).verify(Engine::Tendermint, CHAIN, 5, &BLOCK, &validators),
        Err(FinalityError::WrongVote { .. })
    ));
}

#[test]
fn vote_encodings_differ_in_every_field() {
    let base = precommit(5, BLOCK);
    let variants = [
        Vote { chain_id: "x".into(), ..base.clone() },
        Vote { height: 6, ..base.clone() },
        Vote { round: 1, ..base.clone() },
        Vote { kind: VoteKind::Prevote, ..base.clone() },
        Vote { block: None, ..base.clone() },
        Vote { block: Some(Digest([8; 32])), ..base.clone() },
    ];
    use pyralog_crypto::quorum::Signable;
    for v in &variants {
        assert_ne!(v.signing_bytes(), base.signing_bytes(), "{v:?}");
    }
}

#[test]
fn duplicate_vote_evidence_holds_only_for_real_equivocation() {
    use pyralog_consensus::vote::DuplicateVote;
    use pyralog_crypto::quorum::Signable;
    let key = Keypair::generate();
    let first = precommit(3, BLOCK);
    let second = Vote { block: None, ..first.clone() };
    let evidence = |a: &Vote, b: &Vote, signer: &Keypair| DuplicateVote {
        validator: key.public(),
        first: a.clone(),
        first_signature: signer.sign(&a.signing_bytes()),
        second: b.clone(),
        second_signature: key.sign(&b.signing_bytes()),
    };
    assert!(evidence(&first, &second, &key).verify());
    // The same vote twice, votes at different heights or of different kinds: no equivocation.
    assert!(!evidence(&first, &first, &key).verify());
    assert!(!evidence(&first, &Vote { height: 4, ..second.clone() }, &key).verify());
    assert!(!evidence(&first, &Vote { kind: VoteKind::Prevote, ..second.clone() }, &key).verify());
    // A signature by someone else does not accuse this validator.
    assert!(!evidence(&first, &second, &Keypair::generate()).verify());
}

#[test]
fn duplicate_proposal_evidence_holds_only_for_real_equivocation() {
    use pyralog_consensus::vote::{DuplicateProposal, Evidence, ProposalHeader};
    use pyralog_crypto::quorum::Signable;
    let key = Keypair::generate();
    let first = ProposalHeader { chain_id: CHAIN.into(), height: 3, round: 0, pol_round: -1, block: BLOCK };
    let second = ProposalHeader { block: Digest([9; 32]), ..first.clone() };
    let evidence = |a: &ProposalHeader, b: &ProposalHeader, signer: &Keypair| {
        Evidence::DuplicateProposal(DuplicateProposal {
            validator: key.public(),
            first: a.clone(),
            first_signature: signer.sign(&a.signing_bytes()),
            second: b.clone(),
            second_signature: key.sign(&b.signing_bytes()),
        })
    };
    let proven = evidence(&first, &second, &key);
    assert!(proven.verify());
    assert_eq!((proven.validator(), proven.height()), (key.public(), 3));
    // The same block twice, another round, another height, another chain: no equivocation.
    assert!(!evidence(&first, &first, &key).verify());
    assert!(!evidence(&first, &ProposalHeader { round: 1, ..second.clone() }, &key).verify());
    assert!(!evidence(&first, &ProposalHeader { height: 4, ..second.clone() }, &key).verify());
    assert!(!evidence(&first, &ProposalHeader { chain_id: "other".into(), ..second.clone() }, &key).verify());
    // A signature by someone else does not accuse this proposer.
    assert!(!evidence(&first, &second, &Keypair::generate()).verify());
}

proptest::proptest! {
    /// The id the validators sign can be rebuilt from the first transaction (the chain's header)
    /// and the count and Merkle root of the rest, and any change to the payload changes it.
    #[test]
    fn payload_ids_rebuild_from_parts_and_bind_every_byte(
        txs in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40), 1..12),
        flip in proptest::prelude::any::<proptest::sample::Index>(),
    ) {
        use pyralog_consensus::vote::{payload_id, payload_id_from_parts, tx_root};
        let id = payload_id(&txs);
        proptest::prop_assert_eq!(id, payload_id_from_parts(txs.len() as u64, &txs[0], &tx_root(&txs[1..])));
        // Another byte in any transaction, one transaction fewer, or the first two merged.
        let mut changed = txs.clone();
        let which = flip.index(changed.len());
        changed[which].push(0x5a);
        proptest::prop_assert_ne!(payload_id(&changed), id);
        proptest::prop_assert_ne!(payload_id(&txs[..txs.len() - 1]), id);
        if txs.len() > 1 {
            let mut merged = txs[1..].to_vec();
            merged[0] = [txs[0].clone(), txs[1].clone()].concat();
            proptest::prop_assert_ne!(payload_id(&merged), id);
        }
    }
}

#[test]
fn rounds_taken_count_from_the_height_start_or_the_parents_view() {
    let keys = keys(1);
    let decided_in = |engine: Engine, round: u32| {
        let vote = Vote { round, ..precommit(5, BLOCK) };
        let signatures = vec![SignatureShare::sign(&keys[0], &vote)];
        FinalityProof::quorum(engine, CommitCertificate { message: vote, signatures })
    };
    // Tendermint's rounds restart at every height: round 2 is the third.
    let tendermint = decided_in(Engine::Tendermint, 2);
    assert_eq!((tendermint.round(), tendermint.rounds_taken(Some(7))), (Some(2), Some(3)));
    // PBFT's views are global: a height decided in its parent's view took one.
    let pbft = decided_in(Engine::Pbft, 7);
    assert_eq!(pbft.rounds_taken(Some(7)), Some(1));
    assert_eq!(pbft.rounds_taken(Some(5)), Some(3));
    assert_eq!(pbft.rounds_taken(None), Some(8));
}
