//! The PBFT engine in the simulator, through real drivers: 200 seeded runs per `make test` over 4
//! and 7 validators with the network's faults, crashes, weighted sets and set changes, and PBFT's
//! Byzantine behaviours (the first primary often among them): silent, equivocating, broken
//! signatures, withholding its PRE-PREPARE from some and its COMMITs from all, slow around the
//! view timer, dropping COMMITs, and a view-change storm with forged NEW-VIEWs; the new primary
//! crashing in the first view change, or another validator restarting in its middle. Then each
//! fault on its own, and a broken NEW-VIEW check that the simulator must catch. A failure prints
//! its seed; replay it with `PYRALOG_SIM_SEED=<seed> cargo nextest run --workspace -E
//! 'test(/^pbft::seeded/)'`.

use pyralog_consensus::ValidatorSet;
use pyralog_consensus::pbft::primary;
use pyralog_consensus::sim::{
    Behaviour, Crash, Outcome, Scenario, SimFailure, run_pbft, run_pbft_unchecked, validator_keys,
};
use pyralog_consensus::validators::Validator;

const RUNS_PER_SIZE: u64 = 100;

fn seeds() -> Vec<u64> {
    match std::env::var("PYRALOG_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("PYRALOG_SIM_SEED is a number")],
        Err(_) => (1..=RUNS_PER_SIZE).collect(),
    }
}

/// The node index of the primary of `view` in `scenario`'s genesis set.
fn primary_node(scenario: &Scenario, view: u32) -> usize {
    let keys = validator_keys(scenario.seed, scenario.validators);
    let set = ValidatorSet::new(
        keys.iter().zip(&scenario.powers).map(|(k, power)| Validator { key: k.public(), power: *power }),
    )
    .unwrap();
    let key = primary(&set, view);
    keys.iter().position(|k| k.public() == key).unwrap()
}

fn sweep(validators: usize) {
    let (mut view_changes, mut evidence, mut synced, mut replayed, mut first_primary) = (0, 0, 0, 0, 0);
    let mut behaviours = std::collections::BTreeMap::new();
    for seed in seeds() {
        let scenario = Scenario::pbft_from_seed(seed, validators);
        for (_, b) in &scenario.byzantine {
            *behaviours.entry(format!("{b:?}")).or_insert(0) += 1;
        }
        first_primary +=
            usize::from(scenario.byzantine.iter().any(|(n, _)| *n == primary_node(&scenario, 0)));
        match run_pbft(&scenario) {
            Ok(outcome) => {
                assert!(outcome.height >= scenario.target_height);
                view_changes += outcome.view_changes;
                evidence += outcome.evidence;
                synced += outcome.synced_blocks;
                replayed += outcome.replayed_blocks;
            }
            Err(failure) => panic!("{failure}\nscenario: {scenario:#?}"),
        }
    }
    println!(
        "PBFT, {validators} validators: {} runs through real drivers, Byzantine behaviours {behaviours:?} \
         ({first_primary} runs with a Byzantine first primary), {view_changes} view-change messages delivered, \
         {evidence} equivocations proven, {synced} blocks caught up by sync, {replayed} replayed into apps",
        seeds().len()
    );
    if seeds().len() > 1 {
        assert!(view_changes > 0, "no run needed a view change");
        assert!(evidence > 0, "no equivocation was proven");
    }
}

#[test]
fn seeded_pbft_runs_with_four_validators_are_safe_and_live() {
    sweep(4);
}

#[test]
fn seeded_pbft_runs_with_seven_validators_are_safe_and_live() {
    sweep(7);
}

#[test]
fn the_pbft_seeds_cover_every_fault() {
    let scenarios: Vec<Scenario> = (1..=RUNS_PER_SIZE)
        .flat_map(|seed| [Scenario::pbft_from_seed(seed, 4), Scenario::pbft_from_seed(seed, 7)])
        .collect();
    for behaviour in Behaviour::BYZANTINE {
        let at_first_primary = scenarios
            .iter()
            .any(|s| s.byzantine.iter().any(|(n, b)| *b == behaviour && *n == primary_node(s, 0)));
        assert!(at_first_primary, "{behaviour:?} is never the first primary's behaviour");
    }
    let in_view_change = |s: &Scenario| {
        s.byzantine.iter().any(|(n, _)| *n == primary_node(s, 0))
            && s.crashes.iter().any(|c| (380..500).contains(&c.at_ms))
    };
    assert!(
        scenarios.iter().any(|s| in_view_change(s) && s.crashes[0].node == primary_node(s, 1)),
        "the new primary never crashes in the first view change"
    );
    assert!(
        scenarios.iter().any(|s| in_view_change(s) && s.crashes[0].node != primary_node(s, 1)),
        "no validator restarts in the middle of the first view change"
    );
    for s in &scenarios {
        for height in 0..=s.target_height + 2 {
            let powers = s.powers_at(height);
            let byzantine: u64 = s.byzantine.iter().map(|(n, _)| powers[*n]).sum();
            assert!(3 * byzantine < powers.iter().sum::<u64>(), "seed {}: too much Byzantine power", s.seed);
        }
    }
}

#[test]
fn a_pbft_seed_replays_the_same_run() {
    let scenario = Scenario::pbft_from_seed(42, 4);
    assert_eq!(run_pbft(&scenario), run_pbft(&scenario));
}

#[test]
fn a_calm_network_commits_quickly_in_one_view() {
    let outcome = run_pbft(&Scenario::calm(7, 4)).unwrap();
    assert!(outcome.height >= 6);
    assert!(outcome.virtual_ms < 2_000, "{outcome:?}");
    assert_eq!(outcome.view_changes, 0, "{outcome:?}");
    assert!(outcome.blocks.iter().all(|b| b.round == 0), "{outcome:?}");
}

/// A calm 4-validator run with the first primary Byzantine as `behaviour`.
fn first_primary_is(seed: u64, behaviour: Behaviour) -> (Scenario, Result<Outcome, SimFailure>) {
    let mut scenario = Scenario::calm(seed, 4);
    scenario.byzantine = vec![(primary_node(&scenario, 0), behaviour)];
    scenario.deadline_ms = 60_000;
    let outcome = run_pbft(&scenario);
    (scenario, outcome)
}

/// Views are global: once a silent primary is replaced, its successor leads every later height.
#[test]
fn a_silent_primary_is_replaced_once_and_its_successor_stays() {
    let (_, outcome) = first_primary_is(3, Behaviour::Silent);
    let outcome = outcome.unwrap();
    assert!(outcome.view_changes > 0, "{outcome:?}");
    assert!(outcome.blocks.iter().all(|b| b.round == 1), "{outcome:?}");
}

#[test]
fn every_faulty_first_primary_is_survived() {
    // Silent has a test of its own (below).
    for behaviour in Behaviour::BYZANTINE.into_iter().filter(|b| *b != Behaviour::Silent) {
        for seed in 1..=3 {
            let (scenario, outcome) = first_primary_is(seed, behaviour);
            let outcome = outcome.unwrap_or_else(|e| panic!("{behaviour:?}: {e}\n{scenario:#?}"));
            assert!(outcome.height >= scenario.target_height, "{behaviour:?}: {outcome:?}");
        }
    }
}

/// A primary that shows its PRE-PREPARE to some validators only and keeps its COMMITs back leaves
/// a prepared block nobody can commit; the NEW-VIEW must carry it: the block of height 1 is the
/// Byzantine primary's, committed in a later view.
#[test]
fn a_withholding_primarys_prepared_block_is_carried_into_the_new_view() {
    let seed = (1..100)
        .find(|&seed| primary_node(&Scenario::calm(seed, 4), 0) % 2 == 1)
        .expect("some seed puts the first primary at an odd index");
    let (scenario, outcome) = first_primary_is(seed, Behaviour::Withhold);
    let outcome = outcome.unwrap();
    let byzantine = validator_keys(seed, 4)[scenario.byzantine[0].0].public();
    let first = &outcome.blocks[0];
    assert!(first.round >= 1, "{outcome:?}");
    assert_eq!(first.proposer, Some(byzantine), "the prepared block was dropped: {outcome:?}");
}

/// The new primary goes down right as the first view change starts; the view after it takes over.
#[test]
fn the_new_primary_crashing_in_the_view_change_is_survived() {
    let mut scenario = Scenario::calm(5, 4);
    scenario.byzantine = vec![(primary_node(&scenario, 0), Behaviour::Silent)];
    let next = primary_node(&scenario, 1);
    scenario.crashes = vec![Crash { node: next, at_ms: 410, down_for_ms: 1500, app_loses: 0 }];
    let outcome = run_pbft(&scenario).unwrap();
    assert!(outcome.height >= scenario.target_height, "{outcome:?}");
    assert!(outcome.blocks[0].round >= 1, "{outcome:?}");
}

/// A validator restarts in the middle of the first view change: from its WAL it re-sends its
/// VIEW-CHANGE and signs nothing that conflicts.
#[test]
fn a_restart_in_the_middle_of_a_view_change_is_survived() {
    for seed in 1..=5 {
        let mut scenario = Scenario::calm(seed, 4);
        let first = primary_node(&scenario, 0);
        let next = primary_node(&scenario, 1);
        scenario.byzantine = vec![(first, Behaviour::Silent)];
        let node = (0..4).find(|n| *n != first && *n != next).unwrap();
        scenario.crashes = vec![Crash { node, at_ms: 405, down_for_ms: 60, app_loses: 1 }];
        let outcome = run_pbft(&scenario).unwrap_or_else(|e| panic!("{e}"));
        assert!(outcome.height >= scenario.target_height, "{outcome:?}");
    }
}

/// The checks can fail: engines that accept NEW-VIEWs unchecked follow a storm of forged ones
/// (wrong primary, too little power) into views nobody can finish, and the simulator reports it
/// with the seed; the same runs with the check pass.
#[test]
fn a_broken_new_view_check_is_caught_by_the_simulator() {
    let mut caught = 0;
    let mut outcomes = Vec::new();
    for seed in 1..=10 {
        let mut scenario = Scenario::calm(seed, 4);
        scenario.byzantine = vec![(3, Behaviour::Storm)];
        scenario.deadline_ms = 10_000;
        assert!(run_pbft(&scenario).is_ok(), "seed {seed} fails with the check on");
        let outcome = run_pbft_unchecked(&scenario);
        if let Err(SimFailure::Safety { seed: s, .. } | SimFailure::Liveness { seed: s, .. }) = &outcome
            && *s == seed
        {
            caught += 1;
        }
        outcomes.push(outcome.map(|o| o.height));
    }
    println!("unchecked NEW-VIEWs: {caught} of 10 runs end in a safety or liveness failure: {outcomes:?}");
    assert!(caught >= 5, "the broken NEW-VIEW check went unnoticed in {} of 10 runs", 10 - caught);
}
