//! Cluster membership over JSON-RPC (`admin_addMember`, `admin_removeMember`), as an operator
//! grows and shrinks a running cluster: a fourth node started with its own id joins when the
//! global leader adds it, leaves again while it hosts nothing, and every refusal (not the
//! leader, a member hosting replicas, an unknown member, a malformed key) has its code. Over
//! WireGuard the members first take the new node as a tunnel peer (`admin_addTunnelPeer`),
//! which they keep across a restart.

use std::process::Command;

use serde_json::{Value, json};

use crate::support::{call, code, eventually, free_base, spawn_node};

/// Writes a four-node cluster's base paths under `dir` (WireGuard links unless `dev`) whose
/// founders are nodes 0-2: node 3 knows them but is not one of them. Returns node 3's
/// `[[cluster.members]]` entry as the founders had it.
fn three_founders_and_a_joiner(dir: &std::path::Path, ports: (u16, u16, u16), dev: bool) -> toml::Value {
    let (raft, rpc, metrics) = ports;
    let out = Command::new(env!("CARGO_BIN_EXE_pyralog"))
        .args(["testnet", "--nodes", "4", "--no-chain", "--kafka-port", "0", "--out"])
        .arg(dir)
        .args(["--raft-port", &raft.to_string(), "--rpc-port", &rpc.to_string()])
        .args(["--metrics-port", &metrics.to_string()])
        .args(dev.then_some("--dev"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut entry = None;
    for i in 0..4 {
        let path = dir.join(format!("node{i}/config.toml"));
        let mut config: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        let members = config["cluster"]["members"].as_array_mut().unwrap();
        let joiner = members.iter().position(|m| m["id"].as_integer() == Some(3)).unwrap();
        entry = Some(members.remove(joiner));
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    }
    entry.unwrap()
}

/// The global leader the three founders agree on, asked at `url`.
async fn founders_leader(url: &str) -> u16 {
    eventually("a global leader of the three founders", async || {
        let health = call(url, "system_health", json!({})).await.ok()?;
        (health["members"] == 3).then_some(())?;
        health["globalLeader"].as_u64()
    })
    .await as u16
}

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
    let entry = three_founders_and_a_joiner(dir.path(), (raft, rpc, metrics), true);
    let joiner_key = entry["public_key"].as_str().unwrap().to_owned();
    let _nodes = Nodes((0..4).map(|i| spawn_node(dir.path(), i)).collect());
    let url = |i: u16| format!("http://127.0.0.1:{}", rpc + i);
    let leader = founders_leader(&url(0)).await;
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
    let tunnel_peer = json!({"wireguardPublicKey": "x", "endpoint": "127.0.0.1:1"});
    assert_eq!(code(call(&url(leader), "admin_addTunnelPeer", tunnel_peer).await), -32602);
    let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let tunnel_peer = json!({"wireguardPublicKey": key, "endpoint": "127.0.0.1:1"});
    assert_eq!(code(call(&url(leader), "admin_addTunnelPeer", tunnel_peer).await), 1034, "plain TCP links");

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_a_wireguard_cluster_once_every_member_has_it_as_a_tunnel_peer() {
    use base64::Engine as _;

    let dir = tempfile::tempdir().unwrap();
    let base = free_base(12);
    let (raft, rpc, metrics) = (base, base + 4, base + 8);
    let entry = three_founders_and_a_joiner(dir.path(), (raft, rpc, metrics), false);
    let field = |name: &str| entry[name].as_str().unwrap().to_owned();
    let rosenpass = std::fs::read(dir.path().join("node3/rosenpass.pub")).unwrap();
    let peer = json!({
        "wireguardPublicKey": field("wireguard_public_key"),
        "endpoint": field("raft_addr"),
        "rosenpassPublicKey": base64::engine::general_purpose::STANDARD.encode(&rosenpass),
    });
    let mut nodes = Nodes((0..4).map(|i| spawn_node(dir.path(), i)).collect());
    let url = |i: u16| format!("http://127.0.0.1:{}", rpc + i);
    let leader = founders_leader(&url(0)).await;

    // Refusals change nothing: a Rosenpass key of the wrong size, an endpoint another peer has.
    let mut short = peer.clone();
    short["rosenpassPublicKey"] = json!("AAAA");
    assert_eq!(code(call(&url(0), "admin_addTunnelPeer", short).await), -32602);
    let mut clash = peer.clone();
    clash["endpoint"] = json!(format!("127.0.0.1:{}", raft + 1));
    assert_eq!(code(call(&url(0), "admin_addTunnelPeer", clash).await), 1020, "node 1's endpoint");

    for i in 0..3 {
        let added = call(&url(i), "admin_addTunnelPeer", peer.clone()).await.unwrap();
        assert_eq!(added["added"], true, "node {i}: {added}");
    }
    let again = call(&url(0), "admin_addTunnelPeer", peer.clone()).await.unwrap();
    assert_eq!(again["added"], false, "{again}");
    let joiner = json!({ "id": 3, "raftAddr": field("raft_addr"), "publicKey": field("public_key") });
    let added = call(&url(leader), "admin_addMember", joiner).await.unwrap();
    assert_eq!(added["members"], 4, "{added}");
    eventually("the new member knows the cluster", async || {
        let health = call(&url(3), "system_health", json!({})).await.ok()?;
        (health["ok"] == true && health["members"] == 4).then_some(())
    })
    .await;

    // A log on all four: a record appended through the new member reaches every replica.
    let log = json!({"name": "wide", "partitions": 1, "replicationFactor": 4});
    call(&url(leader), "log_create", log).await.unwrap();
    let record = json!({"log": "wide", "partition": 0, "records": [{"value": "0x01"}]});
    eventually("an append through the new member", async || {
        call(&url(3), "log_append", record.clone()).await.ok()
    })
    .await;
    for i in 0..4 {
        eventually("the record on every replica", async || {
            let read = call(&url(i), "log_read", json!({"log": "wide", "partition": 0})).await.ok()?;
            (read.as_array()?.len() == 1).then_some(())
        })
        .await;
    }

    // A founder restarted keeps the peer it was given (BASE/peers/added.toml).
    let restarted = (leader + 1) % 3;
    let _ = nodes.0[restarted as usize].kill();
    let _ = nodes.0[restarted as usize].wait();
    nodes.0[restarted as usize] = spawn_node(dir.path(), restarted);
    let kept = eventually("the restarted founder", async || {
        call(&url(restarted), "admin_addTunnelPeer", peer.clone()).await.ok()
    })
    .await;
    assert_eq!(kept["added"], false, "kept across the restart: {kept}");
}
