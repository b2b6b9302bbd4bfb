//! Proposer selection weighted by voting power: CometBFT's proposer-priority algorithm.
//!
//! Every validator carries a priority. Each step adds each validator's power to its priority,
//! picks the highest (ties: the smaller key) as proposer, and takes the total power from it, so
//! over time each validator proposes in proportion to its power and never far from its share.
//! A validator that joins starts at `-1.125 * total` (it cannot propose at once by joining), and
//! priorities are rescaled into a window of twice the total power and centred on zero before
//! every step, exactly as CometBFT's `ValidatorSet` does.
//!
//! - Tendermint: the priorities of height `h` are those of `h - 1` moved one step (after the
//!   set changes that take effect at `h`); round `r` of the height is `r` further steps on a copy.
//!   The driver carries them from genesis ([`ProposerPriorities::genesis`],
//!   [`ProposerPriorities::next_height`]).
//! - PBFT: views span heights, so its primary must be a function of the set and the view alone:
//!   [`rotation`] runs the same steps from a fresh set.

use pyralog_crypto::PublicKey;

use crate::validators::ValidatorSet;

/// The validators' proposer priorities at one height, in the set's canonical order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposerPriorities {
    /// Key, power, priority.
    entries: Vec<(PublicKey, u64, i64)>,
    /// The proposer the last step chose.
    proposer: PublicKey,
}

/// The window priorities are kept within, in multiples of the total power.
const PRIORITY_WINDOW_FACTOR: i128 = 2;

impl ProposerPriorities {
    /// The priorities of height 1 for the genesis `set` (CometBFT's `NewValidatorSet`: every
    /// validator new, then one step).
    pub fn genesis(set: &ValidatorSet) -> ProposerPriorities {
        let empty = ProposerPriorities { entries: Vec::new(), proposer: set.validators()[0].key };
        let mut first = empty.with_set(set);
        first.step();
        first
    }

    /// The priorities of the next height, whose set is `next` (the same or changed).
    pub fn next_height(&self, next: &ValidatorSet) -> ProposerPriorities {
        let mut moved = self.with_set(next);
        moved.step();
        moved
    }

    /// The proposer of round `round` at this height.
    pub fn proposer(&self, round: u32) -> PublicKey {
        if round == 0 {
            return self.proposer;
        }
        let mut copy = self.clone();
        for _ in 0..round {
            copy.step();
        }
        copy.proposer
    }

    /// The priorities, in the set's canonical order (for tests and diagnostics).
    pub fn priorities(&self) -> impl Iterator<Item = (PublicKey, i64)> + '_ {
        self.entries.iter().map(|(key, _, priority)| (*key, *priority))
    }

    fn total(&self) -> i128 {
        self.entries.iter().map(|(_, power, _)| i128::from(*power)).sum()
    }

    /// CometBFT's `updateWithChangeSet`: validators that stay keep their priority, new ones
    /// start at `-(total + total / 8)` (the total with the new powers, before removals), then
    /// rescale and centre.
    fn with_set(&self, next: &ValidatorSet) -> ProposerPriorities {
        let removed: i128 = self
            .entries
            .iter()
            .filter(|(key, _, _)| next.power_of(key).is_none())
            .map(|(_, power, _)| i128::from(*power))
            .sum();
        let before_removals = i128::from(next.total_power()) + removed;
        let newcomer = clip(-(before_removals + (before_removals >> 3)));
        let kept: std::collections::BTreeMap<PublicKey, i64> =
            self.entries.iter().map(|(key, _, priority)| (*key, *priority)).collect();
        let entries = next
            .validators()
            .iter()
            .map(|v| (v.key, v.power, kept.get(&v.key).copied().unwrap_or(newcomer)))
            .collect();
        let mut moved = ProposerPriorities { entries, proposer: self.proposer };
        moved.rescale();
        moved.centre();
        moved
    }

    /// One step (CometBFT's `IncrementProposerPriority(1)`).
    fn step(&mut self) {
        self.rescale();
        self.centre();
        let total = self.total();
        for entry in &mut self.entries {
            entry.2 = clip(i128::from(entry.2) + i128::from(entry.1));
        }
        let chosen = (0..self.entries.len())
            .max_by(|&a, &b| {
                let (ka, _, pa) = self.entries[a];
                let (kb, _, pb) = self.entries[b];
                pa.cmp(&pb).then_with(|| kb.cmp(&ka))
            })
            .expect("a validator set is never empty");
        self.entries[chosen].2 = clip(i128::from(self.entries[chosen].2) - total);
        self.proposer = self.entries[chosen].0;
    }

    /// Scales priorities down until the spread between the highest and the lowest is within the
    /// window.
    fn rescale(&mut self) {
        let window = PRIORITY_WINDOW_FACTOR * self.total();
        let (Some(max), Some(min)) =
            (self.entries.iter().map(|e| e.2).max(), self.entries.iter().map(|e| e.2).min())
        else {
            return;
        };
        let spread = i128::from(max) - i128::from(min);
        if window > 0 && spread > window {
            let ratio = (spread + window - 1) / window;
            for entry in &mut self.entries {
                // Go's integer division truncates toward zero, as Rust's does.
                entry.2 = (i128::from(entry.2) / ratio) as i64;
            }
        }
    }

    /// Subtracts the average priority (rounded down, as Go's big.Int division does).
    fn centre(&mut self) {
        if self.entries.is_empty() {
            return;
        }
        let sum: i128 = self.entries.iter().map(|e| i128::from(e.2)).sum();
        let average = sum.div_euclid(self.entries.len() as i128);
        for entry in &mut self.entries {
            entry.2 = clip(i128::from(entry.2) - average);
        }
    }
}

fn clip(value: i128) -> i64 {
    value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The proposers of `len` consecutive steps from a fresh `set` (CometBFT's order for a set that
/// just started), followed by every validator the steps did not reach, in canonical order, so
/// that cycling through the list gives every validator a turn.
pub fn rotation(set: &ValidatorSet, len: usize) -> Vec<PublicKey> {
    let mut priorities = ProposerPriorities::genesis(set);
    let mut order = Vec::with_capacity(len + set.validators().len());
    for i in 0..len {
        if i > 0 {
            priorities.step();
        }
        order.push(priorities.proposer);
    }
    for v in set.validators() {
        if !order.contains(&v.key) {
            order.push(v.key);
        }
    }
    order
}
