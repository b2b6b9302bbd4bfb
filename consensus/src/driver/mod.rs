//! The one driver that runs any [`ConsensusCore`]: it performs the engine's effects and calls
//! into the app. It is the same code in the node and in the simulator: everything it touches is
//! a seam, and only the runner around it differs.
//!
//! | seam | node | simulator |
//! |---|---|---|
//! | [`Clock`] | [`MonotonicClock`] | virtual milliseconds |
//! | [`ConsensusNet`] | libp2p (`pyralog-p2p`) | an in-memory network with faults |
//! | [`ChainStore`] (blocks, validator sets, WAL) | [`BlockStore`] on RocksDB | [`MemoryStore`], kept across crashes |
//! | the runner (wake-ups, inbound events) | [`Driver::run`] on tokio | the simulator's event queue |
//!
//! The runner calls the driver's steps ([`Driver::start`], [`Driver::handle_net`],
//! [`Driver::submit`], [`Driver::wake`] at [`Driver::next_wake`], [`Driver::sync_request`] and
//! [`Driver::handle_fetched`], [`Driver::flush`]); the driver decides.
//!
//! - **Timers** are deadlines on the clock, keyed by [`TimerId`] so the engine can replace and
//!   cancel them.
//! - **WAL**: an engine WAL entry ([`Effect::PersistWal`]: own votes and proposals, received
//!   messages, timeouts) is durable before any effect that follows it leaves the node (a
//!   broadcast, a commit); after a crash the engine replays the entries of the undecided
//!   heights, so it resumes with its lock and never signs a conflicting vote or proposal. An
//!   entry the engine cannot read stops the driver ([`DriverError::CorruptWal`]): skipping it
//!   could forget a vote and sign its contradiction.
//!   Entries are group-committed: they collect while the driver works through the events that
//!   are ready and go to disk in one fsync, before the next message leaves or when the batch of
//!   events is done. (Losing received-but-unflushed entries in a crash is like never having
//!   received them.)
//! - **Blocks** are checked against the validator set, stored with their finality proof (fsynced),
//!   then executed by the app (`finalize`, `commit`). At start, stored blocks the app has not
//!   committed are replayed into it (the ABCI handshake).
//! - **Last commit and evidence** ([`crate::evidence`]): the proposer's app gets the parent's
//!   stored finality proof and the pooled evidence to carry in its payload; every validator checks
//!   what a proposed payload carries before its app does, and `finalize` gets the carried signers
//!   and misbehaviour, agreed since they are part of the decided bytes. Evidence the engine proves
//!   is pooled and gossiped; evidence peers gossip is checked and pooled; a committed block's
//!   evidence leaves the pool.
//! - **Block sync**: every `sync_interval` the runner asks a peer for blocks after the driver's
//!   last one; the driver checks each certificate, stores and applies them, and moves the engine
//!   to the next height. It serves the same request to its peers.

mod blocks;
mod clock;
mod effects;
mod evidence;
#[cfg(feature = "test-utils")]
mod memory;
mod mempool;
mod miner;
mod net;
mod runtime;
mod sets;
mod store;

pub use clock::{Clock, MonotonicClock};
#[cfg(feature = "test-utils")]
pub use memory::MemoryStore;
pub use mempool::{Admission, DriverStopped, Submissions, Submitter};
pub use miner::{Miner, ThreadMiner};
pub use net::{ConsensusNet, FetchedBlocks, NetError, NetEvent};
pub use store::{BlockStore, ChainStore, StoreError, StoredBlock};

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use pyralog_crypto::PublicKey;
use tokio::sync::{mpsc, oneshot, watch};

use crate::app::{BlockContext, ReplicatedApp};
use crate::core::{ConsensusCore, Input, Millis, TimerId};
use crate::evidence::{EvidenceError, check_evidence};
use crate::finality::FinalityProof;
use crate::pow::Seal;
use crate::proposer::ProposerPriorities;
use crate::validators::ValidatorSet;
use crate::vote::{BlockId, Evidence};
use evidence::EvidencePool;
use mempool::{Mempool, Refusal};

/// Most blocks one sync round asks a peer for.
const SYNC_BATCH: u32 = 64;

/// Driver settings.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The chain.
    pub chain_id: String,
    /// The genesis validators. A block's validator updates (from the app's `finalize`) take
    /// effect two heights later, as in CometBFT; the driver records each change in its store.
    pub validators: ValidatorSet,
    /// How often to ask peers for blocks we lack.
    pub sync_interval: Duration,
    /// Most payload bytes per block.
    pub max_payload_bytes: usize,
    /// The pause between committing a block and starting the next height (CometBFT's
    /// `timeout_commit`): it paces empty blocks and lets late precommits arrive. Zero cuts blocks
    /// as fast as the network allows.
    pub block_interval: Duration,
    /// Most transactions waiting in the mempool; more are refused.
    pub max_mempool_txs: usize,
    /// The genesis app state, handed to the app's `init_chain` while it is at height 0.
    pub app_state: Vec<u8>,
}

/// Why the driver stopped.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Storage failed (the node must stop: it cannot keep its promises).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The app failed.
    #[error("app: {0}")]
    App(String),
    /// The engine's write-ahead log holds an entry the engine cannot read. The node stops rather
    /// than skip it: a forgotten vote could be contradicted, which is how a validator
    /// double-signs. The operator restores the file or wipes the undecided heights knowingly.
    #[error("consensus WAL in {location}: entry {index} of the undecided heights is unreadable: {reason}")]
    CorruptWal {
        /// The store holding the WAL (a path).
        location: String,
        /// The entry's position among those replayed.
        index: usize,
        /// Why it does not decode.
        reason: String,
    },
    /// The engine produced a block whose proof does not verify (a bug: never stored).
    #[error("height {height}: the engine's finality proof does not verify: {reason}")]
    BadProof {
        /// The height.
        height: u64,
        /// Why.
        reason: String,
    },
}

/// Progress the driver reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// The last committed height.
    pub height: u64,
    /// Blocks applied through sync.
    pub synced: u64,
    /// Equivocations proven.
    pub evidence: u64,
    /// Alarms the engine raised (`Effect::Alarm`: a heavier chain that would revert a final
    /// block, under Proof-of-Work).
    pub alarms: u64,
    /// Seals this node's miner found (Proof-of-Work).
    pub mined: u64,
    /// The round (PBFT: view) `height` was decided in; 0 for engines without rounds.
    pub round: u32,
    /// How many rounds (views) deciding `height` took here: 1 when its first decided it; 0 for
    /// engines without rounds and for a synced block.
    pub rounds: u32,
    /// When (the driver's clock, ms) this node started deciding `height`, and when it
    /// committed it: their difference is the height's commit latency here, the gap between
    /// two commits the block interval. Both 0 for a synced block.
    pub started_ms: u64,
    /// See `started_ms`.
    pub committed_ms: u64,
    /// Transactions in the mempool. This and the refusal counts below change without waking
    /// the receivers (they are read at scrape time, not waited on).
    pub mempool_txs: u64,
    /// Transactions refused because the mempool was full.
    pub mempool_full: u64,
    /// Transactions the app's `check_tx` refused.
    pub mempool_rejected: u64,
}

/// Runs one validator's engine.
pub struct Driver<E, A, N, S = BlockStore> {
    engine: E,
    app: A,
    net: N,
    store: S,
    config: DriverConfig,
    clock: Arc<dyn Clock>,
    /// Events for [`Driver::run`] (a runner of its own feeds [`Driver::handle_net`] instead).
    inbound: mpsc::Receiver<NetEvent>,
    timers: BTreeMap<TimerId, Millis>,
    /// The height the engine is deciding.
    height: u64,
    mempool: Mempool,
    /// Transactions submitted from outside (RPC, gossip).
    tx_in: mpsc::Sender<Vec<u8>>,
    tx_rx: mpsc::Receiver<Vec<u8>>,
    /// Transactions whose submitters wait for the mempool's answer.
    submissions: mpsc::Sender<(Vec<u8>, oneshot::Sender<Admission>)>,
    submissions_rx: mpsc::Receiver<(Vec<u8>, oneshot::Sender<Admission>)>,
    /// When to start the next height (after the block interval).
    next_height_at: Option<Millis>,
    /// When the engine started deciding `height` (for [`Progress::started_ms`]).
    height_started: Millis,

    progress: watch::Sender<Progress>,
    /// Answers of the block fetch in flight (at most one at a time).
    fetched: mpsc::Sender<Option<FetchedBlocks>>,
    fetched_rx: mpsc::Receiver<Option<FetchedBlocks>>,
    fetching: bool,
    /// Validator-set changes by the height they take effect at (before the first, the genesis
    /// set of the config).
    sets: BTreeMap<u64, ValidatorSet>,
    /// The proposer priorities last computed, and their height.
    proposers: Option<(u64, ProposerPriorities)>,

    /// What the network was last told may send consensus messages.
    announced: Vec<PublicKey>,
    /// WAL entries not yet on disk (group commit).
    wal_pending: Vec<(u64, Vec<u8>)>,
    /// Verified equivocations, the engine's and the peers', waiting for a block.
    evidence: EvidencePool,
    /// The last committed block's id (the next block's parent; zero before the first).
    parent: BlockId,
    /// Its finality proof as stored here (the next payload's last commit).
    parent_proof: Option<FinalityProof>,
    /// The context of the payload checked last, by its block id.
    checked: Option<(BlockId, BlockContext)>,
    /// The nonce search of work engines (none: this node does not mine).
    miner: Option<Box<dyn Miner>>,
    /// Seals the miner found, for [`Driver::run`].
    mined: mpsc::Sender<Seal>,
    mined_rx: mpsc::Receiver<Seal>,
}

impl<E, A, N, S> Driver<E, A, N, S>
where
    E: ConsensusCore,
    A: ReplicatedApp,
    N: ConsensusNet,
    S: ChainStore,
{
    /// A driver over `store` on the [`MonotonicClock`], fed by `inbound` when it runs on tokio
    /// ([`Driver::run`]); watch its progress with [`Driver::progress`].
    pub fn new(
        engine: E,
        app: A,
        net: N,
        store: S,
        config: DriverConfig,
        inbound: mpsc::Receiver<NetEvent>,
    ) -> Self {
        let (fetched, fetched_rx) = mpsc::channel(1);
        let (tx_in, tx_rx) = mpsc::channel(1024);
        let (submissions, submissions_rx) = mpsc::channel(1024);
        let mempool = Mempool::new(config.max_mempool_txs);
        let (mined, mined_rx) = mpsc::channel(16);

        Driver {
            tx_in,
            tx_rx,
            submissions,
            submissions_rx,
            next_height_at: None,
            height_started: 0,
            fetched,
            fetched_rx,
            fetching: false,
            engine,
            app,
            net,
            store,
            config,
            inbound,
            timers: BTreeMap::new(),
            clock: Arc::new(MonotonicClock::new()),
            height: 0,
            mempool,
            sets: BTreeMap::new(),
            proposers: None,
            announced: Vec::new(),
            wal_pending: Vec::new(),
            evidence: EvidencePool::default(),
            parent: BlockId::default(),
            parent_proof: None,
            checked: None,
            progress: watch::Sender::new(Progress::default()),
            miner: None,
            mined,
            mined_rx,
        }
    }

    /// The same driver searching seals with `miner` when a work engine asks it to.
    pub fn with_miner(mut self, miner: impl Miner) -> Self {
        self.miner = Some(Box::new(miner));
        self
    }

    /// Where a miner running beside [`Driver::run`] hands the seals it finds.
    pub fn mined_sender(&self) -> mpsc::Sender<Seal> {
        self.mined.clone()
    }

    /// Hands the engine a seal the miner found (the simulator's miner calls it; on tokio,
    /// [`Driver::run`] does with what arrives at [`Driver::mined_sender`]).
    pub fn handle_mined(&mut self, seal: Seal) -> Result<(), DriverError> {
        self.progress.send_modify(|p| p.mined += 1);
        self.input(Input::Mined(seal))
    }

    /// The same driver on `clock` (the simulator's virtual time).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The height the engine is deciding (or, during the block interval, will decide next).
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The app.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// Verified equivocations proven since the driver started (by its engine or gossiped by
    /// peers), distinct, oldest first.
    pub fn evidence(&self) -> &[Evidence] {
        self.evidence.proven()
    }

    /// Progress updates (height after each commit).
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Where to submit transactions without waiting for an answer: each is checked by the app
    /// (`check_tx`) and queued for the next payload this validator builds.
    pub fn tx_sender(&self) -> mpsc::Sender<Vec<u8>> {
        self.tx_in.clone()
    }

    /// Where to submit transactions and learn what became of each ([`Admission`]).
    pub fn submitter(&self) -> Submitter {
        Submitter(self.submissions.clone())
    }

    /// Queues `tx` if the app accepts it; a local one is also gossiped to the other validators,
    /// so whoever proposes next can include it.
    fn admit(&mut self, tx: Vec<u8>, local: bool) -> Result<Admission, DriverError> {
        match self.mempool.admissible(&tx) {
            Ok(()) => {}
            Err(Refusal::Full) => {
                tracing::debug!("mempool full; transaction refused");
                self.progress.send_if_modified(|p| {
                    p.mempool_full += 1;
                    false
                });
                return Ok(Admission::MempoolFull { capacity: self.config.max_mempool_txs });
            }
            Err(Refusal::Seen) => return Ok(Admission::AlreadyKnown),
        }
        match self.app.check_tx(&tx).map_err(app_err)? {
            Ok(()) => {
                if local {
                    self.net.gossip_tx(tx.clone());
                }
                self.mempool.push(tx);
                let queued = self.mempool.len() as u64;
                self.progress.send_if_modified(|p| {
                    p.mempool_txs = queued;
                    false
                });
                Ok(Admission::Queued)
            }
            Err(reason) => {
                tracing::debug!(%reason, "transaction refused by check_tx");
                self.progress.send_if_modified(|p| {
                    p.mempool_rejected += 1;
                    false
                });
                Ok(Admission::Rejected(reason))
            }
        }
    }

    /// Starts the driver: loads the recorded validator-set changes, brings the app up to the
    /// store (the ABCI handshake), gives the engine its WAL back and starts the next height.
    pub fn start(&mut self) -> Result<(), DriverError> {
        self.sets.extend(self.store.validator_sets()?);
        self.handshake()?;
        let last = self.store.last_height()?;
        if last > 0 {
            let block = self.store.block(last)?.ok_or(StoreError::Corrupt {
                what: "block",
                key: last,
                reason: "the last height has no block".into(),
            })?;
            self.parent = block.block;
            self.parent_proof = Some(block.proof);
        }
        self.progress.send_modify(|p| p.height = last);
        self.engine.restore_wal(self.store.wal_from(last + 1)?).map_err(|e| DriverError::CorruptWal {
            location: self.store.location(),
            index: e.index,
            reason: e.reason,
        })?;
        self.start_height(last + 1)
    }

    /// Handles one event from the network. WAL entries it causes wait for [`Driver::flush`] (or
    /// for the next message that leaves), so a batch of events shares one sync.
    pub fn handle_net(&mut self, event: NetEvent) -> Result<(), DriverError> {
        // A message may be for the next height: start it first if its time has come (the
        // block before it may have been decided by the previous message of the same batch).
        self.start_due_height()?;
        match event {
            NetEvent::Message { from, bytes } => self.input(Input::Message { from, bytes }),
            NetEvent::BlocksRequested { from_height, max, reply } => {
                let blocks = self.store.blocks_from(from_height, max.min(256) as usize)?;
                let _ = reply.send(blocks);
                Ok(())
            }
            NetEvent::Transaction(tx) => self.admit(tx, false).map(drop),
            NetEvent::Evidence { from, evidence } => {
                self.gossiped_evidence(from, *evidence);
                Ok(())
            }
        }
    }

    /// Pools evidence a peer gossiped if it may enter a coming block. A peer that sends what
    /// proves nothing or names another chain is reported; evidence that is merely too old, or
    /// of a height or set this node does not know yet, is dropped.
    fn gossiped_evidence(&mut self, from: PublicKey, evidence: Evidence) {
        let validators = self.validators_at(evidence.height());
        match check_evidence(&evidence, &self.config.chain_id, self.height + 1, validators) {
            Ok(()) => {
                if self.evidence.add(evidence) {
                    self.progress.send_modify(|p| p.evidence += 1);
                }
            }
            Err(reason @ (EvidenceError::Unproven | EvidenceError::WrongChain(_))) => {
                self.net.report(from, format!("gossiped evidence: {reason}"));
            }
            Err(reason) => tracing::debug!(%reason, "gossiped evidence dropped"),
        }
    }

    /// Submits a transaction from this node's clients: checked by the app (`check_tx`), queued
    /// for the next payload this validator builds, and gossiped. Says what became of it.
    pub fn submit(&mut self, tx: Vec<u8>) -> Result<Admission, DriverError> {
        self.admit(tx, true)
    }

    /// When the driver next has something to do on its own (a timer, the next height), on its
    /// clock; the runner calls [`Driver::wake`] then.
    pub fn next_wake(&self) -> Option<Millis> {
        self.timers.values().copied().chain(self.next_height_at).min()
    }

    /// Fires the timers that are due and starts the next height if the block interval is over.
    pub fn wake(&mut self) -> Result<(), DriverError> {
        let now = self.clock.now();
        let due: Vec<TimerId> = self.timers.iter().filter(|(_, at)| **at <= now).map(|(id, _)| *id).collect();
        for id in due {
            if self.timers.remove(&id).is_some() {
                self.input(Input::TimeoutFired(id))?;
            }
        }
        self.start_due_height()
    }

    /// Starts the next height if the block interval after the last block is over.
    fn start_due_height(&mut self) -> Result<(), DriverError> {
        if self.next_height_at.is_some_and(|at| at <= self.clock.now()) {
            self.next_height_at = None;
            self.start_height(self.height)?;
        }
        Ok(())
    }

    /// The blocks to ask a peer for, `(from_height, max)`, unless a request is already out; the
    /// runner answers with [`Driver::handle_fetched`] (`None` when no peer answered).
    pub fn sync_request(&mut self) -> Option<(u64, u32)> {
        if self.fetching {
            return None;
        }
        self.fetching = true;
        Some((self.height, SYNC_BATCH))
    }

    /// Applies fetched blocks whose proofs verify, in order from the driver's next height; a
    /// peer that served one that does not verify is reported.
    pub fn handle_fetched(&mut self, fetched: Option<FetchedBlocks>) -> Result<(), DriverError> {
        self.fetching = false;
        let Some(fetched) = fetched else { return Ok(()) };
        for block in fetched.blocks {
            if block.height != self.height {
                break;
            }
            if let Err(reason) = self.check_block(&block) {
                tracing::warn!(height = block.height, %reason, "a peer served a block that does not verify");
                self.net.report(fetched.from, format!("served block {}: {reason}", block.height));
                break;
            }
            self.commit(block, true)?;
        }
        Ok(())
    }

    /// Writes the pending WAL entries with one sync.
    pub fn flush(&mut self) -> Result<(), DriverError> {
        if !self.wal_pending.is_empty() {
            self.store.append_wal_batch(&self.wal_pending)?;
            self.wal_pending.clear();
        }
        Ok(())
    }

    fn start_height(&mut self, height: u64) -> Result<(), DriverError> {
        self.height = height;
        self.height_started = self.clock.now();
        self.timers.clear();
        self.announce_validators();
        let validators = self.validators_at(height).clone();
        let last_commit = self.parent_proof.clone();
        let proposers = self.proposers_at(height);
        self.input(Input::StartHeight { height, validators, proposers, last_commit })
    }

    /// Feeds `input` and performs the effects, including the inputs they lead to.
    fn input(&mut self, input: Input) -> Result<(), DriverError> {
        let mut pending = VecDeque::from([input]);
        while let Some(input) = pending.pop_front() {
            let effects = self.engine.handle(self.clock.unix_ms(), input);
            for effect in effects {
                if let Some(next) = self.perform(effect)? {
                    pending.push_back(next);
                }
            }
        }
        Ok(())
    }
}

fn app_err(err: impl std::fmt::Display) -> DriverError {
    DriverError::App(err.to_string())
}
