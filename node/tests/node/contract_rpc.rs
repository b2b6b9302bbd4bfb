//! Chain contracts through a real node's surface: `pyralog contract deploy|instantiate|call|query`
//! against a one-node testnet, the `contract_*` methods and their errors, a storage value whose
//! proof checks against the state root, and `pyralog light verify-contract` accepting it under
//! the trusted head and refusing a server that lies about it. Then log contracts over the RPC:
//! constraints, triggers, and access control on signed client requests.

use std::sync::Arc;

use pyralog_chain::proof::{StateProof, verify_state_proof};
use pyralog_chain::tx::{Action, SignedTx, Tx};
use pyralog_chain::values::code_hash;
use pyralog_contracts::examples::{AUDIT_TRIGGER, MONOTONIC_KEYS, VOTE, wasm_of, writer_allowlist};
use pyralog_crypto::Keypair;
use pyralog_rpc_params::auth::{Auth, RequestClaim, append_body};
use pyralog_rpc_params::{Append, AppendedRecord};
use serde_json::{Value, json};

use crate::chain_testnet::sync;
use crate::support::{
    ProxyHook, call, code, eventually, hex, proxy, pyralog, pyralog_json, raw_get, start_with, unhex,
};

/// Codes of `node/src/rpc/codes.rs`.
const RECORD_REFUSED: i32 = 1007;
const UNAUTHENTICATED: i32 = 1008;
const ACCESS_DENIED: i32 = 1009;
const TX_REJECTED: i32 = 1041;
const UNKNOWN_CONTRACT: i32 = 1060;
const CONTRACT_FAILED: i32 = 1061;

/// A server that serves another value under a contract's storage key (with the true proof).
struct Liar;

impl ProxyHook for Liar {
    fn answer(&self, method: &str, answer: &mut Value) {
        if method == "contract_getStorage" {
            let mut forged = postcard::to_allocvec(&999_999u64.to_le_bytes().to_vec()).unwrap();
            answer["stateValue"] = json!(hex(&forged));
            forged.drain(..1);
            answer["value"] = json!(hex(&forged));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_is_deployed_called_queried_and_its_state_verified_by_a_light_client() {
    let dir = tempfile::tempdir().unwrap();
    let net = start_with(dir.path(), 1, |config| config.to_owned()).await;
    let rpc = net.rpc[0].as_str();
    eventually("the chain to finalize", async || {
        (call(rpc, "chain_getFinalizedHead", json!({})).await.ok()?["height"].as_u64()? >= 2).then_some(())
    })
    .await;
    let node0 = dir.path().join("node0");
    let base = ["--rpc", rpc, "--base-path", node0.to_str().unwrap(), "--wait"];
    let with = |command: &[&str], extra: &[&str]| -> Vec<String> {
        command.iter().chain(&base).chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |args: Vec<String>| pyralog_json(&args.iter().map(String::as_str).collect::<Vec<_>>());

    // Deploy the vote example from its text; the code is served back byte for byte.
    let source = dir.path().join("vote.wat");
    std::fs::write(&source, VOTE).unwrap();
    let wasm = wasm_of(VOTE.as_bytes()).unwrap();
    let deployed = run(with(&["contract", "deploy"], &[source.to_str().unwrap()]));
    assert_eq!(deployed["code"], hex(&code_hash(&wasm).0));
    let code_hex = deployed["code"].as_str().unwrap().to_owned();
    let served = call(rpc, "contract_getCode", json!({ "code": code_hex })).await.unwrap();
    assert_eq!(unhex(&served["wasm"]), wasm);

    // A ballot open until a far height; one vote; a second one refused by the contract.
    let close = hex(&1_000_000u64.to_le_bytes());
    let opened = run(with(&["contract", "instantiate"], &["--code", &code_hex, "--input", &close]));
    let ballot = opened["contract"].as_str().unwrap().to_owned();
    let record = call(rpc, "contract_get", json!({ "contract": ballot })).await.unwrap();
    assert_eq!(record["code"], code_hex);
    let voted =
        run(with(&["contract", "call"], &["--contract", &ballot, "--entry", "vote", "--input", "0x02"]));
    assert!(voted["log"].as_str().unwrap().starts_with("vote: fuel "), "{voted}");
    let again = with(&["contract", "call"], &["--contract", &ballot, "--entry", "vote", "--input", "0x02"]);
    let again = pyralog(&again.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already voted"), "{again:?}");

    // Read-only: the tally through the CLI and the RPC.
    let query =
        ["contract", "query", "--rpc", rpc, "--contract", &ballot, "--entry", "tally", "--input", "0x02"];
    let tally = pyralog_json(&query);
    let weight = u64::from_le_bytes(unhex(&tally["output"]).try_into().unwrap());
    assert!(weight > 0, "{tally}");
    let unknown = json!({ "contract": hex(&[7; 32]), "entry": "tally", "input": "0x02" });
    assert_eq!(code(call(rpc, "contract_query", unknown).await), UNKNOWN_CONTRACT);
    let bad_input = json!({ "contract": ballot, "entry": "tally", "input": "0x0203" });
    let failed = call(rpc, "contract_query", bad_input).await;
    assert_eq!(code(failed), CONTRACT_FAILED);

    // contract_deploy takes only a deployment.
    let alice = Keypair::generate();
    let head = call(rpc, "chain_getFinalizedHead", json!({})).await.unwrap();
    let chain_id = head["header"]["chainId"].as_str().unwrap().to_owned();
    let key = pyralog_crypto::keys::load_key_file(&node0.join("node.key")).unwrap();
    let transfer = Tx {
        chain_id,
        sender: key.public(),
        nonce: 99,
        fee: 1,
        action: Action::Transfer { to: alice.public(), amount: 1 },
    };
    let transfer = hex(&SignedTx::sign(transfer, &key).encode());
    assert_eq!(code(call(rpc, "contract_deploy", json!({ "tx": transfer })).await), TX_REJECTED);

    // The tally's storage value, proven against the state root.
    let tally_key = hex(b"tally/\x02");
    let stored =
        call(rpc, "contract_getStorage", json!({ "contract": ballot, "key": tally_key })).await.unwrap();
    assert_eq!(stored["value"], tally["output"]);
    let root: [u8; 32] = unhex(&stored["stateRoot"]).try_into().unwrap();
    let proof: StateProof = postcard::from_bytes(&unhex(&stored["proof"])).unwrap();
    verify_state_proof(&root, &unhex(&stored["stateKey"]), Some(&unhex(&stored["stateValue"])), &proof)
        .unwrap();

    // A light client trusts a head past the vote, then checks the tally against it.
    let vote_height = voted["height"].as_u64().unwrap();
    eventually("a finalized block after the vote", async || {
        let head = call(rpc, "chain_getFinalizedHead", json!({})).await.ok()?;
        (head["height"].as_u64()? > vote_height).then_some(())
    })
    .await;
    let state = dir.path().join("light.json");
    let (synced, ok) = sync(rpc, dir.path(), &state).await;
    assert!(ok, "{synced}");
    let verify = |url: &str, key: &str| {
        let args = ["light", "verify-contract", "--rpc", url, "--state", state.to_str().unwrap()];
        let args: Vec<&str> = args.into_iter().chain(["--contract", &ballot, "--key", key]).collect();
        let out = pyralog(&args);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        (report, out.status.success())
    };
    let (report, ok) = verify(rpc, &tally_key);
    assert!(ok, "{report}");
    assert_eq!(report["value"], tally["output"]);
    // The absence of a key is proven too.
    let (absent, ok) = verify(rpc, &hex(b"tally/\x09"));
    assert!(ok && absent["value"].is_null(), "{absent}");
    // A server that changes the value is caught by the proof.
    let liar = proxy(rpc.to_owned(), Arc::new(Liar)).await;
    let (refused, ok) = verify(&liar, &tally_key);
    assert!(!ok, "{refused}");
    assert!(refused["reason"].as_str().unwrap().starts_with("contract storage: "), "{refused}");
}

/// A log created over the RPC with a constraint: its hash is in `log_list`, a refused record's
/// batch fails with code 1007 naming the record and the contract's reason, and nothing of it is
/// written. A log with a trigger derives records in its target log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_constraint_refuses_a_batch_over_the_rpc_with_the_contracts_reason() {
    let dir = tempfile::tempdir().unwrap();
    let net = start_with(dir.path(), 1, |config| config.to_owned()).await;
    let rpc = net.rpc[0].as_str();
    let wasm = wasm_of(MONOTONIC_KEYS.as_bytes()).unwrap();
    let created = call(
        rpc,
        "log_create",
        json!({"name": "ordered", "partitions": 1, "replicationFactor": 1, "constraint": hex(&wasm)}),
    )
    .await
    .unwrap();
    let hash = hex(&pyralog_cluster::constraint::code_hash(&wasm).0);
    assert_eq!(created["constraint"], hash);
    let listed = call(rpc, "log_list", json!({})).await.unwrap();
    assert!(listed.as_array().unwrap().iter().any(|l| l["name"] == "ordered" && l["constraint"] == hash));
    let append = |keys: &[&str]| {
        let records: Vec<Value> =
            keys.iter().map(|k| json!({"key": hex(k.as_bytes()), "value": "0x00"})).collect();
        json!({"log": "ordered", "partition": 0, "records": records})
    };
    eventually("the first append", async || call(rpc, "log_append", append(&["a", "b"])).await.ok()).await;
    let refused = call(rpc, "log_append", append(&["c", "a"])).await;
    let Err(jsonrpsee::core::client::Error::Call(err)) = refused else { panic!("{refused:?}") };
    assert_eq!(err.code(), RECORD_REFUSED);
    let data: Value = serde_json::from_str(err.data().unwrap().get()).unwrap();
    assert_eq!(data, json!({"index": 1, "reason": "keys must increase", "constraint": hash}));
    let read = call(rpc, "log_read", json!({"log": "ordered", "partition": 0})).await.unwrap();
    assert_eq!(read.as_array().unwrap().len(), 2);
    // The node counts its log contracts' calls, refusals and fuel.
    let metrics = raw_get(&net.metrics[0], "/metrics");
    let counter = |event: &str| -> u64 {
        let line = format!("pyralog_log_contract_events_total{{event=\"{event}\"}} ");
        let value = metrics.lines().find_map(|l| l.strip_prefix(line.as_str()));
        value.unwrap_or_else(|| panic!("no {event} in {metrics}")).trim().parse().unwrap()
    };
    assert!(counter("constraint_calls") >= 3 && counter("constraint_refused") >= 1);
    assert!(counter("constraint_fuel") > 0);
    // The cluster light client pins the log's rules with its placement and reports them.
    let trust = dir.path().join("trust.json");
    let verify =
        ["light", "verify-record", "--rpc", rpc, "--log", "ordered", "--partition", "0", "--offset", "1"];
    let verify: Vec<&str> =
        verify.into_iter().chain(["--trust", trust.to_str().unwrap(), "--trust-on-first-use"]).collect();
    let report = eventually("a certified checkpoint covering offset 1", async || {
        let out = pyralog(&verify);
        out.status.success().then(|| serde_json::from_slice::<Value>(&out.stdout).unwrap())
    })
    .await;
    assert_eq!(report["rules"], json!({"constraint": hash, "acl": null, "trigger": null}));
    // Code that is not a valid module is refused when the log is created.
    let bad = json!({"name": "broken", "partitions": 1, "replicationFactor": 1, "constraint": "0x0061736d"});
    assert_eq!(code(call(rpc, "log_create", bad).await), 1020);

    // A trigger: every record of `orders` derives one of `audit`.
    call(rpc, "log_create", json!({"name": "audit", "partitions": 1, "replicationFactor": 1})).await.unwrap();
    let trigger = hex(&wasm_of(AUDIT_TRIGGER.as_bytes()).unwrap());
    let orders = json!({"name": "orders", "partitions": 1, "replicationFactor": 1,
        "trigger": {"code": trigger, "target": "audit"}});
    let created = call(rpc, "log_create", orders).await.unwrap();
    assert_eq!(created["trigger"]["target"], "audit");
    let order = json!({"log": "orders", "partition": 0, "records": [{"value": hex(b"order 1")}]});
    eventually("an order appended", async || call(rpc, "log_append", order.clone()).await.ok()).await;
    let derived = eventually("its audit record", async || {
        let read = call(rpc, "log_read", json!({"log": "audit", "partition": 0})).await.ok()?;
        read.as_array()?.first().cloned()
    })
    .await;
    assert_eq!(derived["value"], hex(b"audit:order 1"));
    // Producer ids from 2^63 belong to triggers.
    let forged = json!({"log": "audit", "partition": 0,
        "records": [{"value": "0x00", "producer": {"id": 1u64 << 63, "seq": 0}}]});
    assert_eq!(code(call(rpc, "log_append", forged).await), -32602);
}

/// A log on a 3-node cluster whose access-control contract lets one key append: anonymous and
/// other keys' appends are denied with the contract's reason (1009), the writer's signed append
/// is taken, and a replayed, stale or tampered signature is refused (1008) before the contract
/// runs; every node reads the records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_control_contract_decides_on_signed_identities() {
    // Three node processes; requests go through node 1 (the log's partition may be led by any).
    let dir = tempfile::tempdir().unwrap();
    let net = start_with(dir.path(), 3, |config| config.to_owned()).await;
    let rpc = net.rpc[1].as_str();
    let (writer, other) = (Keypair::generate(), Keypair::generate());
    let acl = wasm_of(writer_allowlist(writer.public().as_bytes()).as_bytes()).unwrap();
    let created = json!({"name": "private", "partitions": 1, "replicationFactor": 3, "acl": hex(&acl)});
    let created = call(rpc, "log_create", created).await.unwrap();
    assert_eq!(created["acl"], hex(&pyralog_cluster::constraint::code_hash(&acl).0));
    let records = vec![AppendedRecord {
        key: None,
        value: hex(b"secret"),
        headers: Vec::new(),
        timestamp_ms: Some(1),
        producer: None,
    }];
    let signed = |key: &Keypair, nonce: u64, timestamp_ms: u64| {
        let body = append_body(&records).unwrap();
        let claim = RequestClaim {
            method: "log_append",
            log: "private",
            partition: Some(0),
            timestamp_ms,
            nonce,
            body,
        };
        Auth::sign(key, &claim)
    };
    let append = |auth: Option<Auth>| {
        let params = Append { log: "private".into(), records: records.clone(), partition: Some(0), auth };
        serde_json::to_value(params).unwrap()
    };
    let now =
        || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let denied = |result: Result<Value, jsonrpsee::core::client::Error>| match result {
        Err(jsonrpsee::core::client::Error::Call(err)) => (err.code(), err.message().to_owned()),
        other => panic!("{other:?}"),
    };

    // Anonymous: the contract wants a signature (the log may still be electing its leader).
    let anonymous = eventually("the private log's contract answering", async || {
        let (code, message) = denied(call(rpc, "log_append", append(None)).await);
        (code == ACCESS_DENIED).then_some(message)
    })
    .await;
    assert!(anonymous.ends_with("sign the request to append"), "{anonymous}");
    let (code, message) = denied(call(rpc, "log_append", append(Some(signed(&other, 1, now())))).await);
    assert_eq!(
        (code, message.ends_with("only the log's writer appends")),
        (ACCESS_DENIED, true),
        "{message}"
    );
    let written = eventually("the writer's append", async || {
        call(rpc, "log_append", append(Some(signed(&writer, now(), now())))).await.ok()
    })
    .await;
    assert_eq!(written[0]["offset"], 0);

    // Replays, stale clocks and tampered requests never reach the contract.
    let once = signed(&writer, 7, now());
    call(rpc, "log_append", append(Some(once.clone()))).await.unwrap();
    let (code, message) = denied(call(rpc, "log_append", append(Some(once))).await);
    assert_eq!(code, UNAUTHENTICATED, "{message}");
    assert!(message.contains("already used"), "{message}");
    let stale = signed(&writer, 8, now() - 10 * 60 * 1000);
    assert_eq!(denied(call(rpc, "log_append", append(Some(stale))).await).0, UNAUTHENTICATED);
    let mut tampered = append(Some(signed(&writer, 9, now())));
    tampered["records"][0]["value"] = json!(hex(b"forged"));
    let (code, message) = denied(call(rpc, "log_append", tampered).await);
    assert_eq!(
        (code, message.as_str()),
        (UNAUTHENTICATED, "auth.signature: does not verify for this request")
    );

    // Anyone reads, through any node; two records were written.
    for url in &net.rpc {
        let read = eventually("two records on every node", async || {
            let read = call(url, "log_read", json!({"log": "private", "partition": 0})).await.ok()?;
            (read.as_array()?.len() == 2).then_some(read)
        })
        .await;
        assert_eq!(read[1]["value"], hex(b"secret"));
    }
}
