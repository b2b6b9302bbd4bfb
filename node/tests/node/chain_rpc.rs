//! The chain's JSON-RPC on a 3-node testnet with periodic anchoring off: anchoring on demand
//! (`log_anchor`) and its transaction's status, `log_getProof` with finality before and after,
//! state values and proofs checked against the next header's state root, transfers through
//! `tx_submit` (a forged or replayed one refused with a code), headers, commits and validators,
//! clear errors for unknown heights and clusters, and the finalized-head subscription. Its
//! cluster links are plain TCP (`transport = "tcp"`, as `pyralog testnet --dev` writes), so the
//! TCP transport stays covered while the other multi-node tests run over WireGuard tunnels.

use jsonrpsee::core::client::{Subscription, SubscriptionClientT};
use jsonrpsee::ws_client::WsClientBuilder;
use pyralog_chain::block::Header;
use pyralog_chain::proof::{StateProof, verify_state_proof};
use pyralog_chain::tx::{Action, SignedTx, Tx};
use pyralog_chain::values::{Account, account_key};
use pyralog_consensus::{Engine, FinalityProof};
use pyralog_crypto::keys::load_key_file;
use pyralog_crypto::{Keypair, Signature};
use serde_json::{Value, json};

use crate::support::{call, code, eventually, hex, start_with, unhex};

/// Codes of `node/src/rpc/codes.rs`.
const UNKNOWN_HEIGHT: i32 = 1040;
const TX_REJECTED: i32 = 1041;
const NOT_ANCHORED: i32 = 1042;
const UNKNOWN_CLUSTER: i32 = 1043;
const NOT_LEADER: i32 = 1010;

async fn committed(url: &str, id: &Value) -> Value {
    eventually("the transaction committed", async || {
        let status = call(url, "tx_status", json!({ "id": id })).await.ok()?;
        (status["status"] == "committed").then_some(status)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_rpc_anchors_on_demand_and_serves_verifiable_state() {
    let dir = tempfile::tempdir().unwrap();
    let net = start_with(dir.path(), 3, |config| {
        let edited = config
            .replace("anchor_interval_ms = 1000", "anchor_interval_ms = 0")
            .replace("transport = \"wireguard\"", "transport = \"tcp\"");
        assert!(edited.contains("transport = \"tcp\""), "testnet configs name their transport");
        edited
    })
    .await;
    let (a, b) = (net.rpc[0].clone(), net.rpc[1].clone());
    eventually("finalized blocks", async || {
        (call(&a, "chain_getFinalizedHead", json!({})).await.ok()?["height"].as_u64()? >= 2).then_some(())
    })
    .await;
    let cluster = call(&a, "system_status", json!({})).await.unwrap()["cluster"].as_str().unwrap().to_owned();
    assert_eq!(call(&a, "system_tunnel", json!({})).await.unwrap(), json!({"links": "tcp"}));

    // Headers, commits, validators; unknown heights.
    let head = call(&a, "chain_getFinalizedHead", json!({})).await.unwrap();
    let header = Header::decode(&unhex(&head["header"]["encoded"])).unwrap();
    assert_eq!(head["header"]["blockId"], hex(&header.block_id().0));
    let first = call(&b, "chain_getHeader", json!({"height": 1})).await.unwrap();
    assert_eq!(first["height"], 1);
    assert_eq!(first["parent"], hex(&[0; 32]));
    let commit = call(&b, "chain_getCommit", json!({"height": 1})).await.unwrap();
    assert_eq!(commit["blockId"], first["blockId"]);
    assert!(commit["signatures"].as_array().unwrap().len() >= 3, "all of 3 validators (> 2/3) signed");
    // The engine-tagged finality proof: the chain's engine, its family, and the encoding a light
    // client verifies (here: the same certificate).
    let finality = call(&b, "chain_getFinality", json!({"height": 1})).await.unwrap();
    assert_eq!((finality["height"].as_u64(), finality["engine"].as_str()), (Some(1), Some("tendermint")));
    assert_eq!(
        (finality["family"].as_str(), finality["blockId"].clone()),
        (Some("quorum"), first["blockId"].clone())
    );
    let proof: FinalityProof = postcard::from_bytes(&unhex(&finality["encoded"])).unwrap();
    assert_eq!(proof.engine(), Engine::Tendermint);
    assert_eq!(
        proof.commit_certificate().map(|c| hex(&postcard::to_allocvec(c).unwrap())),
        commit["encoded"].as_str().map(String::from)
    );
    assert_eq!(head["finality"]["engine"], "tendermint");
    assert_eq!(code(call(&a, "chain_getFinality", json!({"height": 1_000_000})).await), UNKNOWN_HEIGHT);
    let validators = call(&b, "chain_getValidators", json!({})).await.unwrap();
    assert_eq!(
        (validators["totalPower"].as_u64(), validators["hash"].clone()),
        (Some(3), first["validatorsHash"].clone())
    );
    assert_eq!(code(call(&a, "chain_getHeader", json!({"height": 1_000_000})).await), UNKNOWN_HEIGHT);
    assert_eq!(code(call(&a, "chain_getBlock", json!({"height": 0})).await), UNKNOWN_HEIGHT);

    // Nothing anchors by itself: the record is not final until log_anchor.
    call(&a, "log_create", json!({"name": "ledger", "partitions": 1, "replicationFactor": 3})).await.unwrap();
    let records = json!([{ "value": hex(b"debit 10") }, { "value": hex(b"credit 10") }]);
    eventually("an acknowledged append", async || {
        call(&a, "log_append", json!({"log": "ledger", "partition": 0, "records": records})).await.ok()
    })
    .await;
    let proof = json!({"log": "ledger", "partition": 0, "offset": 1, "finality": true});
    eventually("a certified checkpoint", async || {
        let c = call(&a, "log_getCheckpoint", json!({"log": "ledger", "partition": 0})).await.ok()?;
        (c["checkpoint"]["size"].as_u64()? == 2).then_some(())
    })
    .await;
    assert_eq!(code(call(&b, "log_getProof", proof.clone()).await), NOT_ANCHORED);
    let unknown =
        json!({"log": "ledger", "partition": 0, "offset": 1, "finality": true, "cluster": "nowhere"});
    assert_eq!(code(call(&b, "log_getProof", unknown).await), UNKNOWN_CLUSTER);

    // On demand: the partition's leader submits the anchor.
    let mut submitted = Value::Null;
    for url in &net.rpc {
        let answer = call(url, "log_anchor", json!({})).await.unwrap();
        if let Some(first) = answer["submitted"].as_array().and_then(|s| s.first()) {
            submitted = first.clone();
        }
    }
    assert_eq!(
        (submitted["log"].as_str(), submitted["size"].as_u64()),
        (Some("ledger"), Some(2)),
        "{submitted}"
    );
    let status = committed(&b, &submitted["tx"]).await;
    assert_eq!(status["code"], 0, "{status}");
    // The block that carried it says what it anchored.
    let block = call(&b, "chain_getBlock", json!({"height": status["height"]})).await.unwrap();
    let carried = block["txs"].as_array().unwrap().iter().find(|tx| tx["decoded"]["id"] == submitted["tx"]);
    let decoded = &carried.expect("the anchoring transaction in its block")["decoded"];
    assert_eq!(decoded["action"], "anchorCheckpoint");
    assert_eq!(decoded["anchor"], json!({"cluster": cluster, "log": "ledger", "partition": 0, "size": 2}));
    let anchored =
        eventually("the anchor final", async || call(&b, "log_getProof", proof.clone()).await.ok()).await;
    assert_eq!(anchored["certificate"]["checkpoint"]["size"], 2);

    // The anchor's state proof checks against the root in the next header.
    let key = format!("anchor/{cluster}/ledger/0");
    let state =
        call(&b, "state_getProof", json!({"keyText": key, "height": status["height"]})).await.unwrap();
    let next = eventually("the header after the anchor", async || {
        call(&b, "chain_getHeader", json!({"height": state["headerHeight"]})).await.ok()
    })
    .await;
    assert_eq!(next["stateRoot"], state["stateRoot"]);
    let root: [u8; 32] = unhex(&next["stateRoot"]).try_into().unwrap();
    let value = unhex(&state["value"]);
    let state_proof: StateProof = postcard::from_bytes(&unhex(&state["proof"])).unwrap();
    verify_state_proof(&root, key.as_bytes(), Some(&value), &state_proof).unwrap();
    let mut altered = value.clone();
    altered[0] ^= 1;
    assert!(verify_state_proof(&root, key.as_bytes(), Some(&altered), &state_proof).is_err());

    // Transfers through tx_submit: node 0's genesis account pays; a forgery and a replay are refused.
    let payer = load_key_file(&dir.path().join("node0/node.key")).unwrap();
    let payee = Keypair::generate();
    let account = |key: &Keypair| {
        let b = b.clone();
        let key = key.public();
        async move {
            let answer = call(&b, "state_get", json!({"key": hex(&account_key(&key))})).await.unwrap();
            match &answer["value"] {
                Value::Null => Account::default(),
                value => postcard::from_bytes(&unhex(value)).unwrap(),
            }
        }
    };
    let nonce = account(&payer).await.nonce;
    let tx = Tx {
        chain_id: header.chain_id.clone(),
        sender: payer.public(),
        nonce,
        fee: 1,
        action: Action::Transfer { to: payee.public(), amount: 250 },
    };
    let signed = SignedTx::sign(tx, &payer);
    let mut forged = signed.clone();
    forged.signature = Signature::from_bytes(&[7; 64]);
    assert_eq!(code(call(&a, "tx_submit", json!({"tx": hex(&forged.encode())})).await), TX_REJECTED);
    assert_eq!(code(call(&a, "tx_submit", json!({"tx": "0x00"})).await), TX_REJECTED);
    let id = call(&a, "tx_submit", json!({"tx": hex(&signed.encode())})).await.unwrap()["id"].clone();
    assert_eq!(id, hex(&signed.id().0));
    assert_eq!(committed(&b, &id).await["code"], 0);
    assert_eq!(account(&payee).await.balance, 250);
    assert_eq!(
        code(call(&a, "tx_submit", json!({"tx": hex(&signed.encode())})).await),
        TX_REJECTED,
        "replay"
    );
    let unknown = call(&a, "tx_status", json!({"id": hex(&[9; 32])})).await.unwrap();
    assert_eq!(unknown["status"], "unknown");

    // The finalized-head subscription sends consecutive heights.
    let ws = WsClientBuilder::default().build(net.rpc[2].replace("http://", "ws://")).await.unwrap();
    let mut heads: Subscription<Value> = ws
        .subscribe(
            "chain_subscribeFinalizedHeads",
            jsonrpsee::rpc_params![],
            "chain_unsubscribeFinalizedHeads",
        )
        .await
        .unwrap();
    let one = heads.next().await.unwrap().unwrap();
    let two = heads.next().await.unwrap().unwrap();
    assert_eq!(two["height"].as_u64().unwrap(), one["height"].as_u64().unwrap() + 1);
    assert_eq!(two["parent"], one["blockId"]);

    // An append spread over two partitions, one of whose (single) replica is down, fails with
    // that partition's own code, lists what the other partition stored, and which records
    // failed. (Two failed records share one error: that used to turn into a generic 1030 and
    // lose the leader hint, and records written after the failed index were not listed.)
    let mut net = net;
    let created = call(&a, "log_create", json!({"name": "split", "partitions": 2, "replicationFactor": 1}))
        .await
        .unwrap();
    let holder = |p: usize| created["placement"][p][0].as_u64().unwrap() as usize;
    let (alive, victim) = (holder(0), holder(1));
    let caller = (0..3).find(|n| *n != victim).unwrap();
    eventually("both partitions writable", async || {
        let records = json!([{ "value": hex(b"warm-up") }]);
        for partition in 0..2 {
            call(&a, "log_append", json!({"log": "split", "partition": partition, "records": records}))
                .await
                .ok()?;
        }
        Some(())
    })
    .await;
    net.children[victim].kill().unwrap();
    net.children[victim].wait().unwrap();
    // Round robin from the caller's next partition: records alternate between the two.
    let records: Vec<Value> =
        (0..4).map(|i| json!({ "value": hex(format!("spread {i}").as_bytes()) })).collect();
    let err = match call(&net.rpc[caller], "log_append", json!({"log": "split", "records": records})).await {
        Err(jsonrpsee::core::client::Error::Call(err)) => err,
        other => panic!("expected an error object, got {other:?}"),
    };
    assert_eq!(err.code(), NOT_LEADER, "{err:?}");
    let data: Value = serde_json::from_str(err.data().unwrap().get()).unwrap();
    let failed: Vec<u64> = data["failed"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap()).collect();
    assert_eq!(failed.len(), 2, "{data}");
    assert_eq!(data["detail"]["leader"], victim as u64, "the leader hint survives: {data}");
    let written = data["written"].as_array().unwrap();
    if alive != victim {
        assert_eq!(written.len(), 2, "every record the other partition stored: {data}");
        for receipt in written {
            assert_eq!(receipt["partition"], 0);
            assert!(!failed.contains(&receipt["index"].as_u64().unwrap()));
        }
    }
}
