//! Proof-of-Work in the simulator: each node's driver gets a [`SimMiner`] that only records the
//! engine's job; the simulator draws the time the node's hashrate takes to solve it from the
//! seed (a per-millisecond lottery, in integers, so runs replay on any platform), then searches
//! the nonce for real at the run's easy targets and hands the seal to the driver.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::core::MiningJob;
use crate::driver::Miner;
use crate::pow::{PowRules, U256, target_from_bits, work};

use super::{Event, Sim, SimFailure, SimulatedApp};
use crate::core::ConsensusCore;
use pyralog_crypto::Keypair;

/// A simulated Proof-of-Work run's mining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowSetup {
    /// The chain's rules (easy targets: a few hundred hashes a block).
    pub rules: PowRules,
    /// Each node's hashrate, hashes per virtual second (0: it does not mine).
    pub hashrates: Vec<u64>,
}

impl PowSetup {
    /// Rules whose first target takes 256 hashes, one block a second, a 60 s half-life, `k`
    /// confirmations, from the simulator's epoch; and `nodes` miners of 256 hashes a second
    /// together.
    pub fn easy(nodes: usize, confirmations: u64) -> PowSetup {
        let rules = PowRules {
            genesis_time_ms: super::net::SIM_EPOCH_MS,
            // 2^248 - 1: 256 hashes per seal on average.
            initial_bits: crate::pow::bits_from_target(U256::MAX >> 8),
            limit_bits: crate::pow::bits_from_target(U256::MAX >> 1),
            ideal_block_time_s: 1,
            half_life_s: 60,
            confirmations,
        };
        let share = 256 / nodes.max(1) as u64;
        PowSetup { rules, hashrates: vec![share; nodes] }
    }
}

/// A node's miner in the simulator: the job, and a generation bumped on every change.
#[derive(Debug, Clone, Default)]
pub(super) struct SimMiner(Arc<Mutex<(u64, Option<MiningJob>)>>);

impl SimMiner {
    fn slot(&self) -> MutexGuard<'_, (u64, Option<MiningJob>)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn current(&self) -> (u64, Option<MiningJob>) {
        self.slot().clone()
    }
}

impl Miner for SimMiner {
    fn mine(&mut self, job: MiningJob) {
        let mut slot = self.slot();
        *slot = (slot.0 + 1, Some(job));
    }
}

/// Most virtual milliseconds one solve may take (a stalled schedule, not a hang).
const MAX_SOLVE_MS: u64 = 600_000;

impl<E, F, A> Sim<'_, E, F, A>
where
    E: ConsensusCore,
    F: FnMut(Keypair) -> E,
    A: SimulatedApp,
{
    /// After a step: if `node`'s engine gave its miner a new job, draws when the node's hashrate
    /// solves it and queues that.
    pub(super) fn schedule_mining(&mut self, node: usize) {
        let Some(setup) = self.mining.as_ref() else { return };
        let rate = setup.hashrates.get(node).copied().unwrap_or(0);
        let (generation, job) = self.nodes[node].miner.current();
        if generation == self.nodes[node].mining_seen {
            return;
        }
        self.nodes[node].mining_seen = generation;
        let Some(job) = job else { return };
        let Ok(target) = target_from_bits(job.seal.bits) else { return };
        if rate == 0 {
            return;
        }
        // Each millisecond the node tries rate/1000 hashes, each a success with probability
        // 1/work: a lottery of `rate` in `work * 1000` per millisecond.
        let odds = u128::from(work(target).low_u64()).saturating_mul(1000).min(u128::from(u64::MAX)) as u64;
        let mut solve = 1;
        while solve < MAX_SOLVE_MS && self.rng.below(odds.max(1)) >= rate {
            solve += 1;
        }
        let life = self.nodes[node].life;
        self.schedule(self.now + solve, Event::Mined { node, life, generation });
    }

    /// The drawn time came: if the job is still current, find its nonce for real and hand the
    /// seal to the driver.
    pub(super) fn mine(&mut self, node: usize, life: u64, generation: u64) -> Result<(), SimFailure> {
        if self.nodes[node].life != life {
            return Ok(());
        }
        let (current, Some(job)) = self.nodes[node].miner.current() else { return Ok(()) };
        if current != generation {
            return Ok(());
        }
        let Ok(target) = target_from_bits(job.seal.bits) else { return Ok(()) };
        let mut seal = job.seal;
        seal.time_ms = (super::net::SIM_EPOCH_MS + self.now).max(job.min_time_ms);
        seal.nonce = 0;
        while U256::from_big_endian(&seal.hash().0) > target {
            seal.nonce += 1;
        }
        self.mined.push((seal.height, seal.block));
        self.step(node, |driver| driver.handle_mined(seal))
    }
}
