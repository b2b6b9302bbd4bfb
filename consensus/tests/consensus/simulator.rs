//! Seeded simulation of real drivers running the Tendermint engine: 200 runs per `make test` over
//! 4 and 7 validators with delays, reordering, loss, duplication, partitions that heal,
//! crash/restart (apps that lost commits included), weighted validator sets and set changes, and
//! Byzantine validators below a third of the power (silent, equivocating, sending broken
//! signatures). Every run checks safety, certificates and app hashes after each step and
//! liveness at the end. A failure prints its seed; replay it with
//! `PYRALOG_SIM_SEED=<seed> cargo nextest run -p pyralog-consensus simulator`.

use pyralog_consensus::sim::{Behaviour, Crash, Scenario, SetChange, SimFailure, run};

const RUNS_PER_SIZE: u64 = 100;

fn seeds() -> Vec<u64> {
    match std::env::var("PYRALOG_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("PYRALOG_SIM_SEED is a number")],
        Err(_) => (1..=RUNS_PER_SIZE).collect(),
    }
}

fn run_seeds(validators: usize) {
    let (mut synced, mut byzantine, mut evidence, mut equivocators) = (0, 0, 0, 0);
    let (mut proposal_evidence, mut replayed, mut weighted, mut changes) = (0, 0, 0, 0);
    let mut committed_evidence = 0;
    for seed in seeds() {
        let scenario = Scenario::from_seed(seed, validators);
        byzantine += scenario.byzantine.len();
        equivocators += scenario.byzantine.iter().filter(|(_, b)| *b == Behaviour::Equivocate).count();
        weighted += usize::from(scenario.powers.iter().any(|p| *p != 1));
        changes += scenario.set_changes.len();
        match run(&scenario) {
            Ok(outcome) => {
                assert!(outcome.height >= scenario.target_height);
                synced += outcome.synced_blocks;
                evidence += outcome.evidence;
                proposal_evidence += outcome.proposal_evidence;
                committed_evidence += outcome.evidence_committed;
                replayed += outcome.replayed_blocks;
            }
            Err(failure) => panic!("{failure}\nscenario: {scenario:#?}"),
        }
    }
    println!(
        "{validators} validators: {} runs through real drivers, {weighted} with weighted sets, {changes} set changes, \
         {byzantine} Byzantine validators in all ({equivocators} equivocating), {evidence} equivocations proven \
         ({proposal_evidence} of proposals), {committed_evidence} misbehaviours carried to the apps in blocks, \
         {synced} blocks caught up by sync, {replayed} replayed into apps",
        seeds().len()
    );
    if equivocators > 0 && seeds().len() > 1 {
        assert!(evidence > 0, "equivocating validators were never caught");
        assert!(proposal_evidence > 0, "conflicting proposals were never proven");
        assert!(committed_evidence > 0, "no block ever carried evidence to the apps");
    }
}

#[test]
fn seeded_runs_with_four_validators_are_safe_and_live() {
    run_seeds(4);
}

#[test]
fn seeded_runs_with_seven_validators_are_safe_and_live() {
    run_seeds(7);
}

#[test]
fn a_seed_replays_the_same_run() {
    let scenario = Scenario::from_seed(42, 4);
    assert_eq!(run(&scenario), run(&scenario));
}

#[test]
fn the_seeds_cover_every_fault() {
    let scenarios: Vec<Scenario> = (1..=RUNS_PER_SIZE)
        .flat_map(|seed| [Scenario::from_seed(seed, 4), Scenario::from_seed(seed, 7)])
        .collect();
    let behaviours = [Behaviour::Silent, Behaviour::Equivocate, Behaviour::BadSignatures];
    for behaviour in behaviours {
        assert!(scenarios.iter().any(|s| s.byzantine.iter().any(|(_, b)| *b == behaviour)), "{behaviour:?}");
    }
    assert!(scenarios.iter().any(|s| s.partition.is_some()));
    assert!(scenarios.iter().any(|s| !s.crashes.is_empty()));
    assert!(scenarios.iter().any(|s| s.drop_permille > 0 && s.duplicate_permille > 0));
    assert!(scenarios.iter().any(|s| s.byzantine.len() == 2), "f = 2 Byzantine among 7");
    assert!(scenarios.iter().any(|s| s.powers.iter().any(|p| *p != 1)), "weighted sets");
    assert!(scenarios.iter().any(|s| !s.set_changes.is_empty()), "validator-set changes");
    assert!(scenarios.iter().any(|s| s.crashes.iter().any(|c| c.app_loses > 0)), "apps that lose commits");
    assert!(scenarios.iter().any(|s| s.block_interval_ms > 0), "a block interval");
    for s in &scenarios {
        let byzantine: u64 = s.byzantine.iter().map(|(n, _)| s.powers[*n]).sum();
        assert!(3 * byzantine < s.powers.iter().sum::<u64>(), "seed {}: too much Byzantine power", s.seed);
    }
}

/// A set change made by the app decides from two heights after its block: after it, validator
/// 3 holds 5 of 8, so no block is final without its vote, and the simulator checks every
/// certificate against the set the scenario says decides its height.
#[test]
fn a_validator_set_change_decides_two_heights_later() {
    let mut scenario = Scenario::calm(11, 4);
    scenario.set_changes = vec![SetChange { height: 2, powers: vec![(3, 5)] }];
    scenario.target_height = 8;
    assert_eq!(scenario.powers_at(3), vec![1, 1, 1, 1]);
    assert_eq!(scenario.powers_at(4), vec![1, 1, 1, 5]);
    let outcome = run(&scenario).unwrap();
    assert!(outcome.height >= 8, "{outcome:?}");

    // The heavy validator silent from the change on: nothing after height 3 can be final.
    scenario.byzantine = vec![(3, Behaviour::Silent)];
    scenario.deadline_ms = 20_000;
    match run(&scenario) {
        Err(SimFailure::Liveness { heights, .. }) => assert!(heights.iter().all(|h| *h <= 3), "{heights:?}"),
        other => panic!("expected no progress past height 3, got {other:?}"),
    }
}

/// An app that lost its last commits in a crash gets them back from the driver's handshake, with
/// the same app hashes as everyone else's (checked by the simulator at every step).
#[test]
fn a_restarted_app_that_lost_commits_is_replayed_to_the_same_app_hash() {
    let mut scenario = Scenario::calm(5, 4);
    scenario.target_height = 30;
    scenario.crashes = vec![Crash { node: 1, at_ms: 60, down_for_ms: 100, app_loses: 2 }];
    let outcome = run(&scenario).unwrap();
    assert_eq!(outcome.replayed_blocks, 2, "{outcome:?}");
}

#[test]
fn a_calm_network_commits_quickly() {
    let outcome = run(&Scenario::calm(7, 4)).unwrap();
    assert!(outcome.height >= 6);
    assert!(outcome.virtual_ms < 2_000, "{outcome:?}");
}

/// An equivocator's double signs are reported by the engines that see them, gossiped, carried
/// in a block by a later proposer and handed to every app in `DecidedBlock` (whose app hashes,
/// which cover the evidence and the last commit signers, the simulator compares at every step).
#[test]
fn an_equivocator_is_carried_to_the_apps_in_a_block() {
    let mut scenario = Scenario::calm(3, 4);
    scenario.byzantine = vec![(3, Behaviour::Equivocate)];
    scenario.target_height = 12;
    let outcome = run(&scenario).unwrap();
    assert!(outcome.evidence > 0, "{outcome:?}");
    assert!(outcome.evidence_committed > 0, "{outcome:?}");
}

/// The checks can fail: with more than f (here 2 of 4) validators showing the odd-numbered peers
/// a coherent alternative history, two honest validators commit different blocks, and the
/// simulator reports the violation with its seed.
#[test]
fn more_than_f_equivocators_break_safety_and_the_simulator_says_so() {
    let violations = (1..=10)
        .filter(|&seed| {
            let mut scenario = Scenario::calm(seed, 4);
            scenario.byzantine = vec![(2, Behaviour::Equivocate), (3, Behaviour::Equivocate)];
            scenario.deadline_ms = 20_000;
            matches!(run(&scenario), Err(SimFailure::Safety { seed: s, .. }) if s == seed)
        })
        .count();
    assert!(violations > 0, "no safety violation detected in 10 runs beyond the fault bound");
}
