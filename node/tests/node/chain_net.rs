//! The chain app replicated by four Tendermint validators over real libp2p on loopback: every
//! block opens with a header the others checked, headers link to their parents and carry the
//! previous state root, certificates verify for the header's block id, and transfers submitted
//! to one validator land in every validator's state.

use std::time::Duration;

use pyralog_chain::app::ChainApp;
use pyralog_chain::block::Header;
use pyralog_chain::state::StateStore;
use pyralog_chain::tx::{Action, SignedTx, Tx};
use pyralog_chain::values::{Account, Genesis, account_key};
use pyralog_consensus::driver::{BlockStore, ChainStore, Driver, DriverConfig, Progress};
use pyralog_consensus::tendermint::{TendermintEngine, Timeouts};
use pyralog_consensus::{Engine, Validator, ValidatorSet};
use pyralog_crypto::Keypair;
use pyralog_p2p::libp2p::Multiaddr;
use pyralog_p2p::libp2p::multiaddr::Protocol;
use pyralog_p2p::{Overlay, P2pConfig};
use tokio::sync::{mpsc, watch};

const CHAIN: &str = "pyralog-chain-net-test";

struct Validating {
    _overlay: Overlay,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    progress: watch::Receiver<Progress>,
    txs: mpsc::Sender<Vec<u8>>,
}

async fn start(
    key: &Keypair,
    dir: &std::path::Path,
    config: DriverConfig,
    bootstrap: Vec<Multiaddr>,
) -> (Validating, Multiaddr) {
    let mut p2p = P2pConfig::new(CHAIN, vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
    p2p.bootstrap = bootstrap;
    p2p.validators = config.validators.validators().iter().map(|v| v.key).collect();
    let (overlay, inbox) = Overlay::start(key, p2p).await.unwrap();
    let status = overlay.handle.status().await.unwrap();
    let addr = status.listen_addrs[0].clone().with(Protocol::P2p(overlay.handle.peer_id()));
    let app = ChainApp::new(CHAIN, StateStore::open(&dir.join("state")).unwrap(), key.public());
    let timeouts = Timeouts {
        propose: Duration::from_millis(500),
        prevote: Duration::from_millis(200),
        precommit: Duration::from_millis(200),
        rebroadcast: Duration::from_millis(1000),
        increase: Duration::from_millis(200),
    };
    let engine = TendermintEngine::new(CHAIN, key.clone(), timeouts);
    let store = BlockStore::open(&dir.join("blocks")).unwrap();
    let driver = Driver::new(engine, app, overlay.handle.clone(), store, config, inbox.events);
    let (progress, txs) = (driver.progress(), driver.tx_sender());
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(async move { driver.run(stopped).await.expect("the driver runs until stopped") });
    (Validating { _overlay: overlay, stop, task, progress, txs }, addr)
}

async fn wait_for_height(progress: &mut watch::Receiver<Progress>, height: u64) {
    let reached =
        tokio::time::timeout(Duration::from_secs(120), progress.wait_for(|p| p.height >= height)).await;
    assert!(matches!(reached, Ok(Ok(_))), "height {height} not reached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_run_the_chain_with_linked_headers_and_agreeing_state() {
    let keys: Vec<Keypair> = (0..4).map(|_| Keypair::generate()).collect();
    let set = ValidatorSet::new(keys.iter().map(|k| Validator { key: k.public(), power: 1 })).unwrap();
    let (alice, bob) = (Keypair::generate(), Keypair::generate());
    let genesis = Genesis { accounts: vec![(alice.public(), 1_000)], ..Genesis::default() };
    let config = DriverConfig {
        chain_id: CHAIN.into(),
        validators: set.clone(),
        sync_interval: Duration::from_millis(300),
        max_payload_bytes: 1 << 20,
        block_interval: Duration::from_millis(100),
        max_mempool_txs: 10_000,
        app_state: postcard::to_allocvec(&genesis).unwrap(),
    };
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let (first, bootstrap) = start(&keys[0], dirs[0].path(), config.clone(), Vec::new()).await;
    let mut nodes = vec![first];
    for (key, dir) in keys.iter().zip(&dirs).skip(1) {
        nodes.push(start(key, dir.path(), config.clone(), vec![bootstrap.clone()]).await.0);
    }
    for node in &mut nodes {
        wait_for_height(&mut node.progress, 3).await;
    }
    // Ten transfers, consecutive nonces, all through validator 2.
    for nonce in 0..10 {
        let tx = Tx {
            chain_id: CHAIN.into(),
            sender: alice.public(),
            nonce,
            fee: 1,
            action: Action::Transfer { to: bob.public(), amount: 7 },
        };
        nodes[2].txs.send(SignedTx::sign(tx, &alice).encode()).await.unwrap();
    }
    let target = nodes[2].progress.borrow().height + 8;
    for node in &mut nodes {
        wait_for_height(&mut node.progress, target).await;
    }
    for node in &nodes {
        let _ = node.stop.send(true);
    }
    for node in nodes {
        node.task.await.unwrap();
    }

    let states: Vec<StateStore> =
        dirs.iter().map(|d| StateStore::open(&d.path().join("state")).unwrap()).collect();
    let common = states.iter().map(|s| s.latest_version().unwrap().unwrap()).min().unwrap();
    assert!(common >= target);
    let roots: Vec<[u8; 32]> = states.iter().map(|s| s.root(common).unwrap()).collect();
    assert!(roots.iter().all(|r| *r == roots[0]), "validators disagree on the state at {common}");
    let account = |key: &Keypair| -> Account {
        states[0]
            .get(&account_key(&key.public()), common)
            .unwrap()
            .map(|v| postcard::from_bytes(&v).unwrap())
            .unwrap()
    };
    assert_eq!(account(&bob).balance, 70);
    assert_eq!(account(&alice), Account { balance: 1_000 - 70 - 10, nonce: 10 });

    // Headers: one per block, linked, carrying the state root before their block, and certified.
    let blocks = BlockStore::open(&dirs[0].path().join("blocks")).unwrap();
    let mut parent = pyralog_crypto::Digest([0; 32]);
    for height in 1..=common {
        let block = blocks.block(height).unwrap().unwrap();
        let header = Header::decode(&block.txs[0]).unwrap();
        assert_eq!((header.height, header.parent, header.block_id()), (height, parent, block.block));
        assert_eq!(header.state_root.0, states[0].root(height - 1).unwrap(), "height {height}");
        assert_eq!(header.tx_count as usize, block.txs.len() - 1);
        assert!(set.power_of(&header.proposer).is_some(), "proposed by a validator");
        block.proof.verify(Engine::Tendermint, CHAIN, height, &header.block_id(), &set).unwrap();
        parent = block.block;
    }
}
