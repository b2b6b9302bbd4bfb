//! What can go wrong in a simulated run, chosen from the seed, and what Byzantine validators do
//! to the messages they send.

use malachitebft_core_consensus::SignedConsensusMsg;
use malachitebft_core_types::{NilOrVal, Round, SignedMessage};
use pyralog_crypto::Keypair;
use pyralog_crypto::quorum::Signable;

use super::SIM_CHAIN;
use super::rng::SimRng;
use crate::tendermint::context::{Payload, PayloadId, Sig};
use crate::tendermint::wire;

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
}

/// A crash and restart of one validator (its block store and WAL survive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    /// Who.
    pub node: usize,
    /// When, virtual ms.
    pub at_ms: u64,
    /// For how long.
    pub down_for_ms: u64,
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
    /// Validators (equal power).
    pub validators: usize,
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
    /// Byzantine validators (at most f = (n - 1) / 3 of them).
    pub byzantine: Vec<(usize, Behaviour)>,
    /// Give up (liveness failure) after this much virtual time.
    pub deadline_ms: u64,
}

impl Scenario {
    /// A fault-free run.
    pub fn calm(seed: u64, validators: usize) -> Self {
        Scenario {
            seed,
            validators,
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

    /// Faults drawn from `seed`: latency, loss, duplication, maybe a partition, maybe a crash, and
    /// up to f Byzantine validators.
    pub fn from_seed(seed: u64, validators: usize) -> Self {
        let mut rng = SimRng::new(seed ^ 0x5ce9_a410);
        let f = (validators - 1) / 3;
        let mut nodes: Vec<usize> = (0..validators).collect();
        shuffle(&mut nodes, &mut rng);
        let byzantine_count = rng.below(f as u64 + 1) as usize;
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
            vec![Crash { node, at_ms: 200 + rng.below(3000), down_for_ms: 200 + rng.below(3000) }]
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
        Scenario {
            seed,
            validators,
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
/// Byzantine validator) in place of `bytes` (nothing, one message, or two).
pub(super) fn tamper(
    behaviour: Behaviour,
    key: &Keypair,
    to: usize,
    victim: bool,
    bytes: &[u8],
    rng: &mut SimRng,
) -> Vec<Vec<u8>> {
    match behaviour {
        Behaviour::Honest => vec![bytes.to_vec()],
        Behaviour::Silent => Vec::new(),
        // Every encoding ends with the signature: flipping its last byte breaks it.
        Behaviour::BadSignatures if rng.chance(500) => {
            let mut broken = bytes.to_vec();
            if let Some(last) = broken.last_mut() {
                *last ^= 0x01;
            }
            vec![broken]
        }
        Behaviour::BadSignatures => vec![bytes.to_vec()],
        Behaviour::Equivocate if victim && to % 2 == 1 => {
            vec![conflicting(key, bytes, rng).unwrap_or_else(|| bytes.to_vec())]
        }
        // Half the time an even peer sees both proposals: it must report the equivocation.
        Behaviour::Equivocate if victim && is_proposal(bytes) && rng.chance(500) => {
            let twin = conflicting(key, bytes, rng).unwrap_or_else(|| bytes.to_vec());
            vec![bytes.to_vec(), twin]
        }
        Behaviour::Equivocate => vec![bytes.to_vec()],
    }
}

fn is_proposal(bytes: &[u8]) -> bool {
    matches!(wire::decode(bytes), Ok(SignedConsensusMsg::Proposal(_)))
}

/// The payload an equivocating validator shows its odd-numbered peers at a height and round
/// (the same one every time, so its votes can back it).
fn twin_payload(height: u64, round: Round) -> Payload {
    Payload(vec![format!("conflicting h{height} r{}", round.as_i64()).into_bytes()])
}

/// A validly signed message that conflicts with `bytes`: the twin proposal at the same height and
/// round, or a vote for that twin (nil when the original already was), so the odd peers see a
/// coherent alternative history: proposal and votes that agree with each other.
fn conflicting(key: &Keypair, bytes: &[u8], _rng: &mut SimRng) -> Option<Vec<u8>> {
    let message = match wire::decode(bytes).ok()? {
        SignedConsensusMsg::Vote(signed) => {
            let mut vote = signed.message;
            let twin = NilOrVal::Val(PayloadId(twin_payload(vote.height.0, vote.round).digest()));
            vote.value = if vote.value == twin { NilOrVal::Nil } else { twin };
            let signature = Sig::from(key.sign(&vote.signed_message(SIM_CHAIN).signing_bytes()));
            SignedConsensusMsg::Vote(SignedMessage::new(vote, signature))
        }
        SignedConsensusMsg::Proposal(signed) => {
            let mut proposal = signed.message;
            proposal.value = twin_payload(proposal.height.0, proposal.round);
            let signing = proposal.header(SIM_CHAIN).signing_bytes();
            let signature = Sig::from(key.sign(&signing));
            SignedConsensusMsg::Proposal(SignedMessage::new(proposal, signature))
        }
    };
    Some(wire::encode(&message))
}
