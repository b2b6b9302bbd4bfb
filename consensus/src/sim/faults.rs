//! What can go wrong in a simulated run, chosen from the seed: the network's faults, crashes,
//! Byzantine validators, weighted validator sets and their changes; and how a Byzantine
//! validator's behaviour turns its messages into what it sends (through the engine's
//! [`Adversary`]).

use pyralog_crypto::Keypair;

use super::adversary::Adversary;
use super::rng::SimRng;

/// How a validator behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Follows the protocol.
    Honest,
    /// Runs but sends nothing.
    Silent,
    /// Shows odd-numbered peers a coherent alternative: a twin proposal and votes for it
    /// (validly signed), beside what it shows the others.
    Equivocate,
    /// Sends some peers its messages with broken signatures.
    BadSignatures,
    /// Shows its proposals to the even-numbered peers only and keeps its commit votes and its
    /// blocks (block sync) back (as a primary: a block some prepare and none can commit, which
    /// the next view must keep).
    Withhold,
    /// Sends its proposals late, around the engines' first timeout (`SLOW_MS` and up to 200 ms
    /// more).
    Slow,
    /// Never sends its commit votes.
    DropCommits,
    /// Floods the engine's forged view-change messages beside everything it sends.
    Storm,
}

impl Behaviour {
    /// Every Byzantine behaviour.
    pub const BYZANTINE: [Behaviour; 7] = [
        Behaviour::Silent,
        Behaviour::Equivocate,
        Behaviour::BadSignatures,
        Behaviour::Withhold,
        Behaviour::Slow,
        Behaviour::DropCommits,
        Behaviour::Storm,
    ];
}

/// How late a [`Behaviour::Slow`] validator's proposals leave, at least (the simulator's first
/// timeouts are 400 ms).
pub const SLOW_MS: u64 = 300;

/// A crash and restart of one validator (its block store and WAL survive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    /// Who.
    pub node: usize,
    /// When, virtual ms.
    pub at_ms: u64,
    /// For how long.
    pub down_for_ms: u64,
    /// How many of its last commits the app loses (its disk lagged the block store): the
    /// driver's handshake must replay them and reach the same app hash.
    pub app_loses: u64,
}

/// A validator-set change: the app returns these power updates when it finalizes `height`, so
/// they decide from `height + 2` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetChange {
    /// The height whose block makes the change.
    pub height: u64,
    /// `(validator index, new power)`; power 0 removes.
    pub powers: Vec<(usize, u64)>,
}

/// A network partition: `side` cannot talk to the rest between `from_ms` and `until_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Start, virtual ms.
    pub from_ms: u64,
    /// End (the network heals), virtual ms.
    pub until_ms: u64,
    /// The nodes on one side.
    pub side: Vec<usize>,
}

impl Partition {
    /// Whether `a` and `b` are cut off from each other at `now`.
    pub fn separates(&self, now: u64, a: usize, b: usize) -> bool {
        (self.from_ms..self.until_ms).contains(&now) && self.side.contains(&a) != self.side.contains(&b)
    }
}

/// One simulated run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// The seed everything random comes from.
    pub seed: u64,
    /// Validators.
    pub validators: usize,
    /// Each validator's voting power at genesis.
    pub powers: Vec<u64>,
    /// Validator-set changes made by the app.
    pub set_changes: Vec<SetChange>,
    /// The pause between a commit and the next height (the driver's block interval).
    pub block_interval_ms: u64,
    /// Every honest validator must commit up to here.
    pub target_height: u64,
    /// Message latency, uniform in this range (ms); messages reorder freely within it.
    pub delay_ms: (u64, u64),
    /// Messages lost, per mille.
    pub drop_permille: u32,
    /// Messages delivered twice, per mille.
    pub duplicate_permille: u32,
    /// A partition that heals.
    pub partition: Option<Partition>,
    /// Crashes and restarts.
    pub crashes: Vec<Crash>,
    /// Byzantine validators (less than a third of the power at every height).
    pub byzantine: Vec<(usize, Behaviour)>,
    /// Give up (liveness failure) after this much virtual time.
    pub deadline_ms: u64,
}

impl Scenario {
    /// The validator updates the scenario's set changes make, by the height whose block makes them.
    pub(super) fn updates(&self) -> Vec<(u64, Vec<crate::validators::Validator>)> {
        let keys = super::engines::validator_keys(self.seed, self.validators);
        self.set_changes
            .iter()
            .map(|c| {
                let powers = c
                    .powers
                    .iter()
                    .map(|&(n, power)| crate::validators::Validator { key: keys[n].public(), power });
                (c.height, powers.collect())
            })
            .collect()
    }

    /// A fault-free run with equal powers.
    pub fn calm(seed: u64, validators: usize) -> Self {
        Scenario {
            seed,
            validators,
            powers: vec![1; validators],
            set_changes: Vec::new(),
            block_interval_ms: 0,
            target_height: 6,
            delay_ms: (1, 10),
            drop_permille: 0,
            duplicate_permille: 0,
            partition: None,
            crashes: Vec::new(),
            byzantine: Vec::new(),
            deadline_ms: 120_000,
        }
    }

    /// Faults drawn from `seed`: latency, loss, duplication, maybe a partition, maybe a crash
    /// (with an app that lost commits), maybe weighted powers and a set change, and Byzantine
    /// validators holding less than a third of the power.
    pub fn from_seed(seed: u64, validators: usize) -> Self {
        let mut rng = SimRng::new(seed ^ 0x5ce9_a410);
        let f = (validators - 1) / 3;
        let mut nodes: Vec<usize> = (0..validators).collect();
        shuffle(&mut nodes, &mut rng);
        let powers: Vec<u64> = if rng.chance(300) {
            (0..validators).map(|_| 1 + rng.below(4)).collect()
        } else {
            vec![1; validators]
        };
        let total: u64 = powers.iter().sum();
        let mut byzantine_count = rng.below(f as u64 + 1) as usize;
        while 3 * nodes[..byzantine_count].iter().map(|&n| powers[n]).sum::<u64>() >= total {
            byzantine_count -= 1;
        }
        let byzantine = nodes[..byzantine_count]
            .iter()
            .map(|&node| {
                let behaviour = match rng.below(3) {
                    0 => Behaviour::Silent,
                    1 => Behaviour::Equivocate,
                    _ => Behaviour::BadSignatures,
                };
                (node, behaviour)
            })
            .collect();
        let crashes = if rng.chance(500) {
            let node = nodes[byzantine_count];
            let app_loses = rng.below(3);
            vec![Crash { node, at_ms: 200 + rng.below(3000), down_for_ms: 200 + rng.below(3000), app_loses }]
        } else {
            Vec::new()
        };
        // Only honest power grows, so the Byzantine stay below a third.
        let set_changes = if rng.chance(400) {
            let node = nodes[byzantine_count + rng.below((validators - byzantine_count) as u64) as usize];
            let height = 2 + rng.below(2);
            vec![SetChange { height, powers: vec![(node, powers[node] + 1 + rng.below(3))] }]
        } else {
            Vec::new()
        };
        let partition = rng.chance(400).then(|| {
            let from_ms = 300 + rng.below(2000);
            let size = 1 + rng.below(validators as u64 / 2) as usize;
            let mut side: Vec<usize> = (0..validators).collect();
            shuffle(&mut side, &mut rng);
            side.truncate(size);
            Partition { from_ms, until_ms: from_ms + 300 + rng.below(3000), side }
        });
        let max_delay = 2 + rng.below(60);
        let block_interval_ms = if rng.chance(500) { 0 } else { 1 + rng.below(30) };
        Scenario {
            seed,
            validators,
            powers,
            set_changes,
            block_interval_ms,
            target_height: 6,
            delay_ms: (1, max_delay),
            drop_permille: (rng.below(4) * 20) as u32,
            duplicate_permille: (rng.below(3) * 50) as u32,
            partition,
            crashes,
            byzantine,
            deadline_ms: 300_000,
        }
    }

    /// The powers deciding `height`: genesis, then each change from two heights after its block.
    pub fn powers_at(&self, height: u64) -> Vec<u64> {
        let mut powers = self.powers.clone();
        for change in self.set_changes.iter().filter(|c| c.height + 2 <= height) {
            for &(node, power) in &change.powers {
                powers[node] = power;
            }
        }
        powers
    }

    /// How validator `node` behaves.
    pub fn behaviour(&self, node: usize) -> Behaviour {
        self.byzantine.iter().find(|(n, _)| *n == node).map_or(Behaviour::Honest, |(_, b)| *b)
    }
}

fn shuffle(items: &mut [usize], rng: &mut SimRng) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// What a validator behaving as `behaviour` sends to peer `to` (an honest `victim` or a fellow
/// Byzantine validator) in place of `bytes` (nothing, one message, or more), each with how much
/// later than the network's latency it leaves.
pub(super) fn tamper(
    behaviour: Behaviour,
    adversary: &dyn Adversary,
    key: &Keypair,
    to: usize,
    victim: bool,
    bytes: &[u8],
    rng: &mut SimRng,
) -> Vec<(Vec<u8>, u64)> {
    let now = |bytes: Vec<u8>| (bytes, 0);
    match behaviour {
        Behaviour::Honest => vec![now(bytes.to_vec())],
        Behaviour::Silent => Vec::new(),
        Behaviour::BadSignatures if rng.chance(500) => vec![now(adversary.break_signature(bytes))],
        Behaviour::BadSignatures => vec![now(bytes.to_vec())],
        Behaviour::Equivocate if victim && to % 2 == 1 => {
            vec![now(adversary.conflicting(key, bytes).unwrap_or_else(|| bytes.to_vec()))]
        }
        // Half the time an even peer sees both proposals: it must report the equivocation.
        Behaviour::Equivocate if victim && adversary.is_proposal(bytes) && rng.chance(500) => {
            let twin = adversary.conflicting(key, bytes).unwrap_or_else(|| bytes.to_vec());
            vec![now(bytes.to_vec()), now(twin)]
        }
        Behaviour::Equivocate => vec![now(bytes.to_vec())],
        Behaviour::Withhold if victim && to % 2 == 1 && adversary.is_proposal(bytes) => Vec::new(),
        Behaviour::Withhold if victim => adversary.withheld(bytes).into_iter().map(now).collect(),
        Behaviour::Withhold => vec![now(bytes.to_vec())],
        Behaviour::Slow if adversary.is_proposal(bytes) => vec![(bytes.to_vec(), SLOW_MS + rng.below(200))],
        Behaviour::Slow => vec![now(bytes.to_vec())],
        Behaviour::DropCommits if adversary.is_commit(bytes) => Vec::new(),
        Behaviour::DropCommits => vec![now(bytes.to_vec())],
        Behaviour::Storm if victim => {
            let mut sent = vec![now(bytes.to_vec())];
            sent.extend(adversary.storm(key, bytes, rng).into_iter().map(now));
            sent
        }
        Behaviour::Storm => vec![now(bytes.to_vec())],
    }
}
