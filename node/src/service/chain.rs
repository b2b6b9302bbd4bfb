//! The chain inside `pyralog start`: the overlay, the driver running the chain app on the
//! genesis file's engine (Tendermint, PBFT or Proof-of-Work, with its miner threads),
//! the query handler that serves other nodes. [`ChainService`] is what
//! the RPC layer reads.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pyralog_chain::app::{ChainApp, read_state};
use pyralog_chain::block::Header;
use pyralog_chain::genesis::GenesisFile;
use pyralog_chain::state::StateStore;
use pyralog_chain::values::{ClusterRecord, cluster_key};
use pyralog_consensus::app::ReplicatedApp;
use pyralog_consensus::core::ConsensusCore;
use pyralog_consensus::driver::{
    BlockStore, ChainStore, Driver, DriverConfig, DriverError, NetEvent, Progress, StoredBlock, Submitter,
    ThreadMiner,
};
use pyralog_consensus::nakamoto::PowEngine;
use pyralog_consensus::pbft::{PbftEngine, PbftTimeouts};
use pyralog_consensus::tendermint::{TendermintEngine, Timeouts};
use pyralog_consensus::{Engine, ValidatorSet};
use pyralog_crypto::{ClusterId, Keypair, PublicKey};
use pyralog_p2p::libp2p::Multiaddr;
use pyralog_p2p::{Overlay, P2pConfig, P2pHandle};
use tokio::sync::{mpsc, watch};

use crate::service::cometbft;
use crate::service::links::ClusterNode;
use crate::service::xcluster;
use pyralog_config::{BasePath, ChainSection};

/// What the RPC layer and the background tasks share about the chain.
pub(crate) struct ChainService {
    /// The chain id.
    pub(crate) chain_id: String,
    /// The genesis validators.
    pub(crate) genesis_set: ValidatorSet,
    /// Under Proof-of-Work, `k`: a header commits to the state `k` blocks below its parent.
    pub(crate) confirmations: Option<u64>,
    /// Behind CometBFT, its RPC (signed headers for light clients); `None` on native engines.
    pub(crate) cometbft_rpc: Option<String>,
    /// Committed blocks (read side).
    pub(crate) blocks: BlockStore,
    /// The chain state (read side).
    pub(crate) state: StateStore,
    /// A read-only app over the state, for `check_tx` at submission.
    checker: ChainApp,
    /// The driver's progress.
    pub(crate) progress: watch::Receiver<Progress>,
    /// Into the mempool.
    pub(crate) txs: mpsc::Sender<Vec<u8>>,
    /// Into the mempool, with its answer (full, refused, queued).
    pub(crate) submitter: Submitter,
    /// The overlay.
    pub(crate) p2p: P2pHandle,

    /// This node's key (its account, validator and peer identity).
    pub(crate) key: Keypair,
}

/// The running chain: the service, and what stops it.
pub(crate) struct ChainRuntime {
    /// Shared with RPC and tasks.
    pub(crate) service: Arc<ChainService>,
    _overlay: Overlay,
    stop: watch::Sender<bool>,
    consensus: Consensus,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What decides the blocks: this node's driver, or CometBFT beside it.
enum Consensus {
    Driver(tokio::task::JoinHandle<Result<(), DriverError>>),
    CometBft(cometbft::CometSide),
}

fn multiaddrs(list: &[String]) -> anyhow::Result<Vec<Multiaddr>> {
    list.iter().map(|a| a.parse().with_context(|| format!("{a:?} is not a multiaddr"))).collect()
}

impl ChainRuntime {
    /// Starts the chain for this node: overlay, driver, query handler (the node adds anchoring
    /// with [`ChainRuntime::spawn`]).
    pub(crate) async fn start(
        base: &BasePath,
        section: &ChainSection,
        key: &Keypair,
        cluster: Arc<ClusterNode>,
    ) -> anyhow::Result<ChainRuntime> {
        let genesis = GenesisFile::load(&base.genesis(section))?;
        let genesis_set = genesis.validator_set()?;
        let mut p2p = P2pConfig::new(genesis.chain_id.clone(), multiaddrs(&section.p2p_listen)?);
        p2p.bootstrap = multiaddrs(&section.bootstrap)?;
        p2p.validators = genesis_set.validators().iter().map(|v| v.key).collect();
        let work_rules = genesis.pow_rules()?;
        // Whoever mines may publish a block; the engine reports bad seals.
        p2p.open_consensus = work_rules.is_some();
        let (overlay, inbox) = Overlay::start(key, p2p).await.context("cannot start the overlay")?;
        let dir = base.data().join("chain");
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let blocks = BlockStore::open(&dir.join("blocks")).context("chain block store")?;
        let state = StateStore::open(&dir.join("state")).context("chain state store")?;
        let engine_kind = genesis.consensus.engine();
        let app = ChainApp::new(genesis.chain_id.clone(), state.clone(), key.public())
            .with_engine(engine_kind)
            .with_work_rules(work_rules.as_ref());
        let checker = ChainApp::new(genesis.chain_id.clone(), state.clone(), key.public())
            .with_engine(engine_kind)
            .with_work_rules(work_rules.as_ref());
        let (stop, stopped) = watch::channel(false);
        let (progress, txs, submitter, consensus) = if engine_kind == Engine::CometBft {
            // CometBFT decides, stores and signs the blocks; the overlay still serves other
            // clusters' proof queries.
            drop(inbox.events);
            let side = cometbft::start(app, section)?;
            (side.progress.clone(), side.txs.clone(), side.submitter.clone(), Consensus::CometBft(side))
        } else {
            let driver = start_driver(
                &genesis,
                genesis_set.clone(),
                section,
                key,
                app,
                work_rules,
                &overlay,
                &blocks,
                inbox.events,
            )?;
            (
                driver.progress(),
                driver.tx_sender(),
                driver.submitter(),
                Consensus::Driver(tokio::spawn(driver.run(stopped))),
            )
        };
        let service = Arc::new(ChainService {
            chain_id: genesis.chain_id.clone(),
            genesis_set,
            confirmations: work_rules.map(|rules| rules.confirmations),
            cometbft_rpc: (engine_kind == Engine::CometBft).then(|| section.cometbft_rpc.clone()),
            blocks,
            state,
            checker,
            progress,
            txs,
            submitter,
            p2p: overlay.handle.clone(),

            key: key.clone(),
        });
        let tasks = vec![tokio::spawn(xcluster::serve_queries(cluster.clone(), inbox.queries))];
        // Checkpoint gossip is not used yet: anchoring goes through transactions.
        drop(inbox.checkpoints);
        tracing::info!(chain = %genesis.chain_id, peer = %overlay.handle.peer_id(), "chain started");
        Ok(ChainRuntime { service, _overlay: overlay, stop, consensus, tasks })
    }

    /// Runs `task` until the chain stops.
    pub(crate) fn spawn(&mut self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.push(tokio::spawn(task));
    }

    /// Stops the driver (it finishes the step it is in) and the tasks.
    pub(crate) async fn shutdown(self) {
        let _ = self.stop.send(true);
        match self.consensus {
            Consensus::Driver(driver) => match driver.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::error!(%err, "chain driver failed"),
                Err(err) => tracing::error!(%err, "chain driver panicked"),
            },
            Consensus::CometBft(side) => {
                side.forwarder.abort();
                // Joins the connection threads: the app's state is closed when this returns.
                tokio::task::spawn_blocking(move || side.server.shutdown()).await.ok();
            }
        }
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
    }
}

/// This node's consensus driver for the genesis file's engine (Tendermint, PBFT or
/// Proof-of-Work with its miner threads).
#[allow(clippy::too_many_arguments)]
fn start_driver(
    genesis: &GenesisFile,
    validators: ValidatorSet,
    section: &ChainSection,
    key: &Keypair,
    app: ChainApp,
    work_rules: Option<pyralog_consensus::pow::PowRules>,
    overlay: &Overlay,
    blocks: &BlockStore,
    events: mpsc::Receiver<NetEvent>,
) -> anyhow::Result<Driver<Box<dyn ConsensusCore + Send>, ChainApp, P2pHandle>> {
    let engine_kind = genesis.consensus.engine();
    let propose = Duration::from_millis(section.propose_timeout_ms);
    let timeouts = Timeouts {
        propose,
        prevote: propose / 2,
        precommit: propose / 2,
        rebroadcast: propose * 2,
        increase: propose / 2,
    };
    // One arm per engine the genesis file can name.
    let engine: Box<dyn ConsensusCore + Send> = match engine_kind {
        Engine::Tendermint => {
            Box::new(TendermintEngine::new(genesis.chain_id.clone(), key.clone(), timeouts))
        }
        Engine::Pbft => {
            let view = genesis.consensus.view_timeout();
            // Lost messages are re-sent before the view would change over them.
            let timeouts = PbftTimeouts { view, rebroadcast: view / 2 };
            Box::new(PbftEngine::new(genesis.chain_id.clone(), key.clone(), timeouts))
        }
        Engine::Pow => {
            let rules = work_rules.context("a pow chain without work rules")?;
            let engine = PowEngine::new(rules);
            Box::new(if section.mine_threads > 0 { engine.mining(key.public()) } else { engine })
        }
        other => anyhow::bail!("this build of pyralog cannot run the {other} engine the genesis names"),
    };
    let config = DriverConfig {
        chain_id: genesis.chain_id.clone(),
        validators,
        sync_interval: Duration::from_millis(500),
        max_payload_bytes: 4 << 20,
        block_interval: Duration::from_millis(section.block_interval_ms),
        max_mempool_txs: 10_000,
        app_state: genesis.app_state(),
    };
    let mut driver = Driver::new(engine, app, overlay.handle.clone(), blocks.clone(), config, events);
    if engine_kind == Engine::Pow && section.mine_threads > 0 {
        tracing::info!(threads = section.mine_threads, "mining");
        let miner = ThreadMiner::new(section.mine_threads, driver.mined_sender());
        driver = driver.with_miner(miner);
    }
    Ok(driver)
}

impl ChainService {
    /// The highest block with a commit certificate.
    pub(crate) fn finalized_height(&self) -> u64 {
        self.progress.borrow().height
    }

    /// The block at `height`, with its header.
    pub(crate) fn block(&self, height: u64) -> anyhow::Result<Option<(Header, StoredBlock)>> {
        let Some(block) = self.blocks.block(height)? else { return Ok(None) };
        let first = block.txs.first().context("a block without a header")?;
        let header = Header::decode(first).map_err(anyhow::Error::msg)?;
        Ok(Some((header, block)))
    }

    /// The validators deciding `height`.
    pub(crate) fn validators_at(&self, height: u64) -> anyhow::Result<ValidatorSet> {
        let sets = self.blocks.validator_sets()?;
        Ok(sets.range(..=height).next_back().map_or_else(|| self.genesis_set.clone(), |(_, set)| set.clone()))
    }

    /// The app's verdict on a transaction (signature, chain, nonce window, fee).
    pub(crate) fn check_tx(&self, tx: &[u8]) -> anyhow::Result<Result<(), String>> {
        Ok(self.checker.check_tx(tx)?)
    }

    /// A registered cluster, in the latest state.
    pub(crate) fn cluster_record(&self, cluster: &ClusterId) -> anyhow::Result<Option<ClusterRecord>> {
        let Some(version) = self.state.latest_version()? else { return Ok(None) };
        Ok(read_state(&self.state, &cluster_key(cluster), version)?)
    }

    /// Members of `cluster` to ask for its data (its registration's keys).
    pub(crate) fn members_of(&self, cluster: &ClusterId) -> anyhow::Result<Vec<PublicKey>> {
        Ok(self.cluster_record(cluster)?.map(|record| record.members).unwrap_or_default())
    }
}
