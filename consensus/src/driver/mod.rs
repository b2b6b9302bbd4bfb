//! The one driver that runs any [`ConsensusCore`]: it performs the engine's effects with real
//! time, real storage and a real network, and calls into the app.
//!
//! - **Timers** are tokio deadlines, keyed by [`TimerId`] so the engine can replace and cancel
//!   them.
//! - **WAL**: an engine WAL entry ([`Effect::PersistWal`]: own votes and proposals, received
//!   messages, timeouts) is durable before any effect that follows it leaves the node (a
//!   broadcast, a commit); after a crash the engine replays the entries of the undecided
//!   heights, so it resumes with its lock and never signs a conflicting vote or proposal.
//!   Entries are group-committed: they collect while the driver works through the events that
//!   are ready and go to disk in one fsync, before the next message leaves or when the batch of
//!   events is done. (Losing received-but-unflushed entries in a crash is like never having
//!   received them.)
//! - **Blocks** are checked against the validator set, stored with their finality proof (fsynced),
//!   then executed by the app (`finalize`, `commit`). At start, stored blocks the app has not
//!   committed are replayed into it (the ABCI handshake).
//! - **Block sync**: every `sync_interval` the driver asks a peer for blocks after its last one,
//!   checks each certificate, stores and applies them, and moves the engine to the next height.
//!   It serves the same request to its peers.
//!
//! The network is a [`ConsensusNet`]: `p2p/` implements it over libp2p; tests use an in-memory
//! one.

mod mempool;
mod store;

pub use store::{BlockStore, StoreError, StoredBlock};

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::time::Duration;

use pyralog_crypto::PublicKey;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::app::{DecidedBlock, ReplicatedApp};
use crate::core::{ConsensusCore, Effect, Input, TimerId};
use crate::validators::ValidatorSet;
use crate::vote::payload_id;
use mempool::{Mempool, Refusal};

/// What the network hands the driver.
#[derive(Debug)]
pub enum NetEvent {
    /// A consensus message from a peer.
    Message {
        /// The sender's key (its authenticated transport identity).
        from: PublicKey,
        /// The engine message.
        bytes: Vec<u8>,
    },
    /// A peer asks for blocks (block sync); answer on `reply`.
    BlocksRequested {
        /// The first height wanted.
        from_height: u64,
        /// At most this many.
        max: u32,
        /// Where the answer goes.
        reply: oneshot::Sender<Vec<StoredBlock>>,
    },
    /// A transaction gossiped by a peer: checked and queued like a local one, not re-gossiped
    /// (the network forwards it).
    Transaction(Vec<u8>),
}

/// Blocks a peer served, and who served them (a peer that serves blocks that do not verify
/// is reported).
#[derive(Debug, Clone)]
pub struct FetchedBlocks {
    /// The serving peer.
    pub from: PublicKey,
    /// Its blocks, in height order.
    pub blocks: Vec<StoredBlock>,
}

/// Why the network could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("network: {0}")]
pub struct NetError(pub String);

/// The network as consensus sees it (no libp2p type here).
pub trait ConsensusNet: Send + Sync + 'static {
    /// Sends `bytes` to every validator.
    fn broadcast(&self, bytes: Vec<u8>);
    /// Sends `bytes` to one peer.
    fn send_to(&self, to: PublicKey, bytes: Vec<u8>);
    /// Asks some peer for up to `max` blocks from `from_height`. The future owns what it needs
    /// (the driver runs it beside its loop, which keeps deciding meanwhile).
    fn fetch_blocks(
        &self,
        from_height: u64,
        max: u32,
    ) -> impl Future<Output = Result<FetchedBlocks, NetError>> + Send + 'static;
    /// Spreads a transaction this node admitted to the other validators' mempools.
    fn gossip_tx(&self, tx: Vec<u8>);
    /// Reports a peer that sent invalid data (scored down; banned past a limit).
    fn report(&self, peer: PublicKey, reason: String);
    /// The keys whose consensus messages count from now on: the current validators and those of
    /// an announced next set (validator updates take effect two heights after their block).
    fn set_validators(&self, keys: Vec<PublicKey>);
}

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
}

/// Runs one validator's engine.
pub struct Driver<E, A, N> {
    engine: E,
    app: A,
    net: N,
    store: BlockStore,
    config: DriverConfig,
    inbound: mpsc::Receiver<NetEvent>,
    timers: BTreeMap<TimerId, Instant>,
    started: Instant,
    /// The height the engine is deciding.
    height: u64,
    mempool: Mempool,
    /// Transactions submitted from outside (RPC, gossip).
    tx_in: mpsc::Sender<Vec<u8>>,
    tx_rx: mpsc::Receiver<Vec<u8>>,
    /// When to start the next height (after the block interval).
    next_height_at: Option<Instant>,

    progress: watch::Sender<Progress>,
    /// Answers of the block fetch in flight (at most one at a time).
    fetched: mpsc::Sender<Option<FetchedBlocks>>,
    fetched_rx: mpsc::Receiver<Option<FetchedBlocks>>,
    fetching: bool,
    /// Validator-set changes by the height they take effect at (before the first, the genesis
    /// set of the config).
    sets: BTreeMap<u64, ValidatorSet>,
    /// What the network was last told may send consensus messages.
    announced: Vec<PublicKey>,
    /// WAL entries not yet on disk (group commit).
    wal_pending: Vec<(u64, Vec<u8>)>,
}

impl<E, A, N> Driver<E, A, N>
where
    E: ConsensusCore,
    A: ReplicatedApp,
    N: ConsensusNet,
{
    /// A driver over `store`, fed by `inbound`; watch its progress with [`Driver::progress`].
    pub fn new(
        engine: E,
        app: A,
        net: N,
        store: BlockStore,
        config: DriverConfig,
        inbound: mpsc::Receiver<NetEvent>,
    ) -> Self {
        let (fetched, fetched_rx) = mpsc::channel(1);
        let (tx_in, tx_rx) = mpsc::channel(1024);
        let mempool = Mempool::new(config.max_mempool_txs);

        Driver {
            tx_in,
            tx_rx,
            next_height_at: None,
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
            started: Instant::now(),
            height: 0,
            mempool,
            sets: BTreeMap::new(),
            announced: Vec::new(),
            wal_pending: Vec::new(),
            progress: watch::Sender::new(Progress::default()),
        }
    }

    /// Progress updates (height after each commit).
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Where to submit transactions: each is checked by the app (`check_tx`) and queued for the
    /// next payload this validator builds.
    pub fn tx_sender(&self) -> mpsc::Sender<Vec<u8>> {
        self.tx_in.clone()
    }

    /// Queues `tx` if the app accepts it; a local one is also gossiped to the other validators,
    /// so whoever proposes next can include it.
    fn admit(&mut self, tx: Vec<u8>, local: bool) -> Result<(), DriverError> {
        match self.mempool.admissible(&tx) {
            Ok(()) => {}
            Err(Refusal::Full) => {
                tracing::debug!("mempool full; transaction refused");
                return Ok(());
            }
            Err(Refusal::Seen) => return Ok(()),
        }
        match self.app.check_tx(&tx).map_err(app_err)? {
            Ok(()) => {
                if local {
                    self.net.gossip_tx(tx.clone());
                }
                self.mempool.push(tx);
            }
            Err(reason) => tracing::debug!(%reason, "transaction refused by check_tx"),
        }
        Ok(())
    }

    /// Runs until `stop` changes or a fatal error.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<(), DriverError> {
        self.sets.extend(self.store.validator_sets()?);
        self.handshake()?;
        let last = self.store.last_height()?;
        self.progress.send_modify(|p| p.height = last);
        self.engine.restore_wal(self.store.wal_from(last + 1)?);
        self.start_height(last + 1)?;
        let mut sync = tokio::time::interval(self.config.sync_interval);
        sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next_timer = self.timers.values().min().copied();
            tokio::select! {
                _ = stop.changed() => return Ok(()),
                event = self.inbound.recv() => match event {
                    Some(event) => {
                        self.on_net(event)?;
                        // Whatever else is ready shares the next WAL fsync.
                        for _ in 0..256 {
                            let Ok(event) = self.inbound.try_recv() else { break };
                            self.on_net(event)?;
                        }
                    }
                    None => return Ok(()),
                },
                _ = sleep_until(next_timer) => self.fire_timers()?,
                _ = sleep_until(self.next_height_at) => {
                    self.next_height_at = None;
                    self.start_height(self.height)?;
                }
                Some(tx) = self.tx_rx.recv() => self.admit(tx, true)?,
                _ = sync.tick() => self.start_fetch(),
                Some(fetched) = self.fetched_rx.recv() => {
                    self.fetching = false;
                    if let Some(fetched) = fetched {
                        self.apply_fetched(fetched)?;
                    }
                }
            }
            self.flush_wal()?;
        }
    }

    /// Initializes the app at genesis, then replays stored blocks it has not committed (it may lag
    /// after a crash).
    fn handshake(&mut self) -> Result<(), DriverError> {
        let app_height = self.app.info().map_err(app_err)?.last_height;
        if app_height == 0 {
            // ABCI InitChain: the app sets up its genesis state (apps that already did answer
            // with what they have).
            let validators = self.config.validators.validators().to_vec();
            self.app
                .init_chain(&self.config.chain_id, &validators, &self.config.app_state)
                .map_err(app_err)?;
        }
        let last = self.store.last_height()?;
        for height in app_height + 1..=last {
            let block = self.store.block(height)?.ok_or(StoreError::Corrupt {
                what: "block",
                key: height,
                reason: "missing below the last height".into(),
            })?;
            self.execute(&block)?;
        }
        Ok(())
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn start_height(&mut self, height: u64) -> Result<(), DriverError> {
        self.height = height;
        self.timers.clear();
        self.announce_validators();
        let validators = self.validators_at(height).clone();
        self.input(Input::StartHeight { height, validators })
    }

    /// The validator set deciding `height`.
    fn validators_at(&self, height: u64) -> &ValidatorSet {
        self.sets.range(..=height).next_back().map(|(_, set)| set).unwrap_or(&self.config.validators)
    }

    /// Tells the network who may send consensus messages: the current set and later ones.
    fn announce_validators(&mut self) {
        let mut keys: Vec<PublicKey> = std::iter::once(self.validators_at(self.height))
            .chain(self.sets.range(self.height + 1..).map(|(_, set)| set))
            .flat_map(|set| set.validators().iter().map(|v| v.key))
            .collect();
        keys.sort();
        keys.dedup();
        if keys != self.announced {
            self.net.set_validators(keys.clone());
            self.announced = keys;
        }
    }

    /// Feeds `input` and performs the effects, including the inputs they lead to.
    fn input(&mut self, input: Input) -> Result<(), DriverError> {
        let mut pending = VecDeque::from([input]);
        while let Some(input) = pending.pop_front() {
            let effects = self.engine.handle(self.now_ms(), input);
            for effect in effects {
                if let Some(next) = self.perform(effect)? {
                    pending.push_back(next);
                }
            }
        }
        Ok(())
    }

    fn perform(&mut self, effect: Effect) -> Result<Option<Input>, DriverError> {
        Ok(match effect {
            Effect::Broadcast(bytes) => {
                self.flush_wal()?;
                self.net.broadcast(bytes);
                None
            }
            Effect::SendTo { to, bytes } => {
                self.flush_wal()?;
                self.net.send_to(to, bytes);
                None
            }
            Effect::SetTimer { id, after } => {
                self.timers.insert(id, Instant::now() + after);
                None
            }
            Effect::CancelTimer(id) => {
                self.timers.remove(&id);
                None
            }
            Effect::BuildPayload { height } => {
                // The app picks; the mempool keeps everything until a block carries it.
                let candidates = self.mempool.candidates();
                let txs = self
                    .app
                    .prepare_payload(height, candidates, self.config.max_payload_bytes)
                    .map_err(app_err)?;
                Some(Input::PayloadBuilt { height, txs })
            }
            Effect::CheckPayload { height, block, txs } => {
                let verdict = self.app.process_payload(height, &txs).map_err(app_err)?;
                Some(Input::PayloadChecked { block, valid: verdict == crate::app::PayloadVerdict::Accept })
            }
            Effect::CommitBlock { height, block, txs, proof } => {
                self.commit(StoredBlock { height, block, txs, proof }, false)?;
                None
            }
            Effect::PersistWal { height, entry } => {
                self.wal_pending.push((height, entry));
                None
            }
            Effect::PeerMisbehaved { peer, reason } => {
                self.net.report(peer, reason);
                None
            }
            Effect::Evidence(evidence) => {
                // Logged and counted only: evidence reaches the app once it is part of the agreed
                // block (the chain's block format, issue 6); handing each node's own sightings to
                // `finalize` would make the replicas' states diverge.
                if evidence.verify() {
                    tracing::warn!(validator = %evidence.validator(), height = evidence.height(), "equivocation");
                    self.progress.send_modify(|p| p.evidence += 1);
                }
                None
            }
        })
    }

    /// Writes the pending WAL entries with one fsync.
    fn flush_wal(&mut self) -> Result<(), DriverError> {
        if !self.wal_pending.is_empty() {
            self.store.append_wal_batch(&self.wal_pending)?;
            self.wal_pending.clear();
        }
        Ok(())
    }

    /// Stores and executes `block`, then moves the engine to the next height.
    fn commit(&mut self, block: StoredBlock, synced: bool) -> Result<(), DriverError> {
        if block.height != self.height {
            return Ok(()); // decided here and synced, or the other way round
        }
        // The WAL stays in height order (pruning relies on it).
        self.flush_wal()?;
        check_block(&self.config.chain_id, self.validators_at(block.height), &block)
            .map_err(|reason| DriverError::BadProof { height: block.height, reason })?;
        self.store.put_block(&block)?;
        let app_hash = self.execute(&block)?;
        let validators = self.validators_at(block.height + 2).clone();
        self.input(Input::BlockApplied { height: block.height, app_hash, validator_updates: validators })?;
        self.store.prune_wal_below(block.height + 1)?;
        self.progress.send_modify(|p| {
            p.height = block.height;
            p.synced += u64::from(synced);
        });
        if synced || self.config.block_interval.is_zero() {
            self.next_height_at = None;
            return self.start_height(block.height + 1);
        }
        // Wait out the block interval; `self.height` already names the next height, so a
        // block synced meanwhile is still accepted for it.
        self.height = block.height + 1;
        self.timers.clear();
        self.next_height_at = Some(Instant::now() + self.config.block_interval);
        Ok(())
    }

    /// Runs `block` through the app; returns the app hash after it.
    fn execute(&mut self, block: &StoredBlock) -> Result<Vec<u8>, DriverError> {
        let decided = DecidedBlock {
            height: block.height,
            id: block.block,
            time_ms: 0,
            proposer: None,
            txs: block.txs.clone(),
            evidence: Vec::new(),
        };
        // Whatever the block carried leaves the mempool.
        self.mempool.committed(&block.txs);
        let finalized = self.app.finalize(&decided).map_err(app_err)?;
        if !finalized.validator_updates.is_empty() {
            // Applying the same updates twice gives the same set, so replaying this block after
            // a crash rewrites the same record.
            let effective = block.height + 2;
            let next =
                self.validators_at(block.height + 1).with_updates(&finalized.validator_updates).map_err(
                    |e| DriverError::App(format!("height {}: invalid validator updates: {e}", block.height)),
                )?;
            tracing::info!(
                height = block.height,
                effective,
                validators = next.validators().len(),
                "validator set changes"
            );
            self.store.put_validator_set(effective, &next)?;
            self.sets.insert(effective, next);
            self.announce_validators();
        }
        self.app.commit().map_err(app_err)?;
        Ok(finalized.app_hash)
    }

    fn on_net(&mut self, event: NetEvent) -> Result<(), DriverError> {
        match event {
            NetEvent::Message { from, bytes } => self.input(Input::Message { from, bytes }),
            NetEvent::BlocksRequested { from_height, max, reply } => {
                let blocks = self.store.blocks_from(from_height, max.min(256) as usize)?;
                let _ = reply.send(blocks);
                Ok(())
            }
            NetEvent::Transaction(tx) => self.admit(tx, false),
        }
    }

    fn fire_timers(&mut self) -> Result<(), DriverError> {
        let now = Instant::now();
        let due: Vec<TimerId> = self.timers.iter().filter(|(_, at)| **at <= now).map(|(id, _)| *id).collect();
        for id in due {
            if self.timers.remove(&id).is_some() {
                self.input(Input::TimeoutFired(id))?;
            }
        }
        Ok(())
    }

    /// Asks a peer for blocks after our last one, in a task of its own.
    fn start_fetch(&mut self) {
        if self.fetching {
            return;
        }
        self.fetching = true;
        let fetch = self.net.fetch_blocks(self.height, 64);
        let limit = self.config.sync_interval * 5;
        let answer = self.fetched.clone();
        tokio::spawn(async move {
            let fetched = match tokio::time::timeout(limit, fetch).await {
                Ok(Ok(fetched)) => Some(fetched),
                _ => None,
            };
            let _ = answer.send(fetched).await;
        });
    }

    /// Applies fetched blocks whose proofs verify, in order from our next height.
    fn apply_fetched(&mut self, fetched: FetchedBlocks) -> Result<(), DriverError> {
        for block in fetched.blocks {
            if block.height != self.height {
                break;
            }
            if let Err(reason) = check_block(&self.config.chain_id, self.validators_at(block.height), &block)
            {
                tracing::warn!(height = block.height, %reason, "a peer served a block that does not verify");
                self.net.report(fetched.from, format!("served block {}: {reason}", block.height));
                break;
            }
            self.commit(block, true)?;
        }
        Ok(())
    }
}

/// A block is what its proof finalizes only if its transactions hash to the finalized id.
fn check_block(chain_id: &str, validators: &ValidatorSet, block: &StoredBlock) -> Result<(), String> {
    if payload_id(&block.txs) != block.block {
        return Err("the transactions do not hash to the certified block id".into());
    }
    block
        .proof
        .verify(chain_id, block.height, &block.block, validators)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn app_err(err: impl std::fmt::Display) -> DriverError {
    DriverError::App(err.to_string())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
