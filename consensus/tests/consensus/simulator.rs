//! Seeded simulation of the Tendermint engine: 200 runs per `make test` over 4 and 7 validators
//! with delays, reordering, loss, duplication, partitions that heal, crash/restart, and up to f
//! Byzantine validators (silent, equivocating, sending broken signatures). Every run checks
//! safety after each commit and liveness at the end. A failure prints its seed; replay it with
//! `PYRALOG_SIM_SEED=<seed> cargo nextest run -p pyralog-consensus simulator`.

use pyralog_consensus::sim::{Behaviour, Scenario, SimFailure, run};

const RUNS_PER_SIZE: u64 = 100;

fn seeds() -> Vec<u64> {
    match std::env::var("PYRALOG_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("PYRALOG_SIM_SEED is a number")],
        Err(_) => (1..=RUNS_PER_SIZE).collect(),
    }
}

fn run_seeds(validators: usize) {
    let (mut synced, mut byzantine, mut evidence, mut equivocators) = (0, 0, 0, 0);
    let mut proposal_evidence = 0;
    for seed in seeds() {
        let scenario = Scenario::from_seed(seed, validators);
        byzantine += scenario.byzantine.len();
        equivocators += scenario.byzantine.iter().filter(|(_, b)| *b == Behaviour::Equivocate).count();
        match run(&scenario) {
            Ok(outcome) => {
                assert!(outcome.height >= scenario.target_height);
                synced += outcome.synced_blocks;
                evidence += outcome.evidence;
                proposal_evidence += outcome.proposal_evidence;
            }
            Err(failure) => panic!("{failure}\nscenario: {scenario:#?}"),
        }
    }
    println!(
        "{validators} validators: {} runs, {byzantine} Byzantine validators in all ({equivocators} equivocating), \
         {evidence} equivocations proven ({proposal_evidence} of proposals), {synced} blocks caught up by sync",
        seeds().len()
    );
    if equivocators > 0 && seeds().len() > 1 {
        assert!(evidence > 0, "equivocating validators were never caught");
        assert!(proposal_evidence > 0, "conflicting proposals were never proven");
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
}

#[test]
fn a_calm_network_commits_quickly() {
    let outcome = run(&Scenario::calm(7, 4)).unwrap();
    assert!(outcome.height >= 6);
    assert!(outcome.virtual_ms < 2_000, "{outcome:?}");
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
