//! The 2x3 testnet of `make testnet` as a test, with real processes: two clusters of three
//! nodes, all six validators of one chain (Tendermint, then PBFT). A record of cluster A is anchored and
//! verified with finality through nodes of cluster B by the light client, synced from genesis.
//! Then one node of each cluster in turn is killed (SIGKILL) and restarted: the chain keeps
//! finalizing without it, new records are anchored and verified across clusters, and the
//! restarted node catches up.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{Testnet, call, eventually, hex, spawn_node, start_clusters_on};

const PER_CLUSTER: u16 = 3;

async fn head(url: &str) -> Option<u64> {
    call(url, "chain_getFinalizedHead", json!({})).await.ok()?["height"].as_u64()
}

/// Waits until every node of `nodes` has finalized height `height`.
async fn wait_for_height(net: &Testnet, nodes: &[usize], height: u64) {
    for &i in nodes {
        eventually(&format!("node{i} at chain height {height}"), async || {
            (head(&net.rpc[i]).await? >= height).then_some(())
        })
        .await;
    }
}

/// The highest finalized height among `nodes`.
async fn top(net: &Testnet, nodes: &[usize]) -> u64 {
    let mut top = 0;
    for &i in nodes {
        top = top.max(head(&net.rpc[i]).await.unwrap_or(0));
    }
    top
}

/// Appends one record to partition 0 of `audit` through `url` (retrying while the cluster
/// elects leaders); returns its offset.
async fn append(url: &str, value: &str) -> u64 {
    let records = json!([{ "value": hex(value.as_bytes()) }]);
    eventually("an acknowledged append", async || {
        let receipts = call(url, "log_append", json!({"log": "audit", "partition": 0, "records": records}))
            .await
            .ok()?;
        receipts[0]["offset"].as_u64()
    })
    .await
}

/// Waits until `url` serves `offset` of cluster `cluster` with finality (anchored and final).
async fn wait_anchored(url: &str, cluster: &str, offset: u64) {
    let params =
        json!({"log": "audit", "partition": 0, "offset": offset, "cluster": cluster, "finality": true});
    eventually(&format!("offset {offset} anchored and served with finality"), async || {
        let answer = call(url, "log_getProof", params.clone()).await.ok()?;
        (answer["finality"]["height"].as_u64()? > 0).then_some(())
    })
    .await;
}

/// Runs `pyralog light ARGS`; returns its JSON report and whether it exited 0.
pub(crate) async fn light(args: Vec<String>) -> (Value, bool) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pyralog"));
    command.arg("light").args(args);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&output.stdout)));
    (report, output.status.success())
}

/// `pyralog light sync` from `dir/genesis.json` (skipping).
pub(crate) async fn sync(rpc: &str, dir: &Path, state: &Path) -> (Value, bool) {
    sync_with(rpc, dir, state, &[]).await
}

/// `pyralog light sync` with `extra` flags (`--sequential`).
pub(crate) async fn sync_with(rpc: &str, dir: &Path, state: &Path, extra: &[&str]) -> (Value, bool) {
    let genesis = dir.join("genesis.json");
    let args =
        ["sync", "--rpc", rpc, "--genesis", genesis.to_str().unwrap(), "--state", state.to_str().unwrap()];
    light(args.iter().chain(extra).map(|a| a.to_string()).collect()).await
}

pub(crate) async fn verify_final(
    rpc: &str,
    cluster: &str,
    log: &str,
    offset: u64,
    state: &Path,
) -> (Value, bool) {
    let offset = offset.to_string();
    let args = [
        "verify-record",
        "--rpc",
        rpc,
        "--cluster",
        cluster,
        "--log",
        log,
        "--partition",
        "0",
        "--offset",
        &offset,
        "--finality",
        "--state",
        state.to_str().unwrap(),
    ];
    light(args.map(String::from).to_vec()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_verify_each_other_through_the_chain_across_kills_and_restarts() {
    kills_and_restarts("tendermint").await;
}

/// The same on PBFT: each killed validator restarts from its RocksDB WAL, in whatever view it
/// was, and rejoins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_on_pbft_verify_each_other_across_kills_and_restarts() {
    kills_and_restarts("pbft").await;
}

async fn kills_and_restarts(engine: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut net = start_clusters_on(engine, dir.path(), 2, PER_CLUSTER, |config| config.to_owned()).await;
    let all: Vec<usize> = (0..2 * PER_CLUSTER as usize).collect();
    wait_for_height(&net, &all, 2).await;
    let status = call(&net.rpc[0], "system_status", json!({})).await.unwrap();
    let cluster_a = status["cluster"].as_str().unwrap().to_owned();
    let status_b = call(&net.rpc[3], "system_status", json!({})).await.unwrap();
    assert_ne!(status_b["cluster"], cluster_a, "nodes 3-5 are another cluster");

    call(&net.rpc[0], "log_create", json!({"name": "audit", "partitions": 1, "replicationFactor": 3}))
        .await
        .unwrap();
    let first = append(&net.rpc[1], "first").await;
    wait_anchored(&net.rpc[3], &cluster_a, first).await;
    // Node 4 serves the proof below: it must have applied the anchoring block too (it was seen
    // behind node 3, answering 1042 "not anchored in the finalized state yet").
    wait_anchored(&net.rpc[4], &cluster_a, first).await;
    let state = dir.path().join("light.json");
    let (synced, ok) = sync(&net.rpc[3], dir.path(), &state).await;
    assert!(ok && synced["height"].as_u64().unwrap() >= 2, "{synced}");
    let (report, ok) = verify_final(&net.rpc[4], &cluster_a, "audit", first, &state).await;
    assert!(ok, "{report}");
    assert_eq!(report["value"], hex(b"first"));
    let mut anchored = report["finality"]["anchoredSize"].as_u64().unwrap();

    // Kill a node of cluster A (the one that bootstrapped it), then one of cluster B.
    for (victim, appender, reader) in [(0usize, 1usize, 5usize), (3, 2, 4)] {
        net.children[victim].kill().unwrap();
        net.children[victim].wait().unwrap();
        let alive: Vec<usize> = all.iter().copied().filter(|&i| i != victim).collect();
        let before = top(&net, &alive).await;
        wait_for_height(&net, &alive, before + 3).await; // 5 of 6 validators still decide

        let value = format!("written while node{victim} is down");
        let offset = append(&net.rpc[appender], &value).await;
        wait_anchored(&net.rpc[reader], &cluster_a, offset).await;
        let (synced, ok) = sync(&net.rpc[reader], dir.path(), &state).await;
        assert!(ok, "{synced}");
        let (report, ok) = verify_final(&net.rpc[reader], &cluster_a, "audit", offset, &state).await;
        assert!(ok, "{report}");
        assert_eq!(report["value"], hex(value.as_bytes()));
        assert_eq!(report["extendsTrusted"], anchored, "the new anchor is proven to extend the old");
        anchored = report["finality"]["anchoredSize"].as_u64().unwrap();

        net.children[victim] = spawn_node(dir.path(), victim as u16);
        let now = top(&net, &alive).await;
        wait_for_height(&net, &[victim], now).await; // caught up
        wait_for_height(&net, &all, now + 2).await; // and deciding with the others
    }

    // The restarted node of cluster B serves cluster A's first record with finality again.
    let (report, ok) = verify_final(&net.rpc[3], &cluster_a, "audit", first, &state).await;
    assert!(ok, "{report}");
    assert_eq!(report["value"], hex(b"first"));
}
