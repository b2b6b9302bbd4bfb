//! A deterministic simulator that runs N real [`Driver`]s, each with its engine, an app and an
//! in-memory store, on virtual time, over a network that delays, reorders, drops, duplicates and
//! partitions messages, with crashes and restarts (the store and the app's committed state
//! survive; an app may lose its last commits) and Byzantine validators whose behaviours the
//! engine's [`Adversary`] supplies. Validator sets may be weighted and change during a run (the
//! app returns updates; they decide two heights later).
//!
//! The simulator is only the runner: it owns time, the network and crashes, and calls the
//! driver's steps exactly as the node's tokio runner does. Everything random comes from one
//! seed, so a failing run is replayed exactly by its seed ([`Scenario::from_seed`]).
//!
//! Checks, each against an oracle of its own rather than the driver's state:
//! - safety: no two honest validators store different blocks at a height;
//! - every stored block's finality proof verifies against the validator set the scenario says
//!   decides that height, and its transactions hash to the certified id;
//! - the apps of every validator committed the same app hash at every height (handshake replay
//!   after an app lost commits included);
//! - evidence, reported or carried in a block, is valid and accuses a Byzantine validator; a
//!   block's last commit finalizes its parent under the parent's set; no honest peer is
//!   reported;
//! - liveness: every honest validator reaches the target height once the network healed.

mod adversary;
mod app;
mod engines;
mod faults;
mod mining;
mod net;
mod oracle;
mod outcome;
mod rng;
mod selfish;

pub use adversary::Adversary;
pub use engines::{pbft_timeouts, run, run_pbft, run_pbft_unchecked, tendermint_timeouts, validator_keys};
pub use faults::{Behaviour, Crash, Partition, SLOW_MS, Scenario, SetChange};
pub use mining::PowSetup;
pub use outcome::{DecidedBlockInfo, Outcome, SimFailure};
pub use rng::SimRng;
pub use selfish::{PowAdversary, SelfishMiner};

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::Duration;

use pyralog_crypto::{Digest, Keypair};
use tokio::sync::{mpsc, oneshot};

use crate::core::ConsensusCore;
use crate::driver::{ChainStore, Driver, DriverConfig, DriverError, FetchedBlocks, MemoryStore, NetEvent};
use crate::finality::Engine;
use crate::pow::PowRules;
use crate::validators::{Validator, ValidatorSet};
use crate::vote::Evidence;
use app::SimApp;
pub use app::SimulatedApp;
use net::{Outgoing, SimClock, SimNet};

/// The chain id of simulated runs.
pub const SIM_CHAIN: &str = "pyralog-sim";

/// Runs `scenario` with the engines `engine` makes for each validator key, whose Byzantine
/// behaviours `adversary` supplies.
pub fn run_engine<E, F>(
    scenario: &Scenario,
    engine: F,
    adversary: &dyn Adversary,
) -> Result<Outcome, SimFailure>
where
    E: ConsensusCore,
    F: FnMut(Keypair) -> E,
{
    let updates = scenario.updates();
    let mut sim = Sim::new(scenario, engine, adversary, |_, _| SimApp::new(updates.clone()), Vec::new());
    sim.start()?;
    sim.run()
}

/// Runs `scenario` with the Proof-of-Work engines `engine` makes (under `mining.rules`), each
/// node mining at its hashrate; Byzantine behaviours come from [`PowAdversary`].
pub fn run_pow<E, F>(scenario: &Scenario, mining: &PowSetup, engine: F) -> Result<Outcome, SimFailure>
where
    E: ConsensusCore,
    F: FnMut(Keypair) -> E,
{
    let updates = scenario.updates();
    let adversary = PowAdversary;
    let mut sim = Sim::new(scenario, engine, &adversary, |_, _| SimApp::new(updates.clone()), Vec::new());
    sim.mining = Some(mining.clone());
    sim.rules = Some(mining.rules);
    sim.start()?;
    sim.run()
}

/// Runs `scenario` with the engines `engine` makes, over the apps `app` makes for each
/// validator (index and key), initialized with `app_state` (the genesis app state). The checks
/// take each height's validator set from the app ([`SimulatedApp::validators_at`]) when it keeps
/// one, else from the scenario.
pub fn run_with_app<E, F, A, M>(
    scenario: &Scenario,
    engine: F,
    adversary: &dyn Adversary,
    app: M,
    app_state: Vec<u8>,
) -> Result<Outcome, SimFailure>
where
    E: ConsensusCore,
    F: FnMut(Keypair) -> E,
    A: SimulatedApp,
    M: FnMut(usize, &Keypair) -> A,
{
    let mut sim = Sim::new(scenario, engine, adversary, app, app_state);
    sim.start()?;
    sim.run()
}

type SimDriver<E, A> = Driver<E, A, SimNet, MemoryStore>;

/// One validator: what survives its crashes (key, store, app disk) and its running driver.
struct Node<E, A> {
    key: Keypair,
    behaviour: Behaviour,
    store: MemoryStore,
    app: A,
    net: SimNet,
    driver: Option<SimDriver<E, A>>,
    /// Bumped on every restart, so events of a previous life are dropped.
    life: u64,
    /// The wake-up already queued for this life, so each deadline is queued once.
    wake_queued: Option<u64>,
    /// How many of its driver's evidence pieces were checked.
    evidence_checked: usize,
    /// The highest height of its store checked against the oracle.
    checked: u64,
    /// Its miner (work engines), and the last job generation the simulator scheduled.
    miner: mining::SimMiner,
    mining_seen: u64,
}

#[derive(Debug)]
enum Event {
    Deliver { to: usize, from: usize, bytes: Vec<u8> },
    Transaction { to: usize, tx: Vec<u8> },
    Evidence { to: usize, from: usize, evidence: Box<Evidence> },
    Wake { node: usize, life: u64 },
    Fetched { node: usize, life: u64, fetched: Option<FetchedBlocks> },
    Crash { node: usize, down_for: u64, app_loses: u64 },
    Restart { node: usize, app_loses: u64 },
    SyncTick { node: usize },
    Mined { node: usize, life: u64, generation: u64 },
}

struct Sim<'a, E, F, A> {
    scenario: &'a Scenario,
    adversary: &'a dyn Adversary,
    make_engine: F,
    rng: SimRng,
    clock: SimClock,
    nodes: Vec<Node<E, A>>,
    /// The genesis app state every app is initialized with.
    app_state: Vec<u8>,
    /// The engine every node runs (known once the first is made).
    engine: Option<Engine>,
    /// The validator set deciding each height, from the scenario (the checks' oracle).
    sets: Vec<ValidatorSet>,
    genesis: ValidatorSet,
    now: u64,
    seq: u64,
    /// Events by (time, sequence): ties keep the order they were queued in.
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: BTreeMap<u64, Event>,
    /// The first block stored at each height by an honest node.
    decided: BTreeMap<u64, Digest>,
    /// The first app hash committed at each height.
    app_hashes: BTreeMap<u64, Digest>,
    delivered: u64,
    synced_blocks: u64,
    evidence: u64,
    proposal_evidence: u64,
    /// `(height, validator)` of the misbehaviour committed blocks carry.
    punished: std::collections::BTreeSet<(u64, pyralog_crypto::PublicKey)>,
    replayed_blocks: u64,
    transactions: u64,
    view_changes: u64,
    /// What the first honest store of each height holds: the certificate's round and the
    /// block's proposer.
    blocks: BTreeMap<u64, DecidedBlockInfo>,
    /// Proof-of-Work runs: the nodes' hashrates and the chain's rules.
    mining: Option<PowSetup>,
    rules: Option<PowRules>,
    /// The blocks sealed, by height.
    mined: Vec<(u64, Digest)>,
}

impl<'a, E, F, A> Sim<'a, E, F, A>
where
    E: ConsensusCore,
    F: FnMut(Keypair) -> E,
    A: SimulatedApp,
{
    fn new(
        scenario: &'a Scenario,
        make_engine: F,
        adversary: &'a dyn Adversary,
        mut make_app: impl FnMut(usize, &Keypair) -> A,
        app_state: Vec<u8>,
    ) -> Self {
        let mut rng = SimRng::new(scenario.seed);
        let keys = engines::draw_keys(&mut rng, scenario.validators);
        let set_of = |powers: Vec<u64>| {
            ValidatorSet::new(
                keys.iter()
                    .zip(powers)
                    .filter(|(_, p)| *p > 0)
                    .map(|(k, power)| Validator { key: k.public(), power }),
            )
            .expect("a scenario's validators are distinct with bounded power")
        };
        let genesis = set_of(scenario.powers.clone());
        let last = scenario.target_height + 64;
        let sets = (0..=last).map(|h| set_of(scenario.powers_at(h))).collect();
        let nodes = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| Node {
                app: make_app(i, &key),
                key,
                behaviour: scenario.behaviour(i),
                store: MemoryStore::new(),
                net: SimNet::default(),
                driver: None,
                life: 0,
                wake_queued: None,
                evidence_checked: 0,
                checked: 0,
                miner: mining::SimMiner::default(),
                mining_seen: 0,
            })
            .collect();
        Sim {
            scenario,
            adversary,
            make_engine,
            rng,
            clock: SimClock::default(),
            engine: None,
            nodes,
            app_state,
            sets,
            genesis,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            decided: BTreeMap::new(),
            app_hashes: BTreeMap::new(),
            delivered: 0,
            synced_blocks: 0,
            evidence: 0,
            proposal_evidence: 0,
            punished: Default::default(),
            replayed_blocks: 0,
            transactions: 0,
            view_changes: 0,
            blocks: BTreeMap::new(),
            mining: None,
            rules: None,
            mined: Vec::new(),
        }
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.events.insert(self.seq, event);
    }

    fn start(&mut self) -> Result<(), SimFailure> {
        for node in 0..self.nodes.len() {
            self.boot(node, 0)?;
            let at = self.rng.below(300);
            self.schedule(at, Event::SyncTick { node });
        }
        for crash in &self.scenario.crashes {
            let event =
                Event::Crash { node: crash.node, down_for: crash.down_for_ms, app_loses: crash.app_loses };
            self.schedule(crash.at_ms, event);
        }
        Ok(())
    }

    /// Starts (or restarts) a node's driver over its surviving store and app.
    fn boot(&mut self, node: usize, app_loses: u64) -> Result<(), SimFailure> {
        let config = DriverConfig {
            chain_id: SIM_CHAIN.into(),
            validators: self.genesis.clone(),
            sync_interval: Duration::from_millis(300),
            max_payload_bytes: 1 << 20,
            block_interval: Duration::from_millis(self.scenario.block_interval_ms),
            max_mempool_txs: 1000,
            app_state: self.app_state.clone(),
        };
        let engine = (self.make_engine)(self.nodes[node].key.clone());
        self.engine = Some(engine.engine());
        let n = &mut self.nodes[node];
        n.life += 1;
        n.wake_queued = None;
        n.evidence_checked = 0;
        let app = n.app.restarted(app_loses);
        self.replayed_blocks += n.store.last_height().unwrap_or(0).saturating_sub(app.height());
        // The tokio runner's inbound channel: unused here, the simulator hands events over itself.
        let (_, inbound) = mpsc::channel(1);
        let driver = Driver::new(engine, app, n.net.clone(), n.store.clone(), config, inbound)
            .with_clock(Arc::new(self.clock.clone()))
            .with_miner(n.miner.clone());
        n.driver = Some(driver);
        self.step(node, |driver| driver.start())
    }

    /// Runs one driver step on `node` (if it is up), then flushes its WAL, sends what it sent,
    /// checks what it stored, and queues its next wake-up.
    fn step(
        &mut self,
        node: usize,
        action: impl FnOnce(&mut SimDriver<E, A>) -> Result<(), DriverError>,
    ) -> Result<(), SimFailure> {
        let seed = self.scenario.seed;
        let n = &mut self.nodes[node];
        let Some(driver) = n.driver.as_mut() else { return Ok(()) };
        action(driver).and_then(|()| driver.flush()).map_err(|e| SimFailure::Driver {
            seed,
            node,
            reason: e.to_string(),
        })?;
        let wake = driver.next_wake();
        let fresh: Vec<Evidence> = driver.evidence()[n.evidence_checked..].to_vec();
        n.evidence_checked += fresh.len();
        for evidence in fresh {
            self.check_evidence(node, &evidence)?;
        }
        for outgoing in self.nodes[node].net.take() {
            self.send(node, outgoing)?;
        }
        self.check_store(node)?;
        self.schedule_mining(node);
        if let Some(at) = wake {
            let queued = self.nodes[node].wake_queued;
            if queued.is_none_or(|q| at < q || q < self.now) {
                self.nodes[node].wake_queued = Some(at);
                let life = self.nodes[node].life;
                self.schedule(at.max(self.now), Event::Wake { node, life });
            }
        }
        Ok(())
    }

    fn index_of(&self, key: &pyralog_crypto::PublicKey) -> usize {
        self.nodes.iter().position(|n| n.key.public() == *key).unwrap_or(usize::MAX)
    }

    fn is_byzantine(&self, index: usize) -> bool {
        index != usize::MAX && self.nodes[index].behaviour != Behaviour::Honest
    }

    fn latency(&mut self) -> u64 {
        let (low, high) = self.scenario.delay_ms;
        low + self.rng.below(high - low + 1)
    }

    /// Queues `event` for delivery after `late` and a latency, unless the network loses it;
    /// maybe twice.
    fn transmit(&mut self, late: u64, make: impl Fn() -> Event) {
        if self.rng.chance(self.scenario.drop_permille) {
            return;
        }
        if self.rng.chance(self.scenario.duplicate_permille) {
            let again = self.now + late + self.latency();
            self.schedule(again, make());
        }
        let at = self.now + late + self.latency();
        self.schedule(at, make());
    }

    /// A consensus message from `from` to `to`, as `from`'s behaviour makes it.
    fn send_message(&mut self, from: usize, to: usize, bytes: &[u8]) {
        // Byzantine validators collude: they show each other the real history.
        let victim = self.nodes[to].behaviour == Behaviour::Honest;
        let behaviour = self.nodes[from].behaviour;
        let key = self.nodes[from].key.clone();
        for (bytes, late) in faults::tamper(behaviour, self.adversary, &key, to, victim, bytes, &mut self.rng)
        {
            self.transmit(late, || Event::Deliver { to, from, bytes: bytes.clone() });
        }
    }

    fn send(&mut self, from: usize, outgoing: Outgoing) -> Result<(), SimFailure> {
        match outgoing {
            Outgoing::Broadcast(bytes) => {
                for to in (0..self.nodes.len()).filter(|to| *to != from) {
                    self.send_message(from, to, &bytes);
                }
            }
            Outgoing::SendTo(key, bytes) => {
                let to = self.index_of(&key);
                if to != usize::MAX {
                    self.send_message(from, to, &bytes);
                }
            }
            Outgoing::Gossip(tx) => {
                for to in (0..self.nodes.len()).filter(|to| *to != from) {
                    self.transmit(0, || Event::Transaction { to, tx: tx.clone() });
                }
            }
            Outgoing::Evidence(evidence) => {
                for to in (0..self.nodes.len()).filter(|to| *to != from) {
                    self.transmit(0, || Event::Evidence { to, from, evidence: evidence.clone() });
                }
            }
            Outgoing::Report(peer, reason) => {
                // Honest nodes never send what deserves a report: blaming one is a bug.
                let accused = self.index_of(&peer);
                if !self.is_byzantine(accused) {
                    return Err(SimFailure::FalseReport {
                        seed: self.scenario.seed,
                        node: from,
                        accused,
                        reason,
                    });
                }
            }
        }
        Ok(())
    }

    fn partitioned(&self, a: usize, b: usize) -> bool {
        self.scenario.partition.as_ref().is_some_and(|p| p.separates(self.now, a, b))
    }

    fn committed(&self, node: usize) -> u64 {
        self.nodes[node].store.last_height().unwrap_or(0)
    }

    fn honest_heights(&self) -> Vec<u64> {
        (0..self.nodes.len())
            .filter(|n| self.nodes[*n].behaviour == Behaviour::Honest)
            .map(|n| self.committed(n))
            .collect()
    }

    /// Block sync, as the node's runner does it: the driver names what it lacks, a random peer's
    /// driver serves it over the virtual network, and the answer arrives a latency later.
    fn sync(&mut self, node: usize) -> Result<(), SimFailure> {
        let Some(driver) = self.nodes[node].driver.as_mut() else { return Ok(()) };
        let Some((from_height, max)) = driver.sync_request() else { return Ok(()) };
        let life = self.nodes[node].life;
        let peer = (node + 1 + self.rng.below(self.nodes.len() as u64 - 1) as usize) % self.nodes.len();
        let reachable = self.nodes[peer].driver.is_some()
            && !self.partitioned(node, peer)
            && !self.rng.chance(self.scenario.drop_permille)
            // A withholding validator keeps its blocks back too.
            && self.nodes[peer].behaviour != Behaviour::Withhold;
        let mut blocks = Vec::new();
        if reachable {
            let (reply, mut answer) = oneshot::channel();
            self.step(peer, |driver| {
                driver.handle_net(NetEvent::BlocksRequested { from_height, max, reply })
            })?;
            blocks = answer.try_recv().unwrap_or_default();
        }
        // A Byzantine peer serves real certificates with forged transactions half the time.
        if self.is_byzantine(peer) && self.rng.chance(500) {
            for block in &mut blocks {
                block.txs.push(b"forged".to_vec());
            }
        }
        let fetched =
            (!blocks.is_empty()).then(|| FetchedBlocks { from: self.nodes[peer].key.public(), blocks });
        let at = self.now + self.latency();
        self.schedule(at, Event::Fetched { node, life, fetched });
        Ok(())
    }

    fn run(mut self) -> Result<Outcome, SimFailure> {
        let target = self.scenario.target_height;
        while let Some(Reverse((at, seq))) = self.queue.pop() {
            let Some(event) = self.events.remove(&seq) else { continue };
            if self.honest_heights().iter().all(|h| *h >= target) || at > self.scenario.deadline_ms {
                break;
            }
            self.now = at;
            self.clock.set(at);
            match event {
                Event::Deliver { to, from, bytes } => {
                    if self.nodes[to].driver.is_none() || self.partitioned(from, to) {
                        continue;
                    }
                    self.delivered += 1;
                    self.view_changes += u64::from(self.adversary.is_view_change(&bytes));
                    let from = self.nodes[from].key.public();
                    self.step(to, |driver| driver.handle_net(NetEvent::Message { from, bytes }))?;
                }
                Event::Transaction { to, tx } => {
                    self.step(to, |driver| driver.handle_net(NetEvent::Transaction(tx)))?;
                }
                Event::Evidence { to, from, evidence } => {
                    if self.partitioned(from, to) {
                        continue;
                    }
                    let from = self.nodes[from].key.public();
                    self.step(to, |driver| driver.handle_net(NetEvent::Evidence { from, evidence }))?;
                }
                Event::Wake { node, life } => {
                    if self.nodes[node].life != life {
                        continue;
                    }
                    self.nodes[node].wake_queued = None;
                    self.step(node, |driver| driver.wake())?;
                }
                Event::Fetched { node, life, fetched } => {
                    if self.nodes[node].life != life {
                        continue;
                    }
                    let before = self.committed(node);
                    self.step(node, |driver| driver.handle_fetched(fetched))?;
                    self.synced_blocks += self.committed(node) - before;
                }
                Event::Crash { node, down_for, app_loses } => {
                    self.nodes[node].driver = None;
                    self.nodes[node].net.take();
                    self.nodes[node].life += 1;
                    self.schedule(self.now + down_for, Event::Restart { node, app_loses });
                }
                Event::Restart { node, app_loses } => self.boot(node, app_loses)?,
                Event::Mined { node, life, generation } => self.mine(node, life, generation)?,
                Event::SyncTick { node } => {
                    self.sync(node)?;
                    // A client submits a transaction now and then (mempool, gossip, payloads).
                    if self.rng.chance(300) {
                        self.transactions += 1;
                        let tx = format!("tx {} from client of {node}", self.transactions).into_bytes();
                        self.step(node, |driver| driver.submit(tx).map(drop))?;
                    }
                    let at = self.now + 250 + self.rng.below(100);
                    self.schedule(at, Event::SyncTick { node });
                }
            }
        }
        let heights = self.honest_heights();
        if heights.iter().any(|h| *h < target) {
            let deciding = self.nodes.iter().map(|n| n.driver.as_ref().map(Driver::height)).collect();
            return Err(SimFailure::Liveness {
                seed: self.scenario.seed,
                heights,
                deciding,
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
            evidence_committed: self.punished.len() as u64,
            replayed_blocks: self.replayed_blocks,
            view_changes: self.view_changes,
            blocks: self.blocks.into_values().collect(),
            mined: self.mined.len() as u64,
            orphaned: self.mined.iter().filter(|(h, b)| self.decided.get(h).is_some_and(|d| d != b)).count()
                as u64,
        })
    }
}
