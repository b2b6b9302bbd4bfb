//! Four drivers, each with a Tendermint engine, a real RocksDB store and real timers, over an
//! in-memory network (the libp2p network is `p2p/`'s): they commit blocks whose certificates
//! verify; one is killed and the rest go on; restarted from its store it catches up by block
//! sync and commits again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyralog_consensus::driver::{
    Admission, BlockStore, ChainStore, ConsensusNet, Driver, DriverConfig, DriverError, FetchedBlocks,
    MemoryStore, NetError, NetEvent, Progress,
};
use pyralog_consensus::tendermint::{TendermintEngine, Timeouts};
use pyralog_consensus::testkit::{CountingApp, assert_same_certified_blocks};
use pyralog_consensus::{Engine, Validator, ValidatorSet};
use pyralog_crypto::{Keypair, PublicKey};
use tokio::sync::{mpsc, oneshot, watch};

const CHAIN: &str = "pyralog-driver-test";
const DEADLINE: Duration = Duration::from_secs(60);

/// Peers by key; a node that is down has no entry.
type Peers = Arc<Mutex<HashMap<PublicKey, mpsc::Sender<NetEvent>>>>;

/// Who sent consensus messages, one entry per message.
type Senders = Arc<Mutex<Vec<PublicKey>>>;

#[derive(Clone)]
struct MemNet {
    me: PublicKey,
    peers: Peers,
    sent: Senders,
}

impl ConsensusNet for MemNet {
    fn broadcast(&self, bytes: Vec<u8>) {
        self.sent.lock().unwrap().push(self.me);
        for (key, peer) in self.peers.lock().unwrap().iter() {
            if *key != self.me {
                let _ = peer.try_send(NetEvent::Message { from: self.me, bytes: bytes.clone() });
            }
        }
    }

    fn send_to(&self, to: PublicKey, bytes: Vec<u8>) {
        self.sent.lock().unwrap().push(self.me);
        if let Some(peer) = self.peers.lock().unwrap().get(&to) {
            let _ = peer.try_send(NetEvent::Message { from: self.me, bytes });
        }
    }

    fn fetch_blocks(
        &self,
        from_height: u64,
        max: u32,
    ) -> impl std::future::Future<Output = Result<FetchedBlocks, NetError>> + Send + 'static {
        let others: Vec<(PublicKey, mpsc::Sender<NetEvent>)> = self
            .peers
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| **k != self.me)
            .map(|(k, p)| (*k, p.clone()))
            .collect();
        async move {
            // Ask each peer in turn; the first with blocks answers.
            for (from, peer) in others {
                let (reply, answer) = oneshot::channel();
                if peer.send(NetEvent::BlocksRequested { from_height, max, reply }).await.is_err() {
                    continue;
                }
                if let Ok(Ok(blocks)) = tokio::time::timeout(Duration::from_secs(2), answer).await
                    && !blocks.is_empty()
                {
                    return Ok(FetchedBlocks { from, blocks });
                }
            }
            Err(NetError("no peer has newer blocks".into()))
        }
    }

    fn gossip_tx(&self, tx: Vec<u8>) {
        for (key, peer) in self.peers.lock().unwrap().iter() {
            if *key != self.me {
                let _ = peer.try_send(NetEvent::Transaction(tx.clone()));
            }
        }
    }

    fn gossip_evidence(&self, evidence: &pyralog_consensus::vote::Evidence) {
        for (key, peer) in self.peers.lock().unwrap().iter() {
            if *key != self.me {
                let evidence = Box::new(evidence.clone());
                let _ = peer.try_send(NetEvent::Evidence { from: self.me, evidence });
            }
        }
    }

    fn report(&self, peer: PublicKey, reason: String) {
        panic!("an honest peer {peer} was reported: {reason}");
    }

    fn set_validators(&self, _: Vec<PublicKey>) {
        // Everyone hears everyone on this network; the engine checks who may vote.
    }
}

struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    progress: watch::Receiver<Progress>,
    txs: mpsc::Sender<Vec<u8>>,
}

fn config(validators: &ValidatorSet) -> DriverConfig {
    DriverConfig {
        chain_id: CHAIN.into(),
        validators: validators.clone(),
        sync_interval: Duration::from_millis(200),
        max_payload_bytes: 1 << 20,
        block_interval: Duration::ZERO,
        app_state: Vec::new(),
        max_mempool_txs: 1000,
    }
}

fn timeouts() -> Timeouts {
    Timeouts {
        propose: Duration::from_millis(300),
        prevote: Duration::from_millis(100),
        precommit: Duration::from_millis(100),
        rebroadcast: Duration::from_millis(500),
        increase: Duration::from_millis(100),
    }
}

/// Starts node `key` on the store in `dir`, with an app that replays from the store.
fn start(key: &Keypair, dir: &std::path::Path, validators: &ValidatorSet, peers: &Peers) -> Running {
    start_with(key, dir, config(validators), peers)
}

fn start_with(key: &Keypair, dir: &std::path::Path, config: DriverConfig, peers: &Peers) -> Running {
    start_app(key, dir, config, peers, CountingApp::default())
}

fn start_app(
    key: &Keypair,
    dir: &std::path::Path,
    config: DriverConfig,
    peers: &Peers,
    app: CountingApp,
) -> Running {
    start_on(key, dir, config, peers, app, Senders::default())
}

fn start_on(
    key: &Keypair,
    dir: &std::path::Path,
    config: DriverConfig,
    peers: &Peers,
    app: CountingApp,
    sent: Senders,
) -> Running {
    let (sender, inbound) = mpsc::channel(4096);
    peers.lock().unwrap().insert(key.public(), sender);
    let net = MemNet { me: key.public(), peers: peers.clone(), sent };
    let store = BlockStore::open(dir).unwrap();
    let engine = TendermintEngine::new(CHAIN, key.clone(), timeouts());
    let driver = Driver::new(engine, app, net, store, config, inbound);
    let progress = driver.progress();
    let txs = driver.tx_sender();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(async move { driver.run(stopped).await.expect("the driver runs until stopped") });
    Running { stop, task, progress, txs }
}

async fn wait_for_height(progress: &mut watch::Receiver<Progress>, height: u64) -> Progress {
    tokio::time::timeout(DEADLINE, progress.wait_for(|p| p.height >= height))
        .await
        .unwrap_or_else(|_| panic!("height {height} not reached"))
        .map(|p| *p)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_drivers_commit_and_a_restarted_one_catches_up_by_sync() {
    let keys: Vec<Keypair> = (0..4).map(|_| Keypair::generate()).collect();
    let validators = ValidatorSet::new(keys.iter().map(|k| Validator { key: k.public(), power: 1 })).unwrap();
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let peers: Peers = Arc::default();
    let mut nodes: Vec<Running> =
        keys.iter().zip(&dirs).map(|(k, d)| start(k, d.path(), &validators, &peers)).collect();
    for node in &mut nodes {
        wait_for_height(&mut node.progress, 5).await;
    }

    // Kill node 3 (its task is dropped mid-flight; the store closes with it).
    peers.lock().unwrap().remove(&keys[3].public());
    let killed = nodes.pop().unwrap();
    killed.task.abort();
    let _ = killed.task.await;
    let before = nodes[0].progress.borrow().height;
    for node in &mut nodes {
        wait_for_height(&mut node.progress, before + 5).await;
    }

    // Restart it from its store: it syncs what it missed, then decides with the others again.
    let mut restarted = start(&keys[3], dirs[3].path(), &validators, &peers);
    let target = nodes[0].progress.borrow().height + 3;
    let progress = wait_for_height(&mut restarted.progress, target).await;
    assert!(progress.synced > 0, "the restarted node caught up by sync: {progress:?}");

    // Every store holds the same blocks, each with a verifying certificate.
    for node in &mut nodes {
        wait_for_height(&mut node.progress, target).await;
    }
    for node in nodes.iter().chain([&restarted]) {
        let _ = node.stop.send(true);
    }
    for node in nodes.into_iter().chain([restarted]) {
        node.task.await.unwrap();
    }
    let stores: Vec<BlockStore> = dirs.iter().map(|d| BlockStore::open(d.path()).unwrap()).collect();
    assert_same_certified_blocks(&stores, Engine::Tendermint, CHAIN, &validators, target);
}

#[test]
fn the_wal_survives_a_reopen_and_prunes_committed_heights() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = BlockStore::open(dir.path()).unwrap();
        store.append_wal(7, b"seven").unwrap();
        store.append_wal(8, b"eight").unwrap();
        store.append_wal(8, b"eight again").unwrap();
        store.prune_wal_below(8).unwrap();
    }
    let store = BlockStore::open(dir.path()).unwrap();
    assert_eq!(store.wal_from(0).unwrap(), vec![b"eight".to_vec(), b"eight again".to_vec()]);
    assert!(store.wal_from(9).unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_are_paced_and_submitted_transactions_land() {
    let keys: Vec<Keypair> = (0..4).map(|_| Keypair::generate()).collect();
    let validators = ValidatorSet::new(keys.iter().map(|k| Validator { key: k.public(), power: 1 })).unwrap();
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let peers: Peers = Arc::default();
    let interval = Duration::from_millis(300);
    let paced = DriverConfig { block_interval: interval, ..config(&validators) };
    let mut nodes: Vec<Running> =
        keys.iter().zip(&dirs).map(|(k, d)| start_with(k, d.path(), paced.clone(), &peers)).collect();
    // Submitted to one validator only: gossip carries them to whoever proposes.
    for tx in ["tx-1", "tx-2", "bad tx", "tx-3"] {
        nodes[3].txs.send(tx.as_bytes().to_vec()).await.unwrap();
    }
    let first = wait_for_height(&mut nodes[0].progress, 1).await.height;
    let started = tokio::time::Instant::now();
    wait_for_height(&mut nodes[0].progress, first + 5).await;
    // Each height starts an interval after the previous commit; 5 heights take 5 intervals (the
    // bound leaves 2 of them for scheduling noise).
    assert!(started.elapsed() >= interval * 3, "{:?}", started.elapsed());
    for node in &nodes {
        let _ = node.stop.send(true);
    }
    for node in nodes {
        node.task.await.unwrap();
    }
    let store = BlockStore::open(dirs[0].path()).unwrap();
    let committed: Vec<Vec<u8>> =
        (1..=store.last_height().unwrap()).flat_map(|h| store.block(h).unwrap().unwrap().txs).collect();
    for tx in ["tx-1", "tx-2", "tx-3"] {
        assert!(committed.iter().any(|t| t == tx.as_bytes()), "{tx} not committed");
    }
    assert!(!committed.iter().any(|t| t.starts_with(b"bad")), "a refused transaction was committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_added_by_the_app_votes_two_heights_later() {
    // Four genesis validators and a fifth node that only follows; the app adds it at height 3.
    let keys: Vec<Keypair> = (0..5).map(|_| Keypair::generate()).collect();
    let genesis =
        ValidatorSet::new(keys[..4].iter().map(|k| Validator { key: k.public(), power: 1 })).unwrap();
    let newcomer = Validator { key: keys[4].public(), power: 1 };
    let dirs: Vec<tempfile::TempDir> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let peers: Peers = Arc::default();
    let app = || CountingApp::default().with_validator_updates(3, vec![newcomer]);
    let mut nodes: Vec<Running> = keys
        .iter()
        .zip(&dirs)
        .map(|(k, d)| start_app(k, d.path(), config(&genesis), &peers, app()))
        .collect();
    for node in &mut nodes {
        wait_for_height(&mut node.progress, 6).await;
    }

    // With five validators a quorum is four: after one of the genesis four is killed, blocks
    // are only decided if the newcomer votes.
    peers.lock().unwrap().remove(&keys[0].public());
    let killed = nodes.remove(0);
    killed.task.abort();
    let _ = killed.task.await;
    let before = nodes[0].progress.borrow().height;
    for node in &mut nodes {
        wait_for_height(&mut node.progress, before + 3).await;
    }
    for node in &nodes {
        let _ = node.stop.send(true);
    }
    for node in nodes {
        node.task.await.unwrap();
    }

    // Heights 1-4 are certified by the genesis set, 5 on by the set with the newcomer, and the
    // change is on disk for a restart.
    let grown = genesis.with_updates(&[newcomer]).unwrap();
    let store = BlockStore::open(dirs[4].path()).unwrap();
    assert_eq!(store.validator_sets().unwrap().into_iter().collect::<Vec<_>>(), vec![(5, grown.clone())]);
    for height in 1..=store.last_height().unwrap() {
        let block = store.block(height).unwrap().unwrap();
        let set = if height < 5 { &genesis } else { &grown };
        block.proof.verify(Engine::Tendermint, CHAIN, height, &block.block, set).unwrap();
    }
}

/// A node whose key is in no validator set follows the chain by block sync and sends no
/// consensus message (its peers would take relayed votes for a stranger's and ban it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_syncs_and_sends_no_consensus_message() {
    let keys: Vec<Keypair> = (0..5).map(|_| Keypair::generate()).collect();
    let genesis =
        ValidatorSet::new(keys[..4].iter().map(|k| Validator { key: k.public(), power: 1 })).unwrap();
    let dirs: Vec<tempfile::TempDir> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let peers: Peers = Arc::default();
    let sent = Senders::default();
    let mut nodes: Vec<Running> = keys
        .iter()
        .zip(&dirs)
        .map(|(k, d)| start_on(k, d.path(), config(&genesis), &peers, CountingApp::default(), sent.clone()))
        .collect();
    for node in &mut nodes {
        wait_for_height(&mut node.progress, 6).await;
    }
    for node in &nodes {
        let _ = node.stop.send(true);
    }
    for node in nodes {
        node.task.await.unwrap();
    }
    let sent = sent.lock().unwrap();
    assert!(sent.iter().any(|k| *k == keys[0].public()), "validators send");
    assert_eq!(
        sent.iter().filter(|k| **k == keys[4].public()).count(),
        0,
        "the follower sent consensus messages"
    );
}

/// A WAL entry the engine cannot read stops the driver at start with an error naming the store
/// (it used to be skipped with a warning: a forgotten vote is how a validator double-signs).
#[test]
fn an_unreadable_wal_entry_stops_the_driver_naming_the_store() {
    let key = Keypair::generate();
    let validators = ValidatorSet::new([Validator { key: key.public(), power: 1 }]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path()).unwrap();
    store.append_wal(1, b"not an entry the engine wrote").unwrap();
    let net = MemNet { me: key.public(), peers: Peers::default(), sent: Senders::default() };
    let engine = TendermintEngine::new(CHAIN, key.clone(), timeouts());
    let (_, inbound) = mpsc::channel(1);
    let mut driver = Driver::new(engine, CountingApp::default(), net, store, config(&validators), inbound);
    match driver.start() {
        Err(DriverError::CorruptWal { location, index, reason }) => {
            assert_eq!(location, dir.path().display().to_string());
            assert_eq!(index, 0);
            assert!(reason.starts_with("not a WAL entry"), "{reason}");
        }
        other => panic!("expected CorruptWal, got {other:?}"),
    }

    // The same on the in-memory store.
    let store = MemoryStore::new();
    store.append_wal(1, &[0xff; 3]).unwrap();
    let net = MemNet { me: key.public(), peers: Peers::default(), sent: Senders::default() };
    let engine = TendermintEngine::new(CHAIN, key, timeouts());
    let (_, inbound) = mpsc::channel(1);
    let mut driver = Driver::new(engine, CountingApp::default(), net, store, config(&validators), inbound);
    match driver.start() {
        Err(DriverError::CorruptWal { location, index: 0, .. }) => assert_eq!(location, "memory"),
        other => panic!("expected CorruptWal, got {other:?}"),
    }
}

/// A submitter learns what became of each transaction: a full mempool says so (it used to drop
/// the transaction while `tx_submit` answered with an id), as do a refusal and a repeat.
#[test]
fn a_full_mempool_refuses_a_submission_and_says_so() {
    let key = Keypair::generate();
    let validators = ValidatorSet::new([Validator { key: key.public(), power: 1 }]).unwrap();
    let net = MemNet { me: key.public(), peers: Peers::default(), sent: Senders::default() };
    let engine = TendermintEngine::new(CHAIN, key, timeouts());
    let (_, inbound) = mpsc::channel(1);
    let config = DriverConfig { max_mempool_txs: 2, ..config(&validators) };
    let mut driver = Driver::new(engine, CountingApp::default(), net, MemoryStore::new(), config, inbound);
    assert_eq!(driver.submit(b"tx-1".to_vec()).unwrap(), Admission::Queued);
    assert_eq!(driver.submit(b"tx-1".to_vec()).unwrap(), Admission::AlreadyKnown);
    assert_eq!(driver.submit(b"bad tx".to_vec()).unwrap(), Admission::Rejected("refused".into()));
    assert_eq!(driver.submit(b"tx-2".to_vec()).unwrap(), Admission::Queued);
    assert_eq!(driver.submit(b"tx-3".to_vec()).unwrap(), Admission::MempoolFull { capacity: 2 });
}

/// A lone validator decides each height inside one step; with no block interval it used to
/// start the next height from inside the commit, recursing through heights until the stack
/// overflowed. The next height now starts at the next wake-up.
#[test]
fn a_lone_validator_without_a_block_interval_decides_height_by_height() {
    let key = Keypair::generate();
    let validators = ValidatorSet::new([Validator { key: key.public(), power: 1 }]).unwrap();
    let net = MemNet { me: key.public(), peers: Peers::default(), sent: Senders::default() };
    let engine = TendermintEngine::new(CHAIN, key, timeouts());
    let (_, inbound) = mpsc::channel(1);
    let store = MemoryStore::new();
    let mut driver =
        Driver::new(engine, CountingApp::default(), net, store.clone(), config(&validators), inbound);
    driver.start().unwrap();
    for height in 1..=5 {
        assert_eq!(store.last_height().unwrap(), height, "one height per step");
        assert!(driver.next_wake().is_some(), "the next height is due");
        driver.wake().unwrap();
    }
}
