//! `pyralog light verify-record` against a malicious server: a JSON-RPC proxy in front of a real
//! 3-node testnet forwards every call and alters the answers in one way at a time. Each lie is
//! rejected with its reason, and a rejected answer leaves the trust file as it was.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::support::{ProxyHook, call, eventually, hex, proxy, start};

/// How the proxy lies.
#[derive(Debug, Clone)]
enum Lie {
    /// Forwards faithfully.
    None,
    /// A byte of the proven record encoding changed.
    RecordBytes,
    /// The record's JSON value changed (the proven bytes left alone).
    RecordJson,
    /// One field of the record's JSON other than key and value rewritten (the proven bytes left
    /// alone): `(field, new value)`.
    RecordField(&'static str, Value),
    /// The proof of another offset than the one asked.
    OtherOffset,
    /// A hash of the inclusion path changed.
    ProofPath,
    /// A real proof, but from an older (smaller) certified tree.
    ProofForOtherSize(Value),
    /// One signature replaced by another member's signature over other bytes.
    ForgedSignature,
    /// All signatures but one dropped (below the majority).
    MissingSignatures,
    /// An older certified answer, replayed.
    Replay(Value),
    /// The consistency proof's hashes changed (a fork would need exactly this).
    ConsistencyPath,
    /// The checkpoint of another partition.
    OtherPartition,
}

/// Applies `lie` to the request params before forwarding.
fn rewrite_request(lie: &Lie, method: &str, params: &mut Value) {
    if method != "log_getProof" {
        return;
    }
    match lie {
        Lie::OtherOffset => params["offset"] = json!(params["offset"].as_u64().unwrap() - 1),
        Lie::OtherPartition => params["partition"] = json!(1),
        _ => {}
    }
}

/// Applies `lie` to the node's answer.
fn rewrite_answer(lie: &Lie, method: &str, answer: &mut Value) {
    let flip_hex = |value: &mut Value, at: usize| {
        let mut text = value.as_str().unwrap().to_owned();
        let i = 2 + 2 * at; // past "0x"
        let flipped = if &text[i..i + 1] == "0" { "1" } else { "0" };
        text.replace_range(i..i + 1, flipped);
        *value = json!(text);
    };
    match (lie, method) {
        (Lie::RecordBytes, "log_getProof") => {
            let len = answer["encoded"].as_str().unwrap().len() / 2 - 1;
            flip_hex(&mut answer["encoded"], len - 1);
        }
        (Lie::RecordJson, "log_getProof") => answer["record"]["value"] = json!(hex(b"forged value")),
        (Lie::RecordField(field, value), "log_getProof") => answer["record"][*field] = value.clone(),
        (Lie::ProofPath, "log_getProof") => flip_hex(&mut answer["proof"]["path"][0], 0),
        (Lie::ProofForOtherSize(old), "log_getProof") => answer["proof"] = old["proof"].clone(),
        (Lie::ForgedSignature, "log_getProof") => {
            let signatures = answer["certificate"]["signatures"].as_array_mut().unwrap();
            signatures[0]["signature"] = signatures[1]["signature"].clone();
        }
        (Lie::MissingSignatures, "log_getProof") => {
            answer["certificate"]["signatures"].as_array_mut().unwrap().truncate(1)
        }
        (Lie::Replay(old), "log_getProof") => *answer = old.clone(),
        (Lie::ConsistencyPath, "log_getConsistencyProof") => flip_hex(&mut answer["path"][0], 0),
        _ => {}
    }
}

/// The proxy's hook: the current lie.
struct Liar(Arc<Mutex<Lie>>);

impl ProxyHook for Liar {
    fn request(&self, method: &str, params: &mut Value) {
        rewrite_request(&self.0.lock().unwrap(), method, params);
    }

    fn answer(&self, method: &str, answer: &mut Value) {
        rewrite_answer(&self.0.lock().unwrap(), method, answer);
    }
}

/// Runs the light client; returns its JSON report and whether it exited 0.
async fn verify(rpc: &str, trust: &Path, offset: u64, first_use: bool) -> (Value, bool) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pyralog"));
    command.args(["light", "verify-record", "--rpc", rpc, "--log", "audited", "--partition", "0"]);
    command.args(["--offset", &offset.to_string(), "--trust"]).arg(trust);
    if first_use {
        command.arg("--trust-on-first-use");
    }
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "not JSON: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(report["verified"] == true, output.status.success(), "{report}");
    (report, output.status.success())
}

/// Appends `n` records to `partition` and waits until a checkpoint certifies all of them.
async fn append_certified(url: &str, partition: u32, n: usize) -> u64 {
    let records: Vec<Value> = (0..n).map(|i| json!({"value": hex(format!("r{i}").as_bytes())})).collect();
    let receipts =
        call(url, "log_append", json!({"log": "audited", "partition": partition, "records": records}))
            .await
            .unwrap();
    let last = receipts.as_array().unwrap().last().unwrap()["offset"].as_u64().unwrap();
    eventually("a certified checkpoint covering the appends", async || {
        let c =
            call(url, "log_getCheckpoint", json!({"log": "audited", "partition": partition})).await.ok()?;
        let size = c["checkpoint"]["size"].as_u64()?;
        (size > last).then_some(size)
    })
    .await
}

fn copy_of(trust: &Path, dir: &Path, name: &str) -> PathBuf {
    let copy = dir.join(name);
    std::fs::copy(trust, &copy).unwrap();
    copy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_light_client_rejects_every_lie_of_a_malicious_server() {
    let dir = tempfile::tempdir().unwrap();
    let net = start(dir.path()).await;
    let node = net.rpc[0].clone();
    call(&node, "log_create", json!({"name": "audited", "partitions": 2, "replicationFactor": 3}))
        .await
        .unwrap();
    eventually("both partitions led", async || {
        let status = call(&node, "system_status", json!({})).await.ok()?;
        let partitions = status["partitions"].as_array()?;
        (partitions.len() == 2 && partitions.iter().all(|p| p["leader"].is_u64())).then_some(())
    })
    .await;
    let lie = Arc::new(Mutex::new(Lie::None));
    let rpc = proxy(node.clone(), Arc::new(Liar(lie.clone()))).await;
    let set = |l: Lie| *lie.lock().unwrap() = l;

    // An honest first verification pins the cluster and the first certified checkpoint.
    let first_size = append_certified(&node, 0, 4).await;
    append_certified(&node, 1, 4).await;
    let old_answer =
        call(&node, "log_getProof", json!({"log": "audited", "partition": 0, "offset": 2})).await.unwrap();
    let trust_old = dir.path().join("trust-old.json");
    let (report, ok) = verify(&rpc, &trust_old, 2, true).await;
    assert!(ok, "{report}");
    assert_eq!(report["checkpoint"]["size"], first_size);

    // The log grows; the client still trusts the first checkpoint.
    let second_size = append_certified(&node, 0, 4).await;
    assert!(second_size > first_size);

    // Lies about the step from the trusted checkpoint to the new one.
    let expect_rejected = async |l: Lie, trust: &Path, reason: &str| {
        set(l.clone());
        let before = std::fs::read(trust).unwrap();
        let (report, ok) = verify(&rpc, trust, 2, false).await;
        assert!(!ok, "{l:?} was accepted: {report}");
        let got = report["reason"].as_str().unwrap();
        assert!(got.contains(reason), "{l:?}: reason {got:?} lacks {reason:?}");
        assert_eq!(std::fs::read(trust).unwrap(), before, "{l:?} changed the trust file");
    };
    let fork_trust = copy_of(&trust_old, dir.path(), "trust-fork.json");
    expect_rejected(Lie::ConsistencyPath, &fork_trust, "does not extend the trusted checkpoint (fork)").await;

    // Honestly, the new checkpoint extends the trusted one, and becomes the trusted one.
    set(Lie::None);
    let trust = copy_of(&trust_old, dir.path(), "trust.json");
    let (report, ok) = verify(&rpc, &trust, 2, false).await;
    assert!(ok, "{report}");
    assert_eq!(report["extendsTrusted"], first_size);
    assert_eq!(report["checkpoint"]["size"], second_size);

    // Every other lie, each against the up-to-date trust file.
    let cases = [
        (Lie::RecordBytes, "inclusion proof leads to root"),
        (Lie::RecordJson, "the record's JSON fields differ from its proven bytes: value"),
        // Every other field the server sends beside the proof (it used to pass unchecked).
        (Lie::RecordField("epoch", json!(99)), "differ from its proven bytes: epoch"),
        (Lie::RecordField("timestampMs", json!(1)), "differ from its proven bytes: timestampMs"),
        (Lie::RecordField("scarabId", json!("12345")), "differ from its proven bytes: scarabId"),
        (
            Lie::RecordField("headers", json!([{"name": "forged", "value": "0x00"}])),
            "differ from its proven bytes: headers",
        ),
        (Lie::RecordField("producer", json!({"id": 7, "seq": 1})), "differ from its proven bytes: producer"),
        (Lie::RecordField("offset", json!(3)), "differ from its proven bytes: offset"),
        (Lie::RecordField("extra", json!("unproven")), "differ from its proven bytes: extra"),
        (Lie::OtherOffset, "proof is for offset 1, asked about offset 2"),
        (Lie::ProofPath, "inclusion proof leads to root"),
        (Lie::ProofForOtherSize(old_answer.clone()), "the signed checkpoint has size"),
        (Lie::ForgedSignature, "does not verify over this message"),
        (Lie::MissingSignatures, "the threshold is"),
        (Lie::Replay(old_answer), "older than the trusted size"),
        (Lie::OtherPartition, "checkpoint is for"),
    ];
    for (l, reason) in cases {
        expect_rejected(l, &trust, reason).await;
    }

    // The proxy itself is not the problem: told to stop lying, it is believed again; what the
    // client prints of the record is what the proven bytes say.
    set(Lie::None);
    let (report, ok) = verify(&rpc, &trust, 2, false).await;
    assert!(ok, "{report}");
    let direct =
        call(&node, "log_getProof", json!({"log": "audited", "partition": 0, "offset": 2})).await.unwrap();
    assert_eq!(report["record"], direct["record"]);
}
