//! Proposer selection: CometBFT's proposer-priority algorithm, checked against CometBFT's own
//! test vector, for proportional fairness, for newcomers, and in both engines' use.

use proptest::prelude::*;
use pyralog_consensus::pbft::primary;
use pyralog_consensus::proposer::{ProposerPriorities, rotation};
use pyralog_consensus::{Validator, ValidatorSet};
use pyralog_crypto::{Keypair, PublicKey};

/// `n` keys in ascending order (so names can follow CometBFT's address order).
fn sorted_keys(n: usize) -> Vec<PublicKey> {
    let mut keys: Vec<PublicKey> = (0..n).map(|_| Keypair::generate().public()).collect();
    keys.sort();
    keys
}

fn set_of(pairs: &[(PublicKey, u64)]) -> ValidatorSet {
    ValidatorSet::new(pairs.iter().map(|&(key, power)| Validator { key, power })).unwrap()
}

/// CometBFT's `TestProposerSelection1` (types/validator_set_test.go): foo 1000, bar 300, baz 330,
/// whose addresses sort bar < baz < foo.
#[test]
fn the_sequence_is_cometbfts_for_its_own_test_vector() {
    let keys = sorted_keys(3);
    let (bar, baz, foo) = (keys[0], keys[1], keys[2]);
    let set = set_of(&[(foo, 1000), (bar, 300), (baz, 330)]);
    let name = |key: PublicKey| match key {
        k if k == foo => "foo",
        k if k == bar => "bar",
        _ => "baz",
    };
    let mut priorities = ProposerPriorities::genesis(&set);
    let mut proposers = Vec::new();
    for _ in 0..99 {
        proposers.push(name(priorities.proposer(0)));
        priorities = priorities.next_height(&set);
    }
    let expected = "foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar foo baz foo foo bar foo baz foo foo bar foo baz foo foo foo baz bar foo foo foo baz foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar foo baz foo foo bar foo baz foo foo";
    assert_eq!(proposers.join(" "), expected);
    // The priorities after genesis, as CometBFT prints them: bar 300, baz 330, foo -630.
    let genesis: Vec<(PublicKey, i64)> = ProposerPriorities::genesis(&set).priorities().collect();
    assert_eq!(genesis, vec![(foo, -630), (baz, 330), (bar, 300)]);
}

#[test]
fn rounds_move_the_height_priorities_on_a_copy() {
    let keys = sorted_keys(4);
    let set = set_of(&keys.iter().map(|&k| (k, 1)).collect::<Vec<_>>());
    let priorities = ProposerPriorities::genesis(&set);
    // Equal powers: round-robin in key order, rounds and heights alike.
    let by_round: Vec<PublicKey> = (0..8).map(|r| priorities.proposer(r)).collect();
    assert_eq!(by_round, [keys.clone(), keys.clone()].concat());
    assert_eq!(priorities.next_height(&set).proposer(0), keys[1]);
    assert_eq!(priorities.next_height(&set).proposer(3), keys[0]);
}

#[test]
fn a_validator_that_joins_does_not_propose_at_once() {
    let keys = sorted_keys(4);
    let old = set_of(&[(keys[1], 10), (keys[2], 10), (keys[3], 10)]);
    let mut priorities = ProposerPriorities::genesis(&old);
    for _ in 0..5 {
        priorities = priorities.next_height(&old);
    }
    // A newcomer as heavy as all the others together (and with the smallest key).
    let new = set_of(&[(keys[0], 30), (keys[1], 10), (keys[2], 10), (keys[3], 10)]);
    let joined = priorities.next_height(&new);
    assert_ne!(joined.proposer(0), keys[0]);
    let newcomer_priority = joined.priorities().find(|(k, _)| *k == keys[0]).unwrap().1;
    assert!(newcomer_priority < 0, "it starts behind: {newcomer_priority}");
    // And then it takes its share: half of the next 60 heights.
    let mut count = 0;
    let mut at = joined;
    for _ in 0..60 {
        at = at.next_height(&new);
        count += usize::from(at.proposer(0) == keys[0]);
    }
    assert!((28..=32).contains(&count), "{count}");
}

#[test]
fn pbft_primaries_cycle_through_every_validator_in_proportion() {
    let keys = sorted_keys(4);
    let equal = set_of(&keys.iter().map(|&k| (k, 7)).collect::<Vec<_>>());
    let primaries: Vec<PublicKey> = (0..8).map(|v| primary(&equal, v)).collect();
    assert_eq!(primaries, [keys.clone(), keys.clone()].concat(), "equal powers: view mod n in key order");
    // A very uneven set: every validator still leads some view of each cycle.
    let uneven = set_of(&[(keys[0], 1_000_000), (keys[1], 1), (keys[2], 1), (keys[3], 1)]);
    let order = rotation(&uneven, 32);
    for key in &keys {
        assert!(order.contains(key));
    }
    assert_eq!(primary(&uneven, order.len() as u32), order[0]);
}

proptest! {
    /// Over one full period (total power steps) every validator proposes as many heights as its
    /// power, give or take one.
    #[test]
    fn proposals_follow_power(powers in prop::collection::vec(1u64..20, 1..7)) {
        let keys = sorted_keys(powers.len());
        let set = set_of(&keys.iter().copied().zip(powers.iter().copied()).collect::<Vec<_>>());
        let total = set.total_power();
        let mut priorities = ProposerPriorities::genesis(&set);
        let mut counts = std::collections::BTreeMap::<PublicKey, u64>::new();
        for _ in 0..total * 3 {
            *counts.entry(priorities.proposer(0)).or_default() += 1;
            priorities = priorities.next_height(&set);
        }
        for (key, power) in keys.iter().zip(&powers) {
            let got = counts.get(key).copied().unwrap_or(0);
            prop_assert!(got + 1 >= 3 * power && got <= 3 * power + 1, "power {} proposed {}", power, got);
        }
    }
}
