//! The engines the simulator runs, their timeouts in simulated runs, and PBFT's fault mix.

use std::time::Duration;

use pyralog_crypto::Keypair;

use super::faults::{Behaviour, Crash, Scenario};
use super::{Outcome, SIM_CHAIN, SimFailure, SimRng, run_engine};
use crate::pbft::{PbftAdversary, PbftEngine, PbftTimeouts, primary};
use crate::tendermint::{TendermintAdversary, TendermintEngine, Timeouts};
use crate::validators::{Validator, ValidatorSet};

/// The engine timeouts of simulated Tendermint runs.
pub fn tendermint_timeouts() -> Timeouts {
    Timeouts {
        propose: Duration::from_millis(400),
        prevote: Duration::from_millis(150),
        precommit: Duration::from_millis(150),
        rebroadcast: Duration::from_millis(800),
        increase: Duration::from_millis(100),
    }
}

/// The engine timeouts of simulated PBFT runs (the view timer's base matches Tendermint's
/// first propose timeout).
pub fn pbft_timeouts() -> PbftTimeouts {
    PbftTimeouts { view: Duration::from_millis(400), rebroadcast: Duration::from_millis(200) }
}

/// Runs `scenario` with Tendermint engines.
pub fn run(scenario: &Scenario) -> Result<Outcome, SimFailure> {
    let adversary = TendermintAdversary::new(SIM_CHAIN);
    run_engine(scenario, |key| TendermintEngine::new(SIM_CHAIN, key, tendermint_timeouts()), &adversary)
}

/// Runs `scenario` with PBFT engines.
pub fn run_pbft(scenario: &Scenario) -> Result<Outcome, SimFailure> {
    let adversary = PbftAdversary::new(SIM_CHAIN);
    run_engine(scenario, |key| PbftEngine::new(SIM_CHAIN, key, pbft_timeouts()), &adversary)
}

/// Runs `scenario` with PBFT engines whose NEW-VIEW check is switched off: the simulator must
/// report what that breaks.
pub fn run_pbft_unchecked(scenario: &Scenario) -> Result<Outcome, SimFailure> {
    let adversary = PbftAdversary::new(SIM_CHAIN);
    let engine = |key| PbftEngine::new(SIM_CHAIN, key, pbft_timeouts()).with_unchecked_new_views();
    run_engine(scenario, engine, &adversary)
}

/// The validators' keys, drawn first from the seed's generator.
pub(super) fn draw_keys(rng: &mut SimRng, validators: usize) -> Vec<Keypair> {
    (0..validators).map(|_| Keypair::from_secret(&rng.bytes32())).collect()
}

/// The keys of the validators of a run with `seed` (validator `i` is node `i`).
pub fn validator_keys(seed: u64, validators: usize) -> Vec<Keypair> {
    draw_keys(&mut SimRng::new(seed), validators)
}

/// Whether the Byzantine validators hold less than a third of the power at every height.
fn byzantine_below_a_third(scenario: &Scenario) -> bool {
    (0..=scenario.target_height + 2).all(|height| {
        let powers = scenario.powers_at(height);
        let byzantine: u64 = scenario.byzantine.iter().map(|(n, _)| powers[*n]).sum();
        3 * byzantine < powers.iter().sum::<u64>()
    })
}

impl Scenario {
    /// [`Scenario::from_seed`]'s network faults, crashes, weights and set changes, with PBFT's
    /// Byzantine behaviours (the primary of the first view is often one of them: its fault hits
    /// at once and the next primary must take over), and, now and then, the new primary crashing
    /// in the first view change or another validator restarting in its middle.
    pub fn pbft_from_seed(seed: u64, validators: usize) -> Scenario {
        let mut scenario = Scenario::from_seed(seed, validators);
        let mut rng = SimRng::new(seed ^ 0x9bf7_0001);
        for (_, behaviour) in &mut scenario.byzantine {
            *behaviour = Behaviour::BYZANTINE[rng.below(Behaviour::BYZANTINE.len() as u64) as usize];
        }
        let keys = validator_keys(seed, validators);
        let set = ValidatorSet::new(
            keys.iter()
                .zip(&scenario.powers)
                .map(|(key, power)| Validator { key: key.public(), power: *power }),
        )
        .expect("a scenario's validators are distinct with bounded power");
        let index_of = |view| keys.iter().position(|k| k.public() == primary(&set, view)).unwrap_or(0);
        let (first, second) = (index_of(0), index_of(1));
        // Make the first primary one of the Byzantine, if that keeps them below a third.
        if !scenario.byzantine.is_empty()
            && rng.chance(600)
            && scenario.byzantine.iter().all(|(n, _)| *n != first)
        {
            let mut swapped = scenario.clone();
            swapped.byzantine[0].0 = first;
            swapped.crashes.retain(|c| c.node != first);
            if byzantine_below_a_third(&swapped) {
                scenario = swapped;
            }
        }
        let first_is_byzantine = scenario.byzantine.iter().any(|(n, _)| *n == first);
        if first_is_byzantine && second != first && rng.chance(400) {
            // The first view change starts at about 400 ms (the view timer): the new primary, or
            // another honest validator, goes down in it.
            let honest: Vec<usize> =
                (0..validators).filter(|n| scenario.byzantine.iter().all(|(b, _)| b != n)).collect();
            let node = if rng.chance(500) && honest.contains(&second) {
                second
            } else {
                honest[rng.below(honest.len() as u64) as usize]
            };
            let crash = Crash {
                node,
                at_ms: 380 + rng.below(120),
                down_for_ms: 50 + rng.below(1500),
                app_loses: rng.below(2),
            };
            scenario.crashes = vec![crash];
        }
        scenario
    }
}
