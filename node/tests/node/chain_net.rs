//! The chain app replicated by four validators over real libp2p on loopback: every block opens
//! with a header the others checked, headers link to their parents and carry the previous state
//! root, certificates verify for the header's block id, and transfers submitted to one validator
//! land in every validator's state. One scripted workload (transfers, a cluster registration,
//! two anchors, a vote contract deployed, opened and voted in) run through Tendermint, through
//! PBFT and through Proof-of-Work (four miners, final two seals deep) ends in the same chain
//! state, and every validator's state root agrees.

use std::time::Duration;

use pyralog_chain::app::ChainApp;
use pyralog_chain::block::Header;
use pyralog_chain::state::StateStore;
use pyralog_chain::tx::{Action, SignedTx, Tx};
use pyralog_chain::values::{
    Account, Anchor, ContractCode, Genesis, account_key, anchor_key, cluster_key, code_hash, code_key,
    contract_id, contract_storage_key,
};
use pyralog_consensus::core::ConsensusCore;
use pyralog_consensus::driver::{BlockStore, ChainStore, Driver, DriverConfig, Progress, ThreadMiner};
use pyralog_consensus::finality::Trust;
use pyralog_consensus::nakamoto::PowEngine;
use pyralog_consensus::pbft::{PbftEngine, PbftTimeouts};
use pyralog_consensus::pow::PowRules;
use pyralog_consensus::tendermint::{TendermintEngine, Timeouts};
use pyralog_consensus::testkit::machine_pow_rules;
use pyralog_consensus::{Engine, Validator, ValidatorSet};
use pyralog_crypto::merkle::{MemoryNodeStore, MerkleTree};
use pyralog_crypto::quorum::SignatureShare;
use pyralog_crypto::{Checkpoint, ClusterId, Keypair, LogName, QuorumCertificate};
use pyralog_p2p::libp2p::Multiaddr;
use pyralog_p2p::libp2p::multiaddr::Protocol;
use pyralog_p2p::{Overlay, P2pConfig};
use tokio::sync::{mpsc, watch};

pub(crate) const CHAIN: &str = "pyralog-chain-net-test";

pub(crate) struct Validating {
    _overlay: Overlay,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    pub(crate) progress: watch::Receiver<Progress>,
    pub(crate) txs: mpsc::Sender<Vec<u8>>,
    /// The app's state (a second handle on its database).
    state: StateStore,
}

async fn start(
    engine: Engine,
    rules: Option<PowRules>,
    key: &Keypair,
    dir: &std::path::Path,
    config: DriverConfig,
    bootstrap: Vec<Multiaddr>,
) -> (Validating, Multiaddr) {
    let mut p2p = P2pConfig::new(CHAIN, vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
    p2p.bootstrap = bootstrap;
    p2p.validators = config.validators.validators().iter().map(|v| v.key).collect();
    p2p.open_consensus = rules.is_some();
    let (overlay, inbox) = Overlay::start(key, p2p).await.unwrap();
    let status = overlay.handle.status().await.unwrap();
    let addr = status.listen_addrs[0].clone().with(Protocol::P2p(overlay.handle.peer_id()));
    let state = StateStore::open(&dir.join("state")).unwrap();
    let app =
        ChainApp::new(CHAIN, state.clone(), key.public()).with_engine(engine).with_work_rules(rules.as_ref());
    let engine: Box<dyn ConsensusCore + Send> = match engine {
        Engine::Pow => Box::new(PowEngine::new(rules.expect("pow rules")).mining(key.public())),
        Engine::Pbft => {
            let view = Duration::from_millis(1000);
            Box::new(PbftEngine::new(CHAIN, key.clone(), PbftTimeouts { view, rebroadcast: view / 2 }))
        }
        _ => {
            let timeouts = Timeouts {
                propose: Duration::from_millis(500),
                prevote: Duration::from_millis(200),
                precommit: Duration::from_millis(200),
                rebroadcast: Duration::from_millis(1000),
                increase: Duration::from_millis(200),
            };
            Box::new(TendermintEngine::new(CHAIN, key.clone(), timeouts))
        }
    };
    let store = BlockStore::open(&dir.join("blocks")).unwrap();
    let mut driver = Driver::new(engine, app, overlay.handle.clone(), store, config, inbox.events);
    if rules.is_some() {
        let miner = ThreadMiner::new(1, driver.mined_sender());
        driver = driver.with_miner(miner);
    }
    let (progress, txs) = (driver.progress(), driver.tx_sender());
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(async move { driver.run(stopped).await.expect("the driver runs until stopped") });
    (Validating { _overlay: overlay, stop, task, progress, txs, state }, addr)
}

pub(crate) async fn wait_for_height(progress: &mut watch::Receiver<Progress>, height: u64) {
    let reached =
        tokio::time::timeout(Duration::from_secs(120), progress.wait_for(|p| p.height >= height)).await;
    assert!(matches!(reached, Ok(Ok(_))), "height {height} not reached");
}

/// Four validators of `engine` (miners under `rules` for Proof-of-Work) on a genesis of
/// `accounts`, each with its state in `dirs`.
pub(crate) async fn start_network(
    engine: Engine,
    rules: Option<PowRules>,
    keys: &[Keypair],
    accounts: Vec<(pyralog_crypto::PublicKey, u64)>,
    dirs: &[tempfile::TempDir],
) -> (Vec<Validating>, ValidatorSet) {
    let set = ValidatorSet::new(keys.iter().map(|k| Validator { key: k.public(), power: 1 })).unwrap();
    let genesis = Genesis { accounts, ..Genesis::default() };
    let config = DriverConfig {
        chain_id: CHAIN.into(),
        validators: set.clone(),
        sync_interval: Duration::from_millis(300),
        max_payload_bytes: 1 << 20,
        block_interval: Duration::from_millis(100),
        max_mempool_txs: 10_000,
        app_state: postcard::to_allocvec(&genesis).unwrap(),
    };
    let (first, bootstrap) = start(engine, rules, &keys[0], dirs[0].path(), config.clone(), Vec::new()).await;
    let mut nodes = vec![first];
    for (key, dir) in keys.iter().zip(dirs).skip(1) {
        nodes.push(start(engine, rules, key, dir.path(), config.clone(), vec![bootstrap.clone()]).await.0);
    }
    (nodes, set)
}

/// Stops the validators; returns their state stores and the highest version all of them hold.
pub(crate) async fn stop_network(nodes: Vec<Validating>) -> (Vec<StateStore>, u64) {
    for node in &nodes {
        let _ = node.stop.send(true);
    }
    let mut states = Vec::new();
    for node in nodes {
        node.task.await.unwrap();
        states.push(node.state);
    }
    let common = states.iter().map(|s| s.latest_version().unwrap().unwrap()).min().unwrap();
    let roots: Vec<[u8; 32]> = states.iter().map(|s| s.root(common).unwrap()).collect();
    assert!(roots.iter().all(|r| *r == roots[0]), "validators disagree on the state at {common}");
    (states, common)
}

pub(crate) fn transfer(from: &Keypair, nonce: u64, to: &Keypair, amount: u64) -> Vec<u8> {
    let action = Action::Transfer { to: to.public(), amount };
    let tx = Tx { chain_id: CHAIN.into(), sender: from.public(), nonce, fee: 1, action };
    SignedTx::sign(tx, from).encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_run_the_chain_with_linked_headers_and_agreeing_state() {
    let keys: Vec<Keypair> = (0..4).map(|_| Keypair::generate()).collect();
    let (alice, bob) = (Keypair::generate(), Keypair::generate());
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let (mut nodes, set) =
        start_network(Engine::Tendermint, None, &keys, vec![(alice.public(), 1_000)], &dirs).await;
    for node in &mut nodes {
        wait_for_height(&mut node.progress, 3).await;
    }
    // Ten transfers, consecutive nonces, all through validator 2.
    for nonce in 0..10 {
        nodes[2].txs.send(transfer(&alice, nonce, &bob, 7)).await.unwrap();
    }
    let target = nodes[2].progress.borrow().height + 8;
    for node in &mut nodes {
        wait_for_height(&mut node.progress, target).await;
    }
    let (states, common) = stop_network(nodes).await;
    assert!(common >= target);
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

/// The scripted workload's actors: fixed keys, so both engines' runs see the same transactions.
struct Workload {
    alice: Keypair,
    /// Deploys the vote contract, opens a ballot and votes in it.
    voter: Keypair,
    bob: Keypair,
    owner: Keypair,
    replicas: Vec<Keypair>,
    cluster: ClusterId,
}

impl Workload {
    fn new() -> Workload {
        let key = |n: u8| Keypair::from_secret(&[n; 32]);
        Workload {
            alice: key(1),
            voter: key(4),
            bob: key(2),
            owner: key(3),
            replicas: (10..13).map(key).collect(),
            cluster: ClusterId::new("same-state").unwrap(),
        }
    }

    /// Ten transfers from alice to bob; the owner registers a cluster and anchors two of its
    /// checkpoints (the second extending the first).
    fn transactions(&self) -> Vec<Vec<u8>> {
        let mut txs: Vec<Vec<u8>> = (0..10).map(|nonce| transfer(&self.alice, nonce, &self.bob, 7)).collect();
        let tx = |nonce, action| {
            let tx = Tx { chain_id: CHAIN.into(), sender: self.owner.public(), nonce, fee: 1, action };
            SignedTx::sign(tx, &self.owner).encode()
        };
        let members = self.replicas.iter().map(|k| k.public()).collect();
        txs.push(tx(
            0,
            Action::RegisterCluster { cluster: self.cluster.clone(), members, peers: Vec::new() },
        ));
        let mut tree = MerkleTree::new(MemoryNodeStore::default());
        let mut anchored = None;
        for (nonce, size) in [(1, 4u64), (2, 9)] {
            while tree.size() < size {
                tree.append(format!("record {}", tree.size()).as_bytes()).unwrap();
            }
            let checkpoint = Checkpoint {
                cluster: self.cluster.clone(),
                log: LogName::new("events").unwrap(),
                partition: 0,
                epoch: 1,
                size,
                root: tree.root(),
                time_ms: 0,
                zk_roots: Default::default(),
            };
            let signatures =
                self.replicas[..2].iter().map(|k| SignatureShare::sign(k, &checkpoint)).collect();
            let certificate = QuorumCertificate { message: checkpoint, signatures };
            let consistency = anchored.map(|from| tree.consistency_proof(from, size).unwrap());
            txs.push(tx(nonce, Action::AnchorCheckpoint { certificate, consistency }));
            anchored = Some(size);
        }
        // A contract: the same calls must leave the same state on every validator.
        let vote = |nonce, fee, action| {
            let tx = Tx { chain_id: CHAIN.into(), sender: self.voter.public(), nonce, fee, action };
            SignedTx::sign(tx, &self.voter).encode()
        };
        let wasm = self.vote_wasm();
        let code = code_hash(&wasm);
        let fuel = 100_000;
        txs.push(vote(0, Action::DeployCode { wasm: wasm.clone() }.min_fee(), Action::DeployCode { wasm }));
        let open = Action::Instantiate { code, input: 1_000_000u64.to_le_bytes().to_vec(), value: 0, fuel };
        txs.push(vote(1, open.min_fee(), open));
        let ballot = Action::CallContract {
            contract: self.ballot(),
            entry: "vote".into(),
            input: vec![3],
            value: 0,
            fuel,
        };
        txs.push(vote(2, ballot.min_fee(), ballot));
        txs
    }

    fn vote_wasm(&self) -> Vec<u8> {
        pyralog_contracts::examples::wasm_of(pyralog_contracts::examples::VOTE.as_bytes()).unwrap()
    }

    /// The ballot the voter opens (with its second transaction).
    fn ballot(&self) -> pyralog_crypto::Digest {
        contract_id(&self.voter.public(), 1)
    }

    /// A digest of the state the workload touches, without block ids, heights or times (an
    /// anchor counts by its certified checkpoint, not the height that anchored it).
    fn digest(&self, state: &StateStore, version: u64) -> pyralog_crypto::Digest {
        let log = LogName::new("events").unwrap();
        let keys = [
            account_key(&self.alice.public()),
            account_key(&self.bob.public()),
            account_key(&self.owner.public()),
            cluster_key(&self.cluster),
            account_key(&self.voter.public()),
            code_key(&code_hash(&self.vote_wasm())),
            contract_storage_key(&self.ballot(), b"tally/\x03"),
        ];
        let mut hasher = blake3::Hasher::new();
        for key in keys {
            let value = state.get(&key, version).unwrap().expect("the workload wrote it");
            // Stored code records the height that stored it: only its module and deployer count.
            let value = match postcard::from_bytes::<ContractCode>(&value) {
                Ok(code) if key.starts_with(b"code/") => {
                    postcard::to_allocvec(&(code.wasm, code.deployer)).unwrap()
                }
                _ => value,
            };
            hasher.update(&(key.len() as u64).to_be_bytes()).update(&key);
            hasher.update(&(value.len() as u64).to_be_bytes()).update(&value);
        }
        let anchor = state.get(&anchor_key(&self.cluster, &log, 0), version).unwrap().expect("anchored");
        let anchor: Anchor = postcard::from_bytes(&anchor).unwrap();
        assert_eq!(anchor.certificate.message.size, 9, "the second anchor is the partition's");
        hasher.update(&postcard::to_allocvec(&anchor.certificate).unwrap());
        pyralog_crypto::Digest(*hasher.finalize().as_bytes())
    }

    /// Whether every transaction was applied at `version` (the senders' nonces).
    fn applied(&self, state: &StateStore, version: u64) -> bool {
        let nonce = |key: &Keypair| {
            state
                .get(&account_key(&key.public()), version)
                .unwrap()
                .map(|v| postcard::from_bytes::<Account>(&v).unwrap().nonce)
        };
        nonce(&self.alice) == Some(10) && nonce(&self.owner) == Some(3) && nonce(&self.voter) == Some(3)
    }
}

/// Runs the workload on four validators of `engine`; returns the state digest they agree on.
async fn run_workload(engine: Engine, workload: &Workload) -> pyralog_crypto::Digest {
    let keys: Vec<Keypair> = (20..24).map(|n| Keypair::from_secret(&[n; 32])).collect();
    let accounts = vec![
        (workload.alice.public(), 1_000),
        (workload.owner.public(), 1_000),
        (workload.voter.public(), 1_000),
    ];
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    // Proof-of-Work: a first target this machine's four miner threads (on two cores) meet in
    // about a second (forks of k blocks at millisecond blocks would split the validators),
    // one-second blocks, final three seals deep.
    let rules = (engine == Engine::Pow).then(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        machine_pow_rules(now as u64, 4, 2, 3)
    });
    let (mut nodes, set) = start_network(engine, rules, &keys, accounts, &dirs).await;
    for node in &mut nodes {
        wait_for_height(&mut node.progress, 2).await;
    }
    for tx in workload.transactions() {
        nodes[1].txs.send(tx).await.unwrap();
    }
    // Validator 3's state shows every transaction applied.
    let mut progress = nodes[3].progress.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let version = nodes[3].state.latest_version().unwrap().unwrap_or(0);
        if workload.applied(&nodes[3].state, version) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{engine}: the workload was not applied in 2 minutes"
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), progress.changed()).await;
    }
    let target = nodes[3].progress.borrow().height + 2;
    for node in &mut nodes {
        wait_for_height(&mut node.progress, target).await;
    }
    let (states, common) = stop_network(nodes).await;
    let blocks = BlockStore::open(&dirs[0].path().join("blocks")).unwrap();
    let last = blocks.block(common).unwrap().unwrap();
    assert_eq!(last.proof.engine(), engine);
    let parent = blocks.block(common - 1).unwrap().unwrap();
    let trust = match &rules {
        Some(rules) => Trust::Work { rules, parent: parent.proof.seals().and_then(|s| s.first()) },
        None => Trust::Validators(&set),
    };
    last.proof.verify(engine, CHAIN, common, &last.block, trust).unwrap();
    let digests: Vec<_> = states.iter().map(|s| workload.digest(s, common)).collect();
    assert!(digests.iter().all(|d| *d == digests[0]), "{engine}: the validators' digests differ");
    digests[0]
}

/// One workload through Tendermint, PBFT and Proof-of-Work: the same chain state (the blocks
/// differ: ids, heights, times and proposers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_workload_ends_in_the_same_state_on_tendermint_pbft_and_pow() {
    let workload = Workload::new();
    let tendermint = run_workload(Engine::Tendermint, &workload).await;
    let pbft = run_workload(Engine::Pbft, &workload).await;
    let pow = run_workload(Engine::Pow, &workload).await;
    assert_eq!(tendermint, pow, "Tendermint and Proof-of-Work ended in different states");
    assert_eq!(tendermint, pbft, "the engines ended in different states");
}
