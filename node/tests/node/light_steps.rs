//! The chain light client's header steps (`verify_adjacent`, `verify_skipping`) across a
//! validator-set change, on headers built here: the sequential path must take the new set only
//! as the previous header announced it, and skipping must find more than 1/3 of the trusted
//! power among the signers. A malicious server against a Proof-of-Stake client: long-range
//! headers past the trusting period, set changes that skip the H+2 rule, forged validator hashes.

use pyralog_chain::block::{Header, validators_hash};
use pyralog_consensus::{Engine, FinalityProof, Validator, ValidatorSet, Vote, VoteKind};
use pyralog_crypto::quorum::SignatureShare;
use pyralog_crypto::{Digest, Keypair, QuorumCertificate};
use pyralog_light::chain::{ChainLightError, TrustedHead, verify_adjacent, verify_skipping};

const CHAIN: &str = "light-steps";

/// The client's clock in these tests (after every header's time).
const NOW: u64 = 1_000_000;

fn set(keys: &[&Keypair], power: u64) -> Vec<Validator> {
    ValidatorSet::new(keys.iter().map(|k| Validator { key: k.public(), power }))
        .unwrap()
        .validators()
        .to_vec()
}

fn header(height: u64, parent: Digest, validators: &[Validator], next: &[Validator]) -> Header {
    Header {
        chain_id: CHAIN.into(),
        height,
        time_ms: 1_000 * height,
        parent,
        tx_count: 0,
        tx_root: Digest([0; 32]),
        state_root: Digest([height as u8; 32]),
        validators_hash: validators_hash(validators),
        next_validators_hash: validators_hash(next),
        proposer: validators[0].key,
        engine: "tendermint".into(),
    }
}

fn commit(header: &Header, signers: &[&Keypair]) -> FinalityProof {
    let vote = Vote {
        chain_id: CHAIN.into(),
        height: header.height,
        round: 0,
        kind: VoteKind::Precommit,
        block: Some(header.block_id()),
    };
    let signatures = signers.iter().map(|k| SignatureShare::sign(k, &vote)).collect();
    FinalityProof::quorum(Engine::Tendermint, QuorumCertificate { message: vote, signatures })
}

/// Four genesis validators; block 2 announces a set where a fifth joins and validator 0 leaves,
/// deciding from height 3.
struct Chain {
    keys: Vec<Keypair>,
    old: Vec<Validator>,
    new: Vec<Validator>,
    headers: Vec<Header>,
}

fn chain() -> Chain {
    let keys: Vec<Keypair> = (0..5).map(|_| Keypair::generate()).collect();
    let k: Vec<&Keypair> = keys.iter().collect();
    let old = set(&k[..4], 1);
    let new = set(&k[1..], 1);
    let h1 = header(1, Digest([0; 32]), &old, &old);
    let h2 = header(2, h1.block_id(), &old, &new);
    let h3 = header(3, h2.block_id(), &new, &new);
    let h4 = header(4, h3.block_id(), &new, &new);
    Chain { keys, old, new, headers: vec![h1, h2, h3, h4] }
}

#[test]
fn sequential_steps_follow_an_announced_set_change() {
    let c = chain();
    let k: Vec<&Keypair> = c.keys.iter().collect();
    let genesis = ValidatorSet::new(c.old.iter().copied()).unwrap();
    let trusted = TrustedHead::genesis(CHAIN, Engine::Tendermint, &genesis);
    let t1 = verify_adjacent(&trusted, &c.headers[0], &commit(&c.headers[0], &k[..3]), None, NOW).unwrap();

    // Header 2 announces the new set: the client must be given it, and it must match.
    let c2 = commit(&c.headers[1], &k[..3]);
    assert!(matches!(
        verify_adjacent(&t1, &c.headers[1], &c2, None, NOW),
        Err(ChainLightError::ValidatorsMismatch { .. })
    ));
    assert!(matches!(
        verify_adjacent(&t1, &c.headers[1], &c2, Some(&c.old), NOW),
        Err(ChainLightError::ValidatorsMismatch { .. })
    ));
    let t2 = verify_adjacent(&t1, &c.headers[1], &c2, Some(&c.new), NOW).unwrap();
    assert_eq!(t2.next_validators, c.new);

    // Height 3 is decided by the new set: three of its four sign (the newcomer among them).
    let t3 = verify_adjacent(&t2, &c.headers[2], &commit(&c.headers[2], &k[2..5]), None, NOW).unwrap();
    assert_eq!(t3.height, 3);

    // The old set's signatures no longer make a quorum at height 3: validator 0 is not in it.
    let by_old = commit(&c.headers[2], &[k[0], k[1], k[2]]);
    assert!(matches!(
        verify_adjacent(&t2, &c.headers[2], &by_old, None, NOW),
        Err(ChainLightError::Finality(_))
    ));

    // A header at height 3 still claiming the old set is refused: the chain never committed it.
    let stale = header(3, c.headers[1].block_id(), &c.old, &c.old);
    assert!(matches!(
        verify_adjacent(&t2, &stale, &commit(&stale, &k[..3]), None, NOW),
        Err(ChainLightError::ValidatorSetNotCommitted { .. })
    ));
}

#[test]
fn skipping_across_a_set_change_needs_a_third_of_the_trusted_power() {
    let c = chain();
    let k: Vec<&Keypair> = c.keys.iter().collect();
    let genesis = ValidatorSet::new(c.old.iter().copied()).unwrap();
    let trusted = TrustedHead::genesis(CHAIN, Engine::Tendermint, &genesis);
    let h4 = &c.headers[3];

    // Signed by validators 1, 2 and the newcomer: 2 of the trusted 4 (> 1/3), 3 of the new 4.
    let good = commit(h4, &[k[1], k[2], k[4]]);
    let t4 = verify_skipping(&trusted, h4, &good, &c.new, None, NOW).unwrap();
    assert_eq!((t4.height, t4.next_validators.clone()), (4, c.new.clone()));

    // Validator 3 and the newcomer: 1 of the trusted 4 is not more than a third.
    let weak = commit(h4, &[k[3], k[4]]);
    assert!(matches!(
        verify_skipping(&trusted, h4, &weak, &c.new, None, NOW),
        Err(ChainLightError::NotEnoughTrust { signed: 1, total: 4 })
    ));

    // Served a set that is not the header's: refused before any trust is given.
    assert!(matches!(
        verify_skipping(&trusted, h4, &good, &c.old, None, NOW),
        Err(ChainLightError::ValidatorsMismatch { .. })
    ));

    // An entirely new set (none of the trusted validators) cannot be skipped to.
    let strangers: Vec<Keypair> = (0..4).map(|_| Keypair::generate()).collect();
    let s: Vec<&Keypair> = strangers.iter().collect();
    let foreign = set(&s, 1);
    let h = header(4, c.headers[2].block_id(), &foreign, &foreign);
    assert!(matches!(
        verify_skipping(&trusted, &h, &commit(&h, &s), &foreign, None, NOW),
        Err(ChainLightError::NotEnoughTrust { signed: 0, total: 4 })
    ));
}

/// The validator quorum is more than 2/3 of the power in the code, and the documents a client
/// developer reads say so (the README and the OpenRPC document said "at least 2/3" in places).
#[test]
fn the_documents_state_the_quorum_the_code_requires() {
    assert_eq!(pyralog_consensus::validators::QUORUM.to_string(), "> 2/3");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for file in ["README.md", "node/src/rpc/openrpc.json"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for wrong in [">= 2/3", "at least 2/3", "≥ 2/3"] {
            assert!(!text.contains(wrong), "{file} says {wrong:?}");
        }
    }
}

/// A header naming another engine than the chain's is refused, whatever its signatures.
#[test]
fn a_header_of_another_engine_is_refused() {
    let c = chain();
    let k: Vec<&Keypair> = c.keys.iter().collect();
    let genesis = ValidatorSet::new(c.old.iter().copied()).unwrap();
    let trusted = TrustedHead::genesis(CHAIN, Engine::Tendermint, &genesis);
    let mut other = c.headers[0].clone();
    other.engine = "pbft".into();
    let proof = commit(&other, &k[..4]);
    match verify_adjacent(&trusted, &other, &proof, None, NOW) {
        Err(ChainLightError::WrongEngine { expected: Engine::Tendermint, got }) => assert_eq!(got, "pbft"),
        other => panic!("expected WrongEngine, got {other:?}"),
    }
    assert!(matches!(
        verify_skipping(&trusted, &other, &proof, &c.old, None, NOW),
        Err(ChainLightError::WrongEngine { .. })
    ));
}

/// A malicious server against a Proof-of-Stake client, whose trust lasts a trusting period.
mod malicious_server {
    use super::*;

    /// One day of trust, as a client of a chain with a longer unbonding period would have.
    const PERIOD: u64 = 86_400_000;

    /// The client that trusts the genesis and verified header 1.
    fn trusted_at_height_1(c: &Chain) -> TrustedHead {
        let k: Vec<&Keypair> = c.keys.iter().collect();
        let genesis = ValidatorSet::new(c.old.iter().copied()).unwrap();
        let trusted = TrustedHead::genesis(CHAIN, Engine::Tendermint, &genesis);
        verify_adjacent(&trusted, &c.headers[0], &commit(&c.headers[0], &k[..3]), None, NOW).unwrap()
    }

    fn trusted_at_height_2(c: &Chain) -> TrustedHead {
        let k: Vec<&Keypair> = c.keys.iter().collect();
        let genesis = ValidatorSet::new(c.old.iter().copied()).unwrap();
        let trusted =
            TrustedHead::genesis(CHAIN, Engine::Tendermint, &genesis).with_trusting_period(0, Some(PERIOD));
        let t1 =
            verify_adjacent(&trusted, &c.headers[0], &commit(&c.headers[0], &k[..3]), None, NOW).unwrap();
        verify_adjacent(&t1, &c.headers[1], &commit(&c.headers[1], &k[..3]), Some(&c.new), NOW).unwrap()
    }

    /// Long range: the genesis validators have since unbonded, so nothing stops them signing
    /// another chain. A header they all signed is refused once the client's trust is older than
    /// the trusting period; within it, the same signatures would be accepted (they would still
    /// be slashable).
    #[test]
    fn a_set_that_has_unbonded_cannot_sign_past_the_trusting_period() {
        let c = chain();
        let k: Vec<&Keypair> = c.keys.iter().collect();
        let t2 = trusted_at_height_2(&c);
        let fork = header(9, Digest([9; 32]), &c.new, &c.new);
        let signed = commit(&fork, &k[1..5]);
        let late = t2.time_ms + PERIOD;
        match verify_skipping(&t2, &fork, &signed, &c.new, None, late) {
            Err(ChainLightError::TrustExpired { height: 2, expired_at, now }) => {
                assert_eq!((expired_at, now), (t2.time_ms + PERIOD, late));
            }
            other => panic!("expected TrustExpired, got {other:?}"),
        }
        assert!(matches!(
            verify_adjacent(&t2, &c.headers[2], &commit(&c.headers[2], &k[2..5]), None, late),
            Err(ChainLightError::TrustExpired { .. })
        ));
        // Within the period the step itself holds.
        verify_skipping(&t2, &fork, &signed, &c.new, None, late - 1).unwrap();
        // A genesis whose time is older than the period is no trust at all.
        let genesis = ValidatorSet::new(c.old.iter().copied()).unwrap();
        let stale =
            TrustedHead::genesis(CHAIN, Engine::Tendermint, &genesis).with_trusting_period(1, Some(10));
        assert!(matches!(
            verify_adjacent(&stale, &c.headers[0], &commit(&c.headers[0], &k[..3]), None, NOW),
            Err(ChainLightError::TrustExpired { height: 0, .. })
        ));
    }

    /// A newcomer that bonded at height 2 decides from height 4, not 3: a server showing height 3
    /// decided by the set with the newcomer, when header 2 announced the old set, is refused.
    #[test]
    fn a_set_change_that_skips_the_h_plus_2_rule_is_refused() {
        let c = chain();
        let k: Vec<&Keypair> = c.keys.iter().collect();
        let h1 = &c.headers[0];
        let t1 = trusted_at_height_1(&c);
        // Header 2 as the honest chain made it after the bond: it still announces the old set.
        let h2 = header(2, h1.block_id(), &c.old, &c.old);
        let t2 = verify_adjacent(&t1, &h2, &commit(&h2, &k[..3]), None, NOW).unwrap();
        let early = header(3, h2.block_id(), &c.new, &c.new);
        let proof = commit(&early, &k[1..5]);
        assert!(matches!(
            verify_adjacent(&t2, &early, &proof, None, NOW),
            Err(ChainLightError::ValidatorSetNotCommitted { .. })
        ));
        // Signed by the newcomer and one trusted validator only (1 of 4), a skip is refused too.
        let weak = commit(&early, &[k[1], k[4]]);
        assert!(matches!(
            verify_skipping(&t2, &early, &weak, &c.new, None, NOW),
            Err(ChainLightError::NotEnoughTrust { signed: 1, total: 4 })
        ));
    }

    /// Forged validator hashes: a header whose `validators_hash` was changed after signing no
    /// longer has the block id its certificate signs; a `next_validators_hash` the served set
    /// does not match is refused; a header from the future is refused.
    #[test]
    fn forged_validator_hashes_and_future_headers_are_refused() {
        let c = chain();
        let k: Vec<&Keypair> = c.keys.iter().collect();
        let h1 = &c.headers[0];
        let t1 = trusted_at_height_1(&c);
        let h2 = &c.headers[1];
        let proof = commit(h2, &k[..3]);
        // Announces the new set; the server serves a forged one with the newcomer's power raised.
        let mut forged_next = c.new.clone();
        forged_next[0].power = 100;
        assert!(matches!(
            verify_adjacent(&t1, h2, &proof, Some(&forged_next), NOW),
            Err(ChainLightError::ValidatorsMismatch { .. })
        ));
        // The header's own next hash rewritten to the forged set: the certificate signed another
        // block id.
        let mut rewritten = h2.clone();
        rewritten.next_validators_hash = validators_hash(&forged_next);
        assert!(matches!(
            verify_adjacent(&t1, &rewritten, &proof, Some(&forged_next), NOW),
            Err(ChainLightError::Finality(_))
        ));
        let mut future = header(2, h1.block_id(), &c.old, &c.old);
        future.time_ms = NOW + 60_000;
        assert!(matches!(
            verify_adjacent(&t1, &future, &commit(&future, &k[..3]), None, NOW),
            Err(ChainLightError::HeaderFromFuture { .. })
        ));
    }
}

proptest::proptest! {
    /// `wire::record` reads back every record `wire::record_json` writes, keys, headers,
    /// producers and Scarab ids above 2^53 included.
    #[test]
    fn record_json_round_trips(
        key in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..40)),
        value in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
        headers in proptest::collection::vec(("[a-z-]{0,12}", proptest::collection::vec(proptest::num::u8::ANY, 0..20)), 0..4),
        producer in proptest::option::of((proptest::num::u64::ANY, proptest::num::u64::ANY)),
        (offset, epoch, timestamp_ms, scarab_id) in (proptest::num::u64::ANY, proptest::num::u64::ANY, proptest::num::u64::ANY, proptest::num::u64::ANY),
    ) {
        use pyralog_cluster::model::{Header as RecordHeader, ProducerSeq, Record, StoredRecord};
        let stored = StoredRecord {
            offset,
            epoch,
            record: Record {
                key,
                value,
                headers: headers.into_iter().map(|(name, value)| RecordHeader { name, value }).collect(),
                timestamp_ms,
                scarab_id,
                producer: producer.map(|(producer, sequence)| ProducerSeq { producer, sequence }),
            },
        };
        let json = pyralog_light::wire::record_json(&stored);
        proptest::prop_assert_eq!(pyralog_light::wire::record(&json).unwrap(), stored);
    }
}

/// A record whose JSON lacks a field or holds one of the wrong type is refused with the field
/// named.
#[test]
fn record_json_with_a_bad_field_is_refused() {
    let stored = pyralog_cluster::model::StoredRecord { offset: 1, epoch: 2, record: Default::default() };
    let json = pyralog_light::wire::record_json(&stored);
    for (field, bad, expected) in [
        ("value", serde_json::json!("zz"), "value: bytes are 0x-prefixed hex"),
        ("scarabId", serde_json::json!(5), "scarabId: not a string"),
        ("offset", serde_json::json!("1"), "offset: not a number"),
    ] {
        let mut broken = json.clone();
        broken[field] = bad;
        let err = pyralog_light::wire::record(&broken).unwrap_err().to_string();
        assert_eq!(err, expected);
    }
    let mut missing = json.clone();
    missing.as_object_mut().unwrap().remove("epoch");
    assert_eq!(pyralog_light::wire::record(&missing).unwrap_err().to_string(), "record: no epoch");
}
