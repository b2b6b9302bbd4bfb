//! The chain app behind a real CometBFT v0.38 (`"engine": "cometbft"`): one and four CometBFT
//! validators, each beside a `pyralog start` serving its app over ABCI, finalize blocks that
//! anchor the cluster's checkpoints; the light client verifies a record with finality through
//! CometBFT's signed headers, and refuses a header a lying server changed. A validator and its
//! CometBFT killed and restarted catch up through CometBFT's handshake.
//!
//! CometBFT comes from `make test` (`go install` into the cache directory); without it (no Go,
//! or the module unavailable) the tests say so and skip.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::chain_testnet::{light, sync, verify_final};
use crate::support::{ProxyHook, call, eventually, free_base, hex, proxy, spawn_node, start_nodes_on};

/// The CometBFT binary: `PYRALOG_COMETBFT`, the cache directory's, or one on `PATH`.
fn cometbft() -> Option<PathBuf> {
    let cached =
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/pyralog/tools/bin/cometbft"));
    let candidates = std::env::var_os("PYRALOG_COMETBFT").map(PathBuf::from).into_iter().chain(cached);
    let found = candidates.into_iter().find(|path| path.is_file());
    found.or_else(|| {
        let out = Command::new("sh").args(["-c", "command -v cometbft"]).output().ok()?;
        out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    })
}

/// CometBFT processes, killed with the test.
struct CometNodes(Vec<Child>);

impl Drop for CometNodes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn run(binary: &Path, args: &[&str]) -> String {
    let out = Command::new(binary).args(args).output().unwrap();
    assert!(out.status.success(), "{} {args:?}: {}", binary.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Lies about CometBFT's header: another app hash (so another state root).
struct ForgedAppHash;

impl ProxyHook for ForgedAppHash {
    fn answer(&self, method: &str, answer: &mut Value) {
        if method == "chain_getCometLightBlock" {
            answer["signedHeader"]["header"]["app_hash"] = json!("AB".repeat(32));
        }
    }
}

/// Lies about who signed: the second commit signature replaced by the first (one validator's
/// vote counted twice, what the 2025 fix of CometBFT's light client refuses).
struct DuplicatedVote;

impl ProxyHook for DuplicatedVote {
    fn answer(&self, method: &str, answer: &mut Value) {
        if method == "chain_getCometLightBlock" {
            // One validator's commit vote in the place of another's: both must be commit votes
            // (flag 2), or the copy of an absent vote only lowers the tally (a flaky refusal
            // for too little power instead of the duplicate).
            let signatures = answer["signedHeader"]["commit"]["signatures"].as_array_mut().unwrap();
            let committed: Vec<usize> =
                (0..signatures.len()).filter(|&i| signatures[i]["block_id_flag"] == 2).collect();
            signatures[committed[1]] = signatures[committed[0]].clone();
        }
    }
}

async fn anchors_and_verifies_behind_cometbft(validators: u16) {
    let Some(comet) = cometbft() else {
        eprintln!(
            "skipped: no cometbft binary (make test installs CometBFT v0.38 with `go install` where Go is present)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ports = free_base(3 * validators);
    let (abci, rpc, p2p) = (ports, ports + validators, ports + 2 * validators);
    let mut net = start_nodes_on("cometbft", dir.path(), 1, validators, |i, config| {
        let ports = format!(
            "[chain]\nabci_listen = \"127.0.0.1:{}\"\ncometbft_rpc = \"http://127.0.0.1:{}\"\n",
            abci + i,
            rpc + i
        );
        config.replacen("[chain]\n", &ports, 1)
    })
    .await;

    // Each node's CometBFT home: CometBFT's defaults, then our genesis and this node's key.
    let mut ids = Vec::new();
    for i in 0..validators {
        let home = dir.path().join(format!("node{i}/cometbft"));
        let home_arg = home.to_str().unwrap();
        run(&comet, &["init", "--home", home_arg]);
        let base = dir.path().join(format!("node{i}"));
        let out = Command::new(env!("CARGO_BIN_EXE_pyralog"))
            .args(["cometbft-home", "--base-path", base.to_str().unwrap(), "--home", home_arg])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // Validators on one machine: same IP, loopback addresses.
        let config = home.join("config/config.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        let text = text
            .replace("allow_duplicate_ip = false", "allow_duplicate_ip = true")
            .replace("addr_book_strict = true", "addr_book_strict = false");
        std::fs::write(&config, text).unwrap();
        ids.push(run(&comet, &["show-node-id", "--home", home_arg]));
    }
    let spawn = |i: u16| {
        let peers: Vec<String> = (0..validators)
            .filter(|j| *j != i)
            .map(|j| format!("{}@127.0.0.1:{}", ids[j as usize], p2p + j))
            .collect();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join(format!("comet{i}.log")))
            .unwrap();
        Command::new(&comet)
            .arg("start")
            .args(["--home", dir.path().join(format!("node{i}/cometbft")).to_str().unwrap()])
            .args(["--proxy_app", &format!("tcp://127.0.0.1:{}", abci + i)])
            .args(["--rpc.laddr", &format!("tcp://127.0.0.1:{}", rpc + i)])
            .args(["--p2p.laddr", &format!("tcp://127.0.0.1:{}", p2p + i)])
            .args(["--p2p.persistent_peers", &peers.join(",")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    };
    let mut nodes = CometNodes((0..validators).map(spawn).collect());
    for url in &net.rpc {
        eventually("CometBFT finalizing blocks through the app", async || {
            let head = call(url, "chain_getFinalizedHead", json!({})).await.ok()?;
            (head["engine"] == "cometbft" && head["height"].as_u64()? >= 3).then_some(())
        })
        .await;
    }

    // A record, anchored through CometBFT's blocks.
    let url = &net.rpc[0];
    call(url, "log_create", json!({"name": "audit", "partitions": 1, "replicationFactor": validators}))
        .await
        .unwrap();
    let offset = eventually("an acknowledged append", async || {
        let records = json!([{ "value": hex(b"behind cometbft") }]);
        let receipts = call(url, "log_append", json!({"log": "audit", "partition": 0, "records": records}))
            .await
            .ok()?;
        receipts[0]["offset"].as_u64()
    })
    .await;
    let params = json!({"log": "audit", "partition": 0, "offset": offset, "finality": true});
    let served = eventually("the record anchored and served with finality", async || {
        call(&net.rpc[validators as usize - 1], "log_getProof", params.clone()).await.ok()
    })
    .await;
    // The lying proxies below sit in front of node 0, which may finalize the anchor a block
    // after the last validator: their refusals must come from the lie, not from "not anchored".
    eventually("node 0 serving the record with finality too", async || {
        call(url, "log_getProof", params.clone()).await.ok()
    })
    .await;
    assert_eq!(served["finality"]["engine"], "cometbft");
    // CometBFT keeps the blocks: the node's block methods say where they are.
    let block = call(url, "chain_getBlock", json!({"height": 1})).await;
    assert_eq!(crate::support::code(block), 1054);
    let status = call(url, "system_status", json!({})).await.unwrap();
    let cluster = status["cluster"].as_str().unwrap().to_owned();

    // The light client: CometBFT's header verified from the genesis validators, then the record.
    let state = dir.path().join("light.json");
    let (synced, ok) = sync(url, &dir.path().join("node0"), &state).await;
    assert!(ok, "{synced}");
    assert_eq!(
        (synced["engine"].as_str(), synced["validators"].as_u64()),
        (Some("cometbft"), Some(validators as u64))
    );
    let last = &net.rpc[validators as usize - 1];
    let (report, ok) = verify_final(last, &cluster, "audit", offset, &state).await;
    assert!(ok, "{report}");
    assert_eq!(report["finality"]["engine"], "cometbft");
    let signatures = report["finality"]["signatures"].as_u64().unwrap();
    assert!(signatures * 3 > 2 * u64::from(validators), "{report}");
    assert_eq!(report["value"], hex(b"behind cometbft"));

    // A server that changes CometBFT's header is caught: its signatures no longer hold.
    let liar = proxy(url.clone(), Arc::new(ForgedAppHash)).await;
    let (refused, ok) = verify_final(&liar, &cluster, "audit", offset, &state).await;
    assert!(!ok, "{refused}");
    assert!(refused.to_string().contains("CometBFT header: invalid"), "{refused}");
    if validators > 1 {
        let twice = proxy(url.clone(), Arc::new(DuplicatedVote)).await;
        let (refused, ok) = verify_final(&twice, &cluster, "audit", offset, &state).await;
        assert!(!ok, "{refused}");
        assert!(refused.to_string().contains("duplicate validator"), "{refused}");
    }
    let (resynced, ok) = light(vec![
        "sync".into(),
        "--rpc".into(),
        liar,
        "--genesis".into(),
        dir.path().join("node0/genesis.json").to_str().unwrap().into(),
        "--state".into(),
        state.to_str().unwrap().into(),
    ])
    .await;
    assert!(!ok, "{resynced}");
    assert!(resynced.to_string().contains("invalid"), "{resynced}");

    // Validator 0 and its CometBFT are killed (SIGKILL, wherever they are: between FinalizeBlock
    // and Commit or not) and restarted: CometBFT's handshake replays what the app did not
    // commit, to the app hashes it stored (it halts on any other), and the chain goes on.
    let before = call(url, "chain_getFinalizedHead", json!({})).await.unwrap()["height"].as_u64().unwrap();
    for child in [&mut net.children[0], &mut nodes.0[0]] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    net.children[0] = spawn_node(dir.path(), 0);
    nodes.0[0] = spawn(0);
    eventually("the restarted validator finalizing again", async || {
        let head = call(url, "chain_getFinalizedHead", json!({})).await.ok()?;
        (head["height"].as_u64()? >= before + 3).then_some(())
    })
    .await;
    let (again, ok) = verify_final(url, &cluster, "audit", offset, &state).await;
    assert!(ok, "{again}");
    assert!(again["finality"]["height"].as_u64().unwrap() > before, "{again}");
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cometbft_validator_anchors_and_the_light_client_verifies_through_its_headers() {
    anchors_and_verifies_behind_cometbft(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_cometbft_validators_anchor_and_the_light_client_verifies_through_their_headers() {
    anchors_and_verifies_behind_cometbft(4).await;
}
