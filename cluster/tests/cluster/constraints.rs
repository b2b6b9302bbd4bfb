//! Log constraint contracts on a three-node cluster on loopback: the code is stored by hash in
//! the global state and named by the log's configuration; the partition leader runs it on
//! every record, a refusal fails the record's whole batch with the contract's reason (through
//! a forwarding node too), and after the leader is killed the new leader enforces the rule
//! against the last record the old one wrote.

use pyralog_cluster::constraint::code_hash;
use pyralog_cluster::engine::ClusterError;
use pyralog_cluster::local::{LocalClusterNode, start_cluster};
use pyralog_cluster::model::{LogConfig, ProducerSeq, Record};
use pyralog_cluster::raft::Rejection;
use pyralog_cluster::storage::AppendOutcome;
use pyralog_contracts::examples::{JSON_ID, MONOTONIC_KEYS, wasm_of};
use pyralog_crypto::ClusterId;

use crate::support::{DEADLINE, eventually, leader_of, log_config};

fn config(name: &str, constraint: Option<pyralog_crypto::Digest>) -> LogConfig {
    LogConfig { constraint, ..log_config(name, 1, 3) }
}

fn keyed(keys: &[&str]) -> Vec<Record> {
    keys.iter()
        .map(|k| Record { key: Some(k.as_bytes().to_vec()), value: b"v".to_vec(), ..Record::default() })
        .collect()
}

fn valued(values: &[&str]) -> Vec<Record> {
    values.iter().map(|v| Record { value: v.as_bytes().to_vec(), ..Record::default() }).collect()
}

fn refusal(result: Result<Vec<pyralog_cluster::engine::AppendReceipt>, ClusterError>) -> (usize, String) {
    match result {
        Err(ClusterError::Refused { index, reason, .. }) => (index, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_constraint_refuses_whole_batches_at_every_leader_and_its_hash_is_in_the_log_config() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes =
        start_cluster(3, &ClusterId::new("constraints").unwrap(), dir.path(), |_| {}).await.unwrap();
    let first = nodes[0].node();
    let wasm = wasm_of(MONOTONIC_KEYS.as_bytes()).unwrap();
    let hash = first.store_contract_code(wasm.clone()).await.unwrap();
    assert_eq!(hash, code_hash(&wasm));
    let info = first.create_log(config("ordered", Some(hash))).await.unwrap();
    assert!(first.wait_until_writable("ordered", DEADLINE).await.unwrap());
    let id = info.partition_id(0);
    // Every node's global state names the code and holds it.
    for node in nodes.iter().map(LocalClusterNode::node) {
        eventually("the log on every node", || node.log("ordered").is_ok()).await;
        assert_eq!(node.log("ordered").unwrap().config.constraint, Some(hash));
        assert_eq!(node.contract_code(&hash), Some(wasm.clone()));
    }

    let lead = leader_of(&nodes, id).await;
    let follower = nodes.iter().map(LocalClusterNode::node).find(|n| n.id() != lead.id()).unwrap();
    assert_eq!(lead.append_to("ordered", 0, keyed(&["a", "b", "c"])).await.unwrap().len(), 3);
    // The second record goes back: nothing of the batch is written, at the leader or through
    // a follower that forwards it.
    let refused = refusal(lead.append_to("ordered", 0, keyed(&["d", "b", "e"])).await);
    assert_eq!(refused, (1, "keys must increase".to_owned()));
    let forwarded = refusal(follower.append_to("ordered", 0, keyed(&["c"])).await);
    assert_eq!(forwarded, (0, "keys must increase".to_owned()));
    let unkeyed = refusal(lead.append_to("ordered", 0, valued(&["no key"])).await);
    assert_eq!(unkeyed, (0, "records need a key".to_owned()));
    assert_eq!(lead.read("ordered", 0, 0, 10).unwrap().len(), 3);
    // Inside one batch the previous key is the record before it.
    assert_eq!(lead.append_to("ordered", 0, keyed(&["d", "da", "e"])).await.unwrap().len(), 3);

    // The leader dies; its successor compares with the last record the old leader wrote.
    let old = lead.id();
    nodes[old as usize].stop().await.unwrap();
    let successor = leader_of(&nodes, id).await;
    assert_ne!(successor.id(), old);
    let stale = refusal(successor.append_to("ordered", 0, keyed(&["e"])).await);
    assert_eq!(stale, (0, "keys must increase".to_owned()));
    let written = successor.append_to("ordered", 0, keyed(&["f"])).await.unwrap();
    assert!(matches!(written[0].outcome, pyralog_cluster::storage::AppendOutcome::Appended { offset: 6 }));

    // An idempotent producer's retry gets its duplicates back, not a refusal: records the
    // partition will not store are not checked and do not move the previous key.
    let produced = |keys: &[&str], first: u64| -> Vec<Record> {
        let mut records = keyed(keys);
        for (i, record) in records.iter_mut().enumerate() {
            record.producer = Some(ProducerSeq { producer: 77, sequence: first + i as u64 });
        }
        records
    };
    let first_try = successor.append_to("ordered", 0, produced(&["g", "h"], 0)).await.unwrap();
    assert_eq!(first_try[1].outcome, AppendOutcome::Appended { offset: 8 });
    let retried = successor.append_to("ordered", 0, produced(&["g", "h"], 0)).await.unwrap();
    assert!(retried.iter().all(|r| matches!(r.outcome, AppendOutcome::Duplicate { .. })), "{retried:?}");
    let overlapping = successor.append_to("ordered", 0, produced(&["h", "i"], 1)).await.unwrap();
    assert!(matches!(overlapping[0].outcome, AppendOutcome::Duplicate { .. }));
    assert_eq!(overlapping[1].outcome, AppendOutcome::Appended { offset: 9 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schema_like_constraint_checks_values_and_bad_code_or_hashes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(3, &ClusterId::new("schema").unwrap(), dir.path(), |_| {}).await.unwrap();
    let first = nodes[0].node();
    let hash = first.store_contract_code(wasm_of(JSON_ID.as_bytes()).unwrap()).await.unwrap();
    let info = first.create_log(config("orders", Some(hash))).await.unwrap();
    assert!(first.wait_until_writable("orders", DEADLINE).await.unwrap());
    let lead = leader_of(&nodes, info.partition_id(0)).await;
    let ok = lead.append_to("orders", 0, valued(&[r#"{"id":1,"total":5}"#, r#"{"total":5,"id":"x"}"#])).await;
    assert_eq!(ok.unwrap().len(), 2);
    let shape = "value must be a JSON object with an \"id\" field".to_owned();
    for bad in [r#"{"total":5}"#, "not json", r#"["id":1]"#, "{}"] {
        assert_eq!(refusal(lead.append_to("orders", 0, valued(&[bad])).await), (0, shape.clone()), "{bad}");
    }

    // Code that is not a constraint, and a log naming code that is not stored.
    let floats =
        wat::parse_str(r#"(module (func (export "check") (drop (f32.add (f32.const 1) (f32.const 2)))))"#)
            .unwrap();
    assert!(matches!(first.store_contract_code(floats).await, Err(ClusterError::InvalidContract(_))));
    let missing = first.create_log(config("missing", Some(pyralog_crypto::Digest([4; 32])))).await;
    assert!(
        matches!(&missing, Err(ClusterError::Rejected(Rejection::InvalidLog(reason))) if reason.contains("is not stored")),
        "{missing:?}"
    );
}
