//! zk proofs end to end on a 3-process testnet: a log created with both zk trees, appends with
//! blindings, a Groth16 membership proof made by the CLI on the client and one made by a node,
//! both verified by `pyralog light verify-zk` against the certified checkpoint; append-batch
//! STARKs from the empty tree and then from the trusted checkpoint to the next; and every lie
//! (another nonce, a changed statement, a stale root) refused.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{call, code, eventually, hex, start_with};

const LOG: &str = "creds";

fn pyralog(args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pyralog")).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), report, stderr)
}

fn blinding(i: u8) -> [u8; 32] {
    [i.wrapping_mul(7).wrapping_add(1); 32]
}

fn record(i: u8) -> Value {
    json!({
        "key": hex(format!("user-{i}").as_bytes()),
        "value": hex(format!("credential-{i}").as_bytes()),
        "headers": [{"name": "zk-blinding", "value": hex(&blinding(i))}],
    })
}

/// Waits for a certified checkpoint of exactly `size` records; returns its JSON.
async fn certified(rpc: &str, size: u64) -> Value {
    eventually("a certified checkpoint", async || {
        let answer = call(rpc, "log_getCheckpoint", json!({"log": LOG, "partition": 0})).await.ok()?;
        (answer["checkpoint"]["size"] == size).then_some(answer)
    })
    .await
}

fn write(path: &Path, value: &Value) -> String {
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_and_append_proofs_verify_against_certified_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("zk-keys");
    let keys_arg = keys.to_str().unwrap().to_owned();
    let (ok, report, stderr) = pyralog(&["zk", "setup", "--out", &keys_arg]);
    assert!(ok, "{stderr}");
    assert_eq!(report["depth"], 32);
    assert!(stderr.contains("single-party"), "the setup warns about trust: {stderr}");

    let nodes = dir.path().join("net");
    let net = start_with(&nodes, 3, |config| format!("{config}\n[zk]\nkeys = {keys_arg:?}\n")).await;
    let rpc = net.rpc[1].clone();

    // Unknown proof systems and malformed blindings are refused; nothing is created or written.
    let bad = json!({"name": LOG, "partitions": 1, "replicationFactor": 3, "zk": ["snark"]});
    assert_eq!(code(call(&rpc, "log_create", bad).await), -32602);
    let created = json!({"name": LOG, "partitions": 1, "replicationFactor": 3, "zk": ["groth16", "stark"]});
    let created = call(&net.rpc[0], "log_create", created).await.unwrap();
    assert_eq!(created["zk"], json!(["groth16", "stark"]));
    let plain = json!({"name": "plain", "partitions": 1, "replicationFactor": 3});
    call(&net.rpc[0], "log_create", plain).await.unwrap();
    eventually("partition leaders", async || {
        let status = call(&rpc, "system_status", json!({})).await.ok()?;
        let partitions = status["partitions"].as_array()?;
        (partitions.len() == 2 && partitions.iter().all(|p| p["leader"].is_u64())).then_some(())
    })
    .await;
    let short = json!({"value": "0x01", "headers": [{"name": "zk-blinding", "value": "0x0102"}]});
    let answer = call(&rpc, "log_append", json!({"log": LOG, "partition": 0, "records": [short]})).await;
    assert_eq!(code(answer), 1006);
    let records: Vec<Value> = (0..5).map(record).collect();
    call(&rpc, "log_append", json!({"log": LOG, "partition": 0, "records": records})).await.unwrap();
    let checkpoint = certified(&rpc, 5).await;
    let zk_roots = &checkpoint["checkpoint"]["zkRoots"];
    assert!(zk_roots["poseidon"].is_string() && zk_roots["rescue"].is_string(), "{checkpoint}");
    let served = call(&rpc, "log_getZkRoots", json!({"log": LOG, "partition": 0, "size": 5})).await.unwrap();
    assert_eq!(&served["roots"], zk_roots, "every replica computes the roots the quorum signed");
    let no_tree = json!({"log": "plain", "partition": 0, "offset": 0, "size": 0});
    assert_eq!(code(call(&rpc, "log_getZkPath", no_tree).await), 1050);

    // A membership proof made on the client, for the record it holds.
    let nonce = hex(&[0x11; 32]);
    let held = json!({
        "offset": 2, "key": hex(b"user-2"), "value": hex(b"credential-2"), "blinding": hex(&blinding(2)),
    });
    let record_file = write(&dir.path().join("record.json"), &held);
    let proof_file = dir.path().join("membership.json").to_str().unwrap().to_owned();
    let prove = ["zk", "prove-membership", "--rpc", &rpc, "--log", LOG, "--partition", "0"];
    let (ok, _, stderr) = pyralog(
        &[
            &prove[..],
            &["--record-file", &record_file, "--keys", &keys_arg, "--nonce", &nonce, "--out", &proof_file],
        ]
        .concat(),
    );
    assert!(ok, "{stderr}");
    // A record the client does not hold in the log is refused before proving.
    let wrong = write(
        &dir.path().join("wrong.json"),
        &json!({"offset": 2, "key": null, "value": "0x00", "blinding": null}),
    );
    let (ok, _, stderr) =
        pyralog(&[&prove[..], &["--record-file", &wrong, "--keys", &keys_arg, "--nonce", &nonce]].concat());
    assert!(!ok && stderr.contains("not this record"), "{stderr}");

    let trust = dir.path().join("trust.json").to_str().unwrap().to_owned();
    let light = |proof: &str, extra: &[&str]| {
        let args =
            [&["light", "verify-zk", "--rpc", rpc.as_str(), "--proof", proof, "--trust", &trust], extra]
                .concat();
        pyralog(&args)
    };
    let (ok, report, stderr) =
        light(&proof_file, &["--keys", &keys_arg, "--nonce", &nonce, "--trust-on-first-use"]);
    assert!(ok && report["verified"] == true, "{report} {stderr}");
    assert_eq!(report["claim"]["system"], "groth16");
    assert_eq!(report["checkpoint"]["size"], 5);
    let (ok, report, _) = light(&proof_file, &["--keys", &keys_arg, "--nonce", &hex(&[0x12; 32])]);
    assert!(!ok && report["reason"].as_str().unwrap().contains("nonce"), "{report}");
    let mut lie: Value = serde_json::from_str(&std::fs::read_to_string(&proof_file).unwrap()).unwrap();
    lie["proof"]["epoch"] = json!(lie["proof"]["epoch"].as_u64().unwrap() + 1);
    let lie_file = write(&dir.path().join("lie.json"), &lie);
    let (ok, report, _) = light(&lie_file, &["--keys", &keys_arg, "--nonce", &nonce]);
    assert!(!ok && report["verified"] == false, "{report}");

    // A membership proof made by a node (which learns the record), disclosing the key.
    let asked = json!({"log": LOG, "partition": 0, "offset": 4, "nonce": nonce, "discloseKey": true});
    let by_node = call(&rpc, "zk_proveMembership", asked).await.unwrap();
    let by_node_file = write(&dir.path().join("by-node.json"), &by_node);
    let (ok, report, stderr) = light(&by_node_file, &["--keys", &keys_arg, "--nonce", &nonce]);
    assert!(ok && report["claim"]["disclosedKey"].is_string(), "{report} {stderr}");
    // The same proof in snarkjs's JSON: snarkjs (npm) verifies it as standard Groth16; with
    // another nonce among the public inputs it does not.
    let exported = dir.path().join("snarkjs");
    let export = ["zk", "export-snarkjs", "--proof", &by_node_file, "--keys", &keys_arg, "--out"];
    let (ok, report, stderr) = pyralog(&[&export[..], &[exported.to_str().unwrap()]].concat());
    assert!(ok && report["publicSignals"].as_array().unwrap().len() == 6, "{report} {stderr}");
    let snarkjs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../zk/interop/node_modules/.bin/snarkjs");
    if snarkjs.exists() {
        let verify = |public: &str| {
            let out = std::process::Command::new(&snarkjs)
                .args(["groth16", "verify"])
                .args(["verification_key.json", public, "proof.json"].map(|f| exported.join(f)))
                .output()
                .unwrap();
            (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let (ok, said) = verify("public.json");
        assert!(ok && said.contains("OK!"), "{said}");
        let mut public: Value =
            serde_json::from_slice(&std::fs::read(exported.join("public.json")).unwrap()).unwrap();
        public[5] = json!("12345");
        write(&exported.join("replayed.json"), &public);
        let (ok, said) = verify("replayed.json");
        assert!(!ok && said.contains("Invalid proof"), "{said}");
    } else {
        eprintln!("skipped: snarkjs on the node's proof (no zk/interop/node_modules: make npm-deps)");
    }

    // An append-batch STARK from the empty tree to the certified size...
    let stark =
        call(&rpc, "zk_proveAppends", json!({"log": LOG, "partition": 0, "fromSize": 0, "toSize": 5}))
            .await
            .unwrap();
    assert_eq!(call(&rpc, "zk_verify", json!({"proof": stark["proof"]})).await.unwrap()["valid"], true);
    let mut forged = stark["proof"].clone();
    forged["count"] = json!(4);
    assert_eq!(call(&rpc, "zk_verify", json!({"proof": forged})).await.unwrap()["valid"], false);
    let stark_file = write(&dir.path().join("stark-0-5.json"), &stark);
    let (ok, report, stderr) = light(&stark_file, &[]);
    assert!(ok && report["claim"]["toSize"] == 5, "{report} {stderr}");

    // ... and, after more appends, from the trusted checkpoint to the next one.
    let more: Vec<Value> = (5..8).map(record).collect();
    call(&rpc, "log_append", json!({"log": LOG, "partition": 0, "records": more})).await.unwrap();
    certified(&rpc, 8).await;
    let stark =
        call(&rpc, "zk_proveAppends", json!({"log": LOG, "partition": 0, "fromSize": 5, "toSize": 8}))
            .await
            .unwrap();
    let stark_file = write(&dir.path().join("stark-5-8.json"), &stark);
    let (ok, report, stderr) = light(&stark_file, &[]);
    assert!(ok && report["claim"]["fromSize"] == 5 && report["checkpoint"]["size"] == 8, "{report} {stderr}");
    // The old batch no longer ends at the certified size: refused, the trust file unchanged.
    let (ok, report, _) = light(dir.path().join("stark-0-5.json").to_str().unwrap(), &[]);
    assert!(!ok && report["reason"].as_str().unwrap().contains("certified"), "{report}");
    let empty = json!({"log": LOG, "partition": 0, "fromSize": 3, "toSize": 3});
    assert_eq!(code(call(&rpc, "zk_proveAppends", empty).await), -32602);
    // More than one call proves (4,096) is refused before anything is read.
    let too_many = json!({"log": LOG, "partition": 0, "fromSize": 0, "toSize": 4097});
    assert_eq!(code(call(&rpc, "zk_proveAppends", too_many).await), -32602);
    drop(net);
}
