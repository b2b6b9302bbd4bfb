//! Cluster membership over JSON-RPC (`admin_addMember`, `admin_removeMember`), as an operator
//! grows and shrinks a running cluster: a fourth node started with its own id joins when the
//! global leader adds it, leaves again while it hosts nothing, and every refusal (not the
//! leader, a member hosting replicas, an unknown member, a malformed key) has its code.

use std::process::Command;

use serde_json::{Value, json};

use crate::support::{call, code, eventually, free_base, spawn_node};

/// Kills the nodes when the test ends, however it ends.
struct Nodes(Vec<std::process::Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_node_joins_and_leaves_over_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_base(12);
    let (raft, rpc, metrics) = (base, base + 4, base + 8);
    let out = Command::new(env!("CARGO_BIN_EXE_pyralog"))
        .args(["testnet", "--nodes", "4", "--no-chain", "--dev", "--kafka-port", "0", "--out"])
        .arg(dir.path())
        .args(["--raft-port", &raft.to_string(), "--rpc-port", &rpc.to_string()])
        .args(["--metrics-port", &metrics.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Nodes 0-2 found the cluster; node 3 knows them but is not one of them.
    let mut joiner_key = String::new();
    for i in 0..4 {
        let path = dir.path().join(format!("node{i}/config.toml"));
        let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        let members = config["cluster"]["members"].as_array_mut().unwrap();
        let joiner = members.iter().position(|m| m["id"].as_integer() == Some(3)).unwrap();
        joiner_key = members.remove(joiner)["public_key"].as_str().unwrap().to_owned();
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    }
    let _nodes = Nodes((0..4).map(|i| spawn_node(dir.path(), i)).collect());
    let url = |i: u16| format!("http://127.0.0.1:{}", rpc + i);
    let leader = eventually("a global leader of the three founders", async || {
        let health = call(&url(0), "system_health", json!({})).await.ok()?;
        (health["members"] == 3).then_some(())?;
        health["globalLeader"].as_u64()
    })
    .await as u16;
    let follower = (leader + 1) % 3;
    let log = json!({"name": "pinned", "partitions": 1, "replicationFactor": 3});
    let created: Value = call(&url(leader), "log_create", log).await.unwrap();
    let hosts: Vec<u64> =
        created["placement"][0].as_array().unwrap().iter().filter_map(Value::as_u64).collect();
    assert_eq!(hosts.len(), 3, "{created}");
    let joiner = json!({ "id": 3, "raftAddr": format!("127.0.0.1:{}", raft + 3), "publicKey": joiner_key });

    assert_eq!(code(call(&url(follower), "admin_addMember", joiner.clone()).await), 1010);
    let mut bad_key = joiner.clone();
    bad_key["publicKey"] = json!("pyrpub1nope");
    assert_eq!(code(call(&url(leader), "admin_addMember", bad_key).await), -32602);
    let mut bad_addr = joiner.clone();
    bad_addr["raftAddr"] = json!("somewhere");
    assert_eq!(code(call(&url(leader), "admin_addMember", bad_addr).await), -32602);

    let added = call(&url(leader), "admin_addMember", joiner.clone()).await.unwrap();
    assert_eq!(added["members"], 4, "{added}");
    eventually("the new member knows the cluster", async || {
        let health = call(&url(3), "system_health", json!({})).await.ok()?;
        (health["ok"] == true && health["members"] == 4).then_some(())
    })
    .await;

    // The three founders host a log: they cannot leave; neither can a stranger.
    let host = hosts[0];
    assert_eq!(code(call(&url(leader), "admin_removeMember", json!({"id": host})).await), 1020);
    assert_eq!(code(call(&url(leader), "admin_removeMember", json!({"id": 9})).await), 1020);

    // The new member hosts nothing and leaves.
    let removed = call(&url(leader), "admin_removeMember", json!({"id": 3})).await.unwrap();
    assert_eq!(removed, json!({"id": 3, "members": 3}));
    let status = call(&url(leader), "system_status", json!({})).await.unwrap();
    let ids: Vec<u64> =
        status["members"].as_array().unwrap().iter().filter_map(|m| m["id"].as_u64()).collect();
    assert_eq!(ids, [0, 1, 2], "{status}");
}
