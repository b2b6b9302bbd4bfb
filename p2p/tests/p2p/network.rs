//! Four validators over real libp2p on loopback (Tendermint, then PBFT).

use std::time::Duration;

use pyralog_consensus::Engine;
use pyralog_consensus::driver::{BlockStore, ChainStore};
use pyralog_consensus::pbft::primary;
use pyralog_consensus::testkit::{CountingApp, assert_same_certified_blocks};

use crate::support::{
    CHAIN, Sent, driver_config, start, start_counted, start_network, validators, wait_for_height,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_over_libp2p_survive_a_kill_and_a_restart() {
    let (keys, set) = validators(4);
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let config = driver_config(&set, Duration::from_millis(50));
    let mut nodes = start_network(&keys, &dirs, &config).await;
    for node in &mut nodes {
        wait_for_height(&mut node.progress, 20).await;
    }

    // Kill validator 3 (not the bootstrap peer): the other three still hold a quorum.
    nodes.pop().unwrap().kill().await;
    let before = nodes.iter().map(|n| n.progress.borrow().height).max().unwrap();
    for node in &mut nodes {
        wait_for_height(&mut node.progress, before + 10).await;
    }

    // Restarted from its store on new ports, it finds the others again (bootstrap peer, then the
    // DHT), syncs what it missed and decides with them.
    let bootstrap = crate::support::dial_addr(nodes[0].handle(), "tcp").await;
    let mut restarted = start(&keys[3], dirs[3].path(), config.clone(), vec![bootstrap]).await;
    let target = nodes[0].progress.borrow().height + 5;
    let progress = wait_for_height(&mut restarted.progress, target).await;
    assert!(progress.synced > 0, "the restarted validator caught up by sync: {progress:?}");
    // It finds the two validators its bootstrap list does not name through the DHT.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let connected = restarted.handle().status().await.unwrap().connected;
        if connected.len() == 3 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "connected only to {connected:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for node in &mut nodes {
        wait_for_height(&mut node.progress, target).await;
    }
    for node in nodes.into_iter().chain([restarted]) {
        node.stop().await;
    }

    // Every store holds the same blocks, each with a commit certificate that verifies.
    let stores: Vec<BlockStore> = dirs.iter().map(|d| BlockStore::open(d.path()).unwrap()).collect();
    assert_same_certified_blocks(&stores, Engine::Tendermint, CHAIN, &set, target);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_submitted_to_one_validator_is_committed_by_all() {
    let (keys, set) = validators(4);
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let config = driver_config(&set, Duration::from_millis(100));
    let mut nodes = start_network(&keys, &dirs, &config).await;
    wait_for_height(&mut nodes[2].progress, 2).await;
    let txs: Vec<Vec<u8>> = (0..50).map(|i| format!("tx {i}").into_bytes()).collect();
    for tx in &txs {
        nodes[2].txs.send(tx.clone()).await.unwrap();
    }
    let submitted_at = nodes[2].progress.borrow().height;
    // Proposers rotate, so within a few heights every validator has proposed (it has the
    // transactions only through gossip).
    for node in &mut nodes {
        wait_for_height(&mut node.progress, submitted_at + 8).await;
    }
    for node in nodes {
        node.stop().await;
    }
    for dir in &dirs {
        let store = BlockStore::open(dir.path()).unwrap();
        let committed: Vec<Vec<u8>> =
            (1..=store.last_height().unwrap()).flat_map(|h| store.block(h).unwrap().unwrap().txs).collect();
        for tx in &txs {
            assert_eq!(
                committed.iter().filter(|t| *t == tx).count(),
                1,
                "{:?} committed once",
                String::from_utf8_lossy(tx)
            );
        }
    }
}

/// PBFT over the same overlay: four validators commit; the primary of the view they are in is
/// killed, the others move to the next view and go on; restarted, it catches up and decides
/// with them. Every store holds the same blocks with PBFT commit certificates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pbft_validators_over_libp2p_replace_a_killed_primary() {
    let (keys, set) = validators(4);
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let config = driver_config(&set, Duration::from_millis(20));
    let sent = Sent::default();
    let start = |i: usize, bootstrap: Vec<_>| {
        let app = CountingApp::default();
        start_counted(Engine::Pbft, &keys[i], dirs[i].path(), config.clone(), bootstrap, app, sent.clone())
    };
    let first = start(0, Vec::new()).await;
    let bootstrap = crate::support::dial_addr(first.handle(), "tcp").await;
    let mut nodes = vec![Some(first)];
    for i in 1..4 {
        nodes.push(Some(start(i, vec![bootstrap.clone()]).await));
    }
    for node in nodes.iter_mut().flatten() {
        wait_for_height(&mut node.progress, 5).await;
    }
    let (messages, _) = sent.totals();
    assert!(messages > 0, "the engines' messages went through the counted network");

    // Kill the primary of the view the last block was decided in (views are global: it
    // proposes the next one too).
    let view_of = |store: &BlockStore, height| {
        store.block(height).unwrap().unwrap().proof.commit_certificate().unwrap().message.round
    };
    let reader = nodes[0].as_ref().unwrap();
    let last = reader.store.last_height().unwrap();
    let view = view_of(&reader.store, last);
    let victim = keys.iter().position(|k| k.public() == primary(&set, view)).unwrap();
    nodes[victim].take().unwrap().kill().await;
    let before = nodes.iter().flatten().map(|n| n.progress.borrow().height).max().unwrap();
    for node in nodes.iter_mut().flatten() {
        wait_for_height(&mut node.progress, before + 5).await;
    }

    let alive = nodes.iter().flatten().next().unwrap();
    let bootstrap = crate::support::dial_addr(alive.handle(), "tcp").await;
    let mut restarted = start(victim, vec![bootstrap]).await;
    let target = alive.progress.borrow().height + 5;
    wait_for_height(&mut restarted.progress, target).await;
    nodes[victim] = Some(restarted);
    for node in nodes.iter_mut().flatten() {
        wait_for_height(&mut node.progress, target).await;
    }
    for node in nodes.into_iter().flatten() {
        node.stop().await;
    }
    let stores: Vec<BlockStore> = dirs.iter().map(|d| BlockStore::open(d.path()).unwrap()).collect();
    assert_same_certified_blocks(&stores, Engine::Pbft, CHAIN, &set, target);
    assert!(view_of(&stores[0], target) > view, "decided after a view change");
}
