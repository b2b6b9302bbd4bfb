//! Validators running the driver (Tendermint unless told otherwise) over the overlay, on
//! loopback TCP and QUIC.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pyralog_consensus::Engine;
use pyralog_consensus::app::ReplicatedApp;
use pyralog_consensus::core::ConsensusCore;
use pyralog_consensus::driver::{
    BlockStore, ConsensusNet, Driver, DriverConfig, FetchedBlocks, NetError, Progress, ThreadMiner,
};
use pyralog_consensus::nakamoto::PowEngine;
use pyralog_consensus::pbft::{PbftEngine, PbftTimeouts};
use pyralog_consensus::pow::PowRules;
use pyralog_consensus::tendermint::{TendermintEngine, Timeouts};
use pyralog_consensus::testkit::{CountingApp, machine_pow_rules};
use pyralog_consensus::vote::Evidence;
use pyralog_consensus::{Validator, ValidatorSet};
use pyralog_crypto::Keypair;
use pyralog_crypto::PublicKey;
use pyralog_p2p::libp2p::Multiaddr;
use pyralog_p2p::libp2p::multiaddr::Protocol;
use pyralog_p2p::{Overlay, P2pConfig, P2pHandle};
use tokio::sync::{mpsc, watch};

/// The chain of these tests.
pub(crate) const CHAIN: &str = "pyralog-p2p-test";

/// A validator process in all but name: its overlay and its driver.
pub(crate) struct Validating {
    /// Its overlay (dropped on kill: its connections close).
    pub(crate) overlay: Overlay,
    /// Stops the driver.
    pub(crate) stop: watch::Sender<bool>,
    /// The driver task.
    pub(crate) task: tokio::task::JoinHandle<()>,
    /// Commit progress.
    pub(crate) progress: watch::Receiver<Progress>,
    /// Where to submit transactions.
    pub(crate) txs: mpsc::Sender<Vec<u8>>,
    /// Its block store (a second handle: read while it runs).
    pub(crate) store: BlockStore,
}

impl Validating {
    /// The overlay handle.
    pub(crate) fn handle(&self) -> &P2pHandle {
        &self.overlay.handle
    }

    /// Kills it: the driver task is dropped mid-flight and the overlay with it.
    pub(crate) async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
        drop(self.overlay);
    }

    /// Stops it cleanly.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.expect("the driver runs until stopped");
    }
}

/// `n` fresh validator keys and their equal-power set.
pub(crate) fn validators(n: usize) -> (Vec<Keypair>, ValidatorSet) {
    let keys: Vec<Keypair> = (0..n).map(|_| Keypair::generate()).collect();
    let set = ValidatorSet::new(keys.iter().map(|k| Validator { key: k.public(), power: 1 })).unwrap();
    (keys, set)
}

/// Loopback TCP and QUIC on ports the OS picks.
pub(crate) fn loopback() -> Vec<Multiaddr> {
    vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap(), "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()]
}

/// `handle`'s address on `transport` ("tcp" or "quic-v1"), with its `/p2p/` suffix.
pub(crate) async fn dial_addr(handle: &P2pHandle, transport: &str) -> Multiaddr {
    let status = handle.status().await.unwrap();
    let addr = status
        .listen_addrs
        .into_iter()
        .find(|a| a.iter().any(|p| p.tag() == transport))
        .unwrap_or_else(|| panic!("no {transport} listener"));
    addr.with(Protocol::P2p(handle.peer_id()))
}

/// Engine timeouts for loopback: short, so a missing validator costs little.
pub(crate) fn timeouts() -> Timeouts {
    Timeouts {
        propose: Duration::from_millis(500),
        prevote: Duration::from_millis(200),
        precommit: Duration::from_millis(200),
        rebroadcast: Duration::from_millis(1000),
        increase: Duration::from_millis(200),
    }
}

/// Driver settings for `validators`, with blocks `block_interval` apart.
pub(crate) fn driver_config(validators: &ValidatorSet, block_interval: Duration) -> DriverConfig {
    DriverConfig {
        chain_id: CHAIN.into(),
        validators: validators.clone(),
        sync_interval: Duration::from_millis(300),
        max_payload_bytes: 4 << 20,
        block_interval,
        app_state: Vec::new(),
        max_mempool_txs: 100_000,
    }
}

/// Starts validator `key` on the store in `dir`, bootstrapping from `bootstrap`.
pub(crate) async fn start(
    key: &Keypair,
    dir: &Path,
    config: DriverConfig,
    bootstrap: Vec<Multiaddr>,
) -> Validating {
    start_with_app(key, dir, config, bootstrap, CountingApp::default()).await
}

/// [`start`] with another app.
pub(crate) async fn start_with_app<A: ReplicatedApp + Send + 'static>(
    key: &Keypair,
    dir: &Path,
    config: DriverConfig,
    bootstrap: Vec<Multiaddr>,
    app: A,
) -> Validating {
    start_counted(Engine::Tendermint, key, dir, config, bootstrap, app, Sent::default()).await
}

/// PBFT's timeouts for loopback.
pub(crate) fn pbft_timeouts() -> PbftTimeouts {
    PbftTimeouts { view: Duration::from_millis(1000), rebroadcast: Duration::from_millis(500) }
}

/// Consensus messages and bytes validators handed the network: a broadcast counts once per
/// other validator (what reaches them, before gossip's own duplicates), a direct send once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sent {
    messages: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl Sent {
    /// Messages and bytes so far.
    pub(crate) fn totals(&self) -> (u64, u64) {
        (self.messages.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed))
    }

    fn add(&self, recipients: u64, bytes: usize) {
        self.messages.fetch_add(recipients, Ordering::Relaxed);
        self.bytes.fetch_add(recipients * bytes as u64, Ordering::Relaxed);
    }
}

/// The overlay handle, counting what the engine sends.
struct CountingNet {
    inner: P2pHandle,
    sent: Sent,
    others: u64,
}

impl ConsensusNet for CountingNet {
    fn broadcast(&self, bytes: Vec<u8>) {
        self.sent.add(self.others, bytes.len());
        self.inner.broadcast(bytes);
    }

    fn send_to(&self, to: PublicKey, bytes: Vec<u8>) {
        self.sent.add(1, bytes.len());
        self.inner.send_to(to, bytes);
    }

    fn fetch_blocks(
        &self,
        from_height: u64,
        max: u32,
    ) -> impl Future<Output = Result<FetchedBlocks, NetError>> + Send + 'static {
        self.inner.fetch_blocks(from_height, max)
    }

    fn gossip_tx(&self, tx: Vec<u8>) {
        self.inner.gossip_tx(tx);
    }

    fn gossip_evidence(&self, evidence: &Evidence) {
        self.inner.gossip_evidence(evidence);
    }

    fn report(&self, peer: PublicKey, reason: String) {
        self.inner.report(peer, reason);
    }

    fn set_validators(&self, keys: Vec<PublicKey>) {
        self.inner.set_validators(keys);
    }
}

/// The work rules of a network of Proof-of-Work validators started together: one genesis (the
/// time the first of them asks; a network started 20 s later gets its own), a first target
/// `miners` one-thread miners on two cores meet in about a second, `k = 3`.
pub(crate) fn pow_rules(miners: u64) -> PowRules {
    static RULES: std::sync::Mutex<Option<(std::time::Instant, PowRules)>> = std::sync::Mutex::new(None);
    let mut rules = RULES.lock().unwrap_or_else(|p| p.into_inner());
    match *rules {
        Some((made, current)) if made.elapsed() < Duration::from_secs(20) => current,
        _ => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
            let current = machine_pow_rules(now as u64, miners, 2, 3);
            *rules = Some((std::time::Instant::now(), current));
            current
        }
    }
}

/// A validator of `engine` running `app`, adding what its engine sends to `sent`.
pub(crate) async fn start_counted<A: ReplicatedApp + Send + 'static>(
    engine: Engine,
    key: &Keypair,
    dir: &Path,
    config: DriverConfig,
    bootstrap: Vec<Multiaddr>,
    app: A,
    sent: Sent,
) -> Validating {
    let mut p2p = P2pConfig::new(CHAIN, loopback());
    p2p.bootstrap = bootstrap;
    p2p.validators = config.validators.validators().iter().map(|v| v.key).collect();
    let mining = engine == Engine::Pow;
    p2p.open_consensus = mining;
    let (overlay, inbox) = Overlay::start(key, p2p).await.expect("the overlay starts");
    let store = BlockStore::open(dir).expect("the block store opens");
    let reader = store.clone();
    let engine: Box<dyn ConsensusCore + Send> = match engine {
        Engine::Pbft => Box::new(PbftEngine::new(CHAIN, key.clone(), pbft_timeouts())),
        Engine::Pow => Box::new(
            PowEngine::new(pow_rules(config.validators.validators().len() as u64)).mining(key.public()),
        ),
        _ => Box::new(TendermintEngine::new(CHAIN, key.clone(), timeouts())),
    };
    let others = config.validators.validators().len() as u64 - 1;
    let net = CountingNet { inner: overlay.handle.clone(), sent, others };
    let mut driver = Driver::new(engine, app, net, store, config, inbox.events);
    if mining {
        let miner = ThreadMiner::new(1, driver.mined_sender());
        driver = driver.with_miner(miner);
    }
    let progress = driver.progress();
    let txs = driver.tx_sender();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(async move { driver.run(stopped).await.expect("the driver runs until stopped") });
    Validating { overlay, stop, task, progress, txs, store: reader }
}

/// Starts one validator per key: the first listens, the others bootstrap from it (half over
/// TCP, half over QUIC).
pub(crate) async fn start_network(
    keys: &[Keypair],
    dirs: &[tempfile::TempDir],
    config: &DriverConfig,
) -> Vec<Validating> {
    let first = start(&keys[0], dirs[0].path(), config.clone(), Vec::new()).await;
    let tcp = dial_addr(first.handle(), "tcp").await;
    let quic = dial_addr(first.handle(), "quic-v1").await;
    let mut nodes = vec![first];
    for (i, (key, dir)) in keys.iter().zip(dirs).enumerate().skip(1) {
        let bootstrap = if i % 2 == 1 { tcp.clone() } else { quic.clone() };
        nodes.push(start(key, dir.path(), config.clone(), vec![bootstrap]).await);
    }
    nodes
}

/// Waits (generously) until `progress` reaches `height`.
pub(crate) async fn wait_for_height(progress: &mut watch::Receiver<Progress>, height: u64) -> Progress {
    let reached = tokio::time::timeout(Duration::from_secs(120), progress.wait_for(|p| p.height >= height))
        .await
        .map(|result| result.map(|p| *p));
    match reached {
        Ok(progress) => progress.expect("the driver is running"),
        Err(_) => panic!("height {height} not reached; at {:?}", *progress.borrow()),
    }
}
