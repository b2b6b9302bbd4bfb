//! Proof-of-Stake through the operator surface of three real node processes (`pyralog testnet
//! --engine pos`): `pyralog tx` funds an account, creates a validator with it, unbonds part of
//! its stake and has a second creation refused; `staking_*` answers carry state proofs that
//! verify against the state root they name; `pyralog query staking` prints them; the metrics
//! show the bonded power.

use pyralog_chain::proof::{StateProof, verify_state_proof};
use serde_json::{Value, json};

use crate::support::{call, eventually, pyralog, pyralog_json, raw_get, start_clusters_on, unhex};

/// Checks one `evidence {key, value, proof}` of a `staking_*` answer against its state root.
fn check_evidence(answer: &Value, evidence: &Value) {
    let root: [u8; 32] = unhex(&answer["stateRoot"]).try_into().unwrap();
    let proof: StateProof = postcard::from_bytes(&unhex(&evidence["proof"])).unwrap();
    let value = (!evidence["value"].is_null()).then(|| unhex(&evidence["value"]));
    verify_state_proof(&root, &unhex(&evidence["key"]), value.as_deref(), &proof).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_stake_through_the_cli_and_read_proven_staking_state() {
    let dir = tempfile::tempdir().unwrap();
    let net = start_clusters_on("pos", dir.path(), 1, 3, |config| config.to_owned()).await;
    let rpc = net.rpc[0].as_str();
    eventually("the chain to finalize", async || {
        let head = call(rpc, "chain_getFinalizedHead", json!({})).await.ok()?;
        (head["height"].as_u64()? >= 2).then_some(())
    })
    .await;
    let params = call(rpc, "staking_params", json!({})).await.unwrap();
    assert_eq!(params["params"]["powerReduction"], 1000);
    check_evidence(&params, &params["evidence"]);

    // An account funded by node0, then a validator of power 1 (the three nodes keep a quorum).
    let key_file = dir.path().join("alice.key");
    let generated = pyralog(&["keys", "generate", "--out", key_file.to_str().unwrap()]);
    assert!(generated.status.success());
    let alice = String::from_utf8(generated.stdout).unwrap().trim().to_owned();
    let node0 = dir.path().join("node0");
    let sent = pyralog_json(&[
        "tx",
        "transfer",
        "--rpc",
        rpc,
        "--base-path",
        node0.to_str().unwrap(),
        "--to",
        &alice,
        "--amount",
        "5000",
        "--wait",
    ]);
    assert_eq!(sent["ok"], true, "{sent}");
    let key = key_file.to_str().unwrap();
    let created = pyralog_json(&[
        "tx",
        "create-validator",
        "--rpc",
        rpc,
        "--key",
        key,
        "--self-bond",
        "1000",
        "--description",
        "alice",
        "--wait",
    ]);
    assert!(created["log"].as_str().unwrap().contains("created validator"), "{created}");
    // A second one for the same operator is refused, with the chain's reason and exit 1.
    let again =
        pyralog(&["tx", "create-validator", "--rpc", rpc, "--key", key, "--self-bond", "1000", "--wait"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already operates a validator"));

    // In the set two heights after its transaction; its record and proof.
    let in_set = eventually("alice's validator in the set", async || {
        let validators = call(rpc, "staking_validators", json!({})).await.ok()?;
        let mine = validators["validators"].as_array()?.iter().find(|v| v["operator"] == alice)?.clone();
        (mine["status"] == "bonded").then_some((validators, mine))
    })
    .await;
    let (validators, mine) = in_set;
    assert_eq!(validators["validators"].as_array().unwrap().len(), 4);
    assert_eq!((mine["tokens"].as_u64(), mine["votingPower"].as_u64()), (Some(1000), Some(1)));
    for v in validators["validators"].as_array().unwrap() {
        check_evidence(&validators, &v["evidence"]);
    }

    // Unbond part of it: an entry locked until both height and time pass, and the delegation
    // shrinks.
    let unbonded = pyralog_json(&[
        "tx",
        "unbond",
        "--rpc",
        rpc,
        "--key",
        key,
        "--validator",
        &alice,
        "--amount",
        "400",
        "--wait",
    ]);
    assert_eq!(unbonded["ok"], true, "{unbonded}");
    let entries =
        call(rpc, "staking_unbonding", json!({ "delegator": alice, "validator": alice })).await.unwrap();
    assert_eq!(entries["entries"][0]["balance"], 400);
    check_evidence(&entries, &entries["evidence"]);
    let delegations = call(rpc, "staking_delegations", json!({ "delegator": alice })).await.unwrap();
    assert_eq!(delegations["delegations"][0]["tokens"], 600);
    check_evidence(&delegations, &delegations["delegations"][0]["evidence"]);
    let info = call(rpc, "staking_signingInfo", json!({ "consensusKey": alice })).await.unwrap();
    assert_eq!(info["signingInfo"]["window"], 20);

    // The CLI prints the same answers; the metrics count the bonded power.
    let printed = pyralog(&["query", "staking", "validator", &alice, "--rpc", rpc]);
    assert!(printed.status.success());
    let printed: Value = serde_json::from_slice(&printed.stdout).unwrap();
    assert_eq!(printed["validator"]["operator"], alice);
    let scraped = eventually("the bonded power in the metrics", async || {
        let text = raw_get(&net.metrics[0], "/metrics");
        text.lines().any(|l| l.starts_with("pyralog_staking_bonded_power ")).then_some(text)
    })
    .await;
    // Every staking panel of the dashboard has its metric here.
    crate::dashboard::assert_exported(&scraped, "pyralog_staking_");
}
