//! A deterministic simulator: N validators running the real engine in one thread, on virtual
//! time, over a network that delays, reorders, drops, duplicates and partitions messages, with
//! crashes and restarts (own votes kept in a WAL) and Byzantine validators.
//!
//! Everything random comes from one seed, so a failing run is replayed exactly by its seed
//! ([`Scenario::from_seed`]). After every commit the simulator checks safety (no two validators
//! commit different blocks at a height) and that the certificate verifies; at the end it checks
//! liveness (every honest validator reached the target height once the network healed).
//!
//! Nodes that fall behind (crashed, partitioned) catch up with block sync as the driver does it:
//! ask a peer for the blocks it has, verify each certificate, apply.

mod faults;
mod rng;

pub use faults::{Behaviour, Crash, Partition, Scenario};
pub use rng::SimRng;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use pyralog_crypto::{Digest, Keypair};

use crate::core::{ConsensusCore, Effect, Input, TimerId};
use crate::tendermint::{TendermintEngine, Timeouts};
use crate::validators::{Validator, ValidatorSet};
use crate::vote::FinalityProof;

/// The chain id of simulated runs.
pub const SIM_CHAIN: &str = "pyralog-sim";

/// How a run went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// The height every honest validator reached.
    pub height: u64,
    /// Virtual milliseconds the run took.
    pub virtual_ms: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Blocks applied through sync rather than the validator's own decision.
    pub synced_blocks: u64,
    /// Equivocations reported (each verified and naming a Byzantine validator).
    pub evidence: u64,
    /// Of those, conflicting proposals.
    pub proposal_evidence: u64,
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimFailure {
    /// Two validators committed different blocks at one height.
    #[error("seed {seed}: safety violated at height {height}: {first} vs {second}")]
    Safety {
        /// The seed.
        seed: u64,
        /// Where.
        height: u64,
        /// One block.
        first: Digest,
        /// The other.
        second: Digest,
    },
    /// A commit came with a certificate that does not verify.
    #[error("seed {seed}: node {node} committed height {height} with a bad certificate: {reason}")]
    BadCertificate {
        /// The seed.
        seed: u64,
        /// Who.
        node: usize,
        /// Where.
        height: u64,
        /// Why.
        reason: String,
    },
    /// Evidence that does not verify, or that accuses an honest validator.
    #[error("seed {seed}: node {node} reported bad evidence against {accused}")]
    FalseEvidence {
        /// The seed.
        seed: u64,
        /// The reporter.
        node: usize,
        /// The accused validator's index.
        accused: usize,
    },
    /// Honest validators did not reach the target height in time.
    #[error(
        "seed {seed}: no progress: honest heights {heights:?} (engines at {engines:?}) at {virtual_ms} ms, target {target}"
    )]
    Liveness {
        /// The seed.
        seed: u64,
        /// Each honest validator's committed height.
        heights: Vec<u64>,
        /// Each validator's engine (height, round), if running.
        engines: Vec<Option<(u64, i64)>>,
        /// When the run gave up.
        virtual_ms: u64,
        /// The target.
        target: u64,
    },
}

type Block = (Digest, Vec<Vec<u8>>, FinalityProof);

struct Node {
    key: Keypair,
    behaviour: Behaviour,
    engine: Option<TendermintEngine>,
    /// Bumped on every restart, so timers of a previous life never fire.
    life: u64,
    timers: HashMap<TimerId, u64>,
    /// The block store (survives crashes).
    blocks: BTreeMap<u64, Block>,
    /// Own votes, persisted before they were sent (survives crashes).
    wal: Vec<(u64, Vec<u8>)>,
}

impl Node {
    fn committed(&self) -> u64 {
        self.blocks.keys().next_back().copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Deliver { to: usize, from: usize, bytes: Vec<u8> },
    Local { node: usize, life: u64, input: LocalInput },
    Timer { node: usize, life: u64, id: TimerId, generation: u64 },
    Crash { node: usize, down_for: u64 },
    Restart { node: usize },
    SyncTick { node: usize },
}

/// Inputs a node gives itself (the app's answers, next heights), with an order for the queue.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum LocalInput {
    PayloadBuilt { height: u64, txs: Vec<Vec<u8>> },
    PayloadChecked { block: [u8; 32], valid: bool },
    StartHeight { height: u64 },
}

/// A running simulation.
struct Sim<'a> {
    scenario: &'a Scenario,
    rng: SimRng,
    nodes: Vec<Node>,
    validators: ValidatorSet,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
    /// The first block committed at each height by an honest node.
    decided: BTreeMap<u64, Digest>,
    delivered: u64,
    synced_blocks: u64,
    evidence: u64,
    proposal_evidence: u64,
}

/// Runs `scenario` to completion.
pub fn run(scenario: &Scenario) -> Result<Outcome, SimFailure> {
    let mut rng = SimRng::new(scenario.seed);
    let keys: Vec<Keypair> = (0..scenario.validators).map(|_| Keypair::from_secret(&rng.bytes32())).collect();
    let validators = ValidatorSet::new(keys.iter().map(|k| Validator { key: k.public(), power: 1 }))
        .expect("distinct keys with power 1");
    let nodes = keys
        .into_iter()
        .enumerate()
        .map(|(i, key)| Node {
            key,
            behaviour: scenario.behaviour(i),
            engine: None,
            life: 0,
            timers: HashMap::new(),
            blocks: BTreeMap::new(),
            wal: Vec::new(),
        })
        .collect();
    let mut sim = Sim {
        scenario,
        rng,
        nodes,
        validators,
        now: 0,
        seq: 0,
        queue: BinaryHeap::new(),
        decided: BTreeMap::new(),
        delivered: 0,
        synced_blocks: 0,
        evidence: 0,
        proposal_evidence: 0,
    };
    sim.start()?;
    sim.run()
}

fn timeouts() -> Timeouts {
    Timeouts {
        propose: std::time::Duration::from_millis(400),
        prevote: std::time::Duration::from_millis(150),
        precommit: std::time::Duration::from_millis(150),
        rebroadcast: std::time::Duration::from_millis(800),
        increase: std::time::Duration::from_millis(100),
    }
}

impl Sim<'_> {
    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, event)));
    }

    fn start(&mut self) -> Result<(), SimFailure> {
        for node in 0..self.nodes.len() {
            self.boot(node)?;
            let at = self.rng.below(300);
            self.schedule(at, Event::SyncTick { node });
        }
        for crash in &self.scenario.crashes {
            self.schedule(crash.at_ms, Event::Crash { node: crash.node, down_for: crash.down_for_ms });
        }
        Ok(())
    }

    /// Starts (or restarts) a node's engine at the height after its last block, with the votes
    /// its WAL holds.
    fn boot(&mut self, node: usize) -> Result<(), SimFailure> {
        let n = &mut self.nodes[node];
        n.life += 1;
        n.timers.clear();
        let key = n.key.clone();
        let mut engine = TendermintEngine::new(SIM_CHAIN, key, timeouts());
        let next = n.committed() + 1;
        engine.restore_wal(n.wal.iter().filter(|(h, _)| *h >= next).map(|(_, e)| e.clone()).collect());
        n.engine = Some(engine);
        let height = n.committed() + 1;
        self.input(node, Input::StartHeight { height, validators: self.validators.clone() })
    }

    fn input(&mut self, node: usize, input: Input) -> Result<(), SimFailure> {
        let Some(engine) = self.nodes[node].engine.as_mut() else { return Ok(()) };
        let effects = engine.handle(self.now, input);
        self.perform(node, effects)
    }

    fn latency(&mut self) -> u64 {
        let (low, high) = self.scenario.delay_ms;
        low + self.rng.below(high - low + 1)
    }

    fn send(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        if self.rng.chance(self.scenario.drop_permille) {
            return;
        }
        let at = self.now + self.latency();
        if self.rng.chance(self.scenario.duplicate_permille) {
            let again = self.now + self.latency();
            self.schedule(again, Event::Deliver { to, from, bytes: bytes.clone() });
        }
        self.schedule(at, Event::Deliver { to, from, bytes });
    }

    fn broadcast(&mut self, from: usize, bytes: Vec<u8>) {
        for to in 0..self.nodes.len() {
            if to == from {
                continue;
            }
            // Byzantine validators collude: they show each other the real history.
            let victim = self.nodes[to].behaviour == Behaviour::Honest;
            let sent = faults::tamper(
                self.nodes[from].behaviour,
                &self.nodes[from].key,
                to,
                victim,
                &bytes,
                &mut self.rng,
            );
            for bytes in sent {
                self.send(from, to, bytes);
            }
        }
    }

    fn perform(&mut self, node: usize, effects: Vec<Effect>) -> Result<(), SimFailure> {
        let life = self.nodes[node].life;
        for effect in effects {
            match effect {
                Effect::Broadcast(bytes) => {
                    if self.nodes[node].behaviour != Behaviour::Silent {
                        self.broadcast(node, bytes);
                    }
                }
                Effect::SendTo { to, bytes } => {
                    if let Some(to) = self.nodes.iter().position(|n| n.key.public() == to) {
                        self.send(node, to, bytes);
                    }
                }
                Effect::SetTimer { id, after } => {
                    let generation = self.seq + 1;
                    self.nodes[node].timers.insert(id, generation);
                    self.schedule(
                        self.now + after.as_millis() as u64,
                        Event::Timer { node, life, id, generation },
                    );
                }
                Effect::CancelTimer(id) => {
                    self.nodes[node].timers.remove(&id);
                }
                Effect::BuildPayload { height } => {
                    let txs = vec![format!("h{height} by {node} at {}", self.now).into_bytes()];
                    let at = self.now + 1 + self.rng.below(5);
                    self.schedule(
                        at,
                        Event::Local { node, life, input: LocalInput::PayloadBuilt { height, txs } },
                    );
                }
                Effect::CheckPayload { block, txs, .. } => {
                    let valid = !txs.is_empty();
                    let at = self.now + 1 + self.rng.below(5);
                    let input = LocalInput::PayloadChecked { block: block.0, valid };
                    self.schedule(at, Event::Local { node, life, input });
                }
                Effect::CommitBlock { height, block, txs, proof } => {
                    self.commit(node, height, (block, txs, proof))?;
                    let at = self.now + 1;
                    self.schedule(
                        at,
                        Event::Local { node, life, input: LocalInput::StartHeight { height: height + 1 } },
                    );
                }
                Effect::PersistWal { height, entry } => self.nodes[node].wal.push((height, entry)),
                Effect::Evidence(evidence) => {
                    let accused = self.nodes.iter().position(|n| n.key.public() == evidence.validator());
                    let accused = accused.unwrap_or(usize::MAX);
                    let byzantine =
                        accused != usize::MAX && self.nodes[accused].behaviour != Behaviour::Honest;
                    if !evidence.verify() || !byzantine {
                        return Err(SimFailure::FalseEvidence { seed: self.scenario.seed, node, accused });
                    }
                    self.evidence += 1;
                    if matches!(*evidence, crate::vote::Evidence::DuplicateProposal(_)) {
                        self.proposal_evidence += 1;
                    }
                }
                Effect::PeerMisbehaved { peer, .. } => {
                    // Honest nodes never send undecodable bytes: blaming one is a bug.
                    let accused = self.nodes.iter().position(|n| n.key.public() == peer);
                    let accused = accused.unwrap_or(usize::MAX);
                    if accused == usize::MAX || self.nodes[accused].behaviour == Behaviour::Honest {
                        return Err(SimFailure::FalseEvidence { seed: self.scenario.seed, node, accused });
                    }
                }
            }
        }
        Ok(())
    }

    /// Records a block in `node`'s store after checking its certificate and agreement.
    fn commit(&mut self, node: usize, height: u64, block: Block) -> Result<(), SimFailure> {
        let seed = self.scenario.seed;
        if crate::vote::payload_id(&block.1) != block.0 {
            let reason = "the transactions do not hash to the certified block id".into();
            return Err(SimFailure::BadCertificate { seed, node, height, reason });
        }
        if let Err(err) = block.2.verify(SIM_CHAIN, height, &block.0, &self.validators) {
            return Err(SimFailure::BadCertificate { seed, node, height, reason: err.to_string() });
        }
        let honest = self.nodes[node].behaviour == Behaviour::Honest;
        match self.decided.get(&height) {
            Some(first) if *first != block.0 => {
                return Err(SimFailure::Safety { seed, height, first: *first, second: block.0 });
            }
            None if honest => {
                self.decided.insert(height, block.0);
            }
            _ => {}
        }
        if let Some(existing) = self.nodes[node].blocks.get(&height) {
            if existing.0 != block.0 {
                return Err(SimFailure::Safety { seed, height, first: existing.0, second: block.0 });
            }
            return Ok(());
        }
        self.nodes[node].blocks.insert(height, block);
        Ok(())
    }

    /// Block sync: fetch what a random peer has beyond our last block, verify, apply, and move
    /// the engine past it.
    fn sync(&mut self, node: usize) -> Result<(), SimFailure> {
        if self.nodes[node].engine.is_none() || self.nodes.len() < 2 {
            return Ok(());
        }
        let peer = (node + 1 + self.rng.below(self.nodes.len() as u64 - 1) as usize) % self.nodes.len();
        if self.nodes[peer].engine.is_none()
            || self.partitioned(node, peer)
            || self.rng.chance(self.scenario.drop_permille)
        {
            return Ok(());
        }
        let ours = self.nodes[node].committed();
        let mut theirs: Vec<(u64, Block)> =
            self.nodes[peer].blocks.range(ours + 1..).map(|(h, b)| (*h, b.clone())).collect();
        // A Byzantine peer serves real certificates with forged transactions half the time.
        if self.nodes[peer].behaviour != Behaviour::Honest && self.rng.chance(500) {
            for (_, block) in &mut theirs {
                block.1.push(b"forged".to_vec());
            }
        }
        if theirs.is_empty() {
            return Ok(());
        }
        let mut last = ours;
        for (height, block) in theirs {
            let valid = crate::vote::payload_id(&block.1) == block.0
                && block.2.verify(SIM_CHAIN, height, &block.0, &self.validators).is_ok();
            if height != last + 1 || !valid {
                break;
            }
            self.commit(node, height, block)?;
            self.synced_blocks += 1;
            last = height;
        }
        if last > ours {
            self.input(node, Input::StartHeight { height: last + 1, validators: self.validators.clone() })?;
        }
        Ok(())
    }

    fn partitioned(&self, a: usize, b: usize) -> bool {
        self.scenario.partition.as_ref().is_some_and(|p| p.separates(self.now, a, b))
    }

    fn honest_heights(&self) -> Vec<u64> {
        self.nodes.iter().filter(|n| n.behaviour == Behaviour::Honest).map(Node::committed).collect()
    }

    fn run(mut self) -> Result<Outcome, SimFailure> {
        let target = self.scenario.target_height;
        while let Some(Reverse((at, _, event))) = self.queue.pop() {
            if self.honest_heights().iter().all(|h| *h >= target) {
                break;
            }
            if at > self.scenario.deadline_ms {
                break;
            }
            self.now = at;
            match event {
                Event::Deliver { to, from, bytes } => {
                    if self.nodes[to].engine.is_none() || self.partitioned(from, to) {
                        continue;
                    }
                    self.delivered += 1;
                    let from = self.nodes[from].key.public();
                    self.input(to, Input::Message { from, bytes })?;
                }
                Event::Local { node, life, input } => {
                    if self.nodes[node].life != life {
                        continue;
                    }
                    let input = match input {
                        LocalInput::PayloadBuilt { height, txs } => Input::PayloadBuilt { height, txs },
                        LocalInput::PayloadChecked { block, valid } => {
                            Input::PayloadChecked { block: Digest(block), valid }
                        }
                        LocalInput::StartHeight { height } => {
                            if self.nodes[node].committed() + 1 != height {
                                continue; // sync moved the node on already
                            }
                            Input::StartHeight { height, validators: self.validators.clone() }
                        }
                    };
                    self.input(node, input)?;
                }
                Event::Timer { node, life, id, generation } => {
                    let n = &mut self.nodes[node];
                    if n.life != life || n.timers.get(&id) != Some(&generation) {
                        continue;
                    }
                    n.timers.remove(&id);
                    self.input(node, Input::TimeoutFired(id))?;
                }
                Event::Crash { node, down_for } => {
                    self.nodes[node].engine = None;
                    self.nodes[node].life += 1;
                    self.schedule(self.now + down_for, Event::Restart { node });
                }
                Event::Restart { node } => self.boot(node)?,
                Event::SyncTick { node } => {
                    self.sync(node)?;
                    let at = self.now + 250 + self.rng.below(100);
                    self.schedule(at, Event::SyncTick { node });
                }
            }
        }
        let heights = self.honest_heights();
        if heights.iter().any(|h| *h < target) {
            let engines =
                self.nodes.iter().map(|n| n.engine.as_ref().and_then(|e| e.height_and_round())).collect();
            return Err(SimFailure::Liveness {
                seed: self.scenario.seed,
                heights,
                engines,
                virtual_ms: self.now,
                target,
            });
        }
        Ok(Outcome {
            seed: self.scenario.seed,
            height: heights.into_iter().min().unwrap_or(0),
            virtual_ms: self.now,
            delivered: self.delivered,
            synced_blocks: self.synced_blocks,
            evidence: self.evidence,
            proposal_evidence: self.proposal_evidence,
        })
    }
}
